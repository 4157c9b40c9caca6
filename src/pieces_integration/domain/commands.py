"""Commands: writes toward a remote side, decided by the core and carried by the outbox.

Each command has a deterministic idempotency key, so producing it twice (a redelivered
webhook, a chat polled again) stores one outbox message and causes one remote write.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pieces_integration.domain.code_findings import TaskSuggestion
from pieces_integration.domain.model import AssetSource, OutboxMessage

AIWFE_CHAT_TAG = "aiwfe-chat"


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class CreatePiecesAsset:
    """Create a Pieces asset from AIWFE content (spec 4.3 shareChatInsights)."""

    OPERATION = "create_asset"

    user_id: str
    name: str
    content: str
    language: str | None
    description: str
    tags: tuple[str, ...]
    source_id: str  # the AIWFE chat id
    idempotency_key: str
    source: AssetSource = AssetSource.AIWFE
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_outbox(self) -> OutboxMessage:
        return OutboxMessage(
            user_id=self.user_id,
            target="pieces",
            operation=self.OPERATION,
            payload=self.to_payload(),
            idempotency_key=self.idempotency_key,
            aggregate_id=self.source_id,
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "content": self.content,
            "language": self.language,
            "description": self.description,
            "tags": list(self.tags),
            "source": self.source.value,
            "source_id": self.source_id,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_outbox(cls, message: OutboxMessage) -> CreatePiecesAsset:
        p = message.payload
        return cls(
            user_id=message.user_id,
            name=str(p["name"]),
            content=str(p["content"]),
            language=p.get("language"),
            description=str(p.get("description") or ""),
            tags=tuple(p.get("tags") or ()),
            source_id=str(p["source_id"]),
            idempotency_key=message.idempotency_key,
            source=AssetSource(p.get("source", AssetSource.AIWFE.value)),
            metadata=dict(p.get("metadata") or {}),
        )


def chat_snippet_key(chat_id: str, message_id: str, code_fingerprint: str) -> str:
    """One asset per (chat, message, normalised code), however often the chat is seen."""
    return "aiwfe-chat:" + _short_hash(chat_id, message_id, code_fingerprint)


@dataclass(frozen=True, slots=True)
class CreateAIWFESuggestion:
    """Send one task suggestion found in a Pieces asset to AIWFE (spec 4.3 suggestAIWFEActions).

    One command per finding, keyed by the finding's fingerprint (asset, line, kind,
    text): when an asset changes, findings already sent are recognised and dropped by
    the outbox, and only new ones travel.
    """

    OPERATION = "create_suggestion"

    user_id: str
    asset_id: str
    suggestion: TaskSuggestion

    @property
    def idempotency_key(self) -> str:
        return "aiwfe-suggestion:" + self.suggestion.fingerprint

    def to_payload(self) -> dict[str, Any]:
        s = self.suggestion
        return {
            "asset_id": self.asset_id,
            "suggestion": {
                "type": s.type,
                "title": s.title,
                "description": s.description,
                "priority": s.priority,
                "source": s.source,
                "line": s.line,
                "kind": s.kind,
                "fingerprint": s.fingerprint,
            },
        }

    def to_outbox(self) -> OutboxMessage:
        return OutboxMessage(
            user_id=self.user_id,
            target="aiwfe",
            operation=self.OPERATION,
            payload=self.to_payload(),
            idempotency_key=self.idempotency_key,
            aggregate_id=self.asset_id,
        )

    @classmethod
    def from_outbox(cls, message: OutboxMessage) -> CreateAIWFESuggestion:
        p = message.payload
        s = p["suggestion"]
        return cls(
            user_id=message.user_id,
            asset_id=str(p["asset_id"]),
            suggestion=TaskSuggestion(
                type=s["type"],
                title=s["title"],
                description=s["description"],
                priority=s["priority"],
                source=s["source"],
                line=int(s["line"]),
                kind=s["kind"],
                fingerprint=s["fingerprint"],
            ),
        )


@dataclass(frozen=True, slots=True)
class ApplyAIWFEContextChange:
    """AIWFE reported a context change (task, opportunity, context); merge it into ours."""

    OPERATION = "apply_aiwfe_context"

    user_id: str
    changes: dict[str, Any]  # UserContext field -> new value
    event_id: str

    def to_outbox(self) -> OutboxMessage:
        return OutboxMessage(
            user_id=self.user_id,
            target="events",
            operation=self.OPERATION,
            payload={"changes": dict(self.changes), "event_id": self.event_id},
            idempotency_key=f"aiwfe-context:{self.event_id}",
            aggregate_id=self.user_id,
        )
