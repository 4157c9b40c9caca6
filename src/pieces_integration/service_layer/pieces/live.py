"""The live Pieces connections of this replica: one client, identifier stream and state
machine per user. `PiecesConnections` is used with `async with` (the app lifespan), so every
stream task is stopped on shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from pieces_integration.domain.connection_state import (
    ConnectionState,
    ConnectionStateChanged,
    ConnectionStateMachine,
    FailureKind,
)
from pieces_integration.domain.errors import (
    PiecesIntegrationError,
    PiecesOSUnavailable,
    UpstreamTimeout,
)
from pieces_integration.ports.pieces import EventPublisher, PiecesOS
from pieces_integration.service_layer.pieces.results import ConnectionResult, PiecesInfo

log = structlog.get_logger(__name__)
StreamFactory = Callable[[PiecesOS, "LiveConnection"], Any]  # returns an IdentifierStream


@dataclass(eq=False)
class LiveConnection:
    """One user's live link; it is the stream's observer and drives the state machine."""

    user_id: str
    machine: ConnectionStateMachine
    publish: EventPublisher
    client: PiecesOS | None = None
    stream: Any = None
    info: PiecesInfo | None = None
    events: list[ConnectionStateChanged] = field(default_factory=list)
    # Set when the user's connect failed before any stream ran: how "Retry" connects again.
    redial: Callable[[], Awaitable[ConnectionResult]] | None = None

    async def emit(self, event: ConnectionStateChanged) -> None:
        self.events.append(event)
        await self.publish(event)

    async def attempt_starting(self) -> None:
        if self.machine.state is ConnectionState.DISCONNECTED:
            await self.emit(self.machine.start_attempt())

    async def opened(self) -> None:
        if self.machine.state is ConnectionState.CONNECTING:
            # Back after an interruption: Pieces OS may have restarted and forgotten our
            # application, so register again before calling it connected. If Pieces OS cannot
            # answer (5xx, timeout, refused) this attempt failed like any other, with that
            # failure's message, and the stream retries; any other refusal is logged and the
            # stream, still useful, carries on.
            if self.client is not None:
                try:
                    await self.client.connect()
                except (PiecesOSUnavailable, UpstreamTimeout):
                    raise
                except PiecesIntegrationError as exc:
                    log.warning("pieces_reregister_failed", user_id=self.user_id, error=repr(exc))
            await self.emit(self.machine.succeeded())

    async def failed(self, kind: FailureKind, detail: str) -> float | None:
        state = self.machine.state
        if state is ConnectionState.CONNECTED:
            event = self.machine.lost(kind, detail)
        elif state is ConnectionState.CONNECTING:
            event = self.machine.attempt_failed(kind, detail)
        else:  # a user disconnect raced the stream
            return None
        await self.emit(event)
        return event.retry_in

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
            self.stream = None
        if self.client is not None:
            await self.client.aclose()
            self.client = None


class PiecesConnections:
    """Registry of live connections; `async with` it (the app lifespan) to stop them all."""

    def __init__(
        self,
        *,
        publish: EventPublisher,
        stream_factory: StreamFactory | None = None,
        max_attempts: int = 10,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
    ) -> None:
        self._publish = publish
        self._stream_factory = stream_factory
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._live: dict[str, LiveConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, user_id: str) -> asyncio.Lock:
        """Serialises connect/disconnect of one user (two quick clicks must not race)."""
        return self._locks.setdefault(user_id, asyncio.Lock())

    async def __aenter__(self) -> PiecesConnections:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for user_id in list(self._live):
            await self.drop(user_id)

    def get(self, user_id: str) -> LiveConnection | None:
        return self._live.get(user_id)

    def fresh(self, user_id: str) -> LiveConnection:
        machine = ConnectionStateMachine(
            user_id,
            max_attempts=self._max_attempts,
            base_delay=self._base_delay,
            max_delay=self._max_delay,
        )
        live = LiveConnection(user_id=user_id, machine=machine, publish=self._publish)
        self._live[user_id] = live
        return live

    def start_stream(self, live: LiveConnection) -> None:
        if self._stream_factory is None or live.client is None:
            return
        live.stream = self._stream_factory(live.client, live)
        live.stream.start()

    async def drop(self, user_id: str) -> LiveConnection | None:
        live = self._live.pop(user_id, None)
        if live is not None:
            await live.close()
        return live
