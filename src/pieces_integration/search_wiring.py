"""Part of the composition root: the vector store, the two-tier indexer, search, suggestions.

`wire_search(container)` (called by `bootstrap`) builds the objects; `search_runtime(container)`
(entered by the app's lifespan and by the `index-worker` command) opens the store and runs
the background loops. Nothing else imports this module.

* Store: the embedded qdrant-edge shards under `<data_dir>/vectors`, or a Qdrant server
  through the async qdrant-client when QDRANT_URL is set.
* Keyword tier: an after-commit hook of the unit-of-work factory upserts sparse points for
  every asset a transaction wrote and deletes the points of deleted assets.
* Semantic tier: `SemanticIndexer` drains the durable `index_queue`.
* Maintenance (embedded store only): `VectorMaintenance` optimises the qdrant-edge shards
  after enough writes (a Qdrant server optimises itself).
* User deletion: a privacy purge hook removes the user's points and queue rows.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from pieces_integration.adapters.embeddings.cached import CachedEmbedder
from pieces_integration.adapters.embeddings.local import LocalMiniLMEmbedder
from pieces_integration.adapters.sql.index_queue import IndexChanges, SqlIndexQueue
from pieces_integration.ports.pieces import PiecesOS
from pieces_integration.ports.vectors import VectorStore
from pieces_integration.service_layer.indexer import SearchIndex, SemanticIndexer
from pieces_integration.service_layer.search import SearchService
from pieces_integration.service_layer.suggestions import (
    ContextChangeTap,
    SuggestionPusher,
    SuggestionService,
)
from pieces_integration.service_layer.vector_maintenance import VectorMaintenance

if TYPE_CHECKING:
    from pieces_integration.bootstrap import Container

log = logging.getLogger(__name__)


@functools.cache
def shared_embedder() -> CachedEmbedder:
    """One model per process: the weights are read-only, and loading costs ~0.5 s / 90 MB.
    Repeated queries and unchanged suggestion contexts are answered from its cache."""
    return CachedEmbedder(LocalMiniLMEmbedder())


def _store(container: Container) -> VectorStore:
    settings = container.settings
    if settings.qdrant_url:
        from qdrant_client import AsyncQdrantClient

        from pieces_integration.adapters.vectors.qdrant_server import QdrantServerVectorStore

        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        client = AsyncQdrantClient(url=settings.qdrant_url, api_key=api_key, timeout=10)
        return QdrantServerVectorStore(client)
    from pieces_integration.adapters.vectors.qdrant_edge import QdrantEdgeVectorStore

    return QdrantEdgeVectorStore(settings.data_dir / "vectors")


def wire_search(container: Container) -> None:
    settings = container.settings
    index = SearchIndex(_store(container), shared_embedder())
    queue = SqlIndexQueue(container.uow)

    async def keyword_tier(changes: IndexChanges) -> None:
        # After commit: failures must not surface as a failed write; the queue row stays
        # and the semantic indexer rewrites the whole point.
        try:
            await index.index_keywords(list(changes.upserted.values()))
            await index.remove(sorted(changes.deleted))
        except Exception:
            log.exception("keyword indexing after commit failed; left to the queue")

    container.uow.after_commit.append(keyword_tier)

    async def purge_user(user_id: str) -> None:
        await queue.purge_user(user_id)
        if index.opened:
            await index.store.delete_user(user_id)
            return
        # This process does not serve search (the runtime has not opened the store): open it
        # just for the purge, never skip it. Where another process holds it (the embedded
        # store is single-process) this raises, and privacy keeps the user for a retry.
        store = _store(container)
        try:
            await store.open()
            await store.delete_user(user_id)
        finally:
            await store.close()

    container.privacy.purge_hooks.append(purge_user)

    def aiwfe() -> Any:
        return container.extras.get("aiwfe_client")

    def pieces(user_id: str) -> PiecesOS | None:
        integration = container.extras.get("pieces")
        connections = getattr(integration, "connections", None)
        live = connections.get(user_id) if connections is not None else None
        client: PiecesOS | None = getattr(live, "client", None)
        return client

    intelligence = settings.intelligence
    suggestions = SuggestionService(
        uow=container.uow,
        index=index,
        cache=container.cache,
        metrics=container.metrics,
        min_relevance_score=intelligence.min_relevance_score,
        max_suggestions=intelligence.max_suggestions,
        aiwfe=aiwfe,
        pieces=pieces,
    )
    pusher = SuggestionPusher(suggestions, container.events)
    container.context.events = ContextChangeTap(container.events, pusher.notify)
    container.extras["search_index"] = index
    container.extras["index_queue"] = queue
    container.extras["semantic_indexer"] = SemanticIndexer(
        index=index,
        queue=queue,
        uow=container.uow,
        lag_gauge=container.metrics.semantic_index_lag,
    )
    if not settings.qdrant_url:
        container.extras["vector_maintenance"] = VectorMaintenance(
            index.store,
            min_writes=intelligence.vector_optimize_min_writes,
            quiet_seconds=intelligence.vector_optimize_quiet_seconds,
            max_delay_seconds=intelligence.vector_optimize_max_delay_seconds,
            counter=container.metrics.vector_optimizations,
        )
    container.extras["search"] = SearchService(
        uow=container.uow,
        index=index,
        max_query_length=settings.api.max_query_length,
        max_limit=settings.api.max_page_size,
    )
    container.extras["suggestions"] = suggestions
    container.extras["suggestion_pusher"] = pusher


@asynccontextmanager
async def search_runtime(container: Container, *, serve: bool = True) -> AsyncIterator[None]:
    """Open the store and run the indexer, the store's maintenance (embedded store) and,
    when serving, the suggestion pusher."""
    index: SearchIndex = container.extras["search_index"]
    async with AsyncExitStack() as stack:
        await index.open()
        stack.push_async_callback(index.close)
        await stack.enter_async_context(container.extras["semantic_indexer"])
        maintenance: VectorMaintenance | None = container.extras.get("vector_maintenance")
        if maintenance is not None:
            await stack.enter_async_context(maintenance)
        if serve:
            await stack.enter_async_context(container.extras["suggestion_pusher"])
        yield
