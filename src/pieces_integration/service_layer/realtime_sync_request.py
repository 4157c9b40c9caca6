"""A client's `sync_request` over the WebSocket: run the sync, announce its result.

The rest of the real-time API: `realtime_hub` (the event log's tail, fanned out to the
sessions), `realtime_session` (one client and its bounded send queue) and
`realtime_protocol` (close codes, limits, control messages).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from pieces_integration.domain.errors import PiecesIntegrationError
from pieces_integration.domain.events import EventType
from pieces_integration.ports.sync import SyncTrigger
from pieces_integration.service_layer.realtime_session import Session
from pieces_integration.service_layer.sync.result import completed_payload

log = structlog.get_logger(__name__)

Publish = Callable[[str, str, dict[str, Any]], Awaitable[object]]


async def run_sync_request(
    session: Session, trigger: SyncTrigger, publish: Publish, user_id: str, *, force: bool
) -> None:
    """Ask the sync engine for a sync; publish `sync_completed` to all the user's clients."""
    try:
        result = await trigger.request_sync(user_id, force=force)
    except PiecesIntegrationError as exc:
        session.send_error(exc.code, exc.message, exc.details)
        return
    except Exception as exc:
        log.error("sync request failed", user_id=user_id, error=repr(exc))
        session.send_error("sync_failed", "the sync could not be run", {})
        return
    if result.get("announced"):
        return  # the engine already published `sync_completed` to every subscriber
    # The engine's builder, so the same run reads the same on both paths.
    payload = completed_payload({**result, "user_id": user_id})
    await publish(user_id, EventType.SYNC_COMPLETED, payload)
