"""Every goal of issue #18 in one run: `goal / measured / ratio`.

    .venv/bin/python bench/bench_budgets.py                       # 10 users x 10,000 = 100k
    .venv/bin/python bench/bench_budgets.py --users 2 --assets 10000   # 20k, ~10 min here

Setup: a fresh data directory seeded as `speed_service.py` does (real stdlib functions as
assets in SQLite, both tiers in the embedded qdrant-edge store, synthetic unit vectors for the
seed, store optimised), then a real `pieces-integration serve` (uvicorn) on it, and the load
from `load_client.py` in a process of its own: closed-loop clients over loopback HTTP, each
request different (stdlib docstring queries, half with a language filter; suggestion
contexts with a unique keyword so the suggestion cache never answers). Latencies are the
client's whole round trip.

Also measured in this process, in the same run: document embedding on the shipped int8 ONNX
model against the numpy fp32 forward pass it replaced (same texts, one thread each), query
encoding alone, and the relevance while 25 % of the stdlib corpus is embedded
(`quality_indexing.py`; embeddings cached in bench/.cache). RSS counts the serve process and
all its children (what a pod holds), after the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.sync_harness import stop

from pieces_integration.adapters.sql import migrate
from pieces_integration.bootstrap import bootstrap
from pieces_integration.domain.model import Role
from pieces_integration.domain.tokenize import semantic_text
from speed_service import (
    SEARCH,
    SUGGESTIONS,
    bench_codec,
    bench_settings,
    percentile,
    requests_for,
    seed,
    start_serve,
)
from stdlib_corpus import build_task

HERE = Path(__file__).resolve().parent


def tree_rss_mb(pid: int) -> tuple[float, int]:
    """RSS of a process and all its descendants (MB), and how many processes that is."""
    total, count, todo = 0.0, 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
                count += 1
    return total, count


def load(base: str, work: Sequence[dict[str, Any]], clients: int, scratch: Path) -> dict[str, Any]:
    """Run `work` through load_client.py in its own process."""
    path = scratch / "work.json"
    path.write_text(json.dumps(list(work)))
    output = subprocess.run(
        [sys.executable, str(HERE / "load_client.py"), base, str(path), str(clients)],
        check=True,
        capture_output=True,
        timeout=1800,
    ).stdout
    result: dict[str, Any] = json.loads(output)
    if result["errors"]:
        print(f"  non-200 answers: {result['errors']}", flush=True)
    return result


def work_items(
    searches: Sequence[tuple[int, dict[str, Any]]],
    suggestions: Sequence[tuple[int, dict[str, str]]],
    tokens: Sequence[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    search = [
        {"method": "POST", "path": SEARCH, "json": body, "token": tokens[user]}
        for user, body in searches
    ]
    suggest = [
        {"method": "GET", "path": SUGGESTIONS, "params": params, "token": tokens[user]}
        for user, params in suggestions
    ]
    return search, suggest


def embedding_rates(documents: int, queries: int) -> tuple[float, float, float]:
    """(int8 ONNX docs/s, numpy fp32 docs/s, ONNX query encoding p50 ms), one thread each."""
    from pieces_integration.adapters.embeddings._blas import limit_blas_threads
    from pieces_integration.adapters.embeddings.minilm_numpy import MiniLMEmbedder
    from pieces_integration.adapters.embeddings.minilm_onnx import OnnxMiniLMEmbedder

    limit_blas_threads(1)
    corpus = build_task().corpus
    texts = [semantic_text(f.name, f.document)[:2000] for f in corpus[:documents]]
    onnx = OnnxMiniLMEmbedder()
    numpy = MiniLMEmbedder()
    rates = []
    for model in (onnx, numpy):
        model.encode(texts[:2])
        started = time.perf_counter()
        for start in range(0, len(texts), 16):  # the semantic indexer's batches
            model.encode(texts[start : start + 16], batch_size=8)
        rates.append(len(texts) / (time.perf_counter() - started))
    samples = []
    for f in corpus[documents : documents + queries]:
        started = time.perf_counter()
        onnx.encode([f.query])
        samples.append((time.perf_counter() - started) * 1000)
    return rates[0], rates[1], percentile(samples, 50)


def quality_at_quarter() -> tuple[float, float]:
    """(shipped hybrid MRR@10, keyword-only MRR@10) with 25 % of the stdlib corpus embedded."""
    from quality_indexing import partial_ranker
    from quality_stdlib import Scores, evaluate

    scores = Scores(build_task())
    hybrid = evaluate(scores, scores.task.test, partial_ranker(scores, 0.25))[0]
    return hybrid, evaluate(scores, scores.task.test, scores.bm25_rank)[0]


async def seed_data(directory: Path, users: int, per_user: int) -> Path:
    settings = bench_settings(directory)
    await asyncio.to_thread(migrate.upgrade, settings.sqlalchemy_url)
    container = bootstrap(settings)
    try:
        await seed(container, users, per_user, "synthetic")
    finally:
        await container.aclose()
    return settings.data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--assets", type=int, default=10_000, help="per user")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests-per-client", type=int, default=8)
    parser.add_argument("--single-requests", type=int, default=100)
    parser.add_argument("--documents", type=int, default=64, help="for the embedding rate")
    args = parser.parse_args()
    started = time.perf_counter()
    directory = Path(tempfile.mkdtemp(prefix="bench-budgets-"))
    total = args.users * args.assets
    print(f"seeding {total:,} assets into {directory}", flush=True)
    data_dir = asyncio.run(seed_data(directory, args.users, args.assets))
    print(f"  seeded in {time.perf_counter() - started:.0f} s", flush=True)

    codec = bench_codec()
    tokens = [codec.issue(f"user-{u}", Role.USER, ttl_seconds=7200) for u in range(args.users)]
    queries = build_task().corpus
    rng = random.Random(11)
    many = args.clients * args.requests_per_client
    searches, suggestions = requests_for(10 + args.single_requests + many, args.users, queries, rng)
    search, suggest = work_items(searches, suggestions, tokens)
    process, base = start_serve(data_dir, timeout=180)
    try:
        load(base, search[:5] + suggest[:5], 1, directory)  # warm-up: model, store, caches
        one = load(base, search[10 : 10 + args.single_requests], 1, directory)
        rest = search[10 + args.single_requests :]
        fifty = load(base, rest, args.clients, directory)
        suggest_fifty = load(base, suggest[10 : 10 + many], args.clients, directory)
        rss, processes = tree_rss_mb(process.pid)
    finally:
        stop(process)
    print("  load done; embedding rates and quality next", flush=True)
    onnx_rate, numpy_rate, query_p50 = embedding_rates(args.documents, 50)
    hybrid_q, keyword_q = quality_at_quarter()

    def p95(result: dict[str, Any]) -> float:
        return percentile(result["latencies_ms"], 95)

    rows = [
        (f"search p95, {args.clients} clients (ms)", "<=", 300.0, p95(fifty)),
        (f"suggestions p95, {args.clients} clients (ms)", "<=", 500.0, p95(suggest_fifty)),
        ("search p95, 1 client (ms)", "<=", 25.0, p95(one)),
        ("document embedding vs numpy (x)", ">=", 2.0, onnx_rate / numpy_rate),
        ("10k library semantic (s)", "<=", 180.0, 10_000 / onnx_rate),
        ("query encoding p50 (ms)", "<=", 8.0, query_p50),
        (f"RSS per process, {processes} process(es) (MB)", "<", 512.0, rss / processes),
        ("MRR@10 at 25 % indexed vs keyword", ">=", keyword_q, hybrid_q),
    ]
    print()
    print(
        f"{total:,} assets, one serve process (uvicorn), load generator in its own process, "
        f"loopback HTTP; {time.perf_counter() - started:.0f} s in all"
    )
    print(f"{'goal':<44}{'target':>10}{'measured':>11}{'ratio':>8}  met")
    for name, sense, goal, measured in rows:
        ratio = measured / goal if goal else float("inf")
        met = {"<=": measured <= goal, "<": measured < goal, ">=": measured >= goal}[sense]
        target = f"{sense} {goal:g}"
        verdict = "yes" if met else "NO"
        print(f"{name:<44}{target:>10}{measured:>11.3f}{ratio:>8.2f}  {verdict}")
    print()
    print(
        f"throughput: search {len(fifty['latencies_ms']) / fifty['wall_s']:.1f} req/s and "
        f"suggestions {len(suggest_fifty['latencies_ms']) / suggest_fifty['wall_s']:.1f} req/s "
        f"at {args.clients} clients; search p50 with 1 client "
        f"{percentile(one['latencies_ms'], 50):.1f} ms"
    )
    print(
        f"document embedding: int8 ONNX {onnx_rate:.1f} docs/s, numpy fp32 {numpy_rate:.1f} "
        f"docs/s (one thread each, {args.documents} stdlib functions, batches of 16)"
    )


if __name__ == "__main__":
    main()
