"""The int8 ONNX Runtime embedder matches the fp32 model (#18).

Reference: the same weights as an fp32 ONNX graph (exact GELU, as the original model), and
the hand-written numpy forward pass on a smaller sample. Texts: fixed and varied, taken from
this project's own source (docstring lines, code lines of different lengths, short queries).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import onnx
import pytest

import pieces_integration
from pieces_integration.adapters.embeddings.minilm_numpy import MiniLMEmbedder, packaged_model_dir
from pieces_integration.adapters.embeddings.minilm_onnx import OnnxMiniLMEmbedder
from pieces_integration.adapters.embeddings.onnx_build import int8_model
from pieces_integration.adapters.embeddings.onnx_graph import build_graph

TEXTS = 200


def fixed_texts(count: int) -> list[str]:
    """Docstrings (first lines: query-like), whole functions (document-like), sorted paths."""
    root = Path(pieces_integration.__file__).parent
    queries: list[str] = []
    documents: list[str] = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    queries.append(doc.splitlines()[0])
                segment = ast.get_source_segment(source, node)
                if segment:
                    documents.append(segment[:1000])
    half = count // 2
    return (queries[:half] + documents[::2][: count - half])[:count]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    found = fixed_texts(TEXTS)
    assert len(found) == TEXTS
    return found


@pytest.fixture(scope="module")
def int8() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder()


def test_int8_vectors_match_the_fp32_model(
    tmp_path_factory: pytest.TempPathFactory, texts: list[str], int8: OnnxMiniLMEmbedder
) -> None:
    fp32_path = tmp_path_factory.mktemp("fp32") / "fp32.onnx"
    onnx.save_model(build_graph(packaged_model_dir()), str(fp32_path))
    reference = OnnxMiniLMEmbedder(model_path=fp32_path).encode(texts)
    vectors = int8.encode(texts)
    assert vectors.shape == (TEXTS, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (reference * vectors).sum(axis=1)
    assert cosines.min() >= 0.99, f"worst text: {texts[int(cosines.argmin())][:80]!r}"
    assert cosines.mean() >= 0.995


def test_int8_vectors_match_the_numpy_reference(texts: list[str], int8: OnnxMiniLMEmbedder) -> None:
    sample = texts[::10]  # numpy's forward pass is slow; 20 texts of both kinds
    cosines = (MiniLMEmbedder().encode(sample) * int8.encode(sample)).sum(axis=1)
    assert cosines.min() >= 0.99


def test_known_relations_hold_in_int8(int8: OnnxMiniLMEmbedder) -> None:
    a, b, c = int8.encode(
        ["read a config file", "parse configuration from a file", "the cat sat on the mat"]
    )
    # sentence-transformers gives 0.7326 for the first pair (bench/check_embedder.py).
    assert float(a @ b) == pytest.approx(0.7326, abs=0.02)
    assert float(a @ b) > float(a @ c) + 0.3


def test_order_and_empty_input(int8: OnnxMiniLMEmbedder) -> None:
    assert int8.encode([]).shape == (0, 384)
    texts = ["short", "a much longer text " * 30, "medium length text here"]
    together = int8.encode(texts)
    alone = np.stack([int8.encode([t])[0] for t in texts])
    # Activations are quantized per run (one scale per tensor), so a text's batch companions
    # move it slightly: a short text padded beside a long one the most.
    assert ((together * alone).sum(axis=1) > 0.98).all()


def test_the_model_file_is_built_once_and_reused(tmp_path: Path) -> None:
    first = int8_model(packaged_model_dir(), tmp_path)
    stamp = first.stat().st_mtime_ns
    assert int8_model(packaged_model_dir(), tmp_path) == first
    assert first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.glob("*.partial")] == []
