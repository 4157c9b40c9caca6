"""Context schemas (spec 6.3 UserContext, ContextChange)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pieces_integration.domain.model import ContextChange, UserContext
from pieces_integration.service_layer.events import to_jsonable

_Text = Field(None, max_length=2000)
_LIST_FIELDS = frozenset({"active_files", "recent_assets", "keywords", "language_preferences"})
_List = Field(None, max_length=200)


class PiecesContextPublic(BaseModel):
    connected: bool
    last_sync: datetime | None = None
    sync_status: Literal["idle", "syncing", "error"]


class AIWFEContextPublic(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active_chat: str | None = Field(None, max_length=2000)
    recent_queries: list[str] = Field(default_factory=list, max_length=200)
    current_agent: str | None = Field(None, max_length=2000)


class UserContextPublic(BaseModel):
    user_id: str
    workspace_id: str | None = None
    current_task: str | None = None
    active_project: str | None = None
    active_files: list[str]
    recent_assets: list[str]
    keywords: list[str]
    language_preferences: list[str]
    last_updated: datetime
    pieces_context: PiecesContextPublic | None = None
    aiwfe_context: AIWFEContextPublic | None = None
    version: int

    @classmethod
    def of(cls, context: UserContext) -> UserContextPublic:
        return cls.model_validate(to_jsonable(context))


class ContextUpdate(BaseModel):
    """Only the fields sent change; `null` clears a text field."""

    model_config = ConfigDict(extra="forbid")
    workspace_id: str | None = _Text
    current_task: str | None = _Text
    active_project: str | None = _Text
    active_files: list[str] | None = _List
    recent_assets: list[str] | None = _List
    keywords: list[str] | None = _List
    language_preferences: list[str] | None = _List
    aiwfe_context: AIWFEContextPublic | None = None

    def updates(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if isinstance(value, BaseModel):
                value = value.model_dump()
            elif value is None and name in _LIST_FIELDS:
                value = []  # a null list means "empty"
            values[name] = value
        return values


class ContextChangePublic(BaseModel):
    id: int | None
    user_id: str
    field: str
    old_value: Any = None
    new_value: Any = None
    source: str
    changed_at: datetime

    @classmethod
    def of(cls, change: ContextChange) -> ContextChangePublic:
        return cls.model_validate(to_jsonable(change))
