"""The sealed secrets of `connections`, for key rotation.

`SqlSecretRepository` works inside a caller's transaction. `SqlSecretStore` gives every call
its own short unit of work, so a rotation never holds a long transaction (or, on SQLite, the
write lock) while the service keeps serving.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pieces_integration.adapters.sql.tables import connections
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.domain.model import ConnectionKind
from pieces_integration.domain.secrets import SecretRef, StoredSecret


class SqlSecretRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def page(self, *, after: SecretRef | None, limit: int) -> list[StoredSecret]:
        c = connections.c
        query = (
            sa.select(c.user_id, c.kind, c.secret_ciphertext)
            .where(c.secret_ciphertext.is_not(None))
            .order_by(c.user_id, c.kind)
            .limit(limit)
        )
        if after is not None:
            # Keyset pagination on the (user_id, kind) unique key: stable while rows change.
            query = query.where(
                sa.or_(
                    c.user_id > after.user_id,
                    sa.and_(c.user_id == after.user_id, c.kind > after.kind.value),
                )
            )
        rows = await self._conn.execute(query)
        return [
            StoredSecret(SecretRef(row[0], ConnectionKind(row[1])), bytes(row[2])) for row in rows
        ]

    async def replace(self, ref: SecretRef, *, expected: bytes, new: bytes) -> bool:
        # Compare-and-swap: a secret the service rewrote meanwhile (a reconnect) is left alone.
        c = connections.c
        result = await self._conn.execute(
            sa.update(connections)
            .where(
                c.user_id == ref.user_id,
                c.kind == ref.kind.value,
                c.secret_ciphertext == expected,
            )
            .values(secret_ciphertext=new)
        )
        return bool(result.rowcount)


class SqlSecretStore:
    """`SecretStore` over a unit-of-work factory: one short transaction per call."""

    def __init__(self, uows: SqlUnitOfWorkFactory) -> None:
        self._uows = uows

    async def page(self, *, after: SecretRef | None, limit: int) -> list[StoredSecret]:
        async with self._uows(readonly=True) as uow:
            return await SqlSecretRepository(uow.connection).page(after=after, limit=limit)

    async def replace(self, ref: SecretRef, *, expected: bytes, new: bytes) -> bool:
        async with self._uows() as uow:
            replaced = await SqlSecretRepository(uow.connection).replace(
                ref, expected=expected, new=new
            )
            await uow.commit()
            return replaced
