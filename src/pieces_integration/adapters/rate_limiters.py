"""Rate limiters: in-process (embedded default) and Redis (shared by every replica)."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as redis
from cachetools import LRUCache

from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.domain.rate_limit import BucketState, Decision, capacity, take
from pieces_integration.ports.clock import Clock

# KEYS[1] bucket hash; ARGV: per_minute, burst. Uses Redis' own clock so replicas agree.
_TAKE = """
local per_minute = tonumber(ARGV[1])
local cap = math.max(tonumber(ARGV[2]), 1)
local rate = per_minute / 60.0
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = cap; ts = now end
if now > ts then tokens = math.min(cap, tokens + (now - ts) * rate) end
local allowed = 0
if tokens >= 1 then allowed = 1; tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(cap / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class MemoryRateLimiter:
    """One bucket per key in this process, at most `max_keys` of them.

    When full, the least recently *used* key is forgotten (it merely starts again with a full
    bucket, which is what it would have refilled to anyway): a user who keeps calling is never
    the one forgotten, so their limit cannot be reset by others filling the store.
    """

    def __init__(self, *, max_keys: int = 100_000, clock: Clock | None = None) -> None:
        self._buckets: LRUCache[str, BucketState] = LRUCache(maxsize=max_keys)
        self._clock = clock or time.monotonic

    async def hit(self, key: str, *, per_minute: int, burst: int) -> Decision:
        decision, state = take(
            self._buckets.get(key), now=self._clock(), per_minute=per_minute, burst=burst
        )
        self._buckets[key] = state
        return decision

    async def forget(self, key: str) -> None:
        self._buckets.pop(key, None)


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix + "rl:"
        self._script: Any = client.register_script(_TAKE)

    async def hit(self, key: str, *, per_minute: int, burst: int) -> Decision:
        allowed, tokens_text = await self._script(
            keys=[self._prefix + key], args=[per_minute, burst]
        )
        tokens = float(tokens_text)
        cap = capacity(per_minute, burst)
        rate = per_minute / 60.0
        return Decision(
            allowed=bool(allowed),
            limit=cap,
            remaining=int(tokens),
            reset_after=(cap - tokens) / rate,
            retry_after=0.0 if allowed else (1.0 - tokens) / rate,
        )

    async def forget(self, key: str) -> None:
        try:
            await self._client.delete(self._prefix + key)
        except redis.RedisError as exc:
            raise DependencyUnavailable(
                f"rate limit purge failed: {exc}", upstream="redis"
            ) from exc
