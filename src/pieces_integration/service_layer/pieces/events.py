"""Connection state changes as events on the per-user event log (spec 8.4)."""

from __future__ import annotations

from typing import Any, Protocol

from pieces_integration.domain.connection_state import ConnectionStateChanged
from pieces_integration.domain.events import EventType
from pieces_integration.ports.pieces import EventPublisher


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
        await sink.publish(
            event.user_id,
            EventType.PIECES_CONNECTION_STATE_CHANGED,
            connection_event_payload(event),
        )

    return publish
