"""Graceful drain on SIGTERM (issue 14): `serve` stops being ready while it still serves,
finishes the request in flight, tells WebSocket clients to reconnect (1012 after a
`reconnect` message), releases the sync lock it held, and exits cleanly.

One replica on PostgreSQL + Redis; the user's Pieces OS is an emulator answering slowly, so
a sync is still running when the signal arrives.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis
import websockets

from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.domain.model import Role
from tests.conftest import POSTGRES_URL, REDIS_URL, drop_postgres_schema, new_postgres_schema
from tests.deploy.wheel_install import clean_env
from tests.e2e.helpers import emulator_thread
from tests.e2e.sync_harness import free_port, stop

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(180)]

SECRET = "drain-test-secret-" + "d" * 24
DRAIN_SECONDS = 2.0


def _bearer(user: str) -> dict[str, str]:
    codec = JwtCodec(
        issuer="pieces-integration",
        audience="pieces-integration",
        secret=SECRET,
        public_key=None,
        jwks_url=None,
    )
    return {"Authorization": "Bearer " + codec.issue(user, Role.USER, ttl_seconds=600)}


def _until(condition: object, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigterm_drains_ready_in_flight_websockets_and_locks(tmp_path: Path) -> None:
    schema = new_postgres_schema("drain" + uuid.uuid4().hex[:6])
    prefix = f"pi-test-drain-{uuid.uuid4().hex[:8]}:"
    store = redis.Redis.from_url(REDIS_URL)
    lock_key = f"{prefix}lock:sync:dora".encode()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(
        DATABASE_URL=POSTGRES_URL,
        DATABASE_SCHEMA=schema,
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX=prefix,
        JWT_SECRET=SECRET,
        ENCRYPTION_KEY="ef" * 32,
        PORT=str(port),
        LOG_LEVEL="warning",
        PIECES_INTEGRATION_DATA_DIR=str(tmp_path),
        PIECES_INTEGRATION_SERVER__DRAIN_SECONDS=str(DRAIN_SECONDS),
        PIECES_INTEGRATION_SYNC__INTERVAL_SECONDS="3600",
        PIECES_INTEGRATION_PIECES__RATE_LIMIT__REQUESTS_PER_MINUTE="600000",
        PIECES_INTEGRATION_PIECES__RATE_LIMIT__BURST_SIZE="10000",
    )
    args = [sys.executable, "-m", "pieces_integration", "serve", "--host", "127.0.0.1"]
    headers = _bearer("dora")
    with emulator_thread(assets=12, seed=5) as pieces:
        process = None
        try:
            with (tmp_path / "serve.log").open("wb") as log:
                process = subprocess.Popen(
                    [*args, "--migrate"], env=env, cwd=tmp_path, stdout=log, stderr=log
                )
            _until(lambda: _status(base + "/ready") == 200, 90, "ready")
            connected = httpx.post(
                base + "/api/v1/integrations/pieces/connect",
                json={"pieces_url": pieces.base_url},
                headers=headers,
                timeout=30,
            )
            assert connected.status_code == 200, connected.text
            _until(lambda: not store.exists(lock_key), 30, "the first sync to end")
            pieces.faults.config.latency_ms = 250  # every Pieces answer now takes 250 ms

            messages: list[dict[str, object]] = []
            closed: list[int | None] = []
            ws_thread = threading.Thread(
                target=lambda: asyncio.run(_listen(base, headers, messages, closed)), daemon=True
            )
            ws_thread.start()
            _until(lambda: any(m.get("type") == "subscribed" for m in messages), 20, "subscribe")

            result: list[httpx.Response] = []
            sync = threading.Thread(
                target=lambda: result.append(
                    httpx.post(f"{base}/api/v1/context/dora/sync", headers=headers, timeout=60)
                ),
                daemon=True,
            )
            sync.start()
            _until(lambda: store.exists(lock_key), 20, "the sync to hold its lock")
            process.send_signal(signal.SIGTERM)

            _until(lambda: _status(base + "/ready") == 503, DRAIN_SECONDS, "ready -> 503")
            assert httpx.get(base + "/ready", timeout=2).json()["type"].endswith(":draining")
            assert _status(base + "/health") == 200  # still serving while draining
            sync.join(60)
            assert result and result[0].status_code == 200, result and result[0].text
            ws_thread.join(30)
            assert closed == [1012]
            assert [m["type"] for m in messages][-1] == "reconnect"
            # uvicorn re-raises the signal it handled once it has shut down cleanly.
            assert process.wait(40) in (0, -signal.SIGTERM)
            assert "Traceback" not in (tmp_path / "serve.log").read_text()
            assert not store.exists(lock_key)
        finally:
            if process is not None:
                stop(process)
            drop_postgres_schema(schema)
            keys = list(store.scan_iter(match=f"{prefix}*"))
            if keys:
                store.delete(*keys)
            store.close()


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


async def _listen(
    base: str, headers: dict[str, str], messages: list[dict[str, object]], closed: list[int | None]
) -> None:
    async with websockets.connect(
        base.replace("http", "ws") + "/ws", additional_headers=headers
    ) as ws:
        await ws.send(json.dumps({"type": "subscribe", "payload": {}}))
        try:
            for _ in range(10_000):
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
        except websockets.ConnectionClosed as exc:
            closed.append(exc.rcvd.code if exc.rcvd else None)
