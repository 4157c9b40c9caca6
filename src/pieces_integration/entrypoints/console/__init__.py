"""The web console at `/console` (`/` redirects there): server-rendered Jinja2 pages with
htmx (vendored, see static/VENDOR.md), signed in by an HttpOnly session cookie, every form
CSRF-protected, a strict CSP. Pages call the same use cases as the API."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from pieces_integration.entrypoints.console.highlight import stylesheet
from pieces_integration.entrypoints.console.pages import (
    admin,
    assets,
    bridges,
    conflicts,
    feed,
    preferences,
    setup,
    signin,
    status,
    suggestions,
)
from pieces_integration.entrypoints.console.web import HERE, ConsoleHeaders, install_console_errors

ROUTERS = (signin, status, setup, bridges, assets, conflicts, suggestions, feed, preferences, admin)


def install_console(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console", status_code=307)

    @app.get("/console/static/pygments.css", include_in_schema=False)
    async def pygments_css() -> Response:
        return Response(stylesheet(), media_type="text/css")

    for page in ROUTERS:
        app.include_router(page.router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    install_console_errors(app)
    app.add_middleware(ConsoleHeaders)
