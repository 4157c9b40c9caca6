"""Speed of search and suggestions through the real service path (issue 6 acceptance).

    .venv/bin/python bench/speed_service.py --users 10 --assets 10000 --clients 50

(the defaults; about 10-20 minutes on 2 quiet cores, most of it seeding and the one-off
index build). A quick check of the script itself: `--users 2 --assets 2000
--requests-per-client 4 --single-requests 20 --semantic-sample 32`.

Setup, in one process, on a fresh data directory:
* 100,000 assets (users x assets; texts are real Python standard-library functions, cycled,
  each with its own suffix) bulk-inserted into the SQLite store through the project's tables
  (the repositories' own row mapping), and indexed into the embedded qdrant-edge store
  through the two tiers' real code: `SearchIndex.index_keywords` (tokenise + sparse upsert,
  what the after-commit hook runs) and the semantic indexer's store step (full points with
  dense vectors). Dense vectors are precomputed: synthetic unit vectors by default, or with
  `--dense stdlib` the real MiniLM vectors of the functions (computed once, cached in
  bench/.cache). Then the store is optimised (HNSW build, in a child process) as the
  maintenance loop would do after a bulk load.
* The app (`create_app` with this container, its lifespan running: indexer, maintenance,
  pusher) behind an in-process ASGI client. Server-side latency is timed by an ASGI wrapper
  around the app: from the request entering the app to the last byte of the response, so
  it includes everything the service does (auth, rate limiting, JSON, the search and
  suggestion services, SQL reads, the vector store, the query embedding) and the waiting
  for the event loop that concurrent requests cause, but not the client's work. Logging is
  configured as `serve` does, at level warning (no line per request).

Measured:
* Keyword tier and semantic tier (store side) indexing rates over the whole seed.
* Semantic tier end to end: `--semantic-sample` assets created through `POST /api/v1/assets`
  for a separate user, then the time until the running indexer (real shipped embedder,
  background lane) has given every one a dense vector. The time until a 10,000-asset
  library is fully semantically searchable is the delay to the first vectors (the indexer
  lets writes settle for 1 s) plus 10,000 at the steady rate measured after it; pass
  `--semantic-sample 10000` to measure it outright (minutes).
* Memory: the RSS (current and peak) of a real `serve` process started on the seeded data
  directory after it answered 40 searches and suggestions (model loaded, store open); also
  this benchmark process's own, and the optimiser child's peak.
* `POST /api/v1/assets/search` and `GET /api/v1/assets/suggestions`, at 1 and at `--clients`
  concurrent closed-loop clients: server-side p50/p95/p99 and throughput. Each request is
  different (random stdlib docstring queries, half with a language filter; suggestion
  contexts with a unique keyword, so the 60 s suggestion cache never answers). Two query
  embedding modes, both in the table: the shipped MiniLM embedder in the loop (its CPU cost
  dominates on 2 cores), and precomputed query vectors (the same model's vectors, computed
  before the run), which leaves the rest of the service path. Query embedding alone is
  reported too. The clients send their next request as soon as one returns, so at 50 of
  them the service is saturated and p50 is about clients / throughput (queueing); the
  1-client rows are the latency of a request alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.sync_harness import cli, free_port, stop

from pieces_integration.adapters.embeddings.local import LocalMiniLMEmbedder
from pieces_integration.adapters.sql import migrate, tables
from pieces_integration.adapters.sql.accounts import SqlUserRepository
from pieces_integration.adapters.sql.assets import _values as asset_row
from pieces_integration.adapters.sql.engine import create_engine
from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.adapters.vectors.qdrant_edge import QdrantEdgeVectorStore
from pieces_integration.bootstrap import Container, bootstrap
from pieces_integration.config import Settings, load_settings
from pieces_integration.domain.model import Asset, Role, User, utcnow
from pieces_integration.domain.suggestion_context import SuggestContext
from pieces_integration.observability.logs import configure_logging
from pieces_integration.ports.vectors import ASSETS
from pieces_integration.service_layer.indexer import SearchIndex, asset_points
from stdlib_corpus import Function, build_task

LANGUAGES = ("python", "javascript", "typescript", "go")
SEARCH = "/api/v1/assets/search"
SUGGESTIONS = "/api/v1/assets/suggestions"
CHUNK = 2_000
PROBE_USER = "indexer-probe"
SECRET = "bench-speed-service-" + "s" * 24

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def memory_mb(pid: int | str = "self") -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MB, from /proc (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


class ServerTiming:
    """ASGI wrapper: time from a request entering the app to its last response byte."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.failures: Counter[tuple[str, int]] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def timed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                elapsed = (time.perf_counter() - started) * 1000
                if 200 <= status < 300:
                    self.samples[scope["path"]].append(elapsed)
                else:
                    self.failures[(scope["path"], status)] += 1

        await self.app(scope, receive, timed)


class PrecomputedQueries:
    """Query embedder answering from vectors the real model computed before the run."""

    dimension = 384
    model_name = "precomputed"

    def __init__(self, vectors: dict[str, list[float]], fallback: Any) -> None:
        self.vectors = vectors
        self.fallback = fallback
        self.misses = 0

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        missing = [t for t in texts if t not in self.vectors]
        if missing:
            self.misses += len(missing)
            for text, vector in zip(missing, await self.fallback.embed(missing), strict=True):
                self.vectors[text] = vector
        return [self.vectors[t] for t in texts]


# --- seeding ---------------------------------------------------------------------------------


def make_assets(
    user: int, start: int, count: int, corpus: Sequence[Function], rng: random.Random
) -> tuple[list[Asset], list[int]]:
    now = utcnow()
    assets, sources = [], []
    for n in range(start, start + count):
        index = (user * 7919 + n) % len(corpus)
        f = corpus[index]
        created = now - timedelta(days=rng.uniform(0, 365))
        used = rng.random() < 0.3
        assets.append(
            Asset(
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                user_id=f"user-{user}",
                name=f.name,
                content=f"{f.document}\n# asset {user}-{n}\n",
                language=LANGUAGES[n % len(LANGUAGES)],
                tags=[f"tag{n % 20}", f.module.split(".")[0]],
                metadata={"project": f"project-{n % 5}"},
                created_at=created,
                updated_at=created,
                usage_count=rng.randrange(1, 40) if used else 0,
                last_accessed=now - timedelta(days=rng.uniform(0, 30)) if used else None,
            )
        )
        sources.append(index)
    return assets, sources


def dense_vectors(
    mode: str, corpus: Sequence[Function], task: Any, rng: np.random.Generator
) -> Callable[[Sequence[int]], np.ndarray[Any, Any]]:
    if mode == "stdlib":
        from embed_cache import cached_embeddings
        from quality_stdlib import document_texts

        table = cached_embeddings("documents", document_texts(task))
        return lambda sources: table[list(sources)]

    def synthetic(sources: Sequence[int]) -> np.ndarray[Any, Any]:
        vectors = rng.standard_normal((len(sources), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors

    return synthetic


async def seed(
    container: Container, users: int, per_user: int, dense_mode: str
) -> dict[str, float]:
    settings = container.settings
    task = build_task()
    corpus = task.corpus
    rng = random.Random(7)
    vectors_for = dense_vectors(dense_mode, corpus, task, np.random.default_rng(7))
    engine = create_engine(settings.sqlalchemy_url)
    store = QdrantEdgeVectorStore(settings.data_dir / "vectors")
    await store.open()
    # The model itself, without the shipped query cache (`shared_embedder()` wraps it in a
    # `CachedEmbedder`): every query here pays for its embedding, repeated or not.
    index = SearchIndex(store, LocalMiniLMEmbedder())
    index.opened = True
    times: dict[str, float] = defaultdict(float)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(tables.users),
                [
                    {"id": u.id, **SqlUserRepository._values(u)}
                    for u in (User(id=f"user-{n}") for n in range(users))
                ]
                + [{"id": PROBE_USER, **SqlUserRepository._values(User(id=PROBE_USER))}],
            )
        for user in range(users):
            for start in range(0, per_user, CHUNK):
                assets, sources = make_assets(
                    user, start, min(CHUNK, per_user - start), corpus, rng
                )
                t0 = time.perf_counter()
                async with engine.begin() as conn:
                    await conn.execute(sa.insert(tables.assets), [asset_row(a) for a in assets])
                    await conn.execute(
                        sa.insert(tables.asset_tags),
                        [
                            {"asset_id": a.id, "tag": tag, "user_id": a.user_id, "position": i}
                            for a in assets
                            for i, tag in enumerate(dict.fromkeys(a.tags))
                        ],
                    )
                t1 = time.perf_counter()
                for part in range(0, len(assets), 500):  # a sync import's commit batches
                    await index.index_keywords(assets[part : part + 500])
                t2 = time.perf_counter()
                dense = vectors_for(sources).tolist()
                for part in range(0, len(assets), 16):  # the semantic indexer's batches
                    batch = assets[part : part + 16]
                    await store.upsert(ASSETS, await asset_points(batch, dense[part : part + 16]))
                t3 = time.perf_counter()
                times["sql"] += t1 - t0
                times["keyword"] += t2 - t1
                times["dense"] += t3 - t2
            print(f"  seeded user {user + 1}/{users}", flush=True)
        t0 = time.perf_counter()
        await store.optimize()
        times["optimize"] = time.perf_counter() - t0
    finally:
        await store.close()
        await engine.dispose()
    return times


# --- load ------------------------------------------------------------------------------------


def requests_for(
    count: int, users: int, queries: Sequence[Function], rng: random.Random
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, dict[str, str]]]]:
    searches, suggestions = [], []
    for n in range(count):
        f = rng.choice(queries)
        body: dict[str, Any] = {"query": f.query[:500], "limit": 10}
        if rng.random() < 0.5:
            body["filters"] = {"language": rng.choice(LANGUAGES)}
        searches.append((rng.randrange(users), body))
        g = rng.choice(queries)
        words = [w for w in g.name.replace("_", " ").split() if w][:2]
        context = {
            "current_task": g.query[:300],
            "keywords": [*words, f"k{n}"],
            "language": rng.choice(LANGUAGES),
            "active_project": f"project-{n % 5}",
        }
        suggestions.append((rng.randrange(users), {"context": json.dumps(context)}))
    return searches, suggestions


async def closed_loop(
    client: httpx.AsyncClient,
    endpoint: str,
    work: Sequence[tuple[int, dict[str, Any]]],
    headers: Sequence[dict[str, str]],
    clients: int,
) -> float:
    """Run `work` with `clients` concurrent clients; returns the wall time in seconds."""
    pending = iter(work)

    async def one() -> None:
        for user, payload in pending:
            if endpoint == SEARCH:
                response = await client.post(SEARCH, json=payload, headers=headers[user])
            else:
                response = await client.get(SUGGESTIONS, params=payload, headers=headers[user])
            if response.status_code != 200:
                raise RuntimeError(f"{endpoint}: {response.status_code} {response.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(clients)))
    return time.perf_counter() - started


def bench_settings(directory: Path) -> Settings:
    """The seeded data directory's settings (also `bench_budgets.py`'s)."""
    return load_settings(
        data_dir=directory / "data",
        # The limiter still runs on every request; it only must not refuse the benchmark.
        api={"rate_limit_per_minute": 10**9, "rate_limit_burst": 10**9},
        # The seed is optimised explicitly; no maintenance run during the measurements.
        intelligence={"vector_optimize_min_writes": 10**9},
        monitoring={"log_level": "warning"},
        auth={"jwt_secret": SECRET},
    )


def bench_codec() -> JwtCodec:
    """Issues tokens that a `serve` started by `start_serve` accepts."""
    return JwtCodec(
        issuer="pieces-integration",
        audience="pieces-integration",
        secret=SECRET,
        public_key=None,
        jwks_url=None,
    )


def start_serve(data_dir: Path, *, timeout: float) -> tuple[subprocess.Popen[bytes], str]:
    """A real `serve` (uvicorn) on the seeded data directory, with the settings of
    `bench_settings` as environment variables: (process, base URL) once /health answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIECES_INTEGRATION_")}
    for name in ("PORT", "REDIS_URL", "DATABASE_URL", "DATABASE_SCHEMA", "QDRANT_URL"):
        env.pop(name, None)
    port = free_port()
    env.update(
        PIECES_INTEGRATION_DATA_DIR=str(data_dir),
        PORT=str(port),
        JWT_SECRET=SECRET,
        LOG_LEVEL="warning",
        RATE_LIMIT_PER_MINUTE=str(10**9),
        RATE_LIMIT_BURST=str(10**9),
        PIECES_INTEGRATION_INTELLIGENCE__VECTOR_OPTIMIZE_MIN_WRITES=str(10**9),
    )
    with (data_dir.parent / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            cli("serve", "--host", "127.0.0.1"), env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"serve did not start; see {data_dir.parent / 'serve.log'}")
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)


def serve_memory(
    data_dir: Path, users: int, requests: Sequence[tuple[int, dict[str, Any]]]
) -> tuple[float, float]:
    """RSS of a real `serve` process on the seeded data after it answered some searches and
    suggestions (model loaded, index and database touched): (current, peak) MB."""
    process, base = start_serve(data_dir, timeout=120)
    try:
        codec = bench_codec()
        with httpx.Client(base_url=base, timeout=120) as http:
            for n, (user, payload) in enumerate(requests):
                token = codec.issue(f"user-{user}", Role.USER, ttl_seconds=600)
                headers = {"Authorization": f"Bearer {token}"}
                if n % 2:
                    response = http.get(SUGGESTIONS, params=payload, headers=headers)
                else:
                    response = http.post(SEARCH, json=payload, headers=headers)
                response.raise_for_status()
        return memory_mb(process.pid)
    finally:
        stop(process)


async def run(args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="speed-service-"))
    settings = bench_settings(directory)
    configure_logging(settings.monitoring.log_level, settings.log_format)  # as `serve` does
    await asyncio.to_thread(migrate.upgrade, settings.sqlalchemy_url)
    container = bootstrap(settings)
    total = args.users * args.assets
    print(f"seeding {args.users} users x {args.assets:,} assets = {total:,} into {directory}")
    times = await seed(container, args.users, args.assets, args.dense)
    print(f"  optimised the vector store in {times['optimize']:.1f} s (child process)")

    from pieces_integration.entrypoints.api.app import create_app

    app = create_app(settings, container=container)
    timing = ServerTiming(app)
    transport = httpx.ASGITransport(app=timing)
    index: SearchIndex = container.search.index
    real = index.embedder
    rng = random.Random(11)
    queries = build_task().corpus
    rows: list[tuple[str, str, int, list[float], float]] = []
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=600
        ) as client:

            def bearer(user_id: str) -> dict[str, str]:
                token = container.jwt.issue(user_id, Role.USER, ttl_seconds=7200)
                return {"Authorization": f"Bearer {token}"}

            headers = [bearer(f"user-{u}") for u in range(args.users)]
            probe = bearer(PROBE_USER)
            await real.embed(["load the model"])

            # Semantic tier end to end: create through the API, wait for the indexer.
            sample = [queries[(n * 37) % len(queries)] for n in range(args.semantic_sample)]
            started = time.perf_counter()
            for n, f in enumerate(sample):
                response = await client.post(
                    "/api/v1/assets",
                    json={
                        "name": f.name,
                        "content": f"{f.document}\n# probe {n}\n",
                        "language": "python",
                    },
                    headers=probe,
                )
                response.raise_for_status()
            created = time.perf_counter() - started
            first_at, first_count = 0.0, 0
            while True:  # polled: the indexer runs on its own, as in production
                done = await index.store.count_dense(ASSETS, PROBE_USER)
                now = time.perf_counter() - started
                if done and not first_count:
                    first_at, first_count = now, done
                if done >= len(sample):
                    break
                await asyncio.sleep(0.1)
            semantic_seconds = now
            if first_count < len(sample):
                steady_rate = (len(sample) - first_count) / max(1e-9, now - first_at)
            else:  # all appeared in one poll: only the overall rate is known
                first_at, steady_rate = 0.0, len(sample) / max(1e-9, now)
            timing.samples.clear()

            # Query embedding alone, and 50 at once (grouped into shared forward passes).
            alone = []
            for f in queries[:50]:
                t0 = time.perf_counter()
                await real.embed([f.query])
                alone.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            await asyncio.gather(*(real.embed([f.query]) for f in queries[50 : 50 + args.clients]))
            grouped_ms = (time.perf_counter() - t0) * 1000

            per_run = 5 + args.single_requests + args.clients * args.requests_per_client
            modes: list[tuple[str, Any]] = [("MiniLM", real)]
            if not args.no_precomputed:
                modes.append(("precomputed", None))
            for label, embedder in modes:
                searches, suggestions = requests_for(per_run, args.users, queries, rng)
                if embedder is None:
                    texts = [body["query"] for _, body in searches] + [
                        SuggestContext.parse(json.loads(p["context"])).text()
                        for _, p in suggestions
                    ]
                    vectors = []
                    for start in range(0, len(texts), 64):
                        vectors.extend(await real.embed(texts[start : start + 64]))
                    embedder = PrecomputedQueries(dict(zip(texts, vectors, strict=True)), real)
                index.embedder = embedder
                for endpoint, work in ((SEARCH, searches), (SUGGESTIONS, suggestions)):
                    await closed_loop(client, endpoint, work[:5], headers, 1)  # warm-up
                    used = 5
                    for clients, count in (
                        (1, args.single_requests),
                        (args.clients, args.clients * args.requests_per_client),
                    ):
                        timing.samples.clear()
                        wall = await closed_loop(
                            client, endpoint, work[used : used + count], headers, clients
                        )
                        used += count
                        name = "search" if endpoint == SEARCH else "suggestions"
                        rows.append((name, label, clients, list(timing.samples[endpoint]), wall))
                        print(f"  measured {name} ({label}), {clients} clients", flush=True)
                if isinstance(embedder, PrecomputedQueries) and embedder.misses:
                    print(f"  note: {embedder.misses} texts were not precomputed (encoded live)")
            index.embedder = real
            rss, peak = memory_mb()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    await container.aclose()
    searches, suggestions = requests_for(20, args.users, queries, rng)
    mixed = [item for pair in zip(searches, suggestions, strict=True) for item in pair]
    serve_rss, serve_peak = await asyncio.to_thread(
        serve_memory, settings.data_dir, args.users, mixed
    )

    keyword_rate = total / times["keyword"]
    dense_rate = total / times["dense"]
    e2e_rate = len(sample) / semantic_seconds
    library_seconds = first_at + 10_000 / steady_rate if steady_rate > 0 else float("inf")
    print()
    print(f"assets: {args.users} users x {args.assets:,} = {total:,} (dense vectors: {args.dense})")
    print(
        f"SQL bulk insert (seeding only):                    {total / times['sql']:9,.0f} assets/s"
    )
    print(f"keyword tier (tokenise + sparse upsert):           {keyword_rate:9,.0f} assets/s")
    print(f"semantic tier, store side (full points, batch 16): {dense_rate:9,.0f} assets/s")
    print(
        f"semantic tier end to end ({len(sample)} assets via the API, real model): all "
        f"embedded {semantic_seconds:.1f} s after the first write ({e2e_rate:,.1f} assets/s "
        f"overall; API writes {created:.1f} s; first vectors after {first_at:.1f} s, then "
        f"{steady_rate:,.1f} assets/s)"
    )
    print(
        f"a 10,000-asset library: keyword-searchable as each write returns (the tier runs "
        f"at {keyword_rate:,.0f}/s); fully semantically searchable after "
        f"~{library_seconds / 60:.1f} min (first vectors + 10,000 at the steady rate)"
    )
    print(f"vector store optimisation after the bulk load: {times['optimize']:.1f} s (child)")
    print(
        f"memory with {total:,} assets: a `serve` process after 40 requests (model loaded): "
        f"RSS {serve_rss:,.0f} MB (peak {serve_peak:,.0f} MB); this benchmark process "
        f"{rss:,.0f} MB (peak {peak:,.0f} MB); the optimiser child peaked at {children:,.0f} MB"
    )
    print(
        f"query embedding alone (MiniLM): p50 {percentile(alone, 50):.1f} ms, "
        f"p95 {percentile(alone, 95):.1f} ms; {args.clients} concurrent: {grouped_ms:.0f} ms "
        "for all (one shared forward pass)"
    )
    print()
    print("server-side latency (ms) and throughput, in-process ASGI")
    print(
        f"{'endpoint':<13}{'query vector':<14}{'clients':>8}{'requests':>10}"
        f"{'p50':>9}{'p95':>9}{'p99':>9}{'mean':>9}{'req/s':>9}"
    )
    for name, label, clients, samples, wall in rows:
        print(
            f"{name:<13}{label:<14}{clients:>8}{len(samples):>10}"
            f"{percentile(samples, 50):>9.1f}{percentile(samples, 95):>9.1f}"
            f"{percentile(samples, 99):>9.1f}{statistics.fmean(samples):>9.1f}"
            f"{len(samples) / wall:>9.1f}"
        )
    if timing.failures:
        print(f"non-2xx responses: {dict(timing.failures)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--assets", type=int, default=10_000, help="per user")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests-per-client", type=int, default=10)
    parser.add_argument("--single-requests", type=int, default=200)
    parser.add_argument("--semantic-sample", type=int, default=200)
    parser.add_argument("--dense", choices=("synthetic", "stdlib"), default="synthetic")
    parser.add_argument("--no-precomputed", action="store_true", help="MiniLM rows only")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
