"""Templates, the page renderer, the console's security headers and its error pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.middleware.base import BaseHTTPMiddleware

from pieces_integration import __version__
from pieces_integration.domain.errors import PiecesIntegrationError
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.errors import status_for
from pieces_integration.entrypoints.console.session import (
    CsrfRejected,
    SignInRequired,
    csrf_token,
    remember_csrf,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

# No inline script or style anywhere: htmx and console.js are files, htmx's own indicator
# <style> is switched off (htmx-config), so the policy can stay strict.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

NAV = [
    ("status", "Status", "/console/status"),
    ("setup", "Setup", "/console/setup"),
    ("bridges", "Bridges", "/console/bridges"),
    ("assets", "Assets", "/console/assets"),
    ("conflicts", "Conflicts", "/console/conflicts"),
    ("suggestions", "Suggestions", "/console/suggestions"),
    ("feed", "Live feed", "/console/feed"),
    ("preferences", "Preferences", "/console/preferences"),
]


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    page: str = "",
) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    nav = list(NAV)
    if principal is not None and principal.role is Role.ADMIN:
        nav.append(("admin", "Admin", "/console/admin"))
    values = {
        "principal": principal,
        "csrf_token": csrf_token(request),
        "nav": nav if principal is not None else [],
        "page": page,
        "version": __version__,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, values, status_code=status_code)
    remember_csrf(request, response)
    return response


def redirect(request: Request, url: str) -> Response:
    """A redirect that also works for htmx requests (they follow `HX-Redirect`)."""
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


class ConsoleHeaders(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if request.url.path.startswith("/console"):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if not request.url.path.startswith("/console/static"):
                response.headers.setdefault("Cache-Control", "no-store")
        return response


def _is_console(request: Request) -> bool:
    return request.url.path.startswith("/console")


def install_console_errors(app: FastAPI) -> None:
    """Console requests get pages, never a stack trace or raw problem JSON."""

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(request, f"/console/sign-in?next={quote(target, safe='')}")

    async def csrf_rejected(request: Request, exc: Exception) -> Response:
        return render(
            request,
            "error.html",
            {"title": "Form expired", "detail": "Reload the page and send the form again."},
            status_code=403,
        )

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(CsrfRejected, csrf_rejected)
    # The API's handlers stay for the API; console paths get an HTML page instead.
    for kind in (PiecesIntegrationError, RequestValidationError, Exception):
        original = app.exception_handlers.get(kind)
        if original is not None:
            app.add_exception_handler(kind, _html_for_console(original))


Handler = Callable[[Request, Exception], Any]


def _html_for_console(original: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if not _is_console(request):
            response: Response = await original(request, exc)
            return response
        if isinstance(exc, PiecesIntegrationError):
            title, detail, status = "Could not do that", exc.message, status_for(exc)
        elif isinstance(exc, RequestValidationError):
            title, detail, status = "Invalid request", _first_problem(exc), 422
        else:
            await original(request, exc)  # logs it
            title, detail, status = "Something went wrong", "The error has been logged.", 500
        return render(request, "error.html", {"title": title, "detail": detail}, status_code=status)

    return handle


def _first_problem(exc: RequestValidationError) -> str:
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ())[1:])
        return f"{where}: {error.get('msg', 'invalid')}"
    return "invalid request"
