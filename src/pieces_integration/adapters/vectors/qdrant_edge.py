"""The embedded default vector store: Qdrant's in-process engine (`qdrant-edge-py`).

One edge shard per collection under `<directory>/<collection>/`, persisted with its
write-ahead log, so the index survives restarts without a server. Calls into the engine are
synchronous (filtered top-10 over 100k x 384-d takes a few ms), so each one is handed to a
worker thread to keep the event loop free. (Every engine call holds the GIL while it runs:
the worker thread keeps other coroutines going between calls, not during one.)

Maintenance. The engine never optimises by itself: new points pile up in one appendable,
unindexed segment, and deleted ones stay until a vacuum. `optimize()` merges segments and
builds the HNSW index, but the engine's own `optimize` holds the GIL for its whole run
(8,000 x 384-d: 4 s; 20,000: 25 s on this loaded 2-core machine), which would freeze the
whole process. So it runs on a copy, in a child process, and the copy is swapped in
(`_edge_swap.py` has the steps; `_edge_files.py` the directory layout).

Writes pause for the flush + copy (~0.3 s per 80 MB here) and for the final replay; queries
never wait (apart from the GIL while the copy is loaded: ~40 ms at 20,000 points). A crash
at any step leaves either the old or the new directory current; `open()` deletes the other.

Modules: `_edge_query.py` (requests and hits), `_edge_shard.py` (open shard, per-collection
state, payload indexes), `_edge_swap.py`, `_edge_files.py`; `_edge_optimizer.py` is the
child process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import qdrant_edge as q

from pieces_integration.adapters.vectors._common import point_id, point_payload
from pieces_integration.adapters.vectors._edge_files import current_path, remove_stale
from pieces_integration.adapters.vectors._edge_query import (
    engine_filter,
    engine_sparse,
    fusion_formula,
    vector_hits,
)
from pieces_integration.adapters.vectors._edge_shard import (
    CollectionState,
    ShardHandle,
    ShardStats,
    ensure_indexes,
    unoptimized_estimate,
)
from pieces_integration.adapters.vectors._edge_swap import (
    Optimizer,
    optimize_in_child,
    retire,
    swap_in_optimized_copy,
)
from pieces_integration.domain.bm25 import SparseVector
from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.domain.ranking import HybridFusion
from pieces_integration.ports.vectors import (
    COLLECTIONS,
    DENSE,
    DIMENSION,
    HASH_FIELD,
    SPARSE,
    USER_FIELD,
    DenseUpdate,
    IndexedPoint,
    SearchFilter,
    VectorHit,
)

__all__ = ["QdrantEdgeVectorStore", "ShardStats"]

T = TypeVar("T")

log = logging.getLogger(__name__)


class QdrantEdgeVectorStore:
    """`VectorStore` over qdrant-edge shards persisted in `directory`.

    `indexing_threshold_kb` (new shards only) is the segment size from which the engine
    builds an HNSW index (engine default ~10 MB, ~6,500 x 384-d vectors); tests lower it.
    `optimizer` optimises a shard copy (default: the child process); tests wrap it.
    """

    def __init__(
        self,
        directory: Path,
        *,
        dimension: int = DIMENSION,
        indexing_threshold_kb: int | None = None,
        optimizer: Optimizer | None = None,
    ) -> None:
        self._directory = directory
        self._optimizer = optimizer or optimize_in_child
        self._dimension = dimension
        self._indexing_threshold_kb = indexing_threshold_kb
        self._collections: dict[str, CollectionState] = {}
        self._optimize_lock = anyio.Lock()
        self.optimizations = 0  # swaps done by this instance

    async def open(self) -> None:
        await anyio.to_thread.run_sync(self._open_sync)

    def _open_sync(self) -> None:
        optimizers = None
        if self._indexing_threshold_kb is not None:
            optimizers = q.EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb)
        config = q.EdgeConfig(
            vectors={DENSE: q.EdgeVectorParams(size=self._dimension, distance=q.Distance.Cosine)},
            sparse_vectors={SPARSE: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
            optimizers=optimizers,
        )
        self._directory.mkdir(parents=True, exist_ok=True)
        for collection in COLLECTIONS:
            path = current_path(self._directory, collection)
            try:
                if (path / "edge_config.json").exists():
                    shard = q.EdgeShard.load(str(path))
                else:
                    path.mkdir(parents=True, exist_ok=True)
                    shard = q.EdgeShard.create(str(path), config)
            except Exception as exc:  # the engine raises bare Exception
                for opened in self._collections.values():
                    opened.handle.shard.close()
                self._collections.clear()
                raise DependencyUnavailable(
                    f"cannot open the vector index at {path}: {exc}", upstream="vector_store"
                ) from exc
            # Only now: the shard's lock proves no other process is using (or optimising) it.
            remove_stale(self._directory, collection, keep=path)
            ensure_indexes(shard)
            self._collections[collection] = CollectionState(
                name=collection,
                handle=ShardHandle(shard, path),
                lock=anyio.Lock(),
                writes=unoptimized_estimate(shard),
            )

    async def close(self) -> None:
        async with self._optimize_lock:
            collections, self._collections = self._collections, {}

            def close_all() -> None:
                for collection in collections.values():
                    collection.handle.shard.flush()
                    collection.handle.shard.close()

            await anyio.to_thread.run_sync(close_all)

    def _collection(self, collection: str) -> CollectionState:
        try:
            return self._collections[collection]
        except KeyError:
            if not self._collections:
                raise RuntimeError("QdrantEdgeVectorStore used before `await open()`") from None
            raise ValueError(f"unknown collection {collection!r}") from None

    async def _read(self, collection: str, func: Callable[[Any], T]) -> T:
        """Run a query on the live shard; a swap closes the old shard only after it."""
        handle = self._collection(collection).handle
        handle.readers += 1
        try:
            return await anyio.to_thread.run_sync(lambda: func(handle.shard))
        finally:
            handle.readers -= 1
            if handle.readers == 0 and handle.drained is not None:
                handle.drained.set()

    async def _write(
        self, collection: str, func: Callable[[Any], T], writes: Callable[[T], int] | int
    ) -> T:
        """Apply a write to the live shard (and journal it while a copy is optimised)."""
        state = self._collection(collection)
        async with state.lock:
            try:
                result = await anyio.to_thread.run_sync(lambda: func(state.handle.shard))
            finally:
                if state.journal is not None:
                    state.journal.append(func)
            state.writes += writes(result) if callable(writes) else writes
        return result

    # --- maintenance -------------------------------------------------------------------

    def writes_since_optimize(self) -> int:
        """The most point writes any collection received since its last optimisation."""
        return max((c.writes for c in self._collections.values()), default=0)

    async def stats(self, collection: str) -> ShardStats:
        def read(shard: Any) -> ShardStats:
            info = shard.info()
            return ShardStats(
                int(info.segments_count), int(info.points_count), int(info.indexed_vectors_count)
            )

        return await self._read(collection, read)

    @property
    def optimizing(self) -> bool:
        """True while a copy is being optimised (writes are journaled meanwhile)."""
        return any(c.journal is not None for c in self._collections.values())

    async def optimize(self, *, min_writes: int = 1) -> bool:
        """Optimise, on a copy in a child process, every collection with `min_writes` writes.

        True if a collection was swapped for an optimised copy. One run at a time.
        """
        async with self._optimize_lock:
            changed = False
            for state in list(self._collections.values()):
                if state.writes >= max(1, min_writes):
                    changed = await self._optimize_collection(state) or changed
            return changed

    async def _optimize_collection(self, state: CollectionState) -> bool:
        started = time.perf_counter()
        swapped = await swap_in_optimized_copy(self._directory, state, self._optimizer)
        if swapped is None:
            return False
        self.optimizations += 1
        with anyio.CancelScope(shield=True):
            await retire(swapped.replaced)
        log.info(
            "vector collection %s optimised in %.1f s; writes paused %.0f ms for the copy "
            "and %.0f ms for the swap; %d writes replayed",
            state.name,
            time.perf_counter() - started,
            swapped.copy_pause * 1000,
            swapped.swap_pause * 1000,
            swapped.journaled,
        )
        return True

    # --- the port ----------------------------------------------------------------------

    async def upsert(self, collection: str, points: Sequence[IndexedPoint]) -> None:
        if not points:
            return
        converted = []
        for point in points:
            vector: dict[str, Any] = {SPARSE: engine_sparse(point.sparse)}
            if point.dense is not None:
                vector[DENSE] = list(point.dense)
            converted.append(q.Point(point_id(point.id), vector, point_payload(point)))
        operation = q.UpdateOperation.upsert_points(converted)
        await self._write(collection, lambda shard: shard.update(operation), len(converted))

    async def set_dense(self, collection: str, updates: Sequence[DenseUpdate]) -> int:
        updates = list(updates)

        def apply(shard: Any) -> int:
            applied = 0
            for update in updates:
                pid = point_id(update.id)
                must: list[Any] = [q.HasIdCondition({pid})]
                if update.content_hash is not None:
                    must.append(
                        q.FieldCondition(HASH_FIELD, match=q.MatchValue(update.content_hash))
                    )
                condition = q.Filter(must=must)
                # Count first: the engine raises on a missing point, and the condition alone
                # would silently skip a changed one; both are "skipped" for the caller.
                if shard.count(q.CountRequest(filter=condition)) == 0:
                    continue
                shard.update(
                    q.UpdateOperation.update_vectors(
                        [q.PointVectors(pid, {DENSE: list(update.vector)})], condition=condition
                    )
                )
                applied += 1
            return applied

        return await self._write(collection, apply, lambda applied: applied)

    async def delete(self, collection: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        point_ids: list[Any] = [point_id(key) for key in ids]
        operation = q.UpdateOperation.delete_points(point_ids)
        await self._write(collection, lambda shard: shard.update(operation), len(point_ids))

    async def delete_user(self, user_id: str) -> None:
        condition = q.Filter(must=[q.FieldCondition(USER_FIELD, match=q.MatchValue(user_id))])

        def delete_all(shard: Any) -> int:
            # Counted so a large deletion makes the next optimisation (vacuum) due sooner.
            removed = int(shard.count(q.CountRequest(exact=True, filter=condition)))
            shard.update(q.UpdateOperation.delete_points_by_filter(condition))
            return removed

        for collection in COLLECTIONS:
            await self._write(collection, delete_all, lambda removed: removed)

    async def count(self, collection: str, user_id: str | None = None) -> int:
        return await self._count(collection, user_id, dense_only=False)

    async def count_dense(self, collection: str, user_id: str | None = None) -> int:
        return await self._count(collection, user_id, dense_only=True)

    async def _count(self, collection: str, user_id: str | None, *, dense_only: bool) -> int:
        must: list[Any] = []
        if user_id is not None:
            must.append(q.FieldCondition(USER_FIELD, match=q.MatchValue(user_id)))
        if dense_only:
            must.append(q.HasVectorCondition(DENSE))
        request = q.CountRequest(exact=True, filter=q.Filter(must=must) if must else None)
        return int(await self._read(collection, lambda shard: shard.count(request)))

    async def query_dense(
        self, collection: str, vector: Sequence[float], search_filter: SearchFilter, limit: int
    ) -> list[VectorHit]:
        request = q.QueryRequest(
            limit=limit,
            query=q.Query.Nearest(list(vector), using=DENSE),
            filter=engine_filter(search_filter),
            with_payload=True,
        )
        return vector_hits(await self._read(collection, lambda shard: shard.query(request)))

    async def query_sparse(
        self, collection: str, sparse: SparseVector, search_filter: SearchFilter, limit: int
    ) -> list[VectorHit]:
        if not sparse.indices:
            return []
        request = q.QueryRequest(
            limit=limit,
            query=q.Query.Nearest(engine_sparse(sparse), using=SPARSE),
            filter=engine_filter(search_filter),
            with_payload=True,
        )
        return vector_hits(await self._read(collection, lambda shard: shard.query(request)))

    async def query_hybrid(
        self,
        collection: str,
        dense: Sequence[float],
        sparse: SparseVector,
        search_filter: SearchFilter,
        limit: int,
        fusion: HybridFusion,
    ) -> list[VectorHit]:
        flt = engine_filter(search_filter)
        prefetch_limit = max(limit, fusion.prefetch_limit)
        prefetches = [
            q.Prefetch(
                limit=prefetch_limit, query=q.Query.Nearest(list(dense), using=DENSE), filter=flt
            )
        ]
        if sparse.indices:
            prefetches.append(
                q.Prefetch(
                    limit=prefetch_limit,
                    query=q.Query.Nearest(engine_sparse(sparse), using=SPARSE),
                    filter=flt,
                )
            )
        request = q.QueryRequest(
            limit=limit,
            prefetches=prefetches,
            query=fusion_formula(fusion),
            filter=flt,
            with_payload=True,
        )
        return vector_hits(await self._read(collection, lambda shard: shard.query(request)))
