"""The event log of the embedded default: a bounded ring of recent events per user."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from cachetools import LRUCache

from pieces_integration.ports.event_log import LoggedEvent, NewEvent, Replay, TailLost


def _clock_micros() -> int:
    return time.time_ns() // 1000


class _UserLog:
    __slots__ = ("complete_after", "head", "ring")

    def __init__(self, base: int, history: int) -> None:
        self.head = base
        # The ring holds every event with an id in (complete_after, head].
        self.complete_after = base
        self.ring: deque[LoggedEvent] = deque(maxlen=history)


class _MemoryTail:
    def __init__(self, size: int) -> None:
        self._queue: deque[LoggedEvent] = deque()
        self._size = size
        self._lost = False
        self._wake = asyncio.Event()

    def push(self, event: LoggedEvent) -> None:
        if len(self._queue) >= self._size:
            # A stalled reader loses the backlog, not memory; it re-reads from the ring.
            self._queue.clear()
            self._lost = True
        self._queue.append(event)
        self._wake.set()

    async def get(self, max_wait: float | None = None) -> LoggedEvent | None:
        if not self._queue and not self._lost:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), max_wait)
            except TimeoutError:
                return None
        if self._lost:
            self._lost = False
            raise TailLost("the tail overflowed")
        return self._queue.popleft() if self._queue else None


class MemoryEventLog:
    """Per-user rings in one process, LRU-bounded by user count.

    A user's sequence starts at a clock-derived base (microseconds since the epoch), above
    every id issued before, so ids stay increasing across restarts and evictions; a client
    holding an id from before then gets a `reset` instead of a wrong slice of history.
    """

    def __init__(
        self,
        *,
        history: int = 1000,
        max_users: int = 100_000,
        tail_size: int = 100_000,
        clock: Callable[[], int] = _clock_micros,
    ) -> None:
        self._history = history
        self._tail_size = tail_size
        self._clock = clock
        # Least recently used first out: an active user's history is never the one dropped.
        self._users: LRUCache[str, _UserLog] = LRUCache(maxsize=max_users)
        self._high_water = 0
        self._tails: set[_MemoryTail] = set()

    def _user(self, user_id: str) -> _UserLog:
        log = self._users.get(user_id)
        if log is None:
            log = _UserLog(max(self._clock(), self._high_water), self._history)
            self._users[user_id] = log
        return log

    async def append(self, event: NewEvent) -> LoggedEvent:
        log = self._user(event.user_id)
        log.head += 1
        logged = LoggedEvent.build(log.head, event)
        if len(log.ring) == self._history and log.ring:
            log.complete_after = log.ring[0].id
        log.ring.append(logged)
        self._high_water = max(self._high_water, log.head)
        for tail in self._tails:
            tail.push(logged)
        return logged

    async def head(self, user_id: str) -> int:
        return self._user(user_id).head

    async def heads(self, user_ids: list[str]) -> dict[str, int]:
        return {user_id: self._user(user_id).head for user_id in user_ids}

    async def read_after(self, user_id: str, after: int) -> Replay:
        log = self._user(user_id)
        if after > log.head or after < log.complete_after:
            return Replay([], reset=True, head=log.head)
        # Ids are consecutive in the ring: skip straight to the first one after `after`.
        start = len(log.ring) - (log.head - after)
        return Replay(list(log.ring)[max(0, start) :], reset=False, head=log.head)

    async def purge(self, user_id: str) -> None:
        # `_high_water` stays: a new sequence of this user still starts above the old ids.
        self._users.pop(user_id, None)

    @asynccontextmanager
    async def tail(self) -> AsyncIterator[_MemoryTail]:
        tail = _MemoryTail(self._tail_size)
        self._tails.add(tail)
        try:
            yield tail
        finally:
            self._tails.discard(tail)

    async def aclose(self) -> None:
        self._tails.clear()
