"""SQL repository for user preferences (one row per user; absent means the defaults)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pieces_integration.adapters.sql.tables import user_preferences
from pieces_integration.domain.model import utcnow
from pieces_integration.domain.preferences import Preferences


class SqlPreferencesRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def get(self, user_id: str) -> Preferences | None:
        row = (
            await self._conn.execute(
                sa.select(user_preferences).where(user_preferences.c.user_id == user_id)
            )
        ).first()
        if row is None:
            return None
        return Preferences.from_record(
            {
                "sync_frequency_seconds": row.sync_frequency_seconds,
                "notifications": row.notifications,
                "sharing_default": row.sharing_default,
            }
        )

    async def save(self, user_id: str, preferences: Preferences) -> None:
        record = preferences.to_record()
        values = {
            "sync_frequency_seconds": record["sync_frequency_seconds"],
            "notifications": record["notifications"],
            "sharing_default": record["sharing_default"],
            "updated_at": utcnow(),
        }
        updated = await self._conn.execute(
            sa.update(user_preferences)
            .where(user_preferences.c.user_id == user_id)
            .values(**values)
        )
        if not updated.rowcount:
            await self._conn.execute(sa.insert(user_preferences).values(user_id=user_id, **values))

    async def custom_intervals(self) -> dict[str, int]:
        """Users whose sync frequency is not the service default, and theirs."""
        rows = await self._conn.execute(
            sa.select(user_preferences.c.user_id, user_preferences.c.sync_frequency_seconds).where(
                user_preferences.c.sync_frequency_seconds.is_not(None)
            )
        )
        return {row[0]: int(row[1]) for row in rows}
