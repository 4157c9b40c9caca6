"""Pieces OS integration (spec 6.1 Integration Operations, 7.1 onboarding, DEVIATIONS 18)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from pieces_integration.domain.auth import ensure_can_write, resolve_user
from pieces_integration.domain.bridge import URL_SCHEME
from pieces_integration.domain.errors import InvalidInput
from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.pieces import (
    ConnectionResultPublic,
    ConnectionStatusPublic,
    DisconnectionResultPublic,
    PiecesConnect,
    PiecesDetect,
    PiecesDetectionPublic,
    PiecesDisconnect,
)
from pieces_integration.service_layer.pieces import PiecesIntegration

router = APIRouter(prefix="/api/v1/integrations/pieces", tags=["integrations"])


def get_pieces(container: ContainerDep) -> PiecesIntegration:
    return container.sync.pieces


PiecesDep = Annotated[PiecesIntegration, Depends(get_pieces)]


@router.post("/detect", summary="Look for a running Pieces OS (within 2 s)")
async def detect_pieces(
    body: PiecesDetect, principal: CurrentPrincipal, pieces: PiecesDep
) -> PiecesDetectionPublic:
    """Probes the given URL (or the default) and the 39300–39333 range and legacy port of its
    host. A URL outside loopback/private/link-local/unique-local addresses is refused (422)."""
    return PiecesDetectionPublic.of(await pieces.detect(body.url))


@router.post("/connect", summary="Connect to the user's Pieces OS")
async def connect_pieces(
    body: PiecesConnect, principal: CurrentPrincipal, pieces: PiecesDep
) -> ConnectionResultPublic:
    """Pieces being unreachable is reported in the result (`success: false` with the spec 8.4
    message and actions); the API key, when given, is stored encrypted."""
    ensure_can_write(principal)
    user_id = resolve_user(principal, body.user_id)
    if (body.pieces_url or "").startswith(URL_SCHEME):
        # A bridge becomes the connection by pairing and dialling in, never by naming it here
        # (so nobody can point their connection at someone else's bridge).
        raise InvalidInput(
            "bridge connections are made by pairing a bridge (POST .../bridges), not by URL",
            field="pieces_url",
        )
    result = await pieces.connect(
        user_id,
        body.pieces_url,
        api_key=body.api_key.get_secret_value() if body.api_key else None,
        preferences=body.user_preferences,
        actor_id=principal.user_id,
    )
    return ConnectionResultPublic.of(result)


@router.get("/status", summary="The Pieces connection state of a user")
async def read_pieces_status(
    principal: CurrentPrincipal,
    pieces: PiecesDep,
    user_id: Annotated[str | None, Query(max_length=128)] = None,
) -> ConnectionStatusPublic:
    return ConnectionStatusPublic.of(await pieces.status(resolve_user(principal, user_id)))


@router.post("/retry", summary="Retry a failed Pieces connection now")
async def retry_pieces(
    principal: CurrentPrincipal,
    pieces: PiecesDep,
    user_id: Annotated[str | None, Query(max_length=128)] = None,
) -> ConnectionStatusPublic:
    ensure_can_write(principal)
    return ConnectionStatusPublic.of(await pieces.retry(resolve_user(principal, user_id)))


@router.post("/disconnect", summary="Disconnect from Pieces OS")
async def disconnect_pieces(
    body: PiecesDisconnect, principal: CurrentPrincipal, pieces: PiecesDep
) -> DisconnectionResultPublic:
    ensure_can_write(principal)
    user_id = resolve_user(principal, body.user_id)
    return DisconnectionResultPublic.of(
        await pieces.disconnect(
            user_id, preserve_data=body.preserve_data, actor_id=principal.user_id
        )
    )
