"""An embedder that remembers the vectors of recent interactive texts.

The same search typed again, a query refined back to an earlier one, or a suggestion context
that has not changed cost no forward pass (10-15 ms of CPU each here, the largest part of a
search). Only the interactive lane is cached: documents are embedded once by the indexer.
Vectors are kept as float32 arrays (1.5 KiB each for MiniLM), least recently used first out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from cachetools import LRUCache
from numpy.typing import NDArray

from pieces_integration.ports.vectors import BackgroundEmbedder, Embedder


class CachedEmbedder:
    def __init__(self, inner: Embedder, *, max_entries: int = 4096) -> None:
        self._inner = inner
        self._vectors: LRUCache[str, NDArray[np.float32]] = LRUCache(maxsize=max_entries)
        self.hits = 0
        self.misses = 0

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    @property
    def model_name(self) -> str:
        return self._inner.model_name

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        found: dict[str, NDArray[np.float32]] = {}
        for text in texts:
            vector = self._vectors.get(text)  # a hit becomes the most recently used
            if vector is not None:
                found[text] = vector
        missing = [text for text in dict.fromkeys(texts) if text not in found]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = await self._inner.embed(missing)
            for text, row in zip(missing, fresh, strict=True):
                found[text] = self._vectors[text] = np.asarray(row, dtype=np.float32)
        return [found[text].tolist() for text in texts]

    async def embed_background(self, texts: Sequence[str]) -> list[list[float]]:
        if isinstance(self._inner, BackgroundEmbedder):
            return await self._inner.embed_background(texts)
        return await self._inner.embed(texts)
