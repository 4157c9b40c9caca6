"""Asset CRUD (spec 6.1). Thin: parse, call AssetService, map to AssetPublic."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Query, Request, Response, status

from pieces_integration.domain.queries import AssetQuery
from pieces_integration.domain.teams import Scope
from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.assets import (
    AssetCreate,
    AssetPatch,
    AssetPublic,
    AssetUpdate,
)
from pieces_integration.entrypoints.api.versions import expected_version, with_etag

router = APIRouter(prefix="/api/v1/assets", tags=["assets"])

AssetId = Annotated[str, "asset id"]


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
    scope: Annotated[
        Scope, Query(description="mine (default), team (shared into your teams) or all")
    ] = Scope.MINE,
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
        scope,
    )
    response.headers["X-Total-Count"] = str(page.total or 0)
    if page.next_cursor:
        params = {k: v for k, v in request.query_params.items() if k not in ("cursor", "offset")}
        params["cursor"] = page.next_cursor
        response.headers["X-Next-Cursor"] = page.next_cursor
        response.headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    return [AssetPublic.of(asset) for asset in page.items]


# OpenAPI links from a created asset to the operations on it: clients (and the stateful
# fuzzer, issue 20) follow the new id into them.
_ASSET_LINKS = {
    name: {"operationId": operation, "parameters": {"asset_id": "$response.body#/id"}}
    for name, operation in {
        "ReadAsset": "read_asset_api_v1_assets__asset_id__get",
        "ReplaceAsset": "replace_asset_api_v1_assets__asset_id__put",
        "PatchAsset": "patch_asset_api_v1_assets__asset_id__patch",
        "DeleteAsset": "delete_asset_api_v1_assets__asset_id__delete",
    }.items()
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an asset",
    responses={201: {"description": "The created asset", "links": _ASSET_LINKS}},
)
async def create_asset(
    body: AssetCreate, response: Response, principal: CurrentPrincipal, container: ContainerDep
) -> AssetPublic:
    asset = await container.assets.create(principal, body.user_id, body.draft())
    response.headers["Location"] = f"/api/v1/assets/{asset.id}"
    return with_etag(response, AssetPublic.of(asset))


@router.get("/{asset_id}", summary="Get one asset")
async def read_asset(
    asset_id: AssetId, response: Response, principal: CurrentPrincipal, container: ContainerDep
) -> AssetPublic:
    return with_etag(response, AssetPublic.of(await container.assets.get(principal, asset_id)))


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
        principal,
        asset_id,
        body.draft(),
        full=True,
        expected_version=expected_version(if_match, body.version),
    )
    return with_etag(response, AssetPublic.of(asset))


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
        principal,
        asset_id,
        body.draft(),
        full=False,
        expected_version=expected_version(if_match, body.version),
    )
    return with_etag(response, AssetPublic.of(asset))


@router.delete("/{asset_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an asset")
async def delete_asset(
    asset_id: AssetId, principal: CurrentPrincipal, container: ContainerDep
) -> Response:
    await container.assets.delete(principal, asset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
