"""The MCP server through a real socket and over stdio, with the SDK's ClientSession: a
running service's /mcp, `pieces-integration mcp --server URL --api-key KEY` (the local
proxy) and `pieces-integration mcp` on the embedded default (issue 17)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from fastapi import FastAPI
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from pieces_integration.adapters.sql import migrate
from pieces_integration.bootstrap import Overrides
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.app import create_app
from pieces_integration.entrypoints.mcp.proxy import RemoteRefused, serve_proxy
from pieces_integration.service_layer.auth import create_api_key
from pieces_integration.service_layer.local_admin import (
    LOCAL_ADMIN,
    create_local_admin,
    write_key_file,
)
from tests.e2e.live_server import live_server
from tests.e2e.mcp_helpers import READ_SECONDS, bearer, session, structured
from tests.fakes import HashingEmbedder

pytestmark = pytest.mark.anyio

COMMAND = [sys.executable, "-m", "pieces_integration", "mcp"]


@pytest.fixture
def app() -> FastAPI:
    settings = load_settings()
    migrate.upgrade(settings.sqlalchemy_url)
    return create_app(settings, overrides=Overrides(embedder=HashingEmbedder()))


@asynccontextmanager
async def over_stdio(*args: str, **env: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=COMMAND[0], args=[*COMMAND[1:], *args], env={**os.environ, **env}
    )
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, read_timeout_seconds=READ_SECONDS) as client,
    ):
        await asyncio.wait_for(client.initialize(), 60)  # a cold start loads the embedder
        yield client


async def round_trip(client: ClientSession, marker: str) -> str:
    """list tools; save_snippet -> search_snippets finds it -> get_snippets returns its body."""
    names = {tool.name for tool in (await client.list_tools()).tools}
    assert {"save_snippet", "search_snippets", "get_snippets"} <= names
    body = f"def {marker}_handler(event):\n    return event['{marker}']\n"
    saved = structured(
        await client.call_tool("save_snippet", {"content": body, "name": f"{marker} handler"})
    )
    found = structured(await client.call_tool("search_snippets", {"query": f"{marker} handler"}))
    assert saved["id"] in [hit["id"] for hit in found["results"]]
    got = structured(await client.call_tool("get_snippets", {"ids": [saved["id"]]}))
    assert got["snippets"][0]["content"] == body
    owner: str = got["snippets"][0]["user_id"]
    return owner


async def test_a_running_service_the_stdio_proxy_to_it_and_mcp_beside_it(app: FastAPI) -> None:
    async with live_server(app) as port:
        container = app.state.container
        url = f"http://127.0.0.1:{port}"
        async with (
            httpx2.AsyncClient(headers=bearer(container, "alice"), timeout=READ_SECONDS) as http,
            session(http, f"{url}/mcp") as client,
        ):
            assert await round_trip(client, "socket") == "alice"
        _, key = await create_api_key(
            container.uow, user_id="dana", role=Role.USER, name="ide", actor_id=None
        )
        async with over_stdio("--server", url, "--api-key", key) as client:
            assert await round_trip(client, "proxied") == "dana"
            hits = structured(await client.call_tool("search_snippets", {"query": "socket"}))
            assert hits["results"] == []  # alice's snippet is not dana's
            missing = await client.call_tool("update_snippet", {"id": "nope", "name": "x"})
            assert missing.is_error and "Not found (404 not_found)" in missing.content[0].text  # type: ignore[union-attr]
        with pytest.raises(RemoteRefused, match="answered 401: malformed API key"):
            await serve_proxy(url, "pk_wrong")  # fails before it serves stdio
        # This app holds the embedded store of the data directory, as `serve` would: `mcp`
        # without --server on the same directory goes through it, as the local user.
        write_key_file(container.settings.data_dir, await create_local_admin(container.uow))
        async with over_stdio(PORT=str(port)) as client:
            assert await round_trip(client, "beside") == LOCAL_ADMIN


async def test_stdio_on_the_embedded_default_acts_as_the_local_user() -> None:
    async with over_stdio() as client:
        assert await round_trip(client, "local") == LOCAL_ADMIN
