"""Part of the composition root: the WebSocket hub and the browser tickets (spec 6.2)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

from pieces_integration.bootstrap.infrastructure import Infrastructure
from pieces_integration.bootstrap.overrides import Overrides
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.ports.sync import SyncTrigger
from pieces_integration.service_layer.notification_gate import NotificationGate
from pieces_integration.service_layer.realtime_hub import RealtimeHub
from pieces_integration.service_layer.revocation import Revocations
from pieces_integration.service_layer.ws_tickets import WsTickets


@dataclass(frozen=True, slots=True)
class RealtimeRuntime:
    hub: RealtimeHub  # started and drained by the app's lifespan
    tickets: WsTickets
    sync_trigger: SyncTrigger  # a client's `sync_request`
    notifications: NotificationGate  # each user's choice of pushed event types


def wire_realtime(
    infra: Infrastructure,
    uow: UnitOfWorkFactory,
    sync_trigger: SyncTrigger,
    overrides: Overrides,
    revocations: Revocations,
) -> RealtimeRuntime:
    notifications = NotificationGate(uow)
    hub = RealtimeHub(
        infra.event_log,
        overrides.realtime_limits,
        gauge=infra.metrics.websocket_connections,
        batch=overrides.realtime_batch or nullcontext,
        push_filter=notifications,
        revocations=revocations,
    )
    return RealtimeRuntime(
        hub=hub,
        tickets=WsTickets(infra.cache),
        sync_trigger=sync_trigger,
        notifications=notifications,
    )
