"""In-process cache, event bus and locks for the embedded default (one process)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pieces_integration.ports.infrastructure import LockUnavailable


class MemoryCache:
    """LRU with per-entry TTL, bounded by entry count."""

    def __init__(self, *, max_entries: int, default_ttl: float | None = None) -> None:
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._max_entries = max_entries
        self._default_ttl = default_ttl

    def _live(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= time.monotonic():
            del self._entries[key]
            return None
        return value

    async def get(self, key: str) -> bytes | None:
        value = self._live(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        ttl = ttl if ttl is not None else self._default_ttl
        self._entries[key] = (value, None if ttl is None else time.monotonic() + ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def delete(self, *keys: str) -> int:
        return sum(self._entries.pop(key, None) is not None for key in keys)

    async def delete_prefix(self, prefix: str) -> int:
        doomed = [key for key in self._entries if key.startswith(prefix)]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def size_bytes(self) -> int:
        return sum(len(key) + len(value) for key, (value, _) in self._entries.items())

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
