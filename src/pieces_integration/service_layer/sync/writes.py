"""The sync's writes to the store: batched, and announced only once they are committed.

Writes are grouped into batches of `batch_size` operations per transaction: large imports
stay fast, and a crash loses at most one uncommitted batch, which the next run redoes
(every step is decided from stored state, so redoing is safe).

An operation may carry an announcement (a live event). It runs after the batch committed,
and only if its operation wrote: a write skipped for a concurrent edit tells no client of a
change that never happened (the same rule as `AssetService`: publish after commit).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import structlog

from pieces_integration.domain.merge import Snapshot
from pieces_integration.domain.model import (
    Asset,
    AssetLink,
    OutboxMessage,
    Side,
    content_hash,
    utcnow,
)
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory
from pieces_integration.ports.sync_sides import RemoteAsset
from pieces_integration.service_layer.revisions import record_revision

log = structlog.get_logger(__name__)

# Returns whether it wrote: False when it chose to write nothing (a concurrent edit).
Operation = Callable[[UnitOfWork], Awaitable[bool]]
Announcement = Callable[[], Awaitable[object]]


@dataclass(slots=True)
class _Step:
    operation: Operation | None  # None: an import, inserted with the batch's other imports
    then: Announcement | None  # run after the commit, if the operation wrote
    wrote: bool = True


class BatchWriter:
    """Collects operations and commits them `batch_size` at a time, then announces them.

    New assets with their first link (an import) are collected apart and inserted in a few
    statements per batch, ahead of the batch's other operations: none of those can refer to
    an asset imported in the same batch, and a large initial import is bound by them.
    """

    def __init__(self, uow_factory: UnitOfWorkFactory, batch_size: int) -> None:
        self._uow = uow_factory
        self._batch_size = batch_size
        self._steps: list[_Step] = []
        self._imports: list[tuple[Asset, AssetLink]] = []

    async def add(self, operation: Operation, *, then: Announcement | None = None) -> None:
        self._steps.append(_Step(operation, then))
        await self._maybe_flush()

    async def add_import(
        self, asset: Asset, link: AssetLink, *, then: Announcement | None = None
    ) -> None:
        self._imports.append((asset, link))
        self._steps.append(_Step(None, then))
        await self._maybe_flush()

    async def _maybe_flush(self) -> None:
        if len(self._steps) >= self._batch_size:
            await self.flush()

    async def flush(self) -> None:
        if not self._steps:
            return
        steps, self._steps = self._steps, []
        imports, self._imports = self._imports, []
        async with self._uow() as uow:
            if imports:
                await uow.assets.add_many([asset for asset, _ in imports])
                by_user: dict[str, list[AssetLink]] = {}
                for asset, link in imports:
                    by_user.setdefault(asset.user_id, []).append(link)
                for user_id, links in by_user.items():
                    await uow.assets.add_links(user_id, links)
            for step in steps:
                if step.operation is not None:
                    step.wrote = await step.operation(uow)
            await uow.commit()
        for step in steps:
            if step.wrote and step.then is not None:
                await step.then()


def apply_snapshot(asset: Asset, snapshot: Snapshot, stamp: str) -> None:
    """Make `asset` hold `snapshot`, as a new version stamped `stamp` (an encoded HLC)."""
    asset.name = snapshot.name
    asset.content = snapshot.content
    asset.description = snapshot.description
    asset.language = snapshot.language
    asset.tags = list(snapshot.tags)
    asset.content_hash = content_hash(asset.content)
    asset.version += 1
    asset.updated_at = utcnow()
    asset.hlc = stamp


def base_link(asset_id: str, side: Side, remote: RemoteAsset) -> AssetLink:
    """The link recording `remote` as the state both now agree on."""
    return AssetLink(
        asset_id=asset_id,
        side=side,
        remote_id=remote.remote_id,
        base_hash=remote.snapshot.state_hash(),
        base_version=remote.version,
        synced_at=utcnow(),
        base_snapshot=remote.snapshot.to_json(),
    )


def save_link(user_id: str, link: AssetLink) -> Operation:
    async def save(uow: UnitOfWork) -> bool:
        await uow.assets.save_link(user_id, link)
        return True

    return save


def delete_link(asset_id: str, side: Side) -> Operation:
    async def delete(uow: UnitOfWork) -> bool:
        await uow.assets.delete_link(asset_id, side)
        return True

    return delete


def settle(message: OutboxMessage) -> Operation:
    async def done(uow: UnitOfWork) -> bool:
        # bandit B101: narrows a type for mypy; holds by construction, no input reaches it.
        assert message.id is not None  # nosec B101
        await uow.outbox.settle(message.id, at=utcnow())
        return True

    return done


def commit_asset(
    asset: Asset, link: AssetLink, moved: set[str], shared: dict[str, list[str]]
) -> Operation:
    """Write a synced change and its new base together, unless the asset moved meanwhile.

    If someone edited the asset since this run read it, neither is written: the next run
    sees both sides changed and merges, instead of this run overwriting the edit. The
    operation then says it wrote nothing and adds the asset's id to `moved`, so the rest
    of the run leaves it alone (what it holds of it is no longer what is stored).

    A team asset's change from the owner's Pieces or AIWFE is a revision by the owner, as
    an edit through the API is; its team ids go into `shared` for the announcement.
    """
    frozen = replace(asset, tags=list(asset.tags), metadata=dict(asset.metadata))
    expected = frozen.version - 1

    async def commit(uow: UnitOfWork) -> bool:
        current = await uow.assets.get(frozen.id)
        if current is None or current.version != expected:
            log.info("sync_skipped_concurrent_edit", asset_id=frozen.id)
            moved.add(frozen.id)
            return False
        await uow.assets.update(frozen, expected_version=expected)
        await uow.assets.save_link(frozen.user_id, link)
        team_ids = [share.team_id for share in await uow.teams.shares_of(frozen.id)]
        if team_ids:
            await record_revision(uow, frozen, frozen.user_id)
            shared[frozen.id] = team_ids
        return True

    return commit
