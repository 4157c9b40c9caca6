"""Part of the composition root: the Pieces OS integration (detection, clients, live links).

Direct mode: the service dials each user's Pieces OS itself, through an endpoint guard that
refuses addresses that are not the user's own machine (DEVIATIONS 4). Bridge mode
(DEVIATIONS 5): a `bridge://<id>` connection goes through the user's bridge, via the hub.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from pieces_integration.adapters.bridge.hub import BridgeHub
from pieces_integration.adapters.bridge.transport import BridgeAwareGuard, RoutingPiecesOSFactory
from pieces_integration.adapters.pieces_os.client import ClientSettings
from pieces_integration.adapters.pieces_os.discovery import PortScanDetector
from pieces_integration.adapters.pieces_os.endpoint_guard import ResolvingEndpointGuard
from pieces_integration.adapters.pieces_os.factory import (
    DirectPiecesOSFactory,
    identifier_stream_factory,
)
from pieces_integration.adapters.pieces_os.transport import ssl_context
from pieces_integration.bootstrap.infrastructure import Closers, Infrastructure
from pieces_integration.bootstrap.overrides import Overrides
from pieces_integration.config import Settings
from pieces_integration.domain.model import AuditEntry
from pieces_integration.ports.pieces import IdentifierEvent, PiecesOS, StreamObserver
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.pieces import PiecesConnections, PiecesIntegration, publish_to
from pieces_integration.service_layer.pieces.bridge_store import UowBridgeStore
from pieces_integration.service_layer.pieces.store import UowPiecesConnectionStore
from pieces_integration.service_layer.sync_signals import SyncSignals


def audit_to(uow: UnitOfWorkFactory) -> Callable[[AuditEntry], Awaitable[None]]:
    """An audit writer on its own transaction (for use cases without a unit of work)."""

    async def write(entry: AuditEntry) -> None:
        async with uow() as tx:
            await tx.audit.add(entry)
            await tx.commit()

    return write


def _streams_into(signals: SyncSignals) -> Callable[[PiecesOS, StreamObserver], Any]:
    """One identifier stream per live client, its events announced for the user's sync."""

    def build(client: PiecesOS, observer: StreamObserver) -> Any:
        user_id = str(getattr(observer, "user_id", ""))

        async def changed(events: list[IdentifierEvent]) -> None:
            signals.pieces_changed(user_id, events)

        return identifier_stream_factory(changed)(client, observer)

    return build


def wire_pieces(
    settings: Settings,
    infra: Infrastructure,
    uow: UnitOfWorkFactory,
    signals: SyncSignals,
    overrides: Overrides,
    closers: Closers,
    hub: BridgeHub,
) -> PiecesIntegration:
    pieces = settings.pieces
    guard = BridgeAwareGuard(overrides.endpoint_guard or ResolvingEndpointGuard())
    tls = ssl_context(ca_file=pieces.ca_file)
    # Detection probes with the same trust as the client (a Pieces OS behind its own CA).
    detect_http = infra.http
    if pieces.ca_file is not None:
        detect_http = httpx.AsyncClient(verify=tls, follow_redirects=False)
        closers.add(detect_http.aclose)
    client_settings = ClientSettings(
        timeout=pieces.timeout_seconds,
        retry_attempts=pieces.retry_attempts,
        rate_limit_per_minute=float(pieces.rate_limit.requests_per_minute),
        rate_limit_burst=pieces.rate_limit.burst_size,
    )
    factory = RoutingPiecesOSFactory(
        DirectPiecesOSFactory(client_settings, guard=guard, tls=tls),
        router=hub,
        store=UowBridgeStore(uow),
        settings=client_settings,
    )
    connections = PiecesConnections(
        publish=publish_to(infra.events), stream_factory=_streams_into(signals)
    )
    closers.add(lambda: connections.__aexit__(None, None, None))
    low, high = pieces.scan_ports
    return PiecesIntegration(
        guard=guard,
        detector=PortScanDetector(
            detect_http, ports=range(low, high + 1), legacy_ports=(pieces.legacy_port,)
        ),
        factory=factory,
        store=UowPiecesConnectionStore(uow),
        connections=connections,
        encrypt=infra.secrets.encrypt,
        default_url=pieces.default_url or f"http://127.0.0.1:{low}",
        audit=audit_to(uow),
        bridge_link=hub.link,
    )
