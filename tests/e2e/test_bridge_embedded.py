"""The bridge on the embedded default (one process, no Redis): pair, connect, import,
write back, status, revoke (issue 13)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pieces_integration.adapters.sql import migrate
from pieces_integration.bootstrap import Container
from pieces_integration.config import load_settings
from pieces_integration.domain.errors import Forbidden, UpstreamError
from pieces_integration.domain.model import Role
from pieces_integration.emulators.pieces.server import EmulatorServer
from pieces_integration.entrypoints.api.app import create_app
from tests.e2e.bridge_harness import (
    BRIDGES,
    STATUS,
    asset_count,
    pair,
    running_agent,
    settings_for,
    wait_for,
)
from tests.e2e.live_server import live_server

pytestmark = pytest.mark.anyio


async def test_a_bridge_serves_sync_status_and_writes_on_the_embedded_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIECES_INTEGRATION_PIECES__BRIDGE_HEARTBEAT_SECONDS", "0.5")
    settings = load_settings()
    await asyncio.to_thread(migrate.upgrade, settings.sqlalchemy_url)
    emulator = EmulatorServer(assets=20, seed=5)
    await emulator.start()
    app = create_app(settings)
    try:
        async with live_server(app) as port:
            container: Container = app.state.container
            base = f"http://127.0.0.1:{port}"
            alice = {
                "Authorization": "Bearer "
                + container.jwt.issue("alice", Role.USER, ttl_seconds=600)
            }
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                paired = await pair(http, alice)
                settings_ = settings_for(paired, (base,), emulator.base_url)
                async with running_agent(settings_) as agent:
                    assert await wait_for(lambda: _count_is(http, alice, 20))

                    async def bridge_status() -> dict[str, object] | None:
                        body = (await http.get(STATUS, headers=alice)).json()
                        bridge = body.get("bridge") or {}
                        return body if bridge.get("rtt_ms") is not None else None

                    status = await wait_for(bridge_status)
                    assert status["mode"] == "bridge"
                    assert status["connected"] is True
                    assert status["bridge"]["connected"] is True
                    assert status["bridge"]["agent_version"] == "test-agent"
                    listed = (await http.get(BRIDGES, headers=alice)).json()
                    assert listed["count"] == 1 and listed["data"][0]["connected"] is True

                    created = await http.post(
                        "/api/v1/assets",
                        json={
                            "name": "from the api",
                            "content": "print('hi')",
                            "language": "python",
                        },
                        headers=alice,
                    )
                    assert created.status_code == 201, created.text
                    await http.post("/api/v1/context/alice/sync", headers=alice)

                    async def in_pieces() -> bool:
                        return any(a.name == "from the api" for a in emulator.state.assets.values())

                    assert await wait_for(in_pieces)
                    assert agent.connections == 1

                    # Only Pieces passes, and only for its own user.
                    hub = container.bridge.hub
                    with pytest.raises(UpstreamError) as refused:
                        await hub.request(
                            "alice",
                            paired.bridge_id,
                            "GET",
                            "/admin/keys",
                            params=None,
                            json_body=None,
                            headers=None,
                            call_timeout=5,
                        )
                    assert refused.value.details["kind"] == "refused"
                    with pytest.raises(Forbidden):
                        await hub.request(
                            "bob",
                            paired.bridge_id,
                            "GET",
                            "/assets",
                            params=None,
                            json_body=None,
                            headers=None,
                            call_timeout=5,
                        )
                    bob = {
                        "Authorization": "Bearer "
                        + container.jwt.issue("bob", Role.USER, ttl_seconds=600)
                    }
                    hijack = await http.post(
                        "/api/v1/integrations/pieces/connect",
                        json={"pieces_url": f"bridge://{paired.bridge_id}"},
                        headers=bob,
                    )
                    assert hijack.status_code == 422, hijack.text
                    assert (await http.get(STATUS, headers=bob)).json()["mode"] == "direct"
                    assert (await http.get(BRIDGES, headers=bob)).json()["count"] == 0
                    assert await asset_count(http, bob) == 0

                    revoked = await http.delete(f"{BRIDGES}/{paired.bridge_id}", headers=alice)
                    assert revoked.status_code == 204

                    async def agent_stopped() -> bool:
                        return agent.status.get("state") == "revoked"

                    assert await wait_for(agent_stopped, within=5)
                    listed = (await http.get(BRIDGES, headers=alice)).json()
                    assert listed["count"] == 0
                    admin = {
                        "Authorization": "Bearer "
                        + container.jwt.issue("root", Role.ADMIN, ttl_seconds=600)
                    }
                    audit = await http.get(
                        "/api/v1/audit", params={"user_id": "alice"}, headers=admin
                    )
                    actions = {entry["action"] for entry in audit.json()}
                    assert {
                        "bridge_pairing_created",
                        "bridge_paired",
                        "bridge_connected",
                        "bridge_revoked",
                    } <= actions, actions
    finally:
        await emulator.stop()


async def _count_is(http: httpx.AsyncClient, headers: dict[str, str], expected: int) -> bool:
    return await asset_count(http, headers) == expected
