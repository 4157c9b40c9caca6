"""The service's `BridgeSession` against the agent's `Dispatcher` over an in-memory socket:
many calls in flight, per-call timeouts with cancellation, chunked bodies under credit,
streams, refusals, heartbeats and a silent peer (issue 13)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from pieces_integration.adapters.bridge.dispatcher import Dispatcher
from pieces_integration.adapters.bridge.local_pieces import LocalPieces
from pieces_integration.adapters.bridge.session import BridgeSession
from pieces_integration.domain import bridge_protocol as wire
from pieces_integration.domain.errors import PiecesOSUnavailable, UpstreamError, UpstreamTimeout
from tests.fakes import MemoryBridgeWire

pytestmark = pytest.mark.anyio
BIG = b"x" * (3 * wire.CHUNK_SIZE + 123)


async def pieces(request: httpx.Request) -> httpx.Response:
    """A tiny Pieces OS: `/asset/<n>` answers after n ms; `/assets` is a big body."""
    if request.url.path == "/asset/update":
        return httpx.Response(200, content=request.content)
    if request.url.path.startswith("/asset/"):
        delay = int(request.url.path.rsplit("/", 1)[1])
        await asyncio.sleep(delay / 1000)
        return httpx.Response(200, json={"id": delay})
    if request.url.path == "/assets":
        return httpx.Response(200, content=BIG, headers={"content-type": "application/json"})
    if request.url.path == "/user":
        await asyncio.sleep(30)
    return httpx.Response(404)


class StreamingPieces(LocalPieces):
    @asynccontextmanager
    async def stream(self, path: str) -> AsyncIterator[AsyncIterator[str]]:
        async def frames() -> AsyncIterator[str]:
            for n in range(3):
                yield json.dumps({"n": n})
            yield json.dumps({"n": 3, "ids": ["i" * 36] * 20_000})  # 800 kB: in chunks
            await asyncio.sleep(30)

        yield frames()


@asynccontextmanager
async def linked(heartbeat: float = 5.0) -> AsyncIterator[tuple[BridgeSession, Dispatcher]]:
    service_end, agent_end = MemoryBridgeWire.pair()
    local = StreamingPieces(
        "http://pieces.local", http=httpx.AsyncClient(transport=httpx.MockTransport(pieces))
    )
    session = BridgeSession(
        service_end, bridge_id="b" * 32, user_id="alice", agent_version="t", heartbeat=heartbeat
    )
    dispatcher = Dispatcher(agent_end, local)
    running = asyncio.create_task(session.run())
    serving = asyncio.create_task(dispatcher.serve())
    try:
        yield session, dispatcher
    finally:
        await session.close(1000, "test over")
        for task in (running, serving):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await local.aclose()


async def test_many_calls_in_flight_are_answered_by_id() -> None:
    async with linked() as (session, _):
        delays = [50, 10, 40, 0, 30, 20] * 5
        started = time.monotonic()
        answers = await asyncio.gather(
            *(session.request("GET", f"/asset/{d}", call_timeout=5) for d in delays)
        )
        assert [a.json()["id"] for a in answers] == delays
        assert time.monotonic() - started < 1.0  # concurrently, not one after another


async def test_a_big_body_arrives_in_chunks_under_credit() -> None:
    async with linked() as (session, dispatcher):
        response = await session.request("GET", "/assets", call_timeout=5)
        assert response.body == BIG and response.status == 200
        assert response.content_type == "application/json"


async def test_a_request_body_travels_in_chunks_too() -> None:
    async with linked() as (session, _):
        body = {"id": "a", "raw": "y" * (wire.CHUNK_SIZE * 2)}
        response = await session.request("POST", "/asset/update", json_body=body, call_timeout=5)
        assert response.json() == body


async def test_a_slow_call_times_out_and_is_cancelled_on_the_agent() -> None:
    async with linked() as (session, dispatcher):
        with pytest.raises(UpstreamTimeout):
            await session.request("GET", "/user", call_timeout=0.2)
        for _ in range(50):
            if not dispatcher.in_flight:  # the agent dropped the work
                break
            await asyncio.sleep(0.05)
        assert not dispatcher.in_flight


async def test_a_route_outside_the_allowlist_is_refused_by_the_agent() -> None:
    async with linked() as (session, dispatcher):
        with pytest.raises(UpstreamError) as refused:
            await session.request("GET", "/admin/secrets", call_timeout=2)
        assert refused.value.details["kind"] == "refused"
        with pytest.raises(UpstreamError):
            await session.request("GET", "/assets", params={"url": "http://x"}, call_timeout=2)
        assert dispatcher.refused == 2


async def test_stream_events_are_forwarded_as_they_happen() -> None:
    async with linked() as (session, _):
        async with session.stream("/assets/stream/identifiers") as frames:
            got = []
            async for text in frames:
                got.append(json.loads(text)["n"])
                if len(got) == 4:
                    break
        assert got == [0, 1, 2, 3]


async def test_heartbeats_measure_the_round_trip() -> None:
    async with linked(heartbeat=0.1) as (session, _):
        for _ in range(50):
            if session.rtt_ms is not None:
                break
            await asyncio.sleep(0.02)
        assert session.rtt_ms is not None and session.last_heartbeat is not None


async def test_a_silent_peer_is_declared_gone_within_two_intervals() -> None:
    heartbeat = 0.2
    async with linked(heartbeat=heartbeat) as (session, _):
        await asyncio.sleep(0.3)
        session.socket.silent = True  # type: ignore[attr-defined]
        pending = asyncio.create_task(session.request("GET", "/asset/10000", call_timeout=30))
        cut = time.monotonic()
        await asyncio.wait_for(session.wait_closed(), 2 * heartbeat + 0.2)
        assert time.monotonic() - cut <= 2 * heartbeat + 0.05
        with pytest.raises(PiecesOSUnavailable, match="not connected"):
            await pending
        with pytest.raises(PiecesOSUnavailable):
            await session.request("GET", "/assets", call_timeout=1)
