"""The composition root: the only module that builds adapters from configuration.

`bootstrap(settings)` returns a `Container` holding every adapter the service layer needs.
With no DATABASE_URL / REDIS_URL it wires the embedded default (SQLite, in-process cache,
bus and locks); with them, PostgreSQL and Redis (locks on Redis, else on PostgreSQL advisory
locks). Tests pass their own pieces as keywords.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from pieces_integration.adapters.crypto import SecretBox, build_secret_box
from pieces_integration.adapters.event_log_memory import MemoryEventLog
from pieces_integration.adapters.local_secrets import load_or_create_secret
from pieces_integration.adapters.memory import MemoryCache, MemoryEventBus, MemoryLocks
from pieces_integration.adapters.rate_limiters import MemoryRateLimiter
from pieces_integration.adapters.sql.engine import create_engine
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.config import Settings
from pieces_integration.domain.assets import AssetLimits
from pieces_integration.observability.metrics import Metrics
from pieces_integration.ports.event_log import EventLog
from pieces_integration.ports.infrastructure import Cache, EventBus, Locks
from pieces_integration.ports.rate_limit import RateLimiter
from pieces_integration.service_layer.assets import AssetService
from pieces_integration.service_layer.auth import Authenticator
from pieces_integration.service_layer.conflicts import ConflictService
from pieces_integration.service_layer.context import ContextService
from pieces_integration.service_layer.events import EventPublisher
from pieces_integration.service_layer.health import HealthCheck
from pieces_integration.service_layer.privacy import PrivacyService
from pieces_integration.service_layer.sync_engine import SyncEngine
from pieces_integration.service_layer.sync_scheduler import SyncScheduler

T = TypeVar("T")


@dataclass
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
    assets: AssetService
    context: ContextService
    secrets: SecretBox
    privacy: PrivacyService
    health_checks: list[HealthCheck] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    _closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    def on_close(self, closer: Callable[[], Awaitable[object]]) -> None:
        self._closers.append(closer)

    def _extra(self, name: str, kind: type[T]) -> T:
        value = self.extras.get(name)
        if not isinstance(value, kind):
            raise RuntimeError(f"container has no {name}; build it with bootstrap()")
        return value

    @property
    def sync_engine(self) -> SyncEngine:
        return self._extra("sync_engine", SyncEngine)

    @property
    def scheduler(self) -> SyncScheduler:
        return self._extra("scheduler", SyncScheduler)

    @property
    def conflicts(self) -> ConflictService:
        return self._extra("conflicts", ConflictService)

    async def aclose(self) -> None:
        # Reverse order of construction: users of a resource close before the resource.
        while self._closers:
            closer = self._closers.pop()
            await closer()


def _http_probe(client: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        response = await client.get(url)
        if response.status_code >= 400:
            raise RuntimeError(f"HTTP {response.status_code} from {url}")

    return probe


def asset_limits(settings: Settings) -> AssetLimits:
    api = settings.api
    return AssetLimits(
        max_content_bytes=api.max_asset_bytes,
        max_tags=api.max_tags,
        max_tag_length=api.max_tag_length,
        max_name_length=api.max_name_length,
    )


def _jwt_codec(settings: Settings) -> JwtCodec:
    auth = settings.auth
    secret = auth.jwt_secret.get_secret_value() if auth.jwt_secret else None
    if not (secret or auth.jwt_public_key or auth.jwks_url):
        # Embedded default: a signing secret of our own, kept in the data directory.
        secret = load_or_create_secret(settings.data_dir / "jwt.secret")
    return JwtCodec(
        issuer=auth.jwt_issuer,
        audience=auth.jwt_audience,
        secret=secret,
        public_key=auth.jwt_public_key,
        jwks_url=auth.jwks_url,
    )


def bootstrap(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    cache: Cache | None = None,
    bus: EventBus | None = None,
    locks: Locks | None = None,
    metrics: Metrics | None = None,
    http: httpx.AsyncClient | None = None,
) -> Container:
    metrics = metrics or Metrics()
    engine = engine or create_engine(settings.sqlalchemy_url, schema=settings.database_schema)
    http_client = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
    checks: list[HealthCheck] = []
    closers: list[Callable[[], Awaitable[object]]] = []
    if http is None:
        closers.append(http_client.aclose)
    closers.append(engine.dispose)

    async def database_probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    checks.append(HealthCheck("database", database_probe, timeout=5.0, critical=True))

    rate_limiter: RateLimiter = MemoryRateLimiter()
    redis_client = None
    if settings.redis_url is not None and (cache is None or bus is None or locks is None):
        from pieces_integration.adapters import redis_infra

        redis_client = redis_infra.connect(settings.redis_url.get_secret_value())
        prefix = settings.redis_key_prefix
        cache = cache or redis_infra.RedisCache(
            redis_client, prefix=prefix, default_ttl=settings.cache.default_ttl
        )
        bus = bus or redis_infra.RedisEventBus(redis_client, prefix=prefix)
        locks = locks or redis_infra.RedisLocks(redis_client, prefix=prefix)
        from pieces_integration.adapters.rate_limiters import RedisRateLimiter

        rate_limiter = RedisRateLimiter(redis_client, prefix=prefix)
        closers.append(redis_client.aclose)

        async def redis_probe() -> None:
            assert redis_client is not None
            await redis_client.ping()

        checks.append(HealthCheck("redis", redis_probe, timeout=3.0, critical=True))

    cache = cache or MemoryCache(
        max_entries=settings.cache.max_size, default_ttl=settings.cache.default_ttl
    )
    bus = bus or MemoryEventBus()
    if locks is None and engine.dialect.name == "postgresql":
        # Replicas on one PostgreSQL without Redis still sync each user once at a time.
        from pieces_integration.adapters.sql.locks import PostgresLocks

        locks = PostgresLocks(engine, namespace=settings.database_schema or "")
    locks = locks or MemoryLocks()

    if settings.qdrant_url:
        checks.append(
            HealthCheck(
                "qdrant",
                _http_probe(http_client, settings.qdrant_url.rstrip("/") + "/readyz"),
                timeout=3.0,
                critical=True,
            )
        )
    if settings.pieces.default_url:
        url = settings.pieces.default_url.rstrip("/") + "/.well-known/health"
        checks.append(
            HealthCheck(
                "pieces_default", _http_probe(http_client, url), timeout=2.0, critical=False
            )
        )
    if settings.aiwfe_api_url:
        url = settings.aiwfe_api_url.rstrip("/") + "/v1/health"
        checks.append(
            HealthCheck("aiwfe", _http_probe(http_client, url), timeout=5.0, critical=False)
        )

    uow = SqlUnitOfWorkFactory(engine)
    jwt = _jwt_codec(settings)
    event_log: EventLog
    if redis_client is not None:
        from pieces_integration.adapters.event_log_redis import RedisEventLog

        event_log = RedisEventLog(redis_client, prefix=settings.redis_key_prefix)
    else:
        event_log = MemoryEventLog()
    events = EventPublisher(bus, event_log)
    container = Container(
        settings=settings,
        engine=engine,
        uow=uow,
        cache=cache,
        bus=bus,
        locks=locks,
        metrics=metrics,
        http=http_client,
        jwt=jwt,
        authenticator=Authenticator(uow, jwt),
        rate_limiter=rate_limiter,
        events=events,
        assets=AssetService(uow, events, asset_limits(settings)),
        context=ContextService(uow, events),
        secrets=build_secret_box(
            settings.encryption_key.get_secret_value() if settings.encryption_key else None,
            env=settings.env,
            data_dir=settings.data_dir,
        ),
        privacy=PrivacyService(uow, cache, event_log=event_log, rate_limiter=rate_limiter),
        health_checks=checks,
    )
    for closer in closers:
        container.on_close(closer)
    from pieces_integration.sync_wiring import wire_sync

    wire_sync(container)
    from pieces_integration.search_wiring import wire_search

    wire_search(container)
    return container
