"""The team repository on SQLite and PostgreSQL (see conftest): memberships, cascades."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.domain.model import Asset, User, new_id
from pieces_integration.domain.queries import AssetQuery
from pieces_integration.domain.teams import Membership, Share, Team, TeamRole

pytestmark = pytest.mark.anyio


async def _team_with(uow_factory: SqlUnitOfWorkFactory, **members: TeamRole) -> Team:
    team = Team(id=new_id(), name="Backend", created_by="alice")
    async with uow_factory() as uow:
        for user_id in members:
            if await uow.users.get(user_id) is None:
                await uow.users.add(User(id=user_id))
        await uow.teams.add(team)
        for user_id, role in members.items():
            await uow.teams.add_member(Membership(team.id, user_id, role, added_by="alice"))
        await uow.commit()
    return team


async def test_memberships_round_trip(uow_factory: SqlUnitOfWorkFactory) -> None:
    team = await _team_with(uow_factory, alice=TeamRole.OWNER, bob=TeamRole.VIEWER)
    other = await _team_with(uow_factory, bob=TeamRole.OWNER)
    async with uow_factory(readonly=True) as uow:
        assert [m.user_id for m in await uow.teams.members(team.id)] == ["alice", "bob"]
        bob = await uow.teams.membership(team.id, "bob")
        assert bob is not None and bob.role is TeamRole.VIEWER and bob.added_by == "alice"
        assert bob.added_at.tzinfo is not None
        assert await uow.teams.membership(team.id, "carol") is None
        teams = await uow.teams.teams_of("bob")
        assert [(t.id, role) for t, role in teams] == [
            (team.id, TeamRole.VIEWER),
            (other.id, TeamRole.OWNER),
        ]
        assert await uow.teams.count_owners(team.id) == 1


async def test_role_changes_and_removal(uow_factory: SqlUnitOfWorkFactory) -> None:
    team = await _team_with(uow_factory, alice=TeamRole.OWNER, bob=TeamRole.MEMBER)
    async with uow_factory() as uow:
        assert await uow.teams.set_role(team.id, "bob", TeamRole.OWNER)
        assert not await uow.teams.set_role(team.id, "carol", TeamRole.OWNER)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.teams.count_owners(team.id) == 2
        assert await uow.teams.remove_member(team.id, "alice")
        assert not await uow.teams.remove_member(team.id, "alice")
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        assert [m.user_id for m in await uow.teams.members(team.id)] == ["bob"]


async def test_rename_and_delete_take_the_memberships(uow_factory: SqlUnitOfWorkFactory) -> None:
    team = await _team_with(uow_factory, alice=TeamRole.OWNER, bob=TeamRole.MEMBER)
    async with uow_factory() as uow:
        locked = await uow.teams.get(team.id, for_update=True)
        assert locked is not None
        locked.name = "Platform"
        await uow.teams.save(locked)
        await uow.commit()
    async with uow_factory() as uow:
        renamed = await uow.teams.get(team.id)
        assert renamed is not None and renamed.name == "Platform"
        assert await uow.teams.delete(team.id)
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        assert await uow.teams.get(team.id) is None
        assert await uow.teams.members(team.id) == []
        assert await uow.teams.teams_of("bob") == []


async def test_deleting_a_user_ends_their_memberships_not_the_team(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    team = await _team_with(uow_factory, alice=TeamRole.OWNER, bob=TeamRole.MEMBER)
    async with uow_factory() as uow:
        assert await uow.users.delete("alice")
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        kept = await uow.teams.get(team.id)
        assert kept is not None and kept.created_by == "alice"
        assert [m.user_id for m in await uow.teams.members(team.id)] == ["bob"]


async def test_shares_scope_pages_and_go_with_asset_and_team(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    team = await _team_with(uow_factory, alice=TeamRole.OWNER, bob=TeamRole.MEMBER)
    other = await _team_with(uow_factory, carol=TeamRole.OWNER)
    mine = Asset(id=new_id(), user_id="bob", name="bob's", content="b")
    shared = Asset(id=new_id(), user_id="alice", name="alice's", content="a")
    elsewhere = Asset(id=new_id(), user_id="carol", name="carol's", content="c")
    async with uow_factory() as uow:
        for asset in (mine, shared, elsewhere):
            await uow.assets.add(asset)
        assert await uow.teams.share(Share(shared.id, team.id, shared_by="alice"))
        assert not await uow.teams.share(Share(shared.id, team.id, shared_by="alice"))
        assert await uow.teams.share(Share(elsewhere.id, other.id, shared_by="carol"))
        await uow.commit()

    async def names(**scope: Any) -> set[str]:
        async with uow_factory(readonly=True) as uow:
            page = await uow.assets.page("bob", AssetQuery(**scope))
            assert page.total == len(page.items)
            return {a.name for a in page.items}

    assert await names() == {"bob's"}
    assert await names(own=False, team_ids=(team.id,)) == {"alice's"}
    assert await names(team_ids=(team.id,)) == {"bob's", "alice's"}
    assert await names(own=False) == set()
    async with uow_factory(readonly=True) as uow:
        assert await uow.teams.shared_asset_ids([team.id, other.id]) != []
        assert set(await uow.teams.shared_asset_ids([team.id])) == {shared.id}
        visible = await uow.assets.get_visible("bob", [mine.id, shared.id, elsewhere.id], [team.id])
        assert {a.id for a in visible} == {mine.id, shared.id}
        share = await uow.teams.share_of(shared.id, team.id)
        assert share is not None and share.shared_by == "alice" and share.shared_at.tzinfo
    async with uow_factory() as uow:
        assert await uow.assets.delete(shared.id)
        assert await uow.teams.delete(other.id)
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        assert await uow.teams.shared_asset_ids([team.id, other.id]) == []
        assert await uow.teams.shares_of(elsewhere.id) == []


async def test_two_concurrent_shares_of_one_asset_make_one_share_and_no_error(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    team = await _team_with(uow_factory, alice=TeamRole.OWNER)
    asset = Asset(id=new_id(), user_id="alice", name="a", content="a")
    async with uow_factory() as uow:
        await uow.assets.add(asset)
        await uow.commit()
    started = anyio.Event()

    async def share(results: list[bool]) -> None:
        async with uow_factory() as uow:
            results.append(await uow.teams.share(Share(asset.id, team.id, shared_by="alice")))
            started.set()
            await anyio.sleep(0.05)  # both transactions are open at once where the backend allows
            await uow.commit()

    results: list[bool] = []
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(share, results)
        await started.wait()
        tasks.start_soon(share, results)
    assert sorted(results) == [False, True]
    async with uow_factory(readonly=True) as uow:
        assert [s.team_id for s in await uow.teams.shares_of(asset.id)] == [team.id]
