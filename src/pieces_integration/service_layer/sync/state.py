"""A user's local sync state, loaded once per run: assets and their links to each side."""

from __future__ import annotations

from dataclasses import dataclass, field

from pieces_integration.domain.model import Asset, AssetLink, Side, content_hash
from pieces_integration.domain.outbox import OutboxOperation
from pieces_integration.domain.queries import AssetQuery
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.ports.sync_sides import RemoteAsset

_ASSET_OPERATIONS = frozenset(
    {OutboxOperation.ASSET_CREATE, OutboxOperation.ASSET_UPDATE, OutboxOperation.ASSET_DELETE}
)


@dataclass
class LocalState:
    assets: dict[str, Asset] = field(default_factory=dict)
    links: dict[tuple[str, Side], AssetLink] = field(default_factory=dict)

    def link(self, asset_id: str, side: Side) -> AssetLink | None:
        return self.links.get((asset_id, side))

    def by_remote(self, side: Side) -> dict[str, tuple[Asset, AssetLink]]:
        return {
            link.remote_id: (self.assets[asset_id], link)
            for (asset_id, link_side), link in self.links.items()
            if link_side is side and not link.pending and asset_id in self.assets
        }

    def pending(self, side: Side) -> list[tuple[Asset, AssetLink]]:
        return [
            (self.assets[asset_id], link)
            for (asset_id, link_side), link in self.links.items()
            if link_side is side and link.pending and asset_id in self.assets
        ]


async def load_state(uow_factory: UnitOfWorkFactory, user_id: str) -> LocalState:
    state = LocalState()
    async with uow_factory(readonly=True) as uow:
        cursor: str | None = None
        while True:
            page = await uow.assets.page(user_id, AssetQuery(limit=1000, cursor=cursor))
            links = await uow.assets.links_for([asset.id for asset in page.items])
            for asset in page.items:
                state.assets[asset.id] = asset
                for link in links.get(asset.id, []):
                    state.links[(asset.id, link.side)] = link
            if page.next_cursor is None:
                return state
            cursor = page.next_cursor


async def load_scoped_state(
    uow_factory: UnitOfWorkFactory,
    user_id: str,
    remote: dict[Side, dict[str, RemoteAsset]],
    scope: dict[Side, set[str]],
) -> LocalState:
    """Only what a scoped run can touch: assets linked to the announced remote ids, assets
    with a pending create, assets with outbox messages waiting, and local assets whose
    content equals a newly announced remote asset (candidates for adoption)."""
    state = LocalState()
    async with uow_factory(readonly=True) as uow:
        ids: set[str] = set(await uow.assets.pending_link_asset_ids(user_id))
        for message in await uow.outbox.pending_for(user_id):
            if message.operation in _ASSET_OPERATIONS and message.aggregate_id:
                ids.add(message.aggregate_id)
        for side, remote_ids in scope.items():
            for remote_id in remote_ids:
                linked = await uow.assets.find_by_remote_id(user_id, side, remote_id)
                if linked is not None:
                    ids.add(linked.id)
                elif (item := remote.get(side, {}).get(remote_id)) is not None:
                    digest = content_hash(item.snapshot.content)
                    ids.update(a.id for a in await uow.assets.find_by_hash(user_id, digest))
        found = await uow.assets.get_many(user_id, sorted(ids))
        links = await uow.assets.links_for([asset.id for asset in found])
    for asset in found:
        state.assets[asset.id] = asset
        for link in links.get(asset.id, []):
            state.links[(asset.id, link.side)] = link
    return state
