"""What the MCP tools answer (their output schemas): small first, bodies on request.

Full snippets, contexts, conflicts, sync results and the connection status reuse the REST
API's schemas, so a field reads the same through either door.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, WithJsonSchema

from pieces_integration.domain.model import Asset
from pieces_integration.entrypoints.api.schemas.assets import AssetPublic
from pieces_integration.entrypoints.api.schemas.search import SuggestionPublic
from pieces_integration.entrypoints.api.schemas.sync import ConflictPublic, SyncResultPublic

PREVIEW_CHARS = 200


def preview(asset: Asset, highlights: list[str]) -> str:
    """The first matching line, else the start of the content (one line, short)."""
    if highlights:
        return highlights[0][:PREVIEW_CHARS]
    text = " ".join(asset.content.split())
    return text[:PREVIEW_CHARS]


# The search answer's schema is written flat (a type list, not `anyOf`; the hit inlined, not
# a `$ref`): clients check every answer against it, and this shape halves that check's cost
# on the hottest tool (bench/bench_mcp.py).
NullableText = Annotated[str | None, WithJsonSchema({"type": ["string", "null"]})]


class SnippetHit(BaseModel):
    id: str
    name: str
    language: NullableText
    tags: list[str]
    score: float
    preview: str = Field(description="A matching line, or the start of the content")


class SearchSnippetsResult(BaseModel):
    results: Annotated[
        list[SnippetHit],
        WithJsonSchema({"type": "array", "items": SnippetHit.model_json_schema()}),
    ]
    total: int
    took_ms: float


class SnippetsResult(BaseModel):
    snippets: list[AssetPublic]
    missing: list[str] = Field(description="Requested ids that do not exist (or are not yours)")


class SnippetSummary(BaseModel):
    id: str
    name: str
    language: str | None
    tags: list[str]
    version: int
    content_hash: str
    updated_at: datetime
    uri: str = Field(description="The snippet as an MCP resource")

    @classmethod
    def of(cls, asset: Asset) -> SnippetSummary:
        return cls(
            id=asset.id,
            name=asset.name,
            language=asset.language,
            tags=asset.tags,
            version=asset.version,
            content_hash=asset.content_hash,
            updated_at=asset.updated_at,
            uri=f"snippet://{asset.id}",
        )


class DeletedSnippet(BaseModel):
    id: str
    deleted: bool


class SuggestionsResult(BaseModel):
    suggestions: list[SuggestionPublic]


class ConflictsResult(BaseModel):
    conflicts: list[ConflictPublic]


class SyncNowResult(BaseModel):
    finished: bool = Field(description="False: still running; call again later for the result")
    result: SyncResultPublic
