"""Optimising the embedded store (qdrant-edge) on a copy in a child process: the index gets
built, writes made meanwhile are kept, queries and writes never wait for the optimiser, and
failures, cancellation and crashes leave the live shard as it was."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import pytest

from pieces_integration.adapters.vectors._edge_swap import optimize_in_child
from pieces_integration.adapters.vectors.qdrant_edge import QdrantEdgeVectorStore
from pieces_integration.domain.bm25 import sparse_document
from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.domain.tokenize import tokenize
from pieces_integration.ports.vectors import ASSETS, DenseUpdate, IndexedPoint, SearchFilter

pytestmark = pytest.mark.anyio

DIM = 8
POINTS = 2_000


def unit(seed: int) -> list[float]:
    rng = random.Random(seed)
    vector = [rng.gauss(0, 1) for _ in range(DIM)]
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector]


def point(key: str, user: str, seed: int) -> IndexedPoint:
    return IndexedPoint(
        id=key,
        user_id=user,
        sparse=sparse_document(tokenize(f"function number {seed} of {user}")),
        dense=unit(seed),
        payload={"content_hash": f"h{seed}"},
    )


class Optimiser:
    """The store's optimiser: the real child process unless a test swaps in `use(...)`."""

    def __init__(self) -> None:
        self.current: Callable[[Path], Awaitable[bool]] = optimize_in_child

    def use(self, optimise: Callable[[Path], Awaitable[bool]]) -> None:
        self.current = optimise

    async def __call__(self, path: Path) -> bool:
        return await self.current(path)


async def open_store(directory: Path, optimiser: Optimiser | None = None) -> QdrantEdgeVectorStore:
    # A 1 KB indexing threshold: the engine builds HNSW for these small test shards too.
    store = QdrantEdgeVectorStore(
        directory, dimension=DIM, indexing_threshold_kb=1, optimizer=optimiser
    )
    await store.open()
    return store


@pytest.fixture
def optimiser() -> Optimiser:
    return Optimiser()


@pytest.fixture
async def store(tmp_path: Path, optimiser: Optimiser) -> AsyncIterator[QdrantEdgeVectorStore]:
    store = await open_store(tmp_path / "vectors", optimiser)
    await store.upsert(
        ASSETS, [point(f"p{n}", "alice" if n % 2 else "bob", n) for n in range(POINTS)]
    )
    yield store
    await store.close()


def hold_optimiser(optimiser: Optimiser) -> tuple[anyio.Event, anyio.Event]:
    """The real child process runs, then the swap waits until the test releases it."""
    entered, release = anyio.Event(), anyio.Event()

    async def held(path: Path) -> bool:
        changed = await optimize_in_child(path)
        entered.set()
        await release.wait()
        return changed

    optimiser.use(held)
    return entered, release


async def test_the_index_is_built_and_writes_made_meanwhile_are_kept(
    store: QdrantEdgeVectorStore, optimiser: Optimiser, tmp_path: Path
) -> None:
    before = await store.stats(ASSETS)
    assert store.writes_since_optimize() == POINTS
    entered, release = hold_optimiser(optimiser)
    alice = SearchFilter(user_id="alice")
    async with anyio.create_task_group() as tg:
        tg.start_soon(store.optimize)
        with anyio.fail_after(60):
            await entered.wait()
        assert store.optimizing
        # The copy is optimised; the live shard keeps serving reads and writes at once.
        with anyio.fail_after(5):
            await store.upsert(ASSETS, [point("during", "alice", 99_999)])
            await store.delete(ASSETS, ["p1"])
            assert await store.set_dense(ASSETS, [DenseUpdate("p3", unit(424_242), "h3")]) == 1
            hits = await store.query_dense(ASSETS, unit(99_999), alice, 1)
            assert [h.id for h in hits] == ["during"]
        release.set()
    assert not store.optimizing
    assert store.optimizations == 1
    after = await store.stats(ASSETS)
    assert after.points == before.points  # one added, one deleted
    assert after.indexed_vectors >= before.indexed_vectors + POINTS  # dense vectors indexed
    assert store.writes_since_optimize() == 3  # the writes made during the run

    async def check(s: QdrantEdgeVectorStore) -> None:
        assert [h.id for h in await s.query_dense(ASSETS, unit(99_999), alice, 1)] == ["during"]
        assert [h.id for h in await s.query_dense(ASSETS, unit(424_242), alice, 1)] == ["p3"]
        ids = SearchFilter(user_id="alice", ids=("p1", "p5"))
        assert [h.id for h in await s.query_dense(ASSETS, unit(5), ids, 5)] == ["p5"]
        assert await s.count(ASSETS) == POINTS

    await check(store)
    names = sorted(p.name for p in (tmp_path / "vectors").iterdir())
    assert names[0] == "assets.current" and names[1].startswith("assets.opt-")
    assert names[2:] == ["contexts"]  # no write there: left alone
    await store.close()
    reopened = await open_store(tmp_path / "vectors")  # the swap is durable
    try:
        await check(reopened)
        assert (await reopened.stats(ASSETS)).indexed_vectors == after.indexed_vectors
    finally:
        await reopened.close()


async def test_a_failed_optimisation_leaves_the_live_shard_as_it_was(
    store: QdrantEdgeVectorStore, optimiser: Optimiser, tmp_path: Path
) -> None:
    async def crash(path: Path) -> bool:
        raise RuntimeError("the shard optimiser exited with -9")

    optimiser.use(crash)
    with pytest.raises(RuntimeError):
        await store.optimize()
    assert store.writes_since_optimize() == POINTS  # still due
    assert not store.optimizing
    assert sorted(p.name for p in (tmp_path / "vectors").iterdir()) == ["assets", "contexts"]
    await store.upsert(ASSETS, [point("after", "alice", 7)])
    assert await store.count(ASSETS) == POINTS + 1


async def test_a_cancelled_optimisation_leaves_the_live_shard_as_it_was(
    store: QdrantEdgeVectorStore, optimiser: Optimiser, tmp_path: Path
) -> None:
    entered, _release = hold_optimiser(optimiser)
    async with anyio.create_task_group() as tg:
        tg.start_soon(store.optimize)
        with anyio.fail_after(60):
            await entered.wait()
        await store.upsert(ASSETS, [point("during", "alice", 5)])
        tg.cancel_scope.cancel()
    assert not store.optimizing and store.optimizations == 0
    assert sorted(p.name for p in (tmp_path / "vectors").iterdir()) == ["assets", "contexts"]
    assert await store.count(ASSETS) == POINTS + 1


async def test_open_discards_what_an_interrupted_optimisation_left(tmp_path: Path) -> None:
    directory = tmp_path / "vectors"
    store = await open_store(directory)
    await store.upsert(ASSETS, [point("kept", "alice", 1)])
    await store.close()
    (directory / "assets.opt-0123456789ab" / "segments").mkdir(parents=True)  # a crash mid-run
    (directory / "contexts.current").write_text("contexts.opt-gone")  # names a missing copy
    store = await open_store(directory)
    try:
        names = sorted(p.name for p in directory.iterdir())
        assert names == ["assets", "contexts", "contexts.current"]
        assert await store.count(ASSETS) == 1
    finally:
        await store.close()


async def test_a_restart_still_knows_what_is_left_to_optimise(tmp_path: Path) -> None:
    directory = tmp_path / "vectors"
    store = await open_store(directory)
    await store.upsert(ASSETS, [point(f"p{n}", "alice", n) for n in range(500)])
    await store.close()
    store = await open_store(directory)
    try:
        assert store.writes_since_optimize() >= 500  # estimated from the engine's counts
        assert await store.optimize() is True
    finally:
        await store.close()
    store = await open_store(directory)
    try:
        assert store.writes_since_optimize() == 0
    finally:
        await store.close()


async def test_a_second_process_opening_the_store_leaves_a_running_optimisation_alone(
    store: QdrantEdgeVectorStore, optimiser: Optimiser, tmp_path: Path
) -> None:
    entered, release = hold_optimiser(optimiser)
    async with anyio.create_task_group() as tg:
        tg.start_soon(store.optimize)
        with anyio.fail_after(60):
            await entered.wait()
        intruder = QdrantEdgeVectorStore(tmp_path / "vectors", dimension=DIM)
        with pytest.raises(DependencyUnavailable):  # the live shard is locked
            await intruder.open()
        release.set()
    assert store.optimizations == 1  # its copy was not taken for a leftover
    assert await store.count(ASSETS) == POINTS
