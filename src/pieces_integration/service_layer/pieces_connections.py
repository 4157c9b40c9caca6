"""Use cases for a user's Pieces OS link: detect, connect, status, disconnect (spec 6.1, 7.1).

`PiecesConnections` keeps one live connection per user (client, identifier stream, state
machine) and is used with `async with`, so every stream task is stopped on shutdown. Each
state change is published as a `ConnectionStateChanged` and saved on the stored connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog

from pieces_integration.domain.connection_state import (
    ConnectionState,
    ConnectionStateChanged,
    ConnectionStateMachine,
    FailureKind,
    UserMessage,
    is_compatible,
    message_for,
)
from pieces_integration.domain.errors import (
    InvalidInput,
    NotFound,
    PiecesIntegrationError,
    PiecesOSUnavailable,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
)
from pieces_integration.domain.model import AuditEntry, Connection, ConnectionKind, new_id, utcnow
from pieces_integration.domain.secrets import connection_secret_binding
from pieces_integration.ports.pieces import (
    ConnectionStore,
    Decrypt,
    DetectionResult,
    Encrypt,
    EndpointGuard,
    EventPublisher,
    IdentifierEvent,
    PiecesDetector,
    PiecesOS,
    PiecesOSFactory,
)

log = structlog.get_logger(__name__)
StreamFactory = Callable[[PiecesOS, "LiveConnection"], Any]  # returns an IdentifierStream
IdentifierSink = Callable[[str, list[IdentifierEvent]], Awaitable[None]]
CAPABILITIES = ("assets.read", "assets.write", "search", "streams.identifiers")


def secret_context(user_id: str) -> str:
    """Associated data binding a sealed API key to its owner and field (DEVIATIONS 6); the
    same binding key rotation uses for `connections.secret_ciphertext`."""
    return connection_secret_binding(user_id, ConnectionKind.PIECES)


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


# --- results (spec 6.3 ConnectionResult / ConnectionStatus) ----------------------------------


@dataclass(frozen=True, slots=True)
class Detection:
    available: bool
    url: str | None
    version: str | None
    compatible: bool | None
    legacy: bool
    elapsed_ms: float
    message: UserMessage | None


@dataclass(frozen=True, slots=True)
class PiecesInfo:
    version: str
    user_id: str
    capabilities: tuple[str, ...] = CAPABILITIES
    asset_count: int | None = None


@dataclass(frozen=True, slots=True)
class ConnectionResult:
    success: bool
    connection_id: str
    state: ConnectionState
    pieces_info: PiecesInfo | None
    initial_sync_scheduled: bool
    message: str | None = None
    failure: FailureKind | None = None
    user_message: UserMessage | None = None


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    connected: bool
    state: ConnectionState
    connection_id: str | None = None
    last_successful_sync: datetime | None = None
    sync_status: str = "idle"
    error_message: str | None = None
    failure: FailureKind | None = None
    user_message: UserMessage | None = None
    retry_attempt: int = 0
    max_attempts: int = 0
    pieces_info: PiecesInfo | None = None


@dataclass(frozen=True, slots=True)
class DisconnectionResult:
    success: bool
    user_id: str
    data_preserved: bool


# --- live connections ------------------------------------------------------------------------


@dataclass(eq=False)
class LiveConnection:
    """One user's live link; it is the stream's observer and drives the state machine."""

    user_id: str
    machine: ConnectionStateMachine
    publish: EventPublisher
    client: PiecesOS | None = None
    stream: Any = None
    info: PiecesInfo | None = None
    events: list[ConnectionStateChanged] = field(default_factory=list)
    # Set when the user's connect failed before any stream ran: how "Retry" connects again.
    redial: Callable[[], Awaitable[ConnectionResult]] | None = None

    async def emit(self, event: ConnectionStateChanged) -> None:
        self.events.append(event)
        await self.publish(event)

    async def attempt_starting(self) -> None:
        if self.machine.state is ConnectionState.DISCONNECTED:
            await self.emit(self.machine.start_attempt())

    async def opened(self) -> None:
        if self.machine.state is ConnectionState.CONNECTING:
            # Back after an interruption: Pieces OS may have restarted and forgotten our
            # application, so register again before calling it connected. If Pieces OS cannot
            # answer (5xx, timeout, refused) this attempt failed like any other, with that
            # failure's message, and the stream retries; any other refusal is logged and the
            # stream, still useful, carries on.
            if self.client is not None:
                try:
                    await self.client.connect()
                except (PiecesOSUnavailable, UpstreamTimeout):
                    raise
                except PiecesIntegrationError as exc:
                    log.warning("pieces_reregister_failed", user_id=self.user_id, error=repr(exc))
            await self.emit(self.machine.succeeded())

    async def failed(self, kind: FailureKind, detail: str) -> float | None:
        state = self.machine.state
        if state is ConnectionState.CONNECTED:
            event = self.machine.lost(kind, detail)
        elif state is ConnectionState.CONNECTING:
            event = self.machine.attempt_failed(kind, detail)
        else:  # a user disconnect raced the stream
            return None
        await self.emit(event)
        return event.retry_in

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
            self.stream = None
        if self.client is not None:
            await self.client.aclose()
            self.client = None


class PiecesConnections:
    """Registry of live connections; `async with` it (the app lifespan) to stop them all."""

    def __init__(
        self,
        *,
        publish: EventPublisher,
        stream_factory: StreamFactory | None = None,
        max_attempts: int = 10,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
    ) -> None:
        self._publish = publish
        self._stream_factory = stream_factory
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._live: dict[str, LiveConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, user_id: str) -> asyncio.Lock:
        """Serialises connect/disconnect of one user (two quick clicks must not race)."""
        return self._locks.setdefault(user_id, asyncio.Lock())

    async def __aenter__(self) -> PiecesConnections:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for user_id in list(self._live):
            await self.drop(user_id)

    def get(self, user_id: str) -> LiveConnection | None:
        return self._live.get(user_id)

    def fresh(self, user_id: str) -> LiveConnection:
        machine = ConnectionStateMachine(
            user_id,
            max_attempts=self._max_attempts,
            base_delay=self._base_delay,
            max_delay=self._max_delay,
        )
        live = LiveConnection(user_id=user_id, machine=machine, publish=self._publish)
        self._live[user_id] = live
        return live

    def start_stream(self, live: LiveConnection) -> None:
        if self._stream_factory is None or live.client is None:
            return
        live.stream = self._stream_factory(live.client, live)
        live.stream.start()

    async def drop(self, user_id: str) -> LiveConnection | None:
        live = self._live.pop(user_id, None)
        if live is not None:
            await live.close()
        return live


# --- use cases -------------------------------------------------------------------------------


async def _nothing() -> None:
    return None


async def detect_pieces(
    detector: PiecesDetector,
    guard: EndpointGuard,
    *,
    url: str | None,
    default_url: str,
) -> Detection:
    """Look for Pieces OS at `url` (or the default), then across the port range of its host."""
    endpoint = await guard.check(url or default_url)
    parts = urlsplit(endpoint.url)
    scheme = "https" if parts.scheme in ("https", "wss") else "http"
    # The given URL and the whole range are probed at once, so detection stays within the
    # scan's deadline; a hit on the exact URL wins.
    base = f"{scheme}://{parts.netloc}"
    version, scanned = await asyncio.gather(
        detector.probe(base) if parts.port is not None else _nothing(),
        detector.detect(endpoint.host, scheme=scheme),
    )
    result: DetectionResult = scanned
    if version is not None:
        result = DetectionResult(
            found=True,
            url=base,
            version=version or None,
            compatible=is_compatible(version) if version else None,
            elapsed_ms=scanned.elapsed_ms,
        )
    return Detection(
        available=result.found,
        url=result.url,
        version=result.version,
        compatible=result.compatible,
        legacy=result.legacy,
        elapsed_ms=result.elapsed_ms,
        message=None if result.found else message_for(FailureKind.NOT_RUNNING),
    )


async def connect_pieces(
    user_id: str,
    url: str,
    *,
    api_key: str | None,
    preferences: dict[str, Any] | None,
    guard: EndpointGuard,
    factory: PiecesOSFactory,
    store: ConnectionStore,
    connections: PiecesConnections,
    encrypt: Encrypt,
) -> ConnectionResult:
    """Vet the URL (again, at connect time), talk to Pieces, store the link, start the stream.

    Pieces being unreachable is an answer (`success=False` with the spec 8.4 message and
    actions), not an exception; an unsafe URL raises `UnsafeEndpoint` (a 4xx).
    """
    async with connections.lock(user_id):
        return await _connect(
            user_id,
            url,
            api_key=api_key,
            preferences=preferences,
            guard=guard,
            factory=factory,
            store=store,
            connections=connections,
            encrypt=encrypt,
        )


async def _connect(
    user_id: str,
    url: str,
    *,
    api_key: str | None,
    preferences: dict[str, Any] | None,
    guard: EndpointGuard,
    factory: PiecesOSFactory,
    store: ConnectionStore,
    connections: PiecesConnections,
    encrypt: Encrypt,
) -> ConnectionResult:
    endpoint = await guard.check(url)
    await connections.drop(user_id)
    live = connections.fresh(user_id)
    await live.emit(live.machine.start_attempt())
    stored = await store.get(user_id)
    connection = (
        stored.connection
        if stored is not None
        else Connection(id=new_id(), user_id=user_id, kind=ConnectionKind.PIECES, url=endpoint.url)
    )
    connection.url = endpoint.url
    connection.settings = {**connection.settings, "preferences": dict(preferences or {})}
    sealed = encrypt(api_key, secret_context(user_id)) if api_key else None
    client: PiecesOS | None = None
    try:
        client = await factory(endpoint.url, api_key=api_key)
        health = await client.health()
        if not health.healthy:
            raise PiecesOSUnavailable("Pieces OS reports it is not healthy", kind="not_running")
        if health.compatible is False:
            raise InvalidInput(
                f"Pieces OS {health.version} is not supported; install 12.x", field="pieces_url"
            )
        session = await client.connect()
        user = await client.user()
        if user is None:
            raise Unauthorized("nobody is signed in to Pieces OS")
        asset_count = len(await client.asset_ids())
    except (UpstreamError, Unauthorized, NotFound) as exc:
        if client is not None:
            await client.aclose()
        live.redial = functools.partial(
            connect_pieces,
            user_id,
            url,
            api_key=api_key,
            preferences=preferences,
            guard=guard,
            factory=factory,
            store=store,
            connections=connections,
            encrypt=encrypt,
        )
        kind = failure_kind_of(exc)
        event = live.machine.give_up(kind, exc.message)
        await live.emit(event)
        connection.state = event.current.value
        connection.error_message = exc.message
        connection.updated_at = utcnow()
        await store.save(connection, sealed_secret=sealed)
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
        await connections.drop(user_id)
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
    await store.save(connection, sealed_secret=sealed)
    connections.start_stream(live)
    return ConnectionResult(
        success=True,
        connection_id=connection.id,
        state=ConnectionState.CONNECTED,
        pieces_info=live.info,
        initial_sync_scheduled=bool((preferences or {}).get("initial_sync", True)),
        message="Successfully connected to Pieces OS",
    )


async def retry_pieces(user_id: str, connections: PiecesConnections) -> ConnectionStatus | None:
    """Manual retry after `connection_failed` ("Retry Connection" in spec 8.4): the stream of
    a lost connection tries again now; a connect that failed outright is made again."""
    live = connections.get(user_id)
    if live is None:
        return None
    if live.machine.state is ConnectionState.CONNECTION_FAILED:
        if live.stream is not None:
            await live.emit(live.machine.manual_retry())
            live.stream.retry_now()
        elif live.redial is not None:
            await live.redial()
            live = connections.get(user_id) or live
    elif live.stream is None:
        return None
    return _status_from_live(None, live)


def _status_from_live(connection: Connection | None, live: LiveConnection) -> ConnectionStatus:
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


async def pieces_status(
    user_id: str, *, store: ConnectionStore, connections: PiecesConnections
) -> ConnectionStatus:
    stored = await store.get(user_id)
    connection = stored.connection if stored is not None else None
    live = connections.get(user_id)
    if live is not None:
        return _status_from_live(connection, live)
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


async def disconnect_pieces(
    user_id: str,
    *,
    preserve_data: bool,
    store: ConnectionStore,
    connections: PiecesConnections,
) -> DisconnectionResult:
    """Stop the live link. With `preserve_data` the stored connection (and synced assets,
    which other use cases own) stay for a later reconnect; without it the link is deleted."""
    async with connections.lock(user_id):
        return await _disconnect(
            user_id, preserve_data=preserve_data, store=store, connections=connections
        )


async def _disconnect(
    user_id: str,
    *,
    preserve_data: bool,
    store: ConnectionStore,
    connections: PiecesConnections,
) -> DisconnectionResult:
    live = await connections.drop(user_id)
    if live is not None and live.machine.state is not ConnectionState.DISCONNECTED:
        with contextlib.suppress(Exception):
            await live.emit(live.machine.disconnect())
    stored = await store.get(user_id)
    if stored is None:
        return DisconnectionResult(success=live is not None, user_id=user_id, data_preserved=False)
    if preserve_data:
        stored.connection.state = ConnectionState.DISCONNECTED.value
        stored.connection.updated_at = utcnow()
        await store.save(stored.connection, sealed_secret=stored.sealed_secret)
    else:
        await store.delete(user_id)
    return DisconnectionResult(success=True, user_id=user_id, data_preserved=preserve_data)


async def stored_api_key(user_id: str, store: ConnectionStore, decrypt: Decrypt) -> str | None:
    """The user's Pieces API key, unsealed for a reconnect."""
    stored = await store.get(user_id)
    if stored is None or stored.sealed_secret is None:
        return None
    return decrypt(stored.sealed_secret, secret_context(user_id))


@dataclass(eq=False)
class PiecesIntegration:
    """Everything the Pieces use cases need, bundled once at start-up for the API layer."""

    guard: EndpointGuard
    detector: PiecesDetector
    factory: PiecesOSFactory
    store: ConnectionStore
    connections: PiecesConnections
    encrypt: Encrypt
    default_url: str
    # Writes an audit entry (connections made and dropped are security events, spec 8.2).
    audit: Callable[[AuditEntry], Awaitable[None]] | None = None

    async def _audit(self, entry: AuditEntry) -> None:
        if self.audit is not None:
            await self.audit(entry)

    async def detect(self, url: str | None) -> Detection:
        return await detect_pieces(self.detector, self.guard, url=url, default_url=self.default_url)

    async def connect(
        self,
        user_id: str,
        url: str | None,
        *,
        api_key: str | None,
        preferences: dict[str, Any] | None,
        actor_id: str | None = None,
    ) -> ConnectionResult:
        result = await connect_pieces(
            user_id,
            url or self.default_url,
            api_key=api_key,
            preferences=preferences,
            guard=self.guard,
            factory=self.factory,
            store=self.store,
            connections=self.connections,
            encrypt=self.encrypt,
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

    async def status(self, user_id: str) -> ConnectionStatus:
        return await pieces_status(user_id, store=self.store, connections=self.connections)

    async def retry(self, user_id: str) -> ConnectionStatus:
        await retry_pieces(user_id, self.connections)
        return await self.status(user_id)

    async def disconnect(
        self, user_id: str, *, preserve_data: bool, actor_id: str | None = None
    ) -> DisconnectionResult:
        result = await disconnect_pieces(
            user_id, preserve_data=preserve_data, store=self.store, connections=self.connections
        )
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


CONNECTION_EVENT = "pieces_connection_state_changed"  # the event name of spec 8.4


def connection_event_payload(event: ConnectionStateChanged) -> dict[str, Any]:
    message = event.message
    return {
        "state": event.current.value,
        "previous": event.previous.value,
        "failure": event.failure.value if event.failure else None,
        "message": message.message if message else None,
        "title": message.title if message else None,
        "actions": [
            {"id": a.id, "label": a.label, "url": a.url}
            for a in (message.actions if message else ())
        ],
        "attempt": event.attempt,
        "max_attempts": event.max_attempts,
        "retry_in": event.retry_in,
        "detail": event.detail,
        "at": event.at.isoformat(),
    }


class UserEventSink(Protocol):
    async def publish(self, user_id: str, event_type: str, payload: dict[str, Any]) -> Any: ...


def publish_to(sink: UserEventSink) -> EventPublisher:
    """Adapts the per-user event log/bus to the connection state machine's events."""

    async def publish(event: ConnectionStateChanged) -> None:
        await sink.publish(event.user_id, CONNECTION_EVENT, connection_event_payload(event))

    return publish
