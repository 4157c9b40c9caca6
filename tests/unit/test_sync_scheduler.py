"""The scheduler's timing: a poke starts a run after the debounce, not on the next tick."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from pieces_integration.domain.model import Side, SyncRun
from pieces_integration.service_layer.sync_scheduler import SyncScheduler

pytestmark = pytest.mark.anyio


class FakeEngine:
    """Records each run (its scope and start time); a run lasts `duration` seconds."""

    def __init__(self, duration: float = 0.0) -> None:
        self.duration = duration
        self.runs: list[tuple[str, Any, float]] = []
        self.started = asyncio.Event()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (at most 5 s) until `condition` holds after some run started."""
        async with asyncio.timeout(5):
            while not condition():
                self.started.clear()
                await self.started.wait()

    async def sync_user(self, user_id: str, **options: Any) -> SyncRun:
        self.runs.append((options.get("trigger", ""), options.get("scope"), time.monotonic()))
        self.started.set()
        await asyncio.sleep(self.duration)
        return SyncRun(id=str(len(self.runs)), user_id=user_id, trigger="event")


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
    return SyncScheduler(engine=engine, uow=no_outbox(), users=listed, **settings)  # type: ignore[arg-type]


async def test_a_poke_starts_a_scoped_run_after_the_debounce_not_the_tick() -> None:
    engine = FakeEngine()
    async with scheduler(engine) as running:
        await asyncio.sleep(0.05)  # the loop is asleep on its 30 s tick
        poked_at = time.monotonic()
        running.poke("alice", side=Side.PIECES, remote_ids={"p1"})
        running.poke("alice", side=Side.PIECES, remote_ids={"p2"})  # coalesced
        await asyncio.wait_for(engine.started.wait(), 5)
    ((trigger, scope, started_at),) = engine.runs
    assert trigger == "event" and scope == {Side.PIECES: {"p1", "p2"}}
    assert 0.04 <= started_at - poked_at < 2.0


async def test_a_poke_during_a_run_starts_another_as_soon_as_it_ends() -> None:
    engine = FakeEngine(duration=0.3)
    async with scheduler(engine) as running:
        running.poke("alice")
        await asyncio.wait_for(engine.started.wait(), 5)
        running.poke("alice", side=Side.PIECES, remote_ids={"p9"})  # while it runs
        engine.started.clear()
        await asyncio.wait_for(engine.started.wait(), 5)
    assert len(engine.runs) == 2
    (_, _, first), (_, scope, second) = engine.runs
    assert scope == {Side.PIECES: {"p9"}}
    assert 0.3 <= second - first < 2.0  # after the first ended, not on the 30 s tick


async def test_a_costly_full_reconciliation_recurs_less_often() -> None:
    """A full run of 0.1 s with a 10% share recurs after >= 1 s, not after the 0.2 s
    interval, so announced changes rarely wait behind one."""
    engine = FakeEngine(duration=0.1)

    running = scheduler(
        engine, users=("alice",), interval=0.2, jitter=0.0, tick=0.02, full_run_share=0.1
    )
    async with running:
        await asyncio.sleep(1.6)
    starts = [at for trigger, _, at in engine.runs if trigger == "schedule"]
    assert len(starts) == 2, starts  # 0..0.2 s, then >= 1 s after the first ended
    assert starts[1] - starts[0] >= 1.0


class InterruptibleEngine(FakeEngine):
    """A full run lists for `duration` seconds unless its interrupt is set first."""

    async def sync_user(self, user_id: str, **options: Any) -> SyncRun:
        interrupt: asyncio.Event | None = options.get("interrupt")
        trigger, scope = options.get("trigger", ""), options.get("scope")
        self.runs.append((trigger, scope, time.monotonic()))
        self.started.set()
        if scope is None:
            try:
                await asyncio.wait_for((interrupt or asyncio.Event()).wait(), self.duration)
                return SyncRun(id="x", user_id=user_id, trigger=trigger, status="interrupted")
            except TimeoutError:
                pass
        else:
            await asyncio.sleep(0.01)
        return SyncRun(id=str(len(self.runs)), user_id=user_id, trigger=trigger)


async def test_a_periodic_full_run_gives_way_to_a_poke_and_comes_back() -> None:
    engine = InterruptibleEngine(duration=0.5)

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
        await asyncio.wait_for(engine.started.wait(), 5)  # the first full run is listing
        for _ in range(3):  # poke each full run while it lists
            poked_at = time.monotonic()
            running.poke("alice", side=Side.PIECES, remote_ids={"p"})
            await engine.until(
                lambda since=poked_at: any(t == "event" and at >= since for t, _, at in engine.runs)
            )
            await engine.until(lambda: engine.runs[-1][0] == "schedule")
        await asyncio.sleep(0.7)
    kinds = [trigger for trigger, _, _ in engine.runs]
    # Twice the full run gave way (max_give_way=2), each time the scoped run went first;
    # the third full run was not interruptible, so its poke waited for it to finish.
    assert kinds[:6] == ["schedule", "event", "schedule", "event", "schedule", "event"]
    third_full, after = engine.runs[4][2], engine.runs[5][2]
    assert after - third_full >= 0.45
    first_event = engine.runs[1][2] - engine.runs[0][2]
    assert first_event < 0.4  # did not wait for the 0.5 s listing


async def test_a_request_gets_its_own_run_not_the_schedulers() -> None:
    """A person's request never rides on the scheduler's task, which may give way or skip
    a user another replica holds; the engine joins the two when they overlap here."""
    engine = InterruptibleEngine(duration=0.3)
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
        await asyncio.gather(scheduled, requested)
    by_trigger = {c["trigger"]: c for c in calls}
    assert by_trigger["api"]["join"] is True and by_trigger["api"]["interrupt"] is None
    assert by_trigger["schedule"]["interrupt"] is not None
