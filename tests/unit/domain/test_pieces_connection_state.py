"""The connection state machine of spec 8.4."""

from __future__ import annotations

import pytest

from pieces_integration.domain.connection_state import (
    ConnectionState,
    ConnectionStateMachine,
    FailureKind,
    InvalidTransition,
    backoff_delay,
    is_compatible,
    message_for,
)


def test_backoff_doubles_from_one_second_to_a_minute() -> None:
    assert [backoff_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_connect_succeed_lose_and_reconnect() -> None:
    machine = ConnectionStateMachine("u1")
    assert machine.start_attempt().current is ConnectionState.CONNECTING
    assert machine.succeeded().current is ConnectionState.CONNECTED
    lost = machine.lost(FailureKind.NETWORK, "dropped")
    assert lost.current is ConnectionState.DISCONNECTED and lost.retry_in == 1.0
    assert lost.message == message_for(FailureKind.NETWORK) and machine.retrying
    assert machine.start_attempt().attempt == 1
    assert machine.succeeded().failure is None


def test_ten_failed_attempts_end_in_connection_failed() -> None:
    machine = ConnectionStateMachine("u1")
    delays = []
    for _ in range(9):
        machine.start_attempt()
        event = machine.attempt_failed(FailureKind.NOT_RUNNING)
        assert event.current is ConnectionState.DISCONNECTED
        delays.append(event.retry_in)
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    machine.start_attempt()
    final = machine.attempt_failed(FailureKind.NOT_RUNNING)
    assert final.current is ConnectionState.CONNECTION_FAILED and final.retry_in is None
    assert final.message is not None
    assert final.message.title == "Pieces OS Not Running"
    assert [a.label for a in final.message.actions] == [
        "Download Pieces OS",
        "Check if Pieces OS is running",
        "Retry Connection",
        "Continue without Pieces",
    ]
    with pytest.raises(InvalidTransition):
        machine.start_attempt()  # only a manual retry leaves connection_failed
    retry = machine.manual_retry()
    assert retry.current is ConnectionState.CONNECTING and retry.attempt == 1


def test_authentication_failures_do_not_retry() -> None:
    machine = ConnectionStateMachine("u1")
    machine.start_attempt()
    event = machine.attempt_failed(FailureKind.AUTHENTICATION)
    assert event.current is ConnectionState.CONNECTION_FAILED
    assert "Re-authorize Connection" in [a.label for a in event.message.actions]  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", list(FailureKind))
def test_every_failure_kind_has_the_spec_message(kind: FailureKind) -> None:
    message = message_for(kind)
    assert message.message and len(message.actions) >= 3


def test_user_disconnect_clears_the_failure() -> None:
    machine = ConnectionStateMachine("u1")
    machine.start_attempt()
    machine.give_up(FailureKind.NETWORK)
    event = machine.disconnect()
    assert event.current is ConnectionState.DISCONNECTED and event.failure is None
    assert not machine.retrying


@pytest.mark.parametrize(
    ("version", "expected"),
    [("12.0.0", True), ("12.3.4", True), ("13.0.0", False), ("11.9.9", False), ("debug", None)],
)
def test_version_compatibility(version: str, expected: bool | None) -> None:
    assert is_compatible(version) is expected
