"""Revisions of a team asset on SQLite and PostgreSQL, through the real services: two
concurrent edits from the same version, one wins and one gets 409; no revision is lost."""

from __future__ import annotations

import asyncio

import pytest

from pieces_integration.adapters.event_log_memory import MemoryEventLog
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.domain.assets import AssetDraft, AssetLimits
from pieces_integration.domain.auth import Principal
from pieces_integration.domain.errors import Conflict, InvalidInput
from pieces_integration.domain.model import Role
from pieces_integration.domain.teams import TeamRole
from pieces_integration.service_layer.assets import AssetService
from pieces_integration.service_layer.events import EventPublisher
from pieces_integration.service_layer.revisions import RevisionService
from pieces_integration.service_layer.sharing import SharingService
from pieces_integration.service_layer.teams import TeamService

pytestmark = pytest.mark.anyio


def _user(user_id: str) -> Principal:
    return Principal(user_id=user_id, role=Role.USER, via="jwt")


async def test_concurrent_edits_one_wins_and_no_revision_is_lost(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    alice, erin = _user("alice"), _user("erin")
    assets = AssetService(uow_factory, EventPublisher(MemoryEventLog()), AssetLimits())
    teams, sharing = TeamService(uow_factory), SharingService(uow_factory)
    revisions = RevisionService(uow_factory)
    team = await teams.create(alice, "Backend")
    await teams.add_member(alice, team.team.id, "erin", TeamRole.MAINTAINER)
    asset = await assets.create(alice, None, AssetDraft(name="retry", content="v1\n"))
    await sharing.share(alice, asset.id, team.team.id)

    with pytest.raises(InvalidInput) as unversioned:  # a team edit names its base
        await assets.update(erin, asset.id, AssetDraft(content="x\n"), full=False)
    assert unversioned.value.field == "version"

    async def edit(who: Principal, text: str) -> object:
        draft = AssetDraft(content=text)
        try:
            return await assets.update(who, asset.id, draft, full=False, expected_version=1)
        except Conflict as exc:
            return exc

    outcomes = await asyncio.gather(edit(alice, "alice's\n"), edit(erin, "erin's\n"))
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(conflicts) == 1, outcomes
    loser = conflicts[0].details
    assert loser["current_version"] == 2 and loser["expected_version"] == 1
    winner = loser["current_revision"]
    assert isinstance(winner, dict) and winner["number"] == 2
    assert winner["content"] in ("alice's\n", "erin's\n")

    history = await revisions.history(alice, asset.id, limit=10)
    assert [r.number for r in history] == [2, 1]
    assert history[1].content == "v1\n" and history[1].author_id == "alice"
    assert history[0].content == winner["content"]
    assert history[0].diff is not None and "-v1" in history[0].diff

    restored = await assets.restore(erin, asset.id, 1, expected_version=2)
    assert restored.content == "v1\n" and restored.version == 3
    history = await revisions.history(alice, asset.id, limit=10)
    assert [(r.number, r.restored_from, r.author_id) for r in history][0] == (3, 1, "erin")
    assert [r.number for r in history] == [3, 2, 1]  # the overruled edit is still there


async def test_revisions_by_author_are_the_authors_own_oldest_first(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    alice, erin = _user("alice"), _user("erin")
    assets = AssetService(uow_factory, EventPublisher(MemoryEventLog()), AssetLimits())
    teams, sharing = TeamService(uow_factory), SharingService(uow_factory)
    team = await teams.create(alice, "Backend")
    await teams.add_member(alice, team.team.id, "erin", TeamRole.MAINTAINER)
    asset = await assets.create(alice, None, AssetDraft(name="retry", content="v1\n"))
    await sharing.share(alice, asset.id, team.team.id)
    for n in (2, 3):
        current = await assets.get(erin, asset.id)
        await assets.update(
            erin,
            asset.id,
            AssetDraft(content=f"v{n}\n"),
            full=False,
            expected_version=current.version,
        )
    async with uow_factory(readonly=True) as uow:
        by_erin = await uow.revisions.by_author("erin")
        by_alice = await uow.revisions.by_author("alice")
    assert [(r.number, r.content) for r in by_erin] == [(2, "v2\n"), (3, "v3\n")]
    assert [(r.number, r.author_id) for r in by_alice] == [(1, "alice")]
