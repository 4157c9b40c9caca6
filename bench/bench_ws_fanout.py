"""WebSocket fan-out: one `serve` process, N authenticated connections, events to all.

Starts the service (embedded SQLite, in-process event log) on a free port, opens
`--connections` WebSockets that all subscribe to one user's events (that user's many
devices, or admin dashboards), then creates `--events` assets through the REST API. Each
`asset_created` event carries the server's publish time (`timestamp`); the delivery latency
is the client's receive time minus that (same machine, same clock). Memory per connection
is the server's RSS growth while the connections were opened, divided by their number.

    .venv/bin/python bench/bench_ws_fanout.py --connections 2000 --events 30

It runs once per server send path (`--modes`, default all three) and prints one table with
a column per mode, so the paths are compared within one run on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import uvloop
import websockets

from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.domain.model import Role
from ws_raw_client import RawClient, open_raw

SECRET = "bench-ws-fanout-" + "s" * 32
USER = "fanout"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def token() -> str:
    codec = JwtCodec(
        issuer="pieces-integration",
        audience="pieces-integration",
        secret=SECRET,
        public_key=None,
        jwks_url=None,
    )
    return codec.issue(USER, Role.USER, ttl_seconds=3600)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def open_clients(url: str, headers: dict[str, str], count: int) -> list[object]:
    clients: list[object] = []

    async def one() -> object:
        ws = await websockets.connect(url, additional_headers=headers, open_timeout=60)
        await ws.send(json.dumps({"type": "subscribe", "payload": {"events": ["asset_created"]}}))
        ack = json.loads(await ws.recv())
        assert ack["type"] == "subscribed", ack
        return ws

    for start in range(0, count, 100):
        clients += await asyncio.gather(*(one() for _ in range(min(100, count - start))))
    return clients


async def run(args: argparse.Namespace, base: str, pid: int) -> Round:
    headers = {"Authorization": "Bearer " + token()}
    ws_url = base.replace("http", "ws") + "/ws"
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        # Warm up: provision the user, open and close one socket, so the baseline is steady.
        await http.post("/api/v1/assets", json={"name": "warm", "content": "x"})
        # Load the embedding model now (a search embeds its query) and let the indexer take
        # the warm-up asset, so neither lands in the per-connection memory figure.
        await http.post("/api/v1/assets/search", json={"query": "warm"})
        for _ in range(300):
            metrics = (await http.get("/metrics")).text
            if "\npieces_semantic_index_lag 0.0" in metrics:
                break
            await asyncio.sleep(0.1)
        warm = await open_clients(ws_url, headers, 1)
        await warm[0].close()  # type: ignore[attr-defined]
        await asyncio.sleep(1.0)
        before = rss_kib(pid)
        started = time.perf_counter()
        if args.client == "raw":
            raw = await open_raw_clients(ws_url, headers, args.connections)
        else:
            clients = await open_clients(ws_url, headers, args.connections)
        connect_s = time.perf_counter() - started
        await asyncio.sleep(1.0)
        after = rss_kib(pid)

        latencies: list[float] = []
        counts = [0] * args.connections

        async def read(index: int, ws: object) -> None:
            while counts[index] < args.events:
                message = json.loads(await ws.recv())  # type: ignore[attr-defined]
                if message["type"] != "asset_created":
                    continue
                published = datetime.fromisoformat(message["timestamp"]).timestamp()
                latencies.append(time.time() - published)
                counts[index] += 1

        if args.client == "raw":
            readers = [asyncio.create_task(wait_raw(raw, args.events))]
        else:
            readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(clients)]
        publish_started = time.perf_counter()
        for n in range(args.events):
            response = await http.post(
                "/api/v1/assets", json={"name": f"bench {n}", "content": f"print({n})"}
            )
            response.raise_for_status()
            await asyncio.sleep(args.interval)
        await asyncio.wait_for(asyncio.gather(*readers), 120)
        elapsed = time.perf_counter() - publish_started
        peak = rss_kib(pid)
        if args.client == "raw":
            for client in raw:
                for stamp, message in client.messages():
                    if message["type"] == "asset_created":
                        published = datetime.fromisoformat(str(message["timestamp"])).timestamp()
                        latencies.append(stamp - published)
                client.close()
        else:
            for ws in clients:
                await ws.close()  # type: ignore[attr-defined]

    return Round(
        latencies_ms=[value * 1000 for value in latencies],
        expected=args.events * args.connections,
        connect_s=connect_s,
        elapsed_s=elapsed,
        rss_after_kib=after,
        rss_per_connection_kib=(after - before) / args.connections,
        rss_end_kib=peak,
    )


@dataclass
class Round:
    latencies_ms: list[float]
    expected: int
    connect_s: float
    elapsed_s: float
    rss_after_kib: int
    rss_per_connection_kib: float
    rss_end_kib: int


def summary(rounds: list[Round]) -> list[tuple[str, str]]:
    """Latencies pooled over the rounds; the rest as the median round's."""
    ms = [value for r in rounds for value in r.latencies_ms]
    delivered = sum(len(r.latencies_ms) for r in rounds)

    def mid(values: list[float]) -> float:
        return statistics.median(values)

    return [
        ("connect time (s)", f"{mid([r.connect_s for r in rounds]):.1f}"),
        ("deliveries", f"{delivered} of {sum(r.expected for r in rounds)}"),
        ("latency median (ms)", f"{statistics.median(ms):.1f}"),
        ("latency p95 (ms)", f"{percentile(ms, 0.95):.1f}"),
        ("latency p99 (ms)", f"{percentile(ms, 0.99):.1f}"),
        ("latency max (ms)", f"{max(ms):.1f}"),
        (
            "throughput (deliveries/s)",
            f"{mid([len(r.latencies_ms) / r.elapsed_s for r in rounds]):.0f}",
        ),
        ("server RSS after connect (MiB)", f"{mid([r.rss_after_kib for r in rounds]) / 1024:.1f}"),
        (
            "server RSS per connection (KiB)",
            f"{mid([r.rss_per_connection_kib for r in rounds]):.1f}",
        ),
        ("server RSS at end (MiB)", f"{mid([r.rss_end_kib for r in rounds]) / 1024:.1f}"),
    ]


async def open_raw_clients(url: str, headers: dict[str, str], count: int) -> list[RawClient]:
    subscribe = {"type": "subscribe", "payload": {"events": ["asset_created"]}}
    clients: list[RawClient] = []
    for start in range(0, count, 100):
        batch = min(100, count - start)
        clients += await asyncio.gather(*(open_raw(url, headers, subscribe) for _ in range(batch)))
    return clients


async def wait_raw(clients: list[RawClient], events: int) -> None:
    """Until every client holds `events` frames beyond its subscription ack."""
    # Polled rather than signalled: the clients' receive path stays a bare append.
    while any(len(client.received) < events for client in clients):  # noqa: ASYNC110
        await asyncio.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between events")
    parser.add_argument(
        "--client",
        choices=("raw", "websockets"),
        default="raw",
        help="raw: bare uvloop protocols, stamped on arrival (default); websockets: the library",
    )
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help="server send paths to compare, in one run: " + ", ".join(MODES),
    )
    parser.add_argument("--rounds", type=int, default=1, help="server restarts per mode")
    args = parser.parse_args()
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; choose from {list(MODES)}")
    raise_fd_limit(args.connections * 2 + 256)  # the server inherits the raised limit

    # Rounds interleave the modes, so a noisy minute on this shared machine hits them alike.
    rounds: dict[str, list[Round]] = {mode: [] for mode in modes}
    for _ in range(args.rounds):
        for mode in modes:
            rounds[mode].append(bench_mode(args, mode))
    results = {mode: summary(rounds[mode]) for mode in modes}
    print(
        f"{args.connections} connections, {args.events} events one every "
        f"{args.interval * 1000:.0f} ms, {args.client} client, {args.rounds} round(s) per mode"
    )
    names = [name for name, _ in next(iter(results.values()))]
    width = max(len(name) for name in names)
    print(f"{'metric'.ljust(width)} | " + " | ".join(mode.rjust(14) for mode in modes))
    print(f"{'-' * width}-+-" + "-+-".join("-" * 14 for _ in modes))
    for index, name in enumerate(names):
        values = [results[mode][index][1].rjust(14) for mode in modes]
        print(f"{name.ljust(width)} | " + " | ".join(values))


# How the server sends: through ASGI for every message; pre-encoded frames written
# directly on the loop thread; the same with the socket writes spread over threads.
MODES = {
    "asgi": {"PIECES_INTEGRATION_SERVER__WEBSOCKET_DIRECT_WRITES": "false"},
    "direct": {},
    "direct+threads": {"PIECES_INTEGRATION_SERVER__WEBSOCKET_WRITE_THREADS": "2"},
}


def bench_mode(args: argparse.Namespace, mode: str) -> Round:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("PIECES_INTEGRATION_")
            and key not in ("DATABASE_URL", "REDIS_URL", "PORT", "WEBSOCKET_PORT")
        }
        env.update(
            PORT=str(port),
            JWT_SECRET=SECRET,
            LOG_LEVEL="warning",
            PIECES_INTEGRATION_DATA_DIR=data,
            RATE_LIMIT_PER_MINUTE="0",
            **MODES[mode],
        )
        log = Path(data) / "server.log"
        with log.open("wb") as output:
            server = subprocess.Popen(
                [sys.executable, "-m", "pieces_integration", "serve", "--host", "127.0.0.1"],
                env=env,
                cwd=data,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(base + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise SystemExit("server did not start:\n" + log.read_text()[-2000:])
            return uvloop.run(run(args, base, server.pid))
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
