"""The scheduler's timing: a poke starts a run after the debounce, not on the next tick.

Time is a `VirtualClock` given to the scheduler and the fake engines: nothing waits on the
wall clock, and start times are exact.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from pieces_integration.domain.model import Side, SyncRun
from pieces_integration.service_layer.sync_scheduler import SyncScheduler
from tests.fakes import VirtualClock

pytestmark = pytest.mark.anyio


class FakeEngine:
    """Records each run (its trigger, scope and start time); a run lasts `duration` seconds."""

    def __init__(self, clock: VirtualClock, duration: float = 0.0) -> None:
        self.clock = clock
        self.duration = duration
        self.runs: list[tuple[str, Any, float]] = []

    async def sync_user(self, user_id: str, **options: Any) -> SyncRun:
        self.runs.append((options.get("trigger", ""), options.get("scope"), self.clock()))
        await self.clock.sleep(self.duration)
        return SyncRun(id=str(len(self.runs)), user_id=user_id, trigger="event")


class InterruptibleEngine(FakeEngine):
    """A full run lists for `duration` seconds unless its interrupt is set first."""

    async def sync_user(self, user_id: str, **options: Any) -> SyncRun:
        interrupt: asyncio.Event | None = options.get("interrupt")
        trigger, scope = options.get("trigger", ""), options.get("scope")
        self.runs.append((trigger, scope, self.clock()))
        if scope is None:
            if await self._interrupted(interrupt or asyncio.Event()):
                return SyncRun(id="x", user_id=user_id, trigger=trigger, status="interrupted")
        else:
            await self.clock.sleep(0.01)
        return SyncRun(id=str(len(self.runs)), user_id=user_id, trigger=trigger)

    async def _interrupted(self, interrupt: asyncio.Event) -> bool:
        waiter = asyncio.ensure_future(interrupt.wait())
        listing = asyncio.ensure_future(self.clock.sleep(self.duration))
        await asyncio.wait([waiter, listing], return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, listing):
            task.cancel()
        await asyncio.gather(waiter, listing, return_exceptions=True)
        return interrupt.is_set()


def no_outbox() -> Any:
    @asynccontextmanager
    async def uow(readonly: bool = False) -> Any:
        async def due_users(now: object) -> list[str]:
            return []

        yield SimpleNamespace(outbox=SimpleNamespace(due_users=due_users))

    return uow


def scheduler(engine: FakeEngine, *, users: tuple[str, ...] = (), **options: Any) -> SyncScheduler:
    """By default a tick far longer than the test: a run that starts at once was woken."""

    async def listed() -> list[str]:
        return list(users)

    settings: dict[str, Any] = {"tick": 30.0, "debounce": 0.05, **options}
    return SyncScheduler(
        engine=engine,  # type: ignore[arg-type]
        uow=no_outbox(),
        users=listed,
        clock=engine.clock,
        sleep=engine.clock.sleep,
        **settings,
    )


async def test_a_poke_starts_a_scoped_run_after_the_debounce_not_the_tick() -> None:
    clock = VirtualClock()
    engine = FakeEngine(clock)
    async with scheduler(engine) as running:
        await clock.advance(1.0)  # the loop is asleep on its 30 s tick
        poked_at = clock()
        running.poke("alice", side=Side.PIECES, remote_ids={"p1"})
        running.poke("alice", side=Side.PIECES, remote_ids={"p2"})  # coalesced
        await clock.run_until(lambda: bool(engine.runs), step=0.01, limit=5)
    ((trigger, scope, started_at),) = engine.runs
    assert trigger == "event" and scope == {Side.PIECES: {"p1", "p2"}}
    assert started_at - poked_at == pytest.approx(0.05)  # the debounce, to the tick


async def test_a_poke_during_a_run_starts_another_as_soon_as_it_ends() -> None:
    clock = VirtualClock()
    engine = FakeEngine(clock, duration=0.3)
    async with scheduler(engine) as running:
        running.poke("alice")
        await clock.run_until(lambda: len(engine.runs) == 1, step=0.01, limit=5)
        running.poke("alice", side=Side.PIECES, remote_ids={"p9"})  # while it runs
        await clock.run_until(lambda: len(engine.runs) == 2, step=0.01, limit=5)
    (_, _, first), (_, scope, second) = engine.runs
    assert scope == {Side.PIECES: {"p9"}}
    assert second - first == pytest.approx(0.3)  # when the first ended, not on the 30 s tick


async def test_a_costly_full_reconciliation_recurs_less_often() -> None:
    """A full run of 0.1 s with a 10% share recurs 1 s after it ended, not after the 0.2 s
    interval, so announced changes rarely wait behind one."""
    clock = VirtualClock()
    engine = FakeEngine(clock, duration=0.1)
    running = scheduler(
        engine, users=("alice",), interval=0.2, jitter=0.0, tick=0.02, full_run_share=0.1
    )
    async with running:
        await clock.advance(1.6)
    starts = [at for trigger, _, at in engine.runs if trigger == "schedule"]
    assert len(starts) == 2, starts  # 0..0.2 s, then >= 1 s after the first ended
    assert 1.1 - 1e-9 <= starts[1] - starts[0] < 1.1 + 0.03  # within a tick of it


async def test_a_periodic_full_run_gives_way_to_a_poke_and_comes_back() -> None:
    clock = VirtualClock()
    engine = InterruptibleEngine(clock, duration=0.5)
    running = scheduler(
        engine,
        users=("alice",),
        interval=0.05,
        jitter=0.0,
        tick=0.02,
        debounce=0.01,
        full_run_share=0.0,
        retry_after_giving_way=0.1,
        max_give_way=2,
    )
    async with running:
        await clock.run_until(lambda: bool(engine.runs), step=0.01, limit=5)  # full run lists
        for _ in range(3):  # poke each full run while it lists
            poked_at = clock()
            running.poke("alice", side=Side.PIECES, remote_ids={"p"})
            await clock.run_until(
                lambda since=poked_at: any(
                    t == "event" and at >= since for t, _, at in engine.runs
                ),
                step=0.01,
                limit=5,
            )
            await clock.run_until(lambda: engine.runs[-1][0] == "schedule", step=0.01, limit=5)
        await clock.advance(0.7)
    kinds = [trigger for trigger, _, _ in engine.runs]
    # Twice the full run gave way (max_give_way=2), each time the scoped run went first;
    # the third full run was not interruptible, so its poke waited for it to finish.
    assert kinds[:6] == ["schedule", "event", "schedule", "event", "schedule", "event"]
    third_full, after = engine.runs[4][2], engine.runs[5][2]
    assert after - third_full == pytest.approx(0.5)
    assert engine.runs[1][2] - engine.runs[0][2] == pytest.approx(0.01)  # just the debounce


async def test_a_request_gets_its_own_run_not_the_schedulers() -> None:
    """A person's request never rides on the scheduler's task, which may give way or skip
    a user another replica holds; the engine joins the two when they overlap here."""
    clock = VirtualClock()
    engine = InterruptibleEngine(clock, duration=0.3)
    calls: list[dict[str, Any]] = []
    recorded = engine.sync_user

    async def sync_user(user_id: str, **options: Any) -> SyncRun:
        calls.append(options)
        return await recorded(user_id, **options)

    engine.sync_user = sync_user  # type: ignore[method-assign]
    async with scheduler(engine) as running:
        scheduled = running.start("alice", trigger="schedule", interruptible=True)
        requested = running.start("alice", trigger="api", join=True)
        assert requested is not scheduled
        assert running.start("alice", trigger="api", join=True) is requested
        await clock.run_until(lambda: scheduled.done() and requested.done(), step=0.05, limit=5)
    by_trigger = {c["trigger"]: c for c in calls}
    assert by_trigger["api"]["join"] is True and by_trigger["api"]["interrupt"] is None
    assert by_trigger["schedule"]["interrupt"] is not None
