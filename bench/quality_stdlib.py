"""Quality benchmark: docstring -> function retrieval over the Python standard library.

    .venv/bin/python bench/quality_stdlib.py            # table for the 1,000 test queries
    .venv/bin/python bench/quality_stdlib.py --no-store # skip the run through qdrant-edge

Task (see `stdlib_corpus.py`): 3,000 stdlib functions with their docstrings cut out; the
query is a docstring's first sentence; fixed seed. Queries are split in two disjoint sets:
500 *tune* queries, on which the fusion parameters are searched, and 1,000 *test* queries,
on which every number in the table is measured. The shipped parameters
(`ranking.DEFAULT_FUSION`) come from the tune-split search: the grid's best goes on growing
alpha and saturation together (the fusion wants BM25 near-linear), and the shipped point is
within 0.002 MRR@10 of it on the tune split while keeping the keyword contribution bounded
(at most alpha = 1.0). The table also prints what the search picks on this run.

Rows:
  name/tag overlap   query terms shared with the function's name and module
  BM25               exact BM25 (`Bm25Index`) over identifier-aware code tokens; the
                     shipped keyword tier also counts the name twice (`document_tokens`)
  vector             all-MiniLM-L6-v2 (numpy runtime) cosine; documents embedded as
                     `semantic_text(name, code)` ("create socket: def createSocket...")
  RRF (k=60)         plain equal-weight reciprocal-rank fusion of BM25 and vector
  hybrid (python)    shipped fusion computed here over the two top-100 lists
  hybrid (edge)      the same query run end to end through the qdrant-edge adapter
                     (sparse BM25 vectors with IDF in the engine + dense, one formula query)

Embeddings are cached in bench/.cache/ (first run: a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from embed_cache import cached_embeddings
from pieces_integration.domain.bm25 import Bm25Index, document_tokens
from pieces_integration.domain.ranking import (
    DEFAULT_FUSION,
    HybridFusion,
    fuse_scores,
    reciprocal_rank_fusion,
)
from pieces_integration.domain.tokenize import semantic_text, tokenize
from stdlib_corpus import Function, Task, build_task

PREFETCH = DEFAULT_FUSION.prefetch_limit


def document_texts(task: Task) -> list[str]:
    """What the semantic tier embeds: the name spelled out as words, then the code."""
    return [semantic_text(f.name, f.document) for f in task.corpus]


Ranker = Callable[[int], list[str]]  # query index in the corpus -> ranked ids


class Scores:
    """Dense and BM25 scores of each query against the corpus, computed once."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.ids = [f.id for f in task.corpus]
        query_vectors = cached_embeddings("queries", [f.query for f in task.corpus])
        document_vectors = cached_embeddings("documents", document_texts(task))
        self.cosines = query_vectors @ document_vectors.T
        self.bm25 = Bm25Index()
        self.bm25_plain = Bm25Index()
        started = time.perf_counter()
        for function in task.corpus:
            self.bm25.add_tokens(function.id, document_tokens(function.name, function.document))
        self.bm25_rate = len(task.corpus) / (time.perf_counter() - started)
        for function in task.corpus:
            self.bm25_plain.add(function.id, function.document)
        self.position = {f.id: i for i, f in enumerate(task.corpus)}
        self._sparse_cache: dict[int, dict[str, float]] = {}
        self.name_terms = [
            set(tokenize(f.name)) | set(tokenize(f.module.replace(".", " "))) for f in task.corpus
        ]

    def dense_top(self, q: int, limit: int = PREFETCH) -> dict[str, float]:
        row = self.cosines[q]
        top = np.argpartition(-row, limit)[:limit]
        return {self.ids[i]: float(row[i]) for i in top}

    def sparse_all(self, q: int) -> dict[str, float]:
        if q not in self._sparse_cache:
            self._sparse_cache[q] = self.bm25.scores(self.task.corpus[q].query)
        return self._sparse_cache[q]

    def sparse_top(self, q: int, limit: int = PREFETCH) -> dict[str, float]:
        ranked = sorted(self.sparse_all(q).items(), key=lambda kv: (-kv[1], kv[0]))
        return dict(ranked[:limit])

    # rankers ---------------------------------------------------------------------------
    def name_overlap(self, q: int) -> list[str]:
        terms = set(tokenize(self.task.corpus[q].query))
        scored = [(len(terms & names), i) for i, names in enumerate(self.name_terms)]
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [self.ids[i] for score, i in scored[:10] if score > 0]

    def bm25_rank(self, q: int) -> list[str]:
        return list(self.sparse_top(q, 10))

    def bm25_plain_rank(self, q: int) -> list[str]:
        return [key for key, _ in self.bm25_plain.search(self.task.corpus[q].query, 10)]

    def vector_rank(self, q: int) -> list[str]:
        top = self.dense_top(q, 10)
        return sorted(top, key=lambda key: (-top[key], key))

    def rrf_rank(self, q: int) -> list[str]:
        dense = self.dense_top(q)
        sparse = self.sparse_top(q)
        rankings = [sorted(dense, key=lambda k: -dense[k]), list(sparse)]
        return [key for key, _ in reciprocal_rank_fusion(rankings, k=60)]

    def weighted_rrf_rank(self, k: float, dense_weight: float) -> Ranker:
        def rank(q: int) -> list[str]:
            dense = self.dense_top(q)
            rankings = [sorted(dense, key=lambda key: -dense[key]), list(self.sparse_top(q))]
            weights = [dense_weight, 1.0 - dense_weight]
            return [key for key, _ in reciprocal_rank_fusion(rankings, k=k, weights=weights)]

        return rank

    def hybrid_rank(self, fusion: HybridFusion) -> Ranker:
        def rank(q: int) -> list[str]:
            dense = self.dense_top(q, fusion.prefetch_limit)
            sparse = self.sparse_top(q, fusion.prefetch_limit)
            return [key for key, _ in fuse_scores(dense, sparse, fusion, limit=10)]

        return rank


def evaluate(scores: Scores, queries: Sequence[Function], ranker: Ranker) -> tuple[float, ...]:
    reciprocal = hits1 = hits10 = 0.0
    for function in queries:
        ranked = ranker(scores.position[function.id])[:10]
        if function.id in ranked:
            rank = ranked.index(function.id) + 1
            reciprocal += 1.0 / rank
            hits1 += rank == 1
            hits10 += 1
    n = len(queries)
    return reciprocal / n, hits1 / n, hits10 / n


def tune(scores: Scores) -> tuple[HybridFusion, float]:
    """Grid search on the tune split only."""
    best = (DEFAULT_FUSION, -1.0)
    grid = itertools.product(
        (0.3, 0.5, 0.8, 1.0, 1.5, 2.0),  # alpha
        (8.0, 16.0, 32.0, 64.0, 128.0),  # saturation
        (0.0, 0.1, 0.2),  # dense floor
    )
    for alpha, saturation, floor in grid:
        fusion = HybridFusion(alpha=alpha, saturation=saturation, dense_floor=floor)
        mrr = evaluate(scores, scores.task.tune, scores.hybrid_rank(fusion))[0]
        if mrr > best[1]:
            best = (fusion, mrr)
    return best


def tune_rrf(scores: Scores) -> tuple[float, float]:
    """Best (k, dense weight) of weighted RRF on the tune split: the strongest rank fusion."""
    grid = itertools.product((1.0, 5.0, 10.0, 20.0, 60.0), (0.5, 0.6, 0.7, 0.8, 0.9))
    return max(
        grid,
        key=lambda kw: evaluate(scores, scores.task.tune, scores.weighted_rrf_rank(*kw))[0],
    )


async def edge_ranker(scores: Scores) -> tuple[Ranker, float]:
    """Index the corpus in qdrant-edge through the shipped adapter and query it."""
    from pieces_integration.adapters.vectors.qdrant_edge import QdrantEdgeVectorStore
    from pieces_integration.domain.bm25 import sparse_document, sparse_query
    from pieces_integration.ports.vectors import ASSETS, IndexedPoint, SearchFilter

    document_vectors = cached_embeddings("documents", document_texts(scores.task))
    query_vectors = cached_embeddings("queries", [f.query for f in scores.task.corpus])
    directory = tempfile.mkdtemp(prefix="quality-edge-")
    store = QdrantEdgeVectorStore(Path(directory))
    await store.open()
    started = time.perf_counter()
    points = [
        IndexedPoint(
            id=f.id,
            user_id="bench",
            sparse=sparse_document(document_tokens(f.name, f.document)),
            dense=document_vectors[i].tolist(),
            payload={"language": "python"},
        )
        for i, f in enumerate(scores.task.corpus)
    ]
    await store.upsert(ASSETS, points)
    rate = len(points) / (time.perf_counter() - started)
    results: dict[int, list[str]] = {}
    flt = SearchFilter(user_id="bench")
    for function in [*scores.task.test]:
        q = scores.position[function.id]
        hits = await store.query_hybrid(
            ASSETS,
            dense=query_vectors[q].tolist(),
            sparse=sparse_query(tokenize(function.query)),
            search_filter=flt,
            limit=10,
            fusion=DEFAULT_FUSION,
        )
        results[q] = [hit.id for hit in hits]
    await store.close()
    return (lambda q: results[q]), rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-store", action="store_true", help="skip the qdrant-edge run")
    args = parser.parse_args()
    started = time.perf_counter()
    task = build_task()
    scores = Scores(task)
    tuned, tuned_mrr = tune(scores)
    rrf_k, rrf_weight = tune_rrf(scores)
    rows: list[tuple[str, Ranker]] = [
        ("name/tag overlap", scores.name_overlap),
        ("BM25, code tokens", scores.bm25_plain_rank),
        ("BM25, name x2 + code tokens", scores.bm25_rank),
        ("vector (MiniLM-L6-v2)", scores.vector_rank),
        ("plain RRF k=60", scores.rrf_rank),
        (
            f"weighted RRF k={rrf_k:g} w={rrf_weight:g} (tuned)",
            scores.weighted_rrf_rank(rrf_k, rrf_weight),
        ),
        ("hybrid shipped (python)", scores.hybrid_rank(DEFAULT_FUSION)),
    ]
    edge_rate = None
    if not args.no_store:
        ranker, edge_rate = asyncio.run(edge_ranker(scores))
        rows.append(("hybrid shipped (qdrant-edge)", ranker))
    print()
    print(
        f"corpus {len(task.corpus)} functions, {len(task.test)} test queries, "
        f"{len(task.tune)} tune queries (seed fixed), fingerprint {task.fingerprint()}"
    )
    print(f"{'method':34} {'MRR@10':>7} {'R@1':>7} {'R@10':>7}")
    for name, ranker in rows:
        mrr, r1, r10 = evaluate(scores, task.test, ranker)
        print(f"{name:34} {mrr:7.3f} {r1:7.3f} {r10:7.3f}")
    print()
    print(f"shipped fusion : {DEFAULT_FUSION}")
    print(f"tune-split best: {tuned} (tune MRR@10 {tuned_mrr:.3f})")
    print(f"BM25 in-memory indexing: {scores.bm25_rate:,.0f} functions/s")
    if edge_rate is not None:
        print(f"qdrant-edge upsert (dense+sparse, incl. tokenising): {edge_rate:,.0f} points/s")
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
