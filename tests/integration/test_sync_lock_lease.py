"""The `sync:<user>` lock on Redis outlives its TTL while held (lease renewal): a sync that
runs longer than the lock's TTL (a first import of 10,000 assets) must not let another
replica start the same user's sync."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from pieces_integration.adapters.redis_infra import RedisLocks
from pieces_integration.ports.infrastructure import LockUnavailable
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.redis, pytest.mark.anyio]


@pytest.fixture
async def two_replicas(redis_prefix: str) -> AsyncIterator[tuple[RedisLocks, RedisLocks]]:
    # Bounded like the service's own client (adapters/redis_infra.py): a hang is an error.
    first = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    second = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        yield RedisLocks(first, prefix=redis_prefix), RedisLocks(second, prefix=redis_prefix)
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_lock_held_past_its_ttl_is_not_taken_by_another_replica(
    two_replicas: tuple[RedisLocks, RedisLocks],
) -> None:
    mine, theirs = two_replicas
    async with mine.hold("sync:alice", ttl=0.3):
        for _ in range(6):  # 1.2 s: four TTLs
            await asyncio.sleep(0.2)
            with pytest.raises(LockUnavailable):
                async with theirs.hold("sync:alice", ttl=0.3, wait=0):
                    pass
    async with theirs.hold("sync:alice", ttl=0.3, wait=0):
        pass  # released at once when the holder leaves


async def test_the_renewal_stops_with_the_holder(
    two_replicas: tuple[RedisLocks, RedisLocks], redis_prefix: str
) -> None:
    mine, _ = two_replicas
    async with mine.hold("sync:bob", ttl=0.3):
        pass
    client = redis.Redis.from_url(REDIS_URL)
    try:
        await asyncio.sleep(0.4)
        assert await client.exists(f"{redis_prefix}lock:sync:bob") == 0
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("lock-lease:")]
    finally:
        await client.aclose()
