"""The composition root: the only module that builds adapters from configuration.

`bootstrap(settings)` returns a `Container` holding every adapter the service layer needs.
With no DATABASE_URL / REDIS_URL it wires the embedded default (SQLite, in-process cache,
bus and locks); with them, PostgreSQL and Redis. Tests pass their own pieces as keywords.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from pieces_integration.adapters.memory import MemoryCache, MemoryEventBus, MemoryLocks
from pieces_integration.adapters.sql.engine import create_engine
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.config import Settings
from pieces_integration.observability.metrics import Metrics
from pieces_integration.ports.infrastructure import Cache, EventBus, Locks
from pieces_integration.service_layer.health import HealthCheck


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
    health_checks: list[HealthCheck] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    _closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    def on_close(self, closer: Callable[[], Awaitable[object]]) -> None:
        self._closers.append(closer)

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
        closers.append(redis_client.aclose)

        async def redis_probe() -> None:
            assert redis_client is not None
            await redis_client.ping()

        checks.append(HealthCheck("redis", redis_probe, timeout=3.0, critical=True))

    cache = cache or MemoryCache(
        max_entries=settings.cache.max_size, default_ttl=settings.cache.default_ttl
    )
    bus = bus or MemoryEventBus()
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
        url = settings.aiwfe_api_url.rstrip("/") + "/health"
        checks.append(
            HealthCheck("aiwfe", _http_probe(http_client, url), timeout=5.0, critical=False)
        )

    container = Container(
        settings=settings,
        engine=engine,
        uow=SqlUnitOfWorkFactory(engine),
        cache=cache,
        bus=bus,
        locks=locks,
        metrics=metrics,
        http=http_client,
        health_checks=checks,
    )
    for closer in closers:
        container.on_close(closer)
    return container
