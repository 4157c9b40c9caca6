"""`Embedder` port over the in-process numpy MiniLM, off the event loop.

The model loads lazily on first use (in a worker thread: ~0.5 s, 90 MB) so start-up and
processes that never embed stay light. One encode runs at a time: BLAS already spreads a
batch over the cores, and two concurrent batches would only fight over them, so a query
embedding waits for at most one indexing batch (keep indexer batches small, e.g. 16-32).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio

from pieces_integration.adapters.embeddings.minilm_numpy import (
    DIMENSION,
    MODEL_NAME,
    MiniLMEmbedder,
)


class LocalMiniLMEmbedder:
    """all-MiniLM-L6-v2 from the packaged weights; no network, no torch."""

    def __init__(self, model_dir: Path | None = None, *, batch_size: int = 32) -> None:
        self._model_dir = model_dir
        self._batch_size = batch_size
        self._model: MiniLMEmbedder | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._load_lock = anyio.Lock()

    @property
    def dimension(self) -> int:
        return DIMENSION

    @property
    def model_name(self) -> str:
        return MODEL_NAME

    async def _loaded(self) -> MiniLMEmbedder:
        async with self._load_lock:
            if self._model is None:
                self._model = await anyio.to_thread.run_sync(
                    lambda: MiniLMEmbedder(self._model_dir, batch_size=self._batch_size)
                )
            return self._model

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = await self._loaded()
        batch = list(texts)
        vectors = await anyio.to_thread.run_sync(model.encode, batch, limiter=self._limiter)
        rows: list[list[float]] = vectors.tolist()
        return rows
