"""One WebSocket client: its subscriptions and its bounded send queue.

A session's queue is bounded in messages and bytes. A client that does not read fast
enough is closed with 4008 rather than buffered without end; the others are not held up,
because only the slow session's own sender task waits on its socket.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import anyio
import anyio.abc
import structlog

from pieces_integration.domain.auth import Principal
from pieces_integration.ports.channel import Channel, ChannelClosed
from pieces_integration.ports.event_log import LoggedEvent
from pieces_integration.service_layer.realtime_protocol import (
    CloseCode,
    RealtimeLimits,
    control,
    error_message,
)

log = structlog.get_logger(__name__)

MessageHandler = Callable[["Session", str], Awaitable[None]]


class FeedRegistry(Protocol):
    """Where a session's subscriptions join their user's feed (the `RealtimeHub`)."""

    limits: RealtimeLimits

    async def attach(
        self, subscription: UserSubscription, last_event_id: int | None
    ) -> tuple[int, int, bool]: ...

    def detach(self, subscription: UserSubscription) -> None: ...

    def allows(self, user_id: str, event_type: str) -> bool: ...


@dataclass(slots=True, eq=False)
class UserSubscription:
    """A session's interest in one user's events, with the cursor of what it has seen."""

    session: Session
    user_id: str
    events: frozenset[str] | None
    cursor: int = 0
    catching_up: bool = True
    pending: list[LoggedEvent] = field(default_factory=list)

    def offer(self, event: LoggedEvent) -> None:
        if self.catching_up:
            if len(self.pending) >= self.session.limits.send_queue_messages:
                self.session.abort(CloseCode.SLOW_CONSUMER, "send queue overflow")
                return
            self.pending.append(event)
            return
        if event.id <= self.cursor:
            return
        self.cursor = event.id
        if (self.events is None or event.type in self.events) and self.session.hub.allows(
            self.user_id, event.type
        ):
            self.session.enqueue(event.wire)

    def reset(self, head: int, reason: str) -> None:
        self.cursor = head
        self.pending.clear()
        self.session.enqueue(
            control("reset", {"user_id": self.user_id, "last_event_id": head, "reason": reason})
        )


class Session:
    """One client connection: its subscriptions and its bounded send queue."""

    def __init__(self, hub: FeedRegistry, channel: Channel, principal: Principal) -> None:
        self.hub = hub
        self.channel = channel
        self.principal = principal
        self.limits = hub.limits
        self.subscriptions: dict[str, UserSubscription] = {}
        self._queue: deque[str] = deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._closing = asyncio.Event()
        self.close_code = CloseCode.NORMAL
        self.close_reason = ""
        self._flush = False
        self._sending = False  # a `send_text` is in flight (the queue may look empty)
        now = time.monotonic()
        self.last_received = now
        self.last_sent = now
        self._group: anyio.abc.TaskGroup | None = None
        self._running = 0
        self.peer_gone = False

    @property
    def queued(self) -> tuple[int, int]:
        return len(self._queue), self._queued_bytes

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def enqueue(self, text: str, *, force: bool = False) -> None:
        if self._closing.is_set() and not force:
            return
        # Nothing ahead of it (queued or being sent): straight to the socket if it can take
        # it now. This is the common case of a fan-out and costs no task wake-up.
        if not self._queue and not self._sending and self.channel.send_nowait(text):
            self.last_sent = time.monotonic()
            return
        size = len(text)
        if not force and (
            len(self._queue) >= self.limits.send_queue_messages
            or self._queued_bytes + size > self.limits.send_queue_bytes
        ):
            self.abort(CloseCode.SLOW_CONSUMER, "slow consumer: send queue full")
            return
        self._queue.append(text)
        self._queued_bytes += size
        self._empty.clear()
        self._wake.set()

    def send_error(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        self.enqueue(error_message(code, message, details))

    def abort(self, code: CloseCode, reason: str) -> None:
        """Close without flushing what is queued (the peer is the problem)."""
        if self._closing.is_set():
            return
        self.close_code, self.close_reason, self._flush = code, reason, False
        self._queue.clear()
        self._queued_bytes = 0
        self._empty.set()
        self._closing.set()

    def finish(self, code: CloseCode, reason: str) -> None:
        """Close after the queue is sent (bounded by `drain_timeout`)."""
        if self._closing.is_set():
            return
        self.close_code, self.close_reason, self._flush = code, reason, True
        self._closing.set()

    def spawn(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` beside the receive loop; cancelled when the session ends."""
        if self._group is None:
            raise RuntimeError("Session.spawn() needs a running session (inside RealtimeHub.serve)")
        self._running += 1

        async def run() -> None:
            try:
                await work()
            finally:
                self._running -= 1

        self._group.start_soon(run)

    @property
    def busy(self) -> bool:
        return self._running > 0

    # -- running -----------------------------------------------------------------------

    async def run(self, handle: MessageHandler) -> None:
        """Send and receive until either side ends the session (flushing first if asked)."""
        async with anyio.create_task_group() as group:
            self._group = group
            group.start_soon(self._guard, self._send_loop)
            group.start_soon(self._guard, partial(self._receive_loop, handle))
            await self._closing.wait()
            if self._flush and not self.peer_gone:
                with anyio.move_on_after(self.limits.drain_timeout):
                    await self._empty.wait()
            group.cancel_scope.cancel()

    async def close_channel(self, code: CloseCode, reason: str) -> None:
        try:
            with anyio.move_on_after(self.limits.close_timeout):
                await self.channel.close(int(code), reason)
        except (ChannelClosed, RuntimeError, OSError):
            pass  # the peer is gone or not reading; the transport is dropped anyway

    async def _guard(self, loop: Callable[[], Awaitable[None]]) -> None:
        """Run one of the session's loops; however it ends, the session ends."""
        try:
            await loop()
        except ChannelClosed:
            self.peer_gone = True
            self.abort(CloseCode.NORMAL, "peer closed")
        except Exception as exc:
            log.error("websocket session failed", error=repr(exc))
            self.abort(CloseCode.INTERNAL_ERROR, "internal error")
        else:
            self.abort(self.close_code, self.close_reason)

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            while self._queue:
                text = self._queue.popleft()
                self._queued_bytes -= len(text)
                self._sending = True
                try:
                    await self.channel.send_text(text)
                finally:
                    self._sending = False
                self.last_sent = time.monotonic()
            self._wake.clear()
            self._empty.set()

    async def _receive_loop(self, handle: MessageHandler) -> None:
        while True:
            message = await self.channel.receive()
            self.last_received = time.monotonic()
            if isinstance(message, bytes):
                self.send_error("invalid_message", "send JSON text frames, not binary")
                continue
            if len(message) > self.limits.max_message_bytes:
                # Counted in characters, which is at most the byte length of the frame.
                self.abort(
                    CloseCode.MESSAGE_TOO_BIG,
                    f"message larger than {self.limits.max_message_bytes} bytes",
                )
                return
            await handle(self, message)

    # -- subscriptions -----------------------------------------------------------------

    async def subscribe(
        self, user_id: str, events: frozenset[str] | None, last_event_id: int | None
    ) -> None:
        previous = self.subscriptions.pop(user_id, None)
        if previous is not None:
            self.hub.detach(previous)
        subscription = UserSubscription(self, user_id, events)
        self.subscriptions[user_id] = subscription
        cursor, replayed, reset = await self.hub.attach(subscription, last_event_id)
        self.enqueue(
            control(
                "subscribed",
                {
                    "user_id": user_id,
                    "events": sorted(events) if events is not None else None,
                    "last_event_id": cursor,
                    "replayed": replayed,
                    "reset": reset,
                },
            )
        )

    def unsubscribe(self, user_id: str) -> bool:
        subscription = self.subscriptions.pop(user_id, None)
        if subscription is None:
            return False
        self.hub.detach(subscription)
        return True
