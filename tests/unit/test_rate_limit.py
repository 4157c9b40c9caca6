"""The token bucket (pure) and the in-process limiter built on it."""

from __future__ import annotations

import pytest

from pieces_integration.adapters.rate_limiters import MemoryRateLimiter
from pieces_integration.domain.rate_limit import BucketState, Decision, capacity, take
from tests.fakes import FakeClock


def _drain(
    n: int, *, per_minute: int = 60, burst: int = 10, now: float = 0.0
) -> tuple[list[Decision], BucketState | None]:
    state: BucketState | None = None
    decisions = []
    for _ in range(n):
        decision, state = take(state, now=now, per_minute=per_minute, burst=burst)
        decisions.append(decision)
    return decisions, state


def test_a_fresh_bucket_allows_exactly_the_burst() -> None:
    decisions, _ = _drain(12)
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 2
    assert [d.remaining for d in decisions[:10]] == list(range(9, -1, -1))
    assert all(d.limit == 10 for d in decisions)
    assert decisions[0].retry_after == 0.0


def test_a_refused_request_says_when_to_retry() -> None:
    decisions, _ = _drain(11, per_minute=60)  # one token a second
    refused = decisions[-1]
    assert not refused.allowed and refused.remaining == 0
    assert refused.retry_after == pytest.approx(1.0)
    assert refused.reset_after == pytest.approx(10.0)


def test_tokens_refill_at_the_per_minute_rate_up_to_capacity() -> None:
    _, state = _drain(10, per_minute=120)  # two tokens a second
    assert state is not None and state.tokens == pytest.approx(0.0)
    decision, half = take(state, now=0.4, per_minute=120, burst=10)
    assert not decision.allowed  # 0.8 of a token
    assert decision.retry_after == pytest.approx(0.1)
    decision, after = take(half, now=1.0, per_minute=120, burst=10)
    assert decision.allowed and after.tokens == pytest.approx(1.0)
    # A long pause refills to the burst, never beyond.
    decision, full = take(after, now=3600.0, per_minute=120, burst=10)
    assert decision.allowed and full.tokens == pytest.approx(9.0)


def test_a_clock_going_backwards_never_adds_tokens() -> None:
    _, state = _drain(10, now=100.0)
    decision, _ = take(state, now=50.0, per_minute=60, burst=10)
    assert not decision.allowed


def test_the_capacity_is_at_least_one() -> None:
    assert capacity(60, 0) == 1
    decisions, _ = _drain(2, burst=0)
    assert [d.allowed for d in decisions] == [True, False]


@pytest.mark.anyio
async def test_the_memory_limiter_keeps_one_bucket_per_key() -> None:
    clock = FakeClock(now=1000.0)
    limiter = MemoryRateLimiter(clock=clock)
    alice = [await limiter.hit("user:alice", per_minute=60, burst=3) for _ in range(4)]
    assert [d.allowed for d in alice] == [True, True, True, False]
    assert (await limiter.hit("user:bob", per_minute=60, burst=3)).allowed
    clock.advance(1.0)
    assert (await limiter.hit("user:alice", per_minute=60, burst=3)).allowed
    assert not (await limiter.hit("user:alice", per_minute=60, burst=3)).allowed


@pytest.mark.anyio
async def test_the_memory_limiter_forgets_old_keys_when_full() -> None:
    limiter = MemoryRateLimiter(max_keys=4, clock=FakeClock())
    for key in "abcd":
        await limiter.hit(key, per_minute=60, burst=1)
    assert len(limiter._buckets) == 4
    await limiter.hit("e", per_minute=60, burst=1)
    assert len(limiter._buckets) <= 4 and "e" in limiter._buckets
    # A forgotten key starts over with a full bucket: never a false refusal.
    assert (await limiter.hit("a", per_minute=60, burst=1)).allowed


@pytest.mark.anyio
async def test_an_active_users_bucket_survives_many_other_users() -> None:
    """Eviction is by last use, not by first sight: the user who keeps calling (and is out
    of tokens) is never the one forgotten, so strangers cannot reset their limit."""
    limiter = MemoryRateLimiter(max_keys=10, clock=FakeClock())
    assert (await limiter.hit("user:active", per_minute=1, burst=1)).allowed
    for n in range(50):  # the active user keeps calling while others fill the store
        assert not (await limiter.hit("user:active", per_minute=1, burst=1)).allowed
        await limiter.hit(f"user:other{n}", per_minute=1, burst=1)
    assert "user:active" in limiter._buckets
    assert not (await limiter.hit("user:active", per_minute=1, burst=1)).allowed
