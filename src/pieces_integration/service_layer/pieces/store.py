"""The `ConnectionStore` of the Pieces use cases, on the unit of work's connection repository."""

from __future__ import annotations

from pieces_integration.domain.model import Connection, ConnectionKind, Role
from pieces_integration.ports.pieces import StoredConnection
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.auth import ensure_user


class UowPiecesConnectionStore:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def get(self, user_id: str) -> StoredConnection | None:
        async with self._uow(readonly=True) as uow:
            connection = await uow.connections.get(user_id, ConnectionKind.PIECES)
            if connection is None:
                return None
            sealed = await uow.connections.get_secret_ciphertext(user_id, ConnectionKind.PIECES)
        return StoredConnection(connection, sealed)

    async def save(self, connection: Connection, *, sealed_secret: bytes | None) -> None:
        async with self._uow() as uow:
            await ensure_user(uow, connection.user_id, Role.USER)
            await uow.connections.save(connection, sealed_secret)
            await uow.commit()

    async def delete(self, user_id: str) -> None:
        async with self._uow() as uow:
            await uow.connections.delete(user_id, ConnectionKind.PIECES)
            await uow.commit()
