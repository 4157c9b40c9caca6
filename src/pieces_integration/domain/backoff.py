"""How long to wait before trying again: the one exponential backoff, and a proportional spread.

Every retry in the service waits `exponential_backoff(...)`: outbound HTTP calls with full
jitter (the AWS "Exponential Backoff And Jitter" scheme: many clients failing together do
not retry together), reconnects and the outbox without it (their delay is shown to people or
stored). Randomness is passed in, so tests pick the draw.
"""

from __future__ import annotations

import random

# 2**62 s is far beyond any cap; bounding the exponent keeps a huge attempt count from
# overflowing the float.
_MAX_EXPONENT = 62


def exponential_backoff(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """The wait after failed attempt `attempt` (1-based): `base * 2**(attempt-1)`, at most
    `cap`; with `rng`, uniform in [0, that] ("full jitter"). 0 before the first attempt."""
    if attempt < 1:
        return 0.0
    ceiling = float(min(cap, base * 2.0 ** min(attempt - 1, _MAX_EXPONENT)))
    return ceiling if rng is None else rng.uniform(0.0, ceiling)


def jittered(delay: float, rng: random.Random, spread: float = 0.2) -> float:
    """`delay` ± `spread` (a fraction of it), never negative: periodic work and reconnects
    that must not fall into lock-step, where full jitter would sometimes not wait at all."""
    return max(0.0, delay * (1 + rng.uniform(-spread, spread)))
