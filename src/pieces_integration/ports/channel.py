"""A bidirectional message channel to one real-time client (a WebSocket, or a fake)."""

from __future__ import annotations

from typing import Protocol


class ChannelClosed(Exception):
    """The peer went away; `code` is the close code when known."""

    def __init__(self, code: int | None = None) -> None:
        super().__init__(f"channel closed ({code})")
        self.code = code


class Channel(Protocol):
    async def send_text(self, text: str) -> None: ...

    def send_nowait(self, text: str) -> bool:
        """Hand `text` to the transport now (or, inside the hub's fan-out batch, at the
        batch's end, still ahead of anything later) if it can take it without waiting.

        False when it cannot (no such fast path, the socket is backed up, closing): the
        caller then queues the message for `send_text`. Lets a fan-out write one pre-encoded
        frame to thousands of sockets without waking a task per socket.
        """
        ...

    async def receive(self) -> str | bytes:
        """The next message; ChannelClosed when the peer closed."""
        ...

    async def close(self, code: int, reason: str) -> None: ...
