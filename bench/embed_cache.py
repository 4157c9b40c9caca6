"""Embeddings of the stdlib task, cached under bench/.cache/ so reruns are quick."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

CACHE_DIR = Path(__file__).resolve().parent / ".cache"


def runtime() -> str:
    """BENCH_EMBEDDER: `onnx` (the shipped int8 ONNX Runtime model, the default), `numpy`
    (the fp32 reference forward pass) or `sentence-transformers` (needs torch)."""
    return os.environ.get("BENCH_EMBEDDER", "onnx")


def _encoder() -> Callable[[list[str]], NDArray[np.float32]]:
    """The chosen runtime. sentence-transformers (run from an environment that has torch) is
    the reference implementation and gives the numpy runtime's vectors (bench/check_embedder.py:
    cosine >= 0.99999)."""
    if runtime() == "onnx":
        from pieces_integration.adapters.embeddings.minilm_onnx import OnnxMiniLMEmbedder

        return OnnxMiniLMEmbedder(threads=2).encode
    if runtime() == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        from pieces_integration.adapters.embeddings.minilm_numpy import packaged_model_dir

        model = SentenceTransformer(str(packaged_model_dir()), device="cpu")
        return lambda batch: np.asarray(
            model.encode(batch, batch_size=32, normalize_embeddings=True), dtype=np.float32
        )
    from pieces_integration.adapters.embeddings.minilm_numpy import MiniLMEmbedder

    return MiniLMEmbedder().encode


def cached_embeddings(kind: str, texts: Sequence[str]) -> NDArray[np.float32]:
    """Embed `texts` with the chosen MiniLM runtime, or load the cached result."""
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    name = "minilm" if runtime() in ("numpy", "sentence-transformers") else f"minilm-{runtime()}"
    path = CACHE_DIR / f"{name}-{kind}-{len(texts)}-{digest}.npy"
    if path.exists():
        loaded: NDArray[np.float32] = np.load(path)
        return loaded
    encode = _encoder()
    started = time.perf_counter()
    vectors = np.zeros((len(texts), 384), dtype=np.float32)
    step = 256
    for start in range(0, len(texts), step):
        vectors[start : start + step] = encode(list(texts[start : start + step]))
        done = min(start + step, len(texts))
        rate = done / (time.perf_counter() - started)
        print(f"  embedded {kind}: {done}/{len(texts)} ({rate:.1f}/s)", flush=True)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors
