"""Two-tier indexing of assets into the vector store.

Keyword tier (synchronous, cheap): `SearchIndex.index_keywords` turns assets into sparse
BM25 points and upserts them right after the transaction that stored them commits (the unit
of work's after-commit hook), so an asset is keyword-searchable the moment its write returns.
A sync import of many assets commits in batches, and each batch is one upsert.

Semantic tier (asynchronous, expensive): every asset write also leaves a row in the durable
index queue, in the same transaction. `SemanticIndexer` drains that queue in small batches,
embeds off the event loop (the embedder runs in a worker thread) and upserts the full point
(sparse + dense). It claims only rows at least `settle_seconds` old, so the keyword fast path
of the same write has landed first and cannot wipe the dense vector it adds. Its batches go
through the embedder's background lane, which yields to search queries. The queue is a
table, so work survives restarts, and rows are leased, so several `index-worker` processes
can share it (with a Qdrant server; the embedded store belongs to one process). Its length is
the `pieces_semantic_index_lag` gauge.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio

from pieces_integration.domain.backoff import exponential_backoff
from pieces_integration.domain.bm25 import document_tokens, sparse_document
from pieces_integration.domain.model import Asset
from pieces_integration.domain.ranking import normalise_language
from pieces_integration.domain.tokenize import semantic_text
from pieces_integration.ports.index_queue import DELETE, IndexQueue, IndexTask
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.ports.vectors import (
    ASSETS,
    EMBEDDED_FIELD,
    HASH_FIELD,
    KIND_FIELD,
    LANGUAGE_FIELD,
    TAGS_FIELD,
    BackgroundEmbedder,
    Embedder,
    IndexedPoint,
    VectorStore,
)
from pieces_integration.service_layer._background import BackgroundLoop

log = logging.getLogger(__name__)

ASSET_KIND = "asset"
# MiniLM reads 256 word pieces; more text only costs time.
EMBED_CHARS = 2_000


def asset_title(asset: Asset) -> str:
    return " ".join([asset.name, *asset.tags])


def asset_body(asset: Asset) -> str:
    return "\n".join(part for part in (asset.description, asset.content) if part)


def asset_payload(asset: Asset) -> dict[str, Any]:
    payload: dict[str, Any] = {
        KIND_FIELD: ASSET_KIND,
        HASH_FIELD: asset.content_hash,
        TAGS_FIELD: sorted({tag.strip().lower() for tag in asset.tags if tag.strip()}),
        "source": asset.source.value,
    }
    language = normalise_language(asset.language)
    if language:
        payload[LANGUAGE_FIELD] = language
    return payload


def asset_point(asset: Asset, dense: Sequence[float] | None = None) -> IndexedPoint:
    sparse = sparse_document(document_tokens(asset_title(asset), asset_body(asset)))
    payload = {**asset_payload(asset), EMBEDDED_FIELD: dense is not None}
    return IndexedPoint(
        id=asset.id, user_id=asset.user_id, sparse=sparse, dense=dense, payload=payload
    )


# Tokenising is pure Python: about 3 s for a 1 MiB asset here. Beyond this much text a
# batch's points are built in a worker thread, so the event loop keeps serving meanwhile.
INLINE_TEXT_CHARS = 64 * 1024


async def asset_points(
    assets: Sequence[Asset], dense: Sequence[Sequence[float] | None] | None = None
) -> list[IndexedPoint]:
    vectors = dense if dense is not None else [None] * len(assets)

    def build() -> list[IndexedPoint]:
        return [asset_point(a, v) for a, v in zip(assets, vectors, strict=True)]

    size = sum(len(a.content) + len(a.description or "") for a in assets)
    return build() if size <= INLINE_TEXT_CHARS else await anyio.to_thread.run_sync(build)


def embedding_text(asset: Asset) -> str:
    return semantic_text(asset.name, asset_body(asset))[:EMBED_CHARS]


class SearchIndex:
    """The store and the embedder, plus the write paths every caller shares.

    `opened` is False until the runtime opened the store: writes made by a process that
    does not serve search (a CLI command) skip the fast path and leave the work to the queue.
    """

    def __init__(self, store: VectorStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder
        self.opened = False

    async def open(self) -> None:
        await self.store.open()
        self.opened = True

    async def close(self) -> None:
        if self.opened:
            self.opened = False
            await self.store.close()

    async def index_keywords(self, assets: Sequence[Asset]) -> None:
        if self.opened and assets:
            await self.store.upsert(ASSETS, await asset_points(assets))

    async def remove(self, asset_ids: Sequence[str]) -> None:
        if self.opened and asset_ids:
            await self.store.delete(ASSETS, list(asset_ids))

    async def embed_one(self, text: str) -> list[float]:
        """A query's vector: the embedder's interactive lane, ahead of indexing work."""
        return (await self.embedder.embed([text]))[0]

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Indexing work: the background lane where the embedder has one, so queries that
        arrive meanwhile do not wait for the batch."""
        if isinstance(self.embedder, BackgroundEmbedder):
            return await self.embedder.embed_background(texts)
        return await self.embedder.embed(texts)


class SemanticIndexer(BackgroundLoop):
    """Drains the index queue into the store; use with `async with` (or call `drain`)."""

    def __init__(
        self,
        *,
        index: SearchIndex,
        queue: IndexQueue,
        uow: UnitOfWorkFactory,
        lag_gauge: Any = None,
        batch_size: int = 16,
        settle_seconds: float = 1.0,
        lease_seconds: float = 120.0,
        idle_seconds: float = 1.0,
    ) -> None:
        self.index = index
        self.queue = queue
        self.uow = uow
        self.lag_gauge = lag_gauge
        self.batch_size = batch_size
        self.settle_seconds = settle_seconds
        self.lease_seconds = lease_seconds
        self.idle_seconds = idle_seconds

    async def _loop(self) -> None:
        while True:
            try:
                done = await self.run_once()
            except Exception:
                log.exception("semantic indexer pass failed")
                done = 0
            if done == 0:
                await anyio.sleep(self.idle_seconds)

    async def update_lag(self) -> int:
        depth = await self.queue.depth()
        if self.lag_gauge is not None:
            self.lag_gauge.set(depth)
        return depth

    async def run_once(self, *, settle_seconds: float | None = None) -> int:
        """Process one batch; returns how many tasks were claimed."""
        tasks = await self.queue.claim(
            limit=self.batch_size,
            settle_seconds=self.settle_seconds if settle_seconds is None else settle_seconds,
            lease_seconds=self.lease_seconds,
        )
        if not tasks:
            await self.update_lag()
            return 0
        try:
            await self._process(tasks)
        except Exception as exc:
            attempts = max(t.attempts for t in tasks)
            delay = exponential_backoff(attempts + 1, base=1.0, cap=300.0)  # 2 s, 4 s, ...
            log.warning("indexing %d assets failed (%s); retry in %.0f s", len(tasks), exc, delay)
            await self.queue.retry_later(tasks, delay_seconds=delay)
        else:
            await self.queue.ack(tasks)
        await self.update_lag()
        return len(tasks)

    async def _process(self, tasks: Sequence[IndexTask]) -> None:
        store = self.index.store
        deleted = [t.asset_id for t in tasks if t.operation == DELETE]
        if deleted:
            await store.delete(ASSETS, deleted)
        current: list[Asset] = []
        async with self.uow(readonly=True) as uow:
            for task in tasks:
                if task.operation == DELETE:
                    continue
                asset = await uow.assets.get(task.asset_id)
                # Gone or rewritten since: its own newer queue row (or delete) covers it.
                if asset is not None and asset.content_hash == task.content_hash:
                    current.append(asset)
        if not current:
            return
        vectors = await self.index.embed_documents([embedding_text(a) for a in current])
        await store.upsert(ASSETS, await asset_points(current, vectors))

    async def drain(self, *, max_batches: int = 10_000) -> int:
        """Process everything queued now, ignoring the settle delay (tests, the CLI)."""
        total = 0
        for _ in range(max_batches):
            done = await self.run_once(settle_seconds=0.0)
            if done == 0:
                break
            total += done
        return total
