"""`pieces-integration mcp`: the MCP server over stdio on the embedded default.

The process is the service for the length of the session (database, index, sync), acting
as the local user that `serve` creates, so what an agent saves is in the web console too.
stdout carries only the protocol; logs go to stderr.

While `serve` runs on the same data directory it holds the embedded vector store (one
process at a time); then `StoreInUse` is raised before stdin is touched, and the command
forwards to that `serve` instead (`proxy`), as the same local user.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from pieces_integration.bootstrap import Overrides, bootstrap
from pieces_integration.config import Settings
from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.entrypoints.mcp.auth import LOCAL_PRINCIPAL, fixed_caller
from pieces_integration.entrypoints.mcp.server import build_mcp_server


class StoreInUse(Exception):
    """The embedded store could not be opened here (most often: `serve` has it open)."""


async def serve_stdio(settings: Settings, overrides: Overrides | None = None) -> None:
    container = bootstrap(settings, overrides)
    try:
        async with AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(container.sync.scheduler)
                await stack.enter_async_context(container.search.running())
            except DependencyUnavailable as exc:
                raise StoreInUse(exc.message) from exc
            server = build_mcp_server(container, fixed_caller(LOCAL_PRINCIPAL))
            await server.run_stdio_async()
    finally:
        await container.aclose()
