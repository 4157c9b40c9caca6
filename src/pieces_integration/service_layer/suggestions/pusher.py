"""Pushing suggestions when a user's context changes: `ContextChangeTap` notices the
change, `SuggestionPusher` recomputes and publishes `suggestions_updated`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio

from pieces_integration.domain.auth import Principal
from pieces_integration.domain.events import EventType
from pieces_integration.domain.model import Role
from pieces_integration.ports.event_log import LoggedEvent
from pieces_integration.service_layer._background import BackgroundLoop
from pieces_integration.service_layer.events import EventPublisher
from pieces_integration.service_layer.suggestions.service import SuggestionService

log = logging.getLogger(__name__)


class SuggestionPusher(BackgroundLoop):
    """Recomputes a user's suggestions after a context change and publishes them.

    `notify(user_id)` never blocks the caller (the context update): users wait in a bounded
    set, and a loop owned by this object (`async with`) works through them.
    """

    def __init__(self, service: SuggestionService, events: EventPublisher) -> None:
        self.service = service
        self.events = events
        self._pending: dict[str, None] = {}
        self._wake = anyio.Event()
        self.max_pending = 10_000

    def notify(self, user_id: str) -> None:
        if self._tg is None or len(self._pending) >= self.max_pending:
            return
        self._pending[user_id] = None
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            while self._pending:
                user_id = next(iter(self._pending))
                del self._pending[user_id]
                try:
                    await self.push(user_id)
                except Exception:
                    log.exception("pushing suggestions failed")

    async def push(self, user_id: str) -> LoggedEvent | None:
        principal = Principal(user_id=user_id, role=Role.USER, via="internal")
        suggestions = await self.service.for_user(
            principal, user_id, None, self.service.max_suggestions
        )
        context = await self.service.context_of(user_id)
        return await self.events.publish(
            user_id,
            EventType.SUGGESTIONS_UPDATED,
            {"user_id": user_id, "context_hash": context.hash(), "suggestions": suggestions},
        )


class ContextChangeTap(EventPublisher):
    """The publisher given to ContextService: publishes as usual, then tells the pusher."""

    def __init__(self, inner: EventPublisher, on_context_changed: Callable[[str], None]) -> None:
        self._inner = inner
        self.log = inner.log
        self._on_context_changed = on_context_changed

    async def publish(self, user_id: str, event_type: str, payload: dict[str, Any]) -> LoggedEvent:
        logged = await self._inner.publish(user_id, event_type, payload)
        if event_type == EventType.CONTEXT_CHANGED:
            self._on_context_changed(user_id)
        return logged
