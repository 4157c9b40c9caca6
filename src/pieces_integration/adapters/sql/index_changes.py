"""The write side of the search indexes' work list (table `index_queue`).

Every asset write enqueues in the SAME transaction as the write (the unit of work's asset
repository is `QueueingAssetRepository`), so a committed asset always has either its vectors
or a queue row, whichever write path stored it (API, sync import, privacy import, conflict
resolution, webhooks). One row per asset: a newer write replaces the older row, so a burst
of edits is embedded once. `IndexChanges` collects what one unit wrote for the after-commit
hooks (the keyword fast path). The read side (claiming rows) is `index_queue.SqlIndexQueue`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pieces_integration.adapters.sql.assets import SqlAssetRepository
from pieces_integration.adapters.sql.tables import index_queue
from pieces_integration.domain.model import Asset, utcnow
from pieces_integration.ports.index_queue import DELETE, UPSERT


@dataclass(slots=True)
class IndexChanges:
    """What one unit of work changed, handed to after-commit hooks (the keyword fast path)."""

    upserted: dict[str, Asset] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.upserted or self.deleted)

    def drain(self) -> IndexChanges:
        taken = IndexChanges(dict(self.upserted), set(self.deleted))
        self.upserted.clear()
        self.deleted.clear()
        return taken


async def enqueue(
    conn: AsyncConnection,
    *,
    asset_id: str,
    user_id: str | None,
    operation: str,
    content_hash: str | None,
) -> None:
    # Delete + insert instead of a dialect-specific upsert: same effect on both databases.
    await conn.execute(sa.delete(index_queue).where(index_queue.c.asset_id == asset_id))
    await conn.execute(
        sa.insert(index_queue).values(
            asset_id=asset_id,
            user_id=user_id,
            operation=operation,
            content_hash=content_hash,
            enqueued_at=utcnow(),
            claimed_until=None,
            attempts=0,
        )
    )


async def enqueue_upserts(conn: AsyncConnection, new: Sequence[Asset]) -> None:
    """`enqueue` for many assets at once (same effect, a few statements)."""
    ids = [asset.id for asset in new]
    for start in range(0, len(ids), 500):  # keep IN lists small for every backend
        await conn.execute(
            sa.delete(index_queue).where(index_queue.c.asset_id.in_(ids[start : start + 500]))
        )
    now = utcnow()
    await conn.execute(
        sa.insert(index_queue),
        [
            {
                "asset_id": asset.id,
                "user_id": asset.user_id,
                "operation": UPSERT,
                "content_hash": asset.content_hash,
                "enqueued_at": now,
                "claimed_until": None,
                "attempts": 0,
            }
            for asset in new
        ],
    )


class QueueingAssetRepository(SqlAssetRepository):
    """The SQL asset repository that also enqueues index work in the same transaction."""

    def __init__(self, connection: AsyncConnection, changes: IndexChanges) -> None:
        super().__init__(connection)
        self._queue_conn = connection
        self._changes = changes

    async def _queued(self, asset: Asset) -> None:
        await enqueue(
            self._queue_conn,
            asset_id=asset.id,
            user_id=asset.user_id,
            operation=UPSERT,
            content_hash=asset.content_hash,
        )
        self._changes.deleted.discard(asset.id)
        self._changes.upserted[asset.id] = asset

    async def add(self, asset: Asset) -> None:
        await super().add(asset)
        await self._queued(asset)

    async def add_many(self, new: Sequence[Asset]) -> None:
        if not new:
            return
        await super().add_many(new)
        await enqueue_upserts(self._queue_conn, new)
        for asset in new:
            self._changes.deleted.discard(asset.id)
            self._changes.upserted[asset.id] = asset

    async def update(self, asset: Asset, *, expected_version: int | None = None) -> None:
        await super().update(asset, expected_version=expected_version)
        await self._queued(asset)

    async def delete(self, asset_id: str) -> bool:
        deleted = await super().delete(asset_id)
        if deleted:
            await enqueue(
                self._queue_conn,
                asset_id=asset_id,
                user_id=None,
                operation=DELETE,
                content_hash=None,
            )
            self._changes.upserted.pop(asset_id, None)
            self._changes.deleted.add(asset_id)
        return deleted
