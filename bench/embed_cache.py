"""Embeddings of the stdlib task, cached under bench/.cache/ so reruns are quick."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

CACHE_DIR = Path(__file__).resolve().parent / ".cache"


def cached_embeddings(kind: str, texts: Sequence[str]) -> NDArray[np.float32]:
    """Embed `texts` with the shipped MiniLM runtime, or load the cached result."""
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    path = CACHE_DIR / f"minilm-{kind}-{len(texts)}-{digest}.npy"
    if path.exists():
        loaded: NDArray[np.float32] = np.load(path)
        return loaded
    from pieces_integration.adapters.embeddings.minilm_numpy import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    started = time.perf_counter()
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    step = 256
    for start in range(0, len(texts), step):
        vectors[start : start + step] = embedder.encode(texts[start : start + step])
        done = min(start + step, len(texts))
        rate = done / (time.perf_counter() - started)
        print(f"  embedded {kind}: {done}/{len(texts)} ({rate:.1f}/s)", flush=True)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors
