"""The composition root: `bootstrap(settings)` builds every part from configuration.

It returns a `Container`, typed all the way down: the core services as fields, and one
runtime per area (`sync`, `search`, `realtime`) from the `wire_*` function beside it. Parts
are built in dependency order and handed to their users' constructors; nothing is assigned
to a service afterwards. A caller replaces a part by passing it in `Overrides`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from pieces_integration.adapters.crypto import SecretBox
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.bootstrap.infrastructure import Closers, wire_infrastructure
from pieces_integration.bootstrap.overrides import Overrides
from pieces_integration.bootstrap.pieces import wire_pieces
from pieces_integration.bootstrap.realtime import RealtimeRuntime, wire_realtime
from pieces_integration.bootstrap.search import (
    SearchRuntime,
    keyword_tier,
    search_index,
    wire_search,
)
from pieces_integration.bootstrap.sync import SyncRuntime, aiwfe_client, wire_sync
from pieces_integration.config import Settings
from pieces_integration.domain.assets import AssetLimits
from pieces_integration.observability.metrics import Metrics
from pieces_integration.ports.infrastructure import Cache, EventBus, Locks
from pieces_integration.ports.rate_limit import RateLimiter
from pieces_integration.service_layer.assets import AssetService
from pieces_integration.service_layer.auth import Authenticator
from pieces_integration.service_layer.context import ContextService
from pieces_integration.service_layer.events import EventPublisher
from pieces_integration.service_layer.health import HealthCheck
from pieces_integration.service_layer.privacy import PrivacyService
from pieces_integration.service_layer.suggestions import ContextChangeTap
from pieces_integration.service_layer.sync_signals import SyncSignals


@dataclass(frozen=True, slots=True)
class Container:
    settings: Settings
    engine: AsyncEngine
    uow: SqlUnitOfWorkFactory
    cache: Cache
    bus: EventBus
    locks: Locks
    metrics: Metrics
    http: httpx.AsyncClient
    jwt: JwtCodec
    authenticator: Authenticator
    rate_limiter: RateLimiter
    events: EventPublisher
    secrets: SecretBox
    assets: AssetService
    context: ContextService
    privacy: PrivacyService
    health_checks: tuple[HealthCheck, ...]
    sync: SyncRuntime
    search: SearchRuntime
    realtime: RealtimeRuntime
    closers: Closers

    def on_close(self, closer: Callable[[], Awaitable[object]]) -> None:
        self.closers.add(closer)

    async def aclose(self) -> None:
        await self.closers.aclose()


def asset_limits(settings: Settings) -> AssetLimits:
    api = settings.api
    return AssetLimits(
        max_content_bytes=api.max_asset_bytes,
        max_tags=api.max_tags,
        max_tag_length=api.max_tag_length,
        max_name_length=api.max_name_length,
    )


def bootstrap(settings: Settings, overrides: Overrides | None = None) -> Container:
    overrides = overrides or Overrides()
    closers = Closers()
    infra = wire_infrastructure(settings, overrides, closers)
    # The keyword tier indexes every committed write, so the index precedes the unit of work.
    index = search_index(settings, overrides.embedder)
    uow = SqlUnitOfWorkFactory(infra.engine, after_commit=[keyword_tier(index)])
    signals = SyncSignals()  # writes and Pieces streams -> the scheduler, built below
    pieces = wire_pieces(settings, infra, uow, signals, overrides, closers)
    aiwfe = aiwfe_client(settings, infra, overrides)
    sync = wire_sync(settings, infra, uow, pieces, aiwfe, signals, overrides, closers)
    search = wire_search(settings, infra, uow, index, aiwfe, pieces.connections)
    return Container(
        settings=settings,
        engine=infra.engine,
        uow=uow,
        cache=infra.cache,
        bus=infra.bus,
        locks=infra.locks,
        metrics=infra.metrics,
        http=infra.http,
        jwt=infra.jwt,
        authenticator=Authenticator(uow, infra.jwt),
        rate_limiter=infra.rate_limiter,
        events=infra.events,
        secrets=infra.secrets,
        assets=AssetService(uow, infra.events, asset_limits(settings), signals.local_write),
        context=ContextService(uow, ContextChangeTap(infra.events, search.pusher.notify)),
        privacy=PrivacyService(
            uow,
            infra.cache,
            event_log=infra.event_log,
            rate_limiter=infra.rate_limiter,
            purge_hooks=[search.purge_user],
        ),
        health_checks=infra.health_checks,
        sync=sync,
        search=search,
        realtime=wire_realtime(infra, sync.trigger, overrides),
        closers=closers,
    )
