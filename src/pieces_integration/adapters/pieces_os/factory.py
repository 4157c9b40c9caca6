"""Builds the direct (httpx + websockets) Pieces OS client and its identifier stream.

The bridge (DEVIATIONS 5) has its own, `adapters/bridge/transport.RoutingPiecesOSFactory`.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from pieces_integration.adapters.pieces_os.client import ClientSettings, PiecesOSClient
from pieces_integration.adapters.pieces_os.streams import ReconnectingIdentifierStream
from pieces_integration.adapters.pieces_os.transport import (
    STREAM_OPEN_TIMEOUT,
    HttpxPiecesTransport,
    ssl_context,
)
from pieces_integration.ports.pieces import (
    EndpointGuard,
    IdentifierEvent,
    IdentifierHandler,
    PiecesOS,
    StreamObserver,
)


class DirectPiecesOSFactory:
    def __init__(
        self,
        settings: ClientSettings,
        *,
        guard: EndpointGuard | None,
        tls: ssl.SSLContext | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._guard = guard
        self._tls = tls or ssl_context()
        self._transport = transport

    async def __call__(self, url: str, *, api_key: str | None, user_id: str = "") -> PiecesOS:
        client = httpx.AsyncClient(
            verify=self._tls,
            timeout=self._settings.timeout,
            follow_redirects=False,
            trust_env=False,  # never route a user's Pieces traffic through a proxy from env
            transport=self._transport,
        )
        # Checked again at connect time, and the checked address is the one we dial.
        pin = await self._guard.check(url) if self._guard is not None else None
        transport = HttpxPiecesTransport(
            client,
            url,
            guard=self._guard,
            pin=pin,
            tls=self._tls,
            # The call timeout bounds opening the stream too (a hung Pieces OS must not hold a
            # reconnect attempt longer than any other call), but never beyond the usual 10 s.
            stream_open_timeout=min(self._settings.timeout, STREAM_OPEN_TIMEOUT),
        )
        return PiecesOSClient(transport, settings=self._settings, api_key=api_key)


def identifier_stream_factory(
    sink: IdentifierHandler | None = None,
) -> Any:
    """A `StreamFactory` for `PiecesConnections`: one reconnecting stream per live client."""

    async def ignore(events: list[IdentifierEvent]) -> None:
        return None

    def build(client: PiecesOS, observer: StreamObserver) -> ReconnectingIdentifierStream:
        if not isinstance(client, PiecesOSClient):
            raise TypeError("the direct stream needs a PiecesOSClient")
        return ReconnectingIdentifierStream(client.transport, sink or ignore, observer)

    return build
