"""Redis-backed cache, event bus and locks, for running several replicas."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as redis
import structlog

from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.ports.infrastructure import LockUnavailable

log = structlog.get_logger(__name__)

# Delete the lock only if we still own it (our random value), atomically.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2])
else return 0 end
"""


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=3, socket_timeout=5, health_check_interval=30
    )


_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


class RedisCache:
    def __init__(self, client: redis.Redis, *, prefix: str, default_ttl: float | None) -> None:
        self._client = client
        self._prefix = prefix + "cache:"
        self._default_ttl = default_ttl

    async def get(self, key: str) -> bytes | None:
        value = await self._client.get(self._prefix + key)
        return value if value is None or isinstance(value, bytes) else value.encode()

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        ttl = ttl if ttl is not None else self._default_ttl
        px = None if ttl is None else max(1, int(ttl * 1000))
        await self._client.set(self._prefix + key, value, px=px)

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return int(await self._client.delete(*(self._prefix + key for key in keys)))

    async def delete_prefix(self, prefix: str) -> int:
        removed = 0
        batch: list[Any] = []
        # SCAN's MATCH is a glob: the prefix itself must match literally.
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self._prefix + prefix) + "*"
        async for key in self._client.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                removed += int(await self._client.unlink(*batch))
                batch.clear()
        if batch:
            removed += int(await self._client.unlink(*batch))
        return removed

    async def ping(self) -> None:
        await self._client.ping()

    async def aclose(self) -> None:
        return None  # the shared client is closed by its owner


class _PubSubSubscription:
    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    async def get(self, wait: float | None = None) -> bytes | None:
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            message = await self._pubsub.get_message(
                ignore_subscribe_messages=True, timeout=remaining if remaining is not None else 1.0
            )
            if message is not None and message.get("type") == "message":
                data: bytes = message["data"]
                return data
            if deadline is not None and time.monotonic() >= deadline:
                return None


class RedisEventBus:
    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix + "bus:"

    async def publish(self, channel: str, message: bytes) -> None:
        await self._client.publish(self._prefix + channel, message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[_PubSubSubscription]:
        pubsub = self._client.pubsub()
        await pubsub.subscribe(self._prefix + channel)
        try:
            yield _PubSubSubscription(pubsub)
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()

    async def ping(self) -> None:
        await self._client.ping()

    async def aclose(self) -> None:
        return None


class RedisLocks:
    """SET NX PX locks with a random owner value and a fencing counter per name."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix + "lock:"
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)

    @asynccontextmanager
    async def hold(self, name: str, *, ttl: float = 60.0, wait: float = 0.0) -> AsyncIterator[int]:
        key = self._prefix + name
        owner = secrets.token_hex(16)
        deadline = time.monotonic() + wait
        delay = 0.01
        try:
            while not await self._client.set(key, owner, nx=True, px=int(ttl * 1000)):
                if time.monotonic() >= deadline:
                    raise LockUnavailable(name)
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 0.2)
            token = int(await self._client.incr(key + ":fence"))
        except redis.RedisError as exc:
            raise DependencyUnavailable(f"redis lock failed: {exc}", upstream="redis") from exc
        # The lease is renewed while held: a run longer than `ttl` (a first import of a
        # large library) must not let another replica take the lock and run concurrently.
        # `ttl` still bounds how long a crashed holder blocks others.
        # Stopped by an event, never cancelled: a cancel that lands inside a redis-py command
        # can be swallowed by the client, and the holder then waited for the renewal forever.
        stop = asyncio.Event()
        renewal = asyncio.create_task(self._keep(key, owner, ttl, stop), name=f"lock-lease:{name}")
        try:
            yield token
        finally:
            stop.set()
            await renewal
            await self._release(keys=[key], args=[owner])

    async def _keep(self, key: str, owner: str, ttl: float, stop: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ttl / 3)
            if stop.is_set():
                return
            try:
                renewed = await self._renew(keys=[key], args=[owner, int(ttl * 1000)])
            except redis.RedisError as exc:  # try again next period; the lease is still valid
                log.warning("lock_renewal_failed", key=key, error=repr(exc))
                continue
            if not renewed:
                log.error("lock_lease_lost", key=key)
                return
