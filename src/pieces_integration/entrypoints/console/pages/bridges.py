"""Bridges (the cluster path of setup, DEVIATIONS 5): make a one-time pairing code for
`pieces-integration bridge pair`, see which bridges are connected, revoke one. The same
`BridgeService` as `/api/v1/integrations/pieces/bridges`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response

from pieces_integration.domain.auth import ensure_can_write
from pieces_integration.domain.errors import PiecesIntegrationError
from pieces_integration.entrypoints.api.deps import ContainerDep
from pieces_integration.entrypoints.console.session import ConsolePrincipal, Csrf
from pieces_integration.entrypoints.console.web import redirect, render

router = APIRouter(prefix="/console/bridges")

BridgeId = Annotated[str, Path(min_length=1, max_length=64)]


async def _page(
    request: Request,
    principal: Any,
    container: Any,
    *,
    ticket: Any = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    views = await container.bridge.service.list(principal.user_id)
    context = {
        "views": views,
        "ticket": ticket,
        "errors": errors or {},
        "server": str(request.base_url).rstrip("/"),
    }
    return render(request, "bridges.html", context, status_code=status_code, page="bridges")


@router.get("", include_in_schema=False)
async def bridges_page(
    request: Request, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    return await _page(request, principal, container)


@router.post("", include_in_schema=False, dependencies=[Csrf])
async def create_pairing(
    request: Request,
    principal: ConsolePrincipal,
    container: ContainerDep,
    name: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    ensure_can_write(principal)
    if len(name.strip()) > 128:
        errors = {"name": "At most 128 characters."}
        return await _page(request, principal, container, errors=errors, status_code=422)
    try:
        ticket = await container.bridge.service.create(
            principal.user_id, name, actor_id=principal.user_id
        )
    except PiecesIntegrationError as exc:
        errors = {"name": exc.message}
        return await _page(request, principal, container, errors=errors, status_code=422)
    return await _page(request, principal, container, ticket=ticket)


@router.post("/{bridge_id}/revoke", include_in_schema=False, dependencies=[Csrf])
async def revoke(
    request: Request, bridge_id: BridgeId, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    ensure_can_write(principal)
    await container.bridge.service.revoke(principal.user_id, bridge_id, actor_id=principal.user_id)
    return redirect(request, "/console/bridges")
