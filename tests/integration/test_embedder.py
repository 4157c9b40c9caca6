"""The packaged all-MiniLM-L6-v2 loads offline and embeds sensibly (numpy reference; the
service's ONNX runtime through `LocalMiniLMEmbedder`)."""

from __future__ import annotations

import math

import anyio
import pytest

from pieces_integration.adapters.embeddings._blas import blas_threads, limit_blas_threads
from pieces_integration.adapters.embeddings.local import LocalMiniLMEmbedder
from pieces_integration.adapters.embeddings.minilm_numpy import MiniLMEmbedder


@pytest.fixture(scope="module")
def model() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_loads_without_network(monkeypatch: pytest.MonkeyPatch, model: MiniLMEmbedder) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    vectors = MiniLMEmbedder(batch_size=4).encode(["offline"])
    assert vectors.shape == (1, 384)


def test_vectors_are_unit_length_and_order_preserving(model: MiniLMEmbedder) -> None:
    texts = ["short", "a much longer sentence about parsing configuration files", "x"]
    together = model.encode(texts)
    for i, text in enumerate(texts):
        alone = model.encode([text])[0]
        assert math.isclose(float((together[i] ** 2).sum()), 1.0, abs_tol=1e-5)
        assert float(together[i] @ alone) > 0.99999  # batching/padding does not change it
    assert model.encode([]).shape == (0, 384)


def test_known_similarity_relations(model: MiniLMEmbedder) -> None:
    query, same, code, unrelated = model.encode(
        [
            "read settings from a configuration file",
            "load the config file and parse its options",
            "def load_config(path):\n    with open(path) as f:\n        return json.load(f)",
            "the cat sat quietly in the warm afternoon sun",
        ]
    ).tolist()
    assert cosine(query, same) > 0.6
    assert cosine(query, code) > cosine(query, unrelated) + 0.2
    assert cosine(query, unrelated) < 0.2


def test_reference_value_of_the_model(model: MiniLMEmbedder) -> None:
    # Pinned from sentence-transformers on the same weights (bench/check_embedder.py).
    a, b = model.encode(["read a config file", "parse configuration from a file"])
    assert float(a @ b) == pytest.approx(0.7326, abs=2e-3)


@pytest.mark.anyio
async def test_async_embedder_runs_in_a_worker_thread() -> None:
    embedder = LocalMiniLMEmbedder(batch_size=8)
    assert embedder.dimension == 384
    vectors = await embedder.embed(["hello world", "goodbye world"])
    assert len(vectors) == 2 and len(vectors[0]) == 384
    assert await embedder.embed([]) == []


@pytest.mark.anyio
async def test_a_query_returns_before_a_large_indexing_batch_it_arrived_behind() -> None:
    embedder = LocalMiniLMEmbedder()
    body = " ".join(f"value_{i} = compute_checksum(buffer, offset + {i})" for i in range(40))
    documents = [f"def function_{n}(buffer, offset):\n    {body}\n" for n in range(32)]
    query = "compute the checksum of a buffer"
    expected = await embedder.embed([query])  # also loads the model
    finished: list[str] = []

    async def batch() -> None:
        await embedder.embed_background(documents)
        finished.append("batch")

    async with anyio.create_task_group() as tg:
        tg.start_soon(batch)
        await anyio.sleep(0.2)  # the batch is under way (32 x 256 word pieces: seconds)
        vectors = await embedder.embed([query])
        finished.append("query")
    assert finished == ["query", "batch"]
    assert cosine(vectors[0], expected[0]) > 0.99999  # alone both times: same run, same scales
    # The background lane (small chunks, paused between steps) gives the same vectors, up to
    # int8's per-run activation scales.
    alone = await embedder.embed(documents[:2])
    together = await embedder.embed_background(documents[:2])
    assert all(cosine(a, b) > 0.999 for a, b in zip(alone, together, strict=True))


@pytest.mark.anyio
async def test_loading_the_model_runs_numpys_blas_on_one_thread() -> None:
    before = blas_threads()
    if before is None:
        pytest.skip("numpy here does not use OpenBLAS")
    try:
        limit_blas_threads(2)
        await LocalMiniLMEmbedder().embed(["load"])
        assert blas_threads() == 1
    finally:
        limit_blas_threads(before)
