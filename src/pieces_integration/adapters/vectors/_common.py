"""Helpers shared by the two Qdrant adapters (point ids, payload, fusion formula inputs)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from pieces_integration.ports.vectors import ID_FIELD, USER_FIELD, IndexedPoint

# Fixed namespace: the same caller id maps to the same point id in every process.
_NAMESPACE = uuid.UUID("6f0d7f5e-3c4b-4a55-9b0e-2b1f7c1d9a10")

INDEXED_KEYWORD_FIELDS = ("language", "tags", "kind")


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def point_id(key: str) -> str:
    """Qdrant point ids are UUIDs or integers: use the key itself if it is a UUID."""
    if _CANONICAL_UUID.fullmatch(key):  # our own ids: a team filter converts hundreds
        return key
    try:
        return str(uuid.UUID(key))
    except ValueError:
        return str(uuid.uuid5(_NAMESPACE, key))


def point_payload(point: IndexedPoint) -> dict[str, Any]:
    payload = dict(point.payload)
    payload[ID_FIELD] = point.id
    payload[USER_FIELD] = point.user_id
    return payload


def hit_id(payload: Mapping[str, Any] | None, fallback: object) -> str:
    if payload and isinstance(payload.get(ID_FIELD), str):
        return str(payload[ID_FIELD])
    return str(fallback)
