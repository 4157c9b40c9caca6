"""ASGI middleware that records every HTTP request an emulator answered (for counting calls)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Call:
    target: str
    method: str
    path: str
    status: int
    idempotency_key: str | None = None


class Recorder:
    """Wraps an emulator's app; appends a `Call` for each HTTP request it answered."""

    def __init__(self, app: Any, target: str, calls: list[Call]) -> None:
        self.app, self.target, self.calls = app, target, calls

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, sending)
        key = dict(scope["headers"]).get(b"idempotency-key")
        self.calls.append(
            Call(
                self.target,
                scope["method"],
                scope["path"],
                status[0] if status else 0,
                key.decode() if key else None,
            )
        )
