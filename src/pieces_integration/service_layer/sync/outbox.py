"""The outbox messages a run delivers or settles (spec 7.2).

Creates and updates are carried by the state-based push, so a run settles the ones it saw;
deletes (no state left to push) and other operations (e.g. AIWFE task suggestions) are
delivered one by one, each settled in its own transaction once delivered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

import structlog

from pieces_integration.domain.backoff import exponential_backoff
from pieces_integration.domain.model import AssetLink, OutboxMessage, Side, utcnow
from pieces_integration.domain.outbox import CARRIED_BY_PUSH, OutboxOperation
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory
from pieces_integration.ports.sync_sides import RemoteAsset, SyncSide
from pieces_integration.service_layer.sync.run import RunBook

log = structlog.get_logger(__name__)

Deliverer = Callable[[OutboxMessage], Awaitable[object]]
_SIDES = frozenset(side.value for side in Side)


async def settle_outbox(uow: UnitOfWork, user_id: str, sides: set[Side], seen: set[int]) -> None:
    """Create/update messages toward a side are carried by that side's state-based push
    (those the run saw when it began; later ones are left to the run their write poked);
    messages toward a side that could not be reached wait, with growing backoff."""
    now = utcnow()
    targets = {side.value for side in sides}
    for message in await uow.outbox.pending_for(user_id):
        if message.id is None or message.target not in _SIDES:
            continue
        if message.target in targets and message.operation in CARRIED_BY_PUSH:
            if message.id in seen:
                await uow.outbox.settle(message.id, at=now)
        elif message.next_attempt_at <= now:
            delay = exponential_backoff(message.attempts + 1, base=1.0, cap=256.0)
            await uow.outbox.defer(
                message.id,
                until=now + timedelta(seconds=delay),
                error=f"{message.target} not reachable or not connected",
            )


async def _settle(uow_factory: UnitOfWorkFactory, message_id: int) -> None:
    async with uow_factory() as uow:
        await uow.outbox.settle(message_id, at=utcnow())
        await uow.commit()


async def deliver_deletes(
    uow_factory: UnitOfWorkFactory,
    book: RunBook,
    client: SyncSide,
    remote: dict[str, RemoteAsset],
) -> None:
    """Carry the deletes queued toward `client`'s side, unless edited there since."""
    async with uow_factory(readonly=True) as uow:
        messages = [
            m
            for m in await uow.outbox.pending_for(book.user_id, target=client.side.value)
            if m.operation == OutboxOperation.ASSET_DELETE
        ]
    for message in messages:
        remote_id = message.payload.get("remote_id")
        if remote_id and not str(remote_id).startswith(AssetLink.PENDING_PREFIX):
            there = await client.get_asset(str(remote_id))
            base = message.payload.get("base_hash")
            if there is not None and base and there.snapshot.state_hash() != base:
                # Edited there since we deleted it here: an edit beats a delete. Leave
                # it; the next full run imports it back as an asset of its own.
                log.info("delete_skipped_remote_edited", remote_id=remote_id)
            elif there is not None:
                await client.delete_asset(str(remote_id))
                book.pushed[client.side] += 1
            remote.pop(str(remote_id), None)
        # bandit B101: narrows a type for mypy; holds by construction, no input reaches it.
        assert message.id is not None  # nosec B101
        await _settle(uow_factory, message.id)


async def deliver_other(
    uow_factory: UnitOfWorkFactory,
    book: RunBook,
    side: Side,
    deliverers: Mapping[str, Deliverer],
) -> None:
    """Deliver the messages toward `side` that some deliverer handles, by operation."""
    async with uow_factory(readonly=True) as uow:
        messages = await uow.outbox.pending_for(book.user_id, target=side.value)
    for message in messages:
        deliver = deliverers.get(message.operation)
        if deliver is None or message.id is None:
            continue
        await deliver(message)
        await _settle(uow_factory, message.id)
