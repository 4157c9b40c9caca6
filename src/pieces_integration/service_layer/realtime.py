"""Real-time delivery of the per-user event log to WebSocket sessions (spec 6.2).

One `RealtimeHub` per process reads the log's tail (every event, from every replica) and
hands each event to the sessions subscribed to its user. Guarantees:

- Order and no loss: a user's ids are consecutive, so the hub notices a missed message and
  re-reads the gap from the log; each subscription keeps a cursor and skips what it has
  already seen, so nothing is delivered twice.
- Resume: `subscribe` with `last_event_id` first replays what the client missed from the
  bounded history, or sends `reset` (reload your state) when the history no longer covers it.
- Bounded memory: each session has a send queue bounded in messages and bytes. A client
  that does not read fast enough is closed with 4008 rather than buffered without end; the
  others are not held up because only the slow session's own sender task waits on it.

Close codes:
    1000 normal            1008 origin not allowed      1009 message too big
    1011 internal error    1012 server restarting (after a `reconnect` message)
    4001 unauthorized      4008 slow consumer           4010 idle timeout

Server messages beyond 6.2: `subscribed` (ack with the cursor), `unsubscribed`, `reset`,
`heartbeat` (sent after `heartbeat_interval` of silence, so browsers can spot a dead
connection), `reconnect` (before a graceful shutdown). Every logged event carries `id` and
`timestamp` beside `type` and `payload`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from enum import IntEnum
from functools import partial
from typing import Any, Protocol

import anyio
import anyio.abc
import structlog

from pieces_integration.domain.auth import Principal
from pieces_integration.domain.errors import PiecesIntegrationError
from pieces_integration.domain.model import utcnow
from pieces_integration.ports.channel import Channel, ChannelClosed
from pieces_integration.ports.event_log import EventLog, LoggedEvent, TailLost
from pieces_integration.ports.sync import SyncTrigger

log = structlog.get_logger(__name__)


class CloseCode(IntEnum):
    NORMAL = 1000
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    UNAUTHORIZED = 4001
    SLOW_CONSUMER = 4008
    IDLE_TIMEOUT = 4010


@dataclass(frozen=True, slots=True)
class RealtimeLimits:
    send_queue_messages: int = 1000
    send_queue_bytes: int = 8 * 1024 * 1024
    max_message_bytes: int = 64 * 1024
    heartbeat_interval: float = 25.0
    idle_timeout: float = 120.0  # no client message (e.g. `ping`) for this long closes it
    reconcile_interval: float = 5.0  # how often heads are compared with the log
    # A slow consumer's close frame waits behind what its socket already holds; give the
    # client this long to read up to it before the transport is dropped (its queue is freed
    # at once, so the wait costs no memory).
    close_timeout: float = 5.0
    drain_timeout: float = 3.0


Batch = Callable[[], AbstractContextManager[None]]


class _Gauge(Protocol):
    def inc(self, amount: float = 1) -> None: ...
    def dec(self, amount: float = 1) -> None: ...


def control(kind: str, payload: dict[str, Any]) -> str:
    return json.dumps({"type": kind, "payload": payload}, separators=(",", ":"))


def error_message(code: str, message: str, details: dict[str, Any] | None = None) -> str:
    return control("error", {"code": code, "message": message, "details": details or {}})


@dataclass(slots=True, eq=False)
class _Subscription:
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
        if self.events is None or event.type in self.events:
            self.session.enqueue(event.wire)

    def reset(self, head: int, reason: str) -> None:
        self.cursor = head
        self.pending.clear()
        self.session.enqueue(
            control("reset", {"user_id": self.user_id, "last_event_id": head, "reason": reason})
        )


class _Feed:
    """One user's events on this replica: the last id delivered and who wants them."""

    __slots__ = ("batch", "last_id", "lock", "ready", "subscriptions", "user_id", "waiting")

    def __init__(self, user_id: str, batch: Batch = nullcontext) -> None:
        self.user_id = user_id
        self.batch = batch
        self.last_id = 0
        self.ready = asyncio.Event()
        self.waiting: list[LoggedEvent] = []  # arrived before `last_id` was known
        self.subscriptions: set[_Subscription] = set()
        self.lock = asyncio.Lock()

    def dispatch(self, event: LoggedEvent) -> None:
        self.last_id = event.id
        with self.batch():  # synchronous: nothing else writes to these sockets meanwhile
            for subscription in list(self.subscriptions):
                subscription.offer(event)

    def reset(self, head: int, reason: str) -> None:
        self.last_id = head
        for subscription in list(self.subscriptions):
            subscription.reset(head, reason)


class Session:
    """One client connection: its subscriptions and its bounded send queue."""

    def __init__(self, hub: RealtimeHub, channel: Channel, principal: Principal) -> None:
        self.hub = hub
        self.channel = channel
        self.principal = principal
        self.limits = hub.limits
        self.subscriptions: dict[str, _Subscription] = {}
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

    async def subscribe(
        self, user_id: str, events: frozenset[str] | None, last_event_id: int | None
    ) -> None:
        previous = self.subscriptions.pop(user_id, None)
        if previous is not None:
            self.hub._detach(previous)
        subscription = _Subscription(self, user_id, events)
        self.subscriptions[user_id] = subscription
        cursor, replayed, reset = await self.hub._attach(subscription, last_event_id)
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
        self.hub._detach(subscription)
        return True


MessageHandler = Callable[[Session, str], Awaitable[None]]


class RealtimeHub:
    def __init__(
        self,
        event_log: EventLog,
        limits: RealtimeLimits | None = None,
        *,
        gauge: _Gauge | None = None,
        batch: Batch = nullcontext,
    ) -> None:
        """`batch`: a context manager around each fan-out, inside which the channels may
        collect direct writes and perform them together at its end (see `Channel`)."""
        self.log = event_log
        self._batch = batch
        self.limits = limits or RealtimeLimits()
        self._gauge = gauge
        self._feeds: dict[str, _Feed] = {}
        self._sessions: set[Session] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._tail_ready = asyncio.Event()
        self._idle = asyncio.Event()  # set when the last session has ended
        self._accepting = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._tasks:
            raise RuntimeError("RealtimeHub.start() called twice; call stop() first")
        self._tail_ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._tail_loop(), name="realtime-tail"),
            asyncio.create_task(self._housekeeping_loop(), name="realtime-housekeeping"),
        ]
        try:
            await asyncio.wait_for(self._tail_ready.wait(), 2)
        except TimeoutError:
            # Redis is not answering yet: the service still starts (readiness reports the
            # cause) and the tail keeps retrying; clients resume from ids once it is back.
            log.warning("realtime tail not ready at start-up; still retrying")
        self._accepting = True

    async def drain(self, reason: str = "server_shutdown") -> None:
        """Tell every client to reconnect elsewhere, then close with 1012."""
        self._accepting = False
        for session in list(self._sessions):
            if session.closing:
                continue
            # Jitter spreads the reconnect storm over the remaining replicas.
            retry_ms = random.randint(100, 2000)
            session.enqueue(
                control("reconnect", {"reason": reason, "retry_after_ms": retry_ms}), force=True
            )
            session.finish(CloseCode.SERVICE_RESTART, "server restarting; reconnect")
        if self._sessions:
            self._idle.clear()
            try:
                await asyncio.wait_for(
                    self._idle.wait(), self.limits.drain_timeout + self.limits.close_timeout + 1
                )
            except TimeoutError:
                log.warning("sessions still open after drain", count=len(self._sessions))

    async def stop(self) -> None:
        await self.drain()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []

    def stats(self) -> dict[str, int]:
        queued = [session.queued for session in self._sessions]
        return {
            "sessions": len(self._sessions),
            "closing": sum(session.closing for session in self._sessions),
            "feeds": len(self._feeds),
            "queued_messages": sum(n for n, _ in queued),
            "queued_bytes": sum(b for _, b in queued),
        }

    # -- sessions ----------------------------------------------------------------------

    async def serve(self, channel: Channel, principal: Principal, handle: MessageHandler) -> None:
        """Run one accepted connection until either side ends it; then close the channel."""
        session = Session(self, channel, principal)
        if not self._accepting:
            await self._close(session, CloseCode.SERVICE_RESTART, "server restarting; reconnect")
            return
        self._sessions.add(session)
        if self._gauge is not None:
            self._gauge.inc()
        try:
            async with anyio.create_task_group() as group:
                session._group = group
                group.start_soon(session._guard, session._send_loop)
                group.start_soon(session._guard, partial(self._receive_loop, session, handle))
                await session._closing.wait()
                if session._flush and not session.peer_gone:
                    with anyio.move_on_after(self.limits.drain_timeout):
                        await session._empty.wait()
                group.cancel_scope.cancel()
            if not session.peer_gone:
                await self._close(session, session.close_code, session.close_reason)
        finally:
            for subscription in list(session.subscriptions.values()):
                self._detach(subscription)
            session.subscriptions.clear()
            self._sessions.discard(session)
            if not self._sessions:
                self._idle.set()
            if self._gauge is not None:
                self._gauge.dec()

    async def _close(self, session: Session, code: CloseCode, reason: str) -> None:
        try:
            with anyio.move_on_after(self.limits.close_timeout):
                await session.channel.close(int(code), reason)
        except (ChannelClosed, RuntimeError, OSError):
            pass  # the peer is gone or not reading; the transport is dropped anyway

    async def _receive_loop(self, session: Session, handle: MessageHandler) -> None:
        while True:
            message = await session.channel.receive()
            session.last_received = time.monotonic()
            if isinstance(message, bytes):
                session.send_error("invalid_message", "send JSON text frames, not binary")
                continue
            if len(message) > self.limits.max_message_bytes:
                # Counted in characters, which is at most the byte length of the frame.
                session.abort(
                    CloseCode.MESSAGE_TOO_BIG,
                    f"message larger than {self.limits.max_message_bytes} bytes",
                )
                return
            await handle(session, message)

    # -- subscriptions -----------------------------------------------------------------

    async def _feed(self, user_id: str) -> _Feed:
        while True:
            feed = self._feeds.get(user_id)
            if feed is None:
                return await self._open_feed(user_id)
            await feed.ready.wait()
            if self._feeds.get(user_id) is feed:
                return feed

    async def _open_feed(self, user_id: str) -> _Feed:
        feed = _Feed(user_id, self._batch)
        self._feeds[user_id] = feed
        try:
            feed.last_id = await self.log.head(user_id)
        except BaseException:
            self._feeds.pop(user_id, None)
            feed.ready.set()
            raise
        waiting, feed.waiting = feed.waiting, []
        feed.ready.set()
        for event in waiting:
            await self._offer(feed, event)
        return feed

    async def _attach(
        self, subscription: _Subscription, last_event_id: int | None
    ) -> tuple[int, int, bool]:
        """Join the user's feed; replay from `last_event_id`. Returns (cursor, replayed, reset)."""
        feed = await self._feed(subscription.user_id)
        # Join first and buffer, then read the history: every event is in one or the other.
        feed.subscriptions.add(subscription)
        if last_event_id is None:
            subscription.cursor = feed.last_id
            replayed, reset = 0, False
        else:
            replay = await self.log.read_after(subscription.user_id, last_event_id)
            if replay.reset:
                subscription.reset(replay.head, "history_gap")
                replayed, reset = 0, True
            else:
                subscription.cursor = last_event_id
                wanted = subscription.events
                replayed, reset = 0, False
                for event in replay.events:
                    subscription.cursor = event.id
                    if wanted is None or event.type in wanted:
                        # The history is bounded, so a replay may exceed the live queue bound.
                        subscription.session.enqueue(event.wire, force=True)
                        replayed += 1
                subscription.cursor = max(subscription.cursor, replay.head)
        pending, subscription.pending = subscription.pending, []
        subscription.catching_up = False
        for event in pending:
            subscription.offer(event)
        return subscription.cursor, replayed, reset

    def _detach(self, subscription: _Subscription) -> None:
        feed = self._feeds.get(subscription.user_id)
        if feed is None:
            return
        feed.subscriptions.discard(subscription)
        if not feed.subscriptions and feed.ready.is_set():
            del self._feeds[subscription.user_id]

    # -- the tail ----------------------------------------------------------------------

    async def _offer(self, feed: _Feed, event: LoggedEvent) -> None:
        if event.id <= feed.last_id:
            return
        if event.id == feed.last_id + 1:
            feed.dispatch(event)
            return
        await self._catch_up(feed, upto=event)

    async def _catch_up(self, feed: _Feed, upto: LoggedEvent | None = None) -> None:
        """Fill a gap in the feed from the log (a lost or reordered message)."""
        async with feed.lock:
            replay = await self.log.read_after(feed.user_id, feed.last_id)
            if replay.reset:
                feed.reset(replay.head, "history_gap")
            for event in replay.events:
                if event.id > feed.last_id:
                    feed.dispatch(event)
            if upto is not None and upto.id > feed.last_id:
                feed.dispatch(upto)

    async def _tail_loop(self) -> None:
        while True:
            try:
                async with self.log.tail() as tail:
                    self._tail_ready.set()
                    await self._reconcile()
                    await self._follow(tail)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep serving; the reconcile after reconnect fills gaps
                log.warning("event tail failed; reconnecting", error=repr(exc))
                await asyncio.sleep(1.0)

    async def _follow(self, tail: Any) -> None:
        next_reconcile = time.monotonic() + self.limits.reconcile_interval
        while True:
            try:
                event = await tail.get(max_wait=max(0.0, next_reconcile - time.monotonic()))
            except TailLost:
                await self._reconcile()
                continue
            if event is not None:
                feed = self._feeds.get(event.user_id)
                if feed is not None:
                    if feed.ready.is_set():
                        await self._offer(feed, event)
                    else:
                        feed.waiting.append(event)
            if time.monotonic() >= next_reconcile:
                await self._reconcile()
                next_reconcile = time.monotonic() + self.limits.reconcile_interval

    async def _reconcile(self) -> None:
        """Catch up every feed whose head in the log is past what it delivered."""
        feeds = [feed for feed in self._feeds.values() if feed.ready.is_set()]
        if not feeds:
            return
        heads = await self.log.heads([feed.user_id for feed in feeds])
        for feed in feeds:
            if heads.get(feed.user_id, feed.last_id) != feed.last_id:
                await self._catch_up(feed)

    async def _housekeeping_loop(self) -> None:
        limits = self.limits
        tick = max(0.02, min(1.0, limits.heartbeat_interval / 4, limits.idle_timeout / 4))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for session in list(self._sessions):
                if now - session.last_received > limits.idle_timeout:
                    session.abort(CloseCode.IDLE_TIMEOUT, "idle timeout: send ping regularly")
                elif now - session.last_sent > limits.heartbeat_interval and not session.queued[0]:
                    session.last_sent = now
                    session.enqueue(control("heartbeat", {"timestamp": utcnow().isoformat()}))


Publish = Callable[[str, str, dict[str, Any]], Awaitable[object]]


async def run_sync_request(
    session: Session, trigger: SyncTrigger, publish: Publish, user_id: str, *, force: bool
) -> None:
    """Ask the sync engine for a sync; publish `sync_completed` to all the user's clients."""
    try:
        result = await trigger.request_sync(user_id, force=force)
    except PiecesIntegrationError as exc:
        session.send_error(exc.code, exc.message, exc.details)
        return
    except Exception as exc:
        log.error("sync request failed", user_id=user_id, error=repr(exc))
        session.send_error("sync_failed", "the sync could not be run", {})
        return
    if result.get("announced"):
        return  # the engine already published `sync_completed` to every subscriber
    changes = result.get("changes") or {}
    moved = int(changes.get("pieces_to_aiwfe", 0)) + int(changes.get("aiwfe_to_pieces", 0))
    await publish(
        user_id,
        "sync_completed",
        {
            "user_id": user_id,
            "changes_count": moved,
            "errors": result.get("errors", []),
            "sync_id": result.get("sync_id"),
            "status": result.get("status"),
            "changes": changes,
            "started_at": result.get("started_at"),
            "completed_at": result.get("completed_at"),
        },
    )
