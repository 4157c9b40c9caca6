"""While the semantic tier fills, hybrid search ranks no worse than the keyword tier (#18).

A fixed corpus (functions of this project's own source, docstrings cut out; the query is
the docstring's first sentence; frozen in `data/`, see `no_dip_corpus.py`) is put into the
embedded qdrant-edge store, keyword points for all and vectors for a fixed-seed
0 / 25 / 50 / 100 % of them, and the same fixed queries run through the shipped hybrid query
and through the keyword tier alone.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from pieces_integration.adapters.embeddings.minilm_onnx import OnnxMiniLMEmbedder
from pieces_integration.adapters.vectors.qdrant_edge import QdrantEdgeVectorStore
from pieces_integration.domain.bm25 import document_tokens, sparse_document, sparse_query
from pieces_integration.domain.ranking import DEFAULT_FUSION
from pieces_integration.domain.tokenize import semantic_text, tokenize
from pieces_integration.ports.vectors import (
    ASSETS,
    EMBEDDED_FIELD,
    IndexedPoint,
    SearchFilter,
    VectorHit,
)
from pieces_integration.service_layer.search import merge_while_indexing
from tests.integration.no_dip_corpus import CORPUS, load

USER = "reader"


def mrr(results: dict[str, list[VectorHit]]) -> float:
    total = 0.0
    for key, hits in results.items():
        ranked = [hit.id for hit in hits[:10]]
        total += 1.0 / (ranked.index(key) + 1) if key in ranked else 0.0
    return total / len(results)


@pytest.mark.anyio
async def test_hybrid_is_never_worse_than_keywords_while_indexing(tmp_path: Path) -> None:
    items = load()
    assert len(items) == CORPUS
    model = OnnxMiniLMEmbedder()
    documents = model.encode([semantic_text(name, doc)[:2000] for _, name, doc, _ in items])
    queries = model.encode([query for *_, query in items])
    keyword_points = [
        IndexedPoint(
            key, USER, sparse_document(document_tokens(name, doc)), payload={EMBEDDED_FIELD: False}
        )
        for key, name, doc, _ in items
    ]
    order = list(range(CORPUS))
    random.Random(7).shuffle(order)
    flt = SearchFilter(user_id=USER)
    measured: dict[float, tuple[float, float]] = {}
    for fraction in (0.0, 0.25, 0.5, 1.0):
        store = QdrantEdgeVectorStore(tmp_path / f"f{fraction}")
        await store.open()
        try:
            await store.upsert(ASSETS, keyword_points)
            embedded = order[: round(fraction * CORPUS)]
            await store.upsert(
                ASSETS,
                [
                    replace(
                        keyword_points[i],
                        dense=documents[i].tolist(),
                        payload={EMBEDDED_FIELD: True},
                    )
                    for i in embedded
                ],
            )
            assert await store.count_dense(ASSETS, USER) == len(embedded)
            hybrid: dict[str, list[VectorHit]] = {}
            keyword: dict[str, list[VectorHit]] = {}
            for i, (key, *_, query) in enumerate(items):
                sparse = sparse_query(tokenize(query))
                keyword[key] = await store.query_sparse(ASSETS, sparse, flt, 10)
                fused = await store.query_hybrid(
                    ASSETS, queries[i].tolist(), sparse, flt, 10, DEFAULT_FUSION
                )
                # What SearchService does while the user's tier is incomplete.
                complete = len(embedded) == CORPUS
                hybrid[key] = (
                    fused if complete else merge_while_indexing(keyword[key], fused, DEFAULT_FUSION)
                )
        finally:
            await store.close()
        measured[fraction] = (mrr(hybrid), mrr(keyword))
    for hybrid_mrr, keyword_mrr in measured.values():
        assert hybrid_mrr >= keyword_mrr, measured
    # Once complete the vectors help, as before #18 (frozen corpus: keywords 0.651, hybrid 0.680).
    assert measured[1.0][0] > measured[1.0][1] + 0.02, measured
