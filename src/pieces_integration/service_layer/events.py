"""Domain events toward live subscribers, published per user after commit.

`EventPublisher.publish` appends the event to the durable per-user log (which assigns its
id, keeps it in the bounded history for resuming clients and fans it out to every replica),
then also announces it on the bus channel `user:{user_id}` for in-process consumers.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from pieces_integration.domain.model import Asset, utcnow
from pieces_integration.ports.event_log import EventLog, LoggedEvent, NewEvent
from pieces_integration.ports.infrastructure import EventBus

# Every event type a client may put in a `subscribe` filter (spec 6.2, plus the sync
# engine's and the connection monitor's events).
EVENT_TYPES = frozenset(
    {
        "asset_created",
        "asset_updated",
        "asset_deleted",
        "context_changed",
        "suggestions_updated",
        "sync_completed",
        "connection_state_changed",
        "conflict_detected",
    }
)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(item) for item in value]
    return value


def asset_payload(asset: Asset) -> dict[str, Any]:
    """The spec 6.3 Asset object (no internal fields)."""
    return {
        "id": asset.id,
        "name": asset.name,
        "description": asset.description,
        "content": asset.content,
        "language": asset.language,
        "tags": list(asset.tags),
        "source": asset.source.value,
        "source_id": asset.source_id,
        "created_at": asset.created_at.isoformat(),
        "updated_at": asset.updated_at.isoformat(),
        "last_accessed": asset.last_accessed.isoformat() if asset.last_accessed else None,
        "usage_count": asset.usage_count,
        "metadata": to_jsonable(asset.metadata),
        "version": asset.version,
        "content_hash": asset.content_hash,
    }


def user_channel(user_id: str) -> str:
    return f"user:{user_id}"


class EventPublisher:
    def __init__(self, bus: EventBus, log: EventLog) -> None:
        self._bus = bus
        self.log = log

    async def publish(self, user_id: str, event_type: str, payload: dict[str, Any]) -> LoggedEvent:
        logged = await self.log.append(
            NewEvent(user_id, event_type, utcnow().isoformat(), to_jsonable(payload))
        )
        await self._bus.publish(user_channel(user_id), logged.wire.encode())
        return logged
