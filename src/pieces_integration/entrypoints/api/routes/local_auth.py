"""Local sign-in (embedded default only): exchange a one-time code for a token."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
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


@router.get(
    "/local-signin",
    summary="Exchange the one-time code printed by `serve` for a token",
    response_model=TokenPublic,
)
async def local_signin(
    request: Request,
    container: ContainerDep,
    code: Annotated[str, Query(min_length=8, max_length=128)],
) -> TokenPublic | RedirectResponse:
    codes: SignInCodes | None = request.app.state.signin_codes
    if codes is None:
        raise NotFound("route", "/api/v1/auth/local-signin")
    if "text/html" in request.headers.get("accept", ""):
        # A person opened the printed link: the console redeems it and signs them in.
        return RedirectResponse(f"/console/sign-in/link?code={quote(code)}", status_code=303)
    client = request.client.host if request.client else None
    async with container.auth_throttle.attempt(kind="signin_code", ip=client):
        codes.redeem(code)
    ttl = container.settings.auth.token_ttl_seconds
    token = container.jwt.issue(LOCAL_ADMIN, Role.ADMIN, ttl_seconds=ttl)
    return TokenPublic(access_token=token, expires_in=ttl, user_id=LOCAL_ADMIN, role="admin")
