"""Starlette's WebSocket as the `/ws` clients' `Channel` and the bridge agents' `BridgeWire`.

Driven through Starlette's own WebSocket over plain ASGI callables: a peer that vanished is
`ChannelClosed` on every path (keeping its close code when there is one), and closing a
socket whose transport is already gone returns quietly, for both users alike.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.websockets import WebSocket, WebSocketDisconnect

from pieces_integration.entrypoints.api.ws_channel import StarletteChannel
from pieces_integration.ports.channel import ChannelClosed

pytestmark = pytest.mark.anyio
SCOPE = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}


class Transport:
    """The server's side of one socket: what the app receives, what it sent, and whether
    sending fails (the peer or the transport gone)."""

    def __init__(self, *incoming: dict[str, Any]) -> None:
        self.incoming = [{"type": "websocket.connect"}, *incoming]
        self.sent: list[dict[str, Any]] = []
        self.fail: BaseException | None = None

    async def receive(self) -> dict[str, Any]:
        return self.incoming.pop(0)

    async def send(self, message: dict[str, Any]) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(message)


async def _accepted(transport: Transport) -> StarletteChannel:
    websocket = WebSocket(SCOPE, transport.receive, transport.send)
    await websocket.accept()
    return StarletteChannel(websocket)


async def test_text_and_bytes_both_reach_the_socket() -> None:
    transport = Transport()
    channel = await _accepted(transport)
    await channel.send_text("hello")
    await channel.send_bytes(b"\x00\x01")
    assert transport.sent[1:] == [
        {"type": "websocket.send", "text": "hello"},
        {"type": "websocket.send", "bytes": b"\x00\x01"},
    ]


@pytest.mark.parametrize(("method", "payload"), [("send_text", "x"), ("send_bytes", b"x")])
async def test_a_disconnect_while_sending_is_channel_closed_with_its_code(
    method: str, payload: Any
) -> None:
    transport = Transport()
    channel = await _accepted(transport)
    transport.fail = WebSocketDisconnect(1001)
    with pytest.raises(ChannelClosed) as closed:
        await getattr(channel, method)(payload)
    assert closed.value.code == 1001


@pytest.mark.parametrize(("method", "payload"), [("send_text", "x"), ("send_bytes", b"x")])
async def test_a_transport_gone_while_sending_is_channel_closed(method: str, payload: Any) -> None:
    transport = Transport()
    channel = await _accepted(transport)
    transport.fail = OSError("connection reset")
    with pytest.raises(ChannelClosed):
        await getattr(channel, method)(payload)


async def test_receiving_gives_text_or_bytes_and_a_disconnect_is_channel_closed() -> None:
    transport = Transport(
        {"type": "websocket.receive", "text": "hi"},
        {"type": "websocket.receive", "bytes": b"\x07"},
        {"type": "websocket.disconnect", "code": 4000},
    )
    channel = await _accepted(transport)
    assert await channel.receive() == "hi"
    assert await channel.receive() == b"\x07"
    with pytest.raises(ChannelClosed) as closed:
        await channel.receive()
    assert closed.value.code == 4000


@pytest.mark.parametrize(
    "gone", [OSError("connection reset"), WebSocketDisconnect(1006), RuntimeError("closed")]
)
async def test_closing_a_socket_whose_transport_is_gone_returns_quietly(
    gone: BaseException,
) -> None:
    transport = Transport()
    channel = await _accepted(transport)
    transport.fail = gone
    await channel.close(1002, "expected hello")  # no error: nothing is left to close
    transport.fail = None
    await channel.close(1000, "again")
    assert transport.sent[1:] == []  # the failed close still counts: no second close frame


async def test_a_close_is_sent_once() -> None:
    transport = Transport()
    channel = await _accepted(transport)
    await channel.close(4403, "revoked")
    await channel.close(1000, "again")
    assert transport.sent[1:] == [{"type": "websocket.close", "code": 4403, "reason": "revoked"}]
