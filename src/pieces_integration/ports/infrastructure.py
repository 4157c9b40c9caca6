"""Ports for the cache, the event bus and distributed locks."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Cache(Protocol):
    """Bytes in, bytes out; callers own serialisation. Keys are scoped by the adapter's prefix."""

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None: ...
    async def delete(self, *keys: str) -> int: ...
    async def delete_prefix(self, prefix: str) -> int: ...
    async def ping(self) -> None: ...
    async def aclose(self) -> None: ...


class Subscription(Protocol):
    async def get(self, wait: float | None = None) -> bytes | None:
        """Next message, or None after `wait` seconds without one."""
        ...


class EventBus(Protocol):
    """Fire-and-forget fan-out of messages to every subscriber of a channel, on every replica."""

    async def publish(self, channel: str, message: bytes) -> None: ...
    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]: ...
    async def ping(self) -> None: ...
    async def aclose(self) -> None: ...


class LockUnavailable(Exception):
    """The lock is held elsewhere and `wait` ran out."""


class Locks(Protocol):
    """Mutual exclusion by name, across replicas when the adapter is distributed.

    `hold` yields a fencing token that increases with every acquisition of that name, so a
    writer whose lease expired can be told apart from the current holder.
    """

    def hold(
        self, name: str, *, ttl: float = 60.0, wait: float = 0.0
    ) -> AbstractAsyncContextManager[int]: ...
