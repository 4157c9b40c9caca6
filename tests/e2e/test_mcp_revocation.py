"""An MCP session over streamable HTTP whose user is disabled (issue 20): the open GET
stream ends within a second and the next request with the same token gets 401."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest

from pieces_integration.adapters.sql import migrate
from pieces_integration.bootstrap import Container
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.app import create_app
from tests.e2e.live_server import live_server

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

ACCEPT = {"Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}


async def test_disabling_the_user_ends_their_mcp_stream_within_a_second() -> None:
    settings = load_settings()
    await asyncio.to_thread(migrate.upgrade, settings.sqlalchemy_url)
    app = create_app(settings)
    async with live_server(app) as port:
        container: Container = app.state.container

        def bearer(user_id: str, role: Role) -> dict[str, str]:
            token = container.jwt.issue(user_id, role, ttl_seconds=600)
            return {"Authorization": f"Bearer {token}"}

        alice, root = bearer("alice", Role.USER), bearer("root", Role.ADMIN)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            opened = await http.post("/mcp", json=INITIALIZE, headers={**alice, **ACCEPT})
            assert opened.status_code == 200, opened.text
            session = {
                **alice,
                **ACCEPT,
                "Mcp-Session-Id": opened.headers["mcp-session-id"],
                "Mcp-Protocol-Version": "2025-06-18",
            }
            ready = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await http.post("/mcp", json=ready, headers=session)).status_code == 202
            async with http.stream("GET", "/mcp", headers=session) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                disabled = await http.patch(
                    "/api/v1/users/alice", json={"disabled": True}, headers=root
                )
                assert disabled.status_code == 200, disabled.text
                started = time.monotonic()

                async def drain() -> None:
                    async for _ in stream.aiter_raw():
                        pass

                # Ended, cleanly or cut (which one is uvicorn's choice); not timed out.
                with contextlib.suppress(httpx.RemoteProtocolError, httpx.ReadError):
                    await asyncio.wait_for(drain(), 1.0)
                assert time.monotonic() - started < 1.0
            listed = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
            again = await http.post("/mcp", json=listed, headers=session)
            assert again.status_code == 401, again.text
