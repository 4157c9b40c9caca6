"""Part of the composition root: storage, cache, bus, locks, the event log, tokens, secrets.

With no DATABASE_URL / REDIS_URL this is the embedded default (SQLite, in-process cache,
bus and locks); with them, PostgreSQL and Redis (locks on Redis, else on PostgreSQL
advisory locks). Every check `/ready` runs is registered here, beside what it checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from pieces_integration.adapters.crypto import SecretBox, build_secret_box
from pieces_integration.adapters.event_log_memory import MemoryEventLog
from pieces_integration.adapters.local_secrets import load_or_create_secret
from pieces_integration.adapters.lockouts import MemoryFailureCounters
from pieces_integration.adapters.memory import MemoryCache, MemoryEventBus, MemoryLocks
from pieces_integration.adapters.rate_limiters import MemoryRateLimiter
from pieces_integration.adapters.sql.engine import create_engine
from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.bootstrap.overrides import Overrides
from pieces_integration.config import Settings
from pieces_integration.observability.metrics import Metrics
from pieces_integration.ports.event_log import EventLog
from pieces_integration.ports.infrastructure import Cache, EventBus, Locks
from pieces_integration.ports.lockouts import FailureCounters
from pieces_integration.ports.rate_limit import RateLimiter
from pieces_integration.service_layer.events import EventPublisher
from pieces_integration.service_layer.health import HealthCheck

Closer = Callable[[], Awaitable[object]]


@dataclass
class Closers:
    """What to close on shutdown, in reverse order of construction (users before resources)."""

    _closers: list[Closer] = field(default_factory=list)

    def add(self, closer: Closer) -> None:
        self._closers.append(closer)

    async def aclose(self) -> None:
        while self._closers:
            await self._closers.pop()()


@dataclass(frozen=True, slots=True)
class Infrastructure:
    engine: AsyncEngine
    cache: Cache
    bus: EventBus
    locks: Locks
    metrics: Metrics
    http: httpx.AsyncClient
    jwt: JwtCodec
    rate_limiter: RateLimiter
    auth_failures: FailureCounters
    event_log: EventLog
    events: EventPublisher
    secrets: SecretBox
    health_checks: tuple[HealthCheck, ...]


def _http_probe(client: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        response = await client.get(url)
        if response.status_code >= 400:
            raise RuntimeError(f"HTTP {response.status_code} from {url}")

    return probe


def jwt_codec(settings: Settings) -> JwtCodec:
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
        tenant_claim=auth.tenant_claim,
    )


def _upstream_checks(settings: Settings, http: httpx.AsyncClient) -> list[HealthCheck]:
    checks = []
    if settings.qdrant_url:
        url = settings.qdrant_url.rstrip("/") + "/readyz"
        checks.append(HealthCheck("qdrant", _http_probe(http, url), timeout=3.0, critical=True))
    if settings.pieces.default_url:
        url = settings.pieces.default_url.rstrip("/") + "/.well-known/health"
        checks.append(
            HealthCheck("pieces_default", _http_probe(http, url), timeout=2.0, critical=False)
        )
    if settings.aiwfe_api_url:
        url = settings.aiwfe_api_url.rstrip("/") + "/v1/health"
        checks.append(HealthCheck("aiwfe", _http_probe(http, url), timeout=5.0, critical=False))
    return checks


def wire_infrastructure(
    settings: Settings, overrides: Overrides, closers: Closers
) -> Infrastructure:
    metrics = overrides.metrics or Metrics()
    engine = overrides.engine or create_engine(
        settings.sqlalchemy_url, schema=settings.database_schema
    )
    http = overrides.http or httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
    if overrides.http is None:
        closers.add(http.aclose)
    closers.add(engine.dispose)

    async def database_probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    checks = [HealthCheck("database", database_probe, timeout=5.0, critical=True)]
    cache, bus, locks = overrides.cache, overrides.bus, overrides.locks
    rate_limiter: RateLimiter = MemoryRateLimiter(clock=overrides.clock)
    auth_failures: FailureCounters = MemoryFailureCounters(clock=overrides.clock)
    event_log: EventLog = overrides.event_log or MemoryEventLog()
    # Tests that pass all three keep everything in-process.
    if settings.redis_url is not None and (cache is None or bus is None or locks is None):
        from pieces_integration.adapters import redis_infra
        from pieces_integration.adapters.event_log_redis import RedisEventLog
        from pieces_integration.adapters.lockouts import RedisFailureCounters
        from pieces_integration.adapters.rate_limiters import RedisRateLimiter

        redis_client = redis_infra.connect(settings.redis_url.get_secret_value())
        prefix = settings.redis_key_prefix
        cache = cache or redis_infra.RedisCache(
            redis_client, prefix=prefix, default_ttl=settings.cache.default_ttl
        )
        bus = bus or redis_infra.RedisEventBus(redis_client, prefix=prefix)
        locks = locks or redis_infra.RedisLocks(redis_client, prefix=prefix)
        rate_limiter = RedisRateLimiter(redis_client, prefix=prefix)
        auth_failures = RedisFailureCounters(redis_client, prefix=prefix)
        event_log = overrides.event_log or RedisEventLog(redis_client, prefix=prefix)
        closers.add(redis_client.aclose)

        async def redis_probe() -> None:
            await redis_client.ping()

        checks.append(HealthCheck("redis", redis_probe, timeout=3.0, critical=True))
    if locks is None and engine.dialect.name == "postgresql":
        # Replicas on one PostgreSQL without Redis still sync each user once at a time.
        from pieces_integration.adapters.sql.locks import PostgresLocks

        locks = PostgresLocks(engine, namespace=settings.database_schema or "")
    checks.extend(_upstream_checks(settings, http))
    return Infrastructure(
        engine=engine,
        cache=cache
        or MemoryCache(max_entries=settings.cache.max_size, default_ttl=settings.cache.default_ttl),
        bus=bus or MemoryEventBus(),
        locks=locks or MemoryLocks(),
        metrics=metrics,
        http=http,
        jwt=jwt_codec(settings),
        rate_limiter=rate_limiter,
        auth_failures=auth_failures,
        event_log=event_log,
        events=EventPublisher(event_log),
        secrets=build_secret_box(
            settings.encryption_key.get_secret_value() if settings.encryption_key else None,
            env=settings.env,
            data_dir=settings.data_dir,
        ),
        health_checks=tuple(checks),
    )
