"""Streamable HTTP at `/mcp`, inside the FastAPI app.

`/mcp` is an ordinary route, so the REST API's own authentication dependency runs first
(bearer token or `X-API-Key`; 401 problem+json without; the same rate limit), as do the
app's middleware (request id, body limit, CORS). The route then hands the exchange to the
SDK's session manager, which the app's lifespan runs (`McpHttp.running`). Each session is
bound to the principal that opened it: another caller presenting its id gets 404.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, Request, Response
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Message, Receive, Scope, Send

from pieces_integration.bootstrap import Container
from pieces_integration.config import Settings
from pieces_integration.domain.auth import Principal
from pieces_integration.entrypoints.api.deps import CurrentPrincipal
from pieces_integration.entrypoints.mcp.auth import http_caller
from pieces_integration.entrypoints.mcp.names import PATH
from pieces_integration.entrypoints.mcp.server import build_mcp_server

# What a browser client must be allowed to send and to read (the app's CORS adds them).
CORS_REQUEST_HEADERS = ["Mcp-Session-Id", "Mcp-Protocol-Version", "Mcp-Method", "Last-Event-ID"]
CORS_RESPONSE_HEADERS = ["Mcp-Session-Id"]


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """The SDK's DNS-rebinding guard, with the host names and origins from settings."""
    origins = [*settings.mcp.allowed_origins, *settings.server.cors_origins]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(settings.mcp.allowed_hosts),
        allowed_origins=list(dict.fromkeys(origins)),
    )


class McpHttp:
    """The MCP server of one running app and its streamable HTTP session manager."""

    def __init__(self, container: Container) -> None:
        settings = container.settings
        server = build_mcp_server(container, http_caller)
        server.streamable_http_app(  # builds the session manager; the app itself is unused
            streamable_http_path=PATH,
            # A call's answer as one JSON body, not an SSE stream per POST: fewer tasks and
            # bytes per call; no tool here streams progress. The GET stream still carries
            # the server's own notifications.
            json_response=True,
            transport_security=transport_security(settings),
            max_request_body_size=settings.server.max_body_bytes,
            session_idle_timeout=settings.mcp.session_idle_seconds,
            max_sessions=settings.mcp.max_sessions,
        )
        self.sessions: StreamableHTTPSessionManager = server.session_manager
        self.revocations = container.revocations

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.sessions.run():
            yield


def _session_owner(principal: Principal) -> AuthenticatedUser:
    """The identity the SDK binds a session to (no secret in it)."""
    token = AccessToken(
        # bandit B106: the SDK's placeholder; our own authentication runs first.
        token="",  # nosec B106
        client_id=principal.key_id or principal.via,
        scopes=[principal.role.value],
        subject=principal.user_id,
    )
    return AuthenticatedUser(token)


class _Exchange(Response):
    """Hands the request to the session manager; the dependency's headers go along."""

    def __init__(self, mcp: McpHttp, principal: Principal, headers: list[tuple[bytes, bytes]]):
        super().__init__()
        self._mcp = mcp
        self._principal = principal
        self._extra = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["user"] = _session_owner(self._principal)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The SDK sends an HTTPStatus at times; the access log and metrics want an int.
                message["status"] = int(message["status"])
                message["headers"] = [*message.get("headers", []), *self._extra]
            await send(message)

        # A request lives as long as its exchange: a GET stream for the whole session. When
        # what it authenticated with is revoked (user deleted or disabled, key revoked), it
        # ends at once (issue 20); the next request is refused by the authentication.
        with anyio.CancelScope() as exchange:
            with self._mcp.revocations.watch_principal(
                self._principal, on_revoked=lambda _reason: exchange.cancel()
            ):
                await self._mcp.sessions.handle_request(scope, receive, send_with_headers)


router = APIRouter(tags=["mcp"])


@router.api_route(PATH, methods=["GET", "POST", "DELETE"], include_in_schema=False)
async def mcp_endpoint(
    request: Request, response: Response, principal: CurrentPrincipal
) -> Response:
    """The MCP streamable HTTP endpoint (see README "MCP")."""
    mcp: McpHttp = request.app.state.mcp
    extra = [(k, v) for k, v in response.headers.raw if k.lower().startswith(b"ratelimit-")]
    return _Exchange(mcp, principal, extra)
