"""Port for inbound rate limiting."""

from __future__ import annotations

from typing import Protocol

from pieces_integration.domain.rate_limit import Decision


class RateLimiter(Protocol):
    async def hit(self, key: str, *, per_minute: int, burst: int) -> Decision: ...

    async def forget(self, key: str) -> None:
        """Drop the key's bucket (user deletion); its next hit starts with a full bucket."""
        ...
