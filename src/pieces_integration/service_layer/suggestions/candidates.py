"""The candidates the sources gather for one request, keyed by suggestion id.

Sources add to one `Gathered`: an asset found by two sources becomes one candidate (source
"hybrid", the better similarity). A candidate found without a similarity waits in
`texts_to_embed` until the service scores it against the context.

`Library` says which assets one request may suggest (issue 16): the user's own and/or those
their teams reach. Another user's asset reached through a team is always source "team",
whichever source found it, and carries its attribution (team, sharer, owner).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pieces_integration.domain.model import Asset
from pieces_integration.domain.ranking import SuggestionCandidate, SuggestionKind
from pieces_integration.domain.teams import TeamReach
from pieces_integration.ports.vectors import SearchFilter
from pieces_integration.service_layer.indexer import embedding_text

FEEDBACK_ID_WIDTH = 64  # the feedback table's suggestion_id width
TEAM_SOURCE = "team"


@dataclass(frozen=True, slots=True)
class Library:
    """The assets a request may suggest: `owner`'s own when `own`, and those `reach` holds
    (shared into the owner's teams, read for this request through `team_access.TeamReachCache`)."""

    owner: str
    own: bool = True
    reach: TeamReach = field(default_factory=TeamReach)

    @property
    def empty(self) -> bool:
        return not self.own and not self.reach.shares

    def vector_filter(self, ids: tuple[str, ...] = ()) -> SearchFilter:
        return SearchFilter(
            user_id=self.owner, ids=ids, own=self.own, shared_ids=self.reach.asset_ids
        )

    def admits(self, asset: Asset) -> bool:
        if asset.user_id == self.owner:
            return self.own or asset.id in self.reach.shares
        return asset.id in self.reach.shares

    def attribution(self, asset: Asset) -> dict[str, Any] | None:
        """Who shared another user's asset with the owner, and in which team (the oldest
        share first; `teams` lists every team of the owner's that holds it)."""
        vias = self.reach.shares.get(asset.id)
        if asset.user_id == self.owner or not vias:
            return None
        teams = [
            {"team_id": v.team_id, "team_name": v.team_name, "shared_by": v.shared_by} for v in vias
        ]
        return {**teams[0], "owner_id": asset.user_id, "teams": teams}


@dataclass(frozen=True, slots=True)
class Extra:
    """What the output needs beyond the ranking candidate."""

    description: str
    content: Any
    line_numbers: Any = None
    attribution: dict[str, Any] | None = None  # a team asset's team and sharer


@dataclass(slots=True)
class Gathered:
    candidates: dict[str, SuggestionCandidate] = field(default_factory=dict)
    extras: dict[str, Extra] = field(default_factory=dict)
    texts_to_embed: dict[str, str] = field(default_factory=dict)  # key -> text

    def set_similarity(self, key: str, similarity: float) -> None:
        self.candidates[key] = replace(self.candidates[key], similarity=similarity)

    def add_asset(
        self,
        asset: Asset,
        similarity: float | None,
        source: str,
        attribution: dict[str, Any] | None = None,
    ) -> None:
        key = f"asset:{asset.id}"
        if attribution is not None:
            source = TEAM_SOURCE
        existing = self.candidates.get(key)
        if existing is not None:
            if existing.source != source and existing.source != TEAM_SOURCE:
                self.candidates[key] = replace(existing, source="hybrid")
            if similarity is not None and similarity > existing.similarity:
                self.set_similarity(key, similarity)
                self.texts_to_embed.pop(key, None)
            return
        metadata = asset.metadata
        self.candidates[key] = SuggestionCandidate(
            key=key,
            kind=SuggestionKind.CODE_SNIPPET,
            source=_asset_source(asset, source),
            title=asset.name,
            text=asset.content,
            similarity=similarity or 0.0,
            language=asset.language,
            tags=tuple(asset.tags),
            usage_count=asset.usage_count,
            last_used=asset.last_accessed,
            file_path=metadata.get("file_path") if isinstance(metadata, dict) else None,
        )
        self.extras[key] = Extra(
            description=asset.description or "",
            content={"code": asset.content, "language": asset.language, "asset_id": asset.id},
            line_numbers=metadata.get("line_numbers"),
            attribution=attribution,
        )
        if similarity is None:
            self.texts_to_embed[key] = embedding_text(asset)

    def add_external(
        self,
        *,
        key: str,
        kind: SuggestionKind,
        title: str,
        text: str,
        extra: Extra,
        tags: Sequence[str] = (),
        language: str | None = None,
        usage_count: int = 0,
        last_used: datetime | None = None,
    ) -> None:
        """An AIWFE item (template, documentation, frequent item); scored afterwards."""
        key = key[:FEEDBACK_ID_WIDTH]
        self.candidates[key] = SuggestionCandidate(
            key=key,
            kind=kind,
            source="aiwfe",
            title=title,
            text=text,
            similarity=0.0,
            language=language,
            tags=tuple(tags),
            usage_count=usage_count,
            last_used=last_used,
        )
        self.extras[key] = extra
        self.texts_to_embed[key] = f"{title}: {text}"[:2000]


def _asset_source(asset: Asset, found_by: str) -> str:
    if found_by == TEAM_SOURCE:
        return TEAM_SOURCE
    return "pieces" if found_by == "pieces" or asset.source.value == "pieces" else found_by
