"""SQL repository for sync conflicts and asset backups."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pieces_integration.adapters.sql._time import aware, aware_required
from pieces_integration.adapters.sql.tables import asset_backups, conflicts
from pieces_integration.domain.model import AssetBackup, AssetConflict


def _to_conflict(row: sa.Row[Any]) -> AssetConflict:
    return AssetConflict(
        id=row.id,
        user_id=row.user_id,
        asset_id=row.asset_id,
        side=str((row.ours or {}).get("_side", "pieces")),
        base=row.base,
        ours={k: v for k, v in row.ours.items() if k != "_side"},
        theirs=row.theirs,
        strategy=row.strategy,
        status=row.status,
        resolution=row.resolution,
        created_at=aware_required(row.created_at),
        resolved_at=aware(row.resolved_at),
    )


class SqlConflictRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, conflict: AssetConflict) -> None:
        await self._conn.execute(
            sa.insert(conflicts).values(
                id=conflict.id,
                user_id=conflict.user_id,
                asset_id=conflict.asset_id,
                base=conflict.base,
                # The side rides along inside `ours`, avoiding a column for one string.
                ours={**conflict.ours, "_side": conflict.side},
                theirs=conflict.theirs,
                status=conflict.status,
                strategy=conflict.strategy,
                resolution=conflict.resolution,
                created_at=conflict.created_at,
                resolved_at=conflict.resolved_at,
            )
        )

    async def get(self, conflict_id: str) -> AssetConflict | None:
        row = (
            await self._conn.execute(sa.select(conflicts).where(conflicts.c.id == conflict_id))
        ).first()
        return None if row is None else _to_conflict(row)

    async def for_user(self, user_id: str, *, status: str | None = None) -> list[AssetConflict]:
        query = (
            sa.select(conflicts)
            .where(conflicts.c.user_id == user_id)
            .order_by(conflicts.c.created_at.desc(), conflicts.c.id)
        )
        if status is not None:
            query = query.where(conflicts.c.status == status)
        return [_to_conflict(row) for row in await self._conn.execute(query)]

    async def resolve(self, conflict: AssetConflict) -> None:
        await self._conn.execute(
            sa.update(conflicts)
            .where(conflicts.c.id == conflict.id)
            .values(
                status=conflict.status,
                resolution=conflict.resolution,
                resolved_at=conflict.resolved_at,
            )
        )

    async def add_backup(self, backup: AssetBackup) -> None:
        await self._conn.execute(
            sa.insert(asset_backups).values(
                id=backup.id,
                user_id=backup.user_id,
                asset_id=backup.asset_id,
                conflict_id=backup.conflict_id,
                reason=backup.reason,
                snapshot=backup.snapshot,
                created_at=backup.created_at,
            )
        )

    async def backups(self, user_id: str, *, asset_id: str | None = None) -> list[AssetBackup]:
        query = (
            sa.select(asset_backups)
            .where(asset_backups.c.user_id == user_id)
            .order_by(asset_backups.c.created_at, asset_backups.c.id)
        )
        if asset_id is not None:
            query = query.where(asset_backups.c.asset_id == asset_id)
        return [
            AssetBackup(
                id=row.id,
                user_id=row.user_id,
                asset_id=row.asset_id,
                conflict_id=row.conflict_id,
                reason=row.reason,
                snapshot=row.snapshot,
                created_at=aware_required(row.created_at),
            )
            for row in await self._conn.execute(query)
        ]
