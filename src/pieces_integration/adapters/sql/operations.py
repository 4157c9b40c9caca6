"""SQL repositories for the outbox, sync runs and the webhook inbox."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pieces_integration.adapters.sql._time import aware, aware_required
from pieces_integration.adapters.sql.tables import outbox, sync_errors, sync_runs, webhook_events
from pieces_integration.domain.model import OutboxMessage, SyncError, SyncRun


def _to_message(row: sa.Row[Any]) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        user_id=row.user_id,
        target=row.target,
        operation=row.operation,
        aggregate_id=row.aggregate_id,
        payload=dict(row.payload),
        idempotency_key=row.idempotency_key,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=aware_required(row.next_attempt_at),
        created_at=aware_required(row.created_at),
        delivered_at=aware(row.delivered_at),
        last_error=row.last_error,
    )


class SqlOutboxRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, message: OutboxMessage) -> bool:
        exists = await self._conn.execute(
            sa.select(outbox.c.id).where(outbox.c.idempotency_key == message.idempotency_key)
        )
        if exists.first() is not None:
            return False
        # A savepoint keeps a concurrent duplicate from aborting the caller's transaction.
        try:
            async with self._conn.begin_nested():
                result = await self._conn.execute(
                    sa.insert(outbox)
                    .values(
                        user_id=message.user_id,
                        target=message.target,
                        operation=message.operation,
                        aggregate_id=message.aggregate_id,
                        payload=message.payload,
                        idempotency_key=message.idempotency_key,
                        status=message.status,
                        attempts=message.attempts,
                        next_attempt_at=message.next_attempt_at,
                        created_at=message.created_at,
                    )
                    .returning(outbox.c.id)
                )
                message.id = int(result.scalar_one())
        except IntegrityError:
            return False
        return True

    async def claim_due(
        self, worker: str, *, now: datetime, lease_seconds: float, limit: int
    ) -> list[OutboxMessage]:
        """Lease up to `limit` due messages to `worker`; others skip them until the lease ends."""
        candidates = (
            sa.select(outbox.c.id)
            .where(
                outbox.c.status == "pending",
                outbox.c.next_attempt_at <= now,
                sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
            )
            .order_by(outbox.c.id)
            .limit(limit)
        )
        if self._conn.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        ids = [row[0] for row in await self._conn.execute(candidates)]
        if not ids:
            return []
        until = now + timedelta(seconds=lease_seconds)
        await self._conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_(ids))
            .values(claimed_by=worker, claimed_until=until)
        )
        rows = await self._conn.execute(
            sa.select(outbox).where(outbox.c.id.in_(ids)).order_by(outbox.c.id)
        )
        return [_to_message(row) for row in rows]

    async def mark_delivered(self, message_id: int, worker: str, at: datetime) -> bool:
        result = await self._conn.execute(
            sa.update(outbox)
            .where(
                outbox.c.id == message_id,
                outbox.c.claimed_by == worker,
                outbox.c.status == "pending",
            )
            .values(
                status="delivered",
                delivered_at=at,
                attempts=outbox.c.attempts + 1,
                claimed_until=None,
            )
        )
        return bool(result.rowcount)

    async def due_users(self, now: datetime) -> list[str]:
        rows = await self._conn.execute(
            sa.select(outbox.c.user_id)
            .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
            .distinct()
        )
        return [row[0] for row in rows]

    async def defer(self, message_id: int, *, until: datetime, error: str) -> None:
        """Not deliverable now (its side is down or disconnected): try again later."""
        await self._conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == message_id, outbox.c.status == "pending")
            .values(next_attempt_at=until, attempts=outbox.c.attempts + 1, last_error=error[:2000])
        )

    async def settle(self, message_id: int, *, at: datetime) -> None:
        """Delivered by another path (a sync run carried it): close it whoever holds it."""
        await self._conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == message_id, outbox.c.status == "pending")
            .values(status="delivered", delivered_at=at, claimed_until=None)
        )

    async def mark_failed(
        self, message_id: int, worker: str, *, error: str, retry_at: datetime | None
    ) -> None:
        values: dict[str, Any] = {
            "attempts": outbox.c.attempts + 1,
            "last_error": error[:2000],
            "claimed_until": None,
        }
        if retry_at is None:
            values["status"] = "failed"
        else:
            values["next_attempt_at"] = retry_at
        await self._conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == message_id, outbox.c.claimed_by == worker)
            .values(**values)
        )

    async def pending_for(self, user_id: str, *, target: str | None = None) -> list[OutboxMessage]:
        query = (
            sa.select(outbox)
            .where(outbox.c.user_id == user_id, outbox.c.status == "pending")
            .order_by(outbox.c.id)
        )
        if target is not None:
            query = query.where(outbox.c.target == target)
        return [_to_message(row) for row in await self._conn.execute(query)]

    async def pending_count(self, user_id: str | None = None) -> int:
        query = sa.select(sa.func.count()).where(outbox.c.status == "pending")
        if user_id is not None:
            query = query.where(outbox.c.user_id == user_id)
        return int((await self._conn.execute(query)).scalar_one())


class SqlSyncRunRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    @staticmethod
    def _values(run: SyncRun) -> dict[str, Any]:
        return {
            "status": run.status,
            "completed_at": run.completed_at,
            "pieces_to_aiwfe": run.pieces_to_aiwfe,
            "aiwfe_to_pieces": run.aiwfe_to_pieces,
            "conflicts_resolved": run.conflicts_resolved,
        }

    async def _write_errors(self, run: SyncRun) -> None:
        await self._conn.execute(sa.delete(sync_errors).where(sync_errors.c.sync_id == run.id))
        if run.errors:
            await self._conn.execute(
                sa.insert(sync_errors),
                [
                    {
                        "sync_id": run.id,
                        "code": error.code,
                        "message": error.message,
                        "item_id": error.item_id,
                        "item_type": error.item_type,
                        "severity": error.severity,
                        "timestamp": error.timestamp,
                    }
                    for error in run.errors
                ],
            )

    async def add(self, run: SyncRun) -> None:
        await self._conn.execute(
            sa.insert(sync_runs).values(
                id=run.id,
                user_id=run.user_id,
                trigger=run.trigger,
                started_at=run.started_at,
                **self._values(run),
            )
        )
        await self._write_errors(run)

    async def update(self, run: SyncRun) -> None:
        await self._conn.execute(
            sa.update(sync_runs).where(sync_runs.c.id == run.id).values(**self._values(run))
        )
        await self._write_errors(run)

    async def _load(self, row: sa.Row[Any]) -> SyncRun:
        errors = await self._conn.execute(
            sa.select(sync_errors).where(sync_errors.c.sync_id == row.id).order_by(sync_errors.c.id)
        )
        return SyncRun(
            id=row.id,
            user_id=row.user_id,
            trigger=row.trigger,
            status=row.status,
            started_at=aware_required(row.started_at),
            completed_at=aware(row.completed_at),
            pieces_to_aiwfe=row.pieces_to_aiwfe,
            aiwfe_to_pieces=row.aiwfe_to_pieces,
            conflicts_resolved=row.conflicts_resolved,
            errors=[
                SyncError(
                    code=e.code,
                    message=e.message,
                    item_id=e.item_id,
                    item_type=e.item_type,
                    severity=e.severity,
                    timestamp=aware_required(e.timestamp),
                )
                for e in errors
            ],
        )

    async def get(self, sync_id: str) -> SyncRun | None:
        row = (
            await self._conn.execute(sa.select(sync_runs).where(sync_runs.c.id == sync_id))
        ).first()
        return None if row is None else await self._load(row)

    async def latest(self, user_id: str, *, status: str | None = None) -> SyncRun | None:
        query = sa.select(sync_runs).where(sync_runs.c.user_id == user_id)
        if status is not None:
            query = query.where(sync_runs.c.status == status)
        row = (await self._conn.execute(query.order_by(sync_runs.c.started_at.desc()))).first()
        return None if row is None else await self._load(row)


class SqlWebhookInbox:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def record_once(
        self, event_id: str, *, source: str, type: str, user_id: str | None, at: datetime
    ) -> bool:
        seen = await self._conn.execute(
            sa.select(webhook_events.c.id).where(webhook_events.c.id == event_id)
        )
        if seen.first() is not None:
            return False
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    sa.insert(webhook_events).values(
                        id=event_id, source=source, type=type, user_id=user_id, received_at=at
                    )
                )
        except IntegrityError:
            return False
        return True


class SqlUserDataPurger:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def purge(self, user_id: str) -> int:
        removed = 0
        for table in (outbox, webhook_events):
            result = await self._conn.execute(sa.delete(table).where(table.c.user_id == user_id))
            removed += result.rowcount or 0
        return removed
