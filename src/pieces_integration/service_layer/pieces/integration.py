"""The Pieces use cases (spec 6.1, 7.1): detect, connect, status, retry, disconnect.

`PiecesIntegration` holds what they need (endpoint guard, client factory, connection store,
the live registry, the key sealer), built once at start-up. Each state change of a live
connection is published as a `ConnectionStateChanged`; connect and disconnect save the
outcome on the stored connection, which is how other replicas learn of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pieces_integration.domain.bridge import bridge_id_of
from pieces_integration.domain.connection_state import ConnectionState, FailureKind
from pieces_integration.domain.errors import (
    InvalidInput,
    NotFound,
    PiecesIntegrationError,
    PiecesOSUnavailable,
    Unauthorized,
    UpstreamError,
)
from pieces_integration.domain.model import AuditEntry, Connection, ConnectionKind, new_id, utcnow
from pieces_integration.ports.bridge import BridgeLink
from pieces_integration.ports.pieces import (
    ConnectionStore,
    Encrypt,
    EndpointGuard,
    PiecesDetector,
    PiecesOS,
    PiecesOSFactory,
)
from pieces_integration.service_layer.pieces.credentials import secret_context
from pieces_integration.service_layer.pieces.detection import detect_pieces
from pieces_integration.service_layer.pieces.live import LiveConnection, PiecesConnections
from pieces_integration.service_layer.pieces.results import (
    BridgeStatus,
    ConnectionResult,
    ConnectionStatus,
    Detection,
    DisconnectionResult,
    PiecesInfo,
)


def failure_kind_of(exc: Exception) -> FailureKind:
    if isinstance(exc, Unauthorized):
        return FailureKind.AUTHENTICATION
    raw = exc.details.get("kind") if isinstance(exc, PiecesIntegrationError) else None
    try:
        return FailureKind(str(raw))
    except ValueError:
        return (
            FailureKind.SERVICE_UNAVAILABLE
            if isinstance(exc, UpstreamError)
            else (FailureKind.NETWORK)
        )


def status_from_live(connection: Connection | None, live: LiveConnection) -> ConnectionStatus:
    machine = live.machine
    connected = machine.state is ConnectionState.CONNECTED
    return ConnectionStatus(
        connected=connected,
        state=machine.state,
        connection_id=connection.id if connection is not None else None,
        last_successful_sync=connection.last_successful_sync if connection else None,
        sync_status="idle" if connected else "error",
        error_message=machine.message.message if machine.message else machine.detail,
        failure=machine.failure,
        user_message=machine.message,
        retry_attempt=machine.attempts,
        max_attempts=machine.max_attempts,
        pieces_info=live.info,
    )


def status_from_stored(connection: Connection | None) -> ConnectionStatus:
    if connection is None:
        return ConnectionStatus(connected=False, state=ConnectionState.DISCONNECTED)
    # Stored but not live (e.g. after a restart): report what we know, not "connected".
    state = ConnectionState(connection.state)
    if state is ConnectionState.CONNECTED:
        state = ConnectionState.DISCONNECTED
    return ConnectionStatus(
        connected=False,
        state=state,
        connection_id=connection.id,
        last_successful_sync=connection.last_successful_sync,
        sync_status="error" if connection.error_message else "idle",
        error_message=connection.error_message,
    )


@dataclass(eq=False)
class PiecesIntegration:
    """The Pieces use cases, with everything they need bundled once at start-up."""

    guard: EndpointGuard
    detector: PiecesDetector
    factory: PiecesOSFactory
    store: ConnectionStore
    connections: PiecesConnections
    encrypt: Encrypt
    default_url: str
    # Writes an audit entry (connections made and dropped are security events, spec 8.2).
    audit: Callable[[AuditEntry], Awaitable[None]] | None = None
    # Where a user's bridge is connected, if anywhere (any replica's view; DEVIATIONS 5).
    bridge_link: Callable[[str], Awaitable[BridgeLink | None]] | None = None

    async def _audit(self, entry: AuditEntry) -> None:
        if self.audit is not None:
            await self.audit(entry)

    async def detect(self, url: str | None) -> Detection:
        return await detect_pieces(self.detector, self.guard, url=url, default_url=self.default_url)

    # --- connect ---

    async def connect(
        self,
        user_id: str,
        url: str | None,
        *,
        api_key: str | None,
        preferences: dict[str, Any] | None,
        actor_id: str | None = None,
    ) -> ConnectionResult:
        """Vet the URL (again, at connect time), talk to Pieces, store the link, start the
        stream.

        Pieces being unreachable is an answer (`success=False` with the spec 8.4 message and
        actions), not an exception; an unsafe URL raises `UnsafeEndpoint` (a 4xx).
        """
        result = await self._connect_serially(
            user_id, url or self.default_url, api_key=api_key, preferences=preferences
        )
        await self._audit(
            AuditEntry(
                "pieces_connected" if result.success else "pieces_connect_failed",
                actor_id=actor_id or user_id,
                user_id=user_id,
                target=result.connection_id,
                details={
                    "state": result.state.value,
                    "failure": result.failure.value if result.failure else None,
                    "with_api_key": api_key is not None,
                },
            )
        )
        return result

    async def _connect_serially(
        self, user_id: str, url: str, *, api_key: str | None, preferences: dict[str, Any] | None
    ) -> ConnectionResult:
        async with self.connections.lock(user_id):
            return await self._connect(user_id, url, api_key=api_key, preferences=preferences)

    async def _connect(
        self, user_id: str, url: str, *, api_key: str | None, preferences: dict[str, Any] | None
    ) -> ConnectionResult:
        endpoint = await self.guard.check(url)
        await self.connections.drop(user_id)
        live = self.connections.fresh(user_id)
        await live.emit(live.machine.start_attempt())
        stored = await self.store.get(user_id)
        connection = (
            stored.connection
            if stored is not None
            else Connection(
                id=new_id(), user_id=user_id, kind=ConnectionKind.PIECES, url=endpoint.url
            )
        )
        connection.url = endpoint.url
        connection.settings = {**connection.settings, "preferences": dict(preferences or {})}
        sealed = self.encrypt(api_key, secret_context(user_id)) if api_key else None
        client: PiecesOS | None = None
        try:
            client = await self.factory(endpoint.url, api_key=api_key, user_id=user_id)
            health = await client.health()
            if not health.healthy:
                raise PiecesOSUnavailable("Pieces OS reports it is not healthy", kind="not_running")
            if health.compatible is False:
                raise InvalidInput(
                    f"Pieces OS {health.version} is not supported; install 12.x",
                    field="pieces_url",
                )
            session = await client.connect()
            user = await client.user()
            if user is None:
                raise Unauthorized("nobody is signed in to Pieces OS")
            asset_count = len(await client.asset_ids())
        except (UpstreamError, Unauthorized, NotFound) as exc:
            if client is not None:
                await client.aclose()
            # "Retry" makes this connect again (serialised like any connect, not audited).
            live.redial = functools.partial(
                self._connect_serially, user_id, url, api_key=api_key, preferences=preferences
            )
            kind = failure_kind_of(exc)
            event = live.machine.give_up(kind, exc.message)
            await live.emit(event)
            connection.state = event.current.value
            connection.error_message = exc.message
            connection.updated_at = utcnow()
            await self.store.save(connection, sealed_secret=sealed)
            return ConnectionResult(
                success=False,
                connection_id=connection.id,
                state=event.current,
                pieces_info=None,
                initial_sync_scheduled=False,
                message=event.message.message if event.message else exc.message,
                failure=kind,
                user_message=event.message,
            )
        except InvalidInput:
            if client is not None:
                await client.aclose()
            await self.connections.drop(user_id)
            raise
        live.client = client
        live.info = PiecesInfo(version=session.version, user_id=user.id, asset_count=asset_count)
        await live.emit(live.machine.succeeded())
        connection.state = ConnectionState.CONNECTED.value
        connection.application_id = session.application_id
        connection.remote_user_id = user.id
        connection.remote_version = session.version
        connection.error_message = None
        connection.updated_at = utcnow()
        await self.store.save(connection, sealed_secret=sealed)
        self.connections.start_stream(live)
        return ConnectionResult(
            success=True,
            connection_id=connection.id,
            state=ConnectionState.CONNECTED,
            pieces_info=live.info,
            initial_sync_scheduled=bool((preferences or {}).get("initial_sync", True)),
            message="Successfully connected to Pieces OS",
        )

    # --- status and retry ---

    async def status(self, user_id: str) -> ConnectionStatus:
        stored = await self.store.get(user_id)
        connection = stored.connection if stored is not None else None
        live = self.connections.get(user_id)
        if live is not None:
            status = status_from_live(connection, live)
        else:
            status = status_from_stored(connection)
        return await self._with_bridge(status, connection, live is not None)

    async def _with_bridge(
        self, status: ConnectionStatus, connection: Connection | None, live_here: bool
    ) -> ConnectionStatus:
        """`mode` and the `bridge` object for a connection through a bridge. Its live
        connection sits on the replica holding the bridge; elsewhere the registry tells."""
        try:
            bridge_id = bridge_id_of(connection.url if connection else None)
        except ValueError:
            bridge_id = None
        if bridge_id is None:
            return status
        link = await self.bridge_link(bridge_id) if self.bridge_link is not None else None
        bridge = BridgeStatus(
            connected=link is not None,
            bridge_id=bridge_id,
            last_heartbeat=link.last_heartbeat if link else None,
            rtt_ms=round(link.rtt_ms, 2) if link and link.rtt_ms is not None else None,
            agent_version=link.agent_version if link else None,
        )
        status = dataclasses.replace(status, mode="bridge", bridge=bridge)
        stored_state = connection.state if connection else None
        if not live_here and link is not None and stored_state == ConnectionState.CONNECTED:
            status = dataclasses.replace(
                status, connected=True, state=ConnectionState.CONNECTED, sync_status="idle"
            )
        return status

    async def retry(self, user_id: str) -> ConnectionStatus:
        """Manual retry after `connection_failed` ("Retry Connection" in spec 8.4): the stream
        of a lost connection tries again now; a connect that failed outright is made again.
        Answers the status afterwards (unchanged when there was nothing to retry)."""
        live = self.connections.get(user_id)
        if live is not None and live.machine.state is ConnectionState.CONNECTION_FAILED:
            if live.stream is not None:
                await live.emit(live.machine.manual_retry())
                live.stream.retry_now()
            elif live.redial is not None:
                await live.redial()
        return await self.status(user_id)

    # --- disconnect ---

    async def disconnect(
        self, user_id: str, *, preserve_data: bool, actor_id: str | None = None
    ) -> DisconnectionResult:
        """Stop the live link. With `preserve_data` the stored connection (and synced assets,
        which other use cases own) stay for a later reconnect; without it the link is
        deleted."""
        async with self.connections.lock(user_id):
            result = await self._disconnect(user_id, preserve_data=preserve_data)
        if result.success:
            await self._audit(
                AuditEntry(
                    "pieces_disconnected",
                    actor_id=actor_id or user_id,
                    user_id=user_id,
                    details={"data_preserved": result.data_preserved},
                )
            )
        return result

    async def _disconnect(self, user_id: str, *, preserve_data: bool) -> DisconnectionResult:
        live = await self.connections.drop(user_id)
        if live is not None and live.machine.state is not ConnectionState.DISCONNECTED:
            with contextlib.suppress(Exception):
                await live.emit(live.machine.disconnect())
        stored = await self.store.get(user_id)
        if stored is None:
            return DisconnectionResult(
                success=live is not None, user_id=user_id, data_preserved=False
            )
        if preserve_data:
            stored.connection.state = ConnectionState.DISCONNECTED.value
            stored.connection.updated_at = utcnow()
            await self.store.save(stored.connection, sealed_secret=stored.sealed_secret)
        else:
            await self.store.delete(user_id)
        return DisconnectionResult(success=True, user_id=user_id, data_preserved=preserve_data)
