"""Fault injection for the emulator: latency, error rate, 500/503, hung requests, dropped
streams, a skewed clock.

Faults apply to every Pieces route, never to the `/_emulator` control routes, so a test can
always lift them. Refused connections are not an ASGI matter: the server stops listening
(see `server.EmulatorServer.refuse_connections`).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass, fields
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

CONTROL_PREFIX = "/_emulator"


@dataclass(slots=True)
class FaultConfig:
    latency_ms: float = 0.0  # added before every answer
    error_rate: float = 0.0  # probability that a request fails with `error_status`
    error_status: int = 503  # 500 or 503
    fail_next: int = 0  # the next N requests fail with `error_status` (deterministic)
    hang: bool = False  # requests hang until the fault is lifted
    drop_websockets_after: float | None = None  # seconds a stream lives before it is cut
    reject_websockets: bool = False  # stream handshakes fail (as an older POS's 404 would)
    signed_out: bool = False  # GET /user answers {"user": null}
    clock_skew_seconds: float = 0.0  # this Pieces OS's clock runs ahead (+) or behind (-)

    def update(self, changes: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown fault(s): {sorted(unknown)}")
        for name, value in changes.items():
            setattr(self, name, value)
        if self.error_status not in (500, 502, 503, 504):
            raise ValueError("error_status must be 500, 502, 503 or 504")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        if not abs(self.clock_skew_seconds) <= 86_400 * 365:
            raise ValueError("clock_skew_seconds must be within a year")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    """Holds the live fault configuration and wakes hung requests when it changes."""

    def __init__(self, config: FaultConfig | None = None, *, seed: int = 0) -> None:
        self.config = config or FaultConfig()
        # bandit B311: seeded fault schedule of the test emulator, not a secret.
        self._rng = random.Random(seed)  # nosec B311
        self._changed = asyncio.Event()
        self.requests_seen = 0
        self.failures_injected = 0

    def apply(self, changes: dict[str, Any]) -> None:
        self.config.update(changes)
        self._wake()

    def clear(self) -> None:
        self.config = FaultConfig()
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def hold_while_hung(self) -> None:
        while self.config.hang:
            await self._changed.wait()

    def should_fail(self) -> bool:
        if self.config.fail_next > 0:
            self.config.fail_next -= 1
            return True
        return self.config.error_rate > 0 and self._rng.random() < self.config.error_rate


class FaultMiddleware:
    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        injector = self.injector
        injector.requests_seen += 1
        config = injector.config
        if config.latency_ms > 0:
            await asyncio.sleep(config.latency_ms / 1000)
        await injector.hold_while_hung()
        if scope["type"] == "websocket":
            if injector.config.reject_websockets:
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        if injector.should_fail():
            injector.failures_injected += 1
            status = injector.config.error_status
            body = b"Service Unavailable" if status == 503 else b"Internal Server Error"
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
