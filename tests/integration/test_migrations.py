"""Alembic on both databases: up, down, up again, and no drift from the table models."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pieces_integration.adapters.sql import migrate
from pieces_integration.adapters.sql.engine import create_engine
from pieces_integration.adapters.sql.tables import metadata
from tests.conftest import POSTGRES_URL, Database, drop_postgres_schema, new_postgres_schema


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", None)
        return
    schema = new_postgres_schema("mig_" + uuid.uuid4().hex[:6])
    try:
        yield Database("postgres", POSTGRES_URL, schema)
    finally:
        drop_postgres_schema(schema)


async def _inspect(database: Database) -> tuple[set[str], list[object]]:
    engine = create_engine(database.url, schema=database.schema)
    try:
        async with engine.connect() as conn:

            def examine(sync_conn: sa.Connection) -> tuple[set[str], list[object]]:
                names = set(sa.inspect(sync_conn).get_table_names())
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return names, list(compare_metadata(context, metadata))

            return await conn.run_sync(examine)
    finally:
        await engine.dispose()


def test_upgrade_downgrade_upgrade_and_no_drift(empty_database: Database) -> None:
    url, schema = empty_database.url, empty_database.schema
    migrate.upgrade(url, schema=schema)
    tables, drift = asyncio.run(_inspect(empty_database))
    assert set(metadata.tables) <= tables
    assert drift == [], f"models and migrations differ: {drift}"

    migrate.downgrade(url, "base", schema=schema)
    tables, _ = asyncio.run(_inspect(empty_database))
    assert tables <= {"alembic_version"}

    migrate.upgrade(url, schema=schema)
    tables, drift = asyncio.run(_inspect(empty_database))
    assert set(metadata.tables) <= tables
    assert drift == []


def test_drift_is_detected_when_a_model_changes(empty_database: Database) -> None:
    """The drift check above can fail: a column added to the models only is reported."""
    migrate.upgrade(empty_database.url, schema=empty_database.schema)
    extra = sa.Column("drift_probe", sa.Integer)
    metadata.tables["assets"].append_column(extra)
    try:
        _, drift = asyncio.run(_inspect(empty_database))
    finally:
        metadata.tables["assets"]._columns.remove(extra)  # restore the shared metadata
    assert any("drift_probe" in str(diff) for diff in drift)
