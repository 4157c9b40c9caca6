"""Two `serve` processes on one Redis: an event caused by a write through replica B reaches
a client on replica A exactly once, in order, and a ticket issued by one is redeemed by the
other."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.domain.model import Role
from tests.conftest import POSTGRES_URL, REDIS_URL, drop_postgres_schema, new_postgres_schema

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(120)]

SECRET = "replica-test-secret-" + "x" * 24


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
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


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    import uuid

    schema = new_postgres_schema("ws" + uuid.uuid4().hex[:6])
    prefix = f"pi-test-ws-{uuid.uuid4().hex[:8]}:"
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PIECES_INTEGRATION_") and key not in ("PORT", "REDIS_URL")
    }
    base.update(
        DATABASE_URL=POSTGRES_URL,
        DATABASE_SCHEMA=schema,
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX=prefix,
        JWT_SECRET=SECRET,
        LOG_LEVEL="warning",
    )
    processes: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for name in ("a", "b"):
            port = free_port()
            data = tmp_path_factory.mktemp(f"replica-{name}")
            env = {**base, "PORT": str(port), "PIECES_INTEGRATION_DATA_DIR": str(data)}
            args = [sys.executable, "-m", "pieces_integration", "serve", "--host", "127.0.0.1"]
            if name == "a":
                args.append("--migrate")
            with (data / "server.log").open("wb") as output:  # the child keeps its own copy
                process = subprocess.Popen(
                    args, env=env, cwd=Path(data), stdout=output, stderr=subprocess.STDOUT
                )
            processes.append(process)
            urls.append(f"http://127.0.0.1:{port}")
            wait_ready(urls[-1], process)
        yield urls[0], urls[1]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        drop_postgres_schema(schema)
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def bearer(user: str, role: Role = Role.USER) -> dict[str, str]:
    codec = JwtCodec(
        issuer="pieces-integration",
        audience="pieces-integration",
        secret=SECRET,
        public_key=None,
        jwks_url=None,
    )
    return {"Authorization": "Bearer " + codec.issue(user, role, ttl_seconds=600)}


async def drain(ws: websockets.ClientConnection, quiet: float) -> list[dict[str, object]]:
    got = []
    while True:
        try:
            got.append(json.loads(await asyncio.wait_for(ws.recv(), quiet)))
        except TimeoutError:
            return got


def test_a_write_through_replica_b_reaches_a_client_on_replica_a_exactly_once(
    replicas: tuple[str, str],
) -> None:
    a, b = replicas
    alice = bearer("alice")

    async def scenario() -> None:
        url = a.replace("http", "ws") + "/ws"
        async with websockets.connect(url, additional_headers=alice) as ws:
            # Other writers (the sync engine) publish too; this test follows asset events.
            subscribe = {"type": "subscribe", "payload": {"events": ["asset_created"]}}
            await ws.send(json.dumps(subscribe))
            ack = json.loads(await ws.recv())
            assert ack["type"] == "subscribed"
            async with httpx.AsyncClient(base_url=b, headers=alice, timeout=10) as http:
                created = []
                for i in range(5):
                    response = await http.post(
                        "/api/v1/assets", json={"name": f"s{i}", "content": f"print({i})"}
                    )
                    assert response.status_code == 201, response.text
                    created.append(response.json()["id"])
            events = [m for m in await drain(ws, 1.5) if m["type"] != "heartbeat"]
        assert [m["type"] for m in events] == ["asset_created"] * 5
        assert [m["payload"]["asset"]["id"] for m in events] == created  # type: ignore[index]
        ids = [m["id"] for m in events]
        assert ids == sorted(set(ids)) and ids[0] > ack["payload"]["last_event_id"]

    asyncio.run(scenario())


def test_a_ticket_issued_by_one_replica_is_redeemed_once_on_the_other(
    replicas: tuple[str, str],
) -> None:
    a, b = replicas
    ticket = httpx.post(f"{b}/api/v1/ws-ticket", headers=bearer("bob")).json()["ticket"]

    async def scenario() -> None:
        url = a.replace("http", "ws") + f"/ws?ticket={ticket}"
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "subscribe", "payload": {}}))
            assert json.loads(await ws.recv())["payload"]["user_id"] == "bob"
        other = b.replace("http", "ws") + f"/ws?ticket={ticket}"
        async with websockets.connect(other) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001

    asyncio.run(scenario())


def test_deleting_a_user_through_replica_b_closes_their_websocket_on_a_within_a_second(
    replicas: tuple[str, str],
) -> None:
    """Issue 20: revocation reaches every replica (Redis pub/sub), and the token then fails."""
    a, b = replicas
    erin = bearer("erin")

    assert httpx.get(f"{a}/api/v1/assets", headers=erin).status_code == 200

    async def scenario() -> None:
        async with websockets.connect(
            a.replace("http", "ws") + "/ws", additional_headers=erin
        ) as ws:
            await ws.send(json.dumps({"type": "subscribe", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            async with httpx.AsyncClient(base_url=b, headers=erin, timeout=10) as http:
                assert (await http.delete("/api/v1/users/erin")).status_code == 204
            started = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 1.0)
            assert time.monotonic() - started < 1.0
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001

    asyncio.run(scenario())
    assert httpx.get(f"{a}/api/v1/assets", headers=erin).status_code == 401


def test_disabling_a_user_through_replica_b_closes_their_websocket_on_a_within_a_second(
    replicas: tuple[str, str],
) -> None:
    """Issue 20: disabling revokes like deleting, on every replica; re-enabling restores."""
    a, b = replicas
    fern, root = bearer("fern"), bearer("root", Role.ADMIN)
    assert httpx.get(f"{a}/api/v1/assets", headers=fern).status_code == 200

    async def scenario() -> None:
        async with websockets.connect(
            a.replace("http", "ws") + "/ws", additional_headers=fern
        ) as ws:
            await ws.send(json.dumps({"type": "subscribe", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "subscribed"
            async with httpx.AsyncClient(base_url=b, headers=root, timeout=10) as http:
                response = await http.patch("/api/v1/users/fern", json={"disabled": True})
                assert response.status_code == 200, response.text
            started = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 1.0)
            assert time.monotonic() - started < 1.0
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001

    asyncio.run(scenario())
    refused = httpx.get(f"{a}/api/v1/assets", headers=fern)
    assert refused.status_code == 401 and "disabled" in refused.json()["detail"]
    enabled = httpx.patch(f"{b}/api/v1/users/fern", json={"disabled": False}, headers=root)
    assert enabled.status_code == 200, enabled.text
    assert httpx.get(f"{a}/api/v1/assets", headers=fern).status_code == 200
