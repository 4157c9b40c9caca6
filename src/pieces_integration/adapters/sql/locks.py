"""Named locks on PostgreSQL session advisory locks, for replicas that share a database but
no Redis.

A lock lives exactly as long as the connection that took it: a replica that dies, even by
kill -9, loses its connection and PostgreSQL releases the lock at once, so there is no lease
to wait out and nothing to renew. Advisory locks are per database, so the key is a hash of
the schema and the name: deployments (and test runs) on different schemas never collide. The
fencing token is the PostgreSQL transaction id of the acquisition, which only grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.ports.infrastructure import LockUnavailable

_TRY = sa.text("SELECT pg_try_advisory_lock(:key)")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(:key)")
_TOKEN = sa.text("SELECT txid_current()")


def advisory_key(namespace: str, name: str) -> int:
    """A signed 64-bit key (what pg_advisory_lock takes) for `name` within `namespace`."""
    digest = hashlib.sha256(f"{namespace}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresLocks:
    def __init__(self, engine: AsyncEngine, *, namespace: str = "") -> None:
        self._engine = engine
        self._namespace = namespace

    @asynccontextmanager
    async def hold(self, name: str, *, ttl: float = 60.0, wait: float = 0.0) -> AsyncIterator[int]:
        """`ttl` is not needed: the lock ends with its connection (see the module)."""
        key = advisory_key(self._namespace, name)
        try:
            conn = await self._engine.connect()
        except (SQLAlchemyError, OSError) as exc:
            raise _unavailable(exc) from exc
        clean = True  # False while this connection may hold the lock
        try:
            try:
                token = await self._acquire(conn, name, key, wait)
            except LockUnavailable:
                raise
            except BaseException:  # an error or a cancellation may come after the lock
                clean = False
                raise
            clean = False
            try:
                yield token
            finally:
                with contextlib.suppress(SQLAlchemyError, OSError):
                    clean = bool((await conn.execute(_UNLOCK, {"key": key})).scalar_one())
                    await conn.commit()
        finally:
            if not clean:
                # Never hand a connection that may still hold the lock back to the pool:
                # dropping it ends its session, and with it the lock.
                with contextlib.suppress(SQLAlchemyError, OSError):
                    await conn.invalidate()
            with contextlib.suppress(SQLAlchemyError, OSError):
                await conn.close()

    @staticmethod
    async def _acquire(conn: AsyncConnection, name: str, key: int, wait: float) -> int:
        deadline = time.monotonic() + wait
        delay = 0.01
        try:
            while True:
                taken = bool((await conn.execute(_TRY, {"key": key})).scalar_one())
                await conn.commit()  # no transaction left open while the lock is held
                if taken:
                    token = int((await conn.execute(_TOKEN)).scalar_one())
                    await conn.commit()
                    return token
                if time.monotonic() >= deadline:
                    raise LockUnavailable(name)
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 0.2)
        except (SQLAlchemyError, OSError) as exc:
            raise _unavailable(exc) from exc


def _unavailable(exc: BaseException) -> DependencyUnavailable:
    return DependencyUnavailable(f"postgresql lock failed: {exc}"[:300], upstream="database")
