"""`FanoutWriter`: one fan-out's frames written to many sockets, in threads, losing nothing.

Real non-blocking socket pairs stand in for client connections; the "transport" records what
the writer hands back to it (what a socket could not take at once).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any, cast

import pytest

from pieces_integration.config import ServerSettings
from pieces_integration.entrypoints.api import ws_transport
from pieces_integration.entrypoints.api.ws_transport import (
    FANOUT,
    FanoutWebSocketProtocol,
    FanoutWriter,
    websocket_protocol,
)


class RecordingTransport:
    def __init__(self, buffered: int = 0) -> None:
        self.buffered = buffered
        self.written: list[bytes] = []

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))


class Peer:
    """A protocol stand-in with a real socket (`fd`) and its reading end."""

    def __init__(self, sndbuf: int | None = None, buffered: int = 0) -> None:
        self.ours, self.theirs = socket.socketpair()
        if sndbuf is not None:
            self.ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.ours.setblocking(False)
        self.theirs.setblocking(False)
        self.fd: int | None = self.ours.fileno()
        self.transport = RecordingTransport(buffered)

    def as_protocol(self) -> FanoutWebSocketProtocol:
        return cast(FanoutWebSocketProtocol, self)

    def received(self) -> bytes:
        """What reached the client: the socket's bytes, then what the transport would send."""
        chunks = []
        while True:
            try:
                chunk = self.theirs.recv(1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks) + b"".join(self.transport.written)

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        peer.close()


@pytest.mark.parametrize("threads", [2, 4])
def test_every_socket_gets_its_frames_in_order(
    threads: int, peers: list[Peer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_transport, "PARALLEL_FROM", 2)  # use the threads with few sockets
    writer = FanoutWriter(threads)
    peers += [Peer() for _ in range(40)]
    with writer.batch():
        for n in range(3):
            for peer in peers:
                assert writer.offer(peer.as_protocol(), f"frame {n};".encode())
        # Nothing is written until the batch ends: the loop is not interleaving anything.
        assert all(peer.received() == b"" for peer in peers)
    for peer in peers:
        assert peer.received() == b"frame 0;frame 1;frame 2;"
    writer.close()


def test_what_a_full_socket_cannot_take_goes_to_its_transport_in_order(
    peers: list[Peer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_transport, "PARALLEL_FROM", 1)
    writer = FanoutWriter(2)
    slow = Peer(sndbuf=4096)
    fast = Peer()
    peers += [slow, fast]
    big = bytes(range(256)) * 4096  # 1 MiB: far more than the small send buffer holds
    with writer.batch():
        writer.offer(slow.as_protocol(), big)
        writer.offer(fast.as_protocol(), b"small")
    assert slow.transport.written, "the remainder must be handed to the transport"
    assert slow.received() == big
    assert fast.received() == b"small" and not fast.transport.written
    writer.close()


def test_a_socket_with_bytes_still_in_its_transport_is_not_written_directly(
    peers: list[Peer],
) -> None:
    writer = FanoutWriter(2)
    busy = Peer(buffered=10)
    peers.append(busy)
    with writer.batch():
        assert not writer.offer(busy.as_protocol(), b"x")  # would overtake the buffered bytes
    assert busy.received() == b""


def test_tls_sockets_and_calls_outside_a_batch_are_refused(peers: list[Peer]) -> None:
    writer = FanoutWriter(2)
    plain, tls = Peer(), Peer()
    tls.fd = None  # how the protocol marks a TLS connection (bytes must go through SSL)
    peers += [plain, tls]
    assert not writer.offer(plain.as_protocol(), b"x")  # no batch open
    with writer.batch():
        assert not writer.offer(tls.as_protocol(), b"x")
        assert writer.offer(plain.as_protocol(), b"y")
    assert plain.received() == b"y" and tls.received() == b""


def test_a_nested_batch_joins_the_outer_one(peers: list[Peer]) -> None:
    writer = FanoutWriter(2)
    peer = Peer()
    peers.append(peer)
    with writer.batch():
        with writer.batch():
            writer.offer(peer.as_protocol(), b"a")
        assert peer.received() == b""  # the inner end flushed nothing
        writer.offer(peer.as_protocol(), b"b")
    assert peer.received() == b"ab"


def test_with_one_thread_nothing_is_collected(peers: list[Peer]) -> None:
    writer = FanoutWriter(1)
    peer = Peer()
    peers.append(peer)
    with writer.batch():
        assert not writer.offer(peer.as_protocol(), b"x")  # the caller writes it at once


def test_settings_choose_the_protocol_and_the_thread_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(FANOUT, "threads", FANOUT.threads)  # restored afterwards
    direct = websocket_protocol(ServerSettings(websocket_write_threads=3))
    assert direct is FanoutWebSocketProtocol and FANOUT.threads == 3
    stock: Any = websocket_protocol(ServerSettings(websocket_direct_writes=False))
    assert stock is not FanoutWebSocketProtocol
    assert not issubclass(stock, FanoutWebSocketProtocol)


def test_a_failing_write_thread_loses_and_repeats_nothing(
    peers: list[Peer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_transport, "PARALLEL_FROM", 1)
    calls = {"n": 0}

    class FailingOs:
        """os.write that blows up on its fourth call (in whichever thread makes it)."""

        @staticmethod
        def write(fd: int, data: bytes) -> int:
            calls["n"] += 1
            if calls["n"] == 4:
                raise RuntimeError("boom")
            return os.write(fd, data)

    writer = FanoutWriter(2)
    monkeypatch.setattr(ws_transport, "os", FailingOs)
    peers += [Peer() for _ in range(10)]
    with writer.batch():
        for n, peer in enumerate(peers):
            writer.offer(peer.as_protocol(), f"event for {n}".encode())
    for n, peer in enumerate(peers):
        assert peer.received() == f"event for {n}".encode()
    writer.close()
