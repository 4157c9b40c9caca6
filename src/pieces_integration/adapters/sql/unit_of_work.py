"""Unit of work over one SQL connection and transaction.

`async with uow:` opens a transaction; `await uow.commit()` makes it durable; leaving
the block without a commit rolls back. On SQLite (one process, one writer) write units
are serialised by an in-process lock so they queue instead of failing with
"database is locked"; read-only units run beside them thanks to WAL.

No unit may stall the others behind that lock:
* it is held only as long as the transaction: after-commit hooks run once the connection
  is closed and the lock released;
* waiting for it is bounded (`lock_timeout`), and so is SQLite's own wait for another
  process's write (`busy_timeout`); either ends in DependencyUnavailable (HTTP 503);
* leaving the block (rollback, close, then release) runs to its end even while the task is
  being cancelled, so the lock is never freed while the transaction is still open. (A
  statement cut off mid-flight is the exception: SQLAlchemy discards that connection and the
  driver finishes it on its own thread; the next writer waits for it within busy_timeout.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, Self

import anyio
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from pieces_integration.adapters.sql.accounts import (
    SqlApiKeyRepository,
    SqlAuditRepository,
    SqlConnectionRepository,
    SqlUserRepository,
)
from pieces_integration.adapters.sql.bridges import SqlBridgeRepository
from pieces_integration.adapters.sql.conflicts import SqlConflictRepository
from pieces_integration.adapters.sql.contexts import SqlContextRepository
from pieces_integration.adapters.sql.engine import WRITE_WAIT_SECONDS, is_sqlite
from pieces_integration.adapters.sql.feedback import SqlFeedbackRepository
from pieces_integration.adapters.sql.index_changes import IndexChanges, QueueingAssetRepository
from pieces_integration.adapters.sql.operations import (
    SqlOutboxRepository,
    SqlSyncRunRepository,
    SqlUserDataPurger,
    SqlWebhookInbox,
)
from pieces_integration.adapters.sql.preferences import SqlPreferencesRepository
from pieces_integration.adapters.sql.revisions import SqlRevisionRepository
from pieces_integration.adapters.sql.teams import SqlTeamRepository
from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.ports.bridge import BridgeStore
from pieces_integration.ports.revisions import RevisionRepository
from pieces_integration.ports.storage import (
    ApiKeyRepository,
    AssetRepository,
    AuditRepository,
    ConflictRepository,
    ConnectionRepository,
    ContextRepository,
    FeedbackRepository,
    OutboxRepository,
    PreferencesRepository,
    SyncRunRepository,
    UserDataPurger,
    UserRepository,
    WebhookInbox,
)
from pieces_integration.ports.teams import TeamRepository

# Called after each successful commit with the assets it wrote (the search keyword tier).
AfterCommitHook = Callable[[IndexChanges], Awaitable[None]]


def _database_busy(waited: str) -> DependencyUnavailable:
    return DependencyUnavailable(
        f"the database is busy with another write ({waited}); retry shortly",
        upstream="database",
    )


async def _to_the_end(work: Coroutine[Any, Any, None]) -> None:
    """Await `work` to its end even if this task is cancelled meanwhile, then re-raise that.

    A plain `await` in cleanup is not enough: anyio re-delivers a cancellation at every await
    inside a cancelled scope (the shield stops that), and a bare `task.cancel()` (asyncio
    timeouts, task groups) still interrupts a shielded await once. As its own task, the work
    is out of reach of both.
    """
    task = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    with anyio.CancelScope(shield=True):
        while not task.done():
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError as exc:
                cancelled = exc
    if cancelled is not None:
        if not task.cancelled() and (error := task.exception()) is not None:
            cancelled.__context__ = error  # the cancellation wins; keep the error in its trace
        raise cancelled
    await task  # its own error, if any


class SqlUnitOfWork:
    # Typed by port (protocol attributes are invariant); built in __aenter__.
    users: UserRepository
    assets: AssetRepository
    contexts: ContextRepository
    connections: ConnectionRepository
    api_keys: ApiKeyRepository
    audit: AuditRepository
    outbox: OutboxRepository
    sync_runs: SyncRunRepository
    webhooks: WebhookInbox
    feedback: FeedbackRepository
    purger: UserDataPurger
    conflicts: ConflictRepository
    preferences: PreferencesRepository
    bridges: BridgeStore
    teams: TeamRepository
    revisions: RevisionRepository

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        write_lock: asyncio.Lock | None,
        readonly: bool = False,
        after_commit: list[AfterCommitHook] | None = None,
        lock_timeout: float = WRITE_WAIT_SECONDS,
    ) -> None:
        self._engine = engine
        self._after_commit = after_commit or []
        self.index_changes = IndexChanges()
        self._committed: list[IndexChanges] = []  # handed to the hooks on the way out
        self._write_lock = None if readonly else write_lock
        self._lock_timeout = lock_timeout
        self._holds_lock = False
        self._readonly = readonly
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("unit of work used outside `async with uow:`")
        return self._connection

    async def __aenter__(self) -> Self:
        if self._write_lock is not None:
            try:
                async with asyncio.timeout(self._lock_timeout):
                    await self._write_lock.acquire()
            except TimeoutError:
                raise _database_busy(f"waited {self._lock_timeout:g} s for it") from None
            self._holds_lock = True
        try:
            self._connection = await self._engine.connect()
            self._transaction = await self._connection.begin()
        except BaseException:
            await _to_the_end(self._close())
            raise
        conn = self._connection
        self.users = SqlUserRepository(conn)
        self.assets = QueueingAssetRepository(conn, self.index_changes)
        self.contexts = SqlContextRepository(conn)
        self.connections = SqlConnectionRepository(conn)
        self.api_keys = SqlApiKeyRepository(conn)
        self.audit = SqlAuditRepository(conn)
        self.outbox = SqlOutboxRepository(conn)
        self.sync_runs = SqlSyncRunRepository(conn)
        self.webhooks = SqlWebhookInbox(conn)
        self.feedback = SqlFeedbackRepository(conn)
        self.purger = SqlUserDataPurger(conn)
        self.conflicts = SqlConflictRepository(conn)
        self.preferences = SqlPreferencesRepository(conn)
        self.bridges = SqlBridgeRepository(conn)
        self.teams = SqlTeamRepository(conn)
        self.revisions = SqlRevisionRepository(conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await _to_the_end(self._close())
        committed, self._committed = self._committed, []
        # A cancelled caller is gone; the durable index queue redoes what its hooks would.
        if exc is None or isinstance(exc, Exception):
            for changes in committed:
                for hook in self._after_commit:
                    await hook(changes)
        if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
            # SQLite gave up waiting (busy_timeout) for another process's write.
            raise _database_busy("another process holds it") from exc

    async def _close(self) -> None:
        """Roll back what is still open, close the connection, then release the lock."""
        try:
            if self._connection is not None:
                # Closing rolls back an open transaction and returns the connection to the
                # pool (or discards it, if a cancelled statement invalidated it).
                await self._connection.close()
        finally:
            self._connection = None
            self._transaction = None
            if self._holds_lock:
                self._holds_lock = False
                # bandit B101: narrows a type for mypy; holds by construction, no input reaches it.
                assert self._write_lock is not None  # nosec B101
                self._write_lock.release()

    async def commit(self) -> None:
        if self._readonly:
            raise RuntimeError("a read-only unit of work cannot commit")
        if self._transaction is None:
            raise RuntimeError("unit of work used outside `async with uow:`")
        await self._transaction.commit()
        changes = self.index_changes.drain()
        if changes:
            self._committed.append(changes)

    async def rollback(self) -> None:
        if self._transaction is not None and self._transaction.is_active:
            await self._transaction.rollback()


class SqlUnitOfWorkFactory:
    """Makes units of work on one engine; owns the SQLite write lock."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        after_commit: Sequence[AfterCommitHook] = (),
        lock_timeout: float = WRITE_WAIT_SECONDS,
    ) -> None:
        self.engine = engine
        self._write_lock = asyncio.Lock() if is_sqlite(engine) else None
        self._lock_timeout = lock_timeout
        # Hooks run as the unit is left, after its commit, with the connection closed and
        # the write lock released. They must not raise (the transaction is committed); they
        # may be slow or open a unit of work. Hooks of concurrent units may interleave: the
        # index queue, written in the same transactions, settles whatever they leave stale.
        self.after_commit: list[AfterCommitHook] = list(after_commit)

    def __call__(self, *, readonly: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self.engine,
            write_lock=self._write_lock,
            readonly=readonly,
            after_commit=self.after_commit,
            lock_timeout=self._lock_timeout,
        )
