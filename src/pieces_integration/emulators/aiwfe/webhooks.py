"""Build and deliver signed AIWFE webhook events, as AIWFE does (contract `webhooks`)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from pieces_integration.domain.webhook_signature import SIGNATURE_HEADER, sign
from pieces_integration.emulators.aiwfe.state import now_iso


def build_event(
    event_type: str, user_id: str, data: dict[str, Any], *, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "type": event_type,
        "created_at": now_iso(),
        "user_id": user_id,
        "data": data,
    }


def encode_event(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Delivery:
    event_id: str
    url: str
    status: int
    body: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "url": self.url,
            "status": self.status,
            "body": self.body,
        }


async def deliver(
    http: httpx.AsyncClient,
    url: str,
    event: dict[str, Any] | bytes,
    secrets: Sequence[str],
    *,
    timestamp: int | None = None,
    request_timeout: float = 10.0,
) -> Delivery:
    """POST one signed delivery (one v1 per secret) and report what the receiver said."""
    body = event if isinstance(event, bytes) else encode_event(event)
    header = sign(
        body, list(secrets), timestamp=int(time.time()) if timestamp is None else timestamp
    )
    response = await http.post(
        url,
        content=body,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: header},
        timeout=request_timeout,
    )
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text
    event_id = event.get("id", "") if isinstance(event, dict) else ""
    return Delivery(str(event_id), url, response.status_code, answer)
