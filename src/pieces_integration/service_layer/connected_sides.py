"""Which sides a user is connected to right now, as `SyncSide`s for the engine.

Pieces: the live client of this replica if there is one, else a client opened from the
stored connection (any replica can sync any user). AIWFE: the platform client, when
AIWFE_API_URL is configured. A side that cannot be opened is returned as one whose every
call fails with the reason, so the engine records it and carries on with the other side.

A client opened from the stored connection is kept for later runs only while that
connection stays what it was opened from: a disconnect (or a deleted connection) closes
it and leaves the user without a Pieces side, and a new URL, key or connection closes it
and opens one for the current connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pieces_integration.domain.connection_state import ConnectionState
from pieces_integration.domain.merge import Snapshot
from pieces_integration.domain.model import Side
from pieces_integration.ports.pieces import (
    ConnectionStore,
    Decrypt,
    PiecesOS,
    PiecesOSFactory,
    StoredConnection,
)
from pieces_integration.ports.sync_sides import RemoteAsset, SyncSide
from pieces_integration.service_layer.pieces.credentials import unseal_api_key
from pieces_integration.service_layer.pieces.live import PiecesConnections

# Maps a Pieces client onto the engine's snapshot calls for one user (`PiecesSyncSide`).
PiecesSideFactory = Callable[[PiecesOS, str], SyncSide]


class UnreachableSide:
    idempotent_create = True

    def __init__(self, side: Side, reason: Exception) -> None:
        self.side = side
        self._reason = reason

    def _fail(self) -> Exception:
        return self._reason

    async def list_assets(self) -> list[RemoteAsset]:
        raise self._fail()

    async def get_asset(self, remote_id: str) -> RemoteAsset | None:
        raise self._fail()

    async def create_asset(
        self,
        asset_id: str,
        snapshot: Snapshot,
        *,
        source: str | None = None,
        source_id: str | None = None,
    ) -> RemoteAsset:
        raise self._fail()

    async def update_asset(self, remote_id: str, snapshot: Snapshot) -> RemoteAsset:
        raise self._fail()

    async def delete_asset(self, remote_id: str) -> None:
        raise self._fail()


@dataclass(frozen=True, slots=True)
class _OpenedFrom:
    """What a cached client was opened from; any difference means it is stale."""

    connection_id: str
    url: str
    sealed_secret: bytes | None

    @classmethod
    def of(cls, stored: StoredConnection) -> _OpenedFrom:
        connection = stored.connection
        return cls(connection.id, connection.url, stored.sealed_secret)


class ConnectedSides:
    def __init__(
        self,
        *,
        store: ConnectionStore,
        connections: PiecesConnections,
        factory: PiecesOSFactory,
        decrypt: Decrypt,
        pieces_side: PiecesSideFactory,
        aiwfe: Callable[[str], SyncSide] | None = None,
    ) -> None:
        self._store = store
        self._connections = connections
        self._factory = factory
        self._decrypt = decrypt
        self._pieces_side = pieces_side
        self._aiwfe = aiwfe
        self._opened: dict[str, tuple[_OpenedFrom, PiecesOS]] = {}

    async def __call__(self, user_id: str) -> dict[Side, SyncSide]:
        sides: dict[Side, SyncSide] = {}
        pieces = await self._pieces(user_id)
        if pieces is not None:
            sides[Side.PIECES] = pieces
        if self._aiwfe is not None:
            sides[Side.AIWFE] = self._aiwfe(user_id)
        return sides

    async def _pieces(self, user_id: str) -> SyncSide | None:
        live = self._connections.get(user_id)
        if live is not None and live.client is not None:
            await self.forget(user_id)  # the live client supersedes one opened earlier
            return self._pieces_side(live.client, user_id)
        stored = await self._store.get(user_id)
        if stored is None or stored.connection.state == ConnectionState.DISCONNECTED:
            await self.forget(user_id)  # deleted or disconnected by the user
            return None
        opened_from = _OpenedFrom.of(stored)
        cached = self._opened.get(user_id)
        if cached is not None and cached[0] == opened_from:
            return self._pieces_side(cached[1], user_id)
        await self.forget(user_id)  # opened from an older URL, key or connection
        client: PiecesOS | None = None
        try:
            api_key = unseal_api_key(user_id, stored.sealed_secret, self._decrypt)
            client = await self._factory(stored.connection.url, api_key=api_key, user_id=user_id)
            await client.connect()
        except Exception as exc:  # reported per run by the engine
            if client is not None:
                await client.aclose()
            return UnreachableSide(Side.PIECES, exc)
        self._opened[user_id] = (opened_from, client)
        return self._pieces_side(client, user_id)

    async def forget(self, user_id: str) -> None:
        cached = self._opened.pop(user_id, None)
        if cached is not None:
            await cached[1].aclose()

    async def aclose(self) -> None:
        for user_id in list(self._opened):
            await self.forget(user_id)
