"""User context (spec 6.1 Context Operations)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.context import (
    ContextChangePublic,
    ContextUpdate,
    UserContextPublic,
)

router = APIRouter(prefix="/api/v1/context", tags=["context"])

UserId = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/{user_id}", summary="Get the user's current context")
async def read_context(
    user_id: UserId, principal: CurrentPrincipal, container: ContainerDep
) -> UserContextPublic:
    return UserContextPublic.of(await container.context.get(principal, user_id))


@router.post("/{user_id}", summary="Update the user's context")
async def update_context(
    user_id: UserId, body: ContextUpdate, principal: CurrentPrincipal, container: ContainerDep
) -> UserContextPublic:
    context = await container.context.update(principal, user_id, body.updates())
    return UserContextPublic.of(context)


@router.get("/{user_id}/history", summary="Context change history, newest first")
async def read_context_history(
    user_id: UserId,
    principal: CurrentPrincipal,
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    since: Annotated[datetime | None, Query(description="ISO 8601 timestamp")] = None,
) -> list[ContextChangePublic]:
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # a time without an offset is taken as UTC
    changes = await container.context.history(principal, user_id, limit=limit, since=since)
    return [ContextChangePublic.of(change) for change in changes]
