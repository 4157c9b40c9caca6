"""Asset search and suggestions (spec 6.1). Included before the assets router, so these
fixed paths are not captured by `/assets/{asset_id}` (DEVIATIONS 17)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query

from pieces_integration.domain.errors import InvalidInput
from pieces_integration.domain.teams import Scope
from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.assets import AssetPublic
from pieces_integration.entrypoints.api.schemas.search import (
    SearchBody,
    SearchHitPublic,
    SearchResultsPublic,
    SuggestionPublic,
)
from pieces_integration.service_layer.search import SearchContext, SearchRequest

router = APIRouter(prefix="/api/v1/assets", tags=["search"])


@router.post("/search", summary="Search the caller's assets (hybrid keyword + semantic)")
async def search_assets(
    body: SearchBody, principal: CurrentPrincipal, container: ContainerDep
) -> SearchResultsPublic:
    service = container.search.search
    limit = container.settings.api.max_query_length
    if len(body.query) > limit:
        raise InvalidInput(f"query is longer than {limit} characters", field="query")
    context = None
    if body.context is not None:
        context = SearchContext(
            current_task=body.context.current_task,
            active_project=body.context.active_project,
            keywords=tuple(body.context.keywords),
            language=body.context.language,
        )
    found = await service.search(
        principal,
        SearchRequest(
            query=body.query,
            user_id=body.filters.user_id,
            languages=body.filters.languages(),
            tags=tuple(body.filters.tags),
            context=context,
            limit=body.limit,
            scope=body.scope,
        ),
    )
    return SearchResultsPublic(
        results=[
            SearchHitPublic(asset=AssetPublic.of(r.asset), score=r.score, highlights=r.highlights)
            for r in found.results
        ],
        total=found.total,
        took_ms=found.took_ms,
    )


def _context(raw: str | None) -> dict[str, Any] | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidInput("context must be a JSON object", field="context") from None
    if not isinstance(value, dict):
        raise InvalidInput("context must be a JSON object", field="context")
    return value


@router.get(
    "/suggestions",
    summary="Contextual suggestions",
    description=(
        "Ranked suggestions for the given context (JSON), or for the user's stored context "
        "when none is given. Empty when there is no context to be relevant to. `scope` as "
        "in search (default mine): team and all add the assets shared into your teams, "
        "each with source `team` and an `attribution`; team leaves out your own assets, "
        "Pieces and AIWFE items."
    ),
)
async def read_suggestions(
    principal: CurrentPrincipal,
    container: ContainerDep,
    user_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    context: Annotated[str | None, Query(max_length=8192, description="JSON object")] = None,
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
    scope: Annotated[
        Scope, Query(description="mine (default), team (shared into your teams) or all")
    ] = Scope.MINE,
) -> list[SuggestionPublic]:
    service = container.search.suggestions
    items = await service.for_user(principal, user_id, _context(context), limit, scope)
    return [SuggestionPublic.model_validate(item) for item in items]
