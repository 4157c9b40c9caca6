"""`GET/PUT /api/v1/users/{user_id}/preferences` (spec 7.1 step 5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.preferences import (
    PreferencesPublic,
    PreferencesUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["preferences"])

UserId = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/users/{user_id}/preferences", summary="The user's preferences")
async def read_preferences(
    user_id: UserId, principal: CurrentPrincipal, container: ContainerDep
) -> PreferencesPublic:
    return PreferencesPublic.of(await container.preferences.get(principal, user_id))


@router.put(
    "/users/{user_id}/preferences",
    summary="Change the user's preferences (fields left out keep their value)",
)
async def update_preferences(
    user_id: UserId, body: PreferencesUpdate, principal: CurrentPrincipal, container: ContainerDep
) -> PreferencesPublic:
    privacy = body.privacy.changes() if body.privacy is not None else {}
    view = await container.preferences.update(principal, user_id, body.changes(), privacy)
    return PreferencesPublic.of(view)
