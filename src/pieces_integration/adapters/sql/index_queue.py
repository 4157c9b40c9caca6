"""The read side of the search indexes' durable work list (table `index_queue`).

Why a table: the semantic tier embeds assets seconds after they are stored, and the process
may stop in between; the rows are written with the assets (`index_changes`).

Claiming works across processes: a row is leased (`claimed_until`) by one conditional
UPDATE, so several index workers can drain one queue; a crashed worker's lease expires.
A row is removed only if it was not replaced meanwhile (same `enqueued_at`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from pieces_integration.adapters.sql._time import aware_required
from pieces_integration.adapters.sql.tables import index_queue
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.domain.model import utcnow
from pieces_integration.ports.index_queue import IndexTask


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
