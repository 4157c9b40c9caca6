"""The `serve` command's WebSocket protocol writes fan-out frames straight to the socket.

A real uvicorn server with `FanoutWebSocketProtocol`, three clients: every event reaches
every client intact and in order (non-ASCII text and a frame over 64 KiB included), and the
frames went through the direct writer, not the per-socket ASGI path.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator

import anyio
import pytest
import websockets

from pieces_integration.adapters.event_log_memory import MemoryEventLog
from pieces_integration.adapters.sql import migrate
from pieces_integration.bootstrap import Container, Overrides, bootstrap
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api import ws_transport
from pieces_integration.entrypoints.api.app import create_app
from pieces_integration.entrypoints.api.ws_transport import (
    FanoutWebSocketProtocol,
    encode_text_frame,
)
from tests.e2e.live_server import live_server

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

Served = tuple[Container, str, list[int]]  # container, ws URL, sizes of directly written frames


def test_an_encoded_frame_parses_back_to_the_same_text() -> None:
    """Read back with RFC 6455 5.2 by hand: FIN + text opcode, no mask, 7/16/64-bit length."""
    for text in ("", "x" * 125, "é" * 126, "🙂" * 20_000, '{"type":"pong"}'):
        frame = encode_text_frame(text)
        assert frame[0] == 0x81  # FIN, opcode 1 (text)
        assert frame[1] & 0x80 == 0  # server frames are not masked
        size, offset = frame[1] & 0x7F, 2
        if size == 126:
            size, offset = struct.unpack_from("!H", frame, 2)[0], 4
        elif size == 127:
            size, offset = struct.unpack_from("!Q", frame, 2)[0], 10
        assert len(frame) == offset + size
        assert frame[offset:].decode() == text


def test_the_same_text_object_is_encoded_once() -> None:
    text = "".join(["same ", "event"])
    first = encode_text_frame(text)
    assert encode_text_frame(text) is first
    assert encode_text_frame("".join(["same ", "event"])) == first  # equal, not identical


# Written on the loop thread (few sockets), and by the worker threads (forced for three).
@pytest.fixture(params=["inline", "threads"])
async def server(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Served]:
    if request.param == "threads":
        monkeypatch.setattr(ws_transport, "PARALLEL_FROM", 1)
        monkeypatch.setattr(ws_transport.FANOUT, "threads", 2)
    written: list[int] = []
    original = FanoutWebSocketProtocol.write_frame

    def counting(self: FanoutWebSocketProtocol, frame: bytes) -> bool:
        ok = original(self, frame)
        if ok:
            written.append(len(frame))
        return ok

    monkeypatch.setattr(FanoutWebSocketProtocol, "write_frame", counting)
    settings = load_settings()
    await anyio.to_thread.run_sync(migrate.upgrade, settings.sqlalchemy_url)
    container = bootstrap(
        settings,
        Overrides(event_log=MemoryEventLog(history=100), realtime_batch=ws_transport.FANOUT.batch),
    )
    app = create_app(settings, container=container)
    try:
        async with live_server(
            app, ws=FanoutWebSocketProtocol, ws_per_message_deflate=False
        ) as port:
            yield container, f"ws://127.0.0.1:{port}/ws", written
    finally:
        await container.aclose()


async def test_fan_out_goes_through_the_direct_writer_intact_and_in_order(
    server: Served,
) -> None:
    container, url, written = server
    token = container.jwt.issue("alice", Role.USER, ttl_seconds=600)
    headers = {"Authorization": f"Bearer {token}"}
    big = "ü" * 40_000  # 80 KB of UTF-8: a 64-bit length header
    async with (
        websockets.connect(url, additional_headers=headers, max_size=None) as a,
        websockets.connect(url, additional_headers=headers, max_size=None) as b,
        websockets.connect(url, additional_headers=headers, max_size=None) as c,
    ):
        clients = (a, b, c)
        for client in clients:
            await client.send(json.dumps({"type": "subscribe", "payload": {}}))
            assert json.loads(await client.recv())["type"] == "subscribed"
        before = len(written)
        for n in range(30):
            payload = {"n": n, "text": big if n == 7 else f"événement {n} 🙂"}
            await container.events.publish("alice", "asset_updated", payload)
        for client in clients:
            got = []
            while len(got) < 30:
                message = json.loads(await asyncio.wait_for(client.recv(), 10))
                if message["type"] == "asset_updated":
                    got.append(message["payload"])
            assert [p["n"] for p in got] == list(range(30))
            assert got[7]["text"] == big and got[8]["text"] == "événement 8 🙂"
        # Every delivery took the direct path (a quick reader never backs the socket up).
        assert len(written) - before == 3 * 30
