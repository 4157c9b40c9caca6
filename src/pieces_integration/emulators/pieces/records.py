"""The emulated Pieces OS's stored records, and its timestamp shape (`{value, readable}`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def new_id() -> str:
    return str(uuid.uuid4())


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> dict[str, str]:
    iso = (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )
    return {"value": iso, "readable": _readable(moment)}


def _readable(moment: datetime) -> str:
    seconds = int((utc_now() - moment).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} minutes ago"
    if seconds < 86400:
        return f"{seconds // 3600} hours ago"
    return f"{seconds // 86400} days ago"


def parse_timestamp(value: Any) -> datetime | None:
    """Accept both `...Z` and `...+00:00` (the SDK sends the latter)."""
    if isinstance(value, dict):
        value = value.get("value")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(slots=True)
class Tag:
    id: str
    text: str
    created: datetime


@dataclass(slots=True)
class Annotation:
    id: str
    type: str
    text: str
    created: datetime
    updated: datetime


@dataclass(slots=True)
class Website:
    id: str
    name: str
    url: str
    created: datetime


@dataclass(slots=True)
class StoredAsset:
    id: str
    format_id: str
    name: str | None
    content: str
    ext: str
    created: datetime
    updated: datetime
    application: dict[str, Any]
    mechanism: str = "MANUAL"
    favorited: bool = False
    tags: list[Tag] = field(default_factory=list)
    websites: list[Website] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
