"""Bridges (issue 13, DEVIATIONS 5): pair an agent, list and revoke them, and the agents'
WebSocket (`bridges/connect`, in entrypoints/api/bridge_ws.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from pieces_integration.domain.auth import ensure_can_write
from pieces_integration.domain.errors import RateLimited
from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.bridges import (
    BridgeCreate,
    BridgeCredentialPublic,
    BridgePair,
    BridgePairingPublic,
    BridgePublic,
    BridgesPublic,
)
from pieces_integration.service_layer.pieces.bridges import BridgeService

router = APIRouter(prefix="/api/v1/integrations/pieces/bridges", tags=["integrations"])
PAIR_PER_MINUTE = 10  # per client address: codes are long, but guessing is still throttled


def get_bridges(container: ContainerDep) -> BridgeService:
    return container.bridge.service


BridgesDep = Annotated[BridgeService, Depends(get_bridges)]


@router.post("", status_code=201, summary="Start pairing a bridge (a one-time code)")
async def create_bridge(
    body: BridgeCreate, principal: CurrentPrincipal, bridges: BridgesDep
) -> BridgePairingPublic:
    """Returns a code for `pieces-integration bridge pair --code CODE`, valid 10 minutes, once."""
    ensure_can_write(principal)
    ticket = await bridges.create(principal.user_id, body.name, actor_id=principal.user_id)
    return BridgePairingPublic.of(ticket)


@router.post("/pair", summary="Exchange a pairing code for the bridge's credential")
async def pair_bridge(
    body: BridgePair, request: Request, container: ContainerDep, bridges: BridgesDep
) -> BridgeCredentialPublic:
    """Called by the agent: the code is the authentication. The credential is shown once."""
    client = request.client.host if request.client else "unknown"
    decision = await container.rate_limiter.hit(
        f"bridge-pair:{client}", per_minute=PAIR_PER_MINUTE, burst=5
    )
    if not decision.allowed:
        raise RateLimited(
            "too many pairing attempts; wait a minute",
            retry_after=decision.retry_after,
            limit=decision.limit,
            remaining=decision.remaining,
        )
    # A wrong code is a failed sign-in like a guessed key (issue 20): it counts towards the
    # address's growing lockout, is audited and counted, across replicas.
    async with container.auth_throttle.attempt(kind="pairing_code", ip=client):
        paired = await bridges.pair(
            body.code, device_id=body.device_id, agent_version=body.agent_version
        )
    return BridgeCredentialPublic.of(paired)


@router.get("", summary="The caller's bridges")
async def read_bridges(principal: CurrentPrincipal, bridges: BridgesDep) -> BridgesPublic:
    views = await bridges.list(principal.user_id)
    return BridgesPublic(data=[BridgePublic.of(v) for v in views], count=len(views))


@router.delete("/{bridge_id}", status_code=204, summary="Revoke a bridge (cut within 1 s)")
async def revoke_bridge(
    bridge_id: str, principal: CurrentPrincipal, bridges: BridgesDep
) -> Response:
    ensure_can_write(principal)
    await bridges.revoke(principal.user_id, bridge_id, actor_id=principal.user_id)
    return Response(status_code=204)
