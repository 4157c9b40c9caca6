""" "Save to my Pieces" (issue 16): a member copies a team asset into their own library.

The copy is an ordinary asset owned by the caller, made by `AssetService.create` like any
API-created asset, so the outbox carries it to the caller's Pieces (and AIWFE) and the sync
links it there as it links every other. It names where it came from twice: in its metadata
(`saved_from`: the team asset, its revision number and id, its owner and the team), for
clients to show, and in `asset_saves`, the record that makes saving idempotent: one copy per
member, team asset and revision. Saving that revision again returns the copy (deleting the
copy lets the member save again); saving after the team edited the asset makes a new copy
of the new revision.

Who may save is `team_access`'s answer: any member who reads the asset through a team
(viewers too). Everyone else gets 404, as for an asset that does not exist; the access is
checked again inside the creating transaction, so a member removed meanwhile saves nothing.
Saving one's own asset is refused with 409: it is already in one's library and Pieces.
Every save is audited (`asset_saved`), in the same transaction as the copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pieces_integration.domain.assets import AssetDraft
from pieces_integration.domain.auth import Principal, ensure_can_write
from pieces_integration.domain.errors import Conflict, NotFound
from pieces_integration.domain.model import Asset, AuditEntry
from pieces_integration.domain.revisions import Revision
from pieces_integration.domain.teams import SavedCopy
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory
from pieces_integration.service_layer.assets import AssetService
from pieces_integration.service_layer.team_access import TeamGrant, reading_grants

SAVED_FROM = "saved_from"  # the copy's metadata key naming its origin


class _AlreadySaved(Exception):
    """A concurrent save of the same revision committed first: this one creates nothing."""


@dataclass(frozen=True, slots=True)
class _Origin:
    asset: Asset
    revision: Revision
    grant: TeamGrant


async def _origin(uow: UnitOfWork, principal: Principal, asset_id: str) -> _Origin:
    asset = await uow.assets.get(asset_id)
    if asset is None:
        raise NotFound("asset", asset_id)
    if asset.user_id == principal.user_id:
        raise Conflict(
            "this asset is already yours, in your library and your Pieces; "
            "saving copies a team asset another member shared",
            details={"asset_id": asset_id},
        )
    grants = await reading_grants(uow, principal, asset_id)
    revision = await uow.revisions.latest(asset_id) if grants else None
    if not grants or revision is None:  # not shared with the caller: no existence leak
        raise NotFound("asset", asset_id)
    return _Origin(asset, revision, grants[0])


def _copy_of(origin: _Origin) -> AssetDraft:
    revision = origin.revision
    saved_from: dict[str, Any] = {
        "asset_id": origin.asset.id,
        "revision": revision.number,
        "revision_id": revision.id,
        "owner_id": origin.asset.user_id,
        "team_id": origin.grant.team.id,
        "team_name": origin.grant.team.name,
    }
    return AssetDraft(
        name=revision.name,
        content=revision.content,
        description=revision.description,
        language=revision.language,
        tags=list(revision.tags),
        metadata={**origin.asset.metadata, SAVED_FROM: saved_from},
    )


@dataclass
class SaveService:
    uow: UnitOfWorkFactory
    assets: AssetService

    async def save(self, principal: Principal, asset_id: str) -> tuple[Asset, bool]:
        """The caller's copy of the team asset at its current revision, and whether this
        call made it (False: the caller had saved that revision already)."""
        ensure_can_write(principal)
        async with self.uow(readonly=True) as uow:
            origin = await _origin(uow, principal, asset_id)
            existing = await self._copy(uow, principal, origin.revision)
        if existing is not None:
            return existing, False
        revision = origin.revision

        async def record(uow: UnitOfWork, copy: Asset) -> None:
            await _origin(uow, principal, asset_id)  # still a member, in this transaction
            saved = SavedCopy(principal.user_id, asset_id, revision.number, revision.id, copy.id)
            if not await uow.teams.record_save(saved):
                raise _AlreadySaved
            await uow.audit.add(
                AuditEntry(
                    "asset_saved",
                    actor_id=principal.user_id,
                    user_id=principal.user_id,
                    target=asset_id,
                    details={
                        "copy_id": copy.id,
                        "revision": revision.number,
                        "team_id": origin.grant.team.id,
                        "owner_id": origin.asset.user_id,
                        "name": copy.name[:200],
                    },
                )
            )

        try:
            copy = await self.assets.create(
                principal, None, _copy_of(origin), within=record, share_by_default_team=False
            )
            return copy, True
        except _AlreadySaved:
            async with self.uow(readonly=True) as uow:
                existing = await self._copy(uow, principal, revision)
            if existing is None:  # saved and deleted again in between: rare, say so
                raise Conflict(
                    "this revision was being saved at the same time; try again",
                    details={"asset_id": asset_id, "revision": revision.number},
                ) from None
            return existing, False

    async def _copy(
        self, uow: UnitOfWork, principal: Principal, revision: Revision
    ) -> Asset | None:
        copy_id = await uow.teams.saved_copy_id(
            principal.user_id, revision.asset_id, revision.number
        )
        return None if copy_id is None else await uow.assets.get(copy_id)
