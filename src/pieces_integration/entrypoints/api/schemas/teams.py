"""Team schemas (issue 16)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pieces_integration.domain.teams import MAX_TEAM_NAME, Membership, TeamRole
from pieces_integration.service_layer.teams import TeamView

_NAME = Field(min_length=1, max_length=MAX_TEAM_NAME, description="Trimmed; not blank")


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = _NAME


class TeamRename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = _NAME


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(
        min_length=1,
        max_length=128,
        description="The user to add; naming them grants the caller nothing (DEVIATIONS 7).",
    )
    role: TeamRole = TeamRole.MEMBER


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: TeamRole


class MemberPublic(BaseModel):
    user_id: str
    role: TeamRole
    added_by: str | None
    added_at: datetime

    @classmethod
    def of(cls, membership: Membership) -> MemberPublic:
        return cls(
            user_id=membership.user_id,
            role=membership.role,
            added_by=membership.added_by,
            added_at=membership.added_at,
        )


class MembersPublic(BaseModel):
    data: list[MemberPublic]
    count: int

    @classmethod
    def of(cls, memberships: list[Membership]) -> MembersPublic:
        return cls(data=[MemberPublic.of(m) for m in memberships], count=len(memberships))


class TeamPublic(BaseModel):
    id: str
    name: str
    role: TeamRole = Field(description="The caller's role in the team")
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    members: list[MemberPublic] | None = Field(
        None, description="On GET /api/v1/teams/{team_id} only"
    )

    @classmethod
    def of(cls, view: TeamView) -> TeamPublic:
        team = view.team
        return cls(
            id=team.id,
            name=team.name,
            role=view.role,
            created_by=team.created_by,
            created_at=team.created_at,
            updated_at=team.updated_at,
            members=None if view.members is None else [MemberPublic.of(m) for m in view.members],
        )


class TeamsPublic(BaseModel):
    data: list[TeamPublic]
    count: int
