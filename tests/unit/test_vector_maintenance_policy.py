"""When the maintenance loop optimises the vector store: enough writes, then a pause in
writing (or a maximum delay), never concurrently, with a back-off after a failure."""

from __future__ import annotations

import anyio
import pytest

from pieces_integration.observability.metrics import Metrics
from pieces_integration.ports.clock import Sleep
from pieces_integration.service_layer.vector_maintenance import VectorMaintenance
from tests.fakes import FakeClock, VirtualClock

pytestmark = pytest.mark.anyio


def Clock() -> FakeClock:
    return FakeClock(now=1_000.0)


class FakeStore:
    """Optimising takes 0.01 s of `sleep`'s time (a fake clock's unless told otherwise)."""

    def __init__(self, sleep: Sleep | None = None) -> None:
        self._sleep = sleep or FakeClock().sleep
        self.writes = 0
        self.calls: list[int] = []
        self.fail = False
        self.running = 0
        self.overlapped = False
        self._finished = anyio.Event()

    def writes_since_optimize(self) -> int:
        return self.writes

    async def optimize(self, *, min_writes: int = 1) -> bool:
        self.running += 1
        self.overlapped |= self.running > 1
        try:
            await self._sleep(0.01)
            self.calls.append(min_writes)
            if self.fail:
                raise RuntimeError("optimiser crashed")
            self.writes = 0
            return True
        finally:
            self.running -= 1
            self._finished.set()
            self._finished = anyio.Event()

    async def wait_for_calls(self, count: int) -> None:
        while len(self.calls) < count:
            await self._finished.wait()


def loop(store: FakeStore, clock: FakeClock, metrics: Metrics | None = None) -> VectorMaintenance:
    return VectorMaintenance(
        store,  # type: ignore[arg-type]
        min_writes=100,
        quiet_seconds=30,
        max_delay_seconds=600,
        failure_backoff_seconds=300,
        counter=metrics.vector_optimizations if metrics else None,
        clock=clock,
    )


def sample(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "pieces_vector_optimizations_total", {"result": result}
    )
    return value or 0.0


async def test_nothing_happens_below_the_threshold() -> None:
    store, clock = FakeStore(), Clock()
    maintenance = loop(store, clock)
    store.writes = 99
    for _ in range(5):
        clock.now += 100
        assert await maintenance.run_once() is None
    assert store.calls == []


async def test_a_bulk_load_is_optimised_once_writing_pauses() -> None:
    store, clock, metrics = FakeStore(), Clock(), Metrics()
    maintenance = loop(store, clock, metrics)
    for _ in range(10):  # an import: writes keep coming every few seconds
        store.writes += 500
        clock.now += 5
        assert await maintenance.run_once() is None
    clock.now += 29
    assert await maintenance.run_once() is None  # not quiet long enough yet
    clock.now += 1
    assert await maintenance.run_once() is True
    assert store.calls == [100]
    assert sample(metrics, "optimized") == 1


async def test_steady_writes_are_optimised_after_the_maximum_delay() -> None:
    store, clock = FakeStore(), Clock()
    maintenance = loop(store, clock)
    store.writes = 100
    assert await maintenance.run_once() is None
    for _ in range(59):  # a write every 10 s: never quiet for 30 s
        store.writes += 1
        clock.now += 10
        assert await maintenance.run_once() is None
    store.writes += 1
    clock.now += 10
    assert await maintenance.run_once() is True


async def test_a_failure_is_counted_and_retried_after_the_back_off() -> None:
    store, clock, metrics = FakeStore(), Clock(), Metrics()
    maintenance = loop(store, clock, metrics)
    store.writes, store.fail = 1_000, True
    clock.now += 30
    assert await maintenance.run_once() is None  # first sight of the count starts the quiet
    clock.now += 30
    assert await maintenance.run_once() is False
    assert sample(metrics, "failed") == 1
    clock.now += 299
    assert await maintenance.run_once() is None
    store.fail = False
    clock.now += 1
    assert await maintenance.run_once() is True
    assert sample(metrics, "optimized") == 1


async def test_the_background_loop_polls_and_never_overlaps_runs() -> None:
    clock = VirtualClock()
    store = FakeStore(sleep=clock.sleep)
    store.writes = 1_000
    maintenance = VectorMaintenance(
        store,  # type: ignore[arg-type]
        min_writes=100,
        quiet_seconds=0,
        poll_seconds=5,
        clock=clock,
        sleep=clock.sleep,
    )
    async with maintenance:
        await clock.advance(4.99)
        assert store.calls == []  # nothing before the first poll
        await clock.advance(0.02)  # the poll at 5 s, then 0.01 s of optimising
        assert len(store.calls) == 1
        store.writes = 1_000  # written again: due again
        await clock.run_until(lambda: len(store.calls) == 2, step=1, limit=30)
    assert not store.overlapped
