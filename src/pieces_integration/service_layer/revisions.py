"""Revisions of team assets (issue 16): recorded in the edit's own transaction, read by
whoever may read the asset. Restores are edits (AssetService.restore)."""

from __future__ import annotations

from dataclasses import dataclass

from pieces_integration.domain.auth import Principal
from pieces_integration.domain.errors import Conflict, NotFound
from pieces_integration.domain.model import Asset
from pieces_integration.domain.revisions import Revision, revision_of, revision_summary
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory
from pieces_integration.service_layer.team_access import may_read_asset


async def record_revision(
    uow: UnitOfWork, asset: Asset, author_id: str | None, *, restored_from: int | None = None
) -> Revision:
    """Append the revision of `asset` as it is now (its version), unless it is recorded."""
    previous = await uow.revisions.latest(asset.id)
    if previous is not None and previous.number == asset.version:
        return previous
    revision = revision_of(asset, author_id, previous, restored_from=restored_from)
    await uow.revisions.add(revision)
    return revision


async def stale_edit(uow: UnitOfWork, asset_id: str, expected: int) -> Conflict:
    """The 409 of an edit based on an old version: it carries the current state."""
    current = await uow.assets.get(asset_id)
    version = None if current is None else current.version
    details: dict[str, object] = {"current_version": version, "expected_version": expected}
    latest = await uow.revisions.latest(asset_id)
    if latest is not None:
        details["current_revision"] = revision_summary(latest)
    return Conflict(
        f"asset is at version {version}, not {expected}; reapply your edit to it",
        details=details,
    )


@dataclass
class RevisionService:
    uow: UnitOfWorkFactory

    async def _readable(self, uow: UnitOfWork, principal: Principal, asset_id: str) -> None:
        asset = await uow.assets.get(asset_id)
        if asset is None or not await may_read_asset(uow, principal, asset.user_id, asset_id):
            raise NotFound("asset", asset_id)

    async def history(self, principal: Principal, asset_id: str, *, limit: int) -> list[Revision]:
        async with self.uow(readonly=True) as uow:
            await self._readable(uow, principal, asset_id)
            return await uow.revisions.list_for(asset_id, limit=limit)

    async def get(self, principal: Principal, asset_id: str, number: int) -> Revision:
        async with self.uow(readonly=True) as uow:
            await self._readable(uow, principal, asset_id)
            revision = await uow.revisions.get(asset_id, number)
        if revision is None:
            raise NotFound("revision", str(number))
        return revision
