"""Handle one verified AIWFE webhook event: record it once, then apply it.

The route has already checked the signature and parsed the envelope. Everything here
happens in one transaction: the inbox row that makes the event id unique, the assets,
their outbox messages and context changes commit together, so a crash between them
cannot lose or double an effect, and a redelivery is refused as a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from pieces_integration.domain.commands import CreatePiecesAsset
from pieces_integration.domain.context import apply_update
from pieces_integration.domain.events import EventType
from pieces_integration.domain.model import Asset, ContextChange, UserContext, utcnow
from pieces_integration.domain.webhook_events import (
    DuplicateWebhookEvent,
    WebhookEvent,
    WebhookEventType,
    chat_message_of,
)
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.chat_insights import asset_commands_for_message
from pieces_integration.service_layer.events import EventPublisher, asset_payload, to_jsonable

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """Serialised as the API's WebhookResponse."""

    event_id: str
    status: str  # "processed" | "ignored"
    actions: int  # assets created + context fields changed
    reason: str | None = None


def _asset_commands(event: WebhookEvent) -> tuple[list[CreatePiecesAsset], str | None]:
    """Assets an event creates, or why it creates none."""
    kind = event.known_type
    data = event.data
    if kind is WebhookEventType.CHAT_MESSAGE_CREATED:
        chat_id, message = chat_message_of(event)
        title = data.get("chat_title")
        assets = asset_commands_for_message(
            event.user_id, chat_id, message.id, message.role, message.content,
            chat_title=title if isinstance(title, str) else None, event_id=event.id,
        )  # fmt: skip
        return assets, None if assets else "no_code_blocks"
    if kind is WebhookEventType.AGENT_SOLUTION_GENERATED:
        solution_id = str(data.get("solution_id") or event.id)
        content = data.get("content")
        if not isinstance(content, str):
            return [], "no_content"
        chat_id = str(data.get("chat_id") or f"solution:{solution_id}")
        solutions = asset_commands_for_message(
            event.user_id, chat_id, solution_id, "assistant", content, event_id=event.id
        )
        return solutions, None if solutions else "no_code_blocks"
    return [], "unhandled_type" if kind is None else None


def _context_changes(kind: WebhookEventType | None, data: dict[str, Any]) -> dict[str, Any]:
    if kind is WebhookEventType.TASK_CREATED:
        task = data.get("task")
        if isinstance(task, dict) and isinstance(task.get("title"), str):
            return {"current_task": task["title"]}
    elif kind is WebhookEventType.OPPORTUNITY_CREATED:
        opportunity = data.get("opportunity")
        if isinstance(opportunity, dict) and isinstance(opportunity.get("name"), str):
            return {"active_project": opportunity["name"]}
    elif kind is WebhookEventType.CONTEXT_UPDATED:
        context = data.get("context")
        if isinstance(context, dict):
            return _from_aiwfe_context(context)
    return {}


def _from_aiwfe_context(context: dict[str, Any]) -> dict[str, Any]:
    task = context.get("current_task")
    opportunity = context.get("active_opportunity")
    chats = [c for c in context.get("recent_chats") or [] if isinstance(c, dict)]
    return {
        "current_task": task.get("title") if isinstance(task, dict) else None,
        "active_project": opportunity.get("name") if isinstance(opportunity, dict) else None,
        "keywords": list(context.get("keywords") or []),
        "aiwfe_context": {
            "active_chat": chats[0].get("id") if chats else None,
            "recent_queries": list(context.get("recent_queries") or []),
            "current_agent": context.get("current_agent"),
        },
    }


async def handle_aiwfe_event(
    event: WebhookEvent,
    *,
    uow_factory: UnitOfWorkFactory,
    events: EventPublisher | None = None,
    now: datetime | None = None,
) -> WebhookOutcome:
    """Record `event` once and apply it; raise DuplicateWebhookEvent if its id was seen.

    Code blocks become assets (plus `asset.create` toward Pieces); task, opportunity and
    context events update the user's context with history (source "aiwfe", so nothing
    echoes back to AIWFE). An event for an unknown user, or for asset sync the user has
    not consented to, or of a type the user's notification preferences mute, is recorded
    (redeliveries stay duplicates) and otherwise ignored.
    """
    at = now or utcnow()
    created: list[Asset] = []
    context_before: UserContext | None = None
    context_after: UserContext | None = None
    changes: list[ContextChange] = []
    async with uow_factory() as uow:
        first = await uow.webhooks.record_once(
            event.id, source="aiwfe", type=event.type, user_id=event.user_id, at=at
        )
        if not first:
            raise DuplicateWebhookEvent(event.id)
        user = await uow.users.get(event.user_id)
        if user is None:
            await uow.commit()
            log.info("aiwfe_webhook_ignored", event_id=event.id, reason="unknown_user")
            return WebhookOutcome(event.id, "ignored", 0, "unknown_user")
        preferences = await uow.preferences.get(event.user_id)
        if preferences is not None and not preferences.notifications.accepts_webhook(event.type):
            await uow.commit()  # recorded, so a redelivery is still a duplicate
            log.info("aiwfe_webhook_ignored", event_id=event.id, reason="muted_by_preferences")
            return WebhookOutcome(event.id, "ignored", 0, "muted_by_preferences")
        commands, reason = _asset_commands(event)
        if commands and not user.consent.asset_sync:
            commands, reason = [], "asset_sync_not_consented"
        for command in commands:
            if await uow.assets.get(command.asset_id) is not None:
                continue  # this snippet of this message was stored before
            asset = command.to_asset()
            await uow.assets.add(asset)
            await uow.outbox.add(command.to_outbox(asset))
            created.append(asset)
        updates = _context_changes(event.known_type, event.data)
        if updates:
            context_before = await uow.contexts.get(event.user_id) or UserContext(event.user_id)
            context_after, changes = apply_update(context_before, updates, source="aiwfe")
            if changes:
                await uow.contexts.save(context_after)
                for change in changes:
                    # History rows are JSON: nested states (aiwfe_context) go in as plain data.
                    await uow.contexts.add_change(
                        replace(
                            change,
                            old_value=to_jsonable(change.old_value),
                            new_value=to_jsonable(change.new_value),
                        )
                    )
            else:
                reason = "context_unchanged"
        await uow.commit()
    if events is not None:
        for asset in created:
            await events.publish(
                event.user_id,
                EventType.ASSET_CREATED,
                {"asset": asset_payload(asset), "source": "aiwfe"},
            )
        if changes:
            await events.publish(
                event.user_id,
                EventType.CONTEXT_CHANGED,
                {"user_id": event.user_id, "old_context": context_before,
                 "new_context": context_after, "changes": changes},
            )  # fmt: skip
    acted = bool(commands) or bool(changes)
    status = "processed" if acted else "ignored"
    actions = len(created) + len(changes)
    log.info(
        "aiwfe_webhook_handled",
        event_id=event.id,
        event_type=event.type,
        status=status,
        actions=actions,
        reason=reason,
    )
    return WebhookOutcome(event.id, status, actions, None if acted else reason)
