"""`search_snippets` through MCP against `POST /api/v1/assets/search`, in the same run (issue 17).

    .venv/bin/python bench/bench_mcp.py [--assets 10000] [--queries 300] [--transport asgi]

One user with `--assets` snippets (real Python standard-library functions, seeded by
bench/speed_service.py's bulk path: SQL rows, both index tiers, an optimised store). Then the
same queries, one at a time, through both doors of one running app: the REST search with
httpx, and the MCP tool with the SDK's `ClientSession` over streamable HTTP (one session, as
an agent keeps). The two alternate query by query (which goes first alternates too), so load
on the shared machine falls on both alike. Latency is the client's: from the call to the
parsed result (for MCP that includes JSON-RPC, the SSE framing and the client's check of the
output schema).

Query vectors are computed with the shipped model before the run (`--embed model` keeps the
model in the loop; its cost is the same for both doors and only dilutes the ratio).
`--transport socket` serves the app with uvicorn on a loopback port instead of in process;
`--era 2026` has the SDK's `Client` speak the 2026-07-28 protocol (no handshake, no session)
instead of `ClientSession`'s 2025 handshake.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx2
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from tests.e2e.sync_harness import free_port

from pieces_integration.adapters.embeddings.local import LocalMiniLMEmbedder
from pieces_integration.adapters.sql import migrate
from pieces_integration.bootstrap import Overrides, bootstrap
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Role
from pieces_integration.observability.logs import configure_logging
from speed_service import LANGUAGES, PrecomputedQueries, ServerTiming, percentile, seed
from stdlib_corpus import build_task

SEARCH = "/api/v1/assets/search"
USER = "user-0"  # the seed's first user


def queries_for(count: int) -> list[tuple[str, str | None]]:
    rng = random.Random(11)
    corpus = build_task().corpus
    picked = []
    for _ in range(count):
        f = rng.choice(corpus)
        picked.append((f.query[:500], rng.choice(LANGUAGES) if rng.random() < 0.5 else None))
    return picked


async def rest_search(http: httpx2.AsyncClient, query: str, language: str | None) -> int:
    body: dict[str, Any] = {"query": query, "limit": 10}
    if language:
        body["filters"] = {"language": language}
    response = await http.post(SEARCH, json=body)
    if response.status_code != 200:
        raise RuntimeError(f"REST search: {response.status_code} {response.text[:200]}")
    return len(response.json()["results"])


async def mcp_search(client: ClientSession, query: str, language: str | None) -> int:
    arguments: dict[str, Any] = {"query": query, "limit": 10}
    if language:
        arguments["language"] = language
    result = await client.call_tool("search_snippets", arguments)
    if result.is_error or result.structured_content is None:
        raise RuntimeError(f"MCP search: {result.content}")
    return len(result.structured_content["results"])


def row(name: str, samples: Sequence[float]) -> str:
    return (
        f"| {name:<28} | {len(samples):>5} | {statistics.median(samples):>8.2f} "
        f"| {percentile(samples, 95):>8.2f} | {percentile(samples, 99):>8.2f} |"
    )


async def measure(
    app: ServerTiming | None,
    base_url: str,
    headers: dict[str, str],
    args: argparse.Namespace,
    work: list[tuple[str, str | None]],
) -> tuple[list[float], list[float]]:
    transport = httpx2.ASGITransport(app=app) if args.transport == "asgi" else None
    rest_ms: list[float] = []
    mcp_ms: list[float] = []
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx2.AsyncClient(transport=transport, base_url=base_url, headers=headers, timeout=120)
        )
        streams = streamable_http_client(f"{base_url}/mcp", http_client=http)
        if args.era == "2026":  # the SDK's Client: per-request, no session to hold
            high = await stack.enter_async_context(Client(streams, read_timeout_seconds=120))
            client = high.session
        else:  # the handshake era: initialize once, then the session's id on every call
            read, write = await stack.enter_async_context(streams)
            client = await stack.enter_async_context(
                ClientSession(read, write, read_timeout_seconds=120)
            )
            await client.initialize()
        await client.list_tools()  # the client learns the output schema it checks results by
        for query, language in work[:10]:  # warm-up, not counted
            await rest_search(http, query, language)
            await mcp_search(client, query, language)
        if app is not None:
            app.samples.clear()
        for n, (query, language) in enumerate(work):
            doors = [("rest", rest_ms), ("mcp", mcp_ms)]
            for door, samples in doors if n % 2 == 0 else doors[::-1]:
                started = time.perf_counter()
                if door == "rest":
                    found = await rest_search(http, query, language)
                else:
                    found = await mcp_search(client, query, language)
                samples.append((time.perf_counter() - started) * 1000)
                if found == 0:
                    raise RuntimeError(f"{door}: nothing found for {query!r}")
    return rest_ms, mcp_ms


async def run(args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-mcp-"))
    settings = load_settings(
        data_dir=directory / "data",
        api={"rate_limit_per_minute": 10**9, "rate_limit_burst": 10**9},
        intelligence={"vector_optimize_min_writes": 10**9},  # no maintenance mid-run
        monitoring={"log_level": "warning"},
        auth={"jwt_secret": "bench-mcp-" + "s" * 32},
    )
    configure_logging(settings.monitoring.log_level, settings.log_format)
    await asyncio.to_thread(migrate.upgrade, settings.sqlalchemy_url)
    work = queries_for(args.queries)
    overrides = Overrides()
    if args.embed == "precomputed":
        model = LocalMiniLMEmbedder()
        texts = sorted({query for query, _ in work})
        vectors = await model.embed(texts)
        overrides = Overrides(
            embedder=PrecomputedQueries(dict(zip(texts, vectors, strict=True)), model)
        )
    container = bootstrap(settings, overrides)
    print(f"seeding 1 user x {args.assets:,} assets into {directory}", flush=True)
    times = await seed(container, 1, args.assets, "synthetic")
    print(f"  seeded in {sum(times.values()):.1f} s", flush=True)

    from pieces_integration.entrypoints.api.app import create_app

    app = create_app(settings, container=container)
    token = container.jwt.issue(USER, Role.USER, ttl_seconds=7200)
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    timing = ServerTiming(app)
    try:
        if args.transport == "asgi":
            async with app.router.lifespan_context(app):
                rest_ms, mcp_ms = await measure(timing, "http://127.0.0.1", headers, args, work)
        else:
            port = free_port()
            server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
            )
            serving = asyncio.create_task(server.serve())
            for _ in range(400):
                if server.started:
                    break
                await asyncio.sleep(0.05)
            try:
                rest_ms, mcp_ms = await measure(
                    None, f"http://127.0.0.1:{port}", headers, args, work
                )
            finally:
                server.should_exit = True
                await serving
    finally:
        await container.aclose()
    elapsed = time.perf_counter() - started
    print()
    print(
        f"search over {args.assets:,} assets, {len(work)} queries each, one at a time, "
        f"transport {args.transport}, MCP era {args.era}, query embedding {args.embed} "
        f"({elapsed:.0f} s)"
    )
    print("| door                         |     n |  p50 ms |  p95 ms |  p99 ms |")
    print("|------------------------------|-------|---------|---------|---------|")
    print(row("POST /api/v1/assets/search", rest_ms))
    print(row("MCP search_snippets", mcp_ms))
    if timing.samples:  # in process: the server's share (request in to last byte out)
        print(row("  server side: REST", timing.samples[SEARCH]))
        # Only the calls: the session's GET stream and DELETE end after them.
        print(row("  server side: MCP", timing.samples["/mcp"][: len(mcp_ms)]))
    p50 = statistics.median(mcp_ms) / statistics.median(rest_ms)
    p95 = percentile(mcp_ms, 95) / percentile(rest_ms, 95)
    print(f"MCP / REST: p50 {p50:.2f}x, p95 {p95:.2f}x (goal <= 1.2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--transport", choices=("asgi", "socket"), default="asgi")
    parser.add_argument("--embed", choices=("precomputed", "model"), default="precomputed")
    parser.add_argument(
        "--era", choices=("2025", "2026"), default="2025", help="MCP protocol era of the client"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
