"""Unit of work over one SQL connection and transaction.

`async with uow:` opens a transaction; `await uow.commit()` makes it durable; leaving
the block without a commit rolls back. On SQLite (one process, one writer) write units
are serialised by an in-process lock so they queue instead of failing with
"database is locked"; read-only units run beside them thanks to WAL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from pieces_integration.adapters.sql.accounts import (
    SqlApiKeyRepository,
    SqlAuditRepository,
    SqlConnectionRepository,
    SqlUserRepository,
)
from pieces_integration.adapters.sql.conflicts import SqlConflictRepository
from pieces_integration.adapters.sql.contexts import SqlContextRepository
from pieces_integration.adapters.sql.engine import is_sqlite
from pieces_integration.adapters.sql.feedback import SqlFeedbackRepository
from pieces_integration.adapters.sql.index_queue import IndexChanges, QueueingAssetRepository
from pieces_integration.adapters.sql.operations import (
    SqlOutboxRepository,
    SqlSyncRunRepository,
    SqlUserDataPurger,
    SqlWebhookInbox,
)
from pieces_integration.ports.storage import (
    ApiKeyRepository,
    AssetRepository,
    AuditRepository,
    ConflictRepository,
    ConnectionRepository,
    ContextRepository,
    FeedbackRepository,
    OutboxRepository,
    SyncRunRepository,
    UserDataPurger,
    UserRepository,
    WebhookInbox,
)

# Called after each successful commit with the assets it wrote (the search keyword tier).
AfterCommitHook = Callable[[IndexChanges], Awaitable[None]]


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

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        write_lock: asyncio.Lock | None,
        readonly: bool = False,
        after_commit: list[AfterCommitHook] | None = None,
    ) -> None:
        self._engine = engine
        self._after_commit = after_commit or []
        self.index_changes = IndexChanges()
        self._write_lock = None if readonly else write_lock
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
            await self._write_lock.acquire()
        try:
            self._connection = await self._engine.connect()
            self._transaction = await self._connection.begin()
        except BaseException:
            await self._release()
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
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._transaction is not None and self._transaction.is_active:
                await self._transaction.rollback()
        finally:
            await self._release()

    async def _release(self) -> None:
        try:
            if self._connection is not None:
                await self._connection.close()
        finally:
            self._connection = None
            self._transaction = None
            if self._write_lock is not None and self._write_lock.locked():
                self._write_lock.release()

    async def commit(self) -> None:
        if self._readonly:
            raise RuntimeError("a read-only unit of work cannot commit")
        if self._transaction is None:
            raise RuntimeError("unit of work used outside `async with uow:`")
        await self._transaction.commit()
        changes = self.index_changes.drain()
        if changes:
            for hook in self._after_commit:
                await hook(changes)

    async def rollback(self) -> None:
        if self._transaction is not None and self._transaction.is_active:
            await self._transaction.rollback()


class SqlUnitOfWorkFactory:
    """Makes units of work on one engine; owns the SQLite write lock."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._write_lock = asyncio.Lock() if is_sqlite(engine) else None
        # Hooks must not raise (the transaction is already committed) and must not open a
        # unit of work (on SQLite the write lock is still held while they run).
        self.after_commit: list[AfterCommitHook] = []

    def __call__(self, *, readonly: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self.engine,
            write_lock=self._write_lock,
            readonly=readonly,
            after_commit=self.after_commit,
        )
