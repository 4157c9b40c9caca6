"""Resilience for outbound calls: one retry loop, circuit breaker, outbound rate limit.

Both HTTP clients (Pieces OS, AIWFE) run every call through `call_with_retries`: it asks the
breaker, makes the attempt, and on a transient failure waits — as long as the upstream asked
with `Retry-After`, else the exponential backoff with full jitter — and tries again, only for
calls that are safe to repeat. Clocks and sleeps are injectable so tests run in milliseconds
and can reason about time.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import structlog

from pieces_integration.domain.backoff import exponential_backoff
from pieces_integration.domain.rate_limit import BucketState, take
from pieces_integration.ports.clock import Clock, Sleep

T = TypeVar("T")

log = structlog.get_logger(__name__)

# An upstream asking for a longer pause is waited on only this long per retry: a caller
# (a person, a sync run) should not hang for minutes on one call.
MAX_RETRY_AFTER = 30.0


@dataclass(slots=True)
class RetryPolicy:
    """`attempts` total tries; delay before try n+1 is uniform in [0, min(cap, base*2**(n-1))]
    ("full jitter"), so many clients retrying at once do not stampede."""

    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, failed_attempts: int) -> float:
        attempt = max(failed_attempts, 1)
        return exponential_backoff(attempt, base=self.base_delay, cap=self.max_delay, rng=self.rng)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The `Retry-After` header in seconds (any letter case), None if absent or not a number."""
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None  # an HTTP-date: neither upstream sends one; the backoff applies
    return max(seconds, 0.0) if seconds == seconds else None  # NaN is no answer


class Transient(Exception):
    """An attempt failed in a way that may pass (timeout, 5xx, 429): the breaker counts it
    and the loop may try again, after `retry_after` seconds if the upstream said so."""

    def __init__(self, error: Exception, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


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
        # bandit B101: narrows a type for mypy; holds by construction, no input reaches it.
        assert self._opened_at is not None  # nosec B101
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


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    policy: RetryPolicy,
    breaker: CircuitBreaker,
    sleep: Sleep,
    circuit_open: Callable[[CircuitOpen], Exception],
    before_attempt: Callable[[], Awaitable[None]] | None = None,
    event: str = "upstream_retry",
    **log_fields: Any,
) -> T:
    """Run `attempt` up to `attempts` times while it raises `Transient`.

    The breaker is asked before each try (`circuit_open` turns its refusal into the
    caller's error) and told each outcome: an answer that is not `Transient` — even a 4xx
    the caller raises afterwards — means the upstream is alive. The last transient error is
    raised when the tries run out.
    """
    last: Exception | None = None
    for number in range(1, max(attempts, 1) + 1):
        if before_attempt is not None:
            await before_attempt()
        try:
            breaker.before_call()
        except CircuitOpen as exc:
            raise circuit_open(exc) from exc
        try:
            result = await attempt()
        except Transient as failure:
            breaker.record_failure()
            last = failure.error
            if number < attempts:
                if failure.retry_after is not None:
                    delay = min(failure.retry_after, MAX_RETRY_AFTER)
                else:
                    delay = policy.delay(number)
                code = getattr(last, "code", type(last).__name__)
                log.info(event, attempt=number, delay=round(delay, 3), error=code, **log_fields)
                await sleep(delay)
            continue
        breaker.record_success()
        return result
    # bandit B101: narrows a type for mypy; holds by construction, no input reaches it.
    assert last is not None  # nosec B101
    raise last


class TokenBucket:
    """`rate_per_minute` tokens a minute, at most `burst` saved up. `acquire` waits its turn.

    The arithmetic is the inbound limiter's (`domain.rate_limit.take`)."""

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
        self.rate_per_minute = rate_per_minute
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._state: BucketState | None = None  # None: full
        self._lock = asyncio.Lock()

    def try_acquire(self) -> float:
        """Take a token and return 0, or return the seconds until one is available."""
        decision, self._state = take(
            self._state, now=self._clock(), per_minute=self.rate_per_minute, burst=self.burst
        )
        return decision.retry_after

    async def acquire(self) -> None:
        async with self._lock:  # first come, first served
            while (wait := self.try_acquire()) > 0:
                await self._sleep(wait)
