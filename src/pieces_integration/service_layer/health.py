"""Readiness: run each configured dependency check concurrently, each under its own timeout.

Critical checks (our own storage) decide readiness; non-critical ones (Pieces OS, AIWFE)
are reported but never make the service unready (DEVIATIONS 15, spec 9.2).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HealthCheck:
    name: str
    probe: Callable[[], Awaitable[None]]
    timeout: float
    critical: bool


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    healthy: bool
    critical: bool
    duration_ms: float
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    checks: list[CheckResult]

    @property
    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if check.critical and not check.healthy]


async def _run(check: HealthCheck) -> CheckResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(check.timeout):
            await check.probe()
    except TimeoutError:
        message: str | None = f"no answer within {check.timeout:g}s"
        healthy = False
    except Exception as exc:  # a probe's failure is data here, never a crash
        message = f"{type(exc).__name__}: {exc}".strip()[:300]
        healthy = False
    else:
        message, healthy = None, True
    elapsed = (time.perf_counter() - started) * 1000
    return CheckResult(check.name, healthy, check.critical, round(elapsed, 2), message)


async def check_readiness(checks: Sequence[HealthCheck]) -> Readiness:
    results = list(await asyncio.gather(*(_run(check) for check in checks)))
    return Readiness(all(r.healthy for r in results if r.critical), results)
