"""Loopback ports for tests: a free one in a range, or a few that nothing listens on."""

from __future__ import annotations

import socket

import pytest


def free_port_in(ports: range | tuple[int, ...]) -> int:
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port in the range")


def closed_ports(count: int) -> tuple[int, ...]:
    """Ports nothing listens on (bound and released by us just now)."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = tuple(sock.getsockname()[1] for sock in sockets)
    for sock in sockets:
        sock.close()
    return ports
