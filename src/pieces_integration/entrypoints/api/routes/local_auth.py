"""Local sign-in (embedded default only): exchange a one-time code for a token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from pieces_integration.domain.errors import NotFound
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.deps import ContainerDep
from pieces_integration.service_layer.local_admin import LOCAL_ADMIN, SignInCodes

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    user_id: str
    role: str


@router.get("/local-signin", summary="Exchange the one-time code printed by `serve` for a token")
async def local_signin(
    request: Request,
    container: ContainerDep,
    code: Annotated[str, Query(min_length=8, max_length=128)],
) -> TokenPublic:
    codes: SignInCodes | None = request.app.state.signin_codes
    if codes is None:
        raise NotFound("route", "/api/v1/auth/local-signin")
    codes.redeem(code)
    ttl = container.settings.auth.token_ttl_seconds
    token = container.jwt.issue(LOCAL_ADMIN, Role.ADMIN, ttl_seconds=ttl)
    return TokenPublic(access_token=token, expires_in=ttl, user_id=LOCAL_ADMIN, role="admin")
