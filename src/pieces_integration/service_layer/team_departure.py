"""What a deleted user leaves behind in teams (issue 16): "deleting a user keeps team
assets, attributed to 'deleted user', unless a maintainer removes them".

Runs inside the deletion's transaction, before the user's row goes (whose cascade erases
everything else of theirs):

* A team whose only owner they were passes to `domain.teams.successor` (the longest-standing
  maintainer, else member, else viewer); a team with nobody left is deleted with its shares.
* Their assets still shared into a team survive, owned by the reserved principal
  `DELETED_USER_ID` (stored disabled; no way in accepts it), so the APIs show the author as
  "deleted user" and the members keep reading them. What tied them to the person goes: the
  sync links to their Pieces and AI platform, `source_id`, `metadata` and usage. Assets not
  shared into any team are erased with the account, as the GDPR deletion requires.
* Their revisions keep the content, with no author ("deleted user"); they no longer appear
  as who shared an asset, added a member or created a team.

Maintainers remove such an asset by unsharing it; once no team holds it (unshared from
its last team, or that team deleted) nobody can read it, and it is erased (`erase_orphans`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pieces_integration.domain.model import (
    DELETED_USER_ID,
    DELETED_USER_LABEL,
    AuditEntry,
    Side,
    User,
    utcnow,
)
from pieces_integration.domain.teams import TeamRole, successor
from pieces_integration.ports.storage import UnitOfWork
from pieces_integration.service_layer.team_events import TeamEvents


@dataclass(frozen=True, slots=True)
class Departure:
    kept_assets: tuple[str, ...]
    new_owners: dict[str, str]  # team id -> the member who inherited it
    teams_deleted: tuple[str, ...]
    teams_left: tuple[str, ...] = ()  # the teams that remain, without the user

    async def tell(self, events: TeamEvents, user_id: str, *, by: str) -> None:
        """After the commit: the remaining members hear who left and who owns it now."""
        for team_id in self.teams_left:
            await events.member_changed(team_id, user_id, "removed", None, by)
        for team_id, heir in self.new_owners.items():
            await events.member_changed(team_id, heir, "role_changed", TeamRole.OWNER, by)

    def summary(self) -> dict[str, object]:
        return {
            "team_assets_kept": len(self.kept_assets),
            "teams_handed_over": len(self.new_owners),
            "teams_deleted": len(self.teams_deleted),
        }


def deleted_user() -> User:
    return User(id=DELETED_USER_ID, display_name=DELETED_USER_LABEL, disabled_at=utcnow())


async def depart_teams(uow: UnitOfWork, user_id: str, *, actor_id: str | None) -> Departure:
    teams = [team.id for team, _ in await uow.teams.teams_of(user_id)]
    new_owners, deleted = await _hand_over(uow, user_id, actor_id=actor_id)
    kept = await _keep_team_assets(uow, user_id)
    await uow.teams.forget_user(user_id)
    await uow.revisions.forget_author(user_id)
    left = tuple(team_id for team_id in teams if team_id not in deleted)
    return Departure(kept, new_owners, deleted, left)


async def _hand_over(
    uow: UnitOfWork, user_id: str, *, actor_id: str | None
) -> tuple[dict[str, str], tuple[str, ...]]:
    new_owners: dict[str, str] = {}
    deleted: list[str] = []
    for team, role in await uow.teams.teams_of(user_id):
        if role is not TeamRole.OWNER:
            continue
        await uow.teams.get(team.id, for_update=True)  # the last-owner rule's lock
        if await uow.teams.count_owners(team.id) > 1:
            continue
        heir = successor(await uow.teams.members(team.id), user_id)
        if heir is None:
            library = await uow.teams.shared_asset_ids([team.id])
            await uow.teams.delete(team.id)
            await erase_orphans(uow, library)
            deleted.append(team.id)
            action, details = "team_deleted", {"reason": "its last member was deleted"}
        else:
            await uow.teams.set_role(team.id, heir.user_id, TeamRole.OWNER)
            new_owners[team.id] = heir.user_id
            action = "team_owner_inherited"
            details = {"from_role": heir.role.value, "reason": "the only owner was deleted"}
        await uow.audit.add(
            AuditEntry(
                action,
                actor_id=actor_id,
                user_id=heir.user_id if heir else None,
                target=team.id,
                details=details,
            )
        )
    return new_owners, tuple(deleted)


async def _keep_team_assets(uow: UnitOfWork, user_id: str) -> tuple[str, ...]:
    asset_ids = await uow.teams.shared_asset_ids_owned_by(user_id)
    if not asset_ids:
        return ()
    await uow.users.add_if_missing(deleted_user())
    kept = []
    for asset_id in asset_ids:
        asset = await uow.assets.get(asset_id, user_id=user_id)
        if asset is None:
            continue
        for side in Side:
            await uow.assets.delete_link(asset_id, side)
        asset.user_id = DELETED_USER_ID
        asset.source_id, asset.metadata = None, {}
        asset.last_accessed, asset.usage_count = None, 0
        await uow.assets.update(asset)  # same version: members' If-Match still holds
        kept.append(asset_id)
    return tuple(kept)


async def erase_orphans(uow: UnitOfWork, asset_ids: Iterable[str]) -> list[str]:
    """Of `asset_ids`, erase the deleted users' assets that no team holds any more."""
    erased = []
    for asset_id in asset_ids:
        asset = await uow.assets.get(asset_id, user_id=DELETED_USER_ID)
        if asset is not None and not await uow.teams.shares_of(asset_id):
            await uow.assets.delete(asset_id)
            erased.append(asset_id)
    return erased
