"""Retry backoff, circuit breaker and token bucket with a fake clock."""

from __future__ import annotations

import random

import pytest

from pieces_integration.adapters.resilience import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    RetryPolicy,
    TokenBucket,
    jittered,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_retry_delays_use_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(attempts=5, base_delay=0.2, max_delay=1.0, rng=random.Random(3))
    for attempt, ceiling in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (9, 1.0)]:
        samples = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread across the range, not a constant
    assert 0.8 <= jittered(1.0, random.Random(1)) <= 1.2


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=10, clock=clock)
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now += 10
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # the single trial
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # nobody else while the trial runs
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN  # failed trial: open again
    clock.now += 10
    breaker.before_call()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.anyio
async def test_token_bucket_allows_a_burst_then_100_per_minute() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_minute=100, burst=10, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        await bucket.acquire()
    assert clock.now == 0  # the burst is free
    for _ in range(100):
        await bucket.acquire()
    assert clock.now == pytest.approx(60.0, rel=0.01)  # then 100 per minute
