"""Asset use cases: every write is one transaction holding the change, its audit trail where
due, and the outbox messages that carry it to Pieces OS and AIWFE (spec 7.2). Live events are
published only after the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from pieces_integration.domain.assets import (
    AssetDraft,
    AssetLimits,
    apply_edit,
    new_asset,
    validate,
)
from pieces_integration.domain.auth import Principal, ensure_can_write, resolve_user
from pieces_integration.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from pieces_integration.domain.events import EventType
from pieces_integration.domain.model import Asset, AuditEntry, OutboxMessage, Side, User
from pieces_integration.domain.outbox import OutboxOperation
from pieces_integration.domain.queries import AssetQuery, Page
from pieces_integration.domain.teams import Scope, TeamAction
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory
from pieces_integration.service_layer.auth import ensure_user
from pieces_integration.service_layer.events import EventPublisher, asset_payload
from pieces_integration.service_layer.revisions import record_revision, stale_edit
from pieces_integration.service_layer.sharing import share_by_default
from pieces_integration.service_layer.team_access import (
    TeamReachCache,
    may_read_asset,
    require_on_asset,
    team_ids_in,
)
from pieces_integration.service_layer.team_events import TeamEvents


@dataclass
class AssetService:
    uow: UnitOfWorkFactory
    events: EventPublisher
    limits: AssetLimits
    # Told the user id after each committed write, so the sync can carry it at once (the
    # scheduler would otherwise find the outbox message on its next poll).
    on_change: Callable[[str], None] | None = None
    # The members of teams an edited asset is shared with hear of it (issue 16).
    team_events: TeamEvents | None = None
    # Cleared when a new asset is shared by its owner's default (issue 16).
    reach: TeamReachCache | None = None

    def _changed(self, user_id: str) -> None:
        if self.on_change is not None:
            self.on_change(user_id)

    async def page(
        self,
        principal: Principal,
        user_id: str | None,
        query: AssetQuery,
        scope: Scope = Scope.MINE,
    ) -> Page[Asset]:
        owner = resolve_user(principal, user_id)
        async with self.uow(readonly=True) as uow:
            team_ids = await team_ids_in(uow, owner) if scope.teams else ()
            scoped = replace(query, own=scope.own, team_ids=team_ids)
            return await uow.assets.page(owner, scoped)

    async def get(self, principal: Principal, asset_id: str) -> Asset:
        """The caller's own asset, or one shared into a team they belong to."""
        async with self.uow(readonly=True) as uow:
            asset = await uow.assets.get(asset_id)
            if asset is None or not await may_read_asset(uow, principal, asset.user_id, asset_id):
                raise NotFound("asset", asset_id)
        return asset

    async def create(
        self,
        principal: Principal,
        user_id: str | None,
        draft: AssetDraft,
        *,
        within: Callable[[UnitOfWork, Asset], Awaitable[None]] | None = None,
        share_by_default_team: bool = True,
    ) -> Asset:
        """`within` runs in the creating transaction before its commit (a saved copy's
        provenance and audit, issue 16); if it raises, nothing is created. The owner's
        sharing default applies unless `share_by_default_team` is False (a personal copy of a
        team asset must not land back in a team library as a second copy)."""
        ensure_can_write(principal)
        owner = resolve_user(principal, user_id)
        asset = new_asset(owner, validate(draft, self.limits))
        async with self.uow() as uow:
            user = await ensure_user(uow, owner, principal.role)
            await uow.assets.add(asset)
            await _enqueue(uow, user, asset, OutboxOperation.ASSET_CREATE)
            if within is not None:
                await within(uow, asset)
            shared_into = (
                await share_by_default(uow, user, asset) if share_by_default_team else None
            )
            await uow.commit()
        self._changed(owner)
        await self.events.publish(
            owner,
            EventType.ASSET_CREATED,
            {"asset": asset_payload(asset), "source": asset.source.value},
        )
        if shared_into is not None and self.reach is not None:
            self.reach.clear()
        if shared_into is not None and self.team_events is not None:
            await self.team_events.asset_shared(asset, shared_into, owner)
        return asset

    async def update(
        self,
        principal: Principal,
        asset_id: str,
        draft: AssetDraft,
        *,
        full: bool,
        expected_version: int | None = None,
    ) -> Asset:
        ensure_can_write(principal)
        draft = validate(draft, self.limits)
        return await self._edit(principal, asset_id, draft, full=full, expected=expected_version)

    async def restore(
        self,
        principal: Principal,
        asset_id: str,
        number: int,
        *,
        expected_version: int | None = None,
    ) -> Asset:
        """Bring a team asset back to one of its revisions: a new revision, audited."""
        ensure_can_write(principal)
        async with self.uow(readonly=True) as uow:
            asset = await uow.assets.get(asset_id)
            if asset is None or not await may_read_asset(uow, principal, asset.user_id, asset_id):
                raise NotFound("asset", asset_id)
            revision = await uow.revisions.get(asset_id, number)
        if revision is None:
            raise NotFound("revision", str(number))
        return await self._edit(
            principal,
            asset_id,
            revision.draft(),
            full=True,
            expected=expected_version,
            restored_from=number,
        )

    async def _edit(
        self,
        principal: Principal,
        asset_id: str,
        draft: AssetDraft,
        *,
        full: bool,
        expected: int | None,
        restored_from: int | None = None,
    ) -> Asset:
        async with self.uow() as uow:
            asset = await uow.assets.get(asset_id)
            if asset is None:
                raise NotFound("asset", asset_id)
            # A team's maintainer edits any of its assets (issue 16); others only their own.
            await require_on_asset(uow, principal, asset.user_id, asset_id, TeamAction.EDIT_ANY)
            # The asset's teams, read once: they decide the revision and the team event.
            team_ids = [share.team_id for share in await uow.teams.shares_of(asset_id)]
            team_asset = bool(team_ids)
            if team_asset and expected is None and restored_from is None:
                raise InvalidInput(
                    "a team asset's edit names the version it is based on "
                    '(an If-Match header such as "3", or a `version` field)',
                    field="version",
                    current_version=asset.version,
                )
            if expected is not None and asset.version != expected:
                raise await stale_edit(uow, asset_id, expected)
            previous = asset.version
            if not apply_edit(asset, draft, full=full):
                return asset
            try:
                await uow.assets.update(asset, expected_version=previous)
            except Conflict:  # another edit committed since we read it
                raise await stale_edit(uow, asset_id, previous) from None
            if team_asset:
                await record_revision(uow, asset, principal.user_id, restored_from=restored_from)
            if restored_from is not None:
                await uow.audit.add(
                    AuditEntry(
                        "asset_restored",
                        actor_id=principal.user_id,
                        user_id=asset.user_id,
                        target=asset_id,
                        details={"revision": restored_from, "version": asset.version},
                    )
                )
            user = await ensure_user(uow, asset.user_id, principal.role)
            await _enqueue(uow, user, asset, OutboxOperation.ASSET_UPDATE)
            await uow.commit()
        self._changed(asset.user_id)
        await self.events.publish(
            asset.user_id,
            EventType.ASSET_UPDATED,
            {"asset": asset_payload(asset), "source": "user"},
        )
        if self.team_events is not None and team_ids:
            await self.team_events.asset_updated(asset, principal.user_id, team_ids)
        return asset

    async def delete(self, principal: Principal, asset_id: str) -> None:
        ensure_can_write(principal)
        async with self.uow() as uow:
            asset = await uow.assets.get(asset_id)
            if asset is None or not await may_read_asset(uow, principal, asset.user_id, asset_id):
                raise NotFound("asset", asset_id)
            if asset.user_id != principal.user_id and not principal.role.may_act_for_others:
                raise Forbidden(
                    "only the asset's owner deletes it; a team removes it by unsharing",
                    details={"asset_id": asset_id},
                )
            user = await ensure_user(uow, asset.user_id, principal.role)
            # Resolve remote ids now: the links go with the row.
            await _enqueue(uow, user, asset, OutboxOperation.ASSET_DELETE)
            await uow.assets.delete(asset_id)
            await uow.audit.add(
                AuditEntry(
                    "asset_deleted",
                    actor_id=principal.user_id,
                    user_id=asset.user_id,
                    target=asset_id,
                    details={"name": asset.name[:200]},
                )
            )
            await uow.commit()
        self._changed(asset.user_id)
        await self.events.publish(
            asset.user_id,
            EventType.ASSET_DELETED,
            {"asset_id": asset_id, "asset": asset_payload(asset), "source": "user"},
        )


async def _enqueue(uow: UnitOfWork, user: User, asset: Asset, operation: str) -> None:
    """Outbox messages toward each side, unless the user turned asset sync off (spec 8.1)."""
    if not user.consent.asset_sync:
        return
    for side in Side:
        if side.value == asset.source.value and operation == OutboxOperation.ASSET_CREATE:
            continue  # it came from there
        link = await uow.assets.get_link(asset.id, side)
        await uow.outbox.add(
            OutboxMessage(
                user_id=asset.user_id,
                target=side.value,
                operation=operation,
                aggregate_id=asset.id,
                payload={
                    "asset_id": asset.id,
                    "version": asset.version,
                    "content_hash": asset.content_hash,
                    "remote_id": link.remote_id if link else None,
                    "base_hash": link.base_hash if link else None,
                },
                idempotency_key=f"{side.value}:{operation}:{asset.id}:{asset.version}",
            )
        )
