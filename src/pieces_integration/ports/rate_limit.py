"""Port for inbound rate limiting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pieces_integration.domain.rate_limit import Bucket, Decision


class RateLimiter(Protocol):
    async def hit(self, key: str, *, per_minute: int, burst: int) -> Decision: ...

    async def hit_all(self, buckets: Sequence[Bucket]) -> list[Decision]:
        """One request against several buckets (a user's and their tenant's), atomically:
        it takes a token from each only if every one has a token, else from none. One
        decision per bucket, in order, saying whether that bucket had a token: the request
        passed only if every decision allows it."""
        ...

    async def forget(self, key: str) -> None:
        """Drop the key's bucket (user deletion); its next hit starts with a full bucket."""
        ...
