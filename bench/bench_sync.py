"""Sync throughput and latency, end to end through a real `serve` process (issue 5).

(a) Initial import: a Pieces OS emulator with `--assets` assets (own process) and the AIWFE
    emulator (own process); `POST /api/v1/context/{u}/sync`, then the time until every asset
    is listed and readable through GET /api/v1/assets and a keyword search finds them, and
    the time until the run finished (everything also pushed to AIWFE).
    The semantic indexer's catch-up (until `pieces_semantic_index_lag` is 0 on /metrics) is
    reported beside it; it runs on the same cores while (b) is measured.
(b) Incremental latency: change an asset in the Pieces emulator through its API and poll our
    API until the change is readable (the scheduler is poked by the Pieces identifier
    stream); and the other way: PATCH through our API, poll Pieces until it shows.

    .venv/bin/python bench/bench_sync.py [--assets 10000] [--changes 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.sync_harness import (
    Service,
    cli,
    emulator_processes,
    free_port,
    pieces_client,
    stop,
)

from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.domain.model import Role
from pieces_integration.ports.pieces import AssetChanges

SECRET = "bench-sync-secret-" + "z" * 24
USER = "bench-user"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def row(name: str, values: list[float]) -> str:
    return (
        f"| {name:<34} | {len(values):>5} | {statistics.median(values) * 1000:>9.0f} | "
        f"{percentile(values, 0.95) * 1000:>8.0f} | {percentile(values, 0.99) * 1000:>8.0f} |"
    )


async def until(check: object, within: float, period: float = 0.02) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < within:
        if await check():  # type: ignore[operator]
            return time.perf_counter() - started
        await asyncio.sleep(period)
    raise TimeoutError("condition not met")


async def bench(api: str, pieces_url: str, aiwfe_url: str, assets: int, changes: int) -> None:
    codec = JwtCodec(
        issuer="pieces-integration",
        audience="pieces-integration",
        secret=SECRET,
        public_key=None,
        jwks_url=None,
    )
    auth = {"Authorization": "Bearer " + codec.issue(USER, Role.USER, ttl_seconds=7200)}
    async with httpx.AsyncClient(base_url=api, headers=auth, timeout=120) as http:
        connected = await http.post(
            "/api/v1/integrations/pieces/connect", json={"pieces_url": pieces_url}
        )
        assert connected.json()["success"], connected.text
        started = time.perf_counter()
        # The request answers when the run ends (or 202 after 25 s): watch the API meanwhile.
        request = asyncio.ensure_future(http.post(f"/api/v1/context/{USER}/sync"))

        async def all_listed() -> bool:
            page = await http.get("/api/v1/assets", params={"limit": 1})
            return bool(page.headers.get("x-total-count") == str(assets))

        await until(all_listed, 7200, 0.2)
        listed_at = time.perf_counter() - started
        page = (await http.get("/api/v1/assets", params={"limit": 100})).json()
        for asset in page[:20]:  # readable and keyword-searchable
            assert (await http.get(f"/api/v1/assets/{asset['id']}")).status_code == 200
            word = asset["name"].split()[0]
            found = await http.get("/api/v1/assets", params={"search": word, "limit": 200})
            assert found.status_code == 200 and int(found.headers["x-total-count"]) >= 1
        searchable_at = time.perf_counter() - started

        run = (await request).json()

        async def finished() -> bool:
            latest = (await http.get(f"/api/v1/sync/{run['sync_id']}")).json()
            return bool(latest["status"] != "in_progress")

        await until(finished, 7200, 0.5)
        done_at = time.perf_counter() - started

        # (b) Pieces -> API
        to_api: list[float] = []
        to_pieces: list[float] = []
        async with httpx.AsyncClient() as raw:
            client = pieces_client(pieces_url, raw)
            await client.connect()
            library = (await http.get("/api/v1/assets", params={"limit": changes * 2})).json()
            targets = [a for a in library if a["source"] == "pieces"][: changes * 2]
            for asset in targets[:changes]:
                marker = f"zq{uuid.uuid4().hex[:12]}"
                t0 = time.perf_counter()
                await client.update_asset(
                    USER, asset["source_id"], AssetChanges(content=f"# {marker}\n")
                )

                async def visible(asset_id: str = asset["id"], marker: str = marker) -> bool:
                    got = (await http.get(f"/api/v1/assets/{asset_id}")).json()
                    return marker in str(got["content"])

                await until(visible, 60)
                to_api.append(time.perf_counter() - t0)
            # (b') API -> Pieces
            for asset in targets[changes:]:
                marker = f"zp{uuid.uuid4().hex[:12]}"
                t0 = time.perf_counter()
                patched = await http.patch(
                    f"/api/v1/assets/{asset['id']}", json={"content": f"# {marker}\n"}
                )
                assert patched.status_code == 200, patched.text

                async def in_pieces(remote: str = asset["source_id"], marker: str = marker) -> bool:
                    return marker in (await client.get_asset(USER, remote)).content

                await until(in_pieces, 120, 0.05)
                to_pieces.append(time.perf_counter() - t0)
            await client.aclose()

        async def embedded() -> bool:
            text = (await http.get("/metrics")).text
            gauge = "pieces_semantic_index_lag"
            lag = [line for line in text.splitlines() if line.startswith(gauge)]
            return bool(lag) and float(lag[0].split()[-1]) == 0.0

        await until(embedded, 7200, 1.0)
        semantic_at = time.perf_counter() - started

    print(f"initial import of {assets} assets (SQLite, AIWFE configured):")
    print(
        f"  listed and readable through the API: {listed_at:.1f} s = "
        f"{assets / listed_at:.0f} assets/s; keyword-searchable: {searchable_at:.1f} s"
    )
    print(
        f"  run finished (all pushed to AIWFE too): {done_at:.1f} s = "
        f"{assets / done_at:.0f} assets/s"
    )
    print(
        f"  semantic tier caught up (index lag 0): {semantic_at:.1f} s = "
        f"{assets / semantic_at:.0f} assets/s"
    )
    print("| incremental change                 |     n | p50 (ms) | p95 (ms) | p99 (ms) |")
    print("|------------------------------------|-------|----------|----------|----------|")
    print(row("Pieces edit -> readable in our API", to_api))
    if to_pieces:
        print(row("API edit -> visible in Pieces", to_pieces))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--interval", type=float, default=1.0, help="scheduler interval (s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        with emulator_processes(tmp, assets=args.assets, seed=42) as (pieces_urls, aiwfe_url):
            httpx.post(f"{aiwfe_url}/_emulator/users", json={"user_id": USER}, timeout=10)
            service = Service(tmp / "data", aiwfe_url)
            port = free_port()
            env = service.env()
            env.update(
                PORT=str(port),
                JWT_SECRET=SECRET,
                PIECES_INTEGRATION_SYNC__INTERVAL_SECONDS=str(args.interval),
            )
            with (tmp / "serve.log").open("wb") as log:
                server = subprocess.Popen(
                    cli("serve", "--host", "127.0.0.1"),
                    env=env,
                    cwd=tmp,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            api = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    try:
                        if httpx.get(api + "/health", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.2)
                asyncio.run(bench(api, pieces_urls[0], aiwfe_url, args.assets, args.changes))
            finally:
                stop(server)


if __name__ == "__main__":
    main()
