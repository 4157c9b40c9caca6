"""Sync now (spec 6.1 `POST /context/{user_id}/sync`): run the user's sync, or join the one
in progress, and wait a bounded time for its result. The REST route and the MCP tool
`sync_now` both call this."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pieces_integration.domain.auth import Principal, ensure_can_write, resolve_user
from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.domain.model import SyncRun
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.auth import ensure_user
from pieces_integration.service_layer.sync_scheduler import SyncScheduler


@dataclass(frozen=True, slots=True)
class SyncNowResult:
    run: SyncRun
    finished: bool  # False: still running after the wait; `run` is its latest state


@dataclass(frozen=True, slots=True)
class SyncNow:
    uow: UnitOfWorkFactory
    scheduler: SyncScheduler

    async def __call__(
        self, principal: Principal, user_id: str | None, *, wait_seconds: float, trigger: str
    ) -> SyncNowResult:
        ensure_can_write(principal)
        owner = resolve_user(principal, user_id)
        async with self.uow() as uow:
            await ensure_user(uow, owner, principal.role)
            await uow.commit()
        task = self.scheduler.start(owner, trigger=trigger, join=True)
        finished = True
        try:
            # Shielded: a caller that stops waiting leaves the run going.
            run = await asyncio.wait_for(asyncio.shield(task), wait_seconds)
        except TimeoutError:
            finished = False
            async with self.uow(readonly=True) as uow:
                run = await uow.sync_runs.latest(owner)
        if run is None:
            raise DependencyUnavailable(
                "the sync could not be started; the service log has the cause", upstream="sync"
            )
        return SyncNowResult(run=run, finished=finished)
