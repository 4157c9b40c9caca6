"""Several buckets per request (issue 20: a user's and their tenant's): all or nothing, the
same in memory and in Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from pieces_integration.adapters.rate_limiters import MemoryRateLimiter, RedisRateLimiter
from pieces_integration.domain.rate_limit import Bucket
from pieces_integration.ports.rate_limit import RateLimiter
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

# One request a minute refills: nothing refills while a test runs.
USER_A = Bucket("user:a", per_minute=1, burst=3)
USER_B = Bucket("user:b", per_minute=1, burst=3)
TENANT = Bucket("tenant:t", per_minute=1, burst=4)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter(clock=lambda: 1000.0)
        return
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield RedisRateLimiter(client, prefix=redis_prefix)
    finally:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def _passes(limiter: RateLimiter, *buckets: Bucket) -> bool:
    return all(d.allowed for d in await limiter.hit_all(list(buckets)))


async def test_a_request_takes_a_token_from_every_bucket(limiter: RateLimiter) -> None:
    decisions = await limiter.hit_all([USER_A, TENANT])
    assert [(d.allowed, d.limit, d.remaining) for d in decisions] == [(True, 3, 2), (True, 4, 3)]
    # The same bucket through `hit`: both entry points share the state.
    assert (await limiter.hit(USER_A.key, per_minute=1, burst=3)).remaining == 1


async def test_a_request_refused_by_one_bucket_costs_the_others_nothing(
    limiter: RateLimiter,
) -> None:
    for _ in range(3):
        assert await _passes(limiter, USER_A, TENANT)
    refused = await limiter.hit_all([USER_A, TENANT])  # a's own bucket is empty
    assert [d.allowed for d in refused] == [False, True]
    assert refused[0].retry_after > 0 and refused[1].remaining == 1
    # The tenant's last token is still there for b, and then the tenant is spent...
    assert await _passes(limiter, USER_B, TENANT)
    refused = await limiter.hit_all([USER_B, TENANT])
    assert [d.allowed for d in refused] == [True, False]
    # ...without having cost b's own bucket: two tokens left of three.
    assert (await limiter.hit(USER_B.key, per_minute=1, burst=3)).remaining == 1
