"""The agent's dispatcher: serves the service's frames on one connection against the local
Pieces OS, many calls at once, each under its own timeout and the allowlist.

Anything outside the allowlist (domain.bridge_allowlist) is refused with an `err` frame
and logged; the service never gets to reach anything but these Pieces OS routes here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from pieces_integration.adapters.bridge.credit import CreditGate, CreditReturn
from pieces_integration.adapters.bridge.local_pieces import LocalCallFailed, LocalPieces
from pieces_integration.domain import bridge_allowlist as allow
from pieces_integration.domain import bridge_protocol as wire
from pieces_integration.ports.bridge import BridgeWire

log = structlog.get_logger(__name__)


@dataclass(eq=False)
class _Incoming:
    """A request whose body is still arriving."""

    request: wire.Request
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    credit: CreditReturn = field(default_factory=lambda: CreditReturn(wire.DEFAULT_WINDOW))


class Dispatcher:
    def __init__(
        self,
        socket: BridgeWire,
        local: LocalPieces,
        *,
        max_request_body: int = allow.MAX_REQUEST_BODY,
        max_response_body: int = allow.MAX_RESPONSE_BODY,
        on_welcome: Callable[[wire.Welcome], Awaitable[None]] | None = None,
    ) -> None:
        self._socket = socket
        self._local = local
        self._max_request = max_request_body
        self._max_response = max_response_body
        self._on_welcome = on_welcome
        self._send_lock = asyncio.Lock()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._gates: dict[int, CreditGate] = {}
        self._incoming: dict[int, _Incoming] = {}
        self.reconnect_asked: str | None = None
        self.refused = 0
        self.last_received = time.monotonic()
        self.service_heartbeat: float | None = None  # from the welcome

    @property
    def in_flight(self) -> int:
        """Calls and streams being served right now."""
        return len(self._tasks)

    async def _send(self, frame: wire.Frame) -> None:
        async with self._send_lock:
            await self._socket.send_text(wire.encode(frame))

    async def _send_chunk(self, data: bytes) -> None:
        async with self._send_lock:
            await self._socket.send_bytes(data)

    async def serve(self) -> None:
        """Until the socket closes (raises what closed it) or the service asks us to go."""
        try:
            while self.reconnect_asked is None:
                message = await self._socket.receive()
                self.last_received = time.monotonic()
                if isinstance(message, bytes):
                    await self._on_chunk(*wire.decode_chunk(message))
                else:
                    await self._on_frame(wire.decode(message))
        finally:
            for task in list(self._tasks.values()):
                task.cancel()
            for gate in self._gates.values():
                gate.close()
            if self._tasks:
                await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _on_frame(self, frame: wire.Frame) -> None:
        if isinstance(frame, wire.Heartbeat):
            await self._send(wire.HeartbeatAck(ts=frame.ts))
        elif isinstance(frame, wire.Request):
            await self._on_request(frame)
        elif isinstance(frame, wire.Credit):
            gate = self._gates.get(frame.id)
            if gate is not None:
                gate.grant(frame.n)
        elif isinstance(frame, wire.Cancel | wire.StreamClose):
            self._incoming.pop(frame.id, None)
            task = self._tasks.get(frame.id)
            if task is not None:
                task.cancel()
        elif isinstance(frame, wire.StreamOpen):
            if allow.route_of(allow.STREAM, frame.path) is None:
                await self._refuse(frame.id, allow.STREAM, frame.path, "not a stream it forwards")
                return
            self._spawn(frame.id, self._stream(frame))
        elif isinstance(frame, wire.Welcome):
            self.service_heartbeat = frame.heartbeat
            if self._on_welcome is not None:
                await self._on_welcome(frame)
        elif isinstance(frame, wire.Reconnect):
            log.info("bridge_reconnect_requested", reason=frame.reason)
            self.reconnect_asked = frame.reason
        else:
            raise wire.ProtocolError(f"unexpected {frame.t} frame from the service")

    async def _refuse(self, call_id: int, method: str, path: str, reason: str) -> None:
        self.refused += 1
        log.warning("bridge_call_refused", method=method, path=path[:200], reason=reason)
        await self._send(wire.CallError(id=call_id, kind="refused", message=reason))

    async def _on_request(self, frame: wire.Request) -> None:
        refusal = allow.check_call(
            frame.method,
            frame.path,
            params=frame.params,
            headers=frame.headers,
            body_size=0,
            max_body=self._max_request,
        )
        if refusal is not None:
            await self._refuse(frame.id, frame.method, frame.path, refusal.reason)
            return
        if frame.body:
            self._incoming[frame.id] = _Incoming(frame)
            return
        self._spawn(frame.id, self._call(frame, None))

    async def _on_chunk(self, call_id: int, last: bool, payload: bytes) -> None:
        incoming = self._incoming.get(call_id)
        if incoming is None:
            return
        incoming.chunks.append(payload)
        incoming.size += len(payload)
        if incoming.size > self._max_request:
            del self._incoming[call_id]
            request = incoming.request
            await self._refuse(call_id, request.method, request.path, "request body over the cap")
            return
        if last:
            del self._incoming[call_id]
            self._spawn(call_id, self._call(incoming.request, b"".join(incoming.chunks)))
            return
        granted = incoming.credit.consumed()
        if granted:
            await self._send(wire.Credit(id=call_id, n=granted))

    def _spawn(self, call_id: int, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            finally:
                self._tasks.pop(call_id, None)
                self._gates.pop(call_id, None)

        self._tasks[call_id] = asyncio.get_running_loop().create_task(run())

    async def _call(self, frame: wire.Request, body: bytes | None) -> None:
        gate = self._gates[frame.id] = CreditGate(frame.window)
        try:
            async with asyncio.timeout(frame.timeout):
                async with self._local.request(
                    frame.method,
                    frame.path,
                    params=frame.params,
                    headers=frame.headers,
                    body=body,
                    call_timeout=frame.timeout,
                ) as (head, chunks):
                    await self._send(
                        wire.Response(
                            id=frame.id,
                            status=head.status,
                            content_type=head.content_type,
                            headers=dict(head.headers),
                            body=True,
                        )
                    )
                    await self._forward_body(frame.id, chunks, gate)
        except LocalCallFailed as exc:
            await self._send_error(frame.id, exc.kind, exc.message)
        except TimeoutError:
            await self._send_error(frame.id, "timeout", f"Pieces OS did not answer {frame.path}")
        except Exception as exc:  # never leave the service waiting for an answer
            log.exception("bridge_call_failed", path=frame.path)
            await self._send_error(frame.id, "network", f"the bridge failed: {exc!r}"[:300])

    async def _forward_body(self, call_id: int, chunks: object, gate: CreditGate) -> None:
        """Chunks as Pieces sends them, one behind, so the last one can be marked."""
        size = 0
        pending: bytes | None = None
        async for piece in chunks:  # type: ignore[attr-defined]
            size += len(piece)
            if size > self._max_response:
                raise LocalCallFailed("too_large", "answer over the bridge's size cap")
            if pending is not None:
                if not await gate.take():
                    return
                await self._send_chunk(wire.encode_chunk(call_id, pending, last=False))
            pending = piece
        if await gate.take():
            await self._send_chunk(wire.encode_chunk(call_id, pending or b"", last=True))

    async def _send_error(self, call_id: int, kind: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await self._send(wire.CallError(id=call_id, kind=kind, message=message))

    async def _stream(self, frame: wire.StreamOpen) -> None:
        try:
            async with self._local.stream(frame.path) as frames:
                async for text in frames:
                    data = text.encode()
                    if len(data) <= wire.INLINE_EVENT:
                        await self._send(wire.StreamEvent(id=frame.id, data=text))
                        continue
                    # A big event (the first frame lists every id): chunks, like a body.
                    for piece, last in wire.split_body(data):
                        await self._send_chunk(wire.encode_chunk(frame.id, piece, last=last))
            kind, message = "network", "Pieces OS closed the stream"
        except LocalCallFailed as exc:
            kind, message = exc.kind, exc.message
        with contextlib.suppress(Exception):
            await self._send(wire.StreamEnd(id=frame.id, kind=kind, message=message))
