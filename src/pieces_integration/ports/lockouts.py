"""Port for failed-authentication counters with growing lockouts (issue 20)."""

from __future__ import annotations

from typing import Protocol

from pieces_integration.domain.lockout import LockoutPolicy


class FailureCounters(Protocol):
    """Shared by every replica when the adapter is distributed (Redis)."""

    async def retry_after(self, *keys: str) -> list[float]:
        """Each key's remaining lockout in seconds (0: none), in one round trip."""
        ...

    async def fail(self, key: str, policy: LockoutPolicy) -> float:
        """Count one failure; returns the lockout it started (0: none)."""
        ...

    async def mark(self, key: str, *, ttl: float) -> None:
        """Remember `key` for `ttl` seconds (an address that signed in as an identity)."""
        ...

    async def marked(self, key: str) -> bool: ...
