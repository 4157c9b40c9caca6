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
from pieces_integration.bootstrap.bridge import BridgeRuntime, bridge_hub, wire_bridge
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
from pieces_integration.domain.lockout import LockoutPolicy
from pieces_integration.observability.metrics import Metrics
from pieces_integration.ports.infrastructure import Cache, EventBus, Locks
from pieces_integration.ports.rate_limit import RateLimiter
from pieces_integration.service_layer.accounts import AccountService
from pieces_integration.service_layer.assets import AssetService
from pieces_integration.service_layer.auth import Authenticator
from pieces_integration.service_layer.auth_throttle import AuthThrottle, ThrottlePolicy
from pieces_integration.service_layer.context import ContextService
from pieces_integration.service_layer.events import EventPublisher
from pieces_integration.service_layer.health import HealthCheck
from pieces_integration.service_layer.overview import StatusOverview
from pieces_integration.service_layer.preferences import PreferencesService
from pieces_integration.service_layer.privacy import PrivacyService
from pieces_integration.service_layer.revisions import RevisionService
from pieces_integration.service_layer.revocation import Revocations
from pieces_integration.service_layer.saving import SaveService
from pieces_integration.service_layer.sharing import SharingService
from pieces_integration.service_layer.suggestions import ContextChangeTap
from pieces_integration.service_layer.sync_signals import SyncSignals
from pieces_integration.service_layer.team_access import TeamAccess, TeamReachCache
from pieces_integration.service_layer.team_events import TeamEvents
from pieces_integration.service_layer.teams import TeamService


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
    # Brute-force limits: `async with auth_throttle.attempt(...)` around any secret check.
    auth_throttle: AuthThrottle
    rate_limiter: RateLimiter
    # Ends live sessions when what they depend on is revoked (started by the app lifespan).
    revocations: Revocations
    events: EventPublisher
    secrets: SecretBox
    assets: AssetService
    context: ContextService
    privacy: PrivacyService
    # Disabling and re-enabling accounts (issue 20).
    accounts: AccountService
    preferences: PreferencesService
    # Teams (issue 16); `team_access` is the one membership check REST and WebSocket share.
    teams: TeamService
    team_access: TeamAccess
    sharing: SharingService
    saving: SaveService
    revisions: RevisionService
    overview: StatusOverview
    health_checks: tuple[HealthCheck, ...]
    sync: SyncRuntime
    search: SearchRuntime
    realtime: RealtimeRuntime
    bridge: BridgeRuntime
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


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    auth = settings.auth

    def policy(threshold: int) -> LockoutPolicy:
        return LockoutPolicy(
            threshold=threshold,
            window=auth.failure_window_seconds,
            base=auth.lockout_seconds,
            maximum=max(auth.lockout_seconds, auth.lockout_max_seconds),
        )

    return ThrottlePolicy(
        per_address=policy(auth.failures_per_address),
        per_identity=policy(auth.failures_per_identity),
    )


def bootstrap(settings: Settings, overrides: Overrides | None = None) -> Container:
    overrides = overrides or Overrides()
    closers = Closers()
    infra = wire_infrastructure(settings, overrides, closers)
    # The keyword tier indexes every committed write, so the index precedes the unit of work.
    index = search_index(settings, overrides.embedder)
    uow = SqlUnitOfWorkFactory(infra.engine, after_commit=[keyword_tier(index)])
    signals = SyncSignals()  # writes and Pieces streams -> the scheduler, built below
    hub = bridge_hub(settings, infra)  # routes `bridge://` connections (DEVIATIONS 5)
    pieces = wire_pieces(settings, infra, uow, signals, overrides, closers, hub)
    aiwfe = aiwfe_client(settings, infra, overrides)
    team_events = TeamEvents(uow, infra.events)
    sync = wire_sync(settings, infra, uow, pieces, aiwfe, signals, overrides, closers, team_events)
    # One cache of team shares for search, suggestions and the writes that change them.
    reach = TeamReachCache()
    search = wire_search(settings, infra, uow, index, aiwfe, pieces.connections, reach)
    auth_throttle = AuthThrottle(
        infra.auth_failures,
        uow,
        throttle_policy(settings),
        on_failure=lambda kind: infra.metrics.auth_failures.labels(kind).inc(),
        on_lockout=lambda scope: infra.metrics.auth_lockouts.labels(scope).inc(),
    )
    authenticator = Authenticator(uow, infra.jwt, auth_throttle)
    revocations = Revocations(
        infra.bus,
        still_valid=authenticator.invalid_subjects,
        # In-process bus: a revocation by another process (the CLI) is seen at the recheck.
        recheck_interval=30.0 if settings.redis_url is not None else 2.0,
        on_revoked=infra.metrics.sessions_revoked.inc,
    )
    realtime = wire_realtime(infra, uow, sync.trigger, overrides, revocations)
    scheduler, notifications = sync.scheduler, realtime.notifications
    preferences = PreferencesService(
        uow,
        settings.sync.interval_seconds,
        listeners=[
            lambda user_id, chosen: scheduler.set_interval(user_id, chosen.sync_frequency_seconds),
            lambda user_id, chosen: notifications.update(user_id, chosen.notifications),
        ],
    )
    assets = AssetService(
        uow, infra.events, asset_limits(settings), signals.local_write, team_events, reach
    )
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
        authenticator=authenticator,
        auth_throttle=auth_throttle,
        rate_limiter=infra.rate_limiter,
        revocations=revocations,
        events=infra.events,
        secrets=infra.secrets,
        assets=assets,
        context=ContextService(uow, ContextChangeTap(infra.events, search.pusher.notify)),
        privacy=PrivacyService(
            uow,
            infra.cache,
            event_log=infra.event_log,
            rate_limiter=infra.rate_limiter,
            purge_hooks=[search.purge_user],
            revocations=revocations,
            team_events=team_events,
        ),
        accounts=AccountService(uow, revocations),
        preferences=preferences,
        teams=TeamService(uow, team_events),
        team_access=TeamAccess(uow),
        sharing=SharingService(uow, team_events, reach),
        saving=SaveService(uow, assets),
        revisions=RevisionService(uow),
        overview=StatusOverview(
            uow,
            sync.pieces,
            sync.scheduler,
            sync.progress,
            search.queue.depth,
            aiwfe_configured=aiwfe is not None,
        ),
        health_checks=infra.health_checks,
        sync=sync,
        search=search,
        realtime=realtime,
        bridge=wire_bridge(settings, hub, pieces, uow, revocations),
        closers=closers,
    )
