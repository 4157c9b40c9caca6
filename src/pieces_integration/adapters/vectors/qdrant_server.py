"""Vector store on a Qdrant server (used when QDRANT_URL is set), via the async qdrant-client.

The client is injected, so tests can pass `AsyncQdrantClient(location=":memory:")` (the
client's local mode) and run the same suite as the embedded adapter. Collections are
prefixed so several deployments can share one server. The server merges segments and builds
its indexes in the background on its own, so `optimize` is a no-op here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

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


def _scope(search_filter: SearchFilter) -> models.Condition:
    """The user's own points, the shared ones, or either (a nested `should`)."""
    own = models.FieldCondition(
        key=USER_FIELD, match=models.MatchValue(value=search_filter.user_id)
    )
    if not search_filter.shared_ids:
        if not search_filter.own:
            raise ValueError("a search filter scoped to nothing; the caller returns no hits")
        return own
    ids: list[models.ExtendedPointId] = [point_id(key) for key in search_filter.shared_ids]
    shared = models.HasIdCondition(has_id=ids)
    return models.Filter(should=[own, shared]) if search_filter.own else shared


def _filter(search_filter: SearchFilter) -> models.Filter:
    must: list[models.Condition] = [_scope(search_filter)]
    for key, values in (
        ("language", search_filter.languages),
        ("tags", search_filter.tags),
        ("kind", search_filter.kinds),
    ):
        if values:
            must.append(models.FieldCondition(key=key, match=models.MatchAny(any=list(values))))
    if search_filter.ids:
        ids: list[models.ExtendedPointId] = [point_id(key) for key in search_filter.ids]
        must.append(models.HasIdCondition(has_id=ids))
    return models.Filter(must=must)


def _sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


def _formula(fusion: HybridFusion) -> models.FormulaQuery:
    """`ranking.fused_score`: $score[0] is the dense prefetch, $score[1] the sparse one."""
    squashed = models.DivExpression(
        div=models.DivParams(
            left="$score[1]",
            right=models.SumExpression(sum=["$score[1]", fusion.saturation]),
            by_zero_default=0.0,
        )
    )
    return models.FormulaQuery(
        formula=models.SumExpression(
            sum=["$score[0]", models.MultExpression(mult=[fusion.alpha, squashed])]
        ),
        defaults={"$score[0]": fusion.dense_floor, "$score[1]": 0.0},
    )


def _hits(points: Sequence[models.ScoredPoint]) -> list[VectorHit]:
    return [
        VectorHit(id=hit_id(p.payload, p.id), score=float(p.score), payload=dict(p.payload or {}))
        for p in points
    ]


class QdrantServerVectorStore:
    """`VectorStore` on a Qdrant server through an injected `AsyncQdrantClient`."""

    def __init__(
        self,
        client: AsyncQdrantClient,
        *,
        prefix: str = "pieces_integration_",
        dimension: int = DIMENSION,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._dimension = dimension

    def _name(self, collection: str) -> str:
        if collection not in COLLECTIONS:
            raise ValueError(f"unknown collection {collection!r}")
        return self._prefix + collection

    async def open(self) -> None:
        try:
            for collection in COLLECTIONS:
                name = self._name(collection)
                if not await self._client.collection_exists(name):
                    await self._client.create_collection(
                        name,
                        vectors_config={
                            DENSE: models.VectorParams(
                                size=self._dimension, distance=models.Distance.COSINE
                            )
                        },
                        sparse_vectors_config={
                            SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                        },
                    )
                await self._client.create_payload_index(
                    name,
                    USER_FIELD,
                    field_schema=models.KeywordIndexParams(
                        type=models.KeywordIndexType.KEYWORD, is_tenant=True
                    ),
                )
                for field in (*INDEXED_KEYWORD_FIELDS, ID_FIELD, HASH_FIELD):
                    await self._client.create_payload_index(
                        name, field, field_schema=models.PayloadSchemaType.KEYWORD
                    )
        except (ResponseHandlingException, UnexpectedResponse) as exc:
            raise DependencyUnavailable(
                f"Qdrant is unavailable: {exc}", upstream="vector_store"
            ) from exc

    async def close(self) -> None:
        await self._client.close()

    def writes_since_optimize(self) -> int:
        return 0  # the server's optimisers run by themselves

    async def optimize(self, *, min_writes: int = 1) -> bool:
        return False

    async def upsert(self, collection: str, points: Sequence[IndexedPoint]) -> None:
        if not points:
            return
        structs = []
        for point in points:
            vector: dict[str, Any] = {SPARSE: _sparse(point.sparse)}
            if point.dense is not None:
                vector[DENSE] = list(point.dense)
            structs.append(
                models.PointStruct(
                    id=point_id(point.id), vector=vector, payload=point_payload(point)
                )
            )
        await self._client.upsert(self._name(collection), points=structs, wait=True)

    async def set_dense(self, collection: str, updates: Sequence[DenseUpdate]) -> int:
        name = self._name(collection)
        applied = 0
        for update in updates:
            pid = point_id(update.id)
            must: list[models.Condition] = [models.HasIdCondition(has_id=[pid])]
            if update.content_hash is not None:
                must.append(
                    models.FieldCondition(
                        key=HASH_FIELD, match=models.MatchValue(value=update.content_hash)
                    )
                )
            condition = models.Filter(must=must)
            # Count first: a missing point is an error for update_vectors, a changed one is
            # skipped silently by its filter; both are "skipped" for the caller.
            if (await self._client.count(name, count_filter=condition, exact=True)).count == 0:
                continue
            await self._client.update_vectors(
                name,
                points=[models.PointVectors(id=pid, vector={DENSE: list(update.vector)})],
                update_filter=condition,
                wait=True,
            )
            applied += 1
        return applied

    async def delete(self, collection: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        selector = models.PointIdsList(points=[point_id(key) for key in ids])
        await self._client.delete(self._name(collection), points_selector=selector, wait=True)

    async def delete_user(self, user_id: str) -> None:
        selector = models.FilterSelector(
            filter=models.Filter(
                must=[models.FieldCondition(key=USER_FIELD, match=models.MatchValue(value=user_id))]
            )
        )
        for collection in COLLECTIONS:
            await self._client.delete(self._name(collection), points_selector=selector, wait=True)

    async def count(self, collection: str, user_id: str | None = None) -> int:
        return await self._count(collection, user_id, dense_only=False)

    async def count_dense(self, collection: str, user_id: str | None = None) -> int:
        return await self._count(collection, user_id, dense_only=True)

    async def _count(self, collection: str, user_id: str | None, *, dense_only: bool) -> int:
        must: list[models.Condition] = []
        if user_id is not None:
            must.append(
                models.FieldCondition(key=USER_FIELD, match=models.MatchValue(value=user_id))
            )
        if dense_only:
            must.append(models.HasVectorCondition(has_vector=DENSE))
        result = await self._client.count(
            self._name(collection),
            count_filter=models.Filter(must=must) if must else None,
            exact=True,
        )
        return int(result.count)

    async def query_dense(
        self, collection: str, vector: Sequence[float], search_filter: SearchFilter, limit: int
    ) -> list[VectorHit]:
        response = await self._client.query_points(
            self._name(collection),
            query=list(vector),
            using=DENSE,
            query_filter=_filter(search_filter),
            limit=limit,
            with_payload=True,
        )
        return _hits(response.points)

    async def query_sparse(
        self, collection: str, sparse: SparseVector, search_filter: SearchFilter, limit: int
    ) -> list[VectorHit]:
        if not sparse.indices:
            return []
        response = await self._client.query_points(
            self._name(collection),
            query=_sparse(sparse),
            using=SPARSE,
            query_filter=_filter(search_filter),
            limit=limit,
            with_payload=True,
        )
        return _hits(response.points)

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
        prefetch = [
            models.Prefetch(query=list(dense), using=DENSE, filter=flt, limit=prefetch_limit)
        ]
        if sparse.indices:
            prefetch.append(
                models.Prefetch(
                    query=_sparse(sparse), using=SPARSE, filter=flt, limit=prefetch_limit
                )
            )
        response = await self._client.query_points(
            self._name(collection),
            prefetch=prefetch,
            query=_formula(fusion),
            query_filter=flt,
            limit=limit,
            with_payload=True,
        )
        return _hits(response.points)
