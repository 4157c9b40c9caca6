"""A disabled account's bridge (issue 20): its live session is cut within a second, the
same credential is refused while disabled, and works again once the account is enabled."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from pieces_integration.adapters.sql import migrate
from pieces_integration.bootstrap import Container
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Role
from pieces_integration.emulators.pieces.server import EmulatorServer
from pieces_integration.entrypoints.api.app import create_app
from tests.e2e.bridge_harness import BRIDGES, pair, running_agent, settings_for, wait_for
from tests.e2e.live_server import live_server

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


async def test_disabling_cuts_the_bridge_and_enabling_lets_the_same_credential_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIECES_INTEGRATION_PIECES__BRIDGE_HEARTBEAT_SECONDS", "0.5")
    settings = load_settings()
    await asyncio.to_thread(migrate.upgrade, settings.sqlalchemy_url)
    emulator = EmulatorServer(assets=2, seed=3)
    await emulator.start()
    app = create_app(settings)
    try:
        async with live_server(app) as port:
            container: Container = app.state.container
            base = f"http://127.0.0.1:{port}"

            def bearer(user_id: str, role: Role) -> dict[str, str]:
                token = container.jwt.issue(user_id, role, ttl_seconds=600)
                return {"Authorization": f"Bearer {token}"}

            alice, root = bearer("alice", Role.USER), bearer("root", Role.ADMIN)
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:

                async def connected() -> bool:
                    listed = (await http.get(BRIDGES, headers=alice)).json()
                    return bool(listed["count"] == 1 and listed["data"][0]["connected"])

                async def set_disabled(value: bool) -> None:
                    body = {"disabled": value}
                    response = await http.patch("/api/v1/users/alice", json=body, headers=root)
                    assert response.status_code == 200, response.text

                paired = await pair(http, alice)
                agent_settings = settings_for(paired, (base,), emulator.base_url)
                async with running_agent(agent_settings) as agent:
                    assert await wait_for(connected)
                    await set_disabled(True)
                    started = time.monotonic()

                    async def cut() -> bool:
                        return agent.status.get("state") == "revoked"

                    assert await wait_for(cut, within=1.0, step=0.02)
                    assert time.monotonic() - started < 1.0
                async with running_agent(agent_settings) as again:  # refused while disabled

                    async def refused() -> bool:  # the agent gives up by itself: 403
                        return again.connections == 0 and again.status.get("state") == "stopped"

                    assert await wait_for(refused, within=10)
                await set_disabled(False)
                await http.get("/api/v1/assets", headers=alice)  # signs in again
                async with running_agent(agent_settings) as back:

                    async def reconnected() -> bool:
                        return back.connections == 1 and await connected()

                    assert await wait_for(reconnected, within=15)
    finally:
        await emulator.stop()
