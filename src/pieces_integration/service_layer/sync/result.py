"""What a finished run reports: the spec 6.3 `SyncResult` and the `sync_completed` event.

One builder of the event payload, `completed_payload`, serves both places that announce a
run: the engine when a run ends, and the WebSocket `sync_request` path when its trigger
returns a result it did not announce itself. So the same run reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pieces_integration.domain.model import SyncRun
from pieces_integration.service_layer.events import to_jsonable

_DIRECTIONS = ("pieces_to_aiwfe", "aiwfe_to_pieces")


def sync_result(run: SyncRun) -> dict[str, Any]:
    """The run as a spec 6.3 `SyncResult`, in JSON types."""
    result: dict[str, Any] = to_jsonable(
        {
            "user_id": run.user_id,
            "sync_id": run.id,
            "status": run.status,
            "changes": {
                "pieces_to_aiwfe": run.pieces_to_aiwfe,
                "aiwfe_to_pieces": run.aiwfe_to_pieces,
                "conflicts_resolved": run.conflicts_resolved,
            },
            "errors": run.errors,
            "started_at": run.started_at,
            "completed_at": run.completed_at,
        }
    )
    return result


def completed_payload(result: Mapping[str, Any]) -> dict[str, Any]:
    """The `sync_completed` payload (spec 6.2) of a `SyncResult`, with its fields (6.3).

    `changes_count` counts the assets carried between the sides. A resolved conflict is
    not counted on top: its outcome travels as one of those writes (and the count of
    conflicts is in `changes`).
    """
    changes = dict(result.get("changes") or {})
    return {
        "user_id": result.get("user_id"),
        "sync_id": result.get("sync_id"),
        "status": result.get("status"),
        "changes_count": sum(int(changes.get(direction, 0)) for direction in _DIRECTIONS),
        "changes": changes,
        "errors": list(result.get("errors") or []),
        "started_at": result.get("started_at"),
        "completed_at": result.get("completed_at"),
    }


def sync_completed(run: SyncRun) -> dict[str, Any]:
    """The `sync_completed` payload of a run the engine just finished."""
    return completed_payload(sync_result(run))
