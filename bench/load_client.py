"""Closed-loop HTTP load generator, run as its own process by bench_budgets.py.

    python bench/load_client.py BASE_URL WORK.json CLIENTS > result.json

WORK.json: a list of {"method", "path", "json"|"params", "token"}; `CLIENTS` connections each
send their next request as soon as the previous one returned, until the list is used up.
Prints {"latencies_ms": [...], "wall_s": ..., "errors": {...}} (client-side latency: the
whole HTTP round trip over loopback).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import httpx


async def run(base: str, work: list[dict[str, Any]], clients: int) -> dict[str, Any]:
    pending = iter(work)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one() -> None:
            for item in pending:
                headers = {"Authorization": f"Bearer {item['token']}"}
                started = time.perf_counter()
                response = await client.request(
                    item["method"],
                    item["path"],
                    json=item.get("json"),
                    params=item.get("params"),
                    headers=headers,
                )
                await response.aread()
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors[str(response.status_code)] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(clients)))
        wall = time.perf_counter() - started
    return {"latencies_ms": latencies, "wall_s": wall, "errors": dict(errors)}


def main() -> None:
    base, path, clients = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(path, encoding="utf-8") as handle:
        work = json.load(handle)
    json.dump(asyncio.run(run(base, work, clients)), sys.stdout)


if __name__ == "__main__":
    main()
