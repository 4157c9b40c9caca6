"""The AIWFE webhook envelope (docs/aiwfe-contract.yaml, `webhooks`), parsed and checked.

Parsing is strict on the envelope (every delivery must be attributable and
de-duplicable) and lenient on `data` of event types we do not act on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pieces_integration.domain.errors import Conflict, InvalidInput

MAX_WEBHOOK_BODY_BYTES = 256 * 1024
_MAX_ID_LENGTH = 128  # the webhook_events.id column


class WebhookEventType(StrEnum):
    CHAT_MESSAGE_CREATED = "chat_message_created"
    TASK_CREATED = "task_created"
    OPPORTUNITY_CREATED = "opportunity_created"
    AGENT_SOLUTION_GENERATED = "agent_solution_generated"
    CONTEXT_UPDATED = "context_updated"


class WebhookPayloadTooLarge(InvalidInput):
    code = "payload_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"webhook body of {size} bytes exceeds {limit}", size=size, limit=limit)


class MalformedWebhookBody(InvalidInput):
    """The body is not JSON at all (as opposed to JSON of the wrong shape)."""

    code = "malformed_json"


class DuplicateWebhookEvent(Conflict):
    """This event id was already received; nothing was changed."""

    code = "duplicate_event"

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event {event_id!r} was already processed", details={"id": event_id})
        self.event_id = event_id


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: str
    type: str  # a WebhookEventType value, or an unknown type we accept and ignore
    created_at: datetime
    user_id: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def known_type(self) -> WebhookEventType | None:
        try:
            return WebhookEventType(self.type)
        except ValueError:
            return None


def _required_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{where}.{key} must be a non-empty string", field=f"{where}.{key}")
    if len(value) > _MAX_ID_LENGTH and key.endswith("id"):
        raise InvalidInput(f"{where}.{key} is too long", field=f"{where}.{key}")
    return value


def parse_webhook_event(body: bytes, *, max_bytes: int = MAX_WEBHOOK_BODY_BYTES) -> WebhookEvent:
    """Decode and validate a raw delivery body; raise InvalidInput (or its subclass) if unusable."""
    if len(body) > max_bytes:
        raise WebhookPayloadTooLarge(len(body), max_bytes)
    try:
        raw = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedWebhookBody("webhook body is not valid UTF-8 JSON", reason=str(exc)) from exc
    if not isinstance(raw, dict):
        raise InvalidInput("webhook body must be a JSON object")
    event_id = _required_str(raw, "id", "event")
    event_type = _required_str(raw, "type", "event")
    user_id = _required_str(raw, "user_id", "event")
    created_raw = _required_str(raw, "created_at", "event")
    try:
        created_at = datetime.fromisoformat(created_raw)
    except ValueError as exc:
        raise InvalidInput("event.created_at must be ISO 8601", field="event.created_at") from exc
    if created_at.tzinfo is None:
        raise InvalidInput("event.created_at needs a timezone", field="event.created_at")
    data = raw.get("data")
    if not isinstance(data, dict):
        raise InvalidInput("event.data must be an object", field="event.data")
    return WebhookEvent(event_id, event_type, created_at, user_id, data)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    id: str
    role: str
    content: str


def chat_message_of(event: WebhookEvent) -> tuple[str, ChatMessage]:
    """The (chat id, message) a `chat_message_created` event carries."""
    data = event.data
    chat_id = _required_str(data, "chat_id", "data")
    message = data.get("message")
    if not isinstance(message, dict):
        raise InvalidInput("data.message must be an object", field="data.message")
    content = message.get("content")
    if not isinstance(content, str):
        raise InvalidInput("data.message.content must be a string", field="data.message.content")
    return chat_id, ChatMessage(
        id=_required_str(message, "id", "data.message"),
        role=_required_str(message, "role", "data.message"),
        content=content,
    )
