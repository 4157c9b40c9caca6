"""Which live events a user wants pushed (their notification preferences), kept at hand.

The WebSocket fan-out asks `pushes(user, type)` for every event, so the answer comes from
memory: a user's choice is loaded when one of their streams subscribes, and replaced at
once when they change it on this replica. Another replica picks a change up at its next
subscribe or after `ttl` seconds, whichever is first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import structlog

from pieces_integration.domain.preferences import NotificationPreferences
from pieces_integration.ports.clock import Clock
from pieces_integration.ports.storage import UnitOfWorkFactory

log = structlog.get_logger(__name__)


@dataclass
class NotificationGate:
    uow: UnitOfWorkFactory
    ttl: float = 30.0
    clock: Clock = time.monotonic
    _known: dict[str, tuple[float, NotificationPreferences]] = field(default_factory=dict)

    async def load(self, user_id: str) -> NotificationPreferences:
        try:
            async with self.uow(readonly=True) as uow:
                preferences = await uow.preferences.get(user_id)
        except Exception as exc:  # the store being down must not stop the stream
            log.warning("notification_preferences_unavailable", user_id=user_id, error=repr(exc))
            cached = self._known.get(user_id)
            return cached[1] if cached else NotificationPreferences()
        notes = preferences.notifications if preferences else NotificationPreferences()
        self.update(user_id, notes)
        return notes

    def update(self, user_id: str, notifications: NotificationPreferences) -> None:
        self._known[user_id] = (self.clock() + self.ttl, notifications)

    def stale(self, user_id: str) -> bool:
        cached = self._known.get(user_id)
        return cached is not None and cached[0] <= self.clock()

    def forget(self, user_id: str) -> None:
        self._known.pop(user_id, None)

    def pushes(self, user_id: str, event_type: str) -> bool:
        cached = self._known.get(user_id)
        return cached is None or cached[1].pushes(event_type)
