"""Resilience for outbound calls: retry with backoff and jitter, circuit breaker, rate limit.

Clocks and sleeps are injectable so tests run in milliseconds and can reason about time.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class RetryPolicy:
    """`attempts` total tries; delay before try n+1 is uniform in [0, min(cap, base*2**(n-1))]
    ("full jitter"), so many clients retrying at once do not stampede."""

    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, failed_attempts: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(failed_attempts - 1, 0)))
        return self.rng.uniform(0, ceiling)


def jittered(delay: float, rng: random.Random, spread: float = 0.2) -> float:
    """`delay` ± `spread` (proportional), never negative: for reconnect schedules."""
    return max(0.0, delay * (1 + rng.uniform(-spread, spread)))


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    """Raised by `CircuitBreaker.before_call` while the circuit is open."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open; next trial call in {retry_after:.1f}s")
        self.retry_after = retry_after


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures; after `reset_timeout` lets one
    trial call through (half-open): success closes it, failure opens it again."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_timeout:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def before_call(self) -> None:
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return
        assert self._opened_at is not None
        remaining = max(0.0, self.reset_timeout - (self._clock() - self._opened_at))
        raise CircuitOpen(remaining)

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._trial_in_flight = False
        self._failures += 1
        if self._opened_at is not None or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()

    def reset(self) -> None:
        self.record_success()


class TokenBucket:
    """`rate_per_minute` tokens a minute, at most `burst` saved up. `acquire` waits its turn."""

    def __init__(
        self,
        *,
        rate_per_minute: float = 100.0,
        burst: int = 10,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate_per_minute <= 0 or burst < 1:
            raise ValueError("rate_per_minute must be > 0 and burst >= 1")
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def try_acquire(self) -> float:
        """Take a token and return 0, or return the seconds until one is available."""
        self._refill()
        if self._tokens >= 1.0 - 1e-9:  # float drift must not spin on a vanishing wait
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) / self.rate

    async def acquire(self) -> None:
        async with self._lock:  # first come, first served
            while (wait := self.try_acquire()) > 0:
                await self._sleep(wait)
