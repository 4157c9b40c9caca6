"""Failed-authentication counters (issue 20): growing lockouts, the same arithmetic in
memory and in Redis, shared by replicas."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from pieces_integration.adapters.lockouts import MemoryFailureCounters, RedisFailureCounters
from pieces_integration.domain.lockout import LockoutPolicy, record_failure, retry_after
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

POLICY = LockoutPolicy(threshold=3, window=60, base=10, maximum=35, forget_after=1000)


def test_lockouts_grow_up_to_the_maximum_and_are_forgotten_after_a_quiet_day() -> None:
    state, now, lockouts = None, 0.0, []
    for _ in range(12):
        state, lockout = record_failure(state, now=now, policy=POLICY)
        if lockout:
            lockouts.append(lockout)
            assert retry_after(state, now) == lockout
        now += 1
    assert lockouts == [10, 20, 35, 35]
    assert retry_after(state, now + 100) == 0
    # Failures spread wider than the window never lock out.
    state, now = None, 0.0
    for _ in range(10):
        state, lockout = record_failure(state, now=now, policy=POLICY)
        assert lockout == 0
        now += 31
    # After `forget_after` without failures, the next lockout is the first again.
    state = None
    for t in (0.0, 1.0, 2.0, 3.0, 4.0, 5.0):
        state, _ = record_failure(state, now=t, policy=POLICY)
    for t in (2000.0, 2001.0):
        state, _ = record_failure(state, now=t, policy=POLICY)
    state, lockout = record_failure(state, now=2002.0, policy=POLICY)
    assert lockout == 10


async def test_memory_counters_follow_the_domain() -> None:
    clock = [100.0]
    counters = MemoryFailureCounters(clock=lambda: clock[0])
    assert [await counters.fail("ip:a", POLICY) for _ in range(3)] == [0, 0, 10]
    assert await counters.retry_after("ip:a", "ip:b") == [10, 0]
    clock[0] += 11
    assert await counters.retry_after("ip:a") == [0]
    await counters.mark("trust:x", ttl=60)
    assert await counters.marked("trust:x") and not await counters.marked("trust:y")


@pytest.mark.redis
async def test_replicas_on_one_redis_share_the_counters(
    redis_client: object, redis_prefix: str
) -> None:
    clients = [redis.Redis.from_url(REDIS_URL) for _ in range(2)]
    try:
        a, b = (RedisFailureCounters(c, prefix=redis_prefix) for c in clients)
        assert await a.fail("ip:x", POLICY) == 0
        assert await b.fail("ip:x", POLICY) == 0
        assert await a.fail("ip:x", POLICY) == 10  # the third failure, over two replicas
        (wait,) = await b.retry_after("ip:x")
        assert 9 < wait <= 10
        assert await a.retry_after("ip:y") == [0]
        for _ in range(3):
            last = await b.fail("ip:x", POLICY)
        assert last == 20  # the second lockout doubles
        await a.mark("trust:p", ttl=60)
        assert await b.marked("trust:p") and not await b.marked("trust:q")
    finally:
        for client in clients:
            await client.aclose()
