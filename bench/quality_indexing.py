"""Quality while the semantic tier fills: MRR@10 at 0/25/50/100 % of documents embedded (#18).

    .venv/bin/python bench/quality_indexing.py            # stdlib, sqlalchemy, pydantic

Three corpora of the same docstring -> function task (`stdlib_corpus.py`): the Python
standard library (3,000 functions; the tuning corpus), SQLAlchemy (1,500) and pydantic (600),
both from this project's own environment. A fixed-seed subset of each corpus has vectors; the
rest is only in the keyword tier, as while the indexer is still working through a library.
Rows: the keyword tier alone; one fused score for everything (as before #18: an asset without
a vector takes `dense_floor` as its cosine); the shipped order (`ranking.fuse_within_embedded`:
keyword places, embedded places refilled in hybrid order). Test queries of every corpus.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pieces_integration.domain.ranking import (
    DEFAULT_FUSION,
    HybridFusion,
    fuse_scores,
    fuse_within_embedded,
)
from quality_stdlib import Ranker, Scores, evaluate
from stdlib_corpus import Task, build_package_task, build_task

FRACTIONS = (0.0, 0.25, 0.5, 1.0)


def partial_ranker(
    scores: Scores, fraction: float, fusion: HybridFusion = DEFAULT_FUSION, *, within: bool = True
) -> Ranker:
    """Hybrid ranking when only `fraction` of the corpus (fixed seed) has vectors."""
    count = len(scores.ids)
    embedded = set(random.Random(7).sample(range(count), round(fraction * count)))
    unembedded = {scores.ids[i] for i in range(count) if i not in embedded}
    blocked = np.array([i not in embedded for i in range(count)])

    def rank(q: int) -> list[str]:
        row = np.where(blocked, -np.inf, scores.cosines[q])
        limit = min(fusion.prefetch_limit, len(embedded))
        top = np.argpartition(-row, limit - 1)[:limit] if limit else []
        dense = {scores.ids[i]: float(row[i]) for i in top}
        sparse = scores.sparse_top(q, fusion.prefetch_limit)
        hybrid = [key for key, _ in fuse_scores(dense, sparse, fusion, limit=100)]
        if not within or len(embedded) == count:
            return hybrid[:10]
        embedded_keys = {k for k in hybrid if k not in unembedded} | set(dense)
        return fuse_within_embedded(list(sparse), hybrid, embedded_keys)[:10]

    return rank


def report(name: str, task: Task) -> dict[str, float]:
    scores = Scores(task)
    keyword = evaluate(scores, task.test, scores.bm25_rank)[0]
    print(f"\n{name}: {len(task.corpus)} functions, {len(task.test)} test queries")
    print(f"{'method':34}" + "".join(f"{f:>8.0%}" for f in FRACTIONS))
    print(f"{'keyword tier alone':34}" + f"{keyword:8.3f}" * len(FRACTIONS))
    measured: dict[str, float] = {"keyword": keyword}
    for label, within in (("hybrid, one fused score (before)", False), ("hybrid shipped", True)):
        row = [
            evaluate(scores, task.test, partial_ranker(scores, f, within=within))[0]
            for f in FRACTIONS
        ]
        print(f"{label:34}" + "".join(f"{m:8.3f}" for m in row))
        if label == "hybrid shipped":
            measured.update({f"{f:.2f}": m for f, m in zip(FRACTIONS, row, strict=True)})
    return measured


def corpora() -> list[tuple[str, Task]]:
    return [
        ("stdlib (tuning corpus)", build_task()),
        ("sqlalchemy", build_package_task("sqlalchemy")),
        ("pydantic", build_package_task("pydantic")),
    ]


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    for name, task in corpora():
        report(name, task)
    print(f"\nshipped fusion: {DEFAULT_FUSION}")


if __name__ == "__main__":
    main()
