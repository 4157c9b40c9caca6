"""Status: each integration's state with the spec 8.4 message, retry, work without Pieces."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from pieces_integration.domain.auth import ensure_can_write
from pieces_integration.domain.errors import PiecesIntegrationError
from pieces_integration.entrypoints.api.deps import ContainerDep
from pieces_integration.entrypoints.console.session import ConsolePrincipal, Csrf
from pieces_integration.entrypoints.console.web import redirect, render

router = APIRouter(prefix="/console")


@router.get("", include_in_schema=False)
async def home(request: Request, principal: ConsolePrincipal, container: ContainerDep) -> Response:
    overview = await container.overview.for_user(principal)
    if overview.last_sync is None and not overview.pieces.connected:
        return redirect(request, "/console/setup")  # a newcomer starts with the wizard
    return redirect(request, "/console/status")


@router.get("/status", include_in_schema=False)
async def status_page(
    request: Request, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    overview = await container.overview.for_user(principal)
    return render(request, "status.html", {"o": overview}, page="status")


@router.get("/status/panel", include_in_schema=False)
async def status_panel(
    request: Request, principal: ConsolePrincipal, container: ContainerDep
) -> Response:
    overview = await container.overview.for_user(principal)
    return render(request, "_status_panel.html", {"o": overview})


@router.post("/status/retry", include_in_schema=False, dependencies=[Csrf])
async def retry(request: Request, principal: ConsolePrincipal, container: ContainerDep) -> Response:
    ensure_can_write(principal)
    problem = None
    try:
        await container.sync.pieces.retry(principal.user_id)
    except PiecesIntegrationError as exc:  # e.g. nothing to retry: said in the panel
        problem = exc.message
    overview = await container.overview.for_user(principal)
    context = {"o": overview, "retried": problem is None, "problem": problem}
    return render(request, "_status_panel.html", context)
