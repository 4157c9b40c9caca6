"""Revision schemas (issue 16)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pieces_integration.domain.model import is_deleted_user
from pieces_integration.domain.revisions import Revision


class RevisionSummaryPublic(BaseModel):
    number: int = Field(description="The asset's version this revision recorded")
    author_id: str | None = Field(description="None once the author's account is deleted")
    author_deleted: bool = Field(False, description="The author shows as 'deleted user'")
    created_at: datetime
    content_hash: str
    name: str
    diff: str | None = Field(description="Unified diff of the content against the revision before")
    restored_from: int | None

    @classmethod
    def of(cls, revision: Revision) -> RevisionSummaryPublic:
        return cls(
            number=revision.number,
            author_id=revision.author_id,
            author_deleted=revision.author_id is None or is_deleted_user(revision.author_id),
            created_at=revision.created_at,
            content_hash=revision.content_hash,
            name=revision.name,
            diff=revision.diff,
            restored_from=revision.restored_from,
        )


class RevisionPublic(RevisionSummaryPublic):
    content: str
    description: str | None
    language: str | None
    tags: list[str]

    @classmethod
    def of(cls, revision: Revision) -> RevisionPublic:
        return cls(
            **RevisionSummaryPublic.of(revision).model_dump(),
            content=revision.content,
            description=revision.description,
            language=revision.language,
            tags=list(revision.tags),
        )


class RevisionsPublic(BaseModel):
    data: list[RevisionSummaryPublic]
    count: int
