"""Commands: writes toward a remote side, decided by the core and carried by the outbox.

Each command has a deterministic idempotency key, so producing it twice (a redelivered
webhook, a chat polled again) stores one outbox message and causes one remote write.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from pieces_integration.domain.code_findings import TaskSuggestion
from pieces_integration.domain.model import Asset, AssetSource, OutboxMessage, Side
from pieces_integration.domain.outbox import OutboxOperation

AIWFE_CHAT_TAG = "aiwfe-chat"
_ASSET_NAMESPACE = uuid.UUID("6f1c2b8e-3d4a-5e6f-8a9b-0c1d2e3f4a5b")


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class CreatePiecesAsset:
    """Store an asset that came from AIWFE and queue its creation in Pieces (spec 4.3
    shareChatInsights).

    The asset id derives from the idempotency key, so the same snippet of the same chat
    message always maps to the same row: seeing it again finds the row and does nothing.
    The outbox message has the shape every `asset.create` toward Pieces has (see
    `service_layer/assets.py`), so one delivery path serves both.
    """

    OPERATION = OutboxOperation.ASSET_CREATE

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

    @property
    def asset_id(self) -> str:
        return str(uuid.uuid5(_ASSET_NAMESPACE, self.idempotency_key))

    def to_asset(self) -> Asset:
        return Asset(
            id=self.asset_id,
            user_id=self.user_id,
            name=self.name,
            content=self.content,
            source=self.source,
            description=self.description,
            language=self.language,
            tags=list(self.tags),
            source_id=self.source_id,
            metadata=dict(self.metadata),
        )

    def to_outbox(self, asset: Asset) -> OutboxMessage:
        return OutboxMessage(
            user_id=self.user_id,
            target=Side.PIECES.value,
            operation=self.OPERATION,
            aggregate_id=asset.id,
            payload={
                "asset_id": asset.id,
                "version": asset.version,
                "content_hash": asset.content_hash,
                "remote_id": None,
            },
            idempotency_key=f"{Side.PIECES.value}:{self.OPERATION}:{asset.id}:{asset.version}",
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

    OPERATION = OutboxOperation.CREATE_SUGGESTION

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
