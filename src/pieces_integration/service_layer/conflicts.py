"""Listing and resolving sync conflicts (spec 7.2): keep ours, theirs, or a merged text.

Resolving writes the chosen version as a new local change (after backing up the current
one); the next sync carries it to both sides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pieces_integration.domain.auth import Principal, ensure_can_write, ensure_owner, resolve_user
from pieces_integration.domain.errors import Conflict, InvalidInput, NotFound
from pieces_integration.domain.events import EventType
from pieces_integration.domain.hlc import HybridLogicalClock
from pieces_integration.domain.merge import Snapshot
from pieces_integration.domain.model import AssetBackup, AssetConflict, content_hash, new_id, utcnow
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.events import EventPublisher, asset_payload


@dataclass
class ConflictService:
    uow: UnitOfWorkFactory
    events: EventPublisher
    clock: HybridLogicalClock

    async def for_user(
        self, principal: Principal, user_id: str | None, status: str | None
    ) -> list[AssetConflict]:
        owner = resolve_user(principal, user_id)
        async with self.uow(readonly=True) as uow:
            return await uow.conflicts.for_user(owner, status=status)

    async def resolve(
        self,
        principal: Principal,
        conflict_id: str,
        resolution: str,
        merged_content: str | None = None,
    ) -> AssetConflict:
        ensure_can_write(principal)
        async with self.uow() as uow:
            conflict = await uow.conflicts.get(conflict_id)
            if conflict is None:
                raise NotFound("conflict", conflict_id)
            ensure_owner(principal, conflict.user_id, "conflict", conflict_id)
            asset = await uow.assets.get(conflict.asset_id)
            if asset is None:
                raise Conflict("the asset of this conflict was deleted since")
            if resolution == "ours":
                chosen = Snapshot.from_json(conflict.ours)
            elif resolution == "theirs":
                chosen = Snapshot.from_json(conflict.theirs)
            elif resolution == "merged":
                if not merged_content or not merged_content.strip():
                    raise InvalidInput(
                        "a merged resolution needs the merged content", field="content"
                    )
                chosen = Snapshot(
                    name=asset.name,
                    content=merged_content,
                    description=asset.description,
                    language=asset.language,
                    tags=tuple(asset.tags),
                )
            else:
                raise InvalidInput("resolution must be ours, theirs or merged", field="resolution")
            current = Snapshot.of(asset)
            if chosen != current:
                await uow.conflicts.add_backup(
                    AssetBackup(
                        id=new_id(),
                        user_id=asset.user_id,
                        asset_id=asset.id,
                        reason="before_resolution",
                        snapshot=current.to_json(),
                        conflict_id=conflict.id,
                    )
                )
                previous = asset.version
                asset.name, asset.content = chosen.name, chosen.content
                asset.description, asset.language = chosen.description, chosen.language
                asset.tags = list(chosen.tags)
                asset.content_hash = content_hash(asset.content)
                asset.version += 1
                asset.updated_at = utcnow()
                asset.hlc = self.clock.tick(int(time.time() * 1000)).encode()
                await uow.assets.update(asset, expected_version=previous)
            conflict.status, conflict.resolution = "resolved", resolution
            conflict.resolved_at = utcnow()
            await uow.conflicts.resolve(conflict)
            await uow.commit()
        if chosen != current:
            await self.events.publish(
                asset.user_id,
                EventType.ASSET_UPDATED,
                {"asset": asset_payload(asset), "source": "user"},
            )
        return conflict

    async def get(self, principal: Principal, conflict_id: str) -> AssetConflict:
        async with self.uow(readonly=True) as uow:
            conflict = await uow.conflicts.get(conflict_id)
        if conflict is None:
            raise NotFound("conflict", conflict_id)
        ensure_owner(principal, conflict.user_id, "conflict", conflict_id)
        return conflict

    async def backups(self, principal: Principal, asset_id: str) -> list[AssetBackup]:
        """The versions of an asset kept before they were overruled (its history)."""
        async with self.uow(readonly=True) as uow:
            asset = await uow.assets.get(asset_id)
            if asset is None:
                raise NotFound("asset", asset_id)
            ensure_owner(principal, asset.user_id, "asset", asset_id)
            return await uow.conflicts.backups(asset.user_id, asset_id=asset_id)
