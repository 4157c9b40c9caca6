"""Keyword-tier indexing speed: assets/s from Asset objects to sparse points in the
embedded store (tokenize, BM25 weights, upsert), one per call (API writes) and in batches
(sync imports commit in batches). Target: >= 1,000 assets/s on 2 cores.

    .venv/bin/python bench/keyword_index.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pieces_integration.adapters.vectors.qdrant_edge import QdrantEdgeVectorStore
from pieces_integration.domain.model import Asset, new_id
from pieces_integration.service_layer.indexer import SearchIndex

SNIPPET = '''def fetch_{i}(session, url, retries=3):
    """Fetch {i} with exponential backoff and a JSON body."""
    for attempt in range(retries):
        response = session.get(url, timeout=5)
        if response.status_code == 200:
            return response.json()
        time.sleep(2 ** attempt)
    raise RuntimeError("gave up on " + url)
'''


class NoEmbedder:
    dimension = 384
    model_name = "none"

    async def embed(self, texts: object) -> list[list[float]]:
        raise AssertionError("the keyword tier never embeds")


def assets(n: int) -> list[Asset]:
    return [
        Asset(
            id=new_id(),
            user_id=f"user{i % 20}",
            name=f"fetchWithRetry{i}",
            content=SNIPPET.format(i=i),
            language="python",
            tags=["http", "retry"],
        )
        for i in range(n)
    ]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(n: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in (1, 100):
            store = QdrantEdgeVectorStore(Path(tmp) / f"b{batch}")
            index = SearchIndex(store, NoEmbedder())
            await index.open()
            data = assets(n)
            latencies = []
            started = time.perf_counter()
            for i in range(0, n, batch):
                t0 = time.perf_counter()
                await index.index_keywords(data[i : i + batch])
                latencies.append((time.perf_counter() - t0) * 1000)
            elapsed = time.perf_counter() - started
            assert await store.count("assets") == n
            await index.close()
            rows.append(
                (
                    batch,
                    statistics.median(latencies),
                    pct(latencies, 0.95),
                    pct(latencies, 0.99),
                    n / elapsed,
                )
            )
    print(f"keyword tier, {n} assets")
    print(f"{'batch':>6} {'median ms':>10} {'p95 ms':>8} {'p99 ms':>8} {'assets/s':>10}")
    for batch, median, p95, p99, rate in rows:
        print(f"{batch:>6} {median:>10.2f} {p95:>8.2f} {p99:>8.2f} {rate:>10.0f}")


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
