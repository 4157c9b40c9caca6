"""SQL repository for assets, their tags and their per-side links."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pieces_integration.adapters.sql._time import aware, aware_required
from pieces_integration.adapters.sql.tables import asset_links, asset_shares, asset_tags, assets
from pieces_integration.domain.errors import Conflict
from pieces_integration.domain.model import Asset, AssetLink, AssetSource, Side
from pieces_integration.domain.queries import AssetQuery, Cursor, Page


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _values(asset: Asset) -> dict[str, Any]:
    return {
        "id": asset.id,
        "user_id": asset.user_id,
        "name": asset.name,
        "description": asset.description,
        "content": asset.content,
        "language": asset.language,
        "source": asset.source.value,
        "source_id": asset.source_id,
        "metadata": asset.metadata,
        "content_hash": asset.content_hash,
        "version": asset.version,
        "usage_count": asset.usage_count,
        "last_accessed": asset.last_accessed,
        "created_at": asset.created_at,
        "updated_at": asset.updated_at,
        "hlc": asset.hlc,
    }


def _to_asset(row: sa.Row[Any], tags: list[str]) -> Asset:
    return Asset(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        description=row.description,
        content=row.content,
        language=row.language,
        source=AssetSource(row.source),
        source_id=row.source_id,
        metadata=dict(row.metadata or {}),
        content_hash=row.content_hash,
        version=row.version,
        usage_count=row.usage_count,
        last_accessed=aware(row.last_accessed),
        created_at=aware_required(row.created_at),
        updated_at=aware_required(row.updated_at),
        hlc=row.hlc,
        tags=tags,
    )


def _to_link(row: sa.Row[Any]) -> AssetLink:
    return AssetLink(
        asset_id=row.asset_id,
        side=Side(row.side),
        remote_id=row.remote_id,
        base_hash=row.base_hash,
        base_version=row.base_version,
        synced_at=aware(row.synced_at),
        base_snapshot=row.base_snapshot,
    )


def _scope(user_id: str, query: AssetQuery) -> sa.ColumnElement[bool]:
    """The user's own assets and/or those shared into `query.team_ids` (issue 16)."""
    parts: list[sa.ColumnElement[bool]] = []
    if query.own:
        parts.append(assets.c.user_id == user_id)
    if query.team_ids:
        shared = sa.select(asset_shares.c.asset_id).where(
            asset_shares.c.team_id.in_(query.team_ids)
        )
        parts.append(assets.c.id.in_(shared))
    return sa.or_(*parts) if parts else sa.false()


class SqlAssetRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def _tags_for(self, asset_ids: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        if not asset_ids:
            return found
        rows = await self._conn.execute(
            sa.select(asset_tags.c.asset_id, asset_tags.c.tag)
            .where(asset_tags.c.asset_id.in_(asset_ids))
            .order_by(asset_tags.c.asset_id, asset_tags.c.position)
        )
        for asset_id, tag in rows:
            found[asset_id].append(tag)
        return found

    async def _materialise(self, rows: list[sa.Row[Any]]) -> list[Asset]:
        tags = await self._tags_for([row.id for row in rows])
        return [_to_asset(row, tags.get(row.id, [])) for row in rows]

    async def _write_tags(self, asset: Asset) -> None:
        await self._conn.execute(sa.delete(asset_tags).where(asset_tags.c.asset_id == asset.id))
        unique = list(dict.fromkeys(asset.tags))
        if unique:
            await self._conn.execute(
                sa.insert(asset_tags),
                [
                    {"asset_id": asset.id, "tag": tag, "user_id": asset.user_id, "position": i}
                    for i, tag in enumerate(unique)
                ],
            )

    async def get(self, asset_id: str, *, user_id: str | None = None) -> Asset | None:
        query = sa.select(assets).where(assets.c.id == asset_id)
        if user_id is not None:
            query = query.where(assets.c.user_id == user_id)
        row = (await self._conn.execute(query)).first()
        return None if row is None else (await self._materialise([row]))[0]

    async def add(self, asset: Asset) -> None:
        await self._conn.execute(sa.insert(assets).values(**_values(asset)))
        await self._write_tags(asset)

    async def add_many(self, new: Sequence[Asset]) -> None:
        if not new:
            return
        await self._conn.execute(sa.insert(assets), [_values(asset) for asset in new])
        tags = [
            {"asset_id": asset.id, "tag": tag, "user_id": asset.user_id, "position": i}
            for asset in new
            for i, tag in enumerate(dict.fromkeys(asset.tags))
        ]
        if tags:
            await self._conn.execute(sa.insert(asset_tags), tags)

    async def add_links(self, user_id: str, links: Sequence[AssetLink]) -> None:
        if not links:
            return
        await self._conn.execute(
            sa.insert(asset_links),
            [
                {
                    "asset_id": link.asset_id,
                    "side": link.side.value,
                    "user_id": user_id,
                    "remote_id": link.remote_id,
                    "base_hash": link.base_hash,
                    "base_version": link.base_version,
                    "synced_at": link.synced_at,
                    "base_snapshot": link.base_snapshot,
                }
                for link in links
            ],
        )

    async def update(self, asset: Asset, *, expected_version: int | None = None) -> None:
        statement = sa.update(assets).where(assets.c.id == asset.id)
        if expected_version is not None:
            statement = statement.where(assets.c.version == expected_version)
        values = _values(asset)
        del values["id"], values["created_at"]
        result = await self._conn.execute(statement.values(**values))
        if result.rowcount == 0:
            raise Conflict(
                f"asset {asset.id!r} changed since version {expected_version}",
                details={"asset_id": asset.id, "expected_version": expected_version},
            )
        await self._write_tags(asset)

    async def delete(self, asset_id: str) -> bool:
        result = await self._conn.execute(sa.delete(assets).where(assets.c.id == asset_id))
        return bool(result.rowcount)

    def _filtered(self, user_id: str, query: AssetQuery) -> sa.Select[Any]:
        statement = sa.select(assets).where(_scope(user_id, query))
        if query.language:
            statement = statement.where(sa.func.lower(assets.c.language) == query.language.lower())
        for tag in dict.fromkeys(query.tags):
            statement = statement.where(
                sa.exists().where(asset_tags.c.asset_id == assets.c.id, asset_tags.c.tag == tag)
            )
        if query.source:
            statement = statement.where(assets.c.source == query.source)
        if query.search:
            pattern = f"%{_escape_like(query.search)}%"
            statement = statement.where(
                sa.or_(
                    assets.c.name.ilike(pattern, escape="\\"),
                    assets.c.description.ilike(pattern, escape="\\"),
                    assets.c.content.ilike(pattern, escape="\\"),
                )
            )
        return statement

    async def page(self, user_id: str, query: AssetQuery) -> Page[Asset]:
        statement = self._filtered(user_id, query)
        if query.cursor:
            position = Cursor.decode(query.cursor)
            statement = statement.where(
                sa.or_(
                    assets.c.updated_at < position.updated_at,
                    sa.and_(assets.c.updated_at == position.updated_at, assets.c.id < position.id),
                )
            )
        elif query.offset:
            statement = statement.offset(query.offset)
        statement = statement.order_by(assets.c.updated_at.desc(), assets.c.id.desc())
        rows = list((await self._conn.execute(statement.limit(query.limit + 1))).all())
        more = len(rows) > query.limit
        items = await self._materialise(rows[: query.limit])
        next_cursor = Cursor(items[-1].updated_at, items[-1].id).encode() if more else None
        total_query = sa.select(sa.func.count()).select_from(
            self._filtered(user_id, query).subquery()
        )
        total = (await self._conn.execute(total_query)).scalar_one()
        return Page(items=items, next_cursor=next_cursor, total=int(total))

    async def count(self, user_id: str) -> int:
        query = sa.select(sa.func.count()).where(assets.c.user_id == user_id)
        return int((await self._conn.execute(query)).scalar_one())

    async def get_many(self, user_id: str, asset_ids: list[str]) -> list[Asset]:
        if not asset_ids:
            return []
        rows = await self._conn.execute(
            sa.select(assets).where(assets.c.user_id == user_id, assets.c.id.in_(asset_ids))
        )
        return await self._materialise(list(rows.all()))

    async def get_visible(
        self, user_id: str, asset_ids: list[str], team_ids: Sequence[str]
    ) -> list[Asset]:
        if not asset_ids:
            return []
        scope = _scope(user_id, AssetQuery(team_ids=tuple(team_ids)))
        rows = await self._conn.execute(sa.select(assets).where(scope, assets.c.id.in_(asset_ids)))
        return await self._materialise(list(rows.all()))

    async def pending_link_asset_ids(self, user_id: str) -> list[str]:
        rows = await self._conn.execute(
            sa.select(asset_links.c.asset_id).where(
                asset_links.c.user_id == user_id,
                asset_links.c.remote_id.startswith(AssetLink.PENDING_PREFIX),
            )
        )
        return [row[0] for row in rows]

    async def find_by_hash(self, user_id: str, content_hash: str) -> list[Asset]:
        rows = await self._conn.execute(
            sa.select(assets).where(
                assets.c.user_id == user_id, assets.c.content_hash == content_hash
            )
        )
        return await self._materialise(list(rows.all()))

    async def links_for(self, asset_ids: list[str]) -> dict[str, list[AssetLink]]:
        found: dict[str, list[AssetLink]] = defaultdict(list)
        if not asset_ids:
            return found
        rows = await self._conn.execute(
            sa.select(asset_links)
            .where(asset_links.c.asset_id.in_(asset_ids))
            .order_by(asset_links.c.asset_id, asset_links.c.side)
        )
        for row in rows:
            found[row.asset_id].append(_to_link(row))
        return found

    async def delete_link(self, asset_id: str, side: Side) -> None:
        await self._conn.execute(
            sa.delete(asset_links).where(
                asset_links.c.asset_id == asset_id, asset_links.c.side == side.value
            )
        )

    async def get_link(self, asset_id: str, side: Side) -> AssetLink | None:
        row = (
            await self._conn.execute(
                sa.select(asset_links).where(
                    asset_links.c.asset_id == asset_id, asset_links.c.side == side.value
                )
            )
        ).first()
        return None if row is None else _to_link(row)

    async def find_by_remote_id(self, user_id: str, side: Side, remote_id: str) -> Asset | None:
        row = (
            await self._conn.execute(
                sa.select(assets)
                .join(asset_links, asset_links.c.asset_id == assets.c.id)
                .where(
                    asset_links.c.user_id == user_id,
                    asset_links.c.side == side.value,
                    asset_links.c.remote_id == remote_id,
                )
            )
        ).first()
        return None if row is None else (await self._materialise([row]))[0]

    async def save_link(self, user_id: str, link: AssetLink) -> None:
        values = {
            "remote_id": link.remote_id,
            "base_hash": link.base_hash,
            "base_version": link.base_version,
            "synced_at": link.synced_at,
            "base_snapshot": link.base_snapshot,
        }
        result = await self._conn.execute(
            sa.update(asset_links)
            .where(asset_links.c.asset_id == link.asset_id, asset_links.c.side == link.side.value)
            .values(**values)
        )
        if result.rowcount == 0:
            await self._conn.execute(
                sa.insert(asset_links).values(
                    asset_id=link.asset_id, side=link.side.value, user_id=user_id, **values
                )
            )

    async def touch(self, asset_id: str, at: datetime) -> None:
        await self._conn.execute(
            sa.update(assets)
            .where(assets.c.id == asset_id)
            .values(usage_count=assets.c.usage_count + 1, last_accessed=at)
        )
