"""Direct frame writes for WebSocket fan-out, offered to the app through the ASGI scope.

Through ASGI, every message to every socket costs a task wake-up, Starlette's and uvicorn's
send paths, and its own frame encoding: tens of microseconds, which at 2,000 sockets per
event is most of the spec's 100 ms budget. `FanoutWebSocketProtocol` is uvicorn's sans-I/O
WebSocket protocol plus one scope extension, `EXTENSION`: a callable that writes an already
encoded frame to the socket when that is safe right now (handshake done, no close sent, no
compression negotiated, the transport not pushing back) and returns False otherwise, so the
caller falls back to the ordinary ASGI send. A server frame is not masked, so one encoding
serves every socket (`encode_text_frame` keeps the last one).

What remains is the system call per socket (about 20 us on loopback here, most of a
fan-out). `FanoutWriter.batch()` can spread those over threads (opt-in: it gave nothing
measurable on a 2-core host with its clients beside it): inside a batch, frames
for idle plain-TCP sockets are collected; at its end they are written with `os.write` from
worker threads (which release the GIL), while the event loop waits. Nothing else can write
to those sockets meanwhile - the loop is blocked in the batch and each socket's transport
buffer was empty - so order holds; what a socket did not take is handed to its transport,
which sends it before anything later.

Everything else (handshake, receiving, pings, close, flow control) is uvicorn's own code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

import structlog
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State

from pieces_integration.config import ServerSettings

log = structlog.get_logger(__name__)

EXTENSION = "pieces_integration.websocket.write_frame"

FrameWriter = Callable[[bytes], bool]

# Below this many sockets a batch is written on the loop thread: threads would cost more.
PARALLEL_FROM = 64


class FanoutWriter:
    """Writes the frames of one fan-out to many sockets, in parallel threads when it pays."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._batch: dict[FanoutWebSocketProtocol, list[bytes]] | None = None

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Collect direct writes until the block ends, then write them all (not re-entrant:
        an inner batch joins the outer one)."""
        if self._batch is not None:
            yield
            return
        self._batch = {}
        try:
            yield
        finally:
            pending, self._batch = self._batch, None
            self._flush(pending)

    def offer(self, protocol: FanoutWebSocketProtocol, frame: bytes) -> bool:
        """Take `frame` into the open batch; False if none is open or the socket does not
        qualify (TLS, or its transport still holds unsent bytes). With one thread nothing is
        collected: each frame is better written at once than after the whole dispatch."""
        batch = self._batch
        if batch is None or self.threads < 2:
            return False
        frames = batch.get(protocol)
        if frames is None:
            if protocol.fd is None or protocol.transport.get_write_buffer_size():
                return False
            batch[protocol] = frames = []
        frames.append(frame)
        return True

    def _flush(self, pending: dict[FanoutWebSocketProtocol, list[bytes]]) -> None:
        if not pending:
            return
        items = [(protocol, b"".join(frames)) for protocol, frames in pending.items()]
        if self.threads < 2 or len(items) < PARALLEL_FROM:
            for protocol, data in items:
                protocol.transport.write(data)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="ws-fanout")
        chunks = [items[i :: self.threads] for i in range(self.threads)]
        progress = [[0] * len(chunk) for chunk in chunks]
        futures: list[Future[None]] = []
        try:
            for chunk, done in zip(chunks, progress, strict=True):
                futures.append(self._executor.submit(_write_all, chunk, done))
            for future in futures:
                future.result()
        except Exception:  # recorded progress stays exact; the transports send the rest
            log.exception("websocket fan-out write thread failed")
            for future in futures:
                future.cancel()
            wait(futures)  # no thread may write once the rest is handed to the transports
        for chunk, done in zip(chunks, progress, strict=True):
            for (protocol, data), sent in zip(chunk, done, strict=True):
                if sent < len(data):  # socket buffer full (or broken): the transport copes
                    protocol.transport.write(data[sent:])

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _write_all(chunk: list[tuple[FanoutWebSocketProtocol, bytes]], done: list[int]) -> None:
    """Write each socket's bytes, recording in `done` how many it took. Never waits: the
    sockets are non-blocking."""
    for index, (protocol, data) in enumerate(chunk):
        fd = protocol.fd
        if fd is None:
            continue
        try:
            done[index] = os.write(fd, data)
        except OSError:  # EAGAIN, or a reset the transport will report on its own
            pass


# One per process, like the event loop it serves; the realtime hub opens its batches.
FANOUT = FanoutWriter()


class FanoutWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol, plus the `EXTENSION` frame writer.

    `write_frame` runs once per socket per event, so its conditions are kept in two plain
    flags updated where uvicorn changes state, plus the transport's own closing check (which
    covers every path that closes it: peer close, keep-alive timeout, parse error, shutdown).
    """

    fd: int | None = None  # the socket's descriptor, for plain TCP only
    _open = False  # accepted, no close sent, no per-message compression
    _paused = False  # the transport is over its high-water mark

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope: dict[str, Any] | None = getattr(self, "scope", None)
        if scope is None:  # refused before the app saw it
            return
        # The handshake was accepted; the app task has not run yet.
        scope.setdefault("extensions", {})[EXTENSION] = self.write_frame
        sock = self.transport.get_extra_info("socket")
        if sock is not None and self.transport.get_extra_info("sslcontext") is None:
            self.fd = sock.fileno()

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        kind = message["type"]
        if kind == "websocket.accept":
            self._open = (
                self.handshake_complete
                and not self.close_sent
                and self.conn.state is State.OPEN
                and not self.conn.extensions  # compression needs per-socket encoding
            )
        elif kind == "websocket.close":
            self._open = False

    def pause_writing(self) -> None:
        self._paused = True
        super().pause_writing()

    def resume_writing(self) -> None:
        self._paused = False
        super().resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._open = False
        self.fd = None
        super().connection_lost(exc)

    def write_frame(self, frame: bytes) -> bool:
        if not self._open or self._paused or self.close_sent or self.transport.is_closing():
            return False
        if not FANOUT.offer(self, frame):
            self.transport.write(frame)
        return True


def websocket_protocol(server: ServerSettings) -> type[WebSocketsSansIOProtocol]:
    """The protocol class for uvicorn's `ws=`; sets the fan-out's thread count."""
    FANOUT.threads = server.websocket_write_threads
    if server.websocket_direct_writes:
        return FanoutWebSocketProtocol
    return WebSocketsSansIOProtocol


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
