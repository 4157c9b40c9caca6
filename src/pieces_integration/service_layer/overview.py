"""One user's integration status at a glance (the console's status page, spec 8.4)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pieces_integration.domain.auth import Principal, resolve_user
from pieces_integration.domain.model import SyncRun
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.pieces import PiecesIntegration
from pieces_integration.service_layer.pieces.results import ConnectionStatus
from pieces_integration.service_layer.sync_progress import ProgressReport, SyncProgress
from pieces_integration.service_layer.sync_scheduler import SyncScheduler


@dataclass(frozen=True, slots=True)
class Overview:
    user_id: str
    pieces: ConnectionStatus
    aiwfe_configured: bool
    last_sync: SyncRun | None
    running: ProgressReport | None
    outbox_depth: int
    open_conflicts: int
    index_lag: int  # assets waiting for the semantic index (all users)
    sync_interval: float
    next_sync_in: float | None  # None: no schedule (not connected)


@dataclass
class StatusOverview:
    uow: UnitOfWorkFactory
    pieces: PiecesIntegration
    scheduler: SyncScheduler
    progress: SyncProgress
    index_depth: Callable[[], Awaitable[int]]
    aiwfe_configured: bool

    async def for_user(self, principal: Principal, user_id: str | None = None) -> Overview:
        owner = resolve_user(principal, user_id)
        status = await self.pieces.status(owner)
        async with self.uow(readonly=True) as uow:
            last = await uow.sync_runs.latest(owner)
            outbox = await uow.outbox.pending_count(owner)
            conflicts = await uow.conflicts.for_user(owner, status="open")
        return Overview(
            user_id=owner,
            pieces=status,
            aiwfe_configured=self.aiwfe_configured,
            last_sync=last,
            running=self.progress.current(owner),
            outbox_depth=outbox,
            open_conflicts=len(conflicts),
            index_lag=await self.index_depth(),
            sync_interval=self.scheduler.interval_for(owner),
            next_sync_in=self.scheduler.next_run_in(owner),
        )
