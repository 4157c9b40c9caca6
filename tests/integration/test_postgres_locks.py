"""The `sync:<user>` lock on PostgreSQL advisory locks (replicas without Redis)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from pieces_integration.adapters.sql.engine import create_engine
from pieces_integration.adapters.sql.locks import PostgresLocks
from pieces_integration.ports.infrastructure import LockUnavailable
from tests.conftest import POSTGRES_URL

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]


@pytest.fixture
def namespace() -> str:
    return f"locks-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def replicas(namespace: str) -> AsyncIterator[tuple[PostgresLocks, PostgresLocks]]:
    """Two replicas: two engines (connection pools) on one database."""
    first, second = create_engine(POSTGRES_URL), create_engine(POSTGRES_URL)
    try:
        yield (
            PostgresLocks(first, namespace=namespace),
            PostgresLocks(second, namespace=namespace),
        )
    finally:
        await first.dispose()
        await second.dispose()


async def test_one_holder_across_replicas_and_tokens_grow(
    replicas: tuple[PostgresLocks, PostgresLocks],
) -> None:
    mine, theirs = replicas
    async with mine.hold("sync:alice") as first:
        with pytest.raises(LockUnavailable):
            async with theirs.hold("sync:alice", wait=0):
                pass
        async with theirs.hold("sync:bob", wait=0):  # other names are free
            pass
    async with theirs.hold("sync:alice", wait=0) as second:
        assert second > first


async def test_a_waiter_gets_the_lock_when_it_is_released(
    replicas: tuple[PostgresLocks, PostgresLocks],
) -> None:
    mine, theirs = replicas
    holding = asyncio.Event()

    async def hold_briefly() -> None:
        async with mine.hold("sync:carol"):
            holding.set()
            await asyncio.sleep(0.3)

    task = asyncio.create_task(hold_briefly())
    await holding.wait()
    started = time.monotonic()
    async with theirs.hold("sync:carol", wait=5):
        assert time.monotonic() - started >= 0.2
    await task


async def test_namespaces_do_not_collide(namespace: str) -> None:
    engine = create_engine(POSTGRES_URL)
    try:
        here = PostgresLocks(engine, namespace=namespace)
        elsewhere = PostgresLocks(engine, namespace=namespace + "-other")
        async with here.hold("sync:dave"), elsewhere.hold("sync:dave", wait=0):
            pass
    finally:
        await engine.dispose()


async def test_a_killed_holder_releases_the_lock_at_once(
    replicas: tuple[PostgresLocks, PostgresLocks], namespace: str
) -> None:
    """kill -9 of the replica holding the lock: no lease to wait out."""
    _, theirs = replicas
    holder = textwrap.dedent(
        f"""
        import asyncio, sys
        from pieces_integration.adapters.sql.engine import create_engine
        from pieces_integration.adapters.sql.locks import PostgresLocks

        async def main():
            locks = PostgresLocks(create_engine({POSTGRES_URL!r}), namespace={namespace!r})
            async with locks.hold("sync:erin"):
                print("held", flush=True)
                await asyncio.sleep(600)

        asyncio.run(main())
        """
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", holder, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert line.strip() == b"held"
        with pytest.raises(LockUnavailable):
            async with theirs.hold("sync:erin", wait=0):
                pass
        os.kill(process.pid, signal.SIGKILL)
        await asyncio.wait_for(process.wait(), 10)
        started = time.monotonic()
        async with theirs.hold("sync:erin", wait=10):
            assert time.monotonic() - started < 5
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_cancelled_holder_leaves_nothing_behind(
    replicas: tuple[PostgresLocks, PostgresLocks],
) -> None:
    mine, theirs = replicas

    async def hold_forever() -> None:
        async with mine.hold("sync:fay"):
            await asyncio.sleep(600)

    task = asyncio.create_task(hold_forever())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with theirs.hold("sync:fay", wait=2):
        pass


async def test_bootstrap_takes_advisory_locks_on_postgresql_without_redis() -> None:
    from pieces_integration.adapters.memory import MemoryLocks
    from pieces_integration.bootstrap import bootstrap
    from pieces_integration.config import load_settings

    container = bootstrap(load_settings(database_url=POSTGRES_URL, database_schema="public"))
    try:
        assert isinstance(container.locks, PostgresLocks)
    finally:
        await container.aclose()
    embedded = bootstrap(load_settings())
    try:
        assert isinstance(embedded.locks, MemoryLocks)
    finally:
        await embedded.aclose()
