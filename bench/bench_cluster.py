"""The local cluster under load (issue 14): N users against 3 replicas of the installed wheel
behind HAProxy, on PostgreSQL + Redis, with the Pieces and AIWFE emulators.

    .venv/bin/python bench/bench_cluster.py --users 50,100,200 --duration 60
    .venv/bin/python bench/bench_cluster.py --users 100 --duration 600 --kill-every 60   # soak

Each user runs an API loop (create an asset, list, read one, /health; `--pace` seconds
between rounds) and `--ws` WebSocket subscribers; `--pieces-users` of them also have an
emulated Pieces library of `--assets` assets that the replicas' schedulers sync every
`--sync-interval` seconds. With `--kill-every S` one replica (in turn) is killed with -9
every S seconds and restarted; at the end every user is synced once more and the store is
compared with Pieces and AIWFE (lost / duplicated assets), acknowledged writes are checked,
and the sync runs of each user are checked for overlap.

Printed per user count: requests/s and p50/p95/p99 per endpoint, WebSocket delivery delay
(POST acknowledged -> event received; an event that arrives before its POST's answer is
not counted), sync runs/s and asset operations/s with the mean run
time, RSS (max) and CPU per replica, CPU of PostgreSQL, Redis, HAProxy and this load
generator, and errors. "held" means within the spec's budgets (11.2): errors < 0.1 %, WebSocket
delivery p95 < 100 ms, mean sync < 2 s, RSS < 512 MB per replica. Everything runs on this
machine's 2 cores, the load generator included: compare rows within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import POSTGRES_URL
from tests.deploy.cluster import LocalCluster, bearer
from tests.deploy.load import (
    Subscriber,
    Traffic,
    api_user,
    caught_up,
    percentiles,
    subscriber,
)
from tests.deploy.wheel_install import Installed, build_wheel, install

from pieces_integration.adapters.sql.engine import create_engine

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _pids_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class Sampler(threading.Thread):
    """Every second: RSS of each replica (max kept) and CPU of each process group."""

    def __init__(self, cluster: LocalCluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.stop = threading.Event()
        self.rss: dict[str, float] = Counter()
        self.cpu: Counter[str] = Counter()
        self._last: dict[tuple[str, int], float] = {}

    def _groups(self) -> dict[str, list[int]]:
        groups = {
            n.name: [n.process.pid]
            for n in self.cluster.nodes
            if n.process and n.process.poll() is None
        }
        groups["postgres"] = _pids_named("postgres")
        groups["redis"] = _pids_named("redis-server")
        groups["haproxy"] = _pids_named("haproxy")
        groups["load generator"] = [os.getpid()]
        return groups

    def run(self) -> None:
        replicas = {node.name for node in self.cluster.nodes}
        while not self.stop.wait(1.0):
            for group, pids in self._groups().items():
                for pid in pids:
                    now = _cpu_seconds(pid)
                    before = self._last.get((group, pid))
                    if before is not None and now >= before:
                        self.cpu[group] += now - before
                    self._last[(group, pid)] = now
                    if group in replicas:
                        self.rss[group] = max(self.rss[group], _rss_mb(pid))


async def _sync_stats(cluster: LocalCluster, since: float) -> tuple[int, int, float]:
    engine = create_engine(POSTGRES_URL, schema=cluster.schema)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT started_at, completed_at, pieces_to_aiwfe + aiwfe_to_pieces "
                        f'FROM "{cluster.schema}".sync_runs WHERE completed_at IS NOT NULL'
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    recent = [r for r in rows if r[0].timestamp() >= since]
    durations = [(r[1] - r[0]).total_seconds() for r in recent]
    return len(recent), sum(r[2] for r in recent), statistics.fmean(durations) if durations else 0


async def _connect_all(cluster: LocalCluster, users: list[str]) -> None:
    async with httpx.AsyncClient(base_url=cluster.url, timeout=120) as http:
        limit = asyncio.Semaphore(8)

        async def one(user: str) -> None:
            async with limit:
                response = await http.post(
                    "/api/v1/integrations/pieces/connect",
                    json={"pieces_url": cluster.pieces[user].base_url},
                    headers=bearer(user),
                )
                response.raise_for_status()

        await asyncio.gather(*(one(u) for u in users if u in cluster.pieces))


async def _load(
    cluster: LocalCluster, users: list[str], args: argparse.Namespace
) -> tuple[Traffic, list[Subscriber], float]:
    traffic = Traffic()
    # Two stops, as in tests/deploy/test_local_cluster.py: subscribers keep listening after
    # the writers stop (with one shared event they quit and the last writes counted missed).
    stop_writers, stop_listening = asyncio.Event(), asyncio.Event()
    subs = [Subscriber(u) for u in users for _ in range(args.ws)]
    listening = [
        asyncio.create_task(subscriber(cluster.url, s, stop_listening, traffic)) for s in subs
    ]
    await asyncio.wait_for(asyncio.gather(*(s.subscribed.wait() for s in subs)), 120)
    started = time.time()
    loops = [
        asyncio.create_task(api_user(cluster.url, u, traffic, stop_writers, args.pace))
        for u in users
    ]

    async def chaos() -> None:
        n = 0
        while args.kill_every and time.time() - started + args.kill_every < args.duration:
            await asyncio.sleep(args.kill_every)
            index = n % len(cluster.nodes)
            await asyncio.to_thread(cluster.kill, index)
            await asyncio.to_thread(cluster.revive, index)
            n += 1

    killer = asyncio.create_task(chaos())
    await asyncio.sleep(args.duration)
    elapsed = time.time() - started
    killer.cancel()
    stop_writers.set()
    await asyncio.gather(*loops, return_exceptions=True)
    await caught_up(subs, traffic, limit=30)
    stop_listening.set()
    await asyncio.gather(*listening)
    return traffic, subs, elapsed


def _verify(cluster: LocalCluster, traffic: Traffic) -> dict[str, Any]:
    """After a final sync of every user: what the store, Pieces and AIWFE hold."""
    from pieces_integration.domain.model import content_hash

    with httpx.Client(base_url=cluster.url, timeout=120) as http:
        for user in cluster.pieces:
            http.post(f"/api/v1/context/{user}/sync", headers=bearer(user))

    async def store() -> tuple[dict[str, Counter[str]], set[str]]:
        engine = create_engine(POSTGRES_URL, schema=cluster.schema)
        try:
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(
                        sa.text(f'SELECT id, user_id, content FROM "{cluster.schema}".assets')
                    )
                ).all()
        finally:
            await engine.dispose()
        found: dict[str, Counter[str]] = {}
        for _, user, content in rows:
            found.setdefault(user, Counter())[content_hash(content)] += 1
        return found, {r[0] for r in rows}

    async def sides() -> tuple[dict[str, Counter[str]], dict[str, Counter[str]]]:
        assert cluster.aiwfe is not None
        pieces = {
            u: Counter(content_hash(r.content) for r in s.state.assets.values())
            for u, s in cluster.pieces.items()
        }
        aiwfe = {
            u: Counter(content_hash(a["content"]) for a in cluster.aiwfe.state.assets[u].values())
            for u in cluster.pieces
        }
        return pieces, aiwfe

    contents, ids = asyncio.run(store())
    pieces, aiwfe = cluster.run(sides())
    lost = dup = 0
    for user in cluster.pieces:
        mine = contents.get(user, Counter())
        for other in (pieces[user], aiwfe[user]):
            lost += sum(((mine - other) + (other - mine)).values())
        dup += sum(c - 1 for c in mine.values() if c > 1) - sum(
            c - 1 for c in pieces[user].values() if c > 1
        )
    acked = {i for v in traffic.acked.values() for i in v}
    return {"differences": lost, "extra copies": max(0, dup), "acked missing": len(acked - ids)}


def run_one(installed: Installed, n_users: int, args: argparse.Namespace) -> dict[str, Any]:
    users = [f"u{i:04d}" for i in range(n_users)]
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        cluster = LocalCluster(
            installed,
            Path(tmp),
            users[: args.pieces_users] if args.pieces_users >= 0 else users,
            replicas=args.replicas,
            assets_per_user=args.assets,
            sync_interval=args.sync_interval,
        )
        try:
            cluster.start()
            asyncio.run(_connect_all(cluster, users))
            sampler = Sampler(cluster)
            sampler.start()
            since = time.time()
            traffic, subs, elapsed = asyncio.run(_load(cluster, users, args))
            sampler.stop.set()
            sampler.join(5)
            runs, operations, mean_sync = asyncio.run(_sync_stats(cluster, since))
            checks = _verify(cluster, traffic) if args.kill_every else {}
            retried = cluster.retried()
        finally:
            cluster.stop()
    missed = sum(len(set(traffic.acked[s.user]) - s.asset_ids) for s in subs)
    return {
        "users": n_users,
        "elapsed": elapsed,
        "traffic": traffic,
        "missed events": missed,
        "resets": sum(s.resets for s in subs),
        "runs": runs,
        "operations": operations,
        "mean sync": mean_sync,
        "rss": dict(sampler.rss),
        "cpu": {k: v / elapsed for k, v in sampler.cpu.items()},
        "checks": checks,
        "retried": retried,
        "kills": len(cluster.kills),
    }


def _print(result: dict[str, Any], replicas: int) -> bool:
    traffic: Traffic = result["traffic"]
    elapsed = result["elapsed"]
    errors = len(traffic.failures)
    total = traffic.requests + errors
    print(
        f"\n== {result['users']} users, {replicas} replicas, {elapsed:.0f} s, "
        f"{result['kills']} kills =="
    )
    print(
        f"requests/s {traffic.requests / elapsed:8.1f}   errors {errors} "
        f"({100 * errors / max(1, total):.2f} %) {dict(Counter(traffic.failures).most_common(4))}"
    )
    print(f"HAProxy retried {result['retried']}")
    print(f"{'endpoint':28} {'n':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, values in sorted(traffic.latencies.items()):
        p50, p95, p99 = (1000 * v for v in percentiles(values))
        print(f"{name:28} {len(values):7d} {p50:8.1f} {p95:8.1f} {p99:8.1f}")
    d50, d95, d99 = (1000 * v for v in percentiles(traffic.event_delays))
    print(
        f"{'WebSocket ack->event':28} {len(traffic.event_delays):7d} "
        f"{d50:8.1f} {d95:8.1f} {d99:8.1f}"
        f"   missed {result['missed events']}, resets {result['resets']}"
    )
    print(
        f"sync: {result['runs'] / elapsed:.1f} runs/s, {result['operations'] / elapsed:.1f} "
        f"asset operations/s, mean run {result['mean sync']:.2f} s"
    )
    print("RSS max MB: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(result["rss"].items())))
    print("CPU (cores): " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(result["cpu"].items())))
    if result["checks"]:
        print(f"after kills: {result['checks']}")
    held = (
        errors <= 0.001 * total
        and d95 < 100
        and result["mean sync"] < 2
        and all(v < 512 for v in result["rss"].values())
        and result["missed events"] == 0
    )
    busiest = max(result["cpu"].items(), key=lambda kv: kv[1])
    print(
        f"held within budgets: {'yes' if held else 'NO'}; busiest: {busiest[0]} "
        f"({busiest[1]:.2f} cores of 2)"
    )
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="25,50,100", help="comma-separated user counts")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--pace", type=float, default=1.0, help="seconds between a user's rounds")
    parser.add_argument("--ws", type=int, default=1, help="WebSocket subscribers per user")
    parser.add_argument(
        "--pieces-users", type=int, default=-1, help="users with a Pieces library (-1: all)"
    )
    parser.add_argument("--assets", type=int, default=5, help="assets per Pieces library")
    parser.add_argument("--sync-interval", type=float, default=30)
    parser.add_argument(
        "--kill-every", type=float, default=0, help="kill -9 a replica every S seconds"
    )
    parser.add_argument("--venv", type=Path, help="reuse an installed wheel venv built earlier")
    args = parser.parse_args()
    if args.venv:
        installed = Installed(next((args.venv.parent / "dist").glob("*.whl")), args.venv)
    else:
        base = Path(tempfile.mkdtemp(prefix="bench-cluster-wheel-"))
        installed = install(build_wheel(base / "dist"), base / "venv")
        print(f"installed the wheel into {installed.venv} (reuse with --venv)")
    largest = 0
    for n in (int(x) for x in args.users.split(",")):
        if _print(run_one(installed, n, args), args.replicas):
            largest = max(largest, n)
    print(f"\nlargest user count held within budgets: {largest}")


if __name__ == "__main__":
    main()
