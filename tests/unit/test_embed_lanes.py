"""The local embedder's two lanes: queries never wait for an indexing batch; concurrent
queries share one forward pass; cancellation and errors strand no one.

A scripted model stands in for MiniLM: each text costs a number of short sleeps, with the
`pause` hook called between them as the real forward pass does between its steps. The
assertions compare the order in which things finish, not absolute times.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import anyio
import numpy as np
import pytest
from numpy.typing import NDArray

from pieces_integration.adapters.embeddings.local import LocalMiniLMEmbedder

pytestmark = pytest.mark.anyio

STEP = 0.005


def vector_of(text: str) -> list[float]:
    row = [0.0] * 8
    row[sum(map(ord, text)) % 8] = 1.0
    row[len(text) % 8] += 1.0
    norm = float(np.linalg.norm(row))
    return [float(np.float32(v / norm)) for v in row]


class ScriptedModel:
    """`doc ...` texts cost `doc_steps` steps, `slow ...` ten, anything else one step."""

    def __init__(self, doc_steps: int = 20, fail_on: str | None = None) -> None:
        self.doc_steps = doc_steps
        self.fail_on = fail_on
        self.calls: list[list[str]] = []
        self.called = threading.Event()
        self.background_started = threading.Event()
        self.background_steps = 0

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        pause: Callable[[], None] | None = None,
    ) -> NDArray[np.float32]:
        self.calls.append(list(texts))
        self.called.set()
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError("model failure")
        rows = []
        for text in texts:
            steps = 10 if text.startswith("slow") else 1
            for _ in range(self.doc_steps if text.startswith("doc") else steps):
                if pause is not None:
                    self.background_started.set()
                    pause()
                    self.background_steps += 1
                time.sleep(STEP)
            rows.append(vector_of(text))
        return np.array(rows, dtype=np.float32)


async def test_a_query_returns_while_a_large_indexing_batch_is_still_running() -> None:
    model = ScriptedModel()
    embedder = LocalMiniLMEmbedder(model=model)
    finished: list[str] = []

    async def batch() -> None:
        await embedder.embed_background([f"doc {i}" for i in range(16)])  # ~1.6 s
        finished.append("batch")

    async with anyio.create_task_group() as tg:
        tg.start_soon(batch)
        await anyio.to_thread.run_sync(model.background_started.wait)
        vectors = await embedder.embed(["how to read a file"])
        finished.append("query")
    assert finished == ["query", "batch"]
    assert vectors == [vector_of("how to read a file")]


async def test_the_batch_holds_still_while_queries_are_being_encoded() -> None:
    model = ScriptedModel()
    embedder = LocalMiniLMEmbedder(model=model)

    async def batch() -> None:
        await embedder.embed_background([f"doc {i}" for i in range(8)])

    async with anyio.create_task_group() as tg:
        tg.start_soon(batch)
        await anyio.to_thread.run_sync(model.background_started.wait)
        before = model.background_steps
        for _ in range(5):
            await embedder.embed(["slow query"])  # 10 steps each
        during = model.background_steps - before
    # Only the step under way when a query arrived ran alongside it (about one per query);
    # without the gate the batch would have run on for ~50 steps meanwhile.
    assert during <= 10


async def test_a_steady_stream_of_queries_slows_the_batch_but_cannot_stop_it() -> None:
    model = ScriptedModel(doc_steps=5)
    embedder = LocalMiniLMEmbedder(model=model, max_background_pause=0.02)
    done = anyio.Event()

    async def batch() -> None:
        await embedder.embed_background([f"doc {i}" for i in range(4)])
        done.set()

    async def stream() -> None:
        while not done.is_set():
            await embedder.embed(["q"])

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(batch)
            for _ in range(3):
                tg.start_soon(stream)
    assert done.is_set()


async def test_concurrent_queries_share_forward_passes_and_get_their_own_vectors() -> None:
    model = ScriptedModel()
    embedder = LocalMiniLMEmbedder(model=model)
    results: dict[int, list[list[float]]] = {}

    async def one(i: int) -> None:
        results[i] = await embedder.embed([f"query {i}", f"other {i}"])

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(one, i)
    for i in range(20):
        assert results[i] == [vector_of(f"query {i}"), vector_of(f"other {i}")]
    assert len(model.calls) < 20  # grouped, not one pass per request


async def test_a_cancelled_caller_strands_no_one() -> None:
    model = ScriptedModel()
    embedder = LocalMiniLMEmbedder(model=model)
    results: dict[str, list[list[float]]] = {}

    async def one(text: str, scope: anyio.CancelScope) -> None:
        with scope:
            results[text] = await embedder.embed([text])

    leader, waiting, queued = anyio.CancelScope(), anyio.CancelScope(), anyio.CancelScope()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, "doc leader", leader)  # 20 steps
            await anyio.to_thread.run_sync(model.called.wait)  # the leader's pass is under way
            tg.start_soon(one, "waiting, then cancelled", waiting)
            tg.start_soon(one, "queued", queued)
            await anyio.sleep(0.01)
            waiting.cancel()
            leader.cancel()  # mid-pass: the pass completes, and leadership moves on
        assert await embedder.embed(["after"]) == [vector_of("after")]
    assert results["queued"] == [vector_of("queued")]
    assert "waiting, then cancelled" not in results


async def test_a_model_error_reaches_every_caller_in_the_batch_and_the_lane_recovers() -> None:
    model = ScriptedModel(fail_on="bad")
    embedder = LocalMiniLMEmbedder(model=model)
    errors: list[BaseException] = []

    async def one(text: str) -> None:
        try:
            await embedder.embed([text])
        except RuntimeError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, "first")  # leads alone
        await anyio.to_thread.run_sync(model.called.wait)
        tg.start_soon(one, "bad")
        tg.start_soon(one, "grouped with bad")
    assert len(errors) == 2
    assert await embedder.embed(["fine"]) == [vector_of("fine")]
