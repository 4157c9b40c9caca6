"""Sync schemas (spec 6.3 SyncResult, SyncError) and conflicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pieces_integration.domain.model import AssetConflict, SyncRun


class SyncErrorPublic(BaseModel):
    code: str
    message: str
    item_id: str | None = None
    item_type: str | None = None
    severity: Literal["warning", "error", "critical"]
    timestamp: datetime


class SyncChanges(BaseModel):
    pieces_to_aiwfe: int
    aiwfe_to_pieces: int
    conflicts_resolved: int


class SyncResultPublic(BaseModel):
    user_id: str
    sync_id: str
    started_at: datetime
    completed_at: datetime | None = None
    status: Literal["pending", "in_progress", "completed", "failed"]
    changes: SyncChanges
    errors: list[SyncErrorPublic]

    @classmethod
    def of(cls, run: SyncRun) -> SyncResultPublic:
        return cls(
            user_id=run.user_id,
            sync_id=run.id,
            started_at=run.started_at,
            completed_at=run.completed_at,
            status=run.status,
            changes=SyncChanges(
                pieces_to_aiwfe=run.pieces_to_aiwfe,
                aiwfe_to_pieces=run.aiwfe_to_pieces,
                conflicts_resolved=run.conflicts_resolved,
            ),
            errors=[
                SyncErrorPublic(
                    code=e.code,
                    message=e.message,
                    item_id=e.item_id,
                    item_type=e.item_type,
                    severity=e.severity,
                    timestamp=e.timestamp,
                )
                for e in run.errors
            ],
        )


class ConflictPublic(BaseModel):
    id: str
    user_id: str
    asset_id: str
    side: str
    base: dict[str, Any] | None = None
    ours: dict[str, Any]
    theirs: dict[str, Any]
    strategy: str
    status: Literal["open", "resolved"]
    resolution: str | None = None
    created_at: datetime
    resolved_at: datetime | None = None

    @classmethod
    def of(cls, conflict: AssetConflict) -> ConflictPublic:
        return cls(
            id=conflict.id,
            user_id=conflict.user_id,
            asset_id=conflict.asset_id,
            side=conflict.side,
            base=conflict.base,
            ours=conflict.ours,
            theirs=conflict.theirs,
            strategy=conflict.strategy,
            status=conflict.status,
            resolution=conflict.resolution,
            created_at=conflict.created_at,
            resolved_at=conflict.resolved_at,
        )


class ConflictResolution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: Literal["ours", "theirs", "merged"]
    content: str | None = Field(None, description="The merged text, for `merged`")
