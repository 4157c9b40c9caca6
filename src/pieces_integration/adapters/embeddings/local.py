"""`Embedder` port over the in-process MiniLM (ONNX Runtime, int8), off the event loop, with
two lanes.

The model loads lazily on first use (in a worker thread: ~0.3 s, ~35 MB; the first process
after an install without the prebuilt file also builds it, ~15 s, see `onnx_build.py`) so
start-up and processes that never embed stay light. Loading it also sets numpy's OpenBLAS to
one thread (`blas_threads`; see `_blas.py`), and the ONNX session uses one intra-op thread
(`minilm_onnx.py`): each lane then runs on a core of its own.

Interactive lane (`embed`: search queries, suggestion contexts). Requests that arrive while
one is being encoded are grouped: the next batch encodes everything queued so far in one
forward pass (one short query costs ~7-13 ms here; 30 of them together ~250 ms instead of
30 x 10), so 50 concurrent searches do not queue one by one.

Background lane (`embed_background`: the semantic indexer). One batch at a time, encoded in
small chunks, and between the steps of the forward pass (twice per layer) it waits while
any interactive request is queued or running (at most `MAX_BACKGROUND_PAUSE` per step, so a
steady stream of queries slows indexing down but cannot stop it). A query therefore starts
at once, in its own worker thread, and shares the cores with at most the rest of one
background step (a few ms to a few tens of ms on a loaded 2-core machine) instead of waiting
for a whole indexing batch (~0.5-2 s for 16 long functions). Running both lanes' BLAS at
the same time for that short overlap is cheaper than making the query wait.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import anyio
import numpy as np
from numpy.typing import NDArray

from pieces_integration.adapters.embeddings._blas import limit_blas_threads
from pieces_integration.adapters.embeddings.minilm_numpy import DIMENSION, MODEL_NAME
from pieces_integration.adapters.embeddings.minilm_onnx import OnnxMiniLMEmbedder

# Interactive requests grouped into one forward pass at most (texts).
MAX_INTERACTIVE_BATCH = 64
# Texts per forward pass in the background lane: small steps, so it yields quickly.
BACKGROUND_CHUNK = 8
# Longest a background step waits for interactive work to drain: under a steady stream of
# queries the indexer still moves (one step per this long at worst) instead of starving.
MAX_BACKGROUND_PAUSE = 0.25


class EncoderModel(Protocol):
    """What the adapter needs from a model (`OnnxMiniLMEmbedder`, the numpy reference
    `MiniLMEmbedder`, or a stand-in in tests)."""

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        pause: Callable[[], None] | None = None,
    ) -> NDArray[np.float32]: ...


class _InteractiveGate:
    """Counts interactive requests in flight; the background lane waits until there are none.

    Entered and left on the event loop, waited on in the background worker thread.
    """

    def __init__(self, max_pause: float) -> None:
        self._condition = threading.Condition()
        self._active = 0
        self._max_pause = max_pause

    def enter(self) -> None:
        with self._condition:
            self._active += 1

    def leave(self) -> None:
        with self._condition:
            self._active -= 1
            if self._active == 0:
                self._condition.notify_all()

    def wait_idle(self) -> None:
        with self._condition:
            self._condition.wait_for(lambda: not self._active, timeout=self._max_pause)


@dataclass(eq=False, slots=True)
class _Request:
    texts: list[str]
    # Set when the result (or error) is ready, or when this request becomes the leader.
    wake: anyio.Event = field(default_factory=anyio.Event)
    vectors: list[list[float]] | None = None
    error: BaseException | None = None


class LocalMiniLMEmbedder:
    """all-MiniLM-L6-v2 from the packaged weights on ONNX Runtime; no network, no torch."""

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        batch_size: int = 32,
        model: EncoderModel | None = None,
        background_chunk: int = BACKGROUND_CHUNK,
        max_background_pause: float = MAX_BACKGROUND_PAUSE,
        blas_threads: int | None = 1,
    ) -> None:
        self._model_dir = model_dir
        self._blas_threads = blas_threads
        self._batch_size = batch_size
        self._model: EncoderModel | None = model
        self._background_chunk = background_chunk
        self._load_lock = anyio.Lock()
        self._background_limiter = anyio.CapacityLimiter(1)
        self._interactive_limiter = anyio.CapacityLimiter(1)
        self._gate = _InteractiveGate(max_background_pause)
        self._queue: deque[_Request] = deque()
        self._leader: _Request | None = None

    @property
    def dimension(self) -> int:
        return DIMENSION

    @property
    def model_name(self) -> str:
        return MODEL_NAME

    async def _loaded(self) -> EncoderModel:
        async with self._load_lock:
            if self._model is None:
                if self._blas_threads is not None:
                    limit_blas_threads(self._blas_threads)  # see _blas.py: one per lane
                self._model = await anyio.to_thread.run_sync(
                    lambda: OnnxMiniLMEmbedder(self._model_dir, batch_size=self._batch_size)
                )
            return self._model

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Interactive lane: grouped with concurrent requests, ahead of background work."""
        if not texts:
            return []
        model = await self._loaded()
        request = _Request(list(texts))
        self._gate.enter()
        try:
            self._queue.append(request)
            if self._leader is None:
                self._leader = request
            else:
                await self._wait(request)
            if request.vectors is None and request.error is None:
                # The leader: encode one batch (this request is at its front), then hand over.
                # Shielded: the others in the batch must get their vectors even if this
                # request's caller goes away.
                with anyio.CancelScope(shield=True):
                    await self._lead(model)
        finally:
            self._gate.leave()
        if request.error is not None:
            raise request.error
        # bandit B101: narrows a type for mypy; holds by construction, no input reaches it.
        assert request.vectors is not None  # nosec B101
        return request.vectors

    async def _wait(self, request: _Request) -> None:
        try:
            await request.wake.wait()
        except BaseException:
            # Cancelled while queued: leave the queue; if it was just made the leader,
            # pass that on so the requests behind it are not stranded.
            if request in self._queue:
                self._queue.remove(request)
            if self._leader is request:
                self._promote()
            raise

    def _promote(self) -> None:
        self._leader = self._queue[0] if self._queue else None
        if self._leader is not None:
            self._leader.wake.set()

    async def _lead(self, model: EncoderModel) -> None:
        batch: list[_Request] = []
        size = 0
        while self._queue and (
            not batch or size + len(self._queue[0].texts) <= MAX_INTERACTIVE_BATCH
        ):
            request = self._queue.popleft()
            batch.append(request)
            size += len(request.texts)
        texts = [text for request in batch for text in request.texts]
        try:
            matrix = await anyio.to_thread.run_sync(
                model.encode, texts, limiter=self._interactive_limiter
            )
        except Exception as exc:
            for request in batch:
                request.error = exc
        else:
            rows: list[list[float]] = matrix.tolist()
            start = 0
            for request in batch:
                request.vectors = rows[start : start + len(request.texts)]
                start += len(request.texts)
        finally:
            for request in batch:
                if request.vectors is None and request.error is None:  # interrupted
                    request.error = RuntimeError("the embedding was interrupted")
                request.wake.set()
            self._promote()

    async def embed_background(self, texts: Sequence[str]) -> list[list[float]]:
        """Background lane: one batch at a time, pausing whenever an `embed` is waiting."""
        if not texts:
            return []
        model = await self._loaded()
        batch = list(texts)

        def encode() -> NDArray[np.float32]:
            return model.encode(
                batch, batch_size=self._background_chunk, pause=self._gate.wait_idle
            )

        vectors = await anyio.to_thread.run_sync(encode, limiter=self._background_limiter)
        rows: list[list[float]] = vectors.tolist()
        return rows
