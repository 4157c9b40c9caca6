"""all-MiniLM-L6-v2 on ONNX Runtime, int8 (the service's embedder).

Same vectors as `minilm_numpy` (the fp32 reference: cosine >= 0.99 on fixed texts, see
tests/integration/test_onnx_embedder.py) at a fraction of its cost: int8 MatMuls on VNNI /
AVX2 and fused kernels instead of a dozen numpy temporaries per layer, and a quarter of the
weight memory (~23 MB instead of 90 MB).

Threads, deliberately: one intra-op thread per call and no spinning. The embedder already
runs two lanes (queries, indexing) in worker threads of their own, so each call gets a core
and does not wait for ORT's pool threads spinning on cores the event loop or the other lane
hold (the same measurements as `_blas.py`). `threads` raises it for a process that only
embeds (e.g. a bench).

Batches are bucketed by length: texts are sorted longest first and cut so no batch holds
more than `MAX_BATCH_TOKENS` padded word pieces, so little compute goes to padding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from tokenizers import Tokenizer

from pieces_integration.adapters.embeddings.minilm_numpy import (
    DIMENSION,
    MAX_SEQ_LENGTH,
    MODEL_NAME,
    packaged_model_dir,
)
from pieces_integration.adapters.embeddings.onnx_build import int8_model

Matrix = NDArray[np.float32]

# Padded word pieces per run at most (texts x longest): keeps the attention scores of one
# run small (cache-resident), and a background batch yields between runs.
MAX_BATCH_TOKENS = 2048
OUTPUT = "pooled"  # onnx_graph.OUTPUT (not imported: that module needs `onnx`)


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Shapes vary with every batch: an arena would keep the largest batch's buffers forever.
    options.enable_cpu_mem_arena = False
    # No pre-packed copies of the weights: measured here (48 long stdlib functions, one
    # thread) 41 MB instead of 59 MB for the session and 18 docs/s instead of 13-15.
    options.add_session_config_entry("session.disable_prepacking", "1")
    return options


class OnnxMiniLMEmbedder:
    """`encode(texts) -> (n, 384) float32`, rows L2-normalised; thread-safe, GIL released."""

    dimension = DIMENSION
    name = MODEL_NAME

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        batch_size: int = 32,
        threads: int = 1,
        model_path: Path | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        directory = model_dir if model_dir is not None else packaged_model_dir()
        path = model_path if model_path is not None else int8_model(directory, cache_dir)
        self._batch_size = batch_size
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        self._tokenizer.no_padding()
        self._session = ort.InferenceSession(
            str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        pause: Callable[[], None] | None = None,
    ) -> Matrix:
        """Embed `texts` in input order. `pause`, if given, runs before each batch (the
        background lane passes one that waits while queries are being answered)."""
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        size = batch_size or self._batch_size
        ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        start = 0
        while start < len(order):
            longest = max(1, len(ids[order[start]]))
            chunk = order[start : start + max(1, min(size, MAX_BATCH_TOKENS // longest))]
            if pause is not None:
                pause()
            out[chunk] = self._run([ids[i] for i in chunk])
            start += len(chunk)
        return out

    def _run(self, batch: list[list[int]]) -> Matrix:
        length = max(len(row) for row in batch)
        token_ids = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.int64)
        for row, pieces in enumerate(batch):
            token_ids[row, : len(pieces)] = pieces
            mask[row, : len(pieces)] = 1
        (pooled,) = self._session.run([OUTPUT], {"input_ids": token_ids, "attention_mask": mask})
        vectors = np.asarray(pooled, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        result: Matrix = vectors / np.maximum(norms, 1e-12)
        return result
