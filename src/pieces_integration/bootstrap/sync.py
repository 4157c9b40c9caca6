"""Part of the composition root: the sync engine, its sides, its scheduler and conflicts."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pieces_integration.adapters.aiwfe.client import AIWFEHttpClient
from pieces_integration.adapters.aiwfe.sync_side import AIWFESyncSide
from pieces_integration.adapters.code_analysis import TreeSitterCodeAnalyzer
from pieces_integration.adapters.pieces_os.sync_side import PiecesSyncSide
from pieces_integration.bootstrap.infrastructure import Closers, Infrastructure
from pieces_integration.bootstrap.overrides import Overrides
from pieces_integration.config import Settings
from pieces_integration.domain.commands import CreateAIWFESuggestion
from pieces_integration.domain.hlc import HybridLogicalClock
from pieces_integration.domain.merge import Strategy
from pieces_integration.domain.model import Asset, ConnectionKind, OutboxMessage
from pieces_integration.ports.aiwfe import AIWFEClient
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.ports.sync import SyncTrigger
from pieces_integration.ports.sync_sides import SyncSide
from pieces_integration.service_layer.asset_analysis import (
    deliver_suggestion,
    queue_asset_suggestions,
)
from pieces_integration.service_layer.conflicts import ConflictService
from pieces_integration.service_layer.connected_sides import ConnectedSides
from pieces_integration.service_layer.pieces import PiecesIntegration
from pieces_integration.service_layer.sync import SyncEngine
from pieces_integration.service_layer.sync_now import SyncNow
from pieces_integration.service_layer.sync_progress import SyncProgress
from pieces_integration.service_layer.sync_requests import SchedulerSyncTrigger
from pieces_integration.service_layer.sync_scheduler import SyncScheduler
from pieces_integration.service_layer.sync_signals import SyncSignals
from pieces_integration.service_layer.team_events import TeamEvents


@dataclass(frozen=True, slots=True)
class SyncRuntime:
    pieces: PiecesIntegration
    aiwfe: AIWFEClient | None
    engine: SyncEngine
    scheduler: SyncScheduler
    conflicts: ConflictService
    trigger: SyncTrigger
    now: SyncNow  # "sync now" of the REST route and the MCP tool
    progress: SyncProgress  # each user's running sync (the console's progress bar)


def node_id() -> str:
    """A short id of this process for HLC stamps (unique per replica and restart)."""
    raw = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:8]


def aiwfe_client(
    settings: Settings, infra: Infrastructure, overrides: Overrides
) -> AIWFEClient | None:
    if overrides.aiwfe is not None:
        return overrides.aiwfe
    if not settings.aiwfe_api_url:
        return None
    key = settings.aiwfe_api_key.get_secret_value() if settings.aiwfe_api_key else None
    return AIWFEHttpClient(infra.http, base_url=settings.aiwfe_api_url, api_key=key)


def _aiwfe_hooks(
    aiwfe: AIWFEClient, uow: UnitOfWorkFactory
) -> tuple[
    dict[str, Callable[[OutboxMessage], Awaitable[object]]],
    Callable[[list[Asset]], Awaitable[None]],
]:
    async def suggest(message: OutboxMessage) -> object:
        return await deliver_suggestion(message, aiwfe)

    analyzer = TreeSitterCodeAnalyzer()

    async def analyse(assets: list[Asset]) -> None:
        # TODOs and likely bugs in what came from Pieces become AIWFE task suggestions.
        for asset in assets:
            await queue_asset_suggestions(asset, analyzer=analyzer, uow_factory=uow)

    return {CreateAIWFESuggestion.OPERATION: suggest}, analyse


def wire_sync(
    settings: Settings,
    infra: Infrastructure,
    uow: UnitOfWorkFactory,
    pieces: PiecesIntegration,
    aiwfe: AIWFEClient | None,
    signals: SyncSignals,
    overrides: Overrides,
    closers: Closers,
    team_events: TeamEvents | None = None,
) -> SyncRuntime:
    deliverers: dict[str, Callable[[OutboxMessage], Awaitable[object]]] = {}
    after_pull: Callable[[list[Asset]], Awaitable[None]] | None = None
    aiwfe_side: Callable[[str], SyncSide] | None = None
    if aiwfe is not None:
        client = aiwfe

        def aiwfe_side(user_id: str) -> SyncSide:
            return AIWFESyncSide(client, user_id)

        deliverers, after_pull = _aiwfe_hooks(aiwfe, uow)
    sides = ConnectedSides(
        store=pieces.store,
        connections=pieces.connections,
        factory=pieces.factory,
        decrypt=infra.secrets.decrypt,
        pieces_side=PiecesSyncSide,
        aiwfe=aiwfe_side,
    )
    closers.add(sides.aclose)
    clock = HybridLogicalClock(node_id())
    progress = SyncProgress()
    extra_progress = overrides.sync_progress

    def on_progress(user_id: str, phase: str, done: int, total: int) -> None:
        progress.record(user_id, phase, done, total)
        if extra_progress is not None:
            extra_progress(user_id, phase, done, total)

    engine = SyncEngine(
        uow=uow,
        locks=infra.locks,
        events=infra.events,
        sides=sides,
        clock=clock,
        strategy=Strategy(settings.sync.conflict_strategy),
        batch_size=settings.sync.batch_size,
        metrics=infra.metrics,
        deliverers=deliverers,
        after_pull=after_pull,
        on_progress=on_progress,
        team_events=team_events,
    )

    async def users() -> list[str]:
        async with uow(readonly=True) as tx:
            connected = await tx.connections.user_ids(ConnectionKind.PIECES)
            everyone = await tx.users.list_ids() if aiwfe is not None else []
            # A disabled account keeps its data but is not synced in the background (#20).
            disabled = await tx.users.disabled_ids()
        return sorted((set(connected) | set(everyone)) - set(disabled))

    async def intervals() -> dict[str, int]:
        async with uow(readonly=True) as tx:
            return await tx.preferences.custom_intervals()

    scheduler = SyncScheduler(
        engine=engine,
        uow=uow,
        users=users,
        interval=settings.sync.interval_seconds,
        intervals=intervals,
        clock=overrides.clock or time.monotonic,
    )
    signals.listen(scheduler.poke)
    return SyncRuntime(
        pieces=pieces,
        aiwfe=aiwfe,
        engine=engine,
        scheduler=scheduler,
        conflicts=ConflictService(uow, infra.events, clock),
        trigger=overrides.sync_trigger or SchedulerSyncTrigger(scheduler),
        now=SyncNow(uow, scheduler),
        progress=progress,
    )
