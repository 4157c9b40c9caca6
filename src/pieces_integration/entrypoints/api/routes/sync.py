"""Sync now (spec 6.1 `POST /context/{user_id}/sync`), sync status, and conflicts."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from pieces_integration.domain.auth import ensure_can_write, ensure_owner, resolve_user
from pieces_integration.domain.errors import DependencyUnavailable, NotFound
from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.sync import (
    ConflictPublic,
    ConflictResolution,
    SyncResultPublic,
)
from pieces_integration.service_layer.auth import ensure_user

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
    ensure_can_write(principal)
    owner = resolve_user(principal, user_id)
    async with container.uow() as uow:
        await ensure_user(uow, owner, principal.role)
        await uow.commit()
    task = container.sync.scheduler.start(owner, trigger="api", join=True)
    try:
        run = await asyncio.wait_for(asyncio.shield(task), WAIT_SECONDS)
    except TimeoutError:
        async with container.uow(readonly=True) as uow:
            run = await uow.sync_runs.latest(owner)
        response.status_code = status.HTTP_202_ACCEPTED
    if run is None:
        raise DependencyUnavailable(
            "the sync could not be started; the service log has the cause", upstream="sync"
        )
    return SyncResultPublic.of(run)


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
