"""Cache, event bus and locks: in-process and on the real Redis, one parametrised suite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from pieces_integration.adapters.memory import MemoryCache, MemoryEventBus, MemoryLocks
from pieces_integration.adapters.redis_infra import RedisCache, RedisEventBus, RedisLocks
from pieces_integration.ports.infrastructure import Cache, EventBus, Locks, LockUnavailable
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.anyio


@dataclass
class Infra:
    cache: Cache
    bus: EventBus
    locks: Locks
    other_bus: EventBus  # as seen from a second replica
    other_locks: Locks


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
async def infra(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[Infra]:
    if request.param == "memory":
        bus, locks = MemoryEventBus(), MemoryLocks()
        yield Infra(MemoryCache(max_entries=3), bus, locks, bus, locks)
        return
    import redis.asyncio as redis

    first: Any = redis.Redis.from_url(REDIS_URL)
    second: Any = redis.Redis.from_url(REDIS_URL)
    try:
        yield Infra(
            RedisCache(first, prefix=redis_prefix, default_ttl=None),
            RedisEventBus(first, prefix=redis_prefix),
            RedisLocks(first, prefix=redis_prefix),
            RedisEventBus(second, prefix=redis_prefix),
            RedisLocks(second, prefix=redis_prefix),
        )
    finally:
        keys = [k async for k in first.scan_iter(match=f"{redis_prefix}*")]
        if keys:
            await first.delete(*keys)
        await first.aclose()
        await second.aclose()


async def test_cache_set_get_expire_and_delete_by_prefix(infra: Infra) -> None:
    cache = infra.cache
    await cache.set("user:alice:a", b"1")
    await cache.set("user:alice:b", b"2", ttl=0.05)
    await cache.set("user:bob:a", b"3")
    assert await cache.get("user:alice:a") == b"1"
    await asyncio.sleep(0.1)
    assert await cache.get("user:alice:b") is None
    assert await cache.delete_prefix("user:alice:") >= 1
    assert await cache.get("user:alice:a") is None
    assert await cache.get("user:bob:a") == b"3"
    assert await cache.delete("user:bob:a") == 1


async def test_deleting_one_users_cache_spares_look_alike_ids(infra: Infra) -> None:
    """Ids with `:` or glob characters: one user's purge never reaches another's keys."""
    from pieces_integration.service_layer.privacy import user_cache_prefix

    cache = infra.cache  # the in-memory one holds 3 entries: three users at a time
    for users, doomed, spared in (
        (["alice", "alice:x", "a*"], ["alice", "a*"], {"alice:x"}),
        (["[a]", "a?", "al"], ["[a]"], {"a?", "al"}),
    ):
        for user in users:
            await cache.set(user_cache_prefix(user) + "k", user.encode())
        for user in doomed:
            await cache.delete_prefix(user_cache_prefix(user))
        left = {u for u in users if await cache.get(user_cache_prefix(u) + "k") is not None}
        assert left == spared


async def test_memory_cache_evicts_least_recently_used() -> None:
    cache = MemoryCache(max_entries=2)
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    await cache.get("a")
    await cache.set("c", b"3")
    assert await cache.get("b") is None
    assert await cache.get("a") == b"1"


async def test_bus_delivers_to_every_subscriber_on_every_replica(infra: Infra) -> None:
    async with infra.bus.subscribe("events") as here, infra.other_bus.subscribe("events") as there:
        await asyncio.sleep(0.05)  # Redis SUBSCRIBE is asynchronous
        await infra.other_bus.publish("events", b"hello")
        assert await here.get(wait=2) == b"hello"
        assert await there.get(wait=2) == b"hello"
        assert await here.get(wait=0.05) is None  # exactly once


async def test_lock_excludes_a_second_holder_and_fences(infra: Infra) -> None:
    async with infra.locks.hold("sync:alice", ttl=5) as first_token:
        with pytest.raises(LockUnavailable):
            async with infra.other_locks.hold("sync:alice", ttl=5, wait=0.1):
                pass
        async with infra.other_locks.hold("sync:bob", ttl=5):
            pass  # other names are independent
    async with infra.other_locks.hold("sync:alice", ttl=5, wait=1) as second_token:
        assert second_token > first_token


async def test_lock_waits_for_release(infra: Infra) -> None:
    order: list[str] = []

    async def holder() -> None:
        async with infra.locks.hold("job", ttl=5):
            order.append("first")
            await asyncio.sleep(0.1)
            order.append("done")

    task = asyncio.create_task(holder())
    await asyncio.sleep(0.02)
    async with infra.other_locks.hold("job", ttl=5, wait=2):
        order.append("second")
    await task
    assert order == ["first", "done", "second"]
