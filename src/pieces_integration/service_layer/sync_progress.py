"""Where each user's running sync is, for a progress bar (the console's setup wizard).

The engine reports (user, phase, done, total) as batches commit; this keeps the latest
report per user with its start time, so a page can show counts, rate and ETA. The run
itself belongs to the scheduler, not to a browser: closing the page changes nothing, and
opening it again shows where the run is now. In-process only: each replica knows the runs
it is executing (the stored `SyncRun` has the outcome for everyone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pieces_integration.ports.clock import Clock


@dataclass(frozen=True, slots=True)
class ProgressReport:
    phase: str
    done: int
    total: int
    started: float  # clock time of the run's first report
    updated: float

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)

    @property
    def rate(self) -> float | None:
        """Items per second in this phase so far."""
        elapsed = self.updated - self.started
        return self.done / elapsed if elapsed > 0 and self.done else None

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rate
        return None if rate is None else max(0.0, (self.total - self.done) / rate)


@dataclass
class SyncProgress:
    clock: Clock = time.monotonic
    _reports: dict[str, ProgressReport] = field(default_factory=dict)

    def record(self, user_id: str, phase: str, done: int, total: int) -> None:
        now = self.clock()
        previous = self._reports.get(user_id)
        started = previous.started if previous and previous.phase == phase else now
        self._reports[user_id] = ProgressReport(phase, done, total, started, now)

    def current(self, user_id: str) -> ProgressReport | None:
        return self._reports.get(user_id)

    def clear(self, user_id: str) -> None:
        self._reports.pop(user_id, None)
