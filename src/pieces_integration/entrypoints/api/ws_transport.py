"""A direct frame writer for WebSocket fan-out, offered to the app through the ASGI scope.

Through ASGI, every message to every socket costs a task wake-up, Starlette's and uvicorn's
send paths, and its own frame encoding: tens of microseconds, which at 2,000 sockets per
event is most of the spec's 100 ms budget. `FanoutWebSocketProtocol` is uvicorn's sans-I/O
WebSocket protocol plus one scope extension, `EXTENSION`: a callable that writes an already
encoded frame straight to the socket's transport when that is safe right now (handshake
done, no close sent, no compression negotiated, the transport not pushing back), and
returns False otherwise, so the caller falls back to the ordinary ASGI send. A server frame
is not masked, so one encoding serves every socket (`encode_text_frame` keeps the last one).

Everything else (handshake, receiving, pings, close, flow control) is uvicorn's own code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State

EXTENSION = "pieces_integration.websocket.write_frame"

FrameWriter = Callable[[bytes], bool]


class FanoutWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol, plus the `EXTENSION` frame writer."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope: dict[str, Any] | None = getattr(self, "scope", None)
        if scope is not None:  # the handshake was accepted; the app task has not run yet
            scope.setdefault("extensions", {})[EXTENSION] = self.write_frame

    def write_frame(self, frame: bytes) -> bool:
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or not self.writable.is_set()  # over the transport's high-water mark
            or self.transport.is_closing()
            or self.conn.state is not State.OPEN
            or self.conn.extensions  # per-message compression needs per-socket encoding
        ):
            return False
        self.transport.write(frame)
        return True


_last: tuple[str | None, bytes] = (None, b"")


def encode_text_frame(text: str) -> bytes:
    """One unmasked, final text frame. Fan-out passes the same `str` object to every socket,
    so the last encoding is kept and reused (compared by identity, which costs nothing)."""
    global _last
    last_text, last_frame = _last
    if text is last_text:
        return last_frame
    frame = Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    _last = (text, frame)
    return frame
