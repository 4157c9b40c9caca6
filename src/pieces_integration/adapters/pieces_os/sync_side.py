"""Pieces OS as a sync side: the `PiecesOS` client mapped onto snapshot calls.

Pieces picks its own asset ids and has no idempotent create, so `idempotent_create` is
False and the engine guards creates with pending links. Language lives in the asset's
format extension and cannot be changed by an update here; the engine adopts what Pieces
reports back, so both sides still agree.

A create may name where the asset came from (`source`, `source_id`: an AIWFE chat); Pieces
keeps it as a related website of the new asset (`mapping.origin_website`). It is not part of
the synced snapshot, so reading the asset back reports no change.
"""

from __future__ import annotations

from pieces_integration.adapters.pieces_os.mapping import origin_website
from pieces_integration.domain.errors import NotFound
from pieces_integration.domain.merge import Snapshot
from pieces_integration.domain.model import Asset, Side
from pieces_integration.ports.pieces import AssetChanges, AssetDraft, PiecesOS
from pieces_integration.ports.sync_sides import RemoteAsset


def _remote(asset: Asset) -> RemoteAsset:
    return RemoteAsset(
        remote_id=asset.id,
        snapshot=Snapshot.of(asset),
        updated_at=asset.updated_at,
        version=asset.updated_at.isoformat(),
    )


class PiecesSyncSide:
    side = Side.PIECES
    idempotent_create = False

    def __init__(self, client: PiecesOS, user_id: str) -> None:
        self._client = client
        self._user_id = user_id

    async def list_assets(self) -> list[RemoteAsset]:
        return [_remote(asset) for asset in await self._client.list_assets(self._user_id)]

    async def get_asset(self, remote_id: str) -> RemoteAsset | None:
        try:
            return _remote(await self._client.get_asset(self._user_id, remote_id))
        except NotFound:
            return None

    async def create_asset(
        self,
        asset_id: str,
        snapshot: Snapshot,
        *,
        source: str | None = None,
        source_id: str | None = None,
    ) -> RemoteAsset:
        origin = origin_website(source, source_id)
        created = await self._client.create_asset(
            self._user_id,
            AssetDraft(
                content=snapshot.content,
                language=snapshot.language,
                name=snapshot.name,
                tags=snapshot.tags,
                description=snapshot.description,
                websites=(origin,) if origin is not None else (),
            ),
        )
        return _remote(created)

    async def update_asset(self, remote_id: str, snapshot: Snapshot) -> RemoteAsset:
        updated = await self._client.update_asset(
            self._user_id,
            remote_id,
            AssetChanges(
                name=snapshot.name,
                content=snapshot.content,
                tags=snapshot.tags,
                description=snapshot.description or "",
            ),
        )
        return _remote(updated)

    async def delete_asset(self, remote_id: str) -> None:
        try:
            await self._client.delete_asset(remote_id)
        except NotFound:
            return
