"""Sharing an asset into a team library, taking it out again, and saving a team asset to
one's own library and Pieces (issue 16). Thin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.assets import AssetPublic
from pieces_integration.entrypoints.api.schemas.shares import ShareCreate, SharePublic
from pieces_integration.entrypoints.api.versions import with_etag

router = APIRouter(prefix="/api/v1/assets", tags=["teams"])

AssetId = Annotated[str, Path(min_length=1, max_length=64)]
TeamId = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "/{asset_id}/shares",
    status_code=status.HTTP_201_CREATED,
    summary="Share your asset into a team (member or above); 200 if it already is",
)
async def share_asset(
    asset_id: AssetId,
    body: ShareCreate,
    response: Response,
    principal: CurrentPrincipal,
    container: ContainerDep,
) -> SharePublic:
    share, created = await container.sharing.share(principal, asset_id, body.team_id)
    if not created:
        response.status_code = status.HTTP_200_OK
    return SharePublic.of(share)


@router.delete(
    "/{asset_id}/shares/{team_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Take an asset out of a team (its owner, or a maintainer)",
)
async def unshare_asset(
    asset_id: AssetId, team_id: TeamId, principal: CurrentPrincipal, container: ContainerDep
) -> Response:
    await container.sharing.unshare(principal, asset_id, team_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{asset_id}/save",
    status_code=status.HTTP_201_CREATED,
    summary="Save to my Pieces: copy a team asset into your own library (201; 200 if saved)",
    description=(
        "Any member who reads the team asset (viewer included) gets their own copy of its "
        "current revision, synced to their Pieces like any asset they create. The copy's "
        "`metadata.saved_from` names the team asset (`asset_id`, `revision`, `revision_id`, "
        "`owner_id`, `team_id`, `team_name`). Saving the same revision again returns that "
        "copy with 200. 404 for anyone outside the asset's teams; 409 for your own asset."
    ),
)
async def save_asset(
    asset_id: AssetId, response: Response, principal: CurrentPrincipal, container: ContainerDep
) -> AssetPublic:
    copy, created = await container.saving.save(principal, asset_id)
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/assets/{copy.id}"
    return with_etag(response, AssetPublic.of(copy))
