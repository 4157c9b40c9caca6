"""The tools that only read: search, get, suggest, context, conflicts, connection status.

Each parses its arguments, calls the use case the matching REST route calls, and maps the
result into its output schema; nothing else.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from pieces_integration.domain.errors import NotFound
from pieces_integration.entrypoints.api.schemas.assets import AssetPublic
from pieces_integration.entrypoints.api.schemas.context import UserContextPublic
from pieces_integration.entrypoints.api.schemas.pieces import ConnectionStatusPublic
from pieces_integration.entrypoints.api.schemas.search import SuggestionPublic
from pieces_integration.entrypoints.api.schemas.sync import ConflictPublic
from pieces_integration.entrypoints.mcp.errors import tool_errors
from pieces_integration.entrypoints.mcp.kit import (
    READ_ONLY,
    Id,
    Keywords,
    Language,
    ShortText,
    Tags,
    ToolKit,
)
from pieces_integration.entrypoints.mcp.schemas import (
    ConflictsResult,
    SearchSnippetsResult,
    SnippetHit,
    SnippetsResult,
    SuggestionsResult,
    preview,
)
from pieces_integration.service_layer.search import SearchContext, SearchRequest

MAX_GET = 50


def register_read_tools(server: MCPServer[Any], kit: ToolKit) -> None:
    container = kit.container

    @server.tool(title="Search snippets", annotations=READ_ONLY)
    async def search_snippets(
        query: Annotated[str, Field(min_length=1, max_length=2000, description="Free text")],
        ctx: Context[Any, Any],
        language: Language | None = None,
        tags: Annotated[Tags | None, Field(description="Any of these tags")] = None,
        scope: Annotated[
            Literal["all", "context"],
            Field(description="`context`: rank by the caller's stored context as well"),
        ] = "all",
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
    ) -> SearchSnippetsResult:
        """Find the caller's snippets by keywords and meaning. Answers ids, names, scores and
        a one-line preview; read bodies with get_snippets or the snippet://{id} resource."""
        async with tool_errors(kit.timeout):
            principal = kit.principal(ctx)
            context = None
            if scope == "context":
                stored = await container.context.get(principal, principal.user_id)
                context = SearchContext(
                    current_task=stored.current_task,
                    active_project=stored.active_project,
                    keywords=tuple(stored.keywords),
                    language=stored.language_preferences[0]
                    if stored.language_preferences
                    else None,
                )
            found = await container.search.search.search(
                principal,
                SearchRequest(
                    query=query,
                    languages=(language,) if language else (),
                    tags=tuple(tags or ()),
                    context=context,
                    limit=limit,
                ),
            )
        return SearchSnippetsResult(
            results=[
                SnippetHit(
                    id=hit.asset.id,
                    name=hit.asset.name,
                    language=hit.asset.language,
                    tags=hit.asset.tags,
                    score=hit.score,
                    preview=preview(hit.asset, hit.highlights),
                )
                for hit in found.results
            ],
            total=found.total,
            took_ms=found.took_ms,
        )

    @server.tool(title="Get snippets", annotations=READ_ONLY)
    async def get_snippets(
        ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_GET)],
        ctx: Context[Any, Any],
    ) -> SnippetsResult:
        """Full content and metadata of up to 50 snippets by id."""
        snippets: list[AssetPublic] = []
        missing: list[str] = []
        async with tool_errors(kit.timeout):
            principal = kit.principal(ctx)
            for asset_id in dict.fromkeys(ids):  # each once, in the order asked
                try:
                    snippets.append(AssetPublic.of(await container.assets.get(principal, asset_id)))
                except NotFound:
                    missing.append(asset_id)
        return SnippetsResult(snippets=snippets, missing=missing)

    @server.tool(title="Suggest snippets", annotations=READ_ONLY)
    async def suggest_snippets(
        ctx: Context[Any, Any],
        file: Annotated[str | None, Field(max_length=2000, description="The file open")] = None,
        language: Language | None = None,
        keywords: Keywords | None = None,
        task: Annotated[ShortText | None, Field(description="What the user is doing")] = None,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
    ) -> SuggestionsResult:
        """Snippets relevant to what the user is working on, ranked. With no argument, the
        caller's stored context (see get_context) decides."""
        given: dict[str, Any] = {
            key: value
            for key, value in (
                ("active_file", file),
                ("language", language),
                ("keywords", list(keywords or ())),
                ("current_task", task),
            )
            if value
        }
        async with tool_errors(kit.timeout):
            items = await container.search.suggestions.for_user(
                kit.principal(ctx), None, given or None, limit
            )
        return SuggestionsResult(suggestions=[SuggestionPublic.model_validate(i) for i in items])

    @server.tool(title="Get context", annotations=READ_ONLY)
    async def get_context(ctx: Context[Any, Any]) -> UserContextPublic:
        """The caller's developer context: current task, project, files, keywords."""
        async with tool_errors(kit.timeout):
            principal = kit.principal(ctx)
            return UserContextPublic.of(await container.context.get(principal, principal.user_id))

    @server.tool(title="List sync conflicts", annotations=READ_ONLY)
    async def list_conflicts(
        ctx: Context[Any, Any],
        status: Literal["open", "resolved", "all"] = "open",
    ) -> ConflictsResult:
        """Sync conflicts between Pieces OS and AIWFE, newest first."""
        async with tool_errors(kit.timeout):
            conflicts = await container.sync.conflicts.for_user(
                kit.principal(ctx), None, None if status == "all" else status
            )
        return ConflictsResult(conflicts=[ConflictPublic.of(c) for c in conflicts])

    @server.tool(
        title="Pieces connection status",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    async def connection_status(ctx: Context[Any, Any]) -> ConnectionStatusPublic:
        """Whether the caller's Pieces OS is connected, the last sync, and what to do if not."""
        async with tool_errors(kit.timeout):
            status = await container.sync.pieces.status(kit.principal(ctx).user_id)
        return ConnectionStatusPublic.of(status)
