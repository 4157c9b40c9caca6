"""Port: the AIWFE platform API the service needs (docs/aiwfe-contract.yaml).

The data classes mirror the contract's schemas with Python names; the client adapter
converts JSON to them and back, so the service layer never sees raw payloads.
The webhook inbox (idempotency on event ids) is `ports.storage.WebhookInbox`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pieces_integration.domain.code_findings import TaskSuggestion


@dataclass(frozen=True, slots=True)
class AIWFETask:
    id: str
    title: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AIWFEOpportunity:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ChatRef:
    id: str
    title: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AIWFEUserContext:
    user_id: str
    version: int
    updated_at: datetime
    workspace_id: str | None = None
    current_task: AIWFETask | None = None
    active_opportunity: AIWFEOpportunity | None = None
    recent_chats: tuple[ChatRef, ...] = ()
    recent_queries: tuple[str, ...] = ()
    current_agent: str | None = None
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AIWFEContextUpdate:
    """Fields to change; None leaves a field alone. `clear` lists fields to set to null."""

    current_task: str | None = None
    active_project: str | None = None
    keywords: tuple[str, ...] | None = None
    clear: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatMessage:
    id: str
    role: str  # "user" | "assistant" | "system" | "tool"
    content: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Chat:
    id: str
    user_id: str
    messages: tuple[ChatMessage, ...]
    title: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskTemplate:
    id: str
    name: str
    description: str
    content: str
    variables: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    usage_count: int = 0
    last_used: datetime | None = None


@dataclass(frozen=True, slots=True)
class DocResult:
    id: str
    title: str
    summary: str
    content: str
    url: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FrequentItem:
    id: str
    type: str  # "code_snippet" | "template" | "task"
    title: str
    usage_count: int
    last_used: datetime
    content: Any = None
    language: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SuggestionsReceipt:
    created: tuple[str, ...]  # AIWFE ids of new suggestions
    duplicates: tuple[str, ...] = ()  # fingerprints AIWFE already had


@dataclass(frozen=True, slots=True)
class AIWFEAssetWrite:
    name: str
    content: str
    description: str | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AIWFEAsset:
    id: str
    name: str
    content: str
    version: int
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AIWFEHealth:
    healthy: bool
    version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class AIWFEClient(Protocol):
    """Calls of spec 4.3/4.4 (`AIWFEClient`). Failures raise AIPlatformError/UpstreamTimeout."""

    async def health_check(self) -> AIWFEHealth: ...

    async def get_user_context(self, user_id: str) -> AIWFEUserContext: ...

    async def update_user_context(
        self, user_id: str, update: AIWFEContextUpdate
    ) -> AIWFEUserContext: ...

    async def create_suggestions(
        self,
        user_id: str,
        *,
        asset_id: str,
        suggestions: Sequence[TaskSuggestion],
        idempotency_key: str | None,
    ) -> SuggestionsReceipt:
        """Retried only when `idempotency_key` is given."""
        ...

    async def get_chat(self, chat_id: str) -> Chat: ...

    async def get_task_templates(
        self,
        user_id: str,
        *,
        keywords: Sequence[str] = (),
        current_task: str | None = None,
        limit: int = 10,
    ) -> list[TaskTemplate]: ...

    async def search_documentation(self, query: str, *, limit: int = 5) -> list[DocResult]: ...

    async def get_user_frequent_items(
        self, user_id: str, *, types: Sequence[str] = (), limit: int = 10
    ) -> list[FrequentItem]: ...

    # Assets (the sync engine's AIWFE side): ids are chosen by us, so writes are idempotent.
    async def list_assets(self, user_id: str) -> list[AIWFEAsset]: ...

    async def get_asset(self, user_id: str, asset_id: str) -> AIWFEAsset | None: ...

    async def put_asset(
        self, user_id: str, asset_id: str, asset: AIWFEAssetWrite
    ) -> AIWFEAsset: ...

    async def delete_asset(self, user_id: str, asset_id: str) -> None:
        """Idempotent: an asset already gone is not an error."""
        ...
