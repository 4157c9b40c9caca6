"""Read a 10,000-asset Pieces library through our adapter, completely and without stalling.

Starts the Pieces OS emulator in a separate process (so its serving cost is not on our event
loop), then reads the whole library `--runs` times with `PiecesOSClient.list_assets`. Each run
is checked against `GET /assets/identifiers`: no asset missed, none duplicated. A ticker on
the event loop records the worst stall while the snapshot is read and mapped.

    .venv/bin/python bench/bench_pieces_snapshot.py [--assets 10000] [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time

import httpx

from pieces_integration.adapters.pieces_os.client import ClientSettings, PiecesOSClient
from pieces_integration.adapters.pieces_os.transport import HttpxPiecesTransport


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


async def wait_healthy(url: str, within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url}/.well-known/health", timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("emulator did not start")


async def ticker(lags: list[float], stop: asyncio.Event, period: float = 0.01) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(period)
        lags.append(time.perf_counter() - started - period)


async def bench(url: str, expected: int, runs: int) -> None:
    client = PiecesOSClient(
        HttpxPiecesTransport(httpx.AsyncClient(), url), settings=ClientSettings(timeout=120)
    )
    await client.connect()
    truth = set(await client.asset_ids())
    assert len(truth) == expected, f"emulator holds {len(truth)} assets, expected {expected}"
    await client.list_assets("bench")  # warm-up: the emulator renders and caches its payloads

    durations: list[float] = []
    worst_lag: list[float] = []
    for _ in range(runs):
        lags: list[float] = []
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(lags, stop))
        started = time.perf_counter()
        assets = await client.list_assets("bench")
        durations.append(time.perf_counter() - started)
        stop.set()
        await tick
        worst_lag.append(max(lags, default=0.0))
        ids = [a.id for a in assets]
        missed, duplicated = truth - set(ids), len(ids) - len(set(ids))
        assert not missed and not duplicated, f"missed={len(missed)} duplicated={duplicated}"
        assert all(a.content and a.language for a in assets)
    await client.aclose()

    median = statistics.median(durations)
    print(f"\nPieces snapshot through PiecesOSClient.list_assets: {expected} assets, {runs} runs")
    print(f"{'metric':<28}{'value':>14}")
    print(f"{'median (s)':<28}{median:>14.3f}")
    print(f"{'p95 (s)':<28}{percentile(durations, 0.95):>14.3f}")
    print(f"{'p99 (s)':<28}{percentile(durations, 0.99):>14.3f}")
    print(f"{'min / max (s)':<28}{min(durations):>6.3f} / {max(durations):.3f}")
    print(f"{'throughput (assets/s)':<28}{expected / median:>14,.0f}")
    print(f"{'worst loop stall (ms)':<28}{max(worst_lag) * 1000:>14.1f}")
    print(f"{'missed / duplicated':<28}{'0 / 0':>14}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    port = free_port()
    code = (
        "from pieces_integration.entrypoints.cli.emulate_pieces import pieces; "
        f"pieces(port={port}, assets={args.assets}, seed={args.seed})"
    )
    emulator = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        asyncio.run(wait_healthy(url))
        asyncio.run(bench(url, args.assets, args.runs))
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    main()
