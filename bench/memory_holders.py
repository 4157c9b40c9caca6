"""What holds a serving process's memory at N assets (issue #18, item 3).

    .venv/bin/python bench/memory_holders.py --users 10 --assets 10000      # 100k
    .venv/bin/python bench/memory_holders.py --data-dir /tmp/bench-budgets-x/data   # reuse

Seeds a fresh data directory as `bench_budgets.py` does, in a child process so that nothing
the seeding allocated stays in the measured heap (or reuses `--data-dir`). Then, in a fresh
process, it builds the container and the app, runs its lifespan (indexer, maintenance,
pusher) and answers `--requests` searches and suggestions through an in-process ASGI client,
so every cache a request fills is filled. Then it prints:

* the RSS split the kernel reports (`/proc/self/smaps_rollup`): anonymous memory (Python
  heap, the vector engine's and ONNX Runtime's native allocations) vs file-backed pages
  (shared libraries, memory-mapped shard files);
* the mappings holding most RSS, grouped (vector shard files, the ONNX model, libraries,
  anonymous);
* Python's own allocations by source file and by package (tracemalloc, started before the
  container is built), and what is left of the anonymous memory for native code.

tracemalloc costs memory itself (about a third on top of Python's own), so the RSS here is
higher than a plain `serve`'s; the split is what this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_budgets import seed_data
from pieces_integration.bootstrap import bootstrap
from pieces_integration.domain.model import Role
from pieces_integration.observability.logs import configure_logging
from speed_service import SEARCH, SUGGESTIONS, bench_settings, requests_for
from stdlib_corpus import build_task


def rollup() -> dict[str, int]:
    """KiB per field of /proc/self/smaps_rollup."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[-1] == "kB":
            fields[key] = int(parts[0])
    return fields


def mapping_group(path: str, data_dir: Path) -> str:
    if not path:
        return "anonymous"
    if path.startswith(str(data_dir / "vectors")):
        return "vector shard files (mmap)"
    if path.endswith(".onnx"):
        return "ONNX model file"
    if ".so" in path:
        name = Path(path).name
        return f"library {name.split('.so')[0]}"
    return path


def mappings(data_dir: Path) -> dict[str, int]:
    """RSS (KiB) per mapping group, from /proc/self/smaps."""
    groups: dict[str, int] = defaultdict(int)
    current = "anonymous"
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            current = mapping_group(head[5] if len(head) > 5 else "", data_dir)
        elif line.startswith("Rss:"):
            groups[current] += int(head[1])
    return groups


def package_of(filename: str) -> str:
    parts = Path(filename).parts
    for marker in ("site-packages", "pieces_integration"):
        if marker in parts:
            i = parts.index(marker)
            if marker == "pieces_integration":
                return "/".join(parts[i : i + 3])
            return parts[i + 1] if i + 1 < len(parts) else filename
    return "python stdlib" if "lib/python" in filename else filename


def stage(name: str) -> None:
    roll = rollup()
    anon, rss = roll.get("Anonymous", 0) / 1024, roll.get("Rss", 0) / 1024
    print(f"  {name:<34} RSS {rss:7.1f} MB  anonymous {anon:7.1f}  file {rss - anon:7.1f}")


async def serve_requests(data_dir: Path, users: int, count: int) -> None:
    print("RSS by stage")
    stage("imports")
    settings = bench_settings(data_dir.parent)
    configure_logging(settings.monitoring.log_level, settings.log_format)
    container = bootstrap(settings)
    from pieces_integration.entrypoints.api.app import create_app

    app = create_app(settings, container=container)
    stage("container and app built")
    searches, suggestions = requests_for(count, users, build_task().corpus, random.Random(5))
    tokens = [container.jwt.issue(f"user-{u}", Role.USER, ttl_seconds=3600) for u in range(users)]
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        stage("lifespan started (store open)")
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            pairs = enumerate(zip(searches, suggestions, strict=True))
            for n, ((user, body), (other, params)) in pairs:
                response = await client.post(
                    SEARCH, json=body, headers={"Authorization": f"Bearer {tokens[user]}"}
                )
                response.raise_for_status()
                response = await client.get(
                    SUGGESTIONS,
                    params=params,
                    headers={"Authorization": f"Bearer {tokens[other]}"},
                )
                response.raise_for_status()
                if n == 0:
                    stage("first search and suggestion")
            stage(f"{count} searches and suggestions")
            report(data_dir)
    await container.aclose()


def report(data_dir: Path) -> None:
    snapshot = tracemalloc.take_snapshot()
    traced = sum(stat.size for stat in snapshot.statistics("filename")) // 1024
    roll = rollup()
    anon = roll.get("Anonymous", 0)
    print()
    print(f"RSS {roll.get('Rss', 0) / 1024:8.1f} MB")
    print(f"  anonymous      {anon / 1024:8.1f} MB")
    print(f"  file-backed    {(roll.get('Rss', 0) - anon) / 1024:8.1f} MB")
    print(f"  of anonymous: Python (tracemalloc) {traced / 1024:.1f} MB, ", end="")
    print(f"native and allocator slack {(anon - traced) / 1024:.1f} MB")
    print()
    print("mappings by RSS (MB)")
    for name, kib in sorted(mappings(data_dir).items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {kib / 1024:8.1f}  {name}")
    by_package: dict[str, int] = defaultdict(int)
    for stat in snapshot.statistics("filename"):
        by_package[package_of(stat.traceback[0].filename)] += stat.size
    print()
    print("Python allocations by package (MB)")
    for name, size in sorted(by_package.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {size / 2**20:8.1f}  {name}")
    print()
    print("Python allocations by line (MB)")
    for stat in snapshot.statistics("lineno")[:15]:
        frame = stat.traceback[0]
        where = frame.filename.split("site-packages/")[-1]
        print(f"  {stat.size / 2**20:8.1f}  {where}:{frame.lineno}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--assets", type=int, default=10_000, help="per user")
    parser.add_argument("--data-dir", type=Path, help="a data directory seeded before")
    parser.add_argument("--requests", type=int, default=100, help="searches and suggestions")
    parser.add_argument("--seed-into", type=Path, help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args()
    if args.seed_into is not None:
        asyncio.run(seed_data(args.seed_into, args.users, args.assets))
        return
    data_dir = args.data_dir
    if data_dir is None:
        started = time.perf_counter()
        directory = Path(tempfile.mkdtemp(prefix="memory-holders-"))
        print(f"seeding {args.users * args.assets:,} assets into {directory}", flush=True)
        command = [sys.executable, __file__, "--seed-into", str(directory)]
        command += ["--users", str(args.users), "--assets", str(args.assets)]
        subprocess.run(command, check=True, timeout=3600)
        data_dir = directory / "data"
        print(f"  seeded in {time.perf_counter() - started:.0f} s", flush=True)
    tracemalloc.start(1)
    asyncio.run(serve_requests(data_dir, args.users, args.requests))


if __name__ == "__main__":
    main()
