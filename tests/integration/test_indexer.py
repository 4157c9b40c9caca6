"""The durable index queue and the semantic indexer, on SQLite and PostgreSQL with the
embedded vector store: same-transaction enqueue, restarts, leases, stale work, failures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from pieces_integration.adapters.sql.index_changes import IndexChanges
from pieces_integration.adapters.sql.index_queue import SqlIndexQueue
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.adapters.vectors.qdrant_edge import QdrantEdgeVectorStore
from pieces_integration.domain.model import Asset, User
from pieces_integration.ports.vectors import ASSETS
from pieces_integration.service_layer.indexer import SearchIndex, SemanticIndexer
from tests.fakes import HashingEmbedder

pytestmark = pytest.mark.anyio


class FailingEmbedder(HashingEmbedder):
    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise RuntimeError("model crashed")


async def add_asset(uow_factory: SqlUnitOfWorkFactory, name: str, *, commit: bool = True) -> Asset:
    asset = Asset(
        id=f"{name}-0000-0000-0000-000000000000"[:36],
        user_id="u1",
        name=name,
        content=f"content of {name}",
    )
    async with uow_factory() as uow:
        if await uow.users.get("u1") is None:
            await uow.users.add(User(id="u1"))
        await uow.assets.add(asset)
        if commit:
            await uow.commit()
    return asset


def indexer_for(
    uow_factory: SqlUnitOfWorkFactory, store: QdrantEdgeVectorStore, embedder: HashingEmbedder
) -> SemanticIndexer:
    index = SearchIndex(store, embedder)
    index.opened = True
    return SemanticIndexer(index=index, queue=SqlIndexQueue(uow_factory), uow=uow_factory)


async def test_enqueue_is_part_of_the_write_transaction(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    queue = SqlIndexQueue(uow_factory)
    await add_asset(uow_factory, "rolled-back", commit=False)
    assert await queue.depth() == 0
    await add_asset(uow_factory, "committed")
    assert await queue.depth() == 1


async def test_after_commit_hooks_see_the_written_assets(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    seen: list[IndexChanges] = []

    async def hook(changes: IndexChanges) -> None:
        seen.append(changes)

    uow_factory.after_commit.append(hook)
    asset = await add_asset(uow_factory, "hooked")
    async with uow_factory() as uow:
        await uow.assets.delete(asset.id)
        await uow.commit()
    assert list(seen[0].upserted) == [asset.id]
    assert seen[1].deleted == {asset.id} and not seen[1].upserted


async def test_queued_work_survives_a_restart_and_is_indexed_once(
    uow_factory: SqlUnitOfWorkFactory, tmp_path: Path
) -> None:
    asset = await add_asset(uow_factory, "survivor")
    # "Restart": a new factory and queue over the same database, a new store process.
    restarted = SqlUnitOfWorkFactory(uow_factory.engine)
    store = QdrantEdgeVectorStore(tmp_path / "vectors")
    await store.open()
    indexer = indexer_for(restarted, store, HashingEmbedder())
    assert await indexer.drain() == 1
    assert await store.count_dense(ASSETS, "u1") == 1
    assert await indexer.queue.depth() == 0
    await store.close()
    reopened = QdrantEdgeVectorStore(tmp_path / "vectors")
    await reopened.open()
    assert await reopened.count_dense(ASSETS, "u1") == 1
    hits = await reopened.query_dense(
        ASSETS,
        (await HashingEmbedder().embed([f"survivor: content of {asset.name}"]))[0],
        __import__("pieces_integration.ports.vectors", fromlist=["SearchFilter"]).SearchFilter(
            user_id="u1"
        ),
        1,
    )
    assert hits[0].id == asset.id
    await reopened.close()


async def test_two_workers_never_claim_the_same_row(uow_factory: SqlUnitOfWorkFactory) -> None:
    for i in range(6):
        await add_asset(uow_factory, f"a{i}")
    first, second = SqlIndexQueue(uow_factory), SqlIndexQueue(uow_factory)
    claims: list[list[str]] = []

    async def claim(queue: SqlIndexQueue) -> None:
        tasks = await queue.claim(limit=6, settle_seconds=0, lease_seconds=60)
        claims.append([t.asset_id for t in tasks])

    async with anyio.create_task_group() as tg:
        tg.start_soon(claim, first)
        tg.start_soon(claim, second)
    together = claims[0] + claims[1]
    assert len(together) == len(set(together)) == 6


async def test_a_write_during_indexing_keeps_its_newer_row(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    asset = await add_asset(uow_factory, "edited")
    queue = SqlIndexQueue(uow_factory)
    tasks = await queue.claim(limit=10, settle_seconds=0, lease_seconds=60)
    await anyio.sleep(0.01)
    asset.content = "changed while the worker embedded"
    asset.content_hash = ""
    asset.__post_init__()
    async with uow_factory() as uow:
        await uow.assets.update(asset)
        await uow.commit()
    assert await queue.ack(tasks) == 0
    assert await queue.depth() == 1


async def test_a_failed_batch_is_retried_later_not_lost(
    uow_factory: SqlUnitOfWorkFactory, tmp_path: Path
) -> None:
    await add_asset(uow_factory, "unlucky")
    store = QdrantEdgeVectorStore(tmp_path / "vectors")
    await store.open()
    indexer = indexer_for(uow_factory, store, FailingEmbedder())
    assert await indexer.run_once(settle_seconds=0) == 1
    assert await indexer.queue.depth() == 1
    # Leased for the back-off: not claimable right away.
    assert await indexer.run_once(settle_seconds=0) == 0
    await store.close()


async def test_the_settle_delay_leaves_fresh_writes_to_the_keyword_fast_path(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await add_asset(uow_factory, "fresh")
    queue = SqlIndexQueue(uow_factory)
    assert await queue.claim(limit=10, settle_seconds=60, lease_seconds=60) == []
    assert len(await queue.claim(limit=10, settle_seconds=0, lease_seconds=60)) == 1
