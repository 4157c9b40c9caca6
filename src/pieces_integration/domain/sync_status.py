"""The status of a sync run (spec 6.3 `SyncResult.status`), as stored in `sync_runs`."""

from __future__ import annotations

from enum import StrEnum


class SyncStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    # A run that gave way before writing anything (the scheduler's full run, when a change
    # was announced meanwhile): returned to the caller, never stored.
    INTERRUPTED = "interrupted"
