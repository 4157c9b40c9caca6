"""SQL repository for user contexts and their change history."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pieces_integration.adapters.sql._time import aware, aware_required
from pieces_integration.adapters.sql.tables import context_changes, user_contexts
from pieces_integration.domain.model import (
    AIWFEContextState,
    ContextChange,
    PiecesContextState,
    UserContext,
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _pieces_state(raw: dict[str, Any] | None) -> PiecesContextState | None:
    if raw is None:
        return None
    last_sync = raw.get("last_sync")
    return PiecesContextState(
        connected=bool(raw.get("connected", False)),
        last_sync=datetime.fromisoformat(last_sync) if last_sync else None,
        sync_status=str(raw.get("sync_status", "idle")),
    )


def _aiwfe_state(raw: dict[str, Any] | None) -> AIWFEContextState | None:
    if raw is None:
        return None
    return AIWFEContextState(
        active_chat=raw.get("active_chat"),
        recent_queries=list(raw.get("recent_queries", [])),
        current_agent=raw.get("current_agent"),
    )


class SqlContextRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def get(self, user_id: str) -> UserContext | None:
        row = (
            await self._conn.execute(
                sa.select(user_contexts).where(user_contexts.c.user_id == user_id)
            )
        ).first()
        if row is None:
            return None
        return UserContext(
            user_id=row.user_id,
            workspace_id=row.workspace_id,
            current_task=row.current_task,
            active_project=row.active_project,
            active_files=list(row.active_files),
            recent_assets=list(row.recent_assets),
            keywords=list(row.keywords),
            language_preferences=list(row.language_preferences),
            pieces_context=_pieces_state(row.pieces_context),
            aiwfe_context=_aiwfe_state(row.aiwfe_context),
            version=row.version,
            last_updated=aware_required(row.last_updated),
        )

    async def save(self, context: UserContext) -> None:
        values = {
            "workspace_id": context.workspace_id,
            "current_task": context.current_task,
            "active_project": context.active_project,
            "active_files": context.active_files,
            "recent_assets": context.recent_assets,
            "keywords": context.keywords,
            "language_preferences": context.language_preferences,
            "pieces_context": _jsonable(asdict(context.pieces_context))
            if context.pieces_context
            else None,
            "aiwfe_context": asdict(context.aiwfe_context) if context.aiwfe_context else None,
            "version": context.version,
            "last_updated": context.last_updated,
        }
        result = await self._conn.execute(
            sa.update(user_contexts)
            .where(user_contexts.c.user_id == context.user_id)
            .values(**values)
        )
        if result.rowcount == 0:
            await self._conn.execute(
                sa.insert(user_contexts).values(user_id=context.user_id, **values)
            )

    async def add_change(self, change: ContextChange) -> None:
        result = await self._conn.execute(
            sa.insert(context_changes)
            .values(
                user_id=change.user_id,
                field=change.field,
                old_value=_jsonable(change.old_value),
                new_value=_jsonable(change.new_value),
                source=change.source,
                changed_at=change.changed_at,
            )
            .returning(context_changes.c.id)
        )
        change.id = int(result.scalar_one())

    async def history(
        self, user_id: str, *, limit: int, since: datetime | None = None
    ) -> list[ContextChange]:
        query = (
            sa.select(context_changes)
            .where(context_changes.c.user_id == user_id)
            .order_by(context_changes.c.changed_at.desc(), context_changes.c.id.desc())
            .limit(limit)
        )
        if since is not None:
            query = query.where(context_changes.c.changed_at >= since)
        return [
            ContextChange(
                id=row.id,
                user_id=row.user_id,
                field=row.field,
                old_value=row.old_value,
                new_value=row.new_value,
                source=row.source,
                changed_at=aware(row.changed_at) or row.changed_at,
            )
            for row in await self._conn.execute(query)
        ]
