"""Part of the composition root: the vector store, the two-tier indexer, search, suggestions.

* Store: the embedded qdrant-edge shards under `<data_dir>/vectors`, or a Qdrant server
  through the async qdrant-client when QDRANT_URL is set.
* Keyword tier: an after-commit hook of the unit-of-work factory (`keyword_tier`) upserts
  sparse points for every asset a transaction wrote and deletes those of deleted assets.
* Semantic tier: `SemanticIndexer` drains the durable `index_queue`.
* Maintenance (embedded store only): `VectorMaintenance` optimises the qdrant-edge shards
  after enough writes (a Qdrant server optimises itself).
* User deletion: `SearchRuntime.purge_user`, a privacy purge hook, removes the user's points
  and queue rows.

`SearchRuntime.running()` (entered by the app's lifespan and the `index-worker` command)
opens the store and runs the background loops.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from pieces_integration.adapters.embeddings.cached import CachedEmbedder
from pieces_integration.adapters.embeddings.local import LocalMiniLMEmbedder
from pieces_integration.adapters.sql.index_changes import IndexChanges
from pieces_integration.adapters.sql.index_queue import SqlIndexQueue
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.bootstrap.infrastructure import Infrastructure
from pieces_integration.config import Settings
from pieces_integration.ports.aiwfe import AIWFEClient
from pieces_integration.ports.pieces import PiecesOS
from pieces_integration.ports.vectors import Embedder, VectorStore
from pieces_integration.service_layer.indexer import SearchIndex, SemanticIndexer
from pieces_integration.service_layer.pieces import PiecesConnections
from pieces_integration.service_layer.search import SearchService
from pieces_integration.service_layer.suggestions import SuggestionPusher, SuggestionService
from pieces_integration.service_layer.team_access import TeamReachCache
from pieces_integration.service_layer.vector_maintenance import VectorMaintenance

log = logging.getLogger(__name__)


@functools.cache
def shared_embedder() -> CachedEmbedder:
    """One model per process: the weights are read-only, and loading costs ~0.5 s / 90 MB.
    Repeated queries and unchanged suggestion contexts are answered from its cache."""
    return CachedEmbedder(LocalMiniLMEmbedder())


def vector_store(settings: Settings) -> VectorStore:
    if settings.qdrant_url:
        from qdrant_client import AsyncQdrantClient

        from pieces_integration.adapters.vectors.qdrant_server import QdrantServerVectorStore

        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        client = AsyncQdrantClient(url=settings.qdrant_url, api_key=api_key, timeout=10)
        return QdrantServerVectorStore(client)
    from pieces_integration.adapters.vectors.qdrant_edge import QdrantEdgeVectorStore

    return QdrantEdgeVectorStore(settings.data_dir / "vectors")


def search_index(settings: Settings, embedder: Embedder | None) -> SearchIndex:
    return SearchIndex(vector_store(settings), embedder or shared_embedder())


def keyword_tier(index: SearchIndex) -> Callable[[IndexChanges], Awaitable[None]]:
    """The unit of work's after-commit hook: the keyword tier sees a write at once."""

    async def index_written(changes: IndexChanges) -> None:
        # After commit: failures must not surface as a failed write; the queue row stays
        # and the semantic indexer rewrites the whole point.
        try:
            await index.index_keywords(list(changes.upserted.values()))
            await index.remove(sorted(changes.deleted))
        except Exception:
            log.exception("keyword indexing after commit failed; left to the queue")

    return index_written


@dataclass(frozen=True, slots=True)
class SearchRuntime:
    settings: Settings
    index: SearchIndex
    queue: SqlIndexQueue
    indexer: SemanticIndexer
    maintenance: VectorMaintenance | None  # the embedded store only
    search: SearchService
    suggestions: SuggestionService
    pusher: SuggestionPusher

    async def purge_user(self, user_id: str) -> None:
        await self.queue.purge_user(user_id)
        if self.index.opened:
            await self.index.store.delete_user(user_id)
            return
        # This process does not serve search (the runtime has not opened the store): open it
        # just for the purge, never skip it. Where another process holds it (the embedded
        # store is single-process) this raises, and privacy keeps the user for a retry.
        store = vector_store(self.settings)
        try:
            await store.open()
            await store.delete_user(user_id)
        finally:
            await store.close()

    @asynccontextmanager
    async def running(self, *, serve: bool = True) -> AsyncIterator[None]:
        """Open the store and run the indexer, the store's maintenance (embedded store) and,
        when serving, the suggestion pusher."""
        async with AsyncExitStack() as stack:
            await self.index.open()
            stack.push_async_callback(self.index.close)
            await stack.enter_async_context(self.indexer)
            if self.maintenance is not None:
                await stack.enter_async_context(self.maintenance)
            if serve:
                await stack.enter_async_context(self.pusher)
            yield


def wire_search(
    settings: Settings,
    infra: Infrastructure,
    uow: SqlUnitOfWorkFactory,
    index: SearchIndex,
    aiwfe: AIWFEClient | None,
    connections: PiecesConnections,
    reach: TeamReachCache | None = None,
) -> SearchRuntime:
    def pieces(user_id: str) -> PiecesOS | None:
        live = connections.get(user_id)
        return live.client if live is not None else None

    intelligence = settings.intelligence
    suggestions = SuggestionService(
        uow=uow,
        index=index,
        cache=infra.cache,
        metrics=infra.metrics,
        min_relevance_score=intelligence.min_relevance_score,
        max_suggestions=intelligence.max_suggestions,
        aiwfe=lambda: aiwfe,
        pieces=pieces,
        reach=reach,
    )
    queue = SqlIndexQueue(uow)
    maintenance = None
    if not settings.qdrant_url:
        maintenance = VectorMaintenance(
            index.store,
            min_writes=intelligence.vector_optimize_min_writes,
            quiet_seconds=intelligence.vector_optimize_quiet_seconds,
            max_delay_seconds=intelligence.vector_optimize_max_delay_seconds,
            counter=infra.metrics.vector_optimizations,
        )
    return SearchRuntime(
        settings=settings,
        index=index,
        queue=queue,
        indexer=SemanticIndexer(
            index=index, queue=queue, uow=uow, lag_gauge=infra.metrics.semantic_index_lag
        ),
        maintenance=maintenance,
        search=SearchService(
            uow=uow,
            index=index,
            max_query_length=settings.api.max_query_length,
            max_limit=settings.api.max_page_size,
            reach=reach,
        ),
        suggestions=suggestions,
        pusher=SuggestionPusher(suggestions, infra.events),
    )
