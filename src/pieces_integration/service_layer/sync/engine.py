"""The sync engine (spec 3.2, 4.3, 7.2): keeps a user's assets the same on Pieces OS, AIWFE
and here, without losing or duplicating anything.

The service's store is the hub. For every asset and side it keeps a link: the id there and
the synced state both agreed on (the base, DEVIATIONS 9). A run has two phases per side:
pull (`pull.py`: bring what changed there here) and push (`push.py`: write there what
differs from its base, deliver queued deletes).

Every decision comes from stored state, so a run interrupted anywhere (even by kill -9) is
completed by the next one. One run per user at a time, across replicas (the `sync:<user>`
lock); a second request while one runs joins it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from pieces_integration.domain.errors import NotFound
from pieces_integration.domain.events import EventType
from pieces_integration.domain.hlc import HybridLogicalClock, Timestamp
from pieces_integration.domain.merge import Strategy
from pieces_integration.domain.model import (
    Asset,
    OutboxMessage,
    Side,
    SyncError,
    SyncRun,
    new_id,
    utcnow,
)
from pieces_integration.domain.sync_status import SyncStatus
from pieces_integration.observability.metrics import Metrics
from pieces_integration.ports.infrastructure import Locks, LockUnavailable
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.ports.sync_sides import RemoteAsset, SyncSide, SyncSides
from pieces_integration.service_layer.events import EventPublisher
from pieces_integration.service_layer.sync.outbox import deliver_other, settle_outbox
from pieces_integration.service_layer.sync.pull import Pull
from pieces_integration.service_layer.sync.push import push_side
from pieces_integration.service_layer.sync.result import sync_completed
from pieces_integration.service_layer.sync.run import RunBook, RunContext, Scope
from pieces_integration.service_layer.sync.state import load_scoped_state, load_state
from pieces_integration.service_layer.team_events import TeamEvents

__all__ = ["INTERRUPTED", "JOIN_WAIT", "LOCK_TTL", "Scope", "SyncEngine", "directions"]

log = structlog.get_logger(__name__)
# The `sync:<user>` lease (Redis): renewed every third of it while the run goes on, so it
# only bounds how long a replica that died holding it blocks that user's sync.
LOCK_TTL = 30.0
JOIN_WAIT = 600.0  # how long a request waits for a run held on another replica
INTERRUPTED = SyncStatus.INTERRUPTED  # a run that gave way before writing anything

# The metric direction of a push toward each side (spec 9.1 `recordSyncOperation`).
_DIRECTION_TOWARD = {Side.PIECES: "aiwfe_to_pieces", Side.AIWFE: "pieces_to_aiwfe"}


def directions(book: RunBook) -> dict[str, str]:
    """The directions a run synced in, each with its metric status.

    A direction is a push toward one connected side: it succeeded when that side was
    listed and written; it failed when the side could not be listed or the push broke.
    A run with no side to sync with (consent off, nothing connected) synced in none.
    """
    return {
        _DIRECTION_TOWARD[side]: "success" if side in book.pushed_ok else "failure"
        for side in sorted(book.connected)
    }


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
    # Members of the teams a synced asset is shared with hear of its change (issue 16).
    team_events: TeamEvents | None = None
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

    def _context(self, book: RunBook) -> RunContext:
        user_id = book.user_id

        def progress(phase: str, done: int, total: int) -> None:
            self._progress(user_id, phase, done, total)

        return RunContext(
            self.uow,
            self.events,
            self.clock,
            self.strategy,
            self.batch_size,
            book,
            progress,
            self.team_events,
        )

    async def _run(
        self,
        user_id: str,
        trigger: str,
        scope: Scope | None,
        interrupt: asyncio.Event | None = None,
    ) -> SyncRun:
        started = time.perf_counter()
        record = SyncRun(new_id(), user_id, trigger=trigger, status=SyncStatus.IN_PROGRESS)
        run = RunBook(record)
        errors = record.errors
        async with self.uow(readonly=True) as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise NotFound("user", user_id)
        sides = await self.sides(user_id) if user.consent.asset_sync else {}
        run.connected = set(sides)
        remote: dict[Side, dict[str, RemoteAsset]] | None = {}
        if sides:
            remote = await self._fetch_sides(user_id, sides, scope, errors, interrupt)
            if remote is None:  # gave way before writing anything: nothing to record
                record.status = INTERRUPTED
                return record
        async with self.uow() as uow:
            await uow.sync_runs.add(record)
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
        # bandit B101: narrows a type for mypy; holds by construction, no input reaches it.
        assert remote is not None  # nosec B101
        if scope is None:
            state = await load_state(self.uow, user_id)
        else:  # a scoped run reads only what it can touch: fast in a large library
            state = await load_scoped_state(self.uow, user_id, remote, scope)
        ctx = self._context(run)
        pull = Pull(ctx, state)
        for side in remote:
            await pull.side(side, remote, sides, scope)
        if self.after_pull is not None and Side.PIECES in remote:
            from_pieces = [
                state.assets[asset_id]
                for asset_id in run.changed_locally
                if asset_id in state.assets and asset_id not in run.moved
            ]
            if from_pieces:
                await self.after_pull(from_pieces)
        for side in remote:
            try:
                await push_side(ctx, state, sides[side], remote[side], scoped=scope is not None)
                await deliver_other(self.uow, run, side, self.deliverers)
                run.pushed_ok.add(side)
            except Exception as exc:
                errors.append(_side_error(side, "push", exc))
        record.status = SyncStatus.FAILED if len(remote) == 0 else SyncStatus.COMPLETED
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

    async def _finish(self, run: RunBook, started: float) -> SyncRun:
        record = run.record
        record.aiwfe_to_pieces = run.pushed[Side.PIECES]
        record.pieces_to_aiwfe = run.pushed[Side.AIWFE]
        if record.status == SyncStatus.IN_PROGRESS:
            record.status = SyncStatus.COMPLETED
        record.completed_at = utcnow()
        async with self.uow() as uow:
            await uow.sync_runs.update(record)
            await settle_outbox(uow, record.user_id, run.pushed_ok, run.seen_messages)
            await uow.commit()
        if self.metrics is not None:
            elapsed = time.perf_counter() - started
            for direction, status in directions(run).items():
                self.metrics.sync_operations.labels(direction, status).inc()
                self.metrics.sync_duration.labels(direction).observe(elapsed)
        await self.events.publish(record.user_id, EventType.SYNC_COMPLETED, sync_completed(record))
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


async def _fetch(client: SyncSide, ids: set[str] | None) -> dict[str, RemoteAsset]:
    if ids is None:
        return {item.remote_id: item for item in await client.list_assets()}
    found: dict[str, RemoteAsset] = {}
    for remote_id in sorted(ids):
        item = await client.get_asset(remote_id)
        if item is not None:
            found[remote_id] = item
    return found


def _side_error(side: Side, step: str, exc: Exception) -> SyncError:
    log.warning("sync_side_failed", side=side.value, step=step, error=repr(exc))
    return SyncError(
        code=f"{side.value}_unavailable",
        message=f"{step} on {side.value} failed: {type(exc).__name__}: {exc}"[:500],
        item_type=side.value,
        severity="error",
    )
