"""Port for inbound rate limiting."""

from __future__ import annotations

from typing import Protocol

from pieces_integration.domain.rate_limit import Decision


class RateLimiter(Protocol):
    async def hit(self, key: str, *, per_minute: int, burst: int) -> Decision: ...
