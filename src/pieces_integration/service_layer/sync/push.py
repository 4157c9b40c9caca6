"""The push phase: write to one side every asset whose state differs from its base there.

Assets with no link are created (a side that picks its own ids gets a pending link first,
so a crash between "created" and "recorded" is healed by adoption instead of a second
create); queued deletions are delivered first (see `outbox`).
"""

from __future__ import annotations

import asyncio

from pieces_integration.domain.merge import Snapshot
from pieces_integration.domain.model import Asset, AssetLink, Side
from pieces_integration.ports.sync_sides import RemoteAsset, SyncSide
from pieces_integration.service_layer.sync.outbox import deliver_deletes
from pieces_integration.service_layer.sync.run import RunContext
from pieces_integration.service_layer.sync.state import LocalState
from pieces_integration.service_layer.sync.writes import (
    BatchWriter,
    apply_snapshot,
    base_link,
    commit_asset,
    save_link,
)

CREATE_CONCURRENCY = 8


async def push_side(
    ctx: RunContext,
    state: LocalState,
    client: SyncSide,
    remote: dict[str, RemoteAsset],
    *,
    scoped: bool,
) -> None:
    side = client.side
    user_id = ctx.book.user_id
    moved = ctx.book.moved  # edited meanwhile: left to the next run
    await deliver_deletes(ctx.uow, ctx.book, client, remote)
    idempotent = getattr(client, "idempotent_create", False)
    # A pending link means an earlier create may have happened: only a full run, which
    # sees the whole remote library and can adopt that copy, may try again.
    creates = [
        asset
        for asset in state.assets.values()
        if asset.id not in moved
        and ((link := state.link(asset.id, side)) is None or (link.pending and not scoped))
    ]
    if creates and not idempotent:
        # Record the intent first: a crash after the remote create is then healed by
        # adoption (pull phase) instead of a second create.
        writer = ctx.writer()
        for asset in creates:
            if state.link(asset.id, side) is None:
                intent = AssetLink(asset.id, side, AssetLink.PENDING_PREFIX + asset.id)
                state.links[(asset.id, side)] = intent
                await writer.add(save_link(user_id, intent))
        await writer.flush()
    # Creates go out a chunk at a time, concurrently where the side is idempotent, and
    # each chunk's links are committed as soon as it is done: a crash loses at most one
    # chunk's records, which the next run recognises (pending links / our own ids).
    chunk = CREATE_CONCURRENCY if idempotent else 1
    done = 0
    for start in range(0, len(creates), chunk):
        batch = creates[start : start + chunk]
        written = await asyncio.gather(
            *(
                client.create_asset(
                    asset.id,
                    Snapshot.of(asset),
                    source=asset.source.value,
                    source_id=asset.source_id,
                )
                for asset in batch
            )
        )
        writer = ctx.writer(len(batch) * 2)
        for asset, created in zip(batch, written, strict=True):
            await _after_write(ctx, state, writer, side, asset, created)
        await writer.flush()
        done += len(batch)
        if done % ctx.batch_size < chunk or done == len(creates):
            ctx.progress(f"push {side.value}", done, len(creates))
    writer = ctx.writer()
    for asset in list(state.assets.values()):
        link = state.link(asset.id, side)
        if link is None or link.pending or asset.id in moved:
            continue
        if Snapshot.of(asset).state_hash() == link.base_hash:
            continue
        # The side has no conditional update: re-read right before writing, and leave
        # an asset that changed there since the listing to the next run's merge.
        current = await client.get_asset(link.remote_id)
        if current is None or current.snapshot.state_hash() != link.base_hash:
            continue
        updated = await client.update_asset(link.remote_id, Snapshot.of(asset))
        await _after_write(ctx, state, writer, side, asset, updated)
    await writer.flush()


async def _after_write(
    ctx: RunContext,
    state: LocalState,
    writer: BatchWriter,
    side: Side,
    asset: Asset,
    written: RemoteAsset,
) -> None:
    ctx.book.pushed[side] += 1
    link = base_link(asset.id, side, written)
    state.links[(asset.id, side)] = link
    if written.snapshot != Snapshot.of(asset):
        # The side normalised something (e.g. an unknown language): agree with it, or
        # the next run would push the same difference again forever.
        apply_snapshot(asset, written.snapshot, ctx.stamp().encode())
        await writer.add(commit_asset(asset, link, ctx.book.moved, ctx.book.shared))
    else:
        await writer.add(save_link(asset.user_id, link))
