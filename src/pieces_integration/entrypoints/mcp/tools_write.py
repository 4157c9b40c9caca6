"""The tools that write: save, update and delete snippets, update the context, sync now.

Absent in read-only mode (`mcp.read_only`). Each calls the use case its REST route calls,
so validation, limits, outbox messages to Pieces OS and AIWFE, events and audit are the
same.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from pieces_integration.domain.assets import AssetDraft
from pieces_integration.entrypoints.api.schemas.context import ContextUpdate, UserContextPublic
from pieces_integration.entrypoints.api.schemas.sync import SyncResultPublic
from pieces_integration.entrypoints.mcp.errors import tool_errors
from pieces_integration.entrypoints.mcp.kit import (
    Id,
    Keywords,
    Language,
    ShortText,
    Tags,
    ToolKit,
)
from pieces_integration.entrypoints.mcp.schemas import (
    DeletedSnippet,
    SnippetSummary,
    SyncNowResult,
)

# Characters; the service also checks the configured byte limit (api.max_asset_bytes).
MAX_CONTENT = 1024 * 1024
Content = Annotated[str, Field(min_length=1, max_length=MAX_CONTENT)]
Name = Annotated[str, Field(min_length=1, max_length=512)]
Description = Annotated[str, Field(max_length=10_000)]
Paths = Annotated[list[Annotated[str, Field(max_length=2000)]], Field(max_length=200)]

WRITE_TOOLS = ("save_snippet", "update_snippet", "delete_snippet", "update_context", "sync_now")


def register_write_tools(server: MCPServer[Any], kit: ToolKit) -> None:
    container = kit.container

    @server.tool(
        title="Save a snippet",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False
        ),
    )
    async def save_snippet(
        content: Content,
        name: Name,
        ctx: Context[Any, Any],
        language: Language | None = None,
        tags: Tags | None = None,
        description: Description | None = None,
    ) -> SnippetSummary:
        """Save a new snippet for the caller; it syncs to Pieces OS and AIWFE. Without a
        language, one is detected when the content makes it clear."""
        draft = AssetDraft(
            name=name, content=content, description=description, language=language, tags=tags
        )
        async with tool_errors(kit.timeout):
            asset = await container.assets.create(kit.principal(ctx), None, draft)
        return SnippetSummary.of(asset)

    @server.tool(
        title="Update a snippet",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True
        ),
    )
    async def update_snippet(
        id: Id,
        ctx: Context[Any, Any],
        content: Content | None = None,
        name: Name | None = None,
        language: Language | None = None,
        tags: Tags | None = None,
        description: Description | None = None,
        expected_version: Annotated[
            int | None, Field(ge=1, description="Refuse if the snippet changed since")
        ] = None,
    ) -> SnippetSummary:
        """Change some fields of a snippet; the fields not given stay as they are."""
        draft = AssetDraft(
            name=name, content=content, description=description, language=language, tags=tags
        )
        async with tool_errors(kit.timeout):
            asset = await container.assets.update(
                kit.principal(ctx), id, draft, full=False, expected_version=expected_version
            )
        return SnippetSummary.of(asset)

    @server.tool(
        title="Delete a snippet",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True
        ),
    )
    async def delete_snippet(id: Id, ctx: Context[Any, Any]) -> DeletedSnippet:
        """Delete one of the caller's snippets (from Pieces OS and AIWFE too, on the next sync)."""
        async with tool_errors(kit.timeout):
            await container.assets.delete(kit.principal(ctx), id)
        return DeletedSnippet(id=id, deleted=True)

    @server.tool(
        title="Update context",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True
        ),
    )
    async def update_context(
        ctx: Context[Any, Any],
        current_task: ShortText | None = None,
        active_project: Annotated[str | None, Field(max_length=512)] = None,
        active_files: Paths | None = None,
        keywords: Keywords | None = None,
        language_preferences: Annotated[list[Language] | None, Field(max_length=20)] = None,
        workspace_id: ShortText | None = None,
    ) -> UserContextPublic:
        """Change the caller's developer context (the fields given; an empty list clears
        one). Suggestions and context-ranked search follow it."""
        given = {
            key: value
            for key, value in (
                ("current_task", current_task),
                ("active_project", active_project),
                ("active_files", active_files),
                ("keywords", keywords),
                ("language_preferences", language_preferences),
                ("workspace_id", workspace_id),
            )
            if value is not None
        }
        async with tool_errors(kit.timeout):
            principal = kit.principal(ctx)
            # The REST body's own model, so both doors accept and store the same values.
            updates = ContextUpdate.model_validate(given).updates()
            context = await container.context.update(principal, principal.user_id, updates)
        return UserContextPublic.of(context)

    @server.tool(
        title="Sync now",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
        ),
    )
    async def sync_now(ctx: Context[Any, Any]) -> SyncNowResult:
        """Synchronise the caller's snippets with Pieces OS and AIWFE now (or join the sync
        in progress). A long first import answers `finished: false` and keeps going."""
        settings = container.settings.mcp
        # Answer before the call's own time bound, with the run's state so far.
        wait = max(0.0, min(settings.sync_wait_seconds, kit.timeout - 1.0))
        async with tool_errors(kit.timeout):
            done = await container.sync.now(
                kit.principal(ctx), None, wait_seconds=wait, trigger="mcp"
            )
        return SyncNowResult(finished=done.finished, result=SyncResultPublic.of(done.run))
