"""In-process cache, event bus and locks for the embedded default (one process)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple

from cachetools import Cache, TLRUCache

from pieces_integration.ports.clock import Clock
from pieces_integration.ports.infrastructure import LockUnavailable


class _Entry(NamedTuple):
    value: bytes
    ttl: float | None  # seconds from when it was set; None: until evicted


def _expires(_key: str, entry: _Entry, now: float) -> float:
    return math.inf if entry.ttl is None else now + entry.ttl


class MemoryCache:
    """LRU with per-entry TTL, bounded by entry count (cachetools' time-aware LRU)."""

    def __init__(
        self, *, max_entries: int, default_ttl: float | None = None, clock: Clock | None = None
    ) -> None:
        self._entries: TLRUCache[str, _Entry] = TLRUCache(
            maxsize=max_entries, ttu=_expires, timer=clock or time.monotonic
        )
        self._default_ttl = default_ttl

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)  # a hit becomes the most recently used
        return None if entry is None else entry.value

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self._entries[key] = _Entry(value, ttl if ttl is not None else self._default_ttl)

    def _discard(self, key: str) -> bool:
        try:
            return self._entries.pop(key, None) is not None
        except KeyError:  # it expired between the lookup and the removal
            return False

    async def delete(self, *keys: str) -> int:
        return sum(self._discard(key) for key in keys)

    async def delete_prefix(self, prefix: str) -> int:
        doomed = [key for key in self._entries if key.startswith(prefix)]
        return sum(self._discard(key) for key in doomed)

    def size_bytes(self) -> int:
        # Cache.__getitem__, not the LRU's: reading every entry must not reorder them.
        entries = self._entries
        return sum(len(key) + len(Cache.__getitem__(entries, key).value) for key in list(entries))

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._entries.clear()


class _QueueSubscription:
    def __init__(self, queue: asyncio.Queue[bytes]) -> None:
        self._queue = queue

    async def get(self, wait: float | None = None) -> bytes | None:
        try:
            return await asyncio.wait_for(self._queue.get(), wait)
        except TimeoutError:
            return None


class MemoryEventBus:
    """Fan-out to bounded per-subscriber queues; a subscriber that falls behind loses the
    oldest messages rather than growing memory (lossless replay is the WebSocket layer's job).
    """

    def __init__(self, *, queue_size: int = 10_000) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)
        self._queue_size = queue_size

    async def publish(self, channel: str, message: bytes) -> None:
        for queue in list(self._subscribers.get(channel, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[_QueueSubscription]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(self._queue_size)
        self._subscribers[channel].add(queue)
        try:
            yield _QueueSubscription(queue)
        finally:
            self._subscribers[channel].discard(queue)
            if not self._subscribers[channel]:
                del self._subscribers[channel]

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._subscribers.clear()


class MemoryLocks:
    """Named asyncio locks with fencing tokens, for one process."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tokens: dict[str, int] = defaultdict(int)

    @asynccontextmanager
    async def hold(self, name: str, *, ttl: float = 60.0, wait: float = 0.0) -> AsyncIterator[int]:
        lock = self._locks[name]
        if wait <= 0:
            if lock.locked():
                raise LockUnavailable(name)
            await lock.acquire()
        else:
            try:
                await asyncio.wait_for(lock.acquire(), wait)
            except TimeoutError:
                raise LockUnavailable(name) from None
        try:
            self._tokens[name] += 1
            yield self._tokens[name]
        finally:
            lock.release()
