"""Growing lockouts after failed authentications (pure; issue 20).

A counter per subject (a client address, or an identity such as an API key prefix or a
user) counts failures within `window` seconds. The `threshold`-th failure starts a lockout
of `base` seconds, doubling with every further lockout up to `maximum`; the level decays
back to nothing after `forget_after` seconds without a failure. The Redis adapter runs the
same arithmetic in a Lua script so replicas share one counter.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    threshold: int  # failures within `window` that start a lockout
    window: float = 300.0
    base: float = 30.0
    maximum: float = 3600.0
    forget_after: float = 86_400.0

    def duration(self, level: int) -> float:
        """Lockout length at `level` (1 for the first)."""
        return float(min(self.maximum, self.base * 2.0 ** max(0, min(level - 1, 30))))


@dataclass(frozen=True, slots=True)
class LockoutState:
    count: int = 0
    window_start: float = 0.0
    level: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


def retry_after(state: LockoutState | None, now: float) -> float:
    """Seconds until the subject may try again (0: now)."""
    return 0.0 if state is None else max(0.0, state.locked_until - now)


def record_failure(
    state: LockoutState | None, *, now: float, policy: LockoutPolicy
) -> tuple[LockoutState, float]:
    """The state after one more failure, and the lockout it started (0: none)."""
    state = state or LockoutState()
    level = state.level if now - state.last_failure <= policy.forget_after else 0
    count, start = state.count, state.window_start
    if now - start > policy.window:
        count, start = 0, now
    count += 1
    if count >= policy.threshold:
        level += 1
        lockout = policy.duration(level)
        until = max(state.locked_until, now + lockout)
        return LockoutState(0, now, level, until, now), lockout
    return LockoutState(count, start, level, state.locked_until, now), 0.0
