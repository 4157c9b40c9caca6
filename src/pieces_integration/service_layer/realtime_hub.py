"""Real-time delivery of the per-user event log to WebSocket sessions (spec 6.2).

One `RealtimeHub` per process reads the log's tail (every event, from every replica) and
hands each event to the sessions subscribed to its user (`realtime_session.Session`, whose
send queues are bounded). Guarantees:

- Order and no loss: a user's ids are consecutive, so the hub notices a missed message and
  re-reads the gap from the log; each subscription keeps a cursor and skips what it has
  already seen, so nothing is delivered twice.
- Resume: `subscribe` with `last_event_id` first replays what the client missed from the
  bounded history, or sends `reset` (reload your state) when the history no longer covers it.

Close codes and control messages: `realtime_protocol`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

import structlog

from pieces_integration.domain.auth import Principal
from pieces_integration.domain.model import utcnow
from pieces_integration.ports.channel import Channel
from pieces_integration.ports.event_log import EventLog, LoggedEvent, TailLost
from pieces_integration.service_layer.realtime_protocol import CloseCode, RealtimeLimits, control
from pieces_integration.service_layer.realtime_session import (
    MessageHandler,
    Session,
    UserSubscription,
)
from pieces_integration.service_layer.revocation import Revocations

log = structlog.get_logger(__name__)

Batch = Callable[[], AbstractContextManager[None]]


class PushFilter(Protocol):
    """The users' notification preferences (`notification_gate.NotificationGate`)."""

    async def load(self, user_id: str) -> object: ...
    def stale(self, user_id: str) -> bool: ...
    def pushes(self, user_id: str, event_type: str) -> bool: ...


class _Gauge(Protocol):
    def inc(self, amount: float = 1) -> None: ...
    def dec(self, amount: float = 1) -> None: ...


class _Feed:
    """One user's events on this replica: the last id delivered and who wants them."""

    __slots__ = ("batch", "last_id", "lock", "ready", "subscriptions", "user_id", "waiting")

    def __init__(self, user_id: str, batch: Batch = nullcontext) -> None:
        self.user_id = user_id
        self.batch = batch
        self.last_id = 0
        self.ready = asyncio.Event()
        self.waiting: list[LoggedEvent] = []  # arrived before `last_id` was known
        self.subscriptions: set[UserSubscription] = set()
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


class RealtimeHub:
    """Follows the event log's tail and fans each event out to its user's sessions."""

    def __init__(
        self,
        event_log: EventLog,
        limits: RealtimeLimits | None = None,
        *,
        gauge: _Gauge | None = None,
        batch: Batch = nullcontext,
        push_filter: PushFilter | None = None,
        revocations: Revocations | None = None,
    ) -> None:
        """`batch`: a context manager around each fan-out, inside which the channels may
        collect direct writes and perform them together at its end (see `Channel`).
        `push_filter`: the event types each user chose to receive (none: all).
        `revocations`: a session ends (4001) when its user or API key is revoked."""
        self.log = event_log
        self._push_filter = push_filter
        self._revocations = revocations
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
            # bandit B311: reconnect jitter, not a secret.
            retry_ms = random.randint(100, 2000)  # nosec B311
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
            await session.close_channel(CloseCode.SERVICE_RESTART, "server restarting; reconnect")
            return
        self._sessions.add(session)
        if self._gauge is not None:
            self._gauge.inc()
        watch = None
        if self._revocations is not None:
            watch = self._revocations.watch_principal(
                principal,
                lambda reason: session.abort(CloseCode.UNAUTHORIZED, reason[:100]),
            )
        try:
            await session.run(handle)
            if not session.peer_gone:
                await session.close_channel(session.close_code, session.close_reason)
        finally:
            if watch is not None:
                watch.cancel()
            for subscription in list(session.subscriptions.values()):
                self.detach(subscription)
            session.subscriptions.clear()
            self._sessions.discard(session)
            if not self._sessions:
                self._idle.set()
            if self._gauge is not None:
                self._gauge.dec()

    # -- subscriptions -----------------------------------------------------------------

    def allows(self, user_id: str, event_type: str) -> bool:
        """Whether the user's notification preferences let `event_type` through."""
        return self._push_filter is None or self._push_filter.pushes(user_id, event_type)

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

    async def attach(
        self, subscription: UserSubscription, last_event_id: int | None
    ) -> tuple[int, int, bool]:
        """Join the user's feed; replay from `last_event_id`. Returns (cursor, replayed, reset).

        Called by `Session.subscribe`."""
        if self._push_filter is not None:
            await self._push_filter.load(subscription.user_id)  # their current choice
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
                    if (wanted is None or event.type in wanted) and self.allows(
                        subscription.user_id, event.type
                    ):
                        # The history is bounded, so a replay may exceed the live queue bound.
                        subscription.session.enqueue(event.wire, force=True)
                        replayed += 1
                subscription.cursor = max(subscription.cursor, replay.head)
        pending, subscription.pending = subscription.pending, []
        subscription.catching_up = False
        for event in pending:
            subscription.offer(event)
        return subscription.cursor, replayed, reset

    def detach(self, subscription: UserSubscription) -> None:
        """Leave the user's feed; the last subscription to leave closes it."""
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

    async def _refresh_push_filter(self) -> None:
        """Reload preferences another replica may have changed (the filter's ttl)."""
        if self._push_filter is None:
            return
        for user_id in list(self._feeds):
            if self._push_filter.stale(user_id):
                await self._push_filter.load(user_id)

    async def _housekeeping_loop(self) -> None:
        limits = self.limits
        tick = max(0.02, min(1.0, limits.heartbeat_interval / 4, limits.idle_timeout / 4))
        while True:
            await asyncio.sleep(tick)
            await self._refresh_push_filter()
            now = time.monotonic()
            for session in list(self._sessions):
                if now - session.last_received > limits.idle_timeout:
                    session.abort(CloseCode.IDLE_TIMEOUT, "idle timeout: send ping regularly")
                elif now - session.last_sent > limits.heartbeat_interval and not session.queued[0]:
                    session.last_sent = now
                    session.enqueue(control("heartbeat", {"timestamp": utcnow().isoformat()}))
