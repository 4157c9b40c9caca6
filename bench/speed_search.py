"""Speed benchmark of the retrieval core on the embedded store (qdrant-edge).

Store level only (the adapter's query, random query vectors). The acceptance numbers for
search and suggestions through the whole service, with a real query embedding, come from
bench/speed_service.py.

    .venv/bin/python bench/speed_search.py [--users 10] [--assets 10000] [--clients 50]

Builds users x assets points (default 10 x 10,000 = 100,000) in a fresh qdrant-edge
directory. Asset texts are real stdlib functions (cycled, with a per-asset suffix); dense
vectors are random unit vectors, since embedding 100,000 texts takes hours on 2 cores (the
semantic tier's own rate is measured separately on 256 real functions). Then 50 concurrent
clients run filtered hybrid queries (each: tokenise the query, one formula query with dense
and sparse prefetches, per-user filter; optional language filter on half of them) through
the adapter, the same call the search endpoint makes after embedding the query.

Reports: keyword-tier indexing rate (tokenise + sparse upsert), dense attach rate, semantic
embedding rate, time until a 10,000-asset library is fully semantically searchable, query
latency p50/p95/p99 and throughput, and the process RSS with 100,000 assets.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pieces_integration.adapters.vectors.qdrant_edge import QdrantEdgeVectorStore
from pieces_integration.domain.bm25 import document_tokens, sparse_document, sparse_query
from pieces_integration.domain.ranking import DEFAULT_FUSION
from pieces_integration.domain.tokenize import tokenize
from pieces_integration.ports.vectors import ASSETS, DenseUpdate, IndexedPoint, SearchFilter
from stdlib_corpus import build_task

LANGUAGES = ("python", "javascript", "typescript", "go")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(
    users: int, assets: int, clients: int, queries_per_client: int, embed_sample: int
) -> None:
    task = build_task()
    functions = task.corpus
    rng = np.random.default_rng(7)
    directory = Path(tempfile.mkdtemp(prefix="speed-edge-"))
    store = QdrantEdgeVectorStore(directory)
    await store.open()

    # Keyword tier: tokenise + sparse upsert, in batches of 500 (what a sync batch does).
    started = time.perf_counter()
    batch: list[IndexedPoint] = []
    ids: list[tuple[str, str]] = []
    for user in range(users):
        for n in range(assets):
            f = functions[(user * 7919 + n) % len(functions)]
            key = f"u{user}-a{n}"
            tokens = document_tokens(f.name, f"{f.document}\n# asset {n}")
            batch.append(
                IndexedPoint(
                    id=key,
                    user_id=f"user-{user}",
                    sparse=sparse_document(tokens),
                    payload={
                        "language": LANGUAGES[n % len(LANGUAGES)],
                        "tags": [f"tag{n % 20}"],
                        "content_hash": f"h{n}",
                    },
                )
            )
            ids.append((key, f"h{n}"))
            if len(batch) == 500:
                await store.upsert(ASSETS, batch)
                batch = []
    if batch:
        await store.upsert(ASSETS, batch)
    keyword_seconds = time.perf_counter() - started
    total = users * assets

    # Semantic tier, store side: attach dense vectors (conditional on the content hash).
    started = time.perf_counter()
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        vectors = rng.standard_normal((len(chunk), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        updates = [
            DenseUpdate(key, vector.tolist(), content_hash)
            for (key, content_hash), vector in zip(chunk, vectors, strict=True)
        ]
        await store.set_dense(ASSETS, updates)
    dense_seconds = time.perf_counter() - started
    started = time.perf_counter()
    await store.optimize()
    optimize_seconds = time.perf_counter() - started
    memory_after_index = rss_mb()

    # Semantic tier, model side: the shipped numpy MiniLM on real functions.
    from pieces_integration.adapters.embeddings.minilm_numpy import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    sample = [f.document for f in functions[:embed_sample]]
    started = time.perf_counter()
    embedder.encode(sample)
    embed_rate = len(sample) / (time.perf_counter() - started)
    started = time.perf_counter()
    for f in functions[:50]:
        embedder.encode([f.query])
    query_embed_ms = (time.perf_counter() - started) / 50 * 1000

    # Queries: 50 concurrent clients, each a closed loop.
    query_texts = [f.query for f in functions]
    latencies: list[float] = []

    async def client(number: int) -> None:
        local = random.Random(number)
        for _ in range(queries_per_client):
            vector = rng.standard_normal(384).astype(np.float32)
            vector /= np.linalg.norm(vector)
            languages = (local.choice(LANGUAGES),) if local.random() < 0.5 else ()
            flt = SearchFilter(user_id=f"user-{local.randrange(users)}", languages=languages)
            t0 = time.perf_counter()
            await store.query_hybrid(
                ASSETS,
                dense=vector.tolist(),
                sparse=sparse_query(tokenize(local.choice(query_texts))),
                search_filter=flt,
                limit=10,
                fusion=DEFAULT_FUSION,
            )
            latencies.append((time.perf_counter() - t0) * 1000)

    await client(10_000)  # warm-up, and one client alone: latency without queueing
    single = sorted(latencies)
    latencies.clear()
    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    query_seconds = time.perf_counter() - started
    await store.close()

    print()
    keyword_rate = total / keyword_seconds
    dense_rate = total / dense_seconds
    print(f"points: {users} users x {assets} assets = {total:,}")
    print(f"keyword tier indexing (tokenise + sparse upsert): {keyword_rate:9,.0f} assets/s")
    print(f"dense vector attach (store side):                {dense_rate:9,.0f} assets/s")
    print(f"MiniLM numpy embedding, real functions:          {embed_rate:9,.1f} assets/s")
    print(f"MiniLM query embedding:                          {query_embed_ms:9,.1f} ms")
    library = 10_000
    full = library / embed_rate + library / (total / dense_seconds)
    print(
        f"10,000-asset library fully semantically searchable after ~{full / 60:.1f} min "
        f"(keyword-searchable after {library / (total / keyword_seconds):.1f} s)"
    )
    print(
        f"segment optimisation (HNSW build, on a copy in a child process) after the bulk "
        f"load: {optimize_seconds:.1f} s"
    )
    print(f"RSS after indexing {total:,} points: {memory_after_index:,.0f} MB (max RSS, process)")
    print()
    print(
        f"hybrid search, 1 client, {len(single)} queries: p50 {percentile(single, 50):.2f} ms, "
        f"p95 {percentile(single, 95):.2f} ms, p99 {percentile(single, 99):.2f} ms"
    )
    print(f"hybrid search, {clients} concurrent clients, {len(latencies)} queries")
    print(f"{'':10}{'p50':>9}{'p95':>9}{'p99':>9}{'mean':>9}   throughput")
    print(
        f"{'latency':10}{percentile(latencies, 50):8.2f}ms{percentile(latencies, 95):7.2f}ms"
        f"{percentile(latencies, 99):7.2f}ms{statistics.fmean(latencies):7.2f}ms"
        f"   {len(latencies) / query_seconds:,.0f} queries/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--queries-per-client", type=int, default=40)
    parser.add_argument("--embed-sample", type=int, default=256)
    args = parser.parse_args()
    asyncio.run(
        run(args.users, args.assets, args.clients, args.queries_per_client, args.embed_sample)
    )


if __name__ == "__main__":
    main()
