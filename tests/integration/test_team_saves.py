""" "Save to my Pieces" on SQLite and PostgreSQL (see conftest), through the real services
(issue 16): one copy per member and revision, also when several saves run at once; a new
revision is a new copy; only members save, and not their own asset."""

from __future__ import annotations

import asyncio

import pytest

from pieces_integration.adapters.event_log_memory import MemoryEventLog
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.domain.assets import AssetDraft, AssetLimits
from pieces_integration.domain.auth import Principal
from pieces_integration.domain.errors import Conflict, NotFound
from pieces_integration.domain.model import Role
from pieces_integration.domain.teams import TeamRole
from pieces_integration.service_layer.assets import AssetService
from pieces_integration.service_layer.events import EventPublisher
from pieces_integration.service_layer.saving import SaveService
from pieces_integration.service_layer.sharing import SharingService
from pieces_integration.service_layer.teams import TeamService

pytestmark = pytest.mark.anyio


def _user(user_id: str) -> Principal:
    return Principal(user_id=user_id, role=Role.USER, via="jwt")


class _World:
    def __init__(self, uow_factory: SqlUnitOfWorkFactory) -> None:
        self.uow = uow_factory
        self.assets = AssetService(uow_factory, EventPublisher(MemoryEventLog()), AssetLimits())
        self.teams = TeamService(uow_factory)
        self.sharing = SharingService(uow_factory)
        self.saving = SaveService(uow_factory, self.assets)

    async def shared_asset(self, owner: str, team_id: str, name: str) -> str:
        asset = await self.assets.create(_user(owner), None, AssetDraft(name=name, content=name))
        await self.sharing.share(_user(owner), asset.id, team_id)
        return asset.id


async def test_concurrent_saves_make_one_copy_and_a_new_revision_another(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    world = _World(uow_factory)
    alice, bob = _user("alice"), _user("bob")
    team = (await world.teams.create(alice, "A")).team.id
    await world.teams.add_member(alice, team, "bob", TeamRole.MEMBER)
    asset_id = await world.shared_asset("alice", team, "retry")

    outcomes = await asyncio.gather(*(world.saving.save(bob, asset_id) for _ in range(3)))
    assert len({copy.id for copy, _ in outcomes}) == 1, outcomes
    assert sorted(created for _, created in outcomes) == [False, False, True]
    copy = outcomes[0][0]
    assert copy.user_id == "bob" and copy.metadata["saved_from"]["revision"] == 1
    async with uow_factory(readonly=True) as uow:
        assert await uow.assets.count("bob") == 1
        assert await uow.teams.saved_copy_id("bob", asset_id, 1) == copy.id
        audited = [e for e in await uow.audit.entries(user_id="bob") if e.action == "asset_saved"]
        assert len(audited) == 1

    await world.assets.update(
        alice, asset_id, AssetDraft(content="retry v2"), full=False, expected_version=1
    )
    newer, created = await world.saving.save(bob, asset_id)
    assert created and newer.id != copy.id and newer.content == "retry v2"
    await world.assets.delete(bob, newer.id)
    async with uow_factory(readonly=True) as uow:
        assert await uow.teams.saved_copy_id("bob", asset_id, 2) is None  # went with the copy


async def test_only_members_save_and_not_their_own(uow_factory: SqlUnitOfWorkFactory) -> None:
    world = _World(uow_factory)
    alice = _user("alice")
    team = (await world.teams.create(alice, "A")).team.id
    asset_id = await world.shared_asset("alice", team, "retry")
    with pytest.raises(NotFound):
        await world.saving.save(_user("mallory"), asset_id)
    with pytest.raises(Conflict):
        await world.saving.save(alice, asset_id)
    async with uow_factory(readonly=True) as uow:
        assert await uow.assets.count("mallory") == 0
        assert await uow.assets.count("alice") == 1
