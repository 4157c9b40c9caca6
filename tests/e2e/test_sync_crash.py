"""Crash safety of the sync engine (issue 5): `kill -9` of the service at random moments
during an initial import and during a burst of edits on both sides; after a restart and
one complete sync, no asset is missing or duplicated on Pieces, on AIWFE or here (compared
as multisets of content hashes), on SQLite and on PostgreSQL.

Processes: the Pieces OS and AIWFE emulators run as their own processes (they outlive the
service); the service is `python -m pieces_integration sync --user U` (one sync, in
process), killed with SIGKILL after a seeded random delay. The user's Pieces connection is
stored first with the service's own connect use case (`tests/e2e/sync_harness.py`).

The library here has SYNC_CRASH_ASSETS assets (default 500, so both databases fit in a
few minutes on 2 shared cores); `bench/bench_sync_crash.py` runs the same scenario on the
full 10,000-asset library.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from pieces_integration.ports.pieces import AssetChanges, AssetDraft
from tests.conftest import POSTGRES_URL, drop_postgres_schema, new_postgres_schema
from tests.e2e.sync_harness import (
    Service,
    aiwfe_contents,
    emulator_processes,
    hashes,
    pieces_client,
    pieces_contents,
)

ASSETS = int(os.environ.get("SYNC_CRASH_ASSETS", "500"))
SEED = int(os.environ.get("SYNC_CRASH_SEED", "20250105"))
USER = "crash-user"
# Kills per phase: 3 during the import, 2 burst rounds (each a kill mid-burst and one at
# random) fit both databases in `make test`'s budget; the bench runs 4 and 3.
IMPORT_KILLS, BURST_ROUNDS = 3, 2

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@dataclass
class Expected:
    """The multiset of contents every side must end with."""

    contents: Counter[str]
    kills: list[str] = field(default_factory=list)
    # Contents some change already touched: a later change on the other side must not pick a
    # stale copy of the same asset (its outcome would be a merge, not one known content).
    used: set[str] = field(default_factory=set)

    def replace(self, old: str, new: str | None) -> None:
        self.contents[old] -= 1
        assert self.contents[old] >= 0
        self.used.add(old)
        if new is not None:
            self.contents[new] += 1
            self.used.add(new)

    def hashes(self) -> Counter[str]:
        return hashes(self.contents.elements())

    def add(self, new: str) -> None:
        self.contents[new] += 1
        self.used.add(new)


def kill_at_random(service: Service, log: Path, rng: random.Random, low: float, high: float) -> str:
    """Start one sync, SIGKILL it after a random delay; say where it was."""
    process = service.sync(USER, log)
    delay = rng.uniform(low, high)
    try:
        process.wait(delay)
        return f"finished before {delay:.1f}s"
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        return f"killed at {delay:.1f}s"


def complete_sync(service: Service, log: Path) -> None:
    process = service.sync(USER, log)
    assert process.wait(600) == 0, log.read_text()[-3000:]


async def state(service: Service, pieces_url: str, aiwfe_url: str) -> dict[str, Counter[str]]:
    return {
        "pieces": hashes((await pieces_contents(pieces_url, USER)).values()),
        "aiwfe": hashes((await aiwfe_contents(aiwfe_url, USER)).values()),
        "ours": hashes(asset.content for asset in await service.local_assets(USER)),
    }


def assert_converged(found: dict[str, Counter[str]], expected: Counter[str]) -> None:
    want = +expected
    for side, got in found.items():
        missing = want - got
        extra = got - want
        assert not missing and not extra, (
            f"{side}: {sum(missing.values())} missing, {sum(extra.values())} duplicated/extra "
            f"of {sum(want.values())}"
        )


async def burst(
    rng: random.Random, pieces_url: str, aiwfe_url: str, expected: Expected, size: int
) -> None:
    """Edits, creates and deletes on both emulators, as their users would make them.

    The two sides touch disjoint contents, so every change has one expected outcome (the
    merge of concurrent edits of one asset is the convergence test's subject)."""
    pieces_now = await pieces_contents(pieces_url, USER)
    aiwfe_now = await aiwfe_contents(aiwfe_url, USER)
    in_pieces = [i for i in sorted(pieces_now) if pieces_now[i] not in expected.used]
    in_pieces = rng.sample(in_pieces, min(len(in_pieces), size * 2))
    touched = {pieces_now[i] for i in in_pieces} | expected.used
    in_aiwfe = [i for i in sorted(aiwfe_now) if aiwfe_now[i] not in touched]
    in_aiwfe = rng.sample(in_aiwfe, min(len(in_aiwfe), size * 2))

    def fresh(where: str) -> str:
        return f"# {where} {uuid.UUID(int=rng.getrandbits(128))}\nvalue = {rng.random()}\n"

    async with httpx.AsyncClient(timeout=60) as http:
        client = pieces_client(pieces_url, httpx.AsyncClient())  # closes its own client
        await client.connect()
        for index, asset_id in enumerate(in_pieces):
            old = pieces_now[asset_id]
            if index % 4 == 3:
                await client.delete_asset(asset_id)
                expected.replace(old, None)
            else:
                new = fresh("pieces edit") + old
                await client.update_asset(USER, asset_id, AssetChanges(content=new))
                expected.replace(old, new)
        for _ in range(size // 2):
            new = fresh("pieces new")
            await client.create_asset(USER, AssetDraft(content=new, language="py", name="new"))
            expected.add(new)
        await client.aclose()
        base = f"/v1/users/{USER}/assets"
        for index, asset_id in enumerate(in_aiwfe):
            old = aiwfe_now[asset_id]
            if index % 4 == 3:
                assert (await http.delete(f"{aiwfe_url}{base}/{asset_id}")).status_code == 204
                expected.replace(old, None)
            else:
                current = (await http.get(f"{aiwfe_url}{base}/{asset_id}")).json()
                new = fresh("aiwfe edit") + old
                write = {k: current[k] for k in ("name", "description", "language", "tags")}
                response = await http.put(
                    f"{aiwfe_url}{base}/{asset_id}", json={**write, "content": new}
                )
                assert response.status_code == 200, response.text
                expected.replace(old, new)
        for _ in range(size // 2):
            new = fresh("aiwfe new")
            body = {"name": "from aiwfe", "content": new, "language": "python", "tags": ["ai"]}
            response = await http.put(f"{aiwfe_url}{base}/aiwfe-{uuid.uuid4().hex}", json=body)
            assert response.status_code == 201, response.text
            expected.add(new)


def crash_scenario(
    tmp: Path,
    service_for: object,
    assets: int,
    seed: int,
    *,
    import_kills: int = IMPORT_KILLS,
    burst_rounds: int = BURST_ROUNDS,
) -> Expected:
    """The whole scenario; returns what was expected (with the kill log) after checking it."""
    rng = random.Random(seed)
    log = tmp / "sync.log"
    with emulator_processes(tmp, assets=assets, seed=seed % 1000) as (pieces_urls, aiwfe_url):
        pieces_url = pieces_urls[0]
        service: Service = service_for(aiwfe_url)  # type: ignore[operator]
        service.migrate()
        service.connect(USER, pieces_url, aiwfe_url)
        original = Counter(asyncio.run(pieces_contents(pieces_url, USER)).values())
        assert original.total() == assets
        expected = Expected(original)

        # 1. The initial import, killed several times at random moments.
        for _ in range(import_kills):
            expected.kills.append("import " + kill_at_random(service, log, rng, 1.5, 9.0))
            seen = asyncio.run(state(service, pieces_url, aiwfe_url))
            expected.kills[-1] += f" (ours {seen['ours'].total()}, aiwfe {seen['aiwfe'].total()})"
        complete_sync(service, log)
        assert_converged(asyncio.run(state(service, pieces_url, aiwfe_url)), expected.hashes())

        # 2. A burst of edits on both sides while syncs are killed.
        for round_ in range(burst_rounds):
            process = service.sync(USER, log)
            try:
                started = time.monotonic()
                asyncio.run(burst(rng, pieces_url, aiwfe_url, expected, size=8))
                delay = rng.uniform(0.5, 5.0)
                remaining = delay - (time.monotonic() - started)
                if remaining > 0:
                    time.sleep(remaining)
                outcome = "finished" if process.poll() is not None else "killed"
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait(10)
            expected.kills.append(f"burst {round_}: {outcome} at {delay:.1f}s")
            expected.kills.append("burst " + kill_at_random(service, log, rng, 1.0, 6.0))

        # 3. Restart, one complete sync: everything is there exactly once.
        complete_sync(service, log)
        assert_converged(asyncio.run(state(service, pieces_url, aiwfe_url)), expected.hashes())
    return expected


def test_kill_9_during_import_and_edits_loses_and_duplicates_nothing_on_sqlite(
    tmp_path: Path,
) -> None:
    def service(aiwfe_url: str) -> Service:
        return Service(tmp_path / "data", aiwfe_url)

    expected = crash_scenario(tmp_path, service, ASSETS, SEED)
    assert any(kill.startswith("import killed") for kill in expected.kills), expected.kills


@pytest.mark.postgres
def test_kill_9_during_import_and_edits_loses_and_duplicates_nothing_on_postgres(
    tmp_path: Path,
) -> None:
    schema = new_postgres_schema("crash" + uuid.uuid4().hex[:6])
    try:

        def service(aiwfe_url: str) -> Service:
            return Service(tmp_path / "data", aiwfe_url, POSTGRES_URL, schema)

        expected = crash_scenario(tmp_path, service, ASSETS, SEED + 1)
        assert any(kill.startswith("import killed") for kill in expected.kills), expected.kills
    finally:
        drop_postgres_schema(schema)
