"""Ports of the bridge (DEVIATIONS 5): the socket a bridge speaks on, where bridges are kept,
and who answers for a connected one.

`BridgeWire` is one agent's WebSocket as the service sees it (Starlette's, or an in-memory
pair in tests). `BridgeStore` keeps paired bridges (hashed secrets only). `BridgeRouter` finds
a connected bridge on this replica or another and carries a call to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pieces_integration.domain.bridge import Bridge
from pieces_integration.ports.pieces import TransportResponse


class BridgeWire(Protocol):
    async def send_text(self, text: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def receive(self) -> str | bytes:
        """The next message; `ChannelClosed` when the peer went away."""
        ...

    async def close(self, code: int, reason: str) -> None: ...


class BridgeStore(Protocol):
    async def add(self, bridge: Bridge) -> None: ...

    async def get(self, bridge_id: str) -> Bridge | None: ...

    async def by_pairing_hash(self, pairing_hash: str) -> Bridge | None: ...

    async def save(self, bridge: Bridge) -> None: ...

    async def list_for(self, user_id: str) -> list[Bridge]: ...


@dataclass(frozen=True, slots=True)
class BridgeLink:
    """A connected bridge as any replica sees it (from the registry)."""

    bridge_id: str
    user_id: str
    replica: str
    agent_version: str
    connected_at: datetime
    last_heartbeat: datetime | None = None
    rtt_ms: float | None = None


class BridgeRouter(Protocol):
    """Carries Pieces OS calls of `user_id` to their bridge `bridge_id`, wherever it is."""

    async def request(
        self,
        user_id: str,
        bridge_id: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        call_timeout: float,
    ) -> TransportResponse: ...

    def stream(
        self, user_id: str, bridge_id: str, path: str
    ) -> AbstractAsyncContextManager[AsyncIterator[str]]: ...

    async def link(self, bridge_id: str) -> BridgeLink | None: ...


class LiveBridge(Protocol):
    """One connected agent (the adapter's `BridgeSession`)."""

    bridge_id: str
    user_id: str
    agent_version: str

    async def run(self) -> None: ...

    async def close(self, code: int, reason: str, *, reconnect: bool = False) -> None: ...


class BridgeSessions(Protocol):
    """The replica's view of connected bridges (the adapter's `BridgeHub`)."""

    async def attach(self, session: Any) -> None: ...

    async def detach(self, session: Any) -> None: ...

    async def link(self, bridge_id: str) -> BridgeLink | None: ...
