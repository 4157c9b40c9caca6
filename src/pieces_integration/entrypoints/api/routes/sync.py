"""Sync now (spec 6.1 `POST /context/{user_id}/sync`), sync status, and conflicts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from pieces_integration.domain.auth import ensure_owner
from pieces_integration.domain.errors import NotFound
from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.sync import (
    ConflictPublic,
    ConflictResolution,
    SyncResultPublic,
)

router = APIRouter(prefix="/api/v1", tags=["sync"])

UserId = Annotated[str, Path(min_length=1, max_length=128)]
WAIT_SECONDS = 25.0  # longer runs (a first import) answer 202 and keep going


@router.post(
    "/context/{user_id}/sync",
    summary="Synchronise the user now (or join the sync in progress)",
    responses={202: {"description": "Still running; poll GET /api/v1/sync/{sync_id}"}},
)
async def sync_now(
    user_id: UserId, response: Response, principal: CurrentPrincipal, container: ContainerDep
) -> SyncResultPublic:
    result = await container.sync.now(principal, user_id, wait_seconds=WAIT_SECONDS, trigger="api")
    if not result.finished:
        response.status_code = status.HTTP_202_ACCEPTED
    return SyncResultPublic.of(result.run)


@router.get("/sync/{sync_id}", summary="One sync run's result")
async def read_sync(
    sync_id: Annotated[str, Path(max_length=64)],
    principal: CurrentPrincipal,
    container: ContainerDep,
) -> SyncResultPublic:
    async with container.uow(readonly=True) as uow:
        run = await uow.sync_runs.get(sync_id)
    if run is None:
        raise NotFound("sync run", sync_id)
    ensure_owner(principal, run.user_id, "sync run", sync_id)
    return SyncResultPublic.of(run)


@router.get("/conflicts", summary="Sync conflicts, newest first")
async def read_conflicts(
    principal: CurrentPrincipal,
    container: ContainerDep,
    user_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    conflict_status: Annotated[
        str | None, Query(alias="status", pattern="^(open|resolved)$")
    ] = None,
) -> list[ConflictPublic]:
    conflicts = await container.sync.conflicts.for_user(principal, user_id, conflict_status)
    return [ConflictPublic.of(conflict) for conflict in conflicts]


@router.post("/conflicts/{conflict_id}/resolve", summary="Keep ours, theirs, or a merged text")
async def resolve_conflict(
    conflict_id: Annotated[str, Path(max_length=64)],
    body: ConflictResolution,
    principal: CurrentPrincipal,
    container: ContainerDep,
) -> ConflictPublic:
    conflict = await container.sync.conflicts.resolve(
        principal, conflict_id, body.resolution, body.content
    )
    container.sync.scheduler.poke(conflict.user_id)
    return ConflictPublic.of(conflict)
