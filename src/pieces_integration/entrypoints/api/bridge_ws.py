"""`/api/v1/integrations/pieces/bridges/connect`: where bridge agents dial in (DEVIATIONS 5).

The agent authenticates in the handshake (`Authorization: Bearer pib_...` and its device
id in `X-Bridge-Device`); a refused credential never gets a socket (HTTP 403). Then it
says hello, is welcomed with the heartbeat interval, and the service layer holds the session.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, WebSocket

from pieces_integration.adapters.bridge.session import BridgeSession
from pieces_integration.bootstrap import Container
from pieces_integration.domain import bridge_protocol as wire
from pieces_integration.domain.errors import RateLimited, Unauthorized
from pieces_integration.entrypoints.api.ws_channel import StarletteChannel
from pieces_integration.ports.channel import ChannelClosed

router = APIRouter()
HELLO_TIMEOUT = 10.0


def _credential(websocket: WebSocket) -> str:
    scheme, _, credential = websocket.headers.get("authorization", "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


@router.websocket("/api/v1/integrations/pieces/bridges/connect")
async def bridge_connect(websocket: WebSocket) -> None:
    container: Container = websocket.app.state.container
    service = container.bridge.service
    client = websocket.client.host if websocket.client else None
    try:
        # Guessed credentials count towards the address's lockout (issue 20).
        async with container.auth_throttle.attempt(kind="bridge", ip=client):
            bridge = await service.authenticate(
                _credential(websocket), websocket.headers.get("x-bridge-device", "")
            )
        # A genuine credential of a disabled account: refused, but not counted as a guess.
        await container.authenticator.ensure_active(bridge.user_id)
    except (Unauthorized, RateLimited):
        await websocket.close(1008)  # before accept: the handshake is refused with 403
        return
    await websocket.accept()
    socket = StarletteChannel(websocket)
    try:
        async with asyncio.timeout(HELLO_TIMEOUT):
            hello = wire.decode(await socket.receive())
        if not isinstance(hello, wire.Hello):
            raise wire.ProtocolError("the first frame must be hello")
    except (TimeoutError, wire.ProtocolError, ChannelClosed):
        await socket.close(1002, "expected hello")
        return
    session = BridgeSession(
        socket,
        bridge_id=bridge.id,
        user_id=bridge.user_id,
        agent_version=hello.agent_version[:64],
        heartbeat=container.bridge.heartbeat,
        hub_beats=True,  # the hub's one heartbeat ticker (running in the app's lifespan)
    )
    await socket.send_text(
        wire.encode(
            wire.Welcome(
                bridge_id=bridge.id,
                heartbeat=container.bridge.heartbeat,
                replica=container.bridge.hub.replica,
            )
        )
    )
    client = websocket.client.host if websocket.client else None
    await service.serve(session, bridge, ip=client)
