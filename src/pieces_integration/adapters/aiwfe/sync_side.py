"""AIWFE as a sync side: the contract's asset calls mapped onto snapshot calls.

AIWFE lets the caller choose the asset id (`PUT /v1/users/{user}/assets/{id}`), so a create
retried after a crash lands on the same asset: `idempotent_create` is True.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pieces_integration.domain.merge import Snapshot
from pieces_integration.domain.model import Side
from pieces_integration.ports.aiwfe import AIWFEAsset, AIWFEAssetWrite, AIWFEClient
from pieces_integration.ports.sync_sides import RemoteAsset, SyncSide


def _remote(asset: AIWFEAsset) -> RemoteAsset:
    return RemoteAsset(
        remote_id=asset.id,
        snapshot=Snapshot(
            name=asset.name,
            content=asset.content,
            description=asset.description or None,
            language=asset.language or None,
            tags=asset.tags,
        ),
        updated_at=asset.updated_at,
        version=str(asset.version),
    )


def _write(snapshot: Snapshot) -> AIWFEAssetWrite:
    return AIWFEAssetWrite(
        name=snapshot.name,
        content=snapshot.content,
        description=snapshot.description,
        language=snapshot.language,
        tags=snapshot.tags,
    )


class AIWFESyncSide:
    side = Side.AIWFE
    idempotent_create = True

    def __init__(self, client: AIWFEClient, user_id: str) -> None:
        self._client = client
        self._user_id = user_id

    async def list_assets(self) -> list[RemoteAsset]:
        return [_remote(a) for a in await self._client.list_assets(self._user_id)]

    async def get_asset(self, remote_id: str) -> RemoteAsset | None:
        asset = await self._client.get_asset(self._user_id, remote_id)
        return _remote(asset) if asset is not None else None

    async def create_asset(
        self,
        asset_id: str,
        snapshot: Snapshot,
        *,
        source: str | None = None,
        source_id: str | None = None,
    ) -> RemoteAsset:
        return _remote(await self._client.put_asset(self._user_id, asset_id, _write(snapshot)))

    async def update_asset(self, remote_id: str, snapshot: Snapshot) -> RemoteAsset:
        return _remote(await self._client.put_asset(self._user_id, remote_id, _write(snapshot)))

    async def delete_asset(self, remote_id: str) -> None:
        await self._client.delete_asset(self._user_id, remote_id)


if TYPE_CHECKING:

    def _conforms(side: AIWFESyncSide) -> SyncSide:
        return side  # mypy proves the adapter implements the port
