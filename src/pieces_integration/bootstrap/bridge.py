"""Part of the composition root: bridges (DEVIATIONS 5), the agents that dial in from
developers' machines so a cluster reaches every developer's Pieces OS.

The hub is built before the Pieces integration (its client factory routes `bridge://`
connections through it); the bridge use cases after (they connect a user through it).
"""

from __future__ import annotations

from dataclasses import dataclass

from pieces_integration.adapters.bridge.hub import BridgeHub
from pieces_integration.bootstrap.infrastructure import Infrastructure
from pieces_integration.bootstrap.pieces import audit_to
from pieces_integration.config import Settings
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.pieces import PiecesIntegration
from pieces_integration.service_layer.pieces.bridge_store import UowBridgeStore
from pieces_integration.service_layer.pieces.bridges import BridgeService
from pieces_integration.service_layer.revocation import Revocations


@dataclass(frozen=True, slots=True)
class BridgeRuntime:
    hub: BridgeHub
    service: BridgeService
    heartbeat: float


def bridge_hub(settings: Settings, infra: Infrastructure) -> BridgeHub:
    return BridgeHub(
        bus=infra.bus, cache=infra.cache, heartbeat=settings.pieces.bridge_heartbeat_seconds
    )


def wire_bridge(
    settings: Settings,
    hub: BridgeHub,
    pieces: PiecesIntegration,
    uow: UnitOfWorkFactory,
    revocations: Revocations,
) -> BridgeRuntime:
    service = BridgeService(
        UowBridgeStore(uow), hub, pieces, revocations=revocations, audit=audit_to(uow)
    )
    return BridgeRuntime(
        hub=hub, service=service, heartbeat=settings.pieces.bridge_heartbeat_seconds
    )
