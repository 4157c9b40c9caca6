"""Sign in (the one-time link `serve` prints, or a token / API key) and sign out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response

from pieces_integration.domain.errors import PiecesIntegrationError
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.deps import ContainerDep, request_meta
from pieces_integration.entrypoints.console.session import (
    Csrf,
    end_session,
    start_session,
)
from pieces_integration.entrypoints.console.web import redirect, render
from pieces_integration.service_layer.local_admin import LOCAL_ADMIN, SignInCodes

router = APIRouter(prefix="/console")


def _safe_next(target: str | None) -> str:
    # Only a path inside the console: never an open redirect to another site.
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console"


@router.get("/sign-in", include_in_schema=False)
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    return render(request, "signin.html", {"next": _safe_next(next), "errors": {}})


@router.post("/sign-in", include_in_schema=False, dependencies=[Csrf])
async def sign_in(
    request: Request,
    container: ContainerDep,
    credential: Annotated[str, Form(max_length=4096)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/console",
) -> Response:
    credential = credential.strip()
    errors: dict[str, str] = {}
    if not credential:
        errors["credential"] = "Paste a token or an API key."
    else:
        try:
            principal = await container.authenticator.authenticate(
                bearer=credential, api_key=None, meta=request_meta(request)
            )
        except PiecesIntegrationError as exc:
            errors["credential"] = f"Not accepted: {exc.message}"
    if errors:
        context = {"next": _safe_next(next), "errors": errors}
        return render(request, "signin.html", context, status_code=422)
    response = redirect(request, _safe_next(next))
    start_session(request, response, container, principal)
    return response


@router.get("/sign-in/link", include_in_schema=False)
async def sign_in_link(
    request: Request,
    container: ContainerDep,
    code: Annotated[str, Query(min_length=1, max_length=128)],
) -> Response:
    """The one-time link: redeem the code, set the session, open the console."""
    codes: SignInCodes | None = request.app.state.signin_codes
    if codes is None:
        message = "One-time links exist only on the embedded default; paste a token instead."
        return render(
            request, "signin.html", {"next": "/console", "message": message}, status_code=404
        )
    try:
        client = request.client.host if request.client else None
        async with container.auth_throttle.attempt(kind="signin_code", ip=client):
            codes.redeem(code)
    except PiecesIntegrationError as exc:
        return render(
            request, "signin.html", {"next": "/console", "message": exc.message}, status_code=401
        )
    principal_role = Role.ADMIN
    token_principal = await container.authenticator.authenticate(
        bearer=container.jwt.issue(LOCAL_ADMIN, principal_role, ttl_seconds=60),
        api_key=None,
        meta=request_meta(request),
    )
    response = redirect(request, "/console")
    start_session(request, response, container, token_principal)
    return response


@router.post("/sign-out", include_in_schema=False, dependencies=[Csrf])
async def sign_out(request: Request) -> Response:
    response = redirect(request, "/console/sign-in")
    end_session(response)
    return response
