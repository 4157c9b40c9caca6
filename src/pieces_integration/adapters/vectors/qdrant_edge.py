"""The embedded default vector store: Qdrant's in-process engine (`qdrant-edge-py`).

One edge shard per collection under `<directory>/<collection>/`, persisted with its
write-ahead log, so the index survives restarts without a server. Calls into the engine are
synchronous (filtered top-10 over 100k x 384-d takes a few ms), so each one is handed to a
worker thread to keep the event loop free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import qdrant_edge as q

from pieces_integration.adapters.vectors._common import (
    INDEXED_KEYWORD_FIELDS,
    hit_id,
    point_id,
    point_payload,
)
from pieces_integration.domain.bm25 import SparseVector
from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.domain.ranking import HybridFusion
from pieces_integration.ports.vectors import (
    COLLECTIONS,
    DENSE,
    DIMENSION,
    HASH_FIELD,
    ID_FIELD,
    SPARSE,
    USER_FIELD,
    DenseUpdate,
    IndexedPoint,
    SearchFilter,
    VectorHit,
)

T = TypeVar("T")


def _filter(search_filter: SearchFilter) -> Any:
    must: list[Any] = [q.FieldCondition(USER_FIELD, match=q.MatchValue(search_filter.user_id))]
    if search_filter.languages:
        must.append(q.FieldCondition("language", match=q.MatchAny(list(search_filter.languages))))
    if search_filter.tags:
        must.append(q.FieldCondition("tags", match=q.MatchAny(list(search_filter.tags))))
    if search_filter.kinds:
        must.append(q.FieldCondition("kind", match=q.MatchAny(list(search_filter.kinds))))
    return q.Filter(must=must)


def _sparse(vector: SparseVector) -> Any:
    return q.SparseVector(list(vector.indices), list(vector.values))


def _formula(fusion: HybridFusion) -> Any:
    """`ranking.fused_score` as an engine formula: $score[0] dense, $score[1] sparse."""
    e = q.Expression
    sparse = e.Variable("$score[1]")
    squashed = e.Div(sparse, e.Sum([sparse, e.Constant(fusion.saturation)]), 0.0)
    return q.Formula(
        e.Sum([e.Variable("$score[0]"), e.Mult([e.Constant(fusion.alpha), squashed])]),
        defaults={"$score[0]": fusion.dense_floor, "$score[1]": 0.0},
    )


def _hits(points: Sequence[Any]) -> list[VectorHit]:
    hits = []
    for point in points:
        payload = dict(point.payload or {})
        hits.append(
            VectorHit(id=hit_id(payload, point.id), score=float(point.score), payload=payload)
        )
    return hits


class QdrantEdgeVectorStore:
    """`VectorStore` over qdrant-edge shards persisted in `directory`."""

    def __init__(self, directory: Path, *, dimension: int = DIMENSION) -> None:
        self._directory = directory
        self._dimension = dimension
        self._shards: dict[str, Any] = {}

    async def open(self) -> None:
        await anyio.to_thread.run_sync(self._open_sync)

    def _open_sync(self) -> None:
        config = q.EdgeConfig(
            vectors={DENSE: q.EdgeVectorParams(size=self._dimension, distance=q.Distance.Cosine)},
            sparse_vectors={SPARSE: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
        )
        for collection in COLLECTIONS:
            path = self._directory / collection
            try:
                if (path / "edge_config.json").exists():
                    shard = q.EdgeShard.load(str(path))
                else:
                    path.mkdir(parents=True, exist_ok=True)
                    shard = q.EdgeShard.create(str(path), config)
            except Exception as exc:  # the engine raises bare Exception
                raise DependencyUnavailable(
                    f"cannot open the vector index at {path}: {exc}", upstream="vector_store"
                ) from exc
            # Tenant index: the engine keeps each user's points together for filtered search.
            shard.update(
                q.UpdateOperation.create_field_index(
                    USER_FIELD, q.KeywordIndexParams(is_tenant=True)
                )
            )
            for name in (*INDEXED_KEYWORD_FIELDS, ID_FIELD, HASH_FIELD):
                shard.update(
                    q.UpdateOperation.create_field_index(name, q.PayloadSchemaType.Keyword)
                )
            self._shards[collection] = shard

    async def close(self) -> None:
        shards, self._shards = self._shards, {}

        def close_all() -> None:
            for shard in shards.values():
                shard.flush()
                shard.close()

        await anyio.to_thread.run_sync(close_all)

    async def optimize(self) -> bool:
        """Merge segments and build the HNSW index (blocking work, in a worker thread).

        The engine does not optimise in the background: call this after a bulk load and
        periodically from a maintenance task. True if anything was optimised.
        """
        shards = list(self._shards.values())
        return any(await self._run(lambda: [shard.optimize() for shard in shards]))

    def _shard(self, collection: str) -> Any:
        try:
            return self._shards[collection]
        except KeyError:
            if not self._shards:
                raise RuntimeError("QdrantEdgeVectorStore used before `await open()`") from None
            raise ValueError(f"unknown collection {collection!r}") from None

    async def _run(self, func: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(func)

    async def upsert(self, collection: str, points: Sequence[IndexedPoint]) -> None:
        if not points:
            return
        shard = self._shard(collection)
        converted = []
        for point in points:
            vector: dict[str, Any] = {SPARSE: _sparse(point.sparse)}
            if point.dense is not None:
                vector[DENSE] = list(point.dense)
            converted.append(q.Point(point_id(point.id), vector, point_payload(point)))
        await self._run(lambda: shard.update(q.UpdateOperation.upsert_points(converted)))

    async def set_dense(self, collection: str, updates: Sequence[DenseUpdate]) -> int:
        shard = self._shard(collection)

        def apply() -> int:
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

        return await self._run(apply)

    async def delete(self, collection: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        shard = self._shard(collection)
        point_ids: list[Any] = [point_id(key) for key in ids]
        await self._run(lambda: shard.update(q.UpdateOperation.delete_points(point_ids)))

    async def delete_user(self, user_id: str) -> None:
        condition = q.Filter(must=[q.FieldCondition(USER_FIELD, match=q.MatchValue(user_id))])
        shards = [self._shard(collection) for collection in COLLECTIONS]

        def delete_all() -> None:
            for shard in shards:
                shard.update(q.UpdateOperation.delete_points_by_filter(condition))

        await self._run(delete_all)

    async def count(self, collection: str, user_id: str | None = None) -> int:
        return await self._count(collection, user_id, dense_only=False)

    async def count_dense(self, collection: str, user_id: str | None = None) -> int:
        return await self._count(collection, user_id, dense_only=True)

    async def _count(self, collection: str, user_id: str | None, *, dense_only: bool) -> int:
        shard = self._shard(collection)
        must: list[Any] = []
        if user_id is not None:
            must.append(q.FieldCondition(USER_FIELD, match=q.MatchValue(user_id)))
        if dense_only:
            must.append(q.HasVectorCondition(DENSE))
        request = q.CountRequest(exact=True, filter=q.Filter(must=must) if must else None)
        return int(await self._run(lambda: shard.count(request)))

    async def query_dense(
        self, collection: str, vector: Sequence[float], search_filter: SearchFilter, limit: int
    ) -> list[VectorHit]:
        request = q.QueryRequest(
            limit=limit,
            query=q.Query.Nearest(list(vector), using=DENSE),
            filter=_filter(search_filter),
            with_payload=True,
        )
        shard = self._shard(collection)
        return _hits(await self._run(lambda: shard.query(request)))

    async def query_sparse(
        self, collection: str, sparse: SparseVector, search_filter: SearchFilter, limit: int
    ) -> list[VectorHit]:
        if not sparse.indices:
            return []
        request = q.QueryRequest(
            limit=limit,
            query=q.Query.Nearest(_sparse(sparse), using=SPARSE),
            filter=_filter(search_filter),
            with_payload=True,
        )
        shard = self._shard(collection)
        return _hits(await self._run(lambda: shard.query(request)))

    async def query_hybrid(
        self,
        collection: str,
        dense: Sequence[float],
        sparse: SparseVector,
        search_filter: SearchFilter,
        limit: int,
        fusion: HybridFusion,
    ) -> list[VectorHit]:
        flt = _filter(search_filter)
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
                    query=q.Query.Nearest(_sparse(sparse), using=SPARSE),
                    filter=flt,
                )
            )
        request = q.QueryRequest(
            limit=limit,
            prefetches=prefetches,
            query=_formula(fusion),
            filter=flt,
            with_payload=True,
        )
        shard = self._shard(collection)
        return _hits(await self._run(lambda: shard.query(request)))
