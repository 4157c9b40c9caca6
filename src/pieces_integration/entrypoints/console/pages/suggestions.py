"""Suggestions for a context (file, language, keywords, task), with feedback buttons that
feed the same feedback use case as `POST /api/v1/suggestions/{id}/feedback`."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response

from pieces_integration.domain.errors import PiecesIntegrationError
from pieces_integration.entrypoints.api.deps import ContainerDep
from pieces_integration.entrypoints.api.errors import status_for
from pieces_integration.entrypoints.console.session import ConsolePrincipal, Csrf
from pieces_integration.entrypoints.console.web import render

router = APIRouter(prefix="/console/suggestions")
FIELDS = ("active_file", "language", "keywords", "current_task")


def _context(params: Any) -> dict[str, Any]:
    keywords = [w.strip() for w in str(params.get("keywords", "")).split(",") if w.strip()]
    raw = {
        "active_file": str(params.get("active_file", "")).strip()[:500] or None,
        "language": str(params.get("language", "")).strip()[:64] or None,
        "current_task": str(params.get("current_task", "")).strip()[:2000] or None,
        "keywords": keywords[:50],
    }
    return {key: value for key, value in raw.items() if value}


@router.get("", include_in_schema=False)
async def suggestions_page(
    request: Request, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    context = _context(request.query_params)
    asked = bool(context)
    items = (
        await container.search.suggestions.for_user(principal, None, context, 10) if asked else []
    )
    values = {
        "asked": asked,
        "items": items,
        "form": {
            k: request.query_params.get(k, "")
            for k in ("active_file", "language", "keywords", "current_task")
        },
        "context_json": json.dumps(context),
    }
    return render(request, "suggestions.html", values, page="suggestions")


@router.post("/{suggestion_id}/feedback", include_in_schema=False, dependencies=[Csrf])
async def feedback(
    request: Request,
    suggestion_id: Annotated[str, Path(min_length=1, max_length=64)],
    principal: ConsolePrincipal,
    container: ContainerDep,
    action: Annotated[str, Form(max_length=16)] = "",
    asset_id: Annotated[str, Form(max_length=36)] = "",
    context: Annotated[str, Form(max_length=20_000)] = "{}",
) -> Response:
    try:
        raw = json.loads(context or "{}")
        recorded = await container.search.suggestions.record_feedback(
            principal,
            suggestion_id,
            action,
            asset_id=asset_id or None,
            raw_context=raw if isinstance(raw, dict) else None,
        )
    except ValueError:
        return render(request, "_feedback.html", {"error": "invalid context"}, status_code=422)
    except PiecesIntegrationError as exc:
        context_ = {"error": exc.message}
        return render(request, "_feedback.html", context_, status_code=status_for(exc))
    return render(request, "_feedback.html", {"recorded": recorded})
