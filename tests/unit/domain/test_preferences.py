"""The pure preference rules: bounds, event vocabularies, sharing default, partial updates."""

from __future__ import annotations

import pytest

from pieces_integration.domain.errors import InvalidInput
from pieces_integration.domain.preferences import (
    MAX_SYNC_SECONDS,
    MIN_SYNC_SECONDS,
    NotificationPreferences,
    Preferences,
    apply_changes,
)


@pytest.mark.parametrize("seconds", [-5, 0, MIN_SYNC_SECONDS - 1, MAX_SYNC_SECONDS + 1])
def test_sync_frequency_out_of_bounds_is_refused_naming_the_field(seconds: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        apply_changes(Preferences(), {"sync_frequency_seconds": seconds})
    assert caught.value.field == "sync_frequency_seconds"


@pytest.mark.parametrize("seconds", [MIN_SYNC_SECONDS, 60, MAX_SYNC_SECONDS])
def test_sync_frequency_in_bounds_is_taken(seconds: int) -> None:
    chosen = apply_changes(Preferences(), {"sync_frequency_seconds": seconds})
    assert chosen.sync_frequency_seconds == seconds
    assert chosen.sync_interval(30.0) == seconds


def test_null_sync_frequency_follows_the_service_default() -> None:
    chosen = apply_changes(Preferences(sync_frequency_seconds=60), {"sync_frequency_seconds": None})
    assert chosen.sync_frequency_seconds is None and chosen.sync_interval(30.0) == 30.0


def test_fields_left_out_keep_their_value() -> None:
    before = Preferences(sync_frequency_seconds=60)
    after = apply_changes(before, {"notifications": {"websocket_events": ["asset_created"]}})
    assert after.sync_frequency_seconds == 60
    assert after.notifications.websocket_events == frozenset({"asset_created"})
    assert after.notifications.webhook_events is None


def test_unknown_event_types_are_refused_with_the_vocabulary() -> None:
    with pytest.raises(InvalidInput) as caught:
        apply_changes(Preferences(), {"notifications": {"websocket_events": ["nope"]}})
    assert caught.value.field == "notifications.websocket_events"
    assert "asset_created" in caught.value.details["supported"]
    with pytest.raises(InvalidInput):
        apply_changes(Preferences(), {"notifications": {"webhook_events": ["asset_created"]}})


def test_a_sharing_default_is_private_or_a_team() -> None:
    assert apply_changes(Preferences(), {"sharing_default": "private"}).default_team is None
    chosen = apply_changes(Preferences(), {"sharing_default": "team:core"})
    assert chosen.sharing_default == "team:core" and chosen.default_team == "core"
    assert apply_changes(chosen, {"sharing_default": None}).sharing_default == "private"
    for bad in ("team:", "core", "Team:core", "team:" + "x" * 65):
        with pytest.raises(InvalidInput) as caught:
            apply_changes(Preferences(), {"sharing_default": bad})
        assert caught.value.field == "sharing_default"


def test_notification_filters() -> None:
    everything = NotificationPreferences()
    assert everything.pushes("asset_created") and everything.accepts_webhook("task_created")
    some = NotificationPreferences(frozenset({"sync_completed"}), frozenset())
    assert some.pushes("sync_completed") and not some.pushes("asset_created")
    assert not some.accepts_webhook("task_created")


def test_record_round_trip() -> None:
    chosen = Preferences(60, NotificationPreferences(frozenset({"asset_created"}), None))
    assert Preferences.from_record(chosen.to_record()) == chosen
