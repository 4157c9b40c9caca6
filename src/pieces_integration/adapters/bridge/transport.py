"""The Pieces adapter over a bridge (DEVIATIONS 5): the same `PiecesOSClient`, with a
transport that carries each call to the user's bridge instead of dialling Pieces OS.

A user's connection is a bridge when its URL is `bridge://<bridge id>`. `RoutingPiecesOSFactory`
opens such connections on the bridge and every other one directly, and `BridgeAwareGuard`
lets bridge URLs through the endpoint guard (their owner is checked when they are opened,
and again on every call).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from pieces_integration.adapters.pieces_os.client import ClientSettings, PiecesOSClient
from pieces_integration.domain.bridge import bridge_id_of as domain_bridge_id_of
from pieces_integration.domain.bridge import bridge_url
from pieces_integration.domain.errors import Forbidden, InvalidInput
from pieces_integration.ports.bridge import BridgeRouter, BridgeStore
from pieces_integration.ports.pieces import (
    EndpointGuard,
    PiecesOS,
    PiecesOSFactory,
    SafeEndpoint,
    TransportResponse,
)


def bridge_id_of(url: str | None) -> str | None:
    try:
        return domain_bridge_id_of(url)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="pieces_url") from None


class BridgePiecesTransport:
    def __init__(self, router: BridgeRouter, *, user_id: str, bridge_id: str) -> None:
        self._router = router
        self.user_id = user_id
        self.bridge_id = bridge_id
        self.base_url = bridge_url(bridge_id)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        request_timeout: float,
    ) -> TransportResponse:
        return await self._router.request(
            self.user_id,
            self.bridge_id,
            method,
            path,
            params=params,
            json_body=json_body,
            headers=headers,
            call_timeout=request_timeout,
        )

    @asynccontextmanager
    async def stream(self, path: str) -> AsyncIterator[AsyncIterator[str]]:
        async with self._router.stream(self.user_id, self.bridge_id, path) as frames:
            yield frames

    async def aclose(self) -> None:
        return None  # the bridge belongs to its session, not to one client


class BridgeAwareGuard:
    def __init__(self, inner: EndpointGuard) -> None:
        self._inner = inner

    async def check(self, url: str) -> SafeEndpoint:
        bridge_id = bridge_id_of(url)
        if bridge_id is None:
            return await self._inner.check(url)
        return SafeEndpoint(url=url, host=bridge_id, port=0, addresses=())


class RoutingPiecesOSFactory:
    """Bridge URLs through the bridge, the rest through the direct factory."""

    def __init__(
        self,
        direct: PiecesOSFactory,
        *,
        router: BridgeRouter,
        store: BridgeStore,
        settings: ClientSettings,
    ) -> None:
        self._direct = direct
        self._router = router
        self._store = store
        self._settings = settings

    async def __call__(self, url: str, *, api_key: str | None, user_id: str = "") -> PiecesOS:
        bridge_id = bridge_id_of(url)
        if bridge_id is None:
            return await self._direct(url, api_key=api_key, user_id=user_id)
        bridge = await self._store.get(bridge_id)
        if bridge is None or bridge.user_id != user_id or bridge.revoked_at is not None:
            raise Forbidden("that bridge is not one of yours, or it was revoked")
        transport = BridgePiecesTransport(self._router, user_id=user_id, bridge_id=bridge_id)
        return PiecesOSClient(transport, settings=self._settings, api_key=None)
