"""`pieces-integration mcp --server URL --api-key KEY`: a local stdio MCP server that
forwards every request to a remote service's `/mcp`.

For clients that only launch commands: the remote does the work, with the key's user and
its read-only setting; its tools, resources and errors pass through unchanged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from pieces_integration import __version__
from pieces_integration.domain.auth import API_KEY_PREFIX
from pieces_integration.entrypoints.mcp.names import PATH, SERVER_NAME

CONNECT_SECONDS = 10.0
# Longer than the service's own bound on a tool call, so its answer (or error) arrives.
CALL_SECONDS = 120.0


def endpoint(server: str) -> str:
    """`http://host:8080` -> `http://host:8080/mcp`; a URL with a path is kept as given."""
    parts = urlsplit(server.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--server must be an http(s) URL, not {server!r}")
    path = parts.path if parts.path not in ("", "/") else PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def credential_headers(api_key: str) -> dict[str, str]:
    """An API key (`pk_...`) as X-API-Key, anything else as a bearer token (JWT)."""
    if api_key.startswith(API_KEY_PREFIX):
        return {"X-API-Key": api_key}
    return {"Authorization": f"Bearer {api_key}"}


class RemoteRefused(Exception):
    """The remote service did not let this key in (or is no MCP endpoint); says why."""


async def check_access(http: httpx2.AsyncClient, url: str) -> None:
    """One plain request first, so a wrong key or URL fails with the service's own words
    (its problem detail) instead of a protocol error."""
    response = await http.get(url, headers={"Accept": "text/event-stream"})
    if response.status_code in (401, 403, 404, 421):
        try:
            detail = response.json().get("detail") or response.text
        except ValueError:
            detail = response.text
        raise RemoteRefused(f"{url} answered {response.status_code}: {str(detail).strip()[:300]}")


def forwarding_server(remote: ClientSession, instructions: str | None) -> Server[Any]:
    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return await remote.list_tools(params=params)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return await remote.call_tool(params.name, params.arguments)

    async def list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return await remote.list_resources(params=params)

    async def list_templates(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return await remote.list_resource_templates(params=params)

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await remote.read_resource(str(params.uri))

    return Server(
        SERVER_NAME,
        version=__version__,
        instructions=instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )


async def serve_proxy(server: str, api_key: str) -> None:
    """Connect to the remote first (a bad URL or key fails here, before stdio is served)."""
    url = endpoint(server)
    timeout = httpx2.Timeout(CONNECT_SECONDS, read=CALL_SECONDS)
    async with httpx2.AsyncClient(headers=credential_headers(api_key), timeout=timeout) as http:
        await check_access(http, url)
        await _forward(http, url)


async def _forward(http: httpx2.AsyncClient, url: str) -> None:
    async with (
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, read_timeout_seconds=CALL_SECONDS) as remote,
    ):
        hello = await remote.initialize()
        local = forwarding_server(remote, hello.instructions)
        async with stdio_server() as (stdin, stdout):
            await local.run(stdin, stdout, local.create_initialization_options())
