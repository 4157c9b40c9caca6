"""The pull phase: bring what changed on one side here (spec 4.3, DEVIATIONS 9 and 12).

Each remote asset is compared with its base. Changed only there -> apply here. Changed on
both -> three-way merge; what must be overruled is kept as a backup. New there -> adopt a
pending create or an identical unlinked asset, else import. Gone there -> delete here if
unchanged since the base, else keep (an edit beats a delete). `domain.merge.plan` makes
each decision; this module reads the state it needs and writes what was decided.
"""

from __future__ import annotations

from typing import Any

from pieces_integration.domain.events import EventType
from pieces_integration.domain.hlc import Timestamp
from pieces_integration.domain.merge import Plan, Snapshot, Versions, merge, plan
from pieces_integration.domain.model import (
    Asset,
    AssetBackup,
    AssetConflict,
    AssetLink,
    AssetSource,
    OutboxMessage,
    Side,
    new_id,
    utcnow,
)
from pieces_integration.domain.outbox import OutboxOperation
from pieces_integration.ports.storage import UnitOfWork
from pieces_integration.ports.sync_sides import RemoteAsset, SyncSide
from pieces_integration.service_layer.events import asset_payload
from pieces_integration.service_layer.sync.run import RunContext, Scope, millis
from pieces_integration.service_layer.sync.state import LocalState
from pieces_integration.service_layer.sync.writes import (
    Announcement,
    BatchWriter,
    Operation,
    apply_snapshot,
    base_link,
    commit_asset,
    delete_link,
    save_link,
    settle,
)


class Pull:
    """Pulls one side into the local state of one run."""

    def __init__(self, ctx: RunContext, state: LocalState) -> None:
        self.ctx = ctx
        self.state = state

    def _announce(self, user_id: str, event: EventType, payload: dict[str, Any]) -> Announcement:
        async def publish() -> object:
            return await self.ctx.events.publish(user_id, event, payload)

        return publish

    def _announce_update(self, asset: Asset, payload: dict[str, Any]) -> Announcement:
        owner = self._announce(asset.user_id, EventType.ASSET_UPDATED, payload)

        async def publish() -> object:
            await owner()
            return await self._tell_teams(asset)

        return publish

    async def _tell_teams(self, asset: Asset) -> int:
        """The members of the teams a committed change of `asset` is shared with hear of it."""
        team_ids = self.ctx.book.shared.get(asset.id)
        if not team_ids or self.ctx.team_events is None:
            return 0
        return await self.ctx.team_events.asset_updated(asset, asset.user_id, team_ids)

    async def side(
        self,
        side: Side,
        everywhere: dict[Side, dict[str, RemoteAsset]],
        sides: dict[Side, SyncSide],
        scope: Scope | None,
    ) -> None:
        ctx, state = self.ctx, self.state
        writer = ctx.writer()
        remote = everywhere[side]
        moved = ctx.book.moved
        linked = state.by_remote(side)
        # Which linked assets this run may find gone: all of them, or in a scoped run only
        # the announced ids (absence of anything else means "not fetched", not "deleted").
        checked = linked
        if scope is not None:
            wanted = scope.get(side, set())
            checked = {rid: pair for rid, pair in linked.items() if rid in wanted}
        async with ctx.uow(readonly=True) as uow:
            doomed = {
                str(m.payload.get("remote_id")): m
                for m in await uow.outbox.pending_for(ctx.book.user_id, target=side.value)
                if m.operation == OutboxOperation.ASSET_DELETE
            }
        pending_by_hash = {
            Snapshot.of(asset).state_hash(): (asset, link)
            for asset, link in state.pending(side)
            if asset.id not in moved
        }
        unlinked_by_hash: dict[str, Asset] = {}
        for asset in state.assets.values():
            if state.link(asset.id, side) is None and asset.id not in moved:
                unlinked_by_hash.setdefault(Snapshot.of(asset).state_hash(), asset)

        total = len(remote)
        for done, (remote_id, item) in enumerate(remote.items(), start=1):
            if done % ctx.batch_size == 0 or done == total:
                ctx.progress(f"pull {side.value}", done, total)
            if remote_id in linked:
                asset, link = linked[remote_id]
                await self._linked(writer, side, asset, link, item)
            elif own_id_unlinked(state, side, sides[side], remote_id):
                # Our own create (the side keeps our ids) whose record a crash lost. We do
                # not know the base, so treat any difference as a conflict: the merge keeps
                # the version that loses as a backup.
                asset = state.assets[remote_id]
                unknown = AssetLink(asset.id, side, remote_id)
                await self._linked(writer, side, asset, unknown, item)
            elif remote_id in doomed:
                message = doomed[remote_id]
                deleted_at = message.payload.get("base_hash")
                there = item.snapshot.state_hash()
                if plan(None if deleted_at is None else str(deleted_at), None, there) is (
                    Plan.RESTORE
                ):
                    await writer.add(settle(message))
                    await self._import(writer, side, item)
                # else: deleted here; the outbox delivers the delete
            else:
                digest = item.snapshot.state_hash()
                adopted = pending_by_hash.pop(digest, None)
                candidate = adopted[0] if adopted else unlinked_by_hash.pop(digest, None)
                if candidate is not None:
                    link = base_link(candidate.id, side, item)
                    state.links[(candidate.id, side)] = link
                    await writer.add(save_link(ctx.book.user_id, link))
                else:
                    await self._import(writer, side, item)

        for remote_id, (asset, link) in checked.items():
            if remote_id in remote or asset.id in moved:
                continue
            here = Snapshot.of(asset).state_hash()
            decision = plan(link.base_hash, here, None)
            if decision is Plan.DELETE_HERE:  # unless another side edited it meanwhile
                if scope is not None:
                    await _fetch_links_elsewhere(state, asset, side, everywhere, sides)
                if _unreachable_elsewhere(state, asset, side, everywhere, set(sides)):
                    # Decide next run: dropping the link here would re-create it there.
                    continue
                elsewhere = _changed_elsewhere(state, asset, side, everywhere, set(sides))
                decision = plan(link.base_hash, here, None, changed_elsewhere=elsewhere)
            if decision is Plan.DELETE_HERE:
                await self._delete_local(writer, side, asset)
            else:  # keep it; re-create it there
                del state.links[(asset.id, side)]
                await writer.add(delete_link(asset.id, side))
        await writer.flush()

    async def _linked(
        self,
        writer: BatchWriter,
        side: Side,
        asset: Asset,
        link: AssetLink,
        item: RemoteAsset,
    ) -> None:
        if asset.id in self.ctx.book.moved:
            return  # edited meanwhile: the next run decides from what is stored
        local = Snapshot.of(asset)
        decision = plan(link.base_hash, local.state_hash(), item.snapshot.state_hash())
        if decision is Plan.NOTHING:
            return  # nothing new there; the push phase handles local changes
        new_link = base_link(asset.id, side, item)
        self.state.links[(asset.id, side)] = new_link
        if decision is Plan.AGREE:
            await writer.add(save_link(asset.user_id, new_link))
        elif decision is Plan.TAKE_THEIRS:
            apply_snapshot(asset, item.snapshot, self.ctx.remote_stamp(item).encode())
            self.ctx.book.changed_locally.add(asset.id)
            payload = {"asset": asset_payload(asset), "source": side.value}
            await writer.add(
                commit_asset(asset, new_link, self.ctx.book.moved, self.ctx.book.shared),
                then=self._announce_update(asset, payload),
            )
        else:
            await self._resolve(writer, side, asset, new_link, link, item, local)

    async def _resolve(
        self,
        writer: BatchWriter,
        side: Side,
        asset: Asset,
        new_link: AssetLink,
        link: AssetLink,
        item: RemoteAsset,
        local: Snapshot,
    ) -> None:
        ctx = self.ctx
        base = Snapshot.from_json(link.base_snapshot) if link.base_snapshot else None
        local_stamp = (
            Timestamp.decode(asset.hlc)
            if asset.hlc
            else Timestamp(millis(asset.updated_at), 0, "local")
        )
        remote_stamp = (
            Timestamp(millis(item.updated_at), 0, "remote")
            if item.updated_at
            else Timestamp(0, 0, "remote")
        )
        result = merge(
            Versions(base, local, item.snapshot, local_stamp > remote_stamp, side.value),
            ctx.strategy,
        )
        conflict = AssetConflict(
            id=new_id(),
            user_id=asset.user_id,
            asset_id=asset.id,
            side=side.value,
            base=base.to_json() if base else None,
            ours=local.to_json(),
            theirs=item.snapshot.to_json(),
            strategy=ctx.strategy.value,
            status="resolved",
            resolution="merged" if result.clean else "auto",
            resolved_at=utcnow(),
        )
        backups = [
            AssetBackup(
                id=new_id(),
                user_id=asset.user_id,
                asset_id=asset.id,
                reason=reason,
                snapshot=snapshot.to_json(),
                conflict_id=conflict.id,
            )
            for reason, snapshot, overwritten in (
                ("local_before_sync", local, result.merged != local),
                (f"{side.value}_before_sync", item.snapshot, result.merged != item.snapshot),
            )
            if overwritten  # a backup is written before any overwrite
        ]
        if result.merged != local:
            apply_snapshot(asset, result.merged, ctx.stamp().encode())
            ctx.book.changed_locally.add(asset.id)
            write = commit_asset(asset, new_link, self.ctx.book.moved, self.ctx.book.shared)
        else:
            write = save_link(asset.user_id, new_link)

        async def resolve(uow: UnitOfWork) -> bool:
            # The record of the resolution goes with its write: a write skipped for a
            # concurrent edit resolved nothing (the next run merges that edit).
            if not await write(uow):
                return False
            await uow.conflicts.add(conflict)
            for backup in backups:
                await uow.conflicts.add_backup(backup)
            return True

        announce = self._announce(
            asset.user_id,
            EventType.CONFLICT_DETECTED,
            {
                "conflict_id": conflict.id,
                "asset_id": asset.id,
                "side": side.value,
                "resolution": conflict.resolution,
                "overruled": list(result.overruled),
            },
        )

        async def resolved() -> object:
            ctx.book.record.conflicts_resolved += 1
            await self._tell_teams(asset)  # a merge that changed a team asset
            return await announce()

        await writer.add(resolve, then=resolved)

    async def _import(self, writer: BatchWriter, side: Side, item: RemoteAsset) -> None:
        ctx, state = self.ctx, self.state
        now = utcnow()
        asset = Asset(
            id=new_id(),
            user_id=ctx.book.user_id,
            name=item.snapshot.name,
            content=item.snapshot.content,
            description=item.snapshot.description,
            language=item.snapshot.language,
            tags=list(item.snapshot.tags),
            source=AssetSource(side.value),
            source_id=item.remote_id,
            created_at=now,
            updated_at=now,
            hlc=ctx.remote_stamp(item).encode(),
        )
        link = base_link(asset.id, side, item)
        state.assets[asset.id] = asset
        state.links[(asset.id, side)] = link
        ctx.book.changed_locally.add(asset.id)
        payload = {"asset": asset_payload(asset), "source": side.value}
        await writer.add_import(
            asset, link, then=self._announce(asset.user_id, EventType.ASSET_CREATED, payload)
        )

    async def _delete_local(self, writer: BatchWriter, side: Side, asset: Asset) -> None:
        state = self.state
        other_links = [
            link
            for (asset_id, link_side), link in list(state.links.items())
            if asset_id == asset.id and link_side is not side and not link.pending
        ]
        for key in [key for key in state.links if key[0] == asset.id]:
            del state.links[key]
        del state.assets[asset.id]
        self.ctx.book.changed_locally.add(asset.id)
        payload = {"asset_id": asset.id, "asset": asset_payload(asset), "source": side.value}
        await writer.add(
            _delete_carrying_it_on(asset, other_links),
            then=self._announce(asset.user_id, EventType.ASSET_DELETED, payload),
        )


def _delete_carrying_it_on(asset: Asset, other_links: list[AssetLink]) -> Operation:
    """Delete the asset here and queue its delete toward the other sides it lives on."""

    async def delete(uow: UnitOfWork) -> bool:
        for link in other_links:
            operation = OutboxOperation.ASSET_DELETE
            await uow.outbox.add(
                OutboxMessage(
                    user_id=asset.user_id,
                    target=link.side.value,
                    operation=operation,
                    aggregate_id=asset.id,
                    payload={
                        "asset_id": asset.id,
                        "remote_id": link.remote_id,
                        "base_hash": link.base_hash,
                    },
                    idempotency_key=f"{link.side.value}:{operation.value}:{asset.id}",
                )
            )
        await uow.assets.delete(asset.id)
        return True

    return delete


def own_id_unlinked(state: LocalState, side: Side, client: SyncSide, remote_id: str) -> bool:
    return (
        bool(getattr(client, "idempotent_create", False))
        and remote_id in state.assets
        and state.link(remote_id, side) is None
    )


def _unreachable_elsewhere(
    state: LocalState,
    asset: Asset,
    side: Side,
    everywhere: dict[Side, dict[str, RemoteAsset]],
    connected: set[Side],
) -> bool:
    """Whether another side the asset lives on could not be listed in this run."""
    return any(
        (link := state.link(asset.id, other)) is not None
        and not link.pending
        and other not in everywhere
        for other in connected - {side}
    )


def _changed_elsewhere(
    state: LocalState,
    asset: Asset,
    side: Side,
    everywhere: dict[Side, dict[str, RemoteAsset]],
    connected: set[Side],
) -> bool:
    """Whether another side edited the asset since its base (or cannot be asked now)."""
    for other in connected - {side}:
        link = state.link(asset.id, other)
        if link is None or link.pending:
            continue
        if other not in everywhere:
            return True  # that side is unreachable: decide next run, not blindly now
        there = everywhere[other].get(link.remote_id)
        if there is not None and there.snapshot.state_hash() != link.base_hash:
            return True
    return False


async def _fetch_links_elsewhere(
    state: LocalState,
    asset: Asset,
    side: Side,
    everywhere: dict[Side, dict[str, RemoteAsset]],
    sides: dict[Side, SyncSide],
) -> None:
    """In a scoped run, read the asset on the other sides before deciding on a delete."""
    for other, client in sides.items():
        link = state.link(asset.id, other)
        if other is side or other not in everywhere or link is None or link.pending:
            continue
        if link.remote_id not in everywhere[other]:
            item = await client.get_asset(link.remote_id)
            if item is not None:
                everywhere[other][link.remote_id] = item
