"""Domain events toward live subscribers: serialised once, published per user after commit."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from pieces_integration.domain.model import Asset, utcnow
from pieces_integration.ports.infrastructure import EventBus


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
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    async def publish(self, user_id: str, event_type: str, payload: dict[str, Any]) -> None:
        message = {
            "type": event_type,
            "user_id": user_id,
            "timestamp": utcnow().isoformat(),
            "payload": to_jsonable(payload),
        }
        await self._bus.publish(user_channel(user_id), json.dumps(message).encode())
