"""Domain events toward live subscribers, published per user after commit.

`EventPublisher.publish` appends the event to the durable per-user log, which assigns its
id, keeps it in the bounded history for resuming clients and fans it out to every replica.
The log is the only way out: the real-time hub reads its tail, nothing else listens.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from pieces_integration.domain.events import EventType
from pieces_integration.domain.model import Asset, utcnow
from pieces_integration.ports.event_log import EventLog, LoggedEvent, NewEvent

# Names a `subscribe` filter accepted before the service adopted spec 8.4's, kept so an
# existing client's filter still selects the event that is really published.
DEPRECATED_EVENT_ALIASES: dict[str, EventType] = {
    "connection_state_changed": EventType.PIECES_CONNECTION_STATE_CHANGED,
}
# Every event type a client may put in a `subscribe` filter: the published vocabulary
# (`EventType`) plus the deprecated aliases.
EVENT_TYPES: frozenset[str] = frozenset(
    {event.value for event in EventType} | DEPRECATED_EVENT_ALIASES.keys()
)


def subscription_filter(names: Iterable[str]) -> tuple[frozenset[str], list[str]]:
    """The published event types a filter selects (aliases resolved), and its unknown names."""
    selected: set[str] = set()
    unknown: set[str] = set()
    for name in names:
        if name in DEPRECATED_EVENT_ALIASES:
            selected.add(DEPRECATED_EVENT_ALIASES[name].value)
        elif name in EVENT_TYPES:
            selected.add(name)
        else:
            unknown.add(name)
    return frozenset(selected), sorted(unknown)


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


class EventPublisher:
    """Publishes one user's events to their log, which fans them out to every replica.

    Only there: events once also went to a bus channel `user:{id}` that nothing read
    (issue #19, 8).
    """

    def __init__(self, log: EventLog) -> None:
        self.log = log

    async def publish(self, user_id: str, event_type: str, payload: dict[str, Any]) -> LoggedEvent:
        return await self.log.append(
            NewEvent(user_id, event_type, utcnow().isoformat(), to_jsonable(payload))
        )
