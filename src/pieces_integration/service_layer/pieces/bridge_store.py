"""The `BridgeStore` of the bridge use cases, each call in its own unit of work."""

from __future__ import annotations

from pieces_integration.domain.bridge import Bridge
from pieces_integration.domain.model import Role
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.auth import ensure_user


class UowBridgeStore:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def add(self, bridge: Bridge) -> None:
        async with self._uow() as uow:
            await ensure_user(uow, bridge.user_id, Role.USER)
            await uow.bridges.add(bridge)
            await uow.commit()

    async def get(self, bridge_id: str) -> Bridge | None:
        async with self._uow(readonly=True) as uow:
            return await uow.bridges.get(bridge_id)

    async def by_pairing_hash(self, pairing_hash: str) -> Bridge | None:
        async with self._uow(readonly=True) as uow:
            return await uow.bridges.by_pairing_hash(pairing_hash)

    async def save(self, bridge: Bridge) -> None:
        async with self._uow() as uow:
            await uow.bridges.save(bridge)
            await uow.commit()

    async def list_for(self, user_id: str) -> list[Bridge]:
        async with self._uow(readonly=True) as uow:
            return await uow.bridges.list_for(user_id)
