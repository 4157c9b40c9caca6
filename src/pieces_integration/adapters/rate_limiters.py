"""Rate limiters: in-process (embedded default) and Redis (shared by every replica)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from cachetools import LRUCache

from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.domain.rate_limit import Bucket, BucketState, Decision, capacity, take
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

# KEYS: the bucket hashes; ARGV: per_minute and burst of each, in turn. Refills every bucket,
# then takes a token from each only if all have one (a request refused by one bucket costs
# the others nothing). Returns allowed, then each bucket's tokens left.
_TAKE_ALL = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tokens, caps, rates = {}, {}, {}
local allowed = 1
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1]) / 60.0
  local cap = math.max(tonumber(ARGV[2 * i]), 1)
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local left = tonumber(state[1])
  local ts = tonumber(state[2])
  if left == nil then left = cap; ts = now end
  if now > ts then left = math.min(cap, left + (now - ts) * rate) end
  if left < 1 then allowed = 0 end
  tokens[i], caps[i], rates[i] = left, cap, rate
end
local result = {allowed}
for i, key in ipairs(KEYS) do
  if allowed == 1 then tokens[i] = tokens[i] - 1 end
  redis.call('HSET', key, 'tokens', tostring(tokens[i]), 'ts', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(caps[i] / rates[i] * 1000) + 1000)
  result[i + 1] = tostring(tokens[i])
end
return result
"""


def _decision(*, allowed: bool, tokens: float, per_minute: int, burst: int) -> Decision:
    cap = capacity(per_minute, burst)
    rate = per_minute / 60.0
    return Decision(
        allowed=allowed,
        limit=cap,
        remaining=int(tokens),
        reset_after=(cap - tokens) / rate,
        retry_after=0.0 if allowed else max(0.0, 1.0 - tokens) / rate,
    )


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

    async def hit_all(self, buckets: Sequence[Bucket]) -> list[Decision]:
        now = self._clock()
        taken = [
            take(self._buckets.get(b.key), now=now, per_minute=b.per_minute, burst=b.burst)
            for b in buckets
        ]
        if all(decision.allowed for decision, _ in taken):
            for bucket, (_, state) in zip(buckets, taken, strict=True):
                self._buckets[bucket.key] = state
            return [decision for decision, _ in taken]
        # Refused: nothing is stored (refills are computed lazily, so keeping the old state
        # loses nothing), and the buckets that had a token report it as still there.
        return [
            decision
            if not decision.allowed
            else _decision(
                allowed=True, tokens=state.tokens + 1, per_minute=b.per_minute, burst=b.burst
            )
            for b, (decision, state) in zip(buckets, taken, strict=True)
        ]

    async def forget(self, key: str) -> None:
        self._buckets.pop(key, None)


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix + "rl:"
        self._script: Any = client.register_script(_TAKE)
        self._script_all: Any = client.register_script(_TAKE_ALL)

    async def hit(self, key: str, *, per_minute: int, burst: int) -> Decision:
        allowed, tokens_text = await self._script(
            keys=[self._prefix + key], args=[per_minute, burst]
        )
        return _decision(
            allowed=bool(allowed), tokens=float(tokens_text), per_minute=per_minute, burst=burst
        )

    async def hit_all(self, buckets: Sequence[Bucket]) -> list[Decision]:
        # One script over every key: atomic on one Redis server (a cluster would need the
        # keys in one hash slot).
        allowed, *tokens = await self._script_all(
            keys=[self._prefix + b.key for b in buckets],
            args=[value for b in buckets for value in (b.per_minute, b.burst)],
        )
        return [
            _decision(
                allowed=bool(allowed) or float(left) >= 1,
                tokens=float(left),
                per_minute=b.per_minute,
                burst=b.burst,
            )
            for b, left in zip(buckets, tokens, strict=True)
        ]

    async def forget(self, key: str) -> None:
        try:
            await self._client.delete(self._prefix + key)
        except redis.RedisError as exc:
            raise DependencyUnavailable(
                f"rate limit purge failed: {exc}", upstream="redis"
            ) from exc
