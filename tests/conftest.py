"""Shared fixtures: clean environment, databases (SQLite and PostgreSQL), Redis prefixes.

PostgreSQL and Redis are the real servers on this machine (or TEST_DATABASE_URL /
TEST_REDIS_URL). Each test session gets its own PostgreSQL schema and Redis key prefix,
so concurrent runs never collide; both are removed at the end.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from pieces_integration.adapters.sql import migrate
from pieces_integration.adapters.sql.engine import create_engine
from pieces_integration.adapters.sql.tables import metadata
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.config import SPEC_ENV_NAMES

POSTGRES_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:10]

_ENV_TO_CLEAR = {*SPEC_ENV_NAMES, "CONFIG_FILE", "PIECES_INTEGRATION_ENV"}


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's configuration, and none writes to their data home."""
    for name in list(os.environ):
        if name in _ENV_TO_CLEAR or name.startswith("PIECES_INTEGRATION_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIECES_INTEGRATION_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


@dataclass(frozen=True)
class Database:
    kind: str  # "sqlite" | "postgres"
    url: str
    schema: str | None


async def _postgres(statement: str) -> None:
    engine = create_engine(POSTGRES_URL)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


def new_postgres_schema(tag: str) -> str:
    schema = f"pi_test_{RUN_ID}_{tag}"
    asyncio.run(_postgres(f'CREATE SCHEMA "{schema}"'))
    return schema


def drop_postgres_schema(schema: str) -> None:
    asyncio.run(_postgres(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ],
)
def migrated_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A database at `head`, shared by the session's tests of one backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "test.db"
        database = Database("sqlite", f"sqlite+aiosqlite:///{path}", None)
        migrate.upgrade(database.url)
        yield database
        return
    schema = new_postgres_schema("repo")
    database = Database("postgres", POSTGRES_URL, schema)
    try:
        migrate.upgrade(database.url, schema=schema)
        yield database
    finally:
        drop_postgres_schema(schema)


@pytest.fixture
async def uow_factory(migrated_database: Database) -> AsyncIterator[SqlUnitOfWorkFactory]:
    """A unit-of-work factory on an emptied database."""
    engine = create_engine(migrated_database.url, schema=migrated_database.schema)
    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())
    try:
        yield SqlUnitOfWorkFactory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def redis_prefix() -> str:
    return f"pi-test-{RUN_ID}-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def redis_client(redis_prefix: str) -> AsyncIterator[object]:
    """A real Redis connection; every key under this test's prefix is removed afterwards."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
