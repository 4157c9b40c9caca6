"""A client that stops reading is closed with 4008 while memory stays bounded, and the
other clients keep receiving without delay. Runs a real uvicorn server (TCP backpressure
does not exist in the in-memory test client)."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import statistics
import time
from typing import Any

import anyio
import pytest
import websockets

from pieces_integration.adapters.event_log_memory import MemoryEventLog
from pieces_integration.adapters.sql import migrate
from pieces_integration.bootstrap import Container, Overrides, bootstrap
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.app import create_app
from pieces_integration.entrypoints.api.ws_transport import FANOUT, FanoutWebSocketProtocol
from pieces_integration.service_layer.realtime_hub import RealtimeHub
from pieces_integration.service_layer.realtime_protocol import RealtimeLimits
from tests.e2e.live_server import live_server

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

QUEUE_BYTES = 1024 * 1024
# Random text: permessage-deflate would shrink a repetitive payload to almost nothing.
PAYLOAD = secrets.token_urlsafe(48 * 1024)
EVENTS = 600  # ~38 MB toward each client: far beyond socket buffers and the queue bound


# Both send paths: uvicorn's stock protocol (every message through ASGI) and the `serve`
# command's, which writes fan-out frames straight to the transport while it keeps up.
@pytest.mark.parametrize("ws_protocol", ["websockets-sansio", FanoutWebSocketProtocol])
async def test_a_client_that_stops_reading_is_closed_and_others_are_not_delayed(
    ws_protocol: Any,
) -> None:
    settings = load_settings()
    await anyio.to_thread.run_sync(migrate.upgrade, settings.sqlalchemy_url)
    container = bootstrap(
        settings,
        Overrides(
            event_log=MemoryEventLog(history=20),
            realtime_limits=RealtimeLimits(
                send_queue_messages=100, send_queue_bytes=QUEUE_BYTES, close_timeout=15
            ),
            realtime_batch=FANOUT.batch,
        ),
    )
    app = create_app(settings, container=container)
    try:
        async with live_server(app, ws_max_size=1024 * 1024, ws=ws_protocol) as port:
            await _scenario(container, port)
    finally:
        await container.aclose()


async def _scenario(container: Container, port: int) -> None:
    hub: RealtimeHub = container.realtime.hub
    token = container.jwt.issue("alice", Role.USER, ttl_seconds=600)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"ws://127.0.0.1:{port}/ws"
    # A small fixed receive buffer (no autotuning, which grows to 32 MB here) so that
    # "stops reading" turns into backpressure quickly.
    slow_socket = socket.socket()
    slow_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    slow_socket.connect(("127.0.0.1", port))
    async with (
        websockets.connect(url, additional_headers=headers, max_queue=1, sock=slow_socket) as slow,
        websockets.connect(url, additional_headers=headers, max_size=None) as fast,
    ):
        for client in (slow, fast):
            await client.send(json.dumps({"type": "subscribe", "payload": {}}))
            assert json.loads(await client.recv())["type"] == "subscribed"

        delays: list[float] = []
        received: list[int] = []

        async def read_fast() -> None:
            while len(received) < EVENTS:
                message = json.loads(await fast.recv())
                if message["type"] == "asset_updated":
                    delays.append(time.perf_counter() - message["payload"]["sent"])
                    received.append(message["payload"]["n"])

        reader = asyncio.create_task(read_fast())
        peak_bytes = 0
        for n in range(EVENTS):
            await container.events.publish(
                "alice", "asset_updated", {"n": n, "sent": time.perf_counter(), "pad": PAYLOAD}
            )
            peak_bytes = max(peak_bytes, hub.stats()["queued_bytes"])
            await asyncio.sleep(0.001)
        await asyncio.wait_for(reader, 30)

        # The fast client got everything, in order, promptly.
        assert received == list(range(EVENTS))
        p95 = statistics.quantiles(delays, n=20)[18]
        assert p95 < 0.5, f"fast client delayed: p95 {p95 * 1000:.0f} ms"
        # Nothing queued beyond the bound (two sessions at most), and the slow one is gone.
        assert peak_bytes <= 2 * QUEUE_BYTES + len(PAYLOAD) * 2
        assert hub.stats()["closing"] == 1

        # Reading again, the slow client finds the close frame after what was in flight.
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(slow.recv(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4008
        for _ in range(100):
            if hub.stats()["sessions"] == 1:
                break
            await asyncio.sleep(0.05)
        assert hub.stats()["sessions"] == 1
