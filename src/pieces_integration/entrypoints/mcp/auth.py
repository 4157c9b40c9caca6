"""Who a tool call acts for.

Over HTTP the `/mcp` route authenticates every request exactly like the REST API (the same
FastAPI dependency: bearer token or `X-API-Key`, 401 without) and leaves the principal on
the request; a tool reads it from the request that carried its call, so every call is
scoped to the caller of that very request. Over stdio on the embedded default, the caller
is the local user `serve` creates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from pieces_integration.domain.auth import Principal
from pieces_integration.domain.model import Role
from pieces_integration.service_layer.local_admin import LOCAL_ADMIN

CallerOf = Callable[[Context[Any, Any]], Principal]

# The embedded default's one user (the same the web console signs in as).
LOCAL_PRINCIPAL = Principal(user_id=LOCAL_ADMIN, role=Role.ADMIN, via="local")


def http_caller(ctx: Context[Any, Any]) -> Principal:
    """The principal `deps.current_principal` put on the HTTP request of this call."""
    request = ctx.request_context.request
    state = getattr(request, "state", None)
    principal = getattr(state, "principal", None) if state is not None else None
    if not isinstance(principal, Principal):
        # Unreachable through `/mcp` (the route refuses such requests with 401).
        raise ToolError("authentication required: send a Bearer token or X-API-Key")
    return principal


def fixed_caller(principal: Principal) -> CallerOf:
    def caller(ctx: Context[Any, Any]) -> Principal:
        return principal

    return caller
