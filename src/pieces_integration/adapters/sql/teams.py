"""SQL repository of teams and their memberships (issue 16)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from pieces_integration.adapters.sql._time import aware_required
from pieces_integration.adapters.sql.tables import (
    asset_saves,
    asset_shares,
    assets,
    team_members,
    teams,
)
from pieces_integration.domain.teams import (
    Membership,
    SavedCopy,
    Share,
    SharedVia,
    Team,
    TeamRole,
)


def _to_team(row: Any) -> Team:
    return Team(
        id=row.id,
        name=row.name,
        created_by=row.created_by,
        created_at=aware_required(row.created_at),
        updated_at=aware_required(row.updated_at),
    )


def _to_membership(row: Any) -> Membership:
    return Membership(
        team_id=row.team_id,
        user_id=row.user_id,
        role=TeamRole(row.role),
        added_by=row.added_by,
        added_at=aware_required(row.added_at),
    )


def _to_share(row: Any) -> Share:
    return Share(
        asset_id=row.asset_id,
        team_id=row.team_id,
        shared_by=row.shared_by,
        shared_at=aware_required(row.shared_at),
    )


class SqlTeamRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, team: Team) -> None:
        await self._conn.execute(
            sa.insert(teams).values(
                id=team.id,
                name=team.name,
                created_by=team.created_by,
                created_at=team.created_at,
                updated_at=team.updated_at,
            )
        )

    async def get(self, team_id: str, *, for_update: bool = False) -> Team | None:
        query = sa.select(teams).where(teams.c.id == team_id)
        if for_update:  # PostgreSQL: membership changes of one team queue (SQLite: one writer)
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return None if row is None else _to_team(row)

    async def save(self, team: Team) -> None:
        await self._conn.execute(
            sa.update(teams)
            .where(teams.c.id == team.id)
            .values(name=team.name, updated_at=team.updated_at)
        )

    async def delete(self, team_id: str) -> bool:
        result = await self._conn.execute(sa.delete(teams).where(teams.c.id == team_id))
        return bool(result.rowcount)

    async def teams_of(self, user_id: str) -> list[tuple[Team, TeamRole]]:
        query = (
            sa.select(teams, team_members.c.role.label("member_role"))
            .join(team_members, team_members.c.team_id == teams.c.id)
            .where(team_members.c.user_id == user_id)
            .order_by(teams.c.created_at, teams.c.id)
        )
        rows = (await self._conn.execute(query)).all()
        return [(_to_team(row), TeamRole(row.member_role)) for row in rows]

    async def membership(self, team_id: str, user_id: str) -> Membership | None:
        query = sa.select(team_members).where(
            team_members.c.team_id == team_id, team_members.c.user_id == user_id
        )
        row = (await self._conn.execute(query)).first()
        return None if row is None else _to_membership(row)

    async def members(self, team_id: str) -> list[Membership]:
        query = (
            sa.select(team_members)
            .where(team_members.c.team_id == team_id)
            .order_by(team_members.c.added_at, team_members.c.user_id)
        )
        return [_to_membership(row) for row in (await self._conn.execute(query)).all()]

    async def add_member(self, membership: Membership) -> None:
        await self._conn.execute(
            sa.insert(team_members).values(
                team_id=membership.team_id,
                user_id=membership.user_id,
                role=membership.role.value,
                added_by=membership.added_by,
                added_at=membership.added_at,
            )
        )

    async def set_role(self, team_id: str, user_id: str, role: TeamRole) -> bool:
        result = await self._conn.execute(
            sa.update(team_members)
            .where(team_members.c.team_id == team_id, team_members.c.user_id == user_id)
            .values(role=role.value)
        )
        return bool(result.rowcount)

    async def remove_member(self, team_id: str, user_id: str) -> bool:
        result = await self._conn.execute(
            sa.delete(team_members).where(
                team_members.c.team_id == team_id, team_members.c.user_id == user_id
            )
        )
        return bool(result.rowcount)

    async def count_owners(self, team_id: str) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(team_members)
            .where(team_members.c.team_id == team_id, team_members.c.role == TeamRole.OWNER.value)
        )
        return int((await self._conn.execute(query)).scalar_one())

    def _insert(self) -> Any:
        return pg_insert if self._conn.dialect.name == "postgresql" else sqlite_insert

    async def share(self, share: Share) -> bool:
        """True when this call made the share. One statement, so two concurrent shares of
        one asset into one team cannot both insert (the second is a no-op, not an error)."""
        statement = (
            self._insert()(asset_shares)
            .values(
                asset_id=share.asset_id,
                team_id=share.team_id,
                shared_by=share.shared_by,
                shared_at=share.shared_at,
            )
            .on_conflict_do_nothing(index_elements=["asset_id", "team_id"])
        )
        result = await self._conn.execute(statement)
        return bool(result.rowcount)

    async def unshare(self, asset_id: str, team_id: str) -> bool:
        result = await self._conn.execute(
            sa.delete(asset_shares).where(
                asset_shares.c.asset_id == asset_id, asset_shares.c.team_id == team_id
            )
        )
        return bool(result.rowcount)

    async def share_of(self, asset_id: str, team_id: str) -> Share | None:
        query = sa.select(asset_shares).where(
            asset_shares.c.asset_id == asset_id, asset_shares.c.team_id == team_id
        )
        row = (await self._conn.execute(query)).first()
        return None if row is None else _to_share(row)

    async def shares_of(self, asset_id: str) -> list[Share]:
        query = (
            sa.select(asset_shares)
            .where(asset_shares.c.asset_id == asset_id)
            .order_by(asset_shares.c.shared_at, asset_shares.c.team_id)
        )
        return [_to_share(row) for row in (await self._conn.execute(query)).all()]

    async def shared_asset_ids(self, team_ids: Collection[str]) -> list[str]:
        if not team_ids:
            return []
        query = (
            sa.select(asset_shares.c.asset_id)
            .where(asset_shares.c.team_id.in_(list(team_ids)))
            .distinct()
        )
        return [row[0] for row in (await self._conn.execute(query)).all()]

    async def shares_in(self, team_ids: Collection[str]) -> list[tuple[str, SharedVia]]:
        if not team_ids:
            return []
        query = (
            sa.select(
                asset_shares.c.asset_id,
                asset_shares.c.team_id,
                asset_shares.c.shared_by,
                teams.c.name,
            )
            .join(teams, teams.c.id == asset_shares.c.team_id)
            .where(asset_shares.c.team_id.in_(list(team_ids)))
            .order_by(asset_shares.c.shared_at, asset_shares.c.team_id)
        )
        rows = (await self._conn.execute(query)).all()
        # Positional access: a row's attribute look-up by name costs more than the row.
        return [(asset_id, SharedVia(team_id, name, by)) for asset_id, team_id, by, name in rows]

    async def record_save(self, saved: SavedCopy) -> bool:
        statement = (
            self._insert()(asset_saves)
            .values(
                user_id=saved.user_id,
                source_asset_id=saved.source_asset_id,
                revision_number=saved.revision_number,
                revision_id=saved.revision_id,
                copy_id=saved.copy_id,
                saved_at=saved.saved_at,
            )
            .on_conflict_do_nothing(
                index_elements=["user_id", "source_asset_id", "revision_number"]
            )
        )
        result = await self._conn.execute(statement)
        return bool(result.rowcount)

    async def saved_copy_id(
        self, user_id: str, source_asset_id: str, revision_number: int
    ) -> str | None:
        query = sa.select(asset_saves.c.copy_id).where(
            asset_saves.c.user_id == user_id,
            asset_saves.c.source_asset_id == source_asset_id,
            asset_saves.c.revision_number == revision_number,
        )
        value = (await self._conn.execute(query)).scalar_one_or_none()
        return None if value is None else str(value)

    async def shared_asset_ids_owned_by(self, user_id: str) -> list[str]:
        query = (
            sa.select(asset_shares.c.asset_id)
            .join(assets, assets.c.id == asset_shares.c.asset_id)
            .where(assets.c.user_id == user_id)
            .distinct()
            .order_by(asset_shares.c.asset_id)
        )
        return [row[0] for row in (await self._conn.execute(query)).all()]

    async def forget_user(self, user_id: str) -> None:
        for table, column in (
            (asset_shares, asset_shares.c.shared_by),
            (team_members, team_members.c.added_by),
            (teams, teams.c.created_by),
        ):
            await self._conn.execute(
                sa.update(table).where(column == user_id).values({column: None})
            )
