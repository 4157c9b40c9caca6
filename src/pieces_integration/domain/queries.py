"""Query shapes shared by the API and the repositories (pure data)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from pieces_integration.domain.errors import InvalidInput

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AssetQuery:
    language: str | None = None
    tags: tuple[str, ...] = ()  # all must be present
    search: str | None = None  # case-insensitive substring of name, description or content
    source: str | None = None  # an AssetSource value
    limit: int = 50
    offset: int = 0
    cursor: str | None = None
    # Which assets: the user's own (`own`) and/or those shared into these teams (issue 16).
    # The caller resolves the teams from the user's memberships (service_layer.team_access).
    own: bool = True
    team_ids: tuple[str, ...] = ()


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    total: int | None = None
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Keyset position in (updated_at desc, id desc) order; opaque to clients."""

    updated_at: datetime
    id: str

    def encode(self) -> str:
        raw = json.dumps([self.updated_at.isoformat(), self.id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            when, identifier = json.loads(base64.urlsafe_b64decode(padded.encode()))
            return cls(datetime.fromisoformat(when), str(identifier))
        except (ValueError, TypeError) as exc:
            raise InvalidInput("cursor is not one this service issued", field="cursor") from exc
