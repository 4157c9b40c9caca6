"""Bridges across two `serve` replicas on PostgreSQL + Redis (issue 13): an agent on replica
A serves a sync triggered on replica B; a revocation made on B cuts the agent on A within a
second and it cannot come back; alice's bridge never answers for bob; when A stops, the
agent moves to B and the next sync completes there.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pieces_integration.adapters.bridge import agent_files
from pieces_integration.adapters.sql import migrate
from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.domain.model import Role
from pieces_integration.emulators.pieces.server import EmulatorServer
from tests.conftest import POSTGRES_URL, REDIS_URL, drop_postgres_schema, new_postgres_schema
from tests.e2e.bridge_harness import BRIDGES, STATUS, wait_until
from tests.e2e.sync_harness import ROOT, _clean_env, _wait_http, free_port, stop
from tests.loops import BackgroundLoop

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(240)]
SECRET = "bridge-replica-secret-" + "q" * 24
ASSETS = 20


def bearer(user: str) -> dict[str, str]:
    codec = JwtCodec(
        issuer="pieces-integration",
        audience="pieces-integration",
        secret=SECRET,
        public_key=None,
        jwks_url=None,
    )
    return {"Authorization": "Bearer " + codec.issue(user, Role.USER, ttl_seconds=900)}


@dataclass
class Cluster:
    a: str
    b: str
    replica_a: subprocess.Popen[bytes]
    pieces: dict[str, EmulatorServer]
    tmp: Path


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    loop = BackgroundLoop()
    pieces = {
        user: EmulatorServer(assets=ASSETS, seed=n + 3) for n, user in enumerate(("alice", "bob"))
    }
    schema = new_postgres_schema("bridgerep" + uuid.uuid4().hex[:6])
    prefix = f"pi-test-bridgerep-{uuid.uuid4().hex[:8]}:"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for server in pieces.values():
            loop.run(server.start())
        env = {
            **_clean_env(),
            "DATABASE_URL": POSTGRES_URL,
            "DATABASE_SCHEMA": schema,
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": prefix,
            "JWT_SECRET": SECRET,
            "ENCRYPTION_KEY": "ef" * 32,
            "LOG_LEVEL": "info",
            "PIECES_INTEGRATION_SYNC__INTERVAL_SECONDS": "300",
            "PIECES_INTEGRATION_PIECES__BRIDGE_HEARTBEAT_SECONDS": "1",
            "PIECES_INTEGRATION_PIECES__RATE_LIMIT__REQUESTS_PER_MINUTE": "600000",
            "PIECES_INTEGRATION_PIECES__RATE_LIMIT__BURST_SIZE": "10000",
        }
        migrate.upgrade(POSTGRES_URL, schema=schema)  # here, so both replicas start at once
        urls = []
        for name in ("a", "b"):
            port = free_port()
            data = tmp_path / f"replica-{name}"
            data.mkdir()
            args = [sys.executable, "-m", "pieces_integration", "serve", "--host", "127.0.0.1"]
            child = {**env, "PORT": str(port), "PIECES_INTEGRATION_DATA_DIR": str(data)}
            with (data / "server.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        args, env=child, cwd=data, stdout=log, stderr=subprocess.STDOUT
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            _wait_http(url + "/health", process)
        yield Cluster(urls[0], urls[1], processes[0], pieces, tmp_path)
    finally:
        for process in processes:
            stop(process)
        for server in pieces.values():
            loop.run(server.stop())
        loop.close()
        drop_postgres_schema(schema)
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def _pair(http: httpx.Client, user: str, config: Path, server: str) -> str:
    headers = bearer(user)
    code = http.post(BRIDGES, json={"name": f"{user}-laptop"}, headers=headers).json()[
        "pairing_code"
    ]
    device = uuid.uuid4().hex
    body = http.post(BRIDGES + "/pair", json={"code": code, "device_id": device}).json()
    agent_files.save_pairing(
        config,
        agent_files.Pairing(
            server, body["bridge_id"], user, f"{user}-laptop", body["credential"], device
        ),
    )
    return str(body["bridge_id"])


def _agent(cluster: Cluster, config: Path, pieces: str, log: str) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "pieces_integration", "bridge", "run", "--server", cluster.a]
    args += ["--server", cluster.b, "--pieces-url", pieces, "--config-dir", str(config)]
    args += ["--heartbeat", "1", "--backoff-base", "0.1"]
    with (cluster.tmp / log).open("ab") as out:
        return subprocess.Popen(
            args, env=_clean_env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def _connected(http: httpx.Client, user: str) -> bool:
    listed = http.get(BRIDGES, headers=bearer(user)).json()
    return bool(listed["data"]) and listed["data"][0]["connected"] is True


def _count(http: httpx.Client, user: str) -> int:
    response = http.get("/api/v1/assets", params={"limit": 1}, headers=bearer(user))
    return int(response.headers.get("X-Total-Count", -1))


def _write_and_sync(http: httpx.Client, user: str, name: str) -> None:
    headers = bearer(user)
    body = {"name": name, "content": f"print('{name}')", "language": "python"}
    assert http.post("/api/v1/assets", json=body, headers=headers).status_code == 201
    synced = http.post(f"/api/v1/context/{user}/sync", headers=headers)
    assert synced.status_code in (200, 202), synced.text


def _agent_state(config: Path) -> str | None:
    return (agent_files.load_status(config) or {}).get("state")


def _names(server: EmulatorServer) -> list[str]:
    return [str(a.name) for a in list(server.state.assets.values())]


def test_bridges_across_replicas(cluster: Cluster) -> None:
    alice_config, bob_config = cluster.tmp / "alice", cluster.tmp / "bob"
    agents: list[subprocess.Popen[bytes]] = []
    with (
        httpx.Client(base_url=cluster.a, timeout=60) as on_a,
        httpx.Client(base_url=cluster.b, timeout=60) as on_b,
    ):
        try:
            _pair(on_a, "alice", alice_config, cluster.a)
            bob_bridge = _pair(on_b, "bob", bob_config, cluster.a)
            agents.append(
                _agent(cluster, alice_config, cluster.pieces["alice"].base_url, "alice.log")
            )
            agents.append(_agent(cluster, bob_config, cluster.pieces["bob"].base_url, "bob.log"))
            # Both agents on A (their first server); B sees them through the registry.
            for user in ("alice", "bob"):
                wait_until(lambda u=user: _connected(on_b, u), within=30)
                wait_until(lambda u=user: _count(on_b, u) == ASSETS, within=60, step=0.2)
            status = on_b.get(STATUS, headers=bearer("alice")).json()
            assert status["mode"] == "bridge" and status["bridge"]["connected"] is True, status

            # A sync triggered on B reaches alice's Pieces OS through the agent on A.
            _write_and_sync(on_b, "alice", "written-on-b")
            wait_until(lambda: "written-on-b" in _names(cluster.pieces["alice"]), within=20)

            # Alice's bridge never answers for bob.
            hijack = on_b.post(
                "/api/v1/integrations/pieces/connect",
                json={"pieces_url": f"bridge://{bob_bridge}"},
                headers=bearer("alice"),
            )
            assert hijack.status_code == 422
            _write_and_sync(on_b, "bob", "bobs-own")
            wait_until(lambda: "bobs-own" in _names(cluster.pieces["bob"]), within=20)
            assert "bobs-own" not in _names(cluster.pieces["alice"])
            assert "written-on-b" not in _names(cluster.pieces["bob"])

            # Revoked on B, bob's agent on A is cut within a second and cannot come back.
            started = time.monotonic()
            assert on_b.delete(f"{BRIDGES}/{bob_bridge}", headers=bearer("bob")).status_code == 204
            wait_until(lambda: _agent_state(bob_config) == "revoked", within=5, step=0.01)
            assert time.monotonic() - started < 1.0  # the agent on A was cut
            assert agents[1].wait(10) == 3
            again = _agent(cluster, bob_config, cluster.pieces["bob"].base_url, "bob.log")
            agents.append(again)
            assert again.wait(20) == 3
            assert "refused this bridge" in (cluster.tmp / "bob.log").read_text()

            # A stops: alice's agent is told to reconnect and lands on B; syncs carry on.
            stop(cluster.replica_a)
            wait_until(lambda: _connected(on_b, "alice"), within=15)
            wait_until(
                lambda: (
                    (agent_files.load_status(alice_config) or {})
                    .get("server", "")
                    .startswith(cluster.b.replace("http", "ws"))
                ),
                within=15,
            )
            _write_and_sync(on_b, "alice", "after-a-stopped")
            wait_until(lambda: "after-a-stopped" in _names(cluster.pieces["alice"]), within=20)
            assert _names(cluster.pieces["alice"]).count("written-on-b") == 1
        finally:
            for agent in agents:
                stop(agent)
