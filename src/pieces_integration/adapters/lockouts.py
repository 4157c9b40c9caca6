"""Failed-authentication counters: in-process (embedded default) and Redis (every replica)."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as redis
from cachetools import LRUCache, TTLCache

from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.domain.lockout import (
    LockoutPolicy,
    LockoutState,
    record_failure,
    retry_after,
)
from pieces_integration.ports.clock import Clock

# `domain/lockout.record_failure` in Lua, on Redis' clock so replicas agree.
# KEYS[1] the subject's hash; ARGV threshold, window, base, maximum, forget_after.
_FAIL = """
local threshold = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local base = tonumber(ARGV[3])
local maximum = tonumber(ARGV[4])
local forget = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local s = redis.call('HMGET', KEYS[1], 'count', 'start', 'level', 'until', 'last')
local count = tonumber(s[1]) or 0
local start = tonumber(s[2]) or 0
local level = tonumber(s[3]) or 0
local locked = tonumber(s[4]) or 0
local last = tonumber(s[5]) or 0
if now - last > forget then level = 0 end
if now - start > window then count = 0; start = now end
count = count + 1
local lockout = 0
if count >= threshold then
  level = level + 1
  lockout = math.min(maximum, base * 2 ^ math.min(level - 1, 30))
  locked = math.max(locked, now + lockout)
  count = 0; start = now
end
redis.call('HSET', KEYS[1], 'count', count, 'start', tostring(start), 'level', level,
  'until', tostring(locked), 'last', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((forget + maximum) * 1000))
return tostring(lockout)
"""

# KEYS: subject hashes. Returns each one's remaining lockout.
_RETRY_AFTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out = {}
for i, key in ipairs(KEYS) do
  local locked = tonumber(redis.call('HGET', key, 'until')) or 0
  out[i] = tostring(math.max(0, locked - now))
end
return out
"""


class MemoryFailureCounters:
    def __init__(self, *, max_keys: int = 100_000, clock: Clock | None = None) -> None:
        # An attacker filling the store only evicts idle subjects, whose lockouts are over.
        self._states: LRUCache[str, LockoutState] = LRUCache(maxsize=max_keys)
        self._marks: TTLCache[str, bool] = TTLCache(maxsize=max_keys, ttl=30 * 86_400)
        self._clock = clock or time.monotonic

    async def retry_after(self, *keys: str) -> list[float]:
        now = self._clock()
        return [retry_after(self._states.get(key), now) for key in keys]

    async def fail(self, key: str, policy: LockoutPolicy) -> float:
        state, lockout = record_failure(self._states.get(key), now=self._clock(), policy=policy)
        self._states[key] = state
        return lockout

    async def mark(self, key: str, *, ttl: float) -> None:
        self._marks[key] = True  # one TTL for all marks: the longest any caller asks for

    async def marked(self, key: str) -> bool:
        return key in self._marks


class RedisFailureCounters:
    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix + "authfail:"
        self._fail: Any = client.register_script(_FAIL)
        self._retry_after: Any = client.register_script(_RETRY_AFTER)

    async def retry_after(self, *keys: str) -> list[float]:
        if not keys:
            return []
        try:
            found = await self._retry_after(keys=[self._prefix + k for k in keys])
            return [float(value) for value in found]
        except redis.RedisError as exc:
            raise DependencyUnavailable(f"lockout check failed: {exc}", upstream="redis") from exc

    async def fail(self, key: str, policy: LockoutPolicy) -> float:
        args = [policy.threshold, policy.window, policy.base, policy.maximum, policy.forget_after]
        try:
            return float(await self._fail(keys=[self._prefix + key], args=args))
        except redis.RedisError as exc:
            raise DependencyUnavailable(f"lockout update failed: {exc}", upstream="redis") from exc

    async def mark(self, key: str, *, ttl: float) -> None:
        try:
            await self._client.set(self._prefix + "mark:" + key, b"1", ex=max(1, round(ttl)))
        except redis.RedisError as exc:
            raise DependencyUnavailable(f"lockout mark failed: {exc}", upstream="redis") from exc

    async def marked(self, key: str) -> bool:
        try:
            return bool(await self._client.exists(self._prefix + "mark:" + key))
        except redis.RedisError as exc:
            raise DependencyUnavailable(f"lockout check failed: {exc}", upstream="redis") from exc
