"""The query-embedding cache: repeated texts cost no forward pass; documents pass through."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pieces_integration.adapters.embeddings.cached import CachedEmbedder
from pieces_integration.ports.vectors import BackgroundEmbedder

pytestmark = pytest.mark.anyio


class CountingEmbedder:
    dimension = 2
    model_name = "counting"

    def __init__(self) -> None:
        self.interactive: list[list[str]] = []
        self.background: list[list[str]] = []

    @staticmethod
    def _vector(text: str) -> list[float]:
        return [float(len(text)), 0.5]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.interactive.append(list(texts))
        return [self._vector(t) for t in texts]

    async def embed_background(self, texts: Sequence[str]) -> list[list[float]]:
        self.background.append(list(texts))
        return [self._vector(t) for t in texts]


async def test_a_repeated_text_is_not_embedded_again() -> None:
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner)
    assert await cached.embed(["abc"]) == [[3.0, 0.5]]
    assert await cached.embed(["abc"]) == [[3.0, 0.5]]
    # Only what is missing goes to the model, once even when repeated in one call.
    assert await cached.embed(["abc", "hello", "hello"]) == [[3.0, 0.5], [5.0, 0.5], [5.0, 0.5]]
    assert inner.interactive == [["abc"], ["hello"]]
    assert (cached.hits, cached.misses) == (3, 2)  # texts answered without the model


async def test_least_recently_used_texts_leave_first() -> None:
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, max_entries=2)
    await cached.embed(["a"])
    await cached.embed(["bb"])
    await cached.embed(["a"])  # "a" is now the most recent
    await cached.embed(["ccc"])  # evicts "bb"
    await cached.embed(["a", "bb"])
    assert inner.interactive == [["a"], ["bb"], ["ccc"], ["bb"]]


async def test_returned_vectors_are_copies() -> None:
    cached = CachedEmbedder(CountingEmbedder())
    first = (await cached.embed(["abc"]))[0]
    first[0] = 99.0
    assert (await cached.embed(["abc"]))[0] == [3.0, 0.5]


async def test_documents_use_the_background_lane_uncached() -> None:
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner)
    assert isinstance(cached, BackgroundEmbedder)
    await cached.embed_background(["doc"])
    await cached.embed_background(["doc"])
    assert inner.background == [["doc"], ["doc"]] and inner.interactive == []
