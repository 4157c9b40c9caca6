"""Live team events (issue 16): `asset_shared`, `team_asset_updated`, `team_member_changed`.

Each event is published once to every current member's own event log, so it travels the
same way as their other events: resumable by event id, fanned out to every replica, and
filtered by each member's notification preferences on the way to their WebSocket. Members
are read at publish time, so a removed member's sessions receive nothing after the removal.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from pieces_integration.domain.events import EventType
from pieces_integration.domain.model import Asset
from pieces_integration.domain.teams import Membership, TeamRole
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.events import EventPublisher, asset_payload

log = structlog.get_logger(__name__)


@dataclass
class TeamEvents:
    uow: UnitOfWorkFactory
    events: EventPublisher

    async def asset_shared(self, asset: Asset, team_id: str, shared_by: str) -> int:
        payload = {"team_id": team_id, "shared_by": shared_by, "asset": asset_payload(asset)}
        return await self._to_members([team_id], EventType.ASSET_SHARED, payload, skip={shared_by})

    async def asset_updated(self, asset: Asset, updated_by: str, team_ids: list[str]) -> int:
        """To the members of the teams the asset is shared with (the edit read them); its
        owner already gets `asset_updated` on their own stream."""
        payload = {"team_ids": team_ids, "updated_by": updated_by, "asset": asset_payload(asset)}
        return await self._to_members(
            team_ids, EventType.TEAM_ASSET_UPDATED, payload, skip={asset.user_id}
        )

    async def member_changed(
        self, team_id: str, user_id: str, change: str, role: TeamRole | None, by: str
    ) -> int:
        """`change`: added | role_changed | removed. The member concerned is told too, so a
        removed member's console learns it is out."""
        payload = {
            "team_id": team_id,
            "user_id": user_id,
            "change": change,
            "role": role.value if role else None,
            "by": by,
        }
        return await self._to_members(
            [team_id], EventType.TEAM_MEMBER_CHANGED, payload, also={user_id}
        )

    async def _to_members(
        self,
        team_ids: Iterable[str],
        event_type: EventType,
        payload: dict[str, Any],
        *,
        skip: Collection[str] = (),
        also: Collection[str] = (),
    ) -> int:
        async with self.uow(readonly=True) as uow:
            members: list[Membership] = []
            for team_id in team_ids:
                members += await uow.teams.members(team_id)
        recipients = sorted(({m.user_id for m in members} | set(also)) - set(skip))
        for user_id in recipients:
            await self.events.publish(user_id, event_type, payload)
        log.debug("team_event", type=event_type.value, recipients=len(recipients))
        return len(recipients)
