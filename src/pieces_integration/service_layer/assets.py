"""Asset use cases: every write is one transaction holding the change, its audit trail where
due, and the outbox messages that carry it to Pieces OS and AIWFE (spec 7.2). Live events are
published only after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pieces_integration.domain.assets import (
    AssetDraft,
    AssetLimits,
    apply_edit,
    new_asset,
    validate,
)
from pieces_integration.domain.auth import Principal, ensure_can_write, ensure_owner, resolve_user
from pieces_integration.domain.errors import Conflict, NotFound
from pieces_integration.domain.events import EventType
from pieces_integration.domain.model import Asset, AuditEntry, OutboxMessage, Side, User
from pieces_integration.domain.outbox import OutboxOperation
from pieces_integration.domain.queries import AssetQuery, Page
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory
from pieces_integration.service_layer.auth import ensure_user
from pieces_integration.service_layer.events import EventPublisher, asset_payload


@dataclass
class AssetService:
    uow: UnitOfWorkFactory
    events: EventPublisher
    limits: AssetLimits
    # Told the user id after each committed write, so the sync can carry it at once (the
    # scheduler would otherwise find the outbox message on its next poll).
    on_change: Callable[[str], None] | None = None

    def _changed(self, user_id: str) -> None:
        if self.on_change is not None:
            self.on_change(user_id)

    async def page(
        self, principal: Principal, user_id: str | None, query: AssetQuery
    ) -> Page[Asset]:
        owner = resolve_user(principal, user_id)
        async with self.uow(readonly=True) as uow:
            return await uow.assets.page(owner, query)

    async def get(self, principal: Principal, asset_id: str) -> Asset:
        async with self.uow(readonly=True) as uow:
            asset = await uow.assets.get(asset_id)
        if asset is None:
            raise NotFound("asset", asset_id)
        ensure_owner(principal, asset.user_id, "asset", asset_id)
        return asset

    async def create(self, principal: Principal, user_id: str | None, draft: AssetDraft) -> Asset:
        ensure_can_write(principal)
        owner = resolve_user(principal, user_id)
        asset = new_asset(owner, validate(draft, self.limits))
        async with self.uow() as uow:
            user = await ensure_user(uow, owner, principal.role)
            await uow.assets.add(asset)
            await _enqueue(uow, user, asset, OutboxOperation.ASSET_CREATE)
            await uow.commit()
        self._changed(owner)
        await self.events.publish(
            owner,
            EventType.ASSET_CREATED,
            {"asset": asset_payload(asset), "source": asset.source.value},
        )
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
        async with self.uow() as uow:
            asset = await uow.assets.get(asset_id)
            if asset is None:
                raise NotFound("asset", asset_id)
            ensure_owner(principal, asset.user_id, "asset", asset_id)
            if expected_version is not None and asset.version != expected_version:
                raise Conflict(
                    f"asset is at version {asset.version}, not {expected_version}",
                    details={"current_version": asset.version},
                )
            previous = asset.version
            if not apply_edit(asset, draft, full=full):
                return asset
            await uow.assets.update(asset, expected_version=previous)
            user = await ensure_user(uow, asset.user_id, principal.role)
            await _enqueue(uow, user, asset, OutboxOperation.ASSET_UPDATE)
            await uow.commit()
        self._changed(asset.user_id)
        await self.events.publish(
            asset.user_id,
            EventType.ASSET_UPDATED,
            {"asset": asset_payload(asset), "source": "user"},
        )
        return asset

    async def delete(self, principal: Principal, asset_id: str) -> None:
        ensure_can_write(principal)
        async with self.uow() as uow:
            asset = await uow.assets.get(asset_id)
            if asset is None:
                raise NotFound("asset", asset_id)
            ensure_owner(principal, asset.user_id, "asset", asset_id)
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
