"""A lean WebSocket load generator: thousands of client sockets in one uvloop process.

A client library spends tens of microseconds per received frame (parsing, queueing,
waking a reader task). With 2,000 sockets on the same two cores as the server, that cost
lands on the measured latency. Here each socket is a bare `asyncio.Protocol`: the receive
time is taken in `data_received`, before any parsing, and frames are parsed afterwards, so
what is measured is when the server's bytes arrived, not how fast this process digests them
(frames are split on arrival, which is cheap; their JSON is parsed after the run).

Speaks just enough RFC 6455 for the benchmark: the upgrade handshake, masked client text
frames, unmasked server frames (text, ping -> pong, close).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
from collections.abc import Iterator
from typing import cast
from urllib.parse import urlsplit


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked, final frame (clients must mask, RFC 6455 5.3)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def server_frames(buffer: bytearray) -> Iterator[tuple[int, bytes]]:
    """Yield complete (opcode, payload) frames from the front of `buffer`, consuming them."""
    while len(buffer) >= 2:
        opcode, size, offset = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
        if size == 126:
            if len(buffer) < 4:
                return
            (size,) = struct.unpack_from("!H", buffer, 2)
            offset = 4
        elif size == 127:
            if len(buffer) < 10:
                return
            (size,) = struct.unpack_from("!Q", buffer, 2)
            offset = 10
        if len(buffer) < offset + size:
            return
        payload = bytes(buffer[offset : offset + size])
        del buffer[: offset + size]
        yield opcode, payload


class RawClient(asyncio.Protocol):
    """One connection. `received` keeps (receive time, text payload) for parsing after the run."""

    def __init__(self, request: bytes, subscribe: bytes) -> None:
        self._request = request
        self._subscribe = subscribe
        self._buffer = bytearray()
        loop = asyncio.get_running_loop()
        self.upgraded = loop.create_future()
        self.subscribed = loop.create_future()
        self.received: list[tuple[float, bytes]] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        now = time.time()  # before any parsing: the arrival time of these bytes
        self._buffer += data
        if not self.upgraded.done():
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self._buffer[: self._buffer.find(b"\r\n")])
            if b" 101 " not in status:
                self.upgraded.set_exception(RuntimeError(status.decode(errors="replace")))
                return
            del self._buffer[: end + 4]
            self.upgraded.set_result(None)
            assert self.transport is not None
            self.transport.write(self._subscribe)
        for opcode, payload in server_frames(self._buffer):
            if opcode == 0x1:
                if not self.subscribed.done():
                    if b'"subscribed"' in payload:
                        self.subscribed.set_result(None)
                    continue
                self.received.append((now, payload))
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(client_frame(0xA, payload))

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.upgraded, self.subscribed):
            if not future.done():
                future.set_exception(ConnectionError(f"closed: {exc!r}"))

    def messages(self) -> Iterator[tuple[float, dict[str, object]]]:
        """(receive time, message) for every text frame after the subscription ack."""
        for stamp, payload in self.received:
            yield stamp, json.loads(payload)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(0x8, struct.pack("!H", 1000)))
            self.transport.close()


async def open_raw(url: str, headers: dict[str, str], subscribe: dict[str, object]) -> RawClient:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    frame = client_frame(0x1, json.dumps(subscribe).encode())
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: RawClient(request, frame), host, port)
    await asyncio.wait_for(client.upgraded, 60)
    await asyncio.wait_for(client.subscribed, 60)
    return client
