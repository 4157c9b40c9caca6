"""The live feed: the user's `/ws` events as they arrive (a browser ticket, then `/ws`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from pieces_integration.entrypoints.api.deps import ContainerDep
from pieces_integration.entrypoints.console.session import ConsolePrincipal, Csrf
from pieces_integration.entrypoints.console.web import render

router = APIRouter(prefix="/console/feed")


@router.get("", include_in_schema=False)
async def feed_page(request: Request, principal: ConsolePrincipal) -> Response:
    return render(request, "feed.html", {}, page="feed")


@router.post("/ticket", include_in_schema=False, dependencies=[Csrf])
async def feed_ticket(principal: ConsolePrincipal, container: ContainerDep) -> JSONResponse:
    """The same single-use ticket as `POST /api/v1/ws-ticket`, for the session's user."""
    tickets = container.realtime.tickets
    ticket = await tickets.issue(principal)
    return JSONResponse({"ticket": ticket, "expires_in": tickets.ttl})
