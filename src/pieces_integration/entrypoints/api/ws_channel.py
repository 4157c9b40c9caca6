"""Starlette's WebSocket as our `Channel` (the `/ws` clients) and `BridgeWire` (bridge agents).

Every way the peer can vanish becomes `ChannelClosed`, and closing a socket that is already
gone is a no-op: both users drop the transport then anyway.
"""

from __future__ import annotations

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from pieces_integration.entrypoints.api.ws_transport import (
    EXTENSION,
    FrameWriter,
    encode_text_frame,
)
from pieces_integration.ports.channel import ChannelClosed


class StarletteChannel:
    """One accepted Starlette WebSocket, for the realtime hub or a bridge session."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        # Offered by `FanoutWebSocketProtocol` (the `serve` command's server); absent under
        # other servers and the test client, where every message takes the ASGI path.
        self._write_frame: FrameWriter | None = websocket.scope.get("extensions", {}).get(EXTENSION)

    def send_nowait(self, text: str) -> bool:
        if self._write_frame is None:
            return False
        return self._write_frame(encode_text_frame(text))

    async def send_text(self, text: str) -> None:
        try:
            await self._ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise ChannelClosed(exc.code) from exc
        except (RuntimeError, OSError) as exc:  # sending after close / transport gone
            raise ChannelClosed() from exc

    async def send_bytes(self, data: bytes) -> None:
        try:
            await self._ws.send_bytes(data)
        except WebSocketDisconnect as exc:
            raise ChannelClosed(exc.code) from exc
        except (RuntimeError, OSError) as exc:
            raise ChannelClosed() from exc

    async def receive(self) -> str | bytes:
        try:
            message = await self._ws.receive()
        except RuntimeError as exc:
            raise ChannelClosed() from exc
        if message["type"] == "websocket.disconnect":
            raise ChannelClosed(message.get("code"))
        text: str | None = message.get("text")
        if text is not None:
            return text
        data: bytes = message.get("bytes") or b""
        return data

    async def close(self, code: int, reason: str) -> None:
        if self._ws.application_state is WebSocketState.DISCONNECTED:
            return
        try:
            await self._ws.close(code, reason)
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The transport went first (Starlette reports a failed send as a disconnect, 1006):
            # nothing is left to close.
            return
