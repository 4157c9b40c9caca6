"""Backoff, the shared retry loop, circuit breaker and token bucket, all on a fake clock."""

from __future__ import annotations

import random

import httpx
import pytest

from pieces_integration.adapters.pieces_os.client import PiecesOSClient
from pieces_integration.adapters.pieces_os.transport import HttpxPiecesTransport
from pieces_integration.adapters.resilience import (
    MAX_RETRY_AFTER,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    RetryPolicy,
    TokenBucket,
    Transient,
    call_with_retries,
    retry_after_seconds,
)
from pieces_integration.domain.backoff import exponential_backoff, jittered
from pieces_integration.domain.errors import RateLimited
from tests.fakes import FakeClock


def test_backoff_doubles_up_to_the_cap_and_never_overflows() -> None:
    delays = [exponential_backoff(n, base=1.0, cap=60.0) for n in range(0, 9)]
    assert delays == [0, 1, 2, 4, 8, 16, 32, 60, 60]
    assert exponential_backoff(100_000, base=1.0, cap=60.0) == 60.0


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
    clock.advance(10)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # the single trial
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # nobody else while the trial runs
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN  # failed trial: open again
    clock.advance(10)
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


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"Retry-After": "7"}, 7.0), ({"retry-after": "0.5"}, 0.5), ({"Retry-After": "-3"}, 0.0)],
)
def test_retry_after_is_read_in_any_letter_case(headers: dict[str, str], seconds: float) -> None:
    assert retry_after_seconds(headers) == seconds


@pytest.mark.parametrize("raw", ["soon", "Wed, 21 Oct 2015 07:28:00 GMT", "nan"])
def test_a_retry_after_that_is_not_a_number_of_seconds_is_ignored(raw: str) -> None:
    assert retry_after_seconds({"Retry-After": raw}) is None
    assert retry_after_seconds({}) is None


@pytest.mark.anyio
async def test_the_retry_loop_waits_as_told_then_backs_off_and_caps_long_waits() -> None:
    clock = FakeClock()
    answers = [Transient(OSError("a"), 4.0), Transient(OSError("b")), Transient(OSError("c"), 1e6)]

    async def attempt() -> str:
        if answers:
            raise answers.pop(0)
        return "ok"

    policy = RetryPolicy(attempts=4, base_delay=0.2, max_delay=5.0, rng=random.Random(2))
    result = await call_with_retries(
        attempt,
        attempts=4,
        policy=policy,
        breaker=CircuitBreaker(),
        sleep=clock.sleep,
        circuit_open=lambda exc: RuntimeError(str(exc)),
    )
    assert result == "ok"
    told, backed_off, capped = clock.slept
    assert told == 4.0 and 0 <= backed_off <= 0.4 and capped == MAX_RETRY_AFTER


class ScriptedPieces:
    """A Pieces OS that answers the given (status, headers) in turn, then 200."""

    def __init__(self, *answers: tuple[int, dict[str, str]]) -> None:
        self.answers = list(answers)
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.answers:
            status, headers = self.answers.pop(0)
            return httpx.Response(status, headers=headers, text="busy")
        return httpx.Response(200, json={"iterable": [{"id": "a1"}]})


def pieces_client(server: ScriptedPieces, clock: FakeClock, attempts: int = 3) -> PiecesOSClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return PiecesOSClient(
        HttpxPiecesTransport(http, "http://127.0.0.1:39300"),
        retry=RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.05),
        limiter=TokenBucket(rate_per_minute=60_000, burst=100, clock=clock, sleep=clock.sleep),
        breaker=CircuitBreaker(failure_threshold=50, clock=clock),
        sleep=clock.sleep,
    )


@pytest.mark.anyio
async def test_the_pieces_client_waits_as_long_as_retry_after_says() -> None:
    clock = FakeClock()
    server = ScriptedPieces((429, {"Retry-After": "2"}), (503, {"Retry-After": "7"}))
    client = pieces_client(server, clock)
    assert await client.asset_ids() == ["a1"]
    await client.aclose()
    assert server.requests == 3
    assert clock.slept == [2.0, 7.0]  # not the 0.01-0.05 s backoff


@pytest.mark.anyio
async def test_the_last_429_reports_when_to_come_back_even_with_a_bad_header() -> None:
    clock = FakeClock()
    server = ScriptedPieces((429, {"Retry-After": "12"}), (429, {"Retry-After": "later"}))
    client = pieces_client(server, clock, attempts=2)
    with pytest.raises(RateLimited) as caught:
        await client.asset_ids()
    await client.aclose()
    assert clock.slept == [12.0]
    assert caught.value.details["retry_after"] == 1.0  # unreadable: the old default of 1 s
