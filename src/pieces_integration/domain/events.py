"""The event vocabulary: every event type the service publishes to live subscribers.

One StrEnum, so a publisher and the WebSocket `subscribe` filter cannot drift apart: the
filter accepts exactly these values, and a test checks that every publish site uses one.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    ASSET_CREATED = "asset_created"
    ASSET_UPDATED = "asset_updated"
    ASSET_DELETED = "asset_deleted"
    CONTEXT_CHANGED = "context_changed"
    SUGGESTIONS_UPDATED = "suggestions_updated"
    SYNC_COMPLETED = "sync_completed"
    CONFLICT_DETECTED = "conflict_detected"
    # Spec 8.4's name (its connection monitor emits `pieces_connection_state_changed`).
    PIECES_CONNECTION_STATE_CHANGED = "pieces_connection_state_changed"
    # Teams (issue 16), an addition to spec 6.2's list: each goes to every current member.
    ASSET_SHARED = "asset_shared"
    TEAM_ASSET_UPDATED = "team_asset_updated"
    TEAM_MEMBER_CHANGED = "team_member_changed"
