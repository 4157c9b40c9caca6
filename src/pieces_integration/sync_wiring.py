"""Part of the composition root: the Pieces integration, the sync engine and its scheduler.

Kept beside `bootstrap.py` (which calls `wire_sync`) so each file stays readable; nothing
else imports it.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from pieces_integration.adapters.aiwfe.client import AIWFEHttpClient
from pieces_integration.adapters.aiwfe.sync_side import AIWFESyncSide
from pieces_integration.adapters.code_analysis import TreeSitterCodeAnalyzer
from pieces_integration.adapters.pieces_os.client import ClientSettings
from pieces_integration.adapters.pieces_os.discovery import PortScanDetector
from pieces_integration.adapters.pieces_os.endpoint_guard import ResolvingEndpointGuard
from pieces_integration.adapters.pieces_os.factory import (
    DirectPiecesOSFactory,
    identifier_stream_factory,
)
from pieces_integration.adapters.pieces_os.transport import ssl_context
from pieces_integration.adapters.sync_sides_provider import ConnectedSides
from pieces_integration.domain.commands import CreateAIWFESuggestion
from pieces_integration.domain.hlc import HybridLogicalClock
from pieces_integration.domain.merge import Strategy
from pieces_integration.domain.model import Asset, AuditEntry, ConnectionKind, OutboxMessage, Side
from pieces_integration.ports.pieces import IdentifierEvent, PiecesOS, StreamObserver
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.ports.sync_sides import SyncSide
from pieces_integration.service_layer.asset_analysis import (
    deliver_suggestion,
    queue_asset_suggestions,
)
from pieces_integration.service_layer.conflicts import ConflictService
from pieces_integration.service_layer.events import to_jsonable
from pieces_integration.service_layer.pieces_connection_store import UowPiecesConnectionStore
from pieces_integration.service_layer.pieces_connections import (
    PiecesConnections,
    PiecesIntegration,
    publish_to,
)
from pieces_integration.service_layer.sync_engine import SyncEngine, sync_completed
from pieces_integration.service_layer.sync_scheduler import SyncScheduler

if TYPE_CHECKING:
    from pieces_integration.bootstrap import Container


class SchedulerSyncTrigger:
    """The WebSocket `sync_request` port: run (or join) the user's sync now."""

    def __init__(self, scheduler: SyncScheduler) -> None:
        self._scheduler = scheduler

    async def request_sync(self, user_id: str, *, force: bool) -> dict[str, Any]:
        # Every run is a full reconciliation, so `force` needs no separate path.
        run = await self._scheduler.request(user_id, trigger="websocket")
        return {**to_jsonable(sync_completed(run)), "announced": True}


def node_id() -> str:
    """A short id of this process for HLC stamps (unique per replica and restart)."""
    raw = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:8]


def wire_sync(container: Container) -> None:
    settings = container.settings
    aiwfe_side: Callable[[str], SyncSide] | None = None
    deliverers: dict[str, Callable[[OutboxMessage], Awaitable[object]]] = {}
    after_pull: Callable[[list[Asset]], Awaitable[None]] | None = None
    if settings.aiwfe_api_url:
        aiwfe = AIWFEHttpClient(
            container.http,
            base_url=settings.aiwfe_api_url,
            api_key=settings.aiwfe_api_key.get_secret_value() if settings.aiwfe_api_key else None,
        )
        container.extras["aiwfe_client"] = aiwfe

        def make_aiwfe_side(user_id: str) -> SyncSide:
            return AIWFESyncSide(aiwfe, user_id)

        async def suggest(message: OutboxMessage) -> object:
            return await deliver_suggestion(message, aiwfe)

        analyzer = TreeSitterCodeAnalyzer()

        async def analyse(assets: list[Asset]) -> None:
            # TODOs and likely bugs in what came from Pieces become AIWFE task suggestions.
            for asset in assets:
                await queue_asset_suggestions(asset, analyzer=analyzer, uow_factory=container.uow)

        aiwfe_side = make_aiwfe_side
        deliverers[CreateAIWFESuggestion.OPERATION] = suggest
        after_pull = analyse
    pieces_settings = settings.pieces
    guard = ResolvingEndpointGuard()
    tls = ssl_context(ca_file=pieces_settings.ca_file)
    # Detection probes with the same trust as the client (a Pieces OS behind its own CA).
    detect_http = container.http
    if pieces_settings.ca_file is not None:
        detect_http = httpx.AsyncClient(verify=tls, follow_redirects=False)
        container.on_close(detect_http.aclose)
    factory = DirectPiecesOSFactory(
        ClientSettings(
            timeout=pieces_settings.timeout_seconds,
            retry_attempts=pieces_settings.retry_attempts,
            rate_limit_per_minute=float(pieces_settings.rate_limit.requests_per_minute),
            rate_limit_burst=pieces_settings.rate_limit.burst_size,
        ),
        guard=guard,
        tls=tls,
    )
    store = UowPiecesConnectionStore(container.uow)
    holder: dict[str, SyncScheduler] = {}
    streams = identifier_stream_factory

    def stream_factory(client: PiecesOS, observer: StreamObserver) -> Any:
        user_id = str(getattr(observer, "user_id", ""))

        async def changed(events: list[IdentifierEvent]) -> None:
            # Pieces announced creates/changes/deletes: sync just those ids soon. The first
            # frame lists every id (a snapshot): reconcile everything then.
            if not user_id or "scheduler" not in holder:
                return
            scheduler = holder["scheduler"]
            if any(event.snapshot for event in events):
                scheduler.poke(user_id, full=True)
            else:
                ids = {event.asset_id for event in events}
                scheduler.poke(user_id, side=Side.PIECES, remote_ids=ids)

        return streams(changed)(client, observer)

    connections = PiecesConnections(
        publish=publish_to(container.events), stream_factory=stream_factory
    )
    low, high = pieces_settings.scan_ports
    container.extras["pieces"] = PiecesIntegration(
        guard=guard,
        detector=PortScanDetector(
            detect_http,
            ports=range(low, high + 1),
            legacy_ports=(pieces_settings.legacy_port,),
        ),
        factory=factory,
        store=store,
        connections=connections,
        encrypt=container.secrets.encrypt,
        default_url=pieces_settings.default_url or f"http://127.0.0.1:{low}",
        audit=audit_to(container.uow),
    )
    sides = ConnectedSides(
        store=store,
        connections=connections,
        factory=factory,
        decrypt=container.secrets.decrypt,
        aiwfe=aiwfe_side,
    )
    clock = HybridLogicalClock(node_id())
    engine = SyncEngine(
        uow=container.uow,
        locks=container.locks,
        events=container.events,
        sides=sides,
        clock=clock,
        strategy=Strategy(settings.sync.conflict_strategy),
        batch_size=settings.sync.batch_size,
        metrics=container.metrics,
        deliverers=deliverers,
        after_pull=after_pull,
    )

    async def users() -> list[str]:
        async with container.uow(readonly=True) as uow:
            connected = await uow.connections.user_ids(ConnectionKind.PIECES)
            everyone = await uow.users.list_ids() if aiwfe_side is not None else []
        return sorted(set(connected) | set(everyone))

    scheduler = SyncScheduler(
        engine=engine, uow=container.uow, users=users, interval=settings.sync.interval_seconds
    )
    holder["scheduler"] = scheduler
    container.assets.on_change = scheduler.poke  # push API writes right away
    container.extras["sync_trigger"] = SchedulerSyncTrigger(scheduler)
    container.extras["sync_engine"] = engine
    container.extras["scheduler"] = scheduler
    container.extras["conflicts"] = ConflictService(container.uow, container.events, clock)
    container.on_close(sides.aclose)
    container.on_close(lambda: connections.__aexit__(None, None, None))


def audit_to(uow: UnitOfWorkFactory) -> Callable[[AuditEntry], Awaitable[None]]:
    """An audit writer on its own transaction (for use cases without a unit of work)."""

    async def write(entry: AuditEntry) -> None:
        async with uow() as tx:
            await tx.audit.add(entry)
            await tx.commit()

    return write
