"""What the real-time API needs from the sync engine: a way to ask for a sync now."""

from __future__ import annotations

from typing import Any, Protocol


class SyncTrigger(Protocol):
    """Runs (or joins) a sync of one user and returns its result.

    The return value has the shape of spec 6.3 `SyncResult`: `user_id`, `sync_id`,
    `started_at`, `completed_at`, `status`, `changes` {pieces_to_aiwfe, aiwfe_to_pieces,
    conflicts_resolved} and `errors` (a list of `SyncError`). The caller publishes
    `sync_completed` from it, so an implementation must not publish that event for a sync
    it was asked to run through this port. Raise the errors of `domain.errors` on failure
    to start (e.g. `PiecesOSUnavailable`, `Conflict` when one is already running).
    """

    async def request_sync(self, user_id: str, *, force: bool) -> dict[str, Any]: ...
