"""Asset schemas (spec 6.3): snake_case JSON, ISO 8601 times."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pieces_integration.domain.assets import AssetDraft
from pieces_integration.domain.model import Asset, is_deleted_user

_USER_ID = Field(
    None,
    min_length=1,
    max_length=128,
    description="Owner; defaults to the caller. Only admin/service may name another user.",
)


class AssetMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    file_path: str | None = None
    line_numbers: tuple[int, int] | None = None
    author: str | None = None
    project: str | None = None


class AssetPublic(BaseModel):
    id: str
    name: str
    description: str | None = None
    content: str
    language: str | None = None
    tags: list[str]
    source: Literal["pieces", "aiwfe", "user"]
    source_id: str | None = None
    created_at: datetime
    updated_at: datetime
    last_accessed: datetime | None = None
    usage_count: int
    metadata: dict[str, Any]
    version: int = Field(description="Increases with every change; send it as If-Match.")
    content_hash: str = Field(description="SHA-256 of the content's UTF-8 bytes.")
    user_id: str
    owner_deleted: bool = Field(
        False,
        description="The owner's account was deleted: the asset stays in the teams it was "
        "shared into, attributed to 'deleted user' (`user_id` is then the reserved "
        "'~deleted-user').",
    )

    @classmethod
    def of(cls, asset: Asset) -> AssetPublic:
        return cls(
            id=asset.id,
            name=asset.name,
            description=asset.description,
            content=asset.content,
            language=asset.language,
            tags=asset.tags,
            source=asset.source.value,
            source_id=asset.source_id,
            created_at=asset.created_at,
            updated_at=asset.updated_at,
            last_accessed=asset.last_accessed,
            usage_count=asset.usage_count,
            metadata=asset.metadata,
            version=asset.version,
            content_hash=asset.content_hash,
            user_id=asset.user_id,
            owner_deleted=is_deleted_user(asset.user_id),
        )


class _AssetFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(None, max_length=10_000)
    language: str | None = Field(None, max_length=64)
    tags: list[str] = Field(default_factory=list, max_length=1000)
    metadata: dict[str, Any] = Field(default_factory=dict)


class _WholeAsset(_AssetFields):
    name: str = Field(min_length=1, max_length=4096)
    content: str = Field(min_length=1)

    def draft(self) -> AssetDraft:
        return AssetDraft(
            name=self.name,
            content=self.content,
            description=self.description,
            language=self.language,
            tags=self.tags,
            metadata=self.metadata,
        )


class AssetCreate(_WholeAsset):
    user_id: str | None = _USER_ID


_VERSION = Field(
    None,
    ge=1,
    description="The version this edit is based on (like If-Match); required on team assets",
)


class AssetUpdate(_WholeAsset):
    """PUT: the whole editable state; omitted optional fields are cleared."""

    version: int | None = _VERSION


class AssetPatch(BaseModel):
    """PATCH: only the fields sent change; `null` clears description or language."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=4096)
    content: str | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=10_000)
    language: str | None = Field(None, max_length=64)
    tags: list[str] | None = Field(None, max_length=1000)
    metadata: dict[str, Any] | None = None
    version: int | None = _VERSION

    def draft(self) -> AssetDraft:
        cleared = frozenset(
            name
            for name in ("description", "language")
            if name in self.model_fields_set and getattr(self, name) is None
        )
        return AssetDraft(
            name=self.name,
            content=self.content,
            description=self.description,
            language=self.language,
            tags=self.tags,
            metadata=self.metadata,
            cleared=cleared,
        )
