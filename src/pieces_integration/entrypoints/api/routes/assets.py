"""Asset CRUD (spec 6.1). Thin: parse, call AssetService, map to AssetPublic."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Query, Request, Response, status

from pieces_integration.domain.errors import InvalidInput
from pieces_integration.domain.queries import AssetQuery
from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.assets import (
    AssetCreate,
    AssetPatch,
    AssetPublic,
    AssetUpdate,
)

router = APIRouter(prefix="/api/v1/assets", tags=["assets"])

AssetId = Annotated[str, "asset id"]


def _expected_version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise InvalidInput('If-Match must be an asset version such as "3"', field="If-Match")
    return int(text)


def _etag(response: Response, asset: AssetPublic) -> AssetPublic:
    response.headers["ETag"] = f'"{asset.version}"'
    return asset


@router.get(
    "",
    summary="List the caller's assets",
    description=(
        "Newest first. The body is an array of Asset objects (spec 6.1); pagination is in the "
        'headers: `X-Total-Count`, `X-Next-Cursor` and a `Link: <...>; rel="next"`.'
    ),
)
async def read_assets(
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    container: ContainerDep,
    user_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    language: Annotated[str | None, Query(max_length=64)] = None,
    tags: Annotated[str | None, Query(max_length=4096, description="Comma-separated")] = None,
    search: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int | None, Query(ge=1, description="Default 50; capped")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> list[AssetPublic]:
    api = container.settings.api
    size = min(limit or api.default_page_size, api.max_page_size)
    tag_list = tuple(t.strip() for t in (tags or "").split(",") if t.strip())
    page = await container.assets.page(
        principal,
        user_id,
        AssetQuery(
            language=language or None,
            tags=tag_list,
            search=search or None,
            limit=size,
            offset=offset,
            cursor=cursor,
        ),
    )
    response.headers["X-Total-Count"] = str(page.total or 0)
    if page.next_cursor:
        params = {k: v for k, v in request.query_params.items() if k not in ("cursor", "offset")}
        params["cursor"] = page.next_cursor
        response.headers["X-Next-Cursor"] = page.next_cursor
        response.headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    return [AssetPublic.of(asset) for asset in page.items]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an asset")
async def create_asset(
    body: AssetCreate, response: Response, principal: CurrentPrincipal, container: ContainerDep
) -> AssetPublic:
    asset = await container.assets.create(principal, body.user_id, body.draft())
    response.headers["Location"] = f"/api/v1/assets/{asset.id}"
    return _etag(response, AssetPublic.of(asset))


@router.get("/{asset_id}", summary="Get one asset")
async def read_asset(
    asset_id: AssetId, response: Response, principal: CurrentPrincipal, container: ContainerDep
) -> AssetPublic:
    return _etag(response, AssetPublic.of(await container.assets.get(principal, asset_id)))


@router.put("/{asset_id}", summary="Replace an asset's editable fields")
async def replace_asset(
    asset_id: AssetId,
    body: AssetUpdate,
    response: Response,
    principal: CurrentPrincipal,
    container: ContainerDep,
    if_match: Annotated[str | None, Header(max_length=64)] = None,
) -> AssetPublic:
    asset = await container.assets.update(
        principal, asset_id, body.draft(), full=True, expected_version=_expected_version(if_match)
    )
    return _etag(response, AssetPublic.of(asset))


@router.patch("/{asset_id}", summary="Change some of an asset's fields")
async def patch_asset(
    asset_id: AssetId,
    body: AssetPatch,
    response: Response,
    principal: CurrentPrincipal,
    container: ContainerDep,
    if_match: Annotated[str | None, Header(max_length=64)] = None,
) -> AssetPublic:
    asset = await container.assets.update(
        principal, asset_id, body.draft(), full=False, expected_version=_expected_version(if_match)
    )
    return _etag(response, AssetPublic.of(asset))


@router.delete("/{asset_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an asset")
async def delete_asset(
    asset_id: AssetId, principal: CurrentPrincipal, container: ContainerDep
) -> Response:
    await container.assets.delete(principal, asset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
