"""Port of the durable index queue: asset writes waiting for the search indexes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

UPSERT = "upsert"
DELETE = "delete"


@dataclass(frozen=True, slots=True)
class IndexTask:
    asset_id: str
    user_id: str | None
    operation: str  # UPSERT | DELETE
    content_hash: str | None
    enqueued_at: datetime
    attempts: int = 0


class IndexQueue(Protocol):
    async def claim(
        self, *, limit: int, settle_seconds: float, lease_seconds: float
    ) -> list[IndexTask]:
        """Lease up to `limit` tasks at least `settle_seconds` old, oldest first."""
        ...

    async def ack(self, tasks: Sequence[IndexTask]) -> int:
        """Remove done tasks unless their asset was written again meanwhile."""
        ...

    async def retry_later(self, tasks: Sequence[IndexTask], *, delay_seconds: float) -> None: ...

    async def depth(self) -> int: ...

    async def purge_user(self, user_id: str) -> int: ...
