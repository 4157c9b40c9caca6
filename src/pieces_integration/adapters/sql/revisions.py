"""SQL repository of team-asset revisions (issue 16): insert and read, never update."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pieces_integration.adapters.sql._time import aware_required
from pieces_integration.adapters.sql.tables import asset_revisions
from pieces_integration.domain.errors import Conflict
from pieces_integration.domain.revisions import Revision


def _to_revision(row: Any) -> Revision:
    return Revision(
        id=row.id,
        asset_id=row.asset_id,
        number=row.number,
        author_id=row.author_id,
        content_hash=row.content_hash,
        name=row.name,
        content=row.content,
        description=row.description,
        language=row.language,
        tags=tuple(row.tags or ()),
        diff=row.diff,
        restored_from=row.restored_from,
        created_at=aware_required(row.created_at),
    )


class SqlRevisionRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, revision: Revision) -> None:
        values = {
            "id": revision.id,
            "asset_id": revision.asset_id,
            "number": revision.number,
            "author_id": revision.author_id,
            "content_hash": revision.content_hash,
            "name": revision.name,
            "content": revision.content,
            "description": revision.description,
            "language": revision.language,
            "tags": list(revision.tags),
            "diff": revision.diff,
            "restored_from": revision.restored_from,
            "created_at": revision.created_at,
        }
        try:
            async with self._conn.begin_nested():  # a savepoint: the transaction survives
                await self._conn.execute(sa.insert(asset_revisions).values(**values))
        except IntegrityError as exc:
            raise Conflict(
                f"asset {revision.asset_id!r} already has revision {revision.number}",
                details={"asset_id": revision.asset_id, "number": revision.number},
            ) from exc

    async def latest(self, asset_id: str) -> Revision | None:
        query = (
            sa.select(asset_revisions)
            .where(asset_revisions.c.asset_id == asset_id)
            .order_by(asset_revisions.c.number.desc())
            .limit(1)
        )
        row = (await self._conn.execute(query)).first()
        return None if row is None else _to_revision(row)

    async def get(self, asset_id: str, number: int) -> Revision | None:
        query = sa.select(asset_revisions).where(
            asset_revisions.c.asset_id == asset_id, asset_revisions.c.number == number
        )
        row = (await self._conn.execute(query)).first()
        return None if row is None else _to_revision(row)

    async def by_author(self, author_id: str) -> list[Revision]:
        query = (
            sa.select(asset_revisions)
            .where(asset_revisions.c.author_id == author_id)
            .order_by(
                asset_revisions.c.created_at, asset_revisions.c.asset_id, asset_revisions.c.number
            )
        )
        return [_to_revision(row) for row in (await self._conn.execute(query)).all()]

    async def list_for(self, asset_id: str, *, limit: int = 100) -> list[Revision]:
        query = (
            sa.select(asset_revisions)
            .where(asset_revisions.c.asset_id == asset_id)
            .order_by(asset_revisions.c.number.desc())
            .limit(limit)
        )
        return [_to_revision(row) for row in (await self._conn.execute(query)).all()]

    async def forget_author(self, author_id: str) -> int:
        result = await self._conn.execute(
            sa.update(asset_revisions)
            .where(asset_revisions.c.author_id == author_id)
            .values(author_id=None)
        )
        return int(result.rowcount or 0)
