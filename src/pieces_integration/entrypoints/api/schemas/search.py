"""Search, suggestion and feedback schemas (spec 6.1, 6.3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pieces_integration.domain.teams import Scope
from pieces_integration.entrypoints.api.schemas.assets import AssetPublic


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    language: str | list[str] | None = Field(None, description="One language or any of several")
    tags: list[str] = Field(default_factory=list, max_length=100, description="Any of these")
    user_id: str | None = Field(
        None, min_length=1, max_length=128, description="Admin/service only: another user"
    )

    def languages(self) -> tuple[str, ...]:
        if self.language is None:
            return ()
        values = [self.language] if isinstance(self.language, str) else self.language
        return tuple(v[:64] for v in values if v.strip())


class SearchContextBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_task: str | None = Field(None, max_length=2000)
    active_project: str | None = Field(None, max_length=512)
    keywords: list[str] = Field(default_factory=list, max_length=100)
    language: str | None = Field(None, max_length=64)


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, description="Free text; code identifiers are split")
    filters: SearchFilters = Field(default_factory=SearchFilters)
    context: SearchContextBody | None = None
    limit: int = Field(10, ge=1, le=100)
    scope: Scope = Field(
        Scope.MINE,
        description="mine: your own assets; team: those shared into your teams; all: both",
    )


class SearchHitPublic(BaseModel):
    asset: AssetPublic
    score: float
    highlights: list[str]


class SearchResultsPublic(BaseModel):
    results: list[SearchHitPublic]
    total: int
    took_ms: float


class SuggestionAction(BaseModel):
    type: Literal["copy", "insert", "create_task", "open_file"]
    label: str
    payload: Any


class SuggestionMetadata(BaseModel):
    language: str | None = None
    tags: list[str]
    usage_count: int
    last_used: datetime | None = None
    reasoning: str | None = None


class SuggestionTeam(BaseModel):
    team_id: str
    team_name: str
    shared_by: str | None = Field(description="The user who shared it (null: account deleted)")


class SuggestionAttribution(SuggestionTeam):
    """Where a team suggestion comes from: the team (the oldest share among the caller's
    teams), the user who shared it, the asset's owner, and every team of the caller's
    that holds it."""

    owner_id: str
    teams: list[SuggestionTeam]


class SuggestionPublic(BaseModel):
    id: str
    type: Literal["code_snippet", "task", "documentation", "template"]
    title: str
    description: str
    content: Any
    relevance_score: float
    source: Literal["pieces", "aiwfe", "hybrid", "team"] = Field(
        description=(
            "Spec 6.3's pieces | aiwfe | hybrid, extended (issue 16) by `team`: another "
            "user's asset shared into one of your teams. `team` only appears when the "
            "request's scope is team or all, so clients of the default scope never see it."
        )
    )
    metadata: SuggestionMetadata
    actions: list[SuggestionAction] = Field(default_factory=list)
    attribution: SuggestionAttribution | None = Field(
        None, description="Set exactly when source is team: which team, who shared it"
    )


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["shown", "accepted", "copied", "dismissed"]
    asset_id: str | None = Field(None, min_length=1, max_length=36)
    context: dict[str, Any] | None = Field(
        None, description="The context the suggestion was shown in; default: the stored one"
    )


class FeedbackPublic(BaseModel):
    suggestion_id: str
    action: str
    asset_id: str | None = None
    context_hash: str | None = None
    created_at: datetime
