"""`BridgeSession`: one connected agent as the service sees it.

Many calls share the socket, each with its own id, timeout and credit window; a call that
times out is cancelled on the agent too. Identifier streams are forwarded frame by frame.
Heartbeats go out every `heartbeat` seconds and the agent answers each, which gives the
round-trip time; a peer silent for 1.8 intervals (no FIN: a cable pulled, a laptop asleep)
is declared gone, so a dead link is noticed within two intervals. Everything pending then
fails as "network" (spec 8.4), which the state machine and the outbox already handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from pieces_integration.adapters.bridge.credit import CreditGate, CreditReturn
from pieces_integration.domain import bridge_protocol as wire
from pieces_integration.domain.errors import (
    PiecesOSUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from pieces_integration.ports.bridge import BridgeWire
from pieces_integration.ports.channel import ChannelClosed
from pieces_integration.ports.pieces import TransportResponse

log = structlog.get_logger(__name__)
DEAD_AFTER = 1.8  # heartbeat intervals of silence before the peer is declared gone
TIMEOUT_MARGIN = 2.0  # seconds on top of the call's own timeout (the agent applies it first)
STREAM_QUEUE = 1024
CLOSE_DEAD = 4000
CLOSE_REVOKED = 4403
CLOSE_GOING_AWAY = 1012
CLOSE_PROTOCOL = 1002


def bridge_error(kind: str, message: str) -> UpstreamError:
    """An agent-side failure as the adapter's errors (the kinds of spec 8.4)."""
    if kind == "timeout":
        return UpstreamTimeout(message, upstream="pieces_os", kind="service_unavailable")
    if kind == "refused":
        return UpstreamError(
            f"the bridge refused the call: {message}", upstream="pieces_os", kind="refused"
        )
    if kind == "not_running":
        return PiecesOSUnavailable(message, kind="not_running")
    if kind == "too_large":
        return PiecesOSUnavailable(message, kind="service_unavailable")
    return PiecesOSUnavailable(message, kind="network")


def gone(reason: str) -> PiecesOSUnavailable:
    return PiecesOSUnavailable(f"the bridge is not connected ({reason})", kind="network")


@dataclass(eq=False)
class _Call:
    done: asyncio.Future[TransportResponse]
    window: int
    head: wire.Response | None = None
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    credit: CreditReturn | None = None
    body_gate: CreditGate | None = None  # our request body, sent under the agent's credit


@dataclass(eq=False)
class _Stream:
    queue: asyncio.Queue[str | UpstreamError]
    open: bool = True
    parts: list[bytes] = field(default_factory=list)  # a big event, arriving in chunks
    size: int = 0


class BridgeSession:
    def __init__(
        self,
        socket: BridgeWire,
        *,
        bridge_id: str,
        user_id: str,
        agent_version: str,
        heartbeat: float,
        max_response: int = 512 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
        hub_beats: bool = False,
    ) -> None:
        self.socket = socket
        self.bridge_id = bridge_id
        self.user_id = user_id
        self.agent_version = agent_version
        self.heartbeat = heartbeat
        self.connected_at = datetime.now(UTC)
        self.last_heartbeat: datetime | None = None
        self.rtt_ms: float | None = None
        self.closed_reason: str | None = None
        self._max_response = max_response
        self._clock = clock
        self._ids = itertools.count(1)
        self._calls: dict[int, _Call] = {}
        self._streams: dict[int, _Stream] = {}
        self._send_lock = asyncio.Lock()
        self._last_received = clock()
        self._next_beat = clock()
        self._closed = asyncio.Event()
        self._runner: asyncio.Task[object] | None = None
        self._expired = False
        self.hub_beats = hub_beats

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- sending ---------------------------------------------------------------------------

    async def _send(self, frame: wire.Frame) -> None:
        async with self._send_lock:
            await self.socket.send_text(wire.encode(frame))

    async def _send_chunk(self, data: bytes) -> None:
        async with self._send_lock:
            await self.socket.send_bytes(data)

    # --- calls -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise gone(self.closed_reason or "closed")

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        call_timeout: float,
    ) -> TransportResponse:
        self._check_open()
        call_id = next(self._ids)
        body = None if json_body is None else json.dumps(json_body).encode()
        loop = asyncio.get_running_loop()
        call = _Call(done=loop.create_future(), window=wire.DEFAULT_WINDOW)
        if body is not None:
            call.body_gate = CreditGate(wire.DEFAULT_WINDOW)
        self._calls[call_id] = call
        frame = wire.Request(
            id=call_id,
            method=method,
            path=path,
            timeout=call_timeout,
            params=dict(params or {}),
            headers={"content-type": "application/json", **(headers or {})}
            if body is not None
            else dict(headers or {}),
            body=body is not None,
            window=call.window,
        )
        try:
            async with asyncio.timeout(call_timeout + TIMEOUT_MARGIN):
                await self._send(frame)
                if body is not None and call.body_gate is not None:
                    for piece, last in wire.split_body(body):
                        if not await call.body_gate.take():
                            break
                        await self._send_chunk(wire.encode_chunk(call_id, piece, last=last))
                return await call.done
        except TimeoutError:
            with contextlib.suppress(Exception):
                await self._send(wire.Cancel(id=call_id))
            raise UpstreamTimeout(
                f"Pieces OS did not answer {method} {path} through the bridge in time",
                upstream="pieces_os",
                kind="service_unavailable",
            ) from None
        except ChannelClosed:
            raise gone("dropped") from None
        finally:
            self._calls.pop(call_id, None)
            if call.body_gate is not None:
                call.body_gate.close()

    @asynccontextmanager
    async def stream(self, path: str) -> AsyncIterator[AsyncIterator[str]]:
        self._check_open()
        stream_id = next(self._ids)
        stream = _Stream(asyncio.Queue(STREAM_QUEUE))
        self._streams[stream_id] = stream
        await self._send(wire.StreamOpen(id=stream_id, path=path))

        async def frames() -> AsyncIterator[str]:
            while True:
                item = await stream.queue.get()
                if isinstance(item, UpstreamError):
                    raise item
                yield item

        try:
            yield frames()
        finally:
            self._streams.pop(stream_id, None)
            if stream.open and not self.closed:
                with contextlib.suppress(Exception):
                    await self._send(wire.StreamClose(id=stream_id))

    # --- receiving ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the socket until it closes or the peer goes silent; always ends cleanly.
        Heartbeats come from the session's own loop, or with `hub_beats` from the hub's one
        ticker for all its sessions (a thousand idle bridges, one timer)."""
        reason = "closed by the agent"
        self._runner = asyncio.current_task()
        beats = None if self.hub_beats else asyncio.create_task(self._beat())
        try:
            await self._receive_loop()
        except ChannelClosed:
            reason = "the agent went away"
        except wire.ProtocolError as exc:
            reason = f"protocol error: {exc}"
            await self._close_socket(CLOSE_PROTOCOL, "protocol error")
        except asyncio.CancelledError:
            if not self._expired or self._runner is None:
                raise
            self._runner.uncancel()  # our own cancel (a dead peer), not the caller's
            reason = "no heartbeat"
            await self._close_socket(CLOSE_DEAD, "heartbeat timeout", wait=0.5)
        finally:
            self._runner = None
            if beats is not None:
                beats.cancel()
            self._finish(self.closed_reason or reason)

    async def _receive_loop(self) -> None:
        while True:
            message = await self.socket.receive()
            self._last_received = self._clock()
            if isinstance(message, bytes):
                self._on_chunk(*wire.decode_chunk(message))
                continue
            await self._on_frame(wire.decode(message))

    async def _on_frame(self, frame: wire.Frame) -> None:
        if isinstance(frame, wire.HeartbeatAck):
            self.rtt_ms = max(0.0, (self._clock() - frame.ts) * 1000)
            self.last_heartbeat = datetime.now(UTC)
        elif isinstance(frame, wire.Response):
            call = self._calls.get(frame.id)
            if call is None or call.done.done():
                return  # answered after its timeout: dropped
            if not frame.body:
                call.done.set_result(_response(frame, b""))
                return
            call.head, call.credit = frame, CreditReturn(call.window)
        elif isinstance(frame, wire.CallError):
            call = self._calls.get(frame.id)
            if call is not None and not call.done.done():
                call.done.set_exception(bridge_error(frame.kind, frame.message))
        elif isinstance(frame, wire.Credit):
            call = self._calls.get(frame.id)
            if call is not None and call.body_gate is not None:
                call.body_gate.grant(frame.n)
        elif isinstance(frame, wire.StreamEvent):
            self._deliver(frame.id, frame.data)
        elif isinstance(frame, wire.StreamEnd):
            stream = self._streams.get(frame.id)
            if stream is not None:
                stream.open = False
                self._deliver(frame.id, bridge_error(frame.kind, frame.message))
        else:
            raise wire.ProtocolError(f"unexpected {frame.t} frame from an agent")

    def _deliver(self, stream_id: int, item: str | UpstreamError) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        try:
            stream.queue.put_nowait(item)
        except asyncio.QueueFull:  # the consumer stalled: end the stream, it will resync
            stream.open = False
            with contextlib.suppress(asyncio.QueueEmpty):
                stream.queue.get_nowait()
            stream.queue.put_nowait(gone("stream consumer too slow"))

    def _on_chunk(self, call_id: int, last: bool, payload: bytes) -> None:
        stream = self._streams.get(call_id)
        if stream is not None:
            self._on_event_chunk(call_id, stream, last, payload)
            return
        call = self._calls.get(call_id)
        if call is None or call.head is None or call.done.done():
            return  # a cancelled call's tail
        call.chunks.append(payload)
        call.size += len(payload)
        if call.size > self._max_response:
            call.done.set_exception(
                PiecesOSUnavailable("answer through the bridge too large", kind="network")
            )
            return
        if last:
            call.done.set_result(_response(call.head, b"".join(call.chunks)))
            return
        granted = call.credit.consumed() if call.credit is not None else 0
        if granted:
            task = asyncio.get_running_loop().create_task(
                self._send(wire.Credit(id=call_id, n=granted))
            )
            task.add_done_callback(_quiet)

    def _on_event_chunk(self, stream_id: int, stream: _Stream, last: bool, data: bytes) -> None:
        stream.parts.append(data)
        stream.size += len(data)
        if stream.size > self._max_response:
            stream.parts.clear()
            self._deliver(stream_id, gone("stream event too large"))
            return
        if last:
            text = b"".join(stream.parts).decode("utf-8", "replace")
            stream.parts.clear()
            stream.size = 0
            self._deliver(stream_id, text)

    async def tick(self, now: float) -> bool:
        """One heartbeat step (every tenth of an interval): send the heartbeat when due,
        declare the peer gone after DEAD_AFTER intervals of silence. False once closed."""
        if self.closed:
            return False
        if now - self._last_received > DEAD_AFTER * self.heartbeat:
            log.warning("bridge_heartbeat_lost", bridge_id=self.bridge_id)
            self.closed_reason = "no heartbeat from the agent"
            self._finish(self.closed_reason)  # noticed now; `run` closes the socket
            self._expired = True
            if self._runner is not None:
                self._runner.cancel()  # its receive would wait for TCP to give up
            return False
        if now >= self._next_beat and not self._send_lock.locked():
            # (A body on the wire is as good as a heartbeat; never queue behind it.)
            self._next_beat = now + self.heartbeat
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.heartbeat / 4):
                    await self._send(wire.Heartbeat(ts=now))
        return True

    async def _beat(self) -> None:
        while True:
            if not await self.tick(self._clock()):
                return
            await asyncio.sleep(self.heartbeat / 10)

    # --- closing -----------------------------------------------------------------------------

    def _finish(self, reason: str) -> None:
        if self._closed.is_set():
            return
        self.closed_reason = self.closed_reason or reason
        self._closed.set()
        error = gone(self.closed_reason)
        for call in self._calls.values():
            if not call.done.done():
                call.done.set_exception(error)
            if call.body_gate is not None:
                call.body_gate.close()
        for stream in self._streams.values():
            stream.open = False
            with contextlib.suppress(asyncio.QueueFull):
                stream.queue.put_nowait(error)

    async def _close_socket(self, code: int, reason: str, *, wait: float = 2.0) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(wait):
                await self.socket.close(code, reason)

    async def close(self, code: int, reason: str, *, reconnect: bool = False) -> None:
        """End the session from our side: revoked (4403) or going away (1012, after telling
        the agent to reconnect at once, which lands it on another replica)."""
        if reconnect and not self.closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._send(wire.Reconnect(reason=reason))
        self.closed_reason = self.closed_reason or reason
        self._finish(reason)
        await self._close_socket(code, reason)


def _response(head: wire.Response, body: bytes) -> TransportResponse:
    return TransportResponse(
        status=head.status, content_type=head.content_type, body=body, headers=dict(head.headers)
    )


def _quiet(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
