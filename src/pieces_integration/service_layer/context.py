"""Context use cases: read, update (with history and an outbox message toward AIWFE), history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pieces_integration.domain.auth import Principal, ensure_can_write, resolve_user
from pieces_integration.domain.context import apply_update, shareable
from pieces_integration.domain.events import EventType
from pieces_integration.domain.model import ContextChange, OutboxMessage, UserContext
from pieces_integration.domain.outbox import OutboxOperation
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.auth import ensure_user
from pieces_integration.service_layer.events import EventPublisher, to_jsonable


@dataclass
class ContextService:
    uow: UnitOfWorkFactory
    events: EventPublisher

    async def get(self, principal: Principal, user_id: str) -> UserContext:
        owner = resolve_user(principal, user_id)
        async with self.uow(readonly=True) as uow:
            context = await uow.contexts.get(owner)
        return context or UserContext(user_id=owner)

    async def update(
        self, principal: Principal, user_id: str, updates: dict[str, Any], *, source: str = "user"
    ) -> UserContext:
        ensure_can_write(principal)
        owner = resolve_user(principal, user_id)
        async with self.uow() as uow:
            user = await ensure_user(uow, owner, principal.role)
            current = await uow.contexts.get(owner) or UserContext(user_id=owner)
            updated, changes = apply_update(current, updates, source=source)
            if not changes:
                return current
            await uow.contexts.save(updated)
            for change in changes:
                await uow.contexts.add_change(change)
            outgoing = shareable(changes, user.consent) if source != "aiwfe" else []
            if outgoing:
                await uow.outbox.add(
                    OutboxMessage(
                        user_id=owner,
                        target="aiwfe",
                        operation=OutboxOperation.CONTEXT_UPDATE,
                        aggregate_id=owner,
                        payload={
                            "version": updated.version,
                            "fields": {c.field: to_jsonable(c.new_value) for c in outgoing},
                        },
                        idempotency_key=f"aiwfe:context.update:{owner}:{updated.version}",
                    )
                )
            await uow.commit()
        await self.events.publish(
            owner,
            EventType.CONTEXT_CHANGED,
            {
                "user_id": owner,
                "old_context": current,
                "new_context": updated,
                "changes": changes,
            },
        )
        return updated

    async def history(
        self, principal: Principal, user_id: str, *, limit: int, since: datetime | None
    ) -> list[ContextChange]:
        owner = resolve_user(principal, user_id)
        async with self.uow(readonly=True) as uow:
            return await uow.contexts.history(owner, limit=limit, since=since)
