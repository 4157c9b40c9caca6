"""Which sides a user is connected to right now, as `SyncSide`s for the engine.

Pieces: the live client of this replica if there is one, else a client opened from the
stored connection (any replica can sync any user). AIWFE: the platform client, when
AIWFE_API_URL is configured. A side that cannot be opened is returned as one whose every
call fails with the reason, so the engine records it and carries on with the other side.
"""

from __future__ import annotations

from collections.abc import Callable

from pieces_integration.adapters.pieces_os.sync_side import PiecesSyncSide
from pieces_integration.domain.merge import Snapshot
from pieces_integration.domain.model import Side
from pieces_integration.ports.pieces import ConnectionStore, Decrypt, PiecesOS, PiecesOSFactory
from pieces_integration.ports.sync_sides import RemoteAsset, SyncSide
from pieces_integration.service_layer.pieces_connections import PiecesConnections, secret_context


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


class ConnectedSides:
    def __init__(
        self,
        *,
        store: ConnectionStore,
        connections: PiecesConnections,
        factory: PiecesOSFactory,
        decrypt: Decrypt,
        aiwfe: Callable[[str], SyncSide] | None = None,
    ) -> None:
        self._store = store
        self._connections = connections
        self._factory = factory
        self._decrypt = decrypt
        self._aiwfe = aiwfe
        self._opened: dict[str, PiecesOS] = {}

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
            return PiecesSyncSide(live.client, user_id)
        stored = await self._store.get(user_id)
        if stored is None:
            return None
        client = self._opened.get(user_id)
        if client is None:
            try:
                api_key = (
                    self._decrypt(stored.sealed_secret, secret_context(user_id))
                    if stored.sealed_secret
                    else None
                )
                client = await self._factory(stored.connection.url, api_key=api_key)
                await client.connect()
            except Exception as exc:  # reported per run by the engine
                if client is not None:
                    await client.aclose()
                return UnreachableSide(Side.PIECES, exc)
            self._opened[user_id] = client
        return PiecesSyncSide(client, user_id)

    async def forget(self, user_id: str) -> None:
        client = self._opened.pop(user_id, None)
        if client is not None:
            await client.aclose()

    async def aclose(self) -> None:
        for user_id in list(self._opened):
            await self.forget(user_id)
