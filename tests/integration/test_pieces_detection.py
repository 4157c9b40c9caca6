"""Detection: the 39300–39333 range, the legacy port (configurable), nothing, all within 2 s."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from pieces_integration.adapters.pieces_os.discovery import SCAN_PORTS, PortScanDetector
from pieces_integration.adapters.pieces_os.endpoint_guard import ResolvingEndpointGuard
from pieces_integration.domain.connection_state import FailureKind, message_for
from pieces_integration.emulators.pieces.server import running_emulator
from pieces_integration.service_layer.pieces.detection import detect_pieces
from tests.net import closed_ports, free_port_in

pytestmark = pytest.mark.anyio


async def test_finds_an_emulator_in_the_scan_range() -> None:
    port = free_port_in(SCAN_PORTS)
    async with running_emulator(port=port) as emulator, httpx.AsyncClient() as client:
        # Exactly our port plus closed neighbours, so another process in the range cannot win.
        detector = PortScanDetector(client, ports=(port, *closed_ports(5)), legacy_ports=())
        started = time.perf_counter()
        result = await detector.detect("127.0.0.1")
        assert time.perf_counter() - started < 2.0
        assert result.found and result.url == emulator.url and not result.legacy
        assert result.version == "12.3.4" and result.compatible
        # And the default range finds a Pieces OS (ours, or a lower one if one runs).
        default = await PortScanDetector(client, legacy_ports=()).detect("127.0.0.1")
        assert default.found and int(default.url.rsplit(":", 1)[1]) in SCAN_PORTS  # type: ignore[union-attr]


async def test_finds_an_emulator_on_the_legacy_port() -> None:
    async with running_emulator() as emulator, httpx.AsyncClient() as client:
        legacy = emulator.server.port  # stands in for 1000, which would need privileges
        detector = PortScanDetector(client, ports=closed_ports(34), legacy_ports=(legacy,))
        started = time.perf_counter()
        result = await detector.detect("127.0.0.1")
        assert time.perf_counter() - started < 2.0
    assert result.found and result.legacy and result.url == emulator.url
    assert result.version == "12.3.4" and result.compatible


async def test_finds_nothing_when_no_pieces_os_runs_with_guidance() -> None:
    async with httpx.AsyncClient() as client:
        ports = closed_ports(35)
        detector = PortScanDetector(client, ports=ports[:34], legacy_ports=ports[34:])
        started = time.perf_counter()
        detection = await detect_pieces(
            detector,
            ResolvingEndpointGuard(),
            url=None,
            default_url=f"http://127.0.0.1:{ports[0]}",
        )
        elapsed = time.perf_counter() - started
    assert elapsed < 2.0
    assert not detection.available and detection.url is None
    assert detection.message == message_for(FailureKind.NOT_RUNNING)


async def test_a_silent_port_does_not_stretch_detection_past_two_seconds() -> None:
    # A listener that accepts TCP but never answers HTTP (a hung Pieces OS).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        async with httpx.AsyncClient() as client:
            detector = PortScanDetector(client, ports=(port, *closed_ports(33)), legacy_ports=())
            started = time.perf_counter()
            detection = await detect_pieces(
                detector,
                ResolvingEndpointGuard(),
                url=f"http://127.0.0.1:{port}",
                default_url="http://127.0.0.1:1000",
            )
            assert time.perf_counter() - started < 2.0
    assert not detection.available


async def test_the_url_the_user_gave_is_probed_first() -> None:
    async with running_emulator() as emulator, httpx.AsyncClient() as client:
        detector = PortScanDetector(client, ports=closed_ports(3), legacy_ports=())
        detection = await detect_pieces(
            detector, ResolvingEndpointGuard(), url=emulator.url, default_url="http://x:1"
        )
    assert detection.available and detection.url == emulator.url
