"""The WebSocket `sync_request` port (`ports.sync.SyncTrigger`) on the scheduler."""

from __future__ import annotations

from typing import Any

from pieces_integration.service_layer.events import to_jsonable
from pieces_integration.service_layer.sync import sync_completed
from pieces_integration.service_layer.sync_scheduler import SyncScheduler


class SchedulerSyncTrigger:
    """Runs (or joins) the user's sync now, through the scheduler that serialises their runs."""

    def __init__(self, scheduler: SyncScheduler) -> None:
        self._scheduler = scheduler

    async def request_sync(self, user_id: str, *, force: bool) -> dict[str, Any]:
        # Every run is a full reconciliation, so `force` needs no separate path.
        run = await self._scheduler.request(user_id, trigger="websocket")
        return {**to_jsonable(sync_completed(run)), "announced": True}
