"""SQL repository of paired bridges (DEVIATIONS 5)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pieces_integration.adapters.sql._time import aware, aware_required
from pieces_integration.adapters.sql.tables import bridges
from pieces_integration.domain.bridge import Bridge


def _row_to_bridge(row: Any) -> Bridge:
    return Bridge(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        created_at=aware_required(row.created_at),
        pairing_hash=row.pairing_hash,
        pairing_expires_at=aware(row.pairing_expires_at),
        credential_hash=row.credential_hash,
        device_hash=row.device_hash,
        paired_at=aware(row.paired_at),
        last_seen_at=aware(row.last_seen_at),
        agent_version=row.agent_version,
        revoked_at=aware(row.revoked_at),
    )


def _values(bridge: Bridge) -> dict[str, Any]:
    return {
        "user_id": bridge.user_id,
        "name": bridge.name,
        "pairing_hash": bridge.pairing_hash,
        "pairing_expires_at": bridge.pairing_expires_at,
        "credential_hash": bridge.credential_hash,
        "device_hash": bridge.device_hash,
        "created_at": bridge.created_at,
        "paired_at": bridge.paired_at,
        "last_seen_at": bridge.last_seen_at,
        "agent_version": bridge.agent_version,
        "revoked_at": bridge.revoked_at,
    }


class SqlBridgeRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, bridge: Bridge) -> None:
        await self._conn.execute(sa.insert(bridges).values(id=bridge.id, **_values(bridge)))

    async def get(self, bridge_id: str) -> Bridge | None:
        row = (
            await self._conn.execute(sa.select(bridges).where(bridges.c.id == bridge_id))
        ).first()
        return None if row is None else _row_to_bridge(row)

    async def by_pairing_hash(self, pairing_hash: str) -> Bridge | None:
        query = sa.select(bridges).where(bridges.c.pairing_hash == pairing_hash)
        row = (await self._conn.execute(query)).first()
        return None if row is None else _row_to_bridge(row)

    async def save(self, bridge: Bridge) -> None:
        await self._conn.execute(
            sa.update(bridges).where(bridges.c.id == bridge.id).values(**_values(bridge))
        )

    async def list_for(self, user_id: str) -> list[Bridge]:
        query = (
            sa.select(bridges)
            .where(bridges.c.user_id == user_id, bridges.c.revoked_at.is_(None))
            .order_by(bridges.c.created_at)
        )
        return [_row_to_bridge(row) for row in (await self._conn.execute(query)).all()]
