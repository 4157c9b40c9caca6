"""The progress of a running sync: fraction, rate and ETA from the engine's reports."""

from __future__ import annotations

import pytest

from pieces_integration.service_layer.sync_progress import SyncProgress
from tests.fakes import FakeClock


def test_rate_and_eta_follow_the_reports_of_one_phase() -> None:
    clock = FakeClock()
    progress = SyncProgress(clock=clock)
    progress.record("alice", "pull pieces", 0, 300)
    clock.advance(2.0)
    progress.record("alice", "pull pieces", 100, 300)
    report = progress.current("alice")
    assert report is not None
    assert report.fraction == pytest.approx(1 / 3)
    assert report.rate == pytest.approx(50.0)
    assert report.eta_seconds == pytest.approx(4.0)


def test_a_new_phase_restarts_the_clock_and_users_are_apart() -> None:
    clock = FakeClock()
    progress = SyncProgress(clock=clock)
    progress.record("alice", "pull pieces", 300, 300)
    clock.advance(5.0)
    progress.record("alice", "push pieces", 0, 10)
    report = progress.current("alice")
    assert report is not None and report.rate is None and report.eta_seconds is None
    assert progress.current("bob") is None
    progress.clear("alice")
    assert progress.current("alice") is None


def test_an_empty_phase_is_complete() -> None:
    progress = SyncProgress(clock=FakeClock())
    progress.record("alice", "push aiwfe", 0, 0)
    report = progress.current("alice")
    assert report is not None and report.fraction == 1.0
