"""Schemas for `GET/PUT /api/v1/users/{user_id}/preferences` (spec 7.1 step 5)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from pieces_integration.domain.events import EventType
from pieces_integration.domain.preferences import (
    MAX_SYNC_SECONDS,
    MAX_TEAM_ID,
    MIN_SYNC_SECONDS,
    SHARING_TEAM_PREFIX,
)
from pieces_integration.domain.webhook_events import WebhookEventType
from pieces_integration.service_layer.preferences import UserPreferences


class PrivacyPublic(BaseModel):
    """The user's consent (the same record as `/consent`)."""

    asset_sync: bool = Field(description="consent scope: sync assets with Pieces and AIWFE")
    context_sharing: Literal["full", "limited"]
    analytics: bool = Field(description="analytics opt-in")
    team_collaboration: bool = Field(description="consent scope: share assets into teams")


class NotificationsPublic(BaseModel):
    websocket_events: list[EventType] | None = Field(
        description="event types pushed on the live stream; null: all"
    )
    webhook_events: list[WebhookEventType] | None = Field(
        description="AIWFE webhook event types acted on for this user; null: all"
    )


class PreferencesPublic(BaseModel):
    user_id: str
    sync_frequency_seconds: int | None = Field(description="null: the service default")
    effective_sync_frequency_seconds: float
    privacy: PrivacyPublic
    notifications: NotificationsPublic
    sharing_default: str = Field(
        description='"private", or "team:<team id>": assets the user creates through the '
        "service (API, console, MCP) are shared into that team as they are created"
    )

    @classmethod
    def of(cls, view: UserPreferences) -> PreferencesPublic:
        prefs, consent = view.preferences, view.consent
        record = prefs.to_record()
        return cls.model_validate(
            {
                "user_id": view.user_id,
                "sync_frequency_seconds": prefs.sync_frequency_seconds,
                "effective_sync_frequency_seconds": view.effective_sync_seconds,
                "privacy": {
                    "asset_sync": consent.asset_sync,
                    "context_sharing": consent.context_sharing,
                    "analytics": consent.analytics,
                    "team_collaboration": consent.team_collaboration,
                },
                "notifications": record["notifications"],
                "sharing_default": prefs.sharing_default,
            }
        )


class PrivacyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    asset_sync: StrictBool | None = None
    context_sharing: Literal["full", "limited"] | None = None
    analytics: StrictBool | None = None
    team_collaboration: StrictBool | None = None

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class NotificationsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    websocket_events: list[EventType] | None = None
    webhook_events: list[WebhookEventType] | None = None

    def changes(self) -> dict[str, Any]:
        return {
            name: None if value is None else [str(item) for item in value]
            for name, value in self.model_dump().items()
            if name in self.model_fields_set
        }


class PreferencesUpdate(BaseModel):
    """Fields left out keep their value; `null` resets one to its default."""

    model_config = ConfigDict(extra="forbid")
    sync_frequency_seconds: StrictInt | None = Field(
        default=None, ge=MIN_SYNC_SECONDS, le=MAX_SYNC_SECONDS
    )
    privacy: PrivacyUpdate | None = None
    notifications: NotificationsUpdate | None = None
    sharing_default: str | None = Field(
        default=None,
        min_length=1,
        max_length=len(SHARING_TEAM_PREFIX) + MAX_TEAM_ID,
        description='"private" or "team:<team id>" of a team the user may share into',
    )

    def changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "sync_frequency_seconds" in self.model_fields_set:
            out["sync_frequency_seconds"] = self.sync_frequency_seconds
        if self.notifications is not None:
            out["notifications"] = self.notifications.changes()
        if "sharing_default" in self.model_fields_set:
            out["sharing_default"] = self.sharing_default
        return out
