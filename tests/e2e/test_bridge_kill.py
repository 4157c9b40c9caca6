"""kill -9 of the bridge agent in the middle of a 2,000-asset import, then a restart: the
import completes with nothing lost and nothing duplicated; a write made while the bridge was
down waits in the outbox and reaches Pieces once after it is back (issue 13)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pieces_integration.adapters.bridge import agent_files
from pieces_integration.adapters.sql import migrate
from pieces_integration.adapters.sql.tables import asset_links
from pieces_integration.bootstrap import Container
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Role, Side
from pieces_integration.emulators.pieces.server import EmulatorServer
from pieces_integration.entrypoints.api.app import create_app
from tests.e2e.bridge_harness import STATUS, asset_count, pair, wait_for
from tests.e2e.live_server import live_server
from tests.e2e.sync_harness import ROOT, _clean_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(240)]
ASSETS = 2000
PART = 64 * 1024


class SlowSnapshot:
    """Sends the library snapshot (GET /assets) in small parts, a little apart, and says
    when it started: so the agent can be killed while the import is on the wire."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.started = asyncio.Event()
        self.snapshots = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != "/assets":
            await self.app(scope, receive, send)
            return
        self.snapshots += 1

        async def sending(message: Any) -> None:
            if message["type"] != "http.response.body" or not message.get("body"):
                await send(message)
                return
            body: bytes = message["body"]
            more = message.get("more_body", False)
            for start in range(0, len(body), PART):
                self.started.set()
                last = start + PART >= len(body)
                await send(
                    {
                        "type": "http.response.body",
                        "body": body[start : start + PART],
                        "more_body": more or not last,
                    }
                )
                await asyncio.sleep(0.01)

        await self.app(scope, receive, sending)


def _agent(config: Path, server: str, pieces: str, log: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "pieces_integration", "bridge", "run", "--server", server]
    args += ["--pieces-url", pieces, "--config-dir", str(config), "--heartbeat", "1"]
    args += ["--backoff-base", "0.1"]
    with log.open("ab") as out:
        return subprocess.Popen(
            args, env=_clean_env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


async def test_kill_9_of_the_agent_mid_import_loses_and_duplicates_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PIECES_INTEGRATION_PIECES__BRIDGE_HEARTBEAT_SECONDS", "1")
    monkeypatch.setenv("PIECES_INTEGRATION_SYNC__INTERVAL_SECONDS", "2")
    monkeypatch.setenv("PIECES_INTEGRATION_PIECES__RATE_LIMIT__REQUESTS_PER_MINUTE", "600000")
    monkeypatch.setenv("PIECES_INTEGRATION_PIECES__RATE_LIMIT__BURST_SIZE", "10000")
    settings = load_settings()
    await asyncio.to_thread(migrate.upgrade, settings.sqlalchemy_url)
    emulator = EmulatorServer(assets=ASSETS, seed=21)
    slow = SlowSnapshot(emulator.app)
    emulator.app = slow  # type: ignore[assignment]
    await emulator.start()
    app = create_app(settings)
    agent: subprocess.Popen[bytes] | None = None
    log = tmp_path / "agent.log"
    try:
        async with live_server(app) as port:
            container: Container = app.state.container
            base = f"http://127.0.0.1:{port}"
            alice = {
                "Authorization": "Bearer "
                + container.jwt.issue("alice", Role.USER, ttl_seconds=600)
            }
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                paired = await pair(http, alice)
                config = tmp_path / "agent"
                agent_files.save_pairing(
                    config,
                    agent_files.Pairing(
                        base,
                        paired.bridge_id,
                        "alice",
                        "laptop",
                        paired.credential,
                        paired.device_id,
                    ),
                )
                agent = _agent(config, base, emulator.base_url, log)
                await asyncio.wait_for(slow.started.wait(), 60)
                os.kill(agent.pid, signal.SIGKILL)  # mid-transfer of the 2,000-asset snapshot
                agent.wait(10)
                assert await asset_count(http, alice) < ASSETS

                # Offline: the status says so, in spec 8.4's terms.
                async def reported_offline() -> dict[str, Any] | None:
                    body: dict[str, Any] = (await http.get(STATUS, headers=alice)).json()
                    return body if body["bridge"] and not body["bridge"]["connected"] else None

                offline = await wait_for(reported_offline, within=10)
                assert offline["mode"] == "bridge" and offline["connected"] is False
                assert offline["state"] in ("disconnected", "connecting", "connection_failed")
                assert offline["failure"] == "network" and offline["user_message"]["actions"]

                # Written while the bridge is down: it waits in the outbox.
                created = await http.post(
                    "/api/v1/assets",
                    json={
                        "name": "written-while-offline",
                        "content": "x = 1",
                        "language": "python",
                    },
                    headers=alice,
                )
                assert created.status_code == 201, created.text
                await asyncio.sleep(0.5)
                assert not any(
                    a.name == "written-while-offline" for a in emulator.state.assets.values()
                )

                agent = _agent(config, base, emulator.base_url, log)
                assert await wait_for(
                    lambda: _count_is(http, alice, ASSETS + 1), within=120, step=0.25
                )

                async def offline_write_delivered() -> bool:
                    names = [a.name for a in emulator.state.assets.values()]
                    return names.count("written-while-offline") == 1

                assert await wait_for(offline_write_delivered, within=30)
                await asyncio.sleep(1.5)  # another scheduled run: still nothing doubled
                names = Counter(a.name for a in emulator.state.assets.values())
                assert len(emulator.state.assets) == ASSETS + 1
                assert names["written-while-offline"] == 1
                assert await asset_count(http, alice) == ASSETS + 1
                # Every Pieces asset is linked to exactly one of ours, and nothing else is.
                async with container.engine.connect() as conn:
                    rows = await conn.execute(
                        sa.select(asset_links.c.remote_id).where(
                            asset_links.c.user_id == "alice",
                            asset_links.c.side == Side.PIECES.value,
                        )
                    )
                    linked = [row.remote_id for row in rows]
                assert sorted(linked) == sorted(emulator.state.assets)
                assert slow.snapshots >= 2
    finally:
        if agent is not None and agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(15)
        await emulator.stop()


async def _count_is(http: httpx.AsyncClient, headers: dict[str, str], expected: int) -> bool:
    return await asset_count(http, headers) == expected
