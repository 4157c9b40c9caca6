"""Assemble the MCP server from the container: the tools (no write tool in read-only mode)
and the `snippet://{id}` resource, acting for whoever `caller` names."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from pieces_integration import __version__
from pieces_integration.bootstrap import Container
from pieces_integration.entrypoints.mcp.auth import CallerOf
from pieces_integration.entrypoints.mcp.kit import ToolKit
from pieces_integration.entrypoints.mcp.names import SERVER_NAME
from pieces_integration.entrypoints.mcp.resources import register_resources
from pieces_integration.entrypoints.mcp.tools_read import register_read_tools
from pieces_integration.entrypoints.mcp.tools_write import register_write_tools

INSTRUCTIONS = (
    "Your code snippets, synced between Pieces OS and AIWFE, and your developer context. "
    "Search first (search_snippets answers ids and short previews), then read the bodies you "
    "need with get_snippets or the snippet://{id} resource. suggest_snippets ranks snippets "
    "for the file and task at hand."
)


def build_mcp_server(container: Container, caller: CallerOf) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer(
        SERVER_NAME,
        title="Pieces integration",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level=container.settings.monitoring.log_level.upper(),  # type: ignore[arg-type]
    )
    kit = ToolKit(container=container, caller=caller)
    register_read_tools(server, kit)
    if not container.settings.mcp.read_only:
        register_write_tools(server, kit)
    register_resources(server, kit)
    return server
