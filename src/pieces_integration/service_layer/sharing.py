"""Sharing assets into team libraries (issue 16): share, unshare, both audited.

Only an asset's owner (or admin/service) shares it, into a team where they may share
(member or above). The owner may always take it out again, even after leaving the team; a
maintainer may take out anyone's. A deleted user's asset (`team_departure`) that leaves its
last team is erased. Who belongs to a team is `team_access`'s answer alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from pieces_integration.domain.auth import Principal, ensure_can_write
from pieces_integration.domain.errors import Forbidden, NotFound
from pieces_integration.domain.model import Asset, AuditEntry, User
from pieces_integration.domain.teams import Share, TeamAction, ensure_allowed
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory
from pieces_integration.service_layer.revisions import record_revision
from pieces_integration.service_layer.team_access import (
    TeamReachCache,
    grant_in,
    may_read_asset,
    require,
)
from pieces_integration.service_layer.team_departure import erase_orphans
from pieces_integration.service_layer.team_events import TeamEvents

log = structlog.get_logger(__name__)


async def _readable(uow: UnitOfWork, principal: Principal, asset_id: str) -> Asset:
    asset = await uow.assets.get(asset_id)
    if asset is None or not await may_read_asset(uow, principal, asset.user_id, asset_id):
        raise NotFound("asset", asset_id)
    return asset


def _owns(principal: Principal, asset: Asset) -> bool:
    return asset.user_id == principal.user_id or principal.role.may_act_for_others


async def _audit(
    uow: UnitOfWork, action: str, principal: Principal, share: Share, asset: Asset
) -> None:
    await uow.audit.add(
        AuditEntry(
            action,
            actor_id=principal.user_id,
            user_id=asset.user_id,
            target=asset.id,
            details={"team_id": share.team_id, "name": asset.name[:200]},
        )
    )


async def share_in(
    uow: UnitOfWork, principal: Principal, asset: Asset, team_id: str
) -> tuple[Share, bool]:
    """Share `asset` into a team inside the caller's unit of work (not committed): the share
    and whether it is new. The one path for an explicit share and a sharing default."""
    await require(uow, principal, team_id, TeamAction.SHARE)
    if not _owns(principal, asset):
        raise Forbidden("only the asset's owner shares it", details={"asset_id": asset.id})
    owner = await uow.users.get(asset.user_id)
    if owner is not None and not owner.consent.team_collaboration:
        raise Forbidden(
            "team collaboration is off in the owner's privacy choices (consent scope "
            "team_collaboration); turn it on to share",
            details={"asset_id": asset.id, "consent": "team_collaboration"},
        )
    existing = await uow.teams.share_of(asset.id, team_id)
    if existing is not None:
        return existing, False
    share = Share(asset.id, team_id, shared_by=principal.user_id)
    await uow.teams.share(share)
    # The team's history starts from the asset as shared (its owner's state).
    await record_revision(uow, asset, asset.user_id)
    await _audit(uow, "asset_shared", principal, share, asset)
    return share, True


async def share_by_default(uow: UnitOfWork, owner: User, asset: Asset) -> str | None:
    """Share a new asset into the team its owner's sharing default names (in the caller's
    unit of work): the team id, or None. A default that no longer holds (the owner left the
    team or became a viewer, or turned team collaboration off) leaves the asset private."""
    preferences = await uow.preferences.get(owner.id)
    team_id = preferences.default_team if preferences is not None else None
    if team_id is None:
        return None
    as_owner = Principal(user_id=owner.id, role=owner.role, via="sharing_default")
    try:
        _, new = await share_in(uow, as_owner, asset, team_id)
    except (NotFound, Forbidden) as exc:
        log.info("sharing_default_not_applied", user_id=owner.id, team_id=team_id, why=str(exc))
        return None
    return team_id if new else None


@dataclass
class SharingService:
    uow: UnitOfWorkFactory
    team_events: TeamEvents | None = None
    # Cleared on every share and unshare here, so this replica's next search sees it.
    reach: TeamReachCache | None = None

    def _reach_changed(self) -> None:
        if self.reach is not None:
            self.reach.clear()

    async def share(self, principal: Principal, asset_id: str, team_id: str) -> tuple[Share, bool]:
        """The share, and whether it is new (sharing twice changes nothing)."""
        ensure_can_write(principal)
        async with self.uow() as uow:
            asset = await _readable(uow, principal, asset_id)
            share, new = await share_in(uow, principal, asset, team_id)
            if new:
                await uow.commit()
                self._reach_changed()
        if new and self.team_events is not None:
            await self.team_events.asset_shared(asset, team_id, principal.user_id)
        return share, new

    async def unshare(self, principal: Principal, asset_id: str, team_id: str) -> None:
        ensure_can_write(principal)
        async with self.uow() as uow:
            asset = await _readable(uow, principal, asset_id)
            if not _owns(principal, asset):
                grant = await grant_in(uow, principal, team_id)
                ensure_allowed(grant.role, TeamAction.EDIT_ANY)
            share = await uow.teams.share_of(asset_id, team_id)
            if share is None:
                raise NotFound("share", team_id)
            await uow.teams.unshare(asset_id, team_id)
            await _audit(uow, "asset_unshared", principal, share, asset)
            if await erase_orphans(uow, [asset_id]):  # a deleted user's, out of its last team
                await _audit(uow, "asset_deleted", principal, share, asset)
            await uow.commit()
        self._reach_changed()
