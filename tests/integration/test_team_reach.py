"""A member's team reach, as suggestions read it, on SQLite and PostgreSQL (see conftest),
through the real services (issue 16): every asset shared into their teams with the team and
the sharer, in one query, and nothing once they leave."""

from __future__ import annotations

import pytest

from pieces_integration.adapters.event_log_memory import MemoryEventLog
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.domain.assets import AssetDraft, AssetLimits
from pieces_integration.domain.auth import Principal
from pieces_integration.domain.model import Role
from pieces_integration.domain.teams import SharedVia, TeamRole
from pieces_integration.service_layer.assets import AssetService
from pieces_integration.service_layer.events import EventPublisher
from pieces_integration.service_layer.sharing import SharingService
from pieces_integration.service_layer.team_access import reach_in
from pieces_integration.service_layer.teams import TeamService

pytestmark = pytest.mark.anyio


def _user(user_id: str) -> Principal:
    return Principal(user_id=user_id, role=Role.USER, via="jwt")


class _World:
    def __init__(self, uow_factory: SqlUnitOfWorkFactory) -> None:
        self.assets = AssetService(uow_factory, EventPublisher(MemoryEventLog()), AssetLimits())
        self.teams = TeamService(uow_factory)
        self.sharing = SharingService(uow_factory)

    async def shared_asset(self, owner: str, team_id: str, name: str) -> str:
        asset = await self.assets.create(_user(owner), None, AssetDraft(name=name, content=name))
        await self.sharing.share(_user(owner), asset.id, team_id)
        return asset.id


async def test_the_team_reach_is_the_members_shares_with_team_and_sharer(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    world = _World(uow_factory)
    alice, dave = _user("alice"), _user("dave")
    team_a = (await world.teams.create(alice, "A")).team.id
    team_b = (await world.teams.create(dave, "B")).team.id
    await world.teams.add_member(alice, team_a, "bob", TeamRole.VIEWER)
    in_a = await world.shared_asset("alice", team_a, "in-a")
    in_b = await world.shared_asset("dave", team_b, "in-b")
    await world.sharing.share(alice, in_a, team_a)  # twice: still one share
    async with uow_factory(readonly=True) as uow:
        bob = await reach_in(uow, "bob")
        assert dict(bob.shares) == {in_a: (SharedVia(team_a, "A", "alice"),)}
        assert bob.team_ids == (team_a,)
        assert (await reach_in(uow, "dave")).asset_ids == (in_b,)
        assert (await reach_in(uow, "mallory")).shares == {}
    before = bob.fingerprint()
    await world.teams.add_member(dave, team_b, "bob", TeamRole.MEMBER)
    async with uow_factory(readonly=True) as uow:
        both = await reach_in(uow, "bob")
    assert set(both.asset_ids) == {in_a, in_b} and both.fingerprint() != before
    await world.teams.remove_member(alice, team_a, "bob")
    async with uow_factory(readonly=True) as uow:
        assert (await reach_in(uow, "bob")).asset_ids == (in_b,)
