"""The FastAPI application: routers, error handlers, middleware and the lifespan.

`create_app(settings)` builds the container in the lifespan (not at import) and closes it
on shutdown. Tests may pass a ready container instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from pieces_integration import __version__
from pieces_integration.bootstrap import Container, Overrides, bootstrap
from pieces_integration.config import Settings
from pieces_integration.entrypoints.api import bridge_ws, ws
from pieces_integration.entrypoints.api.errors import install_error_handlers
from pieces_integration.entrypoints.api.middleware import RequestContextMiddleware
from pieces_integration.entrypoints.api.openapi import install_problem_docs
from pieces_integration.entrypoints.api.routes import (
    aiwfe_webhook,
    assets,
    bridges,
    context,
    health,
    local_auth,
    pieces,
    preferences,
    revisions,
    search,
    shares,
    suggestions,
    sync,
    teams,
    users,
)
from pieces_integration.entrypoints.api.ws_transport import FANOUT
from pieces_integration.entrypoints.console import install_console
from pieces_integration.entrypoints.mcp import http as mcp_http
from pieces_integration.observability.metrics import Metrics
from pieces_integration.service_layer.local_admin import SignInCodes


def create_app(
    settings: Settings,
    *,
    container: Container | None = None,
    overrides: Overrides | None = None,
    signin_codes: SignInCodes | None = None,
) -> FastAPI:
    """`container`: a ready one (the caller closes it); else the lifespan bootstraps one
    from `settings` and `overrides` and closes it on shutdown."""
    metrics = container.metrics if container is not None else Metrics()
    if overrides is None:
        # Fan-outs open a batch of the `serve` command's direct frame writer.
        overrides = Overrides(metrics=metrics, realtime_batch=FANOUT.batch)
    elif overrides.metrics is None:
        overrides = replace(overrides, metrics=metrics)
    else:
        metrics = overrides.metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        running: Container = container or bootstrap(settings, overrides)
        app.state.container = running
        hub = running.realtime.hub
        await running.revocations.start()
        await hub.start()
        try:
            # Bridges go first on the way out: their agents are told to reconnect elsewhere;
            # MCP sessions before them.
            async with AsyncExitStack() as stack:
                await stack.enter_async_context(running.sync.scheduler)
                await stack.enter_async_context(running.search.running())
                await stack.enter_async_context(running.bridge.hub.running())
                if settings.mcp.enabled:
                    app.state.mcp = mcp_http.McpHttp(running)
                    await stack.enter_async_context(app.state.mcp.running())
                yield
        finally:
            await hub.stop()  # clients are told to reconnect before anything closes
            await running.revocations.stop()
            if owned:
                await running.aclose()

    app = FastAPI(
        title="pieces-integration",
        version=__version__,
        description=(
            "Keeps Pieces OS snippets and developer context in sync with AIWFE, "
            "and serves context-aware snippet suggestions."
        ),
        lifespan=lifespan,
    )
    if container is not None:
        app.state.container = container
    app.state.draining = False  # set on SIGTERM by `serve` (cli/_uvicorn.py); GET /ready reads it
    app.state.signin_codes = signin_codes  # the one-time sign-in link `serve` printed
    install_error_handlers(app)
    install_problem_docs(app)  # documents every router's problem+json responses
    app.include_router(health.router)
    # Fixed paths under /assets (search, suggestions) must be included before /{asset_id}.
    app.include_router(search.router)
    app.include_router(assets.router)
    app.include_router(shares.router)
    app.include_router(revisions.router)
    app.include_router(suggestions.router)
    app.include_router(sync.router)  # before context: /context/{user_id}/sync
    app.include_router(context.router)
    app.include_router(pieces.router)
    app.include_router(bridges.router)
    app.include_router(teams.router)
    app.include_router(bridge_ws.router)
    app.include_router(aiwfe_webhook.router)
    app.include_router(users.router)
    app.include_router(preferences.router)
    app.include_router(local_auth.router)
    app.include_router(ws.router)
    app.include_router(ws.tickets_router)
    if settings.mcp.enabled:
        app.include_router(mcp_http.router)
    install_console(app)  # /console and the redirect from /
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.server.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=[
            *["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            *mcp_http.CORS_REQUEST_HEADERS,
        ],
        expose_headers=[
            *["X-Request-ID", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining"],
            *mcp_http.CORS_RESPONSE_HEADERS,
        ],
    )
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        max_body_bytes=settings.server.max_body_bytes,
        max_import_bytes=settings.server.max_import_bytes,
    )
    return app
