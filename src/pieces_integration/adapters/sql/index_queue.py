"""The durable work list of the search indexes (table `index_queue`).

Why a table: the semantic tier embeds assets seconds after they are stored, and the process
may stop in between. Every asset write enqueues in the SAME transaction as the write (the
unit of work's asset repository is `QueueingAssetRepository`), so a committed asset always
has either its vectors or a queue row, whichever write path stored it (API, sync import,
privacy import, conflict resolution, webhooks). One row per asset: a newer write replaces
the older row, so a burst of edits is embedded once.

Claiming works across processes: a row is leased (`claimed_until`) by one conditional
UPDATE, so several index workers can drain one queue; a crashed worker's lease expires.
A row is removed only if it was not replaced meanwhile (same `enqueued_at`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pieces_integration.adapters.sql._time import aware_required
from pieces_integration.adapters.sql.assets import SqlAssetRepository
from pieces_integration.adapters.sql.tables import index_queue
from pieces_integration.domain.model import Asset, utcnow
from pieces_integration.ports.index_queue import DELETE, UPSERT, IndexTask

if TYPE_CHECKING:
    from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory


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


def _task(row: sa.Row[Any]) -> IndexTask:
    return IndexTask(
        asset_id=str(row.asset_id),
        user_id=row.user_id,
        operation=str(row.operation),
        content_hash=row.content_hash,
        enqueued_at=aware_required(row.enqueued_at),
        attempts=int(row.attempts),
    )


class SqlIndexQueue:
    """Claim / acknowledge / retry over `index_queue`, through the unit-of-work factory so the
    SQLite write lock is respected."""

    def __init__(self, uow: SqlUnitOfWorkFactory) -> None:
        self._uow = uow

    async def claim(
        self, *, limit: int, settle_seconds: float, lease_seconds: float
    ) -> list[IndexTask]:
        """Lease up to `limit` rows at least `settle_seconds` old, oldest first."""
        now = utcnow()
        ready = now - timedelta(seconds=settle_seconds)
        free = sa.or_(index_queue.c.claimed_until.is_(None), index_queue.c.claimed_until < now)
        async with self._uow() as uow:
            conn = uow.connection
            rows = (
                await conn.execute(
                    sa.select(index_queue)
                    .where(index_queue.c.enqueued_at <= ready, free)
                    .order_by(index_queue.c.enqueued_at)
                    .limit(limit)
                )
            ).all()
            claimed: list[IndexTask] = []
            lease = now + timedelta(seconds=lease_seconds)
            for row in rows:
                # Conditional per row: of two workers racing for a row, exactly one wins.
                result = await conn.execute(
                    sa.update(index_queue)
                    .where(
                        index_queue.c.asset_id == row.asset_id,
                        index_queue.c.enqueued_at == row.enqueued_at,
                        free,
                    )
                    .values(claimed_until=lease, attempts=index_queue.c.attempts + 1)
                )
                if result.rowcount:
                    claimed.append(_task(row))
            await uow.commit()
        return claimed

    async def ack(self, tasks: Sequence[IndexTask]) -> int:
        """Remove finished rows, unless the asset was written again since they were claimed."""
        if not tasks:
            return 0
        done = 0
        async with self._uow() as uow:
            for task in tasks:
                result = await uow.connection.execute(
                    sa.delete(index_queue).where(
                        index_queue.c.asset_id == task.asset_id,
                        index_queue.c.enqueued_at == task.enqueued_at,
                    )
                )
                done += result.rowcount
            await uow.commit()
        return done

    async def retry_later(self, tasks: Sequence[IndexTask], *, delay_seconds: float) -> None:
        """Keep the rows, leased until `delay_seconds` from now (a back-off after a failure)."""
        until = utcnow() + timedelta(seconds=delay_seconds)
        async with self._uow() as uow:
            for task in tasks:
                await uow.connection.execute(
                    sa.update(index_queue)
                    .where(
                        index_queue.c.asset_id == task.asset_id,
                        index_queue.c.enqueued_at == task.enqueued_at,
                    )
                    .values(claimed_until=until)
                )
            await uow.commit()

    async def depth(self) -> int:
        async with self._uow(readonly=True) as uow:
            result = await uow.connection.execute(
                sa.select(sa.func.count()).select_from(index_queue)
            )
            return int(result.scalar_one())

    async def purge_user(self, user_id: str) -> int:
        async with self._uow() as uow:
            result = await uow.connection.execute(
                sa.delete(index_queue).where(index_queue.c.user_id == user_id)
            )
            await uow.commit()
        return int(result.rowcount)
