"""Two `serve` replicas on one PostgreSQL + Redis syncing the same users (issue 5): a user's
sync never runs on both at once, and no outbox entry is delivered twice.

Each user has their own Pieces OS emulator; one AIWFE emulator serves everybody. Both run
in this process (a background event loop) behind a recorder of every HTTP request, so the
test counts what the replicas really did upstream: Pieces creates and deletes, AIWFE asset
creates, deletes and suggestion deliveries. Meanwhile the test fires concurrent
`POST /context/{u}/sync` at both replicas while their schedulers (1 s interval, and poked
by the Pieces streams) run too, and keeps changing things on both sides between rounds.

Proof: the `sync_runs` rows of each user never overlap in time; every create Pieces had to
receive arrived once; each asset was created on AIWFE once; every delete and every
suggestion (by Idempotency-Key) reached its side once; both sides end without duplicates.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pieces_integration.adapters.sql.engine import create_engine
from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.domain.model import Role
from pieces_integration.emulators.aiwfe.server import AIWFEEmulator
from pieces_integration.emulators.pieces.server import EmulatorServer
from tests.conftest import POSTGRES_URL, REDIS_URL, drop_postgres_schema, new_postgres_schema
from tests.e2e.recording import Call, Recorder
from tests.e2e.sync_harness import free_port, hashes, stop
from tests.loops import BackgroundLoop

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(300)]

SECRET = "replica-sync-secret-" + "y" * 24
USERS = ("rita", "sam", "tom")
TODO = (
    "def handler(event):\n    # TODO: validate the event before using it\n    return event['{n}']\n"
)


@dataclass
class Cluster:
    urls: list[str]
    pieces: dict[str, EmulatorServer]
    aiwfe: AIWFEEmulator
    calls: list[Call]
    schema: str
    loop: BackgroundLoop


def bearer(user: str) -> dict[str, str]:
    codec = JwtCodec(
        issuer="pieces-integration",
        audience="pieces-integration",
        secret=SECRET,
        public_key=None,
        jwks_url=None,
    )
    return {"Authorization": "Bearer " + codec.issue(user, Role.USER, ttl_seconds=900)}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    loop = BackgroundLoop()
    calls: list[Call] = []
    pieces: dict[str, EmulatorServer] = {}
    aiwfe = AIWFEEmulator()
    aiwfe.app = Recorder(aiwfe.app, "aiwfe", calls)  # type: ignore[assignment]
    for user in USERS:
        aiwfe.state.add_user(user)
        server = EmulatorServer(assets=30, seed=len(pieces) + 11)
        server.app = Recorder(server.app, f"pieces:{user}", calls)  # type: ignore[assignment]
        pieces[user] = server
    schema = new_postgres_schema("syncrep" + uuid.uuid4().hex[:6])
    prefix = f"pi-test-syncrep-{uuid.uuid4().hex[:8]}:"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        loop.run(aiwfe.start())
        for server in pieces.values():
            loop.run(server.start())
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("PIECES_INTEGRATION_") and key not in ("PORT",)
        }
        env.update(
            DATABASE_URL=POSTGRES_URL,
            DATABASE_SCHEMA=schema,
            REDIS_URL=REDIS_URL,
            REDIS_KEY_PREFIX=prefix,
            JWT_SECRET=SECRET,
            ENCRYPTION_KEY="ab" * 32,
            AIWFE_API_URL=aiwfe.url,
            LOG_LEVEL="warning",
            PIECES_INTEGRATION_SYNC__INTERVAL_SECONDS="1",
            PIECES_INTEGRATION_PIECES__RATE_LIMIT__REQUESTS_PER_MINUTE="600000",
            PIECES_INTEGRATION_PIECES__RATE_LIMIT__BURST_SIZE="10000",
        )
        urls = []
        for name in ("a", "b"):
            port = free_port()
            data = tmp_path / f"replica-{name}"
            data.mkdir()
            args = [sys.executable, "-m", "pieces_integration", "serve", "--host", "127.0.0.1"]
            if name == "a":
                args.append("--migrate")
            child = {**env, "PORT": str(port), "PIECES_INTEGRATION_DATA_DIR": str(data)}
            with (data / "server.log").open("wb") as output:
                processes.append(
                    subprocess.Popen(
                        args, env=child, cwd=data, stdout=output, stderr=subprocess.STDOUT
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
            _wait_ready(urls[-1], processes[-1])
        yield Cluster(urls, pieces, aiwfe, calls, schema, loop)
    finally:
        for process in processes:
            stop(process)
        for server in pieces.values():
            loop.run(server.stop())
        loop.run(aiwfe.stop())
        loop.close()
        drop_postgres_schema(schema)
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


async def _sync_storm(urls: list[str], rounds: int) -> list[int]:
    """Every user, on both replicas at once, `rounds` times."""
    async with httpx.AsyncClient(timeout=120) as http:
        requests = [
            http.post(f"{url}/api/v1/context/{user}/sync", headers=bearer(user))
            for _ in range(rounds)
            for url in urls
            for user in USERS
        ]
        return [r.status_code for r in await asyncio.gather(*requests)]


def _aiwfe_put(cluster: Cluster, user: str, asset_id: str, content: str) -> None:
    body = {"name": f"ai {asset_id}", "content": content, "language": "python", "tags": ["ai"]}
    cluster.aiwfe.state.put_asset(user, asset_id, body)


def _todo_seed(tag: str) -> dict[str, Any]:
    raw = TODO.replace("{n}", tag)
    fragment = {"string": {"raw": raw}, "metadata": {"ext": "py"}}
    return {"asset": {"format": {"fragment": fragment}, "metadata": {"name": f"todo {tag}"}}}


async def _overlaps(schema: str) -> list[str]:
    engine = create_engine(POSTGRES_URL, schema=schema)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        f'SELECT user_id, started_at, completed_at FROM "{schema}".sync_runs '
                        "ORDER BY user_id, started_at"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    found = []
    previous: dict[str, Any] = {}
    for user_id, started, completed in rows:
        if user_id in previous:
            last = previous[user_id]
            if last is None or started < last:  # None: that run is still going
                found.append(f"{user_id}: run at {started} began before {last or 'its end'}")
        previous[user_id] = completed
    assert {row[0] for row in rows} == set(USERS), rows
    return found


def test_two_replicas_never_sync_a_user_twice_at_once_nor_deliver_twice(
    cluster: Cluster,
) -> None:
    a, _ = cluster.urls
    for user in USERS:
        pieces_url = cluster.pieces[user].base_url
        connected = httpx.post(
            f"{a}/api/v1/integrations/pieces/connect",
            json={"pieces_url": pieces_url},
            headers=bearer(user),
            timeout=30,
        )
        assert connected.status_code == 200 and connected.json()["success"], connected.text

    async def aiwfe_only() -> None:  # assets only AIWFE has: Pieces must get each once
        for user in USERS:
            for n in range(6):
                _aiwfe_put(cluster, user, f"ai-{user}-{n}", f"print('{user} {n}')\n")

    cluster.loop.run(aiwfe_only())

    statuses = _sync_storm(cluster.urls, rounds=2)
    assert set(asyncio.run(statuses)) <= {200, 202}

    # Changes on both sides between rounds: deletes (outbox toward the other side), and
    # Pieces assets with a TODO (a task suggestion toward AIWFE, through the outbox).
    async def change_both_sides() -> None:  # on the emulators' own loop
        for user in USERS:
            mine = sorted(cluster.aiwfe.state.assets[user])
            for asset_id in [i for i in mine if not i.startswith("ai-")][:3]:
                del cluster.aiwfe.state.assets[user][asset_id]
            for n in range(3):
                _aiwfe_put(cluster, user, f"ai-{user}-late-{n}", f"print('late {user} {n}')\n")
            for n in range(2):
                cluster.pieces[user].state.create_from_seed(_todo_seed(f"{user}{n}"))

    cluster.loop.run(change_both_sides())
    asyncio.run(_sync_storm(cluster.urls, rounds=3))
    time.sleep(3)  # the schedulers (1 s interval) keep running meanwhile
    asyncio.run(_sync_storm(cluster.urls, rounds=1))

    # 1. Runs of one user never overlapped, across both replicas.
    assert asyncio.run(_overlaps(cluster.schema)) == []

    calls = cluster.calls
    for user in USERS:
        pieces_calls = [c for c in calls if c.target == f"pieces:{user}"]
        creates = [c for c in pieces_calls if c.path == "/assets/create"]
        # 2. Pieces received each needed create exactly once (6 early + 3 late).
        assert len(creates) == 9, Counter(c.status for c in creates)
        deletes = Counter(c.path for c in pieces_calls if c.path.endswith("/delete"))
        assert len(deletes) == 3 and set(deletes.values()) == {1}, deletes
        # 3. AIWFE: each asset created once, each suggestion batch delivered once.
        base = f"/v1/users/{user}/"
        aiwfe_calls = [c for c in calls if c.target == "aiwfe" and c.path.startswith(base)]
        created = Counter(c.path for c in aiwfe_calls if c.method == "PUT" and c.status == 201)
        assert created and set(created.values()) == {1}, created.most_common(3)
        suggestions = Counter(
            c.idempotency_key for c in aiwfe_calls if c.path.endswith("/suggestions")
        )
        assert suggestions and set(suggestions.values()) == {1}, suggestions
        assert None not in suggestions
        # 4. Both sides hold the same assets, none twice beyond the library's own copies.
        on_pieces = hashes(r.content for r in cluster.pieces[user].state.assets.values())
        on_aiwfe = hashes(x["content"] for x in cluster.aiwfe.state.assets[user].values())
        assert on_pieces == on_aiwfe
        assert on_pieces.total() == 30 + 9 + 2 - 3
