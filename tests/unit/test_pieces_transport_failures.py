"""Which spec 8.4 failure a timeout talking to Pieces OS is: no connection in time is the
network; a connection Pieces OS accepted but did not answer on is "service unavailable"."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from pieces_integration.adapters.pieces_os.transport import HttpxPiecesTransport
from pieces_integration.domain.connection_state import FailureKind
from pieces_integration.domain.errors import UpstreamTimeout

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (httpx.ConnectTimeout("timed out"), FailureKind.NETWORK),
        (httpx.ReadTimeout("timed out"), FailureKind.SERVICE_UNAVAILABLE),
        (httpx.WriteTimeout("timed out"), FailureKind.SERVICE_UNAVAILABLE),
        (httpx.PoolTimeout("timed out"), FailureKind.SERVICE_UNAVAILABLE),
    ],
)
async def test_request_timeouts_map_to_the_failure_the_user_is_shown(
    error: httpx.TimeoutException, kind: FailureKind
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    transport = HttpxPiecesTransport(client, "http://127.0.0.1:39300")
    with pytest.raises(UpstreamTimeout) as caught:
        await transport.request("GET", "/.well-known/health", request_timeout=1)
    await client.aclose()
    assert caught.value.details["kind"] == kind.value
    assert caught.value.details["upstream"] == "pieces_os"


async def test_a_stream_handshake_nobody_answers_is_service_unavailable() -> None:
    # Accepts TCP (the kernel's backlog) but never answers the WebSocket upgrade.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        client = httpx.AsyncClient()
        transport = HttpxPiecesTransport(
            client, f"http://127.0.0.1:{port}", stream_open_timeout=0.2
        )
        with pytest.raises(UpstreamTimeout) as caught:
            async with asyncio.timeout(3), transport.stream("/assets/stream/identifiers"):
                pass
        await client.aclose()
    assert caught.value.details["kind"] == FailureKind.SERVICE_UNAVAILABLE.value
    assert "handshake" in caught.value.message
