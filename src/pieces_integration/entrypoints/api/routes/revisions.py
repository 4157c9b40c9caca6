"""Revisions of team assets (issue 16): list, read one, restore one. Thin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.assets import AssetPublic
from pieces_integration.entrypoints.api.schemas.revisions import (
    RevisionPublic,
    RevisionsPublic,
    RevisionSummaryPublic,
)
from pieces_integration.entrypoints.api.versions import expected_version, with_etag

router = APIRouter(prefix="/api/v1/assets", tags=["teams"])

AssetId = Annotated[str, Path(min_length=1, max_length=64)]
Number = Annotated[int, Path(ge=1, le=2**31 - 1, description="The revision's number")]


@router.get("/{asset_id}/revisions", summary="A team asset's revisions, newest first")
async def read_revisions(
    asset_id: AssetId,
    principal: CurrentPrincipal,
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RevisionsPublic:
    revisions = await container.revisions.history(principal, asset_id, limit=limit)
    return RevisionsPublic(
        data=[RevisionSummaryPublic.of(r) for r in revisions], count=len(revisions)
    )


@router.get("/{asset_id}/revisions/{number}", summary="One revision, with its content")
async def read_revision(
    asset_id: AssetId, number: Number, principal: CurrentPrincipal, container: ContainerDep
) -> RevisionPublic:
    return RevisionPublic.of(await container.revisions.get(principal, asset_id, number))


@router.post(
    "/{asset_id}/revisions/{number}/restore",
    summary="Restore a revision (a new revision; the asset's owner or a team maintainer)",
)
async def restore_revision(
    asset_id: AssetId,
    number: Number,
    response: Response,
    principal: CurrentPrincipal,
    container: ContainerDep,
    if_match: Annotated[str | None, Header(max_length=64)] = None,
) -> AssetPublic:
    asset = await container.assets.restore(
        principal, asset_id, number, expected_version=expected_version(if_match)
    )
    return with_etag(response, AssetPublic.of(asset))
