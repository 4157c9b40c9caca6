"""The console's session: an HttpOnly, SameSite=Strict cookie holding a short-lived JWT
(the API's own tokens, so the same authenticator, users and roles apply), and CSRF.

CSRF is a double-submit token: a random value in its own SameSite=Strict cookie, echoed by
every form (a hidden field) and every htmx request (the `X-CSRF-Token` header set on
<body>). A cross-site page can neither read the cookie nor make the browser send it.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request, Response

from pieces_integration.bootstrap import Container
from pieces_integration.domain.auth import Principal
from pieces_integration.domain.errors import PiecesIntegrationError
from pieces_integration.entrypoints.api.deps import ContainerDep, request_meta

SESSION_COOKIE = "pi_session"
CSRF_COOKIE = "pi_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
COOKIE_PATH = "/"  # the live feed's ticket and /ws sit outside /console


class SignInRequired(Exception):
    """No valid session: the console answers with the sign-in page."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class CsrfRejected(Exception):
    """A state-changing request without the session's CSRF token."""


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def start_session(
    request: Request, response: Response, container: Container, principal: Principal
) -> None:
    ttl = container.settings.auth.token_ttl_seconds
    # The session's own token keeps the tenant, or its first request would clear it.
    token = container.jwt.issue(
        principal.user_id, principal.role, ttl_seconds=ttl, tenant=principal.tenant
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (made on first sight; `remember_csrf` stores it)."""
    token = getattr(request.state, "csrf_token", None) or request.cookies.get(CSRF_COOKIE)
    if not token:
        token = secrets.token_urlsafe(24)
    request.state.csrf_token = token
    return str(token)


def remember_csrf(request: Request, response: Response) -> None:
    token = csrf_token(request)
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )


async def check_csrf(request: Request) -> None:
    """For every POST: the token from the form or header must match the cookie."""
    expected = request.cookies.get(CSRF_COOKIE, "")
    presented = request.headers.get(CSRF_HEADER, "")
    if not presented:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else ""
    if not expected or not hmac.compare_digest(expected, presented):
        raise CsrfRejected()


async def console_principal(request: Request, container: ContainerDep) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired()
    try:
        principal = await container.authenticator.authenticate(
            bearer=token, api_key=None, meta=request_meta(request)
        )
    except PiecesIntegrationError as exc:
        raise SignInRequired(exc.message) from None
    request.state.principal = principal
    return principal


ConsolePrincipal = Annotated[Principal, Depends(console_principal)]
Csrf = Depends(check_csrf)
