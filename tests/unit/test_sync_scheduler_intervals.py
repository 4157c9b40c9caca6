"""Per-user sync frequency (preferences): it drives that user's schedule, and a change
reschedules the next run at once; a change made on another replica is picked up."""

from __future__ import annotations

from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from pieces_integration.domain.model import SyncRun
from pieces_integration.service_layer.sync_scheduler import SyncScheduler
from tests.fakes import VirtualClock

pytestmark = pytest.mark.anyio


class CountingEngine:
    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.runs: list[tuple[str, float]] = []

    async def sync_user(self, user_id: str, **options: Any) -> SyncRun:
        self.runs.append((user_id, self.clock()))
        return SyncRun(id=str(len(self.runs)), user_id=user_id, trigger="schedule")


def _no_outbox() -> Any:
    @asynccontextmanager
    async def uow(readonly: bool = False) -> Any:
        async def due_users(now: object) -> list[str]:
            return []

        yield SimpleNamespace(outbox=SimpleNamespace(due_users=due_users))

    return uow


def _scheduler(engine: CountingEngine, custom: dict[str, int]) -> SyncScheduler:
    async def users() -> list[str]:
        return ["alice", "bob"]

    async def intervals() -> dict[str, int]:
        return dict(custom)

    return SyncScheduler(
        engine=engine,  # type: ignore[arg-type]
        uow=_no_outbox(),
        users=users,
        intervals=intervals,
        interval=10.0,
        jitter=0.0,
        tick=0.5,
        full_run_share=0.0,
        clock=engine.clock,
        sleep=engine.clock.sleep,
    )


def runs_of(engine: CountingEngine, user_id: str) -> list[float]:
    return [at for user, at in engine.runs if user == user_id]


async def test_a_users_chosen_frequency_drives_their_schedule_only() -> None:
    clock = VirtualClock()
    engine = CountingEngine(clock)
    async with _scheduler(engine, {"alice": 5}) as running:
        await clock.advance(41.0)
        assert running.interval_for("alice") == 5.0 and running.interval_for("bob") == 10.0
    alice, bob = runs_of(engine, "alice"), runs_of(engine, "bob")
    assert [b - a for a, b in zip(alice, alice[1:], strict=False)] == pytest.approx(
        [5.0] * (len(alice) - 1), abs=0.51
    )
    assert [b - a for a, b in zip(bob, bob[1:], strict=False)] == pytest.approx(
        [10.0] * (len(bob) - 1), abs=0.51
    )


async def test_changing_the_frequency_reschedules_the_next_run_now() -> None:
    clock = VirtualClock()
    engine = CountingEngine(clock)
    async with _scheduler(engine, {}) as running:
        await clock.advance(1.0)
        assert running.next_run_in("alice") is not None
        running.set_interval("alice", 300)
        assert running.next_run_in("alice") == pytest.approx(300.0)
        running.set_interval("alice", None)  # back to the default
        assert running.next_run_in("alice") == pytest.approx(10.0)
        assert running.next_run_in("nobody") is None


async def test_a_change_made_on_another_replica_is_picked_up_at_the_refresh() -> None:
    clock = VirtualClock()
    engine = CountingEngine(clock)
    custom: dict[str, int] = {}
    running = _scheduler(engine, custom)
    async with running:
        await clock.advance(1.0)
        custom["bob"] = 600  # stored by another replica
        await clock.advance(11.0)  # the refresh runs at most every 10 s
        assert running.interval_for("bob") == 600.0
        assert running.next_run_in("bob") == pytest.approx(600.0, abs=11.0)
