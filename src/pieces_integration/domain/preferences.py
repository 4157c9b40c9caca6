"""A user's preferences (spec 7.1 step 5): sync frequency, notifications, sharing default.

Privacy choices are the user's `Consent` (spec 8.1), stored and audited by the privacy
flow; preferences only carry the rest. Every rule here is pure:

- `sync_frequency_seconds`: None follows the service's SYNC interval; otherwise how often
  the scheduler reconciles this user, within `MIN_SYNC_SECONDS`..`MAX_SYNC_SECONDS`.
- notifications: which live event types reach the user's WebSocket stream, and which AIWFE
  webhook event types the service acts on for them (None: all of them).
- `sharing_default`: "private", or "team:<team id>": assets the user creates through the
  service are shared into that team's library as they are created. Whether the user may
  share there is the service's question (it knows the teams); here only the shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from pieces_integration.domain.errors import InvalidInput
from pieces_integration.domain.events import EventType
from pieces_integration.domain.webhook_events import WebhookEventType

MIN_SYNC_SECONDS = 5
MAX_SYNC_SECONDS = 86_400
SHARING_PRIVATE = "private"
SHARING_TEAM_PREFIX = "team:"
MAX_TEAM_ID = 64

WEBSOCKET_EVENTS = frozenset(member.value for member in EventType)
WEBHOOK_EVENTS = frozenset(member.value for member in WebhookEventType)


@dataclass(frozen=True, slots=True)
class NotificationPreferences:
    websocket_events: frozenset[str] | None = None  # None: every event type
    webhook_events: frozenset[str] | None = None

    def pushes(self, event_type: str) -> bool:
        return self.websocket_events is None or event_type in self.websocket_events

    def accepts_webhook(self, event_type: str) -> bool:
        return self.webhook_events is None or event_type in self.webhook_events


@dataclass(frozen=True, slots=True)
class Preferences:
    sync_frequency_seconds: int | None = None
    notifications: NotificationPreferences = NotificationPreferences()
    sharing_default: str = SHARING_PRIVATE

    def sync_interval(self, default: float) -> float:
        return default if self.sync_frequency_seconds is None else self.sync_frequency_seconds

    @property
    def default_team(self) -> str | None:
        """The team the user's new assets are shared into; None: they stay private."""
        if self.sharing_default.startswith(SHARING_TEAM_PREFIX):
            return self.sharing_default.removeprefix(SHARING_TEAM_PREFIX)
        return None

    def to_record(self) -> dict[str, Any]:
        """Plain JSON-able values (storage, audit details)."""
        notes = self.notifications
        return {
            "sync_frequency_seconds": self.sync_frequency_seconds,
            "notifications": {
                "websocket_events": _sorted(notes.websocket_events),
                "webhook_events": _sorted(notes.webhook_events),
            },
            "sharing_default": self.sharing_default,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Preferences:
        notes = record.get("notifications") or {}
        return cls(
            sync_frequency_seconds=record.get("sync_frequency_seconds"),
            notifications=NotificationPreferences(
                websocket_events=_frozen(notes.get("websocket_events")),
                webhook_events=_frozen(notes.get("webhook_events")),
            ),
            sharing_default=str(record.get("sharing_default") or SHARING_PRIVATE),
        )


def _sorted(values: frozenset[str] | None) -> list[str] | None:
    return None if values is None else sorted(values)


def _frozen(values: Iterable[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


def _event_set(field: str, values: Iterable[str] | None, known: frozenset[str]) -> Any:
    if values is None:
        return None
    chosen = frozenset(values)
    unknown = sorted(chosen - known)
    if unknown:
        raise InvalidInput(
            f"unknown event types: {', '.join(unknown)}",
            field=field,
            unknown=unknown,
            supported=sorted(known),
        )
    return chosen


def validate_sharing_default(value: str) -> str:
    team_id = value.removeprefix(SHARING_TEAM_PREFIX)
    if value == SHARING_PRIVATE or (team_id != value and 0 < len(team_id) <= MAX_TEAM_ID):
        return value
    raise InvalidInput(
        'the asset-sharing default must be "private" or "team:<team id>"',
        field="sharing_default",
        value=value,
    )


def apply_changes(current: Preferences, changes: dict[str, Any]) -> Preferences:
    """`current` with `changes` (already shape-checked by the API) applied, or InvalidInput.

    Keys absent from `changes` keep their value; an explicit None resets to the default.
    """
    updated = current
    if "sync_frequency_seconds" in changes:
        seconds = changes["sync_frequency_seconds"]
        if seconds is not None and not MIN_SYNC_SECONDS <= seconds <= MAX_SYNC_SECONDS:
            raise InvalidInput(
                f"sync_frequency_seconds must be between {MIN_SYNC_SECONDS} and "
                f"{MAX_SYNC_SECONDS} (or null for the service default)",
                field="sync_frequency_seconds",
                value=seconds,
            )
        updated = replace(updated, sync_frequency_seconds=seconds)
    if "notifications" in changes:
        notes = changes["notifications"] or {}
        current_notes = updated.notifications
        websocket = current_notes.websocket_events
        webhook = current_notes.webhook_events
        if "websocket_events" in notes:
            websocket = _event_set(
                "notifications.websocket_events", notes["websocket_events"], WEBSOCKET_EVENTS
            )
        if "webhook_events" in notes:
            webhook = _event_set(
                "notifications.webhook_events", notes["webhook_events"], WEBHOOK_EVENTS
            )
        updated = replace(updated, notifications=NotificationPreferences(websocket, webhook))
    if "sharing_default" in changes:
        value = changes["sharing_default"]
        updated = replace(
            updated,
            sharing_default=SHARING_PRIVATE if value is None else validate_sharing_default(value),
        )
    return updated
