"""Assets: filters, search as you type (the hybrid search), detail, edit, delete, history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response

from pieces_integration.domain.assets import AssetDraft
from pieces_integration.domain.errors import Conflict, InvalidInput
from pieces_integration.domain.model import AssetSource
from pieces_integration.domain.queries import AssetQuery
from pieces_integration.entrypoints.api.deps import ContainerDep
from pieces_integration.entrypoints.console.highlight import highlighted
from pieces_integration.entrypoints.console.session import ConsolePrincipal, Csrf
from pieces_integration.entrypoints.console.web import redirect, render
from pieces_integration.service_layer.search import SearchRequest

router = APIRouter(prefix="/console/assets")

AssetId = Annotated[str, Path(min_length=1, max_length=64)]
PAGE = 50
SOURCES = [source.value for source in AssetSource]


def _filters(request: Request) -> dict[str, str]:
    params = request.query_params
    return {name: params.get(name, "").strip()[:200] for name in ("q", "language", "tag", "source")}


async def _results(request: Request, principal: Any, container: Any) -> dict[str, Any]:
    filters = _filters(request)
    tags = (filters["tag"],) if filters["tag"] else ()
    source = filters["source"] if filters["source"] in SOURCES else None
    if filters["q"]:
        found = await container.search.search.search(
            principal,
            SearchRequest(
                query=filters["q"][: container.settings.api.max_query_length],
                languages=(filters["language"],) if filters["language"] else (),
                tags=tags,
                limit=PAGE,
            ),
        )
        hits = [(hit.asset, hit.highlights) for hit in found.results]
        if source:
            hits = [(asset, marks) for asset, marks in hits if asset.source.value == source]
        return {"hits": hits, "total": len(hits), "searched": True, "filters": filters}
    page = await container.assets.page(
        principal,
        None,
        AssetQuery(language=filters["language"] or None, tags=tags, source=source, limit=PAGE),
    )
    hits = [(asset, []) for asset in page.items]
    total = page.total if page.total is not None else len(hits)
    return {"hits": hits, "total": total, "searched": False, "filters": filters}


@router.get("", include_in_schema=False)
async def assets_page(
    request: Request, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    context = await _results(request, principal, container)
    context.update(sources=SOURCES, offline=bool(request.query_params.get("offline")))
    return render(request, "assets.html", context, page="assets")


@router.get("/results", include_in_schema=False)
async def assets_results(
    request: Request, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    return render(request, "_asset_results.html", await _results(request, principal, container))


async def _detail(
    request: Request,
    principal: Any,
    container: Any,
    asset_id: str,
    *,
    errors: dict[str, str] | None = None,
    submitted: dict[str, str] | None = None,
    status_code: int = 200,
    saved: bool = False,
) -> Response:
    asset = await container.assets.get(principal, asset_id)
    backups = await container.sync.conflicts.backups(principal, asset_id)
    values = {
        "name": asset.name,
        "description": asset.description or "",
        "language": asset.language or "",
        "tags": ", ".join(asset.tags),
        "content": asset.content,
        **(submitted or {}),
    }
    context = {
        "asset": asset,
        "code": highlighted(asset.content, asset.language),
        "values": values,
        "errors": errors or {},
        "backups": backups,
        "saved": saved,
    }
    return render(request, "asset.html", context, status_code=status_code, page="assets")


@router.get("/{asset_id}", include_in_schema=False)
async def asset_page(
    request: Request, asset_id: AssetId, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    saved = bool(request.query_params.get("saved"))
    return await _detail(request, principal, container, asset_id, saved=saved)


@router.post("/{asset_id}", include_in_schema=False, dependencies=[Csrf])
async def edit_asset(
    request: Request,
    asset_id: AssetId,
    principal: ConsolePrincipal,
    container: ContainerDep,
    name: Annotated[str, Form(max_length=100_000)] = "",
    description: Annotated[str, Form(max_length=100_000)] = "",
    language: Annotated[str, Form(max_length=200)] = "",
    tags: Annotated[str, Form(max_length=100_000)] = "",
    content: Annotated[str, Form(max_length=10_000_000)] = "",
    version: Annotated[int, Form(ge=0)] = 0,
) -> Response:
    submitted = {
        "name": name,
        "description": description,
        "language": language,
        "tags": tags,
        "content": content,
    }
    draft = AssetDraft(
        name=name,
        content=content,
        description=description or None,
        language=language.strip() or None,
        tags=[tag.strip() for tag in tags.split(",") if tag.strip()],
        cleared=frozenset(
            field
            for field, value in (("description", description), ("language", language))
            if not value.strip()
        ),
    )
    try:
        await container.assets.update(
            principal, asset_id, draft, full=False, expected_version=version or None
        )
    except InvalidInput as exc:
        errors = {exc.field or "form": exc.message}
        return await _detail(
            request, principal, container, asset_id, errors=errors, submitted=submitted,
            status_code=422,
        )  # fmt: skip
    except Conflict as exc:
        errors = {"form": f"{exc.message}: someone changed it meanwhile; reload to see it."}
        return await _detail(
            request, principal, container, asset_id, errors=errors, submitted=submitted,
            status_code=409,
        )  # fmt: skip
    return redirect(request, f"/console/assets/{asset_id}?saved=1")


@router.post("/{asset_id}/delete", include_in_schema=False, dependencies=[Csrf])
async def delete_asset(
    request: Request, asset_id: AssetId, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    await container.assets.delete(principal, asset_id)
    return redirect(request, "/console/assets?deleted=1")
