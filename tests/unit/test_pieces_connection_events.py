"""State changes reach the per-user event log in the shape the UI reads (spec 8.4)."""

from __future__ import annotations

from typing import Any

import pytest

from pieces_integration.domain.connection_state import ConnectionStateMachine, FailureKind
from pieces_integration.domain.events import EventType
from pieces_integration.service_layer.pieces.events import publish_to


class FakeEventLog:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, dict[str, Any]]] = []

    async def publish(self, user_id: str, event_type: str, payload: dict[str, Any]) -> None:
        self.published.append((user_id, event_type, payload))


@pytest.mark.anyio
async def test_state_changes_are_published_with_message_and_actions() -> None:
    log = FakeEventLog()
    publish = publish_to(log)
    machine = ConnectionStateMachine("u1")
    await publish(machine.start_attempt())
    await publish(machine.attempt_failed(FailureKind.NETWORK, "timed out"))
    (_, first_type, first), (user, kind, failed) = log.published
    assert first_type == kind == "pieces_connection_state_changed" and user == "u1"
    assert kind is EventType.PIECES_CONNECTION_STATE_CHANGED
    assert first["state"] == "connecting" and first["message"] is None
    assert failed["state"] == "disconnected" and failed["previous"] == "connecting"
    assert failed["failure"] == "network" and failed["retry_in"] == 1.0
    assert failed["message"].startswith("Unable to reach Pieces OS")
    assert {"id": "retry_connection", "label": "Retry Connection", "url": None} in failed["actions"]
