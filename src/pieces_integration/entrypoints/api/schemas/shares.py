"""Share schemas (issue 16)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pieces_integration.domain.teams import Share


class ShareCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team_id: str = Field(min_length=1, max_length=64, description="A team you may share into")


class SharePublic(BaseModel):
    asset_id: str
    team_id: str
    shared_by: str | None
    shared_at: datetime

    @classmethod
    def of(cls, share: Share) -> SharePublic:
        return cls(
            asset_id=share.asset_id,
            team_id=share.team_id,
            shared_by=share.shared_by,
            shared_at=share.shared_at,
        )
