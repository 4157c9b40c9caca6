"""Calls to a bridge held by another replica, over the event bus (Redis with several
replicas): each replica listens on its own channel; a call goes to the holder's channel and
its answer comes back on the caller's, the body cut in parts so no message is huge.

    {"op": "req", "rid", "origin", "user_id", "bridge_id", "method", "path", ...}
    {"op": "res", "rid", "status", "content_type", "headers", "parts"}  then parts
    {"op": "part", "rid", "i", "data": base64}
    {"op": "err", "rid", "error": "unavailable" | "timeout" | "upstream", "kind", "message"}
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any

from pieces_integration.domain.errors import PiecesOSUnavailable, UpstreamError, UpstreamTimeout
from pieces_integration.ports.infrastructure import EventBus
from pieces_integration.ports.pieces import TransportResponse

PART_SIZE = 1024 * 1024


def channel_of(replica: str) -> str:
    return f"bridge:replica:{replica}"


def error_message(rid: str, exc: Exception) -> dict[str, Any]:
    kind = str(getattr(exc, "details", {}).get("kind", "network"))
    message = getattr(exc, "message", str(exc))
    if isinstance(exc, UpstreamTimeout):
        error = "timeout"
    elif isinstance(exc, PiecesOSUnavailable):
        error = "unavailable"
    else:
        error = "upstream"
    return {"op": "err", "rid": rid, "error": error, "kind": kind, "message": message}


def error_from(message: dict[str, Any]) -> UpstreamError:
    text, kind = str(message.get("message", "")), str(message.get("kind", "network"))
    if message.get("error") == "timeout":
        return UpstreamTimeout(text, upstream="pieces_os", kind=kind)
    if message.get("error") == "unavailable":
        return PiecesOSUnavailable(text, kind=kind)
    return UpstreamError(text, upstream="pieces_os", kind=kind)


def response_messages(rid: str, response: TransportResponse) -> list[bytes]:
    body = response.body
    parts = [body[i : i + PART_SIZE] for i in range(0, len(body), PART_SIZE)]
    head = {
        "op": "res",
        "rid": rid,
        "status": response.status,
        "content_type": response.content_type,
        "headers": dict(response.headers),
        "parts": len(parts),
    }
    out = [json.dumps(head).encode()]
    for index, part in enumerate(parts):
        data = base64.b64encode(part).decode()
        out.append(json.dumps({"op": "part", "rid": rid, "i": index, "data": data}).encode())
    return out


@dataclass(eq=False)
class PendingRelay:
    done: asyncio.Future[TransportResponse]
    head: dict[str, Any] | None = None
    parts: dict[int, bytes] = field(default_factory=dict)

    def feed(self, message: dict[str, Any]) -> None:
        if self.done.done():
            return
        op = message.get("op")
        if op == "err":
            self.done.set_exception(error_from(message))
            return
        if op == "res":
            self.head = message
        elif op == "part":
            self.parts[int(message["i"])] = base64.b64decode(message["data"])
        head = self.head
        if head is not None and len(self.parts) == int(head["parts"]):
            body = b"".join(self.parts[i] for i in range(len(self.parts)))
            self.done.set_result(
                TransportResponse(
                    status=int(head["status"]),
                    content_type=str(head["content_type"]),
                    body=body,
                    headers=dict(head.get("headers") or {}),
                )
            )


async def publish_all(bus: EventBus, channel: str, messages: list[bytes]) -> None:
    for message in messages:
        await bus.publish(channel, message)
