"""No unit of work can stall the others (on SQLite, the write lock; the same contract holds
on PostgreSQL): not a slow after-commit hook, not a cancelled unit, not a long wait.

A request that waited behind another unit until its client gave up (the API fuzz test's
10 s ReadTimeout) is what these guard against.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable

import anyio
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from pieces_integration.adapters.sql.index_changes import IndexChanges
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.domain.model import Asset, AuditEntry, User

pytestmark = pytest.mark.anyio

PROMPT = 3.0  # seconds: far more than any of these writes needs, far less than a hang


async def add_user(uow_factory: SqlUnitOfWorkFactory, user_id: str) -> None:
    async with uow_factory() as uow:
        await uow.users.add(User(id=user_id))
        await uow.commit()


async def add_asset(uow_factory: SqlUnitOfWorkFactory, name: str) -> Asset:
    asset_id = f"{name}-0000-0000-0000-000000000000"[:36]
    asset = Asset(id=asset_id, user_id="u1", name=name, content=f"content of {name}")
    async with uow_factory() as uow:
        if await uow.users.get("u1") is None:
            await uow.users.add(User(id="u1"))
        await uow.assets.add(asset)
        await uow.commit()
    return asset


def require_sqlite(uow_factory: SqlUnitOfWorkFactory) -> None:
    if uow_factory.engine.dialect.name != "sqlite":
        pytest.skip("only SQLite serialises writers (its write lock)")


async def test_a_slow_after_commit_hook_does_not_hold_up_other_writes(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    hook_running, release = anyio.Event(), anyio.Event()

    async def slow_hook(changes: IndexChanges) -> None:
        hook_running.set()
        await release.wait()

    uow_factory.after_commit.append(slow_hook)
    async with anyio.create_task_group() as tg:
        tg.start_soon(add_asset, uow_factory, "slow")
        await hook_running.wait()
        with anyio.fail_after(PROMPT):
            await add_user(uow_factory, "u2")
        release.set()


async def test_an_after_commit_hook_may_write_through_a_unit_of_work(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    async def audit_hook(changes: IndexChanges) -> None:
        async with uow_factory() as uow:
            details = {"assets": sorted(changes.upserted)}
            await uow.audit.add(AuditEntry("indexed", actor_id=None, details=details))
            await uow.commit()

    uow_factory.after_commit.append(audit_hook)
    with anyio.fail_after(PROMPT):
        asset = await add_asset(uow_factory, "hooked")
    async with uow_factory(readonly=True) as uow:
        entries = await uow.audit.entries()
    assert [(e.action, e.details) for e in entries] == [("indexed", {"assets": [asset.id]})]


async def test_hooks_do_not_run_for_a_rolled_back_unit(uow_factory: SqlUnitOfWorkFactory) -> None:
    seen: list[IndexChanges] = []

    async def hook(changes: IndexChanges) -> None:
        seen.append(changes)

    uow_factory.after_commit.append(hook)
    await add_user(uow_factory, "u1")
    async with uow_factory() as uow:
        await uow.assets.add(Asset(id="never", user_id="u1", name="never", content="x"))
    assert seen == []


def cancel_with_anyio(work: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """A deadline around `work` (what schemathesis and Starlette do): anyio cancels again
    at every await until the scope is left, cleanup included."""

    async def run() -> None:
        with anyio.move_on_after(0.2):
            await work()

    return run


def cancel_with_asyncio(work: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """A bare `task.cancel()` (asyncio timeouts and task groups): one CancelledError."""

    async def run() -> None:
        task = asyncio.ensure_future(work())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    return run


@pytest.mark.parametrize("cancel", [cancel_with_anyio, cancel_with_asyncio])
async def test_a_cancelled_unit_rolls_back_and_returns_its_connection(
    uow_factory: SqlUnitOfWorkFactory,
    cancel: Callable[[Callable[[], Awaitable[None]]], Callable[[], Awaitable[None]]],
) -> None:
    """Cancelled mid-transaction, the unit still rolls back on its connection and only then
    frees the write lock; it does not abandon the connection to a forced close, which left
    the transaction to end whenever the driver got to it."""
    discarded: list[object] = []
    event.listen(uow_factory.engine.sync_engine, "invalidate", lambda *a: discarded.append(a))

    async def stuck_writer() -> None:
        async with uow_factory() as uow:
            await uow.users.add(User(id="cancelled"))
            await anyio.sleep_forever()

    await cancel(stuck_writer)()
    assert discarded == []
    with anyio.fail_after(PROMPT):
        await add_user(uow_factory, "next")
    async with uow_factory(readonly=True) as uow:
        assert await uow.users.get("cancelled") is None
        assert await uow.users.get("next") is not None


async def test_a_cancelled_hook_still_frees_the_lock(uow_factory: SqlUnitOfWorkFactory) -> None:
    async def endless_hook(changes: IndexChanges) -> None:
        await anyio.sleep_forever()

    uow_factory.after_commit.append(endless_hook)
    with anyio.move_on_after(0.2):
        await add_asset(uow_factory, "endless")
    uow_factory.after_commit.clear()
    with anyio.fail_after(PROMPT):
        await add_user(uow_factory, "next")


async def test_waiting_for_the_write_lock_is_bounded(uow_factory: SqlUnitOfWorkFactory) -> None:
    require_sqlite(uow_factory)
    impatient = SqlUnitOfWorkFactory(uow_factory.engine, lock_timeout=0.2)
    holder = impatient()
    async with holder:
        with anyio.fail_after(PROMPT), pytest.raises(DependencyUnavailable) as caught:
            async with impatient():
                pass
    assert caught.value.upstream == "database"
    async with impatient() as uow:  # the lock is free again, and nothing leaked
        await uow.users.add(User(id="after"))
        await uow.commit()


async def test_another_process_holding_sqlite_too_long_is_a_503_not_a_500(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    require_sqlite(uow_factory)
    other_process = sqlite3.connect(str(make_url(str(uow_factory.engine.url)).database))
    try:
        other_process.execute("BEGIN IMMEDIATE")  # what a CLI command's write looks like
        with anyio.fail_after(PROMPT), pytest.raises(DependencyUnavailable):
            async with uow_factory() as uow:
                await uow.connection.exec_driver_sql("PRAGMA busy_timeout=100")
                await uow.users.add(User(id="blocked"))
                await uow.commit()
    finally:
        other_process.rollback()
        other_process.close()
    with anyio.fail_after(PROMPT):
        await add_user(uow_factory, "after")
