"""Deleting a user who works in teams (issue 16) and disabling accounts (issue 20), on
SQLite and PostgreSQL (see conftest): team assets survive as "deleted user"'s, private ones
go, every team keeps an owner, and neither the reserved principal nor a disabled account
gets in."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pieces_integration.adapters.memory import MemoryCache
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.domain.auth import Principal
from pieces_integration.domain.errors import AccountDisabled, InvalidInput, NotFound, Unauthorized
from pieces_integration.domain.model import (
    DELETED_USER_ID,
    Asset,
    AssetLink,
    Role,
    Side,
    User,
    new_id,
    utcnow,
)
from pieces_integration.domain.teams import Membership, Team, TeamRole
from pieces_integration.service_layer.accounts import AccountService
from pieces_integration.service_layer.auth import Authenticator, RequestMeta, create_api_key
from pieces_integration.service_layer.privacy import PrivacyService
from pieces_integration.service_layer.revocation import user_subject
from pieces_integration.service_layer.sharing import SharingService
from pieces_integration.service_layer.teams import TeamService

pytestmark = pytest.mark.anyio

ROOT = Principal("root", Role.ADMIN, "jwt")
CODEC = JwtCodec(issuer="pieces-integration", audience="pieces-integration", secret="s" * 40)


def _user(user_id: str) -> Principal:
    return Principal(user_id, Role.USER, "jwt")


async def _team(uow_factory: SqlUnitOfWorkFactory, members: dict[str, TeamRole]) -> str:
    """A team with `members` in this order, each added a minute after the one before; the
    first created it."""
    creator = next(iter(members))
    team = Team(id=new_id(), name="T", created_by=creator)
    start = utcnow() - timedelta(hours=1)
    async with uow_factory() as uow:
        await uow.teams.add(team)
        for i, (user_id, role) in enumerate(members.items()):
            await uow.users.add_if_missing(User(id=user_id))
            added = start + timedelta(minutes=i)
            await uow.teams.add_member(Membership(team.id, user_id, role, creator, added))
        await uow.commit()
    return team.id


async def _asset(uow_factory: SqlUnitOfWorkFactory, owner: str, name: str) -> str:
    asset = Asset(id=new_id(), user_id=owner, name=name, content=f"print({name!r})", tags=["t"])
    asset.source_id, asset.metadata = "p-" + asset.id, {"device": "laptop"}
    async with uow_factory() as uow:
        await uow.users.add_if_missing(User(id=owner))
        await uow.assets.add(asset)
        await uow.assets.save_link(owner, AssetLink(asset.id, Side.PIECES, "p-" + asset.id))
        await uow.commit()
    return asset.id


async def test_team_assets_survive_as_deleted_users_and_every_team_keeps_an_owner(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    sharing = SharingService(uow_factory)
    # Carol joined before bob, but bob is a maintainer: he inherits the team.
    alice, bob, carol, dave, erin = (f"{n}-{new_id()[:8]}" for n in ("a", "b", "c", "d", "e"))
    owner, member = TeamRole.OWNER, TeamRole.MEMBER
    main = await _team(uow_factory, {alice: owner, carol: member, bob: TeamRole.MAINTAINER})
    viewers = await _team(uow_factory, {alice: owner, dave: TeamRole.VIEWER})
    solo = await _team(uow_factory, {alice: owner})
    co_owned = await _team(uow_factory, {alice: owner, erin: owner})
    shared = await _asset(uow_factory, alice, "shared")
    private = await _asset(uow_factory, alice, "private")
    only_solo = await _asset(uow_factory, alice, "only-solo")
    carols = await _asset(uow_factory, carol, "carols")
    in_co = await _asset(uow_factory, alice, "in-co")
    pairs = ((shared, main), (shared, viewers), (only_solo, solo), (in_co, co_owned))
    for asset_id, team_id in pairs:
        await sharing.share(_user(alice), asset_id, team_id)
    await sharing.share(_user(carol), carols, main)

    privacy = PrivacyService(uow_factory, MemoryCache(max_entries=100))
    await privacy.delete(ROOT, alice)

    async with uow_factory(readonly=True) as uow:
        kept = await uow.assets.get(shared)
        assert kept is not None and kept.user_id == DELETED_USER_ID
        assert kept.content == "print('shared')" and kept.tags == ["t"]
        assert kept.source_id is None and kept.metadata == {}  # nothing ties it to alice
        assert await uow.assets.links_for([shared]) == {}
        assert await uow.assets.get(private) is None  # erased with the account
        assert await uow.assets.get(only_solo) is None  # its only team went
        assert (await uow.assets.get(carols)) is not None
        revisions = await uow.revisions.list_for(shared)
        assert revisions and all(r.author_id is None for r in revisions)
        assert revisions[-1].content == "print('shared')"
        assert await uow.revisions.by_author(alice) == []
        shares = await uow.teams.shares_of(shared)
        assert {s.team_id for s in shares} == {main, viewers}
        assert all(s.shared_by is None for s in shares)
        owners = {
            team_id: [m.user_id for m in await uow.teams.members(team_id) if m.role.rank == 3]
            for team_id in (main, viewers, co_owned)
        }
        assert owners == {main: [bob], viewers: [dave], co_owned: [erin]}
        assert await uow.teams.get(solo) is None
        assert await uow.teams.teams_of(alice) == []
        assert (await uow.teams.get(main)).created_by is None  # type: ignore[union-attr]
        tombstone = await uow.users.get(DELETED_USER_ID)
        assert tombstone is not None and tombstone.disabled
        deletion = (await uow.audit.entries(user_id=alice, limit=1))[0]
        assert deletion.action == "user_deleted"
        assert deletion.details == {
            "team_assets_kept": 2,
            "teams_handed_over": 2,
            "teams_deleted": 1,
        }

    # Members still read it; a maintainer removes it by unsharing, and once no team
    # holds it, it is gone.
    await sharing.unshare(_user(dave), shared, viewers)  # dave owns that team now
    async with uow_factory(readonly=True) as uow:
        assert await uow.assets.get(shared) is not None
    with pytest.raises(NotFound):
        await privacy.delete(ROOT, DELETED_USER_ID)
    await sharing.unshare(_user(bob), shared, main)
    async with uow_factory(readonly=True) as uow:
        assert await uow.assets.get(shared) is None
        assert await uow.assets.get(in_co) is not None
    # A team deleted by its owner takes the deleted users' assets only it held.
    await TeamService(uow_factory).delete(_user(erin), co_owned)
    async with uow_factory(readonly=True) as uow:
        assert await uow.assets.get(in_co) is None
        assert await uow.assets.get(carols) is not None


async def test_the_deleted_user_principal_cannot_sign_in_nor_get_keys(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    async with uow_factory() as uow:
        await uow.users.add_if_missing(User(id=DELETED_USER_ID, disabled_at=utcnow()))
        await uow.commit()
    authenticator = Authenticator(uow_factory, CODEC)
    token = CODEC.issue(DELETED_USER_ID, Role.ADMIN, ttl_seconds=60)
    with pytest.raises(Unauthorized, match="reserved"):
        await authenticator.authenticate(bearer=token, api_key=None, meta=RequestMeta())
    with pytest.raises(InvalidInput):
        await create_api_key(
            uow_factory, user_id=DELETED_USER_ID, role=Role.USER, name="x", actor_id="root"
        )
    with pytest.raises(Unauthorized):
        await authenticator.ensure_active(DELETED_USER_ID)
    async with uow_factory(readonly=True) as uow:
        tombstone = await uow.users.get(DELETED_USER_ID)
    assert tombstone is not None and tombstone.role is Role.USER  # no token changed it


async def test_a_disabled_account_is_refused_on_every_path_until_enabled(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    user_id = "dis-" + new_id()[:8]
    authenticator = Authenticator(uow_factory, CODEC)
    accounts = AccountService(uow_factory)
    _, key = await create_api_key(
        uow_factory, user_id=user_id, role=Role.USER, name="k", actor_id=None
    )
    token = CODEC.issue(user_id, Role.USER, ttl_seconds=60)

    async def sign_in() -> None:
        for bearer, api_key in ((token, None), (None, key)):
            await authenticator.authenticate(bearer=bearer, api_key=api_key, meta=RequestMeta())
        await authenticator.ensure_active(user_id)

    await sign_in()
    disabled = await accounts.set_disabled(ROOT, user_id, disabled=True)
    assert disabled.disabled_at is not None
    async with uow_factory(readonly=True) as uow:
        stored = await uow.users.get(user_id)
        assert stored is not None and stored.disabled_at == disabled.disabled_at
        assert await uow.users.disabled_at(user_id) == disabled.disabled_at
    for bearer, api_key in ((token, None), (None, key)):
        with pytest.raises(AccountDisabled):
            await authenticator.authenticate(bearer=bearer, api_key=api_key, meta=RequestMeta())
    with pytest.raises(AccountDisabled):
        await authenticator.ensure_active(user_id)
    assert await authenticator.invalid_subjects([user_subject(user_id)]) == [user_subject(user_id)]
    await accounts.set_disabled(ROOT, user_id, disabled=False)
    await sign_in()
    assert await authenticator.invalid_subjects([user_subject(user_id)]) == []
