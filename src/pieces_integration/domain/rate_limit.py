"""Token bucket (pure): capacity `burst`, refilled at `per_minute / 60` tokens a second.

Used inbound (the API's per-user limit, `adapters/rate_limiters.py`) and outbound (calls to
Pieces OS, `adapters/resilience.TokenBucket`). The Redis adapter runs the same arithmetic in
a Lua script so replicas share one bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Refill arithmetic drifts: after waiting exactly `retry_after` a bucket may hold
# 0.9999999999 tokens. Counting that as a whole token keeps a waiter from spinning on
# ever smaller waits (which a clock with coarse steps would never get past).
_DRIFT = 1e-9


@dataclass(frozen=True, slots=True)
class BucketState:
    tokens: float
    updated_at: float  # seconds, any monotonic-enough clock shared by the deciders


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the bucket is full again
    retry_after: float  # seconds until one request would be allowed (0 if allowed)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One limit a request must pass: its key, refill rate and capacity."""

    key: str
    per_minute: int
    burst: int


def tightest(decisions: list[Decision]) -> Decision:
    """The decision a client is told about when several buckets applied: a refusing one
    (the longest wait if several refuse), else the one with the fewest requests left (the
    later full refill on a tie)."""
    if not decisions:
        raise ValueError("tightest() needs at least one decision")
    refused = [d for d in decisions if not d.allowed]
    if refused:
        return max(refused, key=lambda d: d.retry_after)
    return min(decisions, key=lambda d: (d.remaining, -d.reset_after))


def capacity(per_minute: float, burst: int) -> int:
    return max(burst, 1)


def take(
    state: BucketState | None, *, now: float, per_minute: float, burst: int
) -> tuple[Decision, BucketState]:
    cap = capacity(per_minute, burst)
    rate = per_minute / 60.0
    tokens = float(cap) if state is None else state.tokens
    if state is not None and now > state.updated_at:
        tokens = min(float(cap), tokens + (now - state.updated_at) * rate)
    allowed = tokens >= 1.0 - _DRIFT
    if allowed:
        tokens = max(0.0, tokens - 1.0)
    retry_after = 0.0 if allowed else (1.0 - tokens) / rate
    reset_after = (cap - tokens) / rate
    decision = Decision(allowed, cap, math.floor(tokens), reset_after, retry_after)
    return decision, BucketState(tokens, now)
