"""`snippet://{id}`: one of the caller's snippets as a resource (its content, as text)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from pieces_integration.entrypoints.mcp.errors import resource_errors
from pieces_integration.entrypoints.mcp.kit import ToolKit

SNIPPET_URI = "snippet://{id}"


def register_resources(server: MCPServer[Any], kit: ToolKit) -> None:
    container = kit.container

    @server.resource(
        SNIPPET_URI,
        name="snippet",
        title="Snippet",
        description="The content of one of your snippets, by id (ids come from search_snippets).",
        mime_type="text/plain",
    )
    async def snippet(id: Annotated[str, Field(max_length=64)], ctx: Context[Any, Any]) -> str:
        async with resource_errors(kit.timeout):
            asset = await container.assets.get(kit.principal(ctx), id)
        return asset.content
