"""The sync engine (spec 3.2, 4.3, 7.2): keeps a user's assets the same on Pieces OS, AIWFE
and here, without losing or duplicating anything.

The service's store is the hub. For every asset and side it keeps a link: the id there and
the synced state both agreed on (the base, DEVIATIONS 9). A run has two phases per side:

- pull: compare each remote asset with its base. Changed only there -> apply here. Changed
  on both -> three-way merge; what must be overruled is kept as a backup (DEVIATIONS 12).
  New there -> adopt a pending create or an identical unlinked asset, else import. Gone
  there -> delete here if unchanged since the base, else keep (an edit beats a delete).
- push: every asset whose state differs from its base on a side is written there; assets
  with no link are created (Pieces gets a pending link first, so a crash between "created"
  and "recorded" is healed by adoption instead of a second create); queued deletions from
  the outbox are delivered.

Every decision comes from stored state, so a run interrupted anywhere (even by kill -9) is
completed by the next one. One run per user at a time, across replicas (the `sync:<user>`
lock); a second request while one runs joins it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from pieces_integration.domain.errors import NotFound
from pieces_integration.domain.hlc import HybridLogicalClock, Timestamp
from pieces_integration.domain.merge import Snapshot, Strategy, Versions, merge
from pieces_integration.domain.model import (
    Asset,
    AssetBackup,
    AssetConflict,
    AssetLink,
    AssetSource,
    OutboxMessage,
    Side,
    SyncError,
    SyncRun,
    content_hash,
    new_id,
    utcnow,
)
from pieces_integration.observability.metrics import Metrics
from pieces_integration.ports.infrastructure import Locks, LockUnavailable
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory
from pieces_integration.ports.sync_sides import RemoteAsset, SyncSide, SyncSides
from pieces_integration.service_layer.events import EventPublisher, asset_payload
from pieces_integration.service_layer.sync_state import (
    BatchWriter,
    LocalState,
    load_scoped_state,
    load_state,
)

log = structlog.get_logger(__name__)
# The `sync:<user>` lease (Redis): renewed every third of it while the run goes on, so it
# only bounds how long a replica that died holding it blocks that user's sync.
LOCK_TTL = 30.0
JOIN_WAIT = 600.0  # how long a request waits for a run held on another replica


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _apply(asset: Asset, snapshot: Snapshot, stamp: Timestamp) -> None:
    asset.name = snapshot.name
    asset.content = snapshot.content
    asset.description = snapshot.description
    asset.language = snapshot.language
    asset.tags = list(snapshot.tags)
    asset.content_hash = content_hash(asset.content)
    asset.version += 1
    asset.updated_at = utcnow()
    asset.hlc = stamp.encode()


def _base_link(asset_id: str, side: Side, remote: RemoteAsset) -> AssetLink:
    return AssetLink(
        asset_id=asset_id,
        side=side,
        remote_id=remote.remote_id,
        base_hash=remote.snapshot.state_hash(),
        base_version=remote.version,
        synced_at=utcnow(),
        base_snapshot=remote.snapshot.to_json(),
    )


@dataclass
class _Run:
    """Book-keeping of one run."""

    record: SyncRun
    pushed: Counter[Side] = field(default_factory=Counter)
    changed_locally: set[str] = field(default_factory=set)
    pushed_ok: set[Side] = field(default_factory=set)
    # Outbox messages pending when the run began, before it read any state: only these are
    # carried by what the run saw. A write committed while the run goes on leaves a message
    # the run must not settle, or its change would wait for the next full reconciliation.
    seen_messages: set[int] = field(default_factory=set)


@dataclass
class SyncEngine:
    uow: UnitOfWorkFactory
    locks: Locks
    events: EventPublisher
    sides: SyncSides
    clock: HybridLogicalClock
    strategy: Strategy = Strategy.LAST_WRITER_WINS
    batch_size: int = 50
    metrics: Metrics | None = None
    # Called as (user_id, phase, done, total) while a run progresses: the CLI's progress bar.
    on_progress: Callable[[str, str, int, int], None] | None = None
    # Delivery of other outbox messages toward a side, by operation (e.g. AIWFE task
    # suggestions), run after that side's push succeeded.
    deliverers: dict[str, Callable[[OutboxMessage], Awaitable[object]]] = field(
        default_factory=dict
    )
    # Called with the assets a run brought in or changed from Pieces (to look for TODOs).
    after_pull: Callable[[list[Asset]], Awaitable[None]] | None = None
    _running: dict[str, asyncio.Future[SyncRun]] = field(default_factory=dict)
    _joined: set[str] = field(default_factory=set)  # users whose run someone else awaits

    def _progress(self, user_id: str, phase: str, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(user_id, phase, done, total)

    def stamp(self) -> Timestamp:
        return self.clock.tick(int(time.time() * 1000))

    # --- entry point -----------------------------------------------------------------------

    async def sync_user(
        self,
        user_id: str,
        *,
        trigger: str = "manual",
        join: bool = True,
        scope: Scope | None = None,
        interrupt: asyncio.Event | None = None,
    ) -> SyncRun:
        """Run (or join) the user's sync and return its result.

        Without `scope` the run reconciles everything (lists every side). With a scope it
        looks only at the named remote ids of each side (what a change stream announced)
        and pushes whatever differs locally: fast for one change in a large library; the
        periodic full run still catches anything a stream missed.

        With `join=False` a run already going on another replica raises LockUnavailable
        instead of being waited for (what the scheduler wants).

        `interrupt` (the scheduler's periodic full run): when it is set while the sides are
        still being listed, and nobody else awaits this run, the run gives way before it
        has written anything and returns a record with status "interrupted" that is never
        stored, so a change announced meanwhile is not kept waiting behind a whole listing.
        """
        running = self._running.get(user_id)
        if running is not None:
            self._joined.add(user_id)
            try:
                result = await asyncio.shield(running)
            except LockUnavailable:
                # That run (the scheduler's) skipped the user another replica holds; a caller
                # who wants to join waits for that replica's run instead.
                if not join:
                    raise
            else:
                if result.status != INTERRUPTED:
                    return result
            return await self.sync_user(user_id, trigger=trigger, join=join, scope=scope)
        future: asyncio.Future[SyncRun] = asyncio.get_running_loop().create_future()
        self._running[user_id] = future
        self._joined.discard(user_id)
        try:
            result = await self._locked(user_id, trigger, join, scope, interrupt)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # joiners re-raise it; mark it retrieved for the loop
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._running[user_id]
            self._joined.discard(user_id)

    async def _locked(
        self,
        user_id: str,
        trigger: str,
        join: bool,
        scope: Scope | None,
        interrupt: asyncio.Event | None = None,
    ) -> SyncRun:
        name = f"sync:{user_id}"
        try:
            async with self.locks.hold(name, ttl=LOCK_TTL, wait=0):
                return await self._run(user_id, trigger, scope, interrupt)
        except LockUnavailable:
            if not join:
                raise
        # Another replica is syncing this user: join it by waiting for the lock.
        async with self.locks.hold(name, ttl=LOCK_TTL, wait=JOIN_WAIT):
            async with self.uow(readonly=True) as uow:
                latest = await uow.sync_runs.latest(user_id)
        if latest is None:  # pragma: no cover - the other run always records itself
            return await self._locked(user_id, trigger, join, scope)
        return latest

    # --- one run ---------------------------------------------------------------------------

    async def _run(
        self,
        user_id: str,
        trigger: str,
        scope: Scope | None,
        interrupt: asyncio.Event | None = None,
    ) -> SyncRun:
        started = time.perf_counter()
        run = _Run(SyncRun(id=new_id(), user_id=user_id, trigger=trigger, status="in_progress"))
        errors = run.record.errors
        async with self.uow(readonly=True) as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise NotFound("user", user_id)
        sides = await self.sides(user_id) if user.consent.asset_sync else {}
        remote: dict[Side, dict[str, RemoteAsset]] | None = {}
        if sides:
            remote = await self._fetch_sides(user_id, sides, scope, errors, interrupt)
            if remote is None:  # gave way before writing anything: nothing to record
                run.record.status = INTERRUPTED
                return run.record
        async with self.uow() as uow:
            await uow.sync_runs.add(run.record)
            # Read before the state below: every message seen here has its change in it.
            run.seen_messages = {
                m.id for m in await uow.outbox.pending_for(user_id) if m.id is not None
            }
            await uow.commit()
        if not user.consent.asset_sync:
            errors.append(SyncError("consent", "asset sync is turned off", severity="warning"))
            return await self._finish(run, started)
        if not sides:
            errors.append(SyncError("not_connected", "no side is connected", severity="warning"))
            return await self._finish(run, started)
        assert remote is not None
        if scope is None:
            state = await load_state(self.uow, user_id)
        else:  # a scoped run reads only what it can touch: fast in a large library
            state = await load_scoped_state(self.uow, user_id, remote, scope)
        for side in remote:
            await self._pull(run, state, side, remote, sides, scope)
        if self.after_pull is not None and Side.PIECES in remote:
            from_pieces = [
                state.assets[asset_id]
                for asset_id in run.changed_locally
                if asset_id in state.assets
            ]
            if from_pieces:
                await self.after_pull(from_pieces)
        for side in remote:
            try:
                await self._push(run, state, sides[side], remote[side], scoped=scope is not None)
                await self._deliver_other(run, side)
                run.pushed_ok.add(side)
            except Exception as exc:
                errors.append(_side_error(side, "push", exc))
        run.record.status = "failed" if len(remote) == 0 else "completed"
        return await self._finish(run, started)

    async def _fetch_sides(
        self,
        user_id: str,
        sides: dict[Side, SyncSide],
        scope: Scope | None,
        errors: list[SyncError],
        interrupt: asyncio.Event | None,
    ) -> dict[Side, dict[str, RemoteAsset]] | None:
        """List (or, scoped, read) every side at once; None if interrupted first."""
        tasks = {
            side: asyncio.ensure_future(
                _fetch(client, None if scope is None else scope.get(side, set()))
            )
            for side, client in sides.items()
        }
        try:
            if interrupt is not None:
                listing: asyncio.Future[Any] = asyncio.gather(
                    *tasks.values(), return_exceptions=True
                )
                waiter: asyncio.Future[Any] = asyncio.ensure_future(interrupt.wait())
                try:
                    await asyncio.wait({listing, waiter}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                if not listing.done() and user_id not in self._joined:
                    log.info("sync_gave_way", user_id=user_id)
                    return None
            remote: dict[Side, dict[str, RemoteAsset]] = {}
            for side, task in tasks.items():
                try:
                    remote[side] = await task
                except Exception as exc:  # one side down never stops the other (spec 8.4)
                    errors.append(_side_error(side, "list", exc))
            return remote
        finally:
            for task in tasks.values():
                if not task.done():
                    task.cancel()
                elif not task.cancelled():
                    task.exception()  # retrieved: an abandoned failure is not an error

    async def _finish(self, run: _Run, started: float) -> SyncRun:
        record = run.record
        record.aiwfe_to_pieces = run.pushed[Side.PIECES]
        record.pieces_to_aiwfe = run.pushed[Side.AIWFE]
        if record.status == "in_progress":
            record.status = "completed"
        record.completed_at = utcnow()
        async with self.uow() as uow:
            await uow.sync_runs.update(record)
            await self._settle_outbox(uow, record.user_id, run.pushed_ok, run.seen_messages)
            await uow.commit()
        if self.metrics is not None:
            elapsed = time.perf_counter() - started
            status = "failure" if record.status == "failed" else "success"
            for direction in ("pieces_to_aiwfe", "aiwfe_to_pieces"):
                self.metrics.sync_operations.labels(direction, status).inc()
                self.metrics.sync_duration.labels(direction).observe(elapsed)
        await self.events.publish(record.user_id, "sync_completed", sync_completed(record))
        log.info(
            "sync_finished",
            user_id=record.user_id,
            status=record.status,
            to_pieces=record.aiwfe_to_pieces,
            to_aiwfe=record.pieces_to_aiwfe,
            conflicts=record.conflicts_resolved,
            errors=len(record.errors),
        )
        return record

    async def _settle_outbox(
        self, uow: UnitOfWork, user_id: str, sides: set[Side], seen: set[int]
    ) -> None:
        """Create/update messages toward a side are carried by that side's state-based push
        (those the run saw when it began; later ones are left to the run their write poked);
        messages toward a side that could not be reached wait, with growing backoff."""
        now = utcnow()
        targets = {side.value for side in sides}
        for message in await uow.outbox.pending_for(user_id):
            if message.id is None or message.target not in ("pieces", "aiwfe"):
                continue
            if message.target in targets and message.operation in ("asset.create", "asset.update"):
                if message.id in seen:
                    await uow.outbox.settle(message.id, at=now)
            elif message.next_attempt_at <= now:
                delay = min(300.0, 2.0 ** min(message.attempts, 8))
                await uow.outbox.defer(
                    message.id,
                    until=now + timedelta(seconds=delay),
                    error=f"{message.target} not reachable or not connected",
                )

    # --- pull ------------------------------------------------------------------------------

    async def _pull(
        self,
        run: _Run,
        state: LocalState,
        side: Side,
        everywhere: dict[Side, dict[str, RemoteAsset]],
        sides: dict[Side, SyncSide],
        scope: Scope | None,
    ) -> None:
        writer = BatchWriter(self.uow, self.batch_size)
        remote = everywhere[side]
        connected = set(sides)
        linked = state.by_remote(side)
        # Which linked assets this run may find gone: all of them, or in a scoped run only
        # the announced ids (absence of anything else means "not fetched", not "deleted").
        checked = linked
        if scope is not None:
            wanted = scope.get(side, set())
            checked = {rid: pair for rid, pair in linked.items() if rid in wanted}
        async with self.uow(readonly=True) as uow:
            doomed = {
                str(m.payload.get("remote_id")): m
                for m in await uow.outbox.pending_for(run.record.user_id, target=side.value)
                if m.operation == "asset.delete"
            }
        pending_by_hash = {
            Snapshot.of(asset).state_hash(): (asset, link) for asset, link in state.pending(side)
        }
        unlinked_by_hash: dict[str, Asset] = {}
        for asset in state.assets.values():
            if state.link(asset.id, side) is None:
                unlinked_by_hash.setdefault(Snapshot.of(asset).state_hash(), asset)

        total = len(remote)
        for done, (remote_id, item) in enumerate(remote.items(), start=1):
            if done % self.batch_size == 0 or done == total:
                self._progress(run.record.user_id, f"pull {side.value}", done, total)
            if remote_id in linked:
                asset, link = linked[remote_id]
                await self._pull_linked(run, state, writer, side, asset, link, item)
            elif own_id_unlinked(state, side, sides[side], remote_id):
                # Our own create (the side keeps our ids) whose record a crash lost. We do
                # not know the base, so treat any difference as a conflict: the merge keeps
                # the version that loses as a backup.
                asset = state.assets[remote_id]
                unknown = AssetLink(asset.id, side, remote_id)
                await self._pull_linked(run, state, writer, side, asset, unknown, item)
            elif remote_id in doomed:
                message = doomed[remote_id]
                if item.snapshot.state_hash() == message.payload.get("base_hash"):
                    continue  # deleted here; the outbox delivers the delete
                # Edited there after it was deleted here: an edit beats a delete.
                await writer.add(_settle(message))
                await self._import(run, state, writer, side, item)
            else:
                digest = item.snapshot.state_hash()
                adopted = pending_by_hash.pop(digest, None)
                candidate = adopted[0] if adopted else unlinked_by_hash.pop(digest, None)
                if candidate is not None:
                    link = _base_link(candidate.id, side, item)
                    state.links[(candidate.id, side)] = link
                    await writer.add(_save_link(run.record.user_id, link))
                else:
                    await self._import(run, state, writer, side, item)

        for remote_id, (asset, link) in checked.items():
            if remote_id in remote:
                continue
            if Snapshot.of(asset).state_hash() == link.base_hash:
                if scope is not None:
                    await _fetch_links_elsewhere(state, asset, side, everywhere, sides)
                if self._changed_elsewhere(state, asset, side, everywhere, connected):
                    del state.links[(asset.id, side)]  # keep it; re-create it there
                    await writer.add(_delete_link(asset.id, side))
                else:
                    await self._delete_local(run, state, writer, side, asset)
            else:  # edited here after it was deleted there: keep it, re-create there
                del state.links[(asset.id, side)]
                await writer.add(_delete_link(asset.id, side))
        await writer.flush()

    @staticmethod
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

    async def _pull_linked(
        self,
        run: _Run,
        state: LocalState,
        writer: BatchWriter,
        side: Side,
        asset: Asset,
        link: AssetLink,
        item: RemoteAsset,
    ) -> None:
        remote_hash = item.snapshot.state_hash()
        if remote_hash == link.base_hash:
            return  # nothing new there; the push phase handles local changes
        local = Snapshot.of(asset)
        local_hash = local.state_hash()
        new_link = _base_link(asset.id, side, item)
        state.links[(asset.id, side)] = new_link
        if local_hash in (link.base_hash, remote_hash):
            if local_hash == remote_hash:
                await writer.add(_save_link(asset.user_id, new_link))
                return
            _apply(asset, item.snapshot, self._remote_stamp(item))
            run.changed_locally.add(asset.id)
            await writer.add(_commit_asset(asset, new_link))
            await self.events.publish(
                asset.user_id,
                "asset_updated",
                {"asset": asset_payload(asset), "source": side.value},
            )
            return
        await self._resolve(run, writer, side, asset, new_link, link, item, local)

    def _remote_stamp(self, item: RemoteAsset) -> Timestamp:
        now = int(time.time() * 1000)
        if item.updated_at is None:
            return self.clock.tick(now)
        return self.clock.receive(Timestamp(_millis(item.updated_at), 0, "remote"), now)

    async def _resolve(
        self,
        run: _Run,
        writer: BatchWriter,
        side: Side,
        asset: Asset,
        new_link: AssetLink,
        link: AssetLink,
        item: RemoteAsset,
        local: Snapshot,
    ) -> None:
        base = Snapshot.from_json(link.base_snapshot) if link.base_snapshot else None
        local_stamp = (
            Timestamp.decode(asset.hlc)
            if asset.hlc
            else Timestamp(_millis(asset.updated_at), 0, "local")
        )
        remote_stamp = (
            Timestamp(_millis(item.updated_at), 0, "remote")
            if item.updated_at
            else Timestamp(0, 0, "remote")
        )
        result = merge(
            Versions(base, local, item.snapshot, local_stamp > remote_stamp, side.value),
            self.strategy,
        )
        conflict = AssetConflict(
            id=new_id(),
            user_id=asset.user_id,
            asset_id=asset.id,
            side=side.value,
            base=base.to_json() if base else None,
            ours=local.to_json(),
            theirs=item.snapshot.to_json(),
            strategy=self.strategy.value,
            status="resolved",
            resolution="merged" if result.clean else "auto",
            resolved_at=utcnow(),
        )
        backups = []
        if result.merged != local:  # a backup is written before any overwrite
            backups.append(("local_before_sync", local))
        if result.merged != item.snapshot:
            backups.append((f"{side.value}_before_sync", item.snapshot))

        async def record(uow: UnitOfWork) -> None:
            await uow.conflicts.add(conflict)
            for reason, snapshot in backups:
                await uow.conflicts.add_backup(
                    AssetBackup(
                        id=new_id(),
                        user_id=asset.user_id,
                        asset_id=asset.id,
                        reason=reason,
                        snapshot=snapshot.to_json(),
                        conflict_id=conflict.id,
                    )
                )

        await writer.add(record)
        run.record.conflicts_resolved += 1
        if result.merged != local:
            _apply(asset, result.merged, self.stamp())
            run.changed_locally.add(asset.id)
            await writer.add(_commit_asset(asset, new_link))
        else:
            await writer.add(_save_link(asset.user_id, new_link))
        await self.events.publish(
            asset.user_id,
            "conflict_detected",
            {
                "conflict_id": conflict.id,
                "asset_id": asset.id,
                "side": side.value,
                "resolution": conflict.resolution,
                "overruled": list(result.overruled),
            },
        )

    async def _import(
        self, run: _Run, state: LocalState, writer: BatchWriter, side: Side, item: RemoteAsset
    ) -> None:
        now = utcnow()
        asset = Asset(
            id=new_id(),
            user_id=run.record.user_id,
            name=item.snapshot.name,
            content=item.snapshot.content,
            description=item.snapshot.description,
            language=item.snapshot.language,
            tags=list(item.snapshot.tags),
            source=AssetSource(side.value),
            source_id=item.remote_id,
            created_at=now,
            updated_at=now,
            hlc=self._remote_stamp(item).encode(),
        )
        link = _base_link(asset.id, side, item)
        state.assets[asset.id] = asset
        state.links[(asset.id, side)] = link
        run.changed_locally.add(asset.id)

        await writer.add_import(asset, link)
        await self.events.publish(
            asset.user_id, "asset_created", {"asset": asset_payload(asset), "source": side.value}
        )

    async def _delete_local(
        self, run: _Run, state: LocalState, writer: BatchWriter, side: Side, asset: Asset
    ) -> None:
        other_links = [
            link
            for (asset_id, link_side), link in list(state.links.items())
            if asset_id == asset.id and link_side is not side and not link.pending
        ]
        for key in [key for key in state.links if key[0] == asset.id]:
            del state.links[key]
        del state.assets[asset.id]
        run.changed_locally.add(asset.id)

        async def delete(uow: UnitOfWork) -> None:
            for link in other_links:  # carry the delete to the other sides
                await uow.outbox.add(
                    OutboxMessage(
                        user_id=asset.user_id,
                        target=link.side.value,
                        operation="asset.delete",
                        aggregate_id=asset.id,
                        payload={
                            "asset_id": asset.id,
                            "remote_id": link.remote_id,
                            "base_hash": link.base_hash,
                        },
                        idempotency_key=f"{link.side.value}:asset.delete:{asset.id}",
                    )
                )
            await uow.assets.delete(asset.id)

        await writer.add(delete)
        await self.events.publish(
            asset.user_id,
            "asset_deleted",
            {"asset_id": asset.id, "asset": asset_payload(asset), "source": side.value},
        )

    # --- push ------------------------------------------------------------------------------

    async def _push(
        self,
        run: _Run,
        state: LocalState,
        client: SyncSide,
        remote: dict[str, RemoteAsset],
        *,
        scoped: bool,
    ) -> None:
        side = client.side
        user_id = run.record.user_id
        await self._deliver_deletes(run, client, remote)
        idempotent = getattr(client, "idempotent_create", False)
        # A pending link means an earlier create may have happened: only a full run, which
        # sees the whole remote library and can adopt that copy, may try again.
        creates = [
            asset
            for asset in state.assets.values()
            if (link := state.link(asset.id, side)) is None or (link.pending and not scoped)
        ]
        if creates and not idempotent:
            # Record the intent first: a crash after the remote create is then healed by
            # adoption (pull phase) instead of a second create.
            writer = BatchWriter(self.uow, self.batch_size)
            for asset in creates:
                if state.link(asset.id, side) is None:
                    intent = AssetLink(asset.id, side, AssetLink.PENDING_PREFIX + asset.id)
                    state.links[(asset.id, side)] = intent
                    await writer.add(_save_link(user_id, intent))
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
            writer = BatchWriter(self.uow, len(batch) * 2)
            for asset, created in zip(batch, written, strict=True):
                await self._after_write(run, state, writer, side, asset, created)
            await writer.flush()
            done += len(batch)
            if done % self.batch_size < chunk or done == len(creates):
                self._progress(user_id, f"push {side.value}", done, len(creates))
        writer = BatchWriter(self.uow, self.batch_size)
        for asset in list(state.assets.values()):
            link = state.link(asset.id, side)
            if link is None or link.pending or Snapshot.of(asset).state_hash() == link.base_hash:
                continue
            # The side has no conditional update: re-read right before writing, and leave
            # an asset that changed there since the listing to the next run's merge.
            current = await client.get_asset(link.remote_id)
            if current is None or current.snapshot.state_hash() != link.base_hash:
                continue
            updated = await client.update_asset(link.remote_id, Snapshot.of(asset))
            await self._after_write(run, state, writer, side, asset, updated)
        await writer.flush()

    async def _after_write(
        self,
        run: _Run,
        state: LocalState,
        writer: BatchWriter,
        side: Side,
        asset: Asset,
        written: RemoteAsset,
    ) -> None:
        run.pushed[side] += 1
        link = _base_link(asset.id, side, written)
        state.links[(asset.id, side)] = link
        if written.snapshot != Snapshot.of(asset):
            # The side normalised something (e.g. an unknown language): agree with it, or
            # the next run would push the same difference again forever.
            _apply(asset, written.snapshot, self.stamp())
            await writer.add(_commit_asset(asset, link))
        else:
            await writer.add(_save_link(asset.user_id, link))

    async def _deliver_other(self, run: _Run, side: Side) -> None:
        async with self.uow(readonly=True) as uow:
            messages = await uow.outbox.pending_for(run.record.user_id, target=side.value)
        for message in messages:
            deliver = self.deliverers.get(message.operation)
            if deliver is None or message.id is None:
                continue
            await deliver(message)
            async with self.uow() as uow:
                await uow.outbox.settle(message.id, at=utcnow())
                await uow.commit()

    async def _deliver_deletes(
        self, run: _Run, client: SyncSide, remote: dict[str, RemoteAsset]
    ) -> None:
        async with self.uow(readonly=True) as uow:
            messages = [
                m
                for m in await uow.outbox.pending_for(run.record.user_id, target=client.side.value)
                if m.operation == "asset.delete"
            ]
        for message in messages:
            remote_id = message.payload.get("remote_id")
            if remote_id and not str(remote_id).startswith(AssetLink.PENDING_PREFIX):
                there = await client.get_asset(str(remote_id))
                base = message.payload.get("base_hash")
                if there is not None and base and there.snapshot.state_hash() != base:
                    # Edited there since we deleted it here: an edit beats a delete. Leave
                    # it; the next full run imports it back as an asset of its own.
                    log.info("delete_skipped_remote_edited", remote_id=remote_id)
                elif there is not None:
                    await client.delete_asset(str(remote_id))
                    run.pushed[client.side] += 1
                remote.pop(str(remote_id), None)
            async with self.uow() as uow:
                assert message.id is not None
                await uow.outbox.settle(message.id, at=utcnow())
                await uow.commit()


Scope = dict[Side, set[str]]  # remote ids per side that a run looks at (None: everything)
INTERRUPTED = "interrupted"  # a run that gave way before writing anything; never stored
CREATE_CONCURRENCY = 8


def own_id_unlinked(state: LocalState, side: Side, client: SyncSide, remote_id: str) -> bool:
    return (
        bool(getattr(client, "idempotent_create", False))
        and remote_id in state.assets
        and state.link(remote_id, side) is None
    )


async def _fetch(client: SyncSide, ids: set[str] | None) -> dict[str, RemoteAsset]:
    if ids is None:
        return {item.remote_id: item for item in await client.list_assets()}
    found: dict[str, RemoteAsset] = {}
    for remote_id in sorted(ids):
        item = await client.get_asset(remote_id)
        if item is not None:
            found[remote_id] = item
    return found


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


def _side_error(side: Side, step: str, exc: Exception) -> SyncError:
    log.warning("sync_side_failed", side=side.value, step=step, error=repr(exc))
    return SyncError(
        code=f"{side.value}_unavailable",
        message=f"{step} on {side.value} failed: {type(exc).__name__}: {exc}"[:500],
        item_type=side.value,
        severity="error",
    )


def _save_link(user_id: str, link: AssetLink) -> Callable[[UnitOfWork], Awaitable[None]]:
    async def save(uow: UnitOfWork) -> None:
        await uow.assets.save_link(user_id, link)

    return save


def _settle(message: OutboxMessage) -> Callable[[UnitOfWork], Awaitable[None]]:
    async def settle(uow: UnitOfWork) -> None:
        assert message.id is not None
        await uow.outbox.settle(message.id, at=utcnow())

    return settle


def _delete_link(asset_id: str, side: Side) -> Callable[[UnitOfWork], Awaitable[None]]:
    async def delete(uow: UnitOfWork) -> None:
        await uow.assets.delete_link(asset_id, side)

    return delete


def _commit_asset(asset: Asset, link: AssetLink) -> Callable[[UnitOfWork], Awaitable[None]]:
    """Write a synced change and its new base together, unless the asset moved meanwhile.

    If someone edited the asset since this run read it, neither is written: the next run
    sees both sides changed and merges, instead of this run overwriting the edit.
    """
    frozen = replace(asset, tags=list(asset.tags), metadata=dict(asset.metadata))
    expected = frozen.version - 1

    async def commit(uow: UnitOfWork) -> None:
        current = await uow.assets.get(frozen.id)
        if current is None or current.version != expected:
            log.info("sync_skipped_concurrent_edit", asset_id=frozen.id)
            return
        await uow.assets.update(frozen, expected_version=expected)
        await uow.assets.save_link(frozen.user_id, link)

    return commit


def sync_completed(run: SyncRun) -> dict[str, object]:
    """The `sync_completed` event payload (spec 6.2) with the SyncResult fields (6.3)."""
    return {
        "user_id": run.user_id,
        "sync_id": run.id,
        "status": run.status,
        "changes_count": run.pieces_to_aiwfe + run.aiwfe_to_pieces + run.conflicts_resolved,
        "changes": {
            "pieces_to_aiwfe": run.pieces_to_aiwfe,
            "aiwfe_to_pieces": run.aiwfe_to_pieces,
            "conflicts_resolved": run.conflicts_resolved,
        },
        "errors": run.errors,
        "started_at": run.started_at,
        "completed_at": run.completed_at,
    }
