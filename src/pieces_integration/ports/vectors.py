"""Ports of the retrieval core: the vector store and the embedder.

The store keeps one point per asset (and per context snapshot) holding two vectors: a sparse
BM25 vector, written the moment the asset is stored (keyword tier), and a dense sentence
vector, added later by the semantic indexer (`set_dense`). Every query is scoped to one
user through an indexed payload field; deleting an asset or a user removes its points.

Maintenance: an engine that does not optimise itself (the embedded one) counts the points
written since its last optimisation (`writes_since_optimize`), and `optimize()` merges its
segments and builds its vector index without holding up queries and writes for more than a
moment; a background loop (`service_layer.vector_maintenance`) decides when. A Qdrant server
optimises on its own: there both are no-ops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pieces_integration.domain.bm25 import SparseVector
from pieces_integration.domain.ranking import HybridFusion

ASSETS = "assets"
CONTEXTS = "contexts"
COLLECTIONS = (ASSETS, CONTEXTS)
DENSE = "dense"
SPARSE = "sparse"
DIMENSION = 384

# Payload fields with an index (the filters of search and suggestions).
USER_FIELD = "user_id"
LANGUAGE_FIELD = "language"
TAGS_FIELD = "tags"
KIND_FIELD = "kind"
HASH_FIELD = "content_hash"
# False on a point written without its dense vector (the keyword tier's fast path).
EMBEDDED_FIELD = "embedded"
ID_FIELD = "id"  # the caller's id, kept verbatim (point ids must be UUIDs)


@dataclass(frozen=True, slots=True)
class IndexedPoint:
    """What the store keeps for one asset or context snapshot."""

    id: str
    user_id: str
    sparse: SparseVector
    dense: Sequence[float] | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DenseUpdate:
    """A vector computed for `content_hash`; dropped if the point changed meanwhile."""

    id: str
    vector: Sequence[float]
    content_hash: str | None = None


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Scope of a query: one user's points (`own`) and/or the points of `shared_ids` (assets
    shared with that user through their teams, issue 16: any owner); optionally languages
    (any of), tags (any of), kinds (any of) and `ids` (only these points: scores a known set
    against a vector). A filter with neither `own` nor `shared_ids` matches nothing."""

    user_id: str
    languages: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    own: bool = True
    shared_ids: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.own and not self.shared_ids


@dataclass(frozen=True, slots=True)
class VectorHit:
    id: str
    score: float
    payload: Mapping[str, Any]


class VectorStore(Protocol):
    """Both adapters (embedded qdrant-edge, Qdrant server) implement exactly this."""

    async def open(self) -> None:
        """Create collections and payload indexes if missing (idempotent)."""

    async def close(self) -> None: ...

    async def upsert(self, collection: str, points: Sequence[IndexedPoint]) -> None:
        """Insert or replace points (a replaced point loses its old dense vector)."""

    async def set_dense(self, collection: str, updates: Sequence[DenseUpdate]) -> int:
        """Attach dense vectors to existing points; returns how many were applied.

        An update whose point is gone, or whose `content_hash` no longer matches the stored
        one (the asset changed after it was queued), is skipped.
        """

    async def delete(self, collection: str, ids: Sequence[str]) -> None: ...

    def writes_since_optimize(self) -> int:
        """Point writes (upserts, dense updates, deletes) not yet covered by `optimize`,
        in the collection that has the most. Always 0 on a backend that optimises itself."""

    async def optimize(self, *, min_writes: int = 1) -> bool:
        """Merge segments and build the vector index of every collection with at least
        `min_writes` writes since the last time; True if anything changed.

        Queries and writes keep being served meanwhile (writes pause briefly); calls never
        overlap. A no-op (False) on a backend that optimises by itself.
        """

    async def delete_user(self, user_id: str) -> None:
        """Remove every point of `user_id` from every collection."""

    async def count(self, collection: str, user_id: str | None = None) -> int: ...

    async def count_dense(self, collection: str, user_id: str | None = None) -> int:
        """Points that already have a dense vector (semantically searchable)."""

    async def query_dense(
        self,
        collection: str,
        vector: Sequence[float],
        search_filter: SearchFilter,
        limit: int,
    ) -> list[VectorHit]: ...

    async def query_sparse(
        self,
        collection: str,
        sparse: SparseVector,
        search_filter: SearchFilter,
        limit: int,
    ) -> list[VectorHit]: ...

    async def query_hybrid(
        self,
        collection: str,
        dense: Sequence[float],
        sparse: SparseVector,
        search_filter: SearchFilter,
        limit: int,
        fusion: HybridFusion,
    ) -> list[VectorHit]:
        """Dense and sparse prefetches fused in the engine by `ranking.fused_score`."""


class Embedder(Protocol):
    """Text -> unit-length dense vectors; async so CPU work happens off the event loop."""

    @property
    def dimension(self) -> int: ...

    @property
    def model_name(self) -> str: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Interactive lane: a search query, a suggestion context; served first."""


@runtime_checkable
class BackgroundEmbedder(Embedder, Protocol):
    """An embedder with a second, lower-priority lane for bulk work (the semantic indexer).

    `embed_background` yields the cores to `embed` calls: a query never waits for an indexing
    batch to finish. An embedder without it serves bulk work through `embed`.
    """

    async def embed_background(self, texts: Sequence[str]) -> list[list[float]]: ...
