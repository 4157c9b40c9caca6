"""SQL repository for suggestion feedback."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pieces_integration.adapters.sql._time import aware_required
from pieces_integration.adapters.sql.tables import suggestion_feedback
from pieces_integration.domain.model import SuggestionFeedback


class SqlFeedbackRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, feedback: SuggestionFeedback) -> None:
        result = await self._conn.execute(
            sa.insert(suggestion_feedback)
            .values(
                user_id=feedback.user_id,
                suggestion_id=feedback.suggestion_id,
                asset_id=feedback.asset_id,
                action=feedback.action,
                context_hash=feedback.context_hash,
                created_at=feedback.created_at,
            )
            .returning(suggestion_feedback.c.id)
        )
        feedback.id = int(result.scalar_one())

    async def for_user(
        self, user_id: str, *, asset_id: str | None = None
    ) -> list[SuggestionFeedback]:
        query = (
            sa.select(suggestion_feedback)
            .where(suggestion_feedback.c.user_id == user_id)
            .order_by(suggestion_feedback.c.id)
        )
        if asset_id is not None:
            query = query.where(suggestion_feedback.c.asset_id == asset_id)
        return [
            SuggestionFeedback(
                id=row.id,
                user_id=row.user_id,
                suggestion_id=row.suggestion_id,
                asset_id=row.asset_id,
                action=row.action,
                context_hash=row.context_hash,
                created_at=aware_required(row.created_at),
            )
            for row in await self._conn.execute(query)
        ]
