"""Runs syncs on time and on demand (spec 4.3, DEVIATIONS 8).

- Every user with something to sync is reconciled on their own schedule: every
  `interval` seconds with jitter, so users (and replicas) never run in lock-step.
- `poke(user)` asks for a run soon (a Pieces stream event, an outbox message, a webhook);
  pokes within `debounce` seconds are coalesced into one run.
- `request(user)` runs now (or joins the running one) and is what the API and the
  WebSocket `sync_request` call.
- Users with due outbox messages are poked, and a run that fails for a side backs off.

All work runs in one task group owned by this object (`async with scheduler:`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

import structlog

from pieces_integration.domain.backoff import jittered
from pieces_integration.domain.model import Side, SyncRun, utcnow
from pieces_integration.ports.clock import Clock, Sleep
from pieces_integration.ports.infrastructure import LockUnavailable
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.sync.engine import INTERRUPTED, Scope, SyncEngine

log = structlog.get_logger(__name__)

UserLister = Callable[[], Awaitable[list[str]]]
# Users who chose their own sync frequency (their preferences), in seconds.
IntervalLister = Callable[[], Awaitable[dict[str, int]]]


async def _woken_or_slept(wake: asyncio.Event, nap: Awaitable[None]) -> None:
    """Until `wake` is set or `nap` (the injected sleep) ends, whichever is first."""
    waiting = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(nap)]
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)


@dataclass
class SyncScheduler:
    engine: SyncEngine
    uow: UnitOfWorkFactory
    users: UserLister  # who is reconciled periodically (connected users)
    interval: float = 30.0  # the default; a user's preferences may choose another
    intervals: IntervalLister | None = None
    jitter: float = 0.2  # fraction of the interval
    debounce: float = 0.1
    tick: float = 0.5
    concurrency: int = 4
    # The periodic full reconciliation lists every side, so its cost grows with the library
    # while a user's runs are serialised: changes announced meanwhile wait for it. Keep it
    # to this share of the user's time (a 5 s full run recurs every 50 s, not every 30 s).
    full_run_share: float = 0.1
    # A periodic full run still listing the sides gives way to a poke (it has written
    # nothing yet) and starts again this many seconds later; after `max_give_way` in a row
    # it runs to the end regardless, so a busy user is still reconciled.
    retry_after_giving_way: float = 2.0
    max_give_way: int = 3
    rng: random.Random = field(default_factory=random.Random)
    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep  # the loop's naps (a wake-up cuts one short)
    _due: dict[str, float] = field(default_factory=dict)
    _custom: dict[str, float] = field(default_factory=dict)  # user -> chosen interval
    _poked: dict[str, float] = field(default_factory=dict)
    _scopes: dict[str, Scope | None] = field(default_factory=dict)  # None: a full run
    _inflight: dict[str, asyncio.Task[SyncRun | None]] = field(default_factory=dict)
    # Runs a person asked for (API): their own tasks, since the scheduler's may give way or
    # skip a user another replica holds; the engine joins them to a run already going here.
    _requested: dict[str, asyncio.Task[SyncRun | None]] = field(default_factory=dict)
    _full_cost: dict[str, float] = field(default_factory=dict)  # last full run's seconds
    _give_way: dict[str, asyncio.Event] = field(default_factory=dict)  # set by a poke
    _gave_way: dict[str, int] = field(default_factory=dict)  # in a row, per user
    _group: asyncio.TaskGroup | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    # Set by a poke, a finished run and stop: the loop wakes at once instead of on its tick,
    # so an announced change waits only for the debounce.
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _slots: asyncio.Semaphore | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> Self:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._slots = asyncio.Semaphore(self.concurrency)
        self._group.create_task(self._loop(), name="sync-scheduler")
        self.started.set()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._stop.set()
        self._wake.set()
        for task in [*self._inflight.values(), *self._requested.values()]:
            task.cancel()
        # bandit B101: narrows a type for mypy; holds by construction, no input reaches it.
        assert self._group is not None  # nosec B101
        await self._group.__aexit__(None, None, None)
        self._group = None

    def interval_for(self, user_id: str) -> float:
        """The user's sync period: their preference, else the service's interval."""
        return self._custom.get(user_id, self.interval)

    def set_interval(self, user_id: str, seconds: float | None) -> None:
        """A user changed their sync frequency: it takes effect from the next run on,
        which is rescheduled now (not after the old period ran out)."""
        if seconds is None:
            self._custom.pop(user_id, None)
        else:
            self._custom[user_id] = float(seconds)
        if user_id in self._due:
            self._due[user_id] = self._next_due(user_id)
            self._wake.set()

    def running(self, user_id: str) -> bool:
        """A run of the user is going on in this process."""
        return self._busy(user_id)

    def next_run_in(self, user_id: str) -> float | None:
        """Seconds until the user's next scheduled run; None when they have no schedule."""
        due = self._due.get(user_id)
        return None if due is None else max(0.0, due - self.clock())

    def _next_due(self, user_id: str | None = None) -> float:
        period = self.interval if user_id is None else self.interval_for(user_id)
        if user_id is not None and self.full_run_share > 0:
            period = max(period, self._full_cost.get(user_id, 0.0) / self.full_run_share)
        return self.clock() + jittered(period, self.rng, self.jitter)

    def poke(
        self,
        user_id: str,
        *,
        side: Side | None = None,
        remote_ids: set[str] | None = None,
        full: bool = False,
    ) -> None:
        """Ask for a run of `user_id` soon; repeated pokes coalesce.

        A plain poke (local changes to push) and a poke naming remote ids (a change stream)
        make a scoped run; `full=True` (or any poke merged with one) reconciles everything.
        """
        self._poked.setdefault(user_id, self.clock() + self.debounce)
        self._wake.set()
        if (give_way := self._give_way.get(user_id)) is not None:
            give_way.set()
        if full:
            self._scopes[user_id] = None
            return
        scope = self._scopes.setdefault(user_id, {})
        if scope is not None and side is not None and remote_ids:
            scope.setdefault(side, set()).update(remote_ids)

    async def request(self, user_id: str, *, trigger: str = "manual") -> SyncRun:
        """Run now, or join the run in progress (here or on another replica)."""
        self._poked.pop(user_id, None)
        self._scopes.pop(user_id, None)  # this full run covers what was asked
        run = await self.engine.sync_user(user_id, trigger=trigger)
        if user_id in self._due:
            self._due[user_id] = self._next_due(user_id)
        return run

    def start(
        self,
        user_id: str,
        *,
        trigger: str = "manual",
        scope: Scope | None = None,
        join: bool = False,
        interruptible: bool = False,
    ) -> asyncio.Task[SyncRun | None]:
        """Start (or return the already running) run as a task owned by the scheduler.

        `join=True` (a person asked) waits for a run another replica holds and returns its
        result; the scheduler's own runs skip such a user instead.
        """
        owned = self._requested if join else self._inflight
        task = owned.get(user_id)
        if task is None or task.done():
            if self._group is None:
                raise RuntimeError("SyncScheduler.start() needs `async with scheduler:` first")
            task = self._group.create_task(
                self._guarded(user_id, trigger, scope, join, interruptible)
            )
            owned[user_id] = task
        return task

    async def _guarded(
        self,
        user_id: str,
        trigger: str,
        scope: Scope | None,
        join: bool,
        interruptible: bool = False,
    ) -> SyncRun | None:
        # bandit B101: narrows a type for mypy; holds by construction, no input reaches it.
        assert self._slots is not None  # nosec B101
        interrupt = asyncio.Event() if interruptible and scope is None else None
        if interrupt is not None:
            self._give_way[user_id] = interrupt
        async with self._slots:
            started = self.clock()
            try:
                run = await self.engine.sync_user(
                    user_id, trigger=trigger, join=join, scope=scope, interrupt=interrupt
                )
                if run.status == INTERRUPTED:
                    self._gave_way[user_id] = self._gave_way.get(user_id, 0) + 1
                    if user_id in self._due:
                        self._due[user_id] = self.clock() + self.retry_after_giving_way
                    return run
                if scope is None:
                    self._gave_way.pop(user_id, None)
                    self._full_cost[user_id] = self.clock() - started
                    if user_id in self._due:
                        self._due[user_id] = self._next_due(user_id)
                return run
            except LockUnavailable:
                return None  # another replica is on it
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failing user never stops the others
                log.warning("scheduled_sync_failed", user_id=user_id, error=repr(exc))
                self._due[user_id] = self._next_due(user_id)
                return None
            finally:
                owned = self._requested if join else self._inflight
                if owned.get(user_id) is asyncio.current_task():
                    del owned[user_id]
                if self._give_way.get(user_id) is interrupt:
                    self._give_way.pop(user_id, None)
                self._wake.set()  # a poke that arrived meanwhile can start now

    async def _loop(self) -> None:
        refresh_at = 0.0
        while not self._stop.is_set():
            now = self.clock()
            if now >= refresh_at:
                await self._refresh()
                refresh_at = now + min(self.interval, 10.0)
            for user_id, due in list(self._poked.items()):
                if due <= now and not self._busy(user_id):
                    del self._poked[user_id]
                    scope = self._scopes.pop(user_id, None)
                    self.start(user_id, trigger="event", scope=scope)
            for user_id, due in list(self._due.items()):
                if due <= now and not self._busy(user_id):
                    self._due[user_id] = self._next_due(user_id)
                    interruptible = self._gave_way.get(user_id, 0) < self.max_give_way
                    self.start(user_id, trigger="schedule", interruptible=interruptible)
            await self._sleep()

    def _busy(self, user_id: str) -> bool:
        """A run of the user is going on here (a poke then waits for it to end)."""
        return user_id in self._inflight or user_id in self._requested  # both drop ended runs

    async def _sleep(self) -> None:
        """Until the next tick, the next poke's debounce ends, or something wakes us."""
        timeout = self.tick
        now = self.clock()
        for user_id, due in self._poked.items():
            if not self._busy(user_id):  # those wait for their run to finish
                timeout = min(timeout, max(0.0, due - now))
        self._wake.clear()
        if timeout <= 0 or self._stop.is_set():
            return
        await _woken_or_slept(self._wake, self.sleep(timeout))

    async def _refresh(self) -> None:
        try:
            users = set(await self.users())
            async with self.uow(readonly=True) as uow:
                outbox_users = set(await uow.outbox.due_users(utcnow()))
            custom = await self.intervals() if self.intervals is not None else None
        except Exception as exc:  # the store being down must not kill the loop
            log.warning("scheduler_refresh_failed", error=repr(exc))
            return
        if custom is not None:
            for user_id in set(self._custom) | set(custom):
                # Changed on another replica: reschedule as `set_interval` does here.
                if self._custom.get(user_id) != custom.get(user_id):
                    self.set_interval(user_id, custom.get(user_id))
        for user_id in users:
            # First sight: spread the first runs over one interval.
            self._due.setdefault(
                user_id, self.clock() + self.rng.uniform(0, self.interval_for(user_id))
            )
        for user_id in list(self._due):
            if user_id not in users:
                del self._due[user_id]
        for user_id in outbox_users:
            self.poke(user_id)
