"""Asset rules: validation against the configured limits, and edits as pure functions."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any

from pieces_integration.domain.errors import InvalidInput
from pieces_integration.domain.language_detect import detect_language
from pieces_integration.domain.model import Asset, AssetSource, content_hash, new_id, utcnow


@dataclass(frozen=True, slots=True)
class AssetLimits:
    max_content_bytes: int = 1024 * 1024
    max_tags: int = 50
    max_tag_length: int = 64
    max_name_length: int = 512
    max_description_length: int = 10_000
    max_metadata_bytes: int = 64 * 1024


@dataclass(frozen=True, slots=True)
class AssetDraft:
    """What a caller may set on an asset. `None` in a patch means "leave as is"."""

    name: str | None = None
    content: str | None = None
    description: str | None = None
    language: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    source: AssetSource = AssetSource.USER
    source_id: str | None = None
    cleared: frozenset[str] = field(default_factory=frozenset)  # optional fields set to null


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def normalise_tags(tags: list[str], limits: AssetLimits) -> list[str]:
    cleaned: list[str] = []
    for raw in tags:
        tag = raw.strip()
        if not tag:
            raise InvalidInput("tags must not be empty", field="tags")
        if len(tag) > limits.max_tag_length:
            raise InvalidInput(
                f"tag longer than {limits.max_tag_length} characters", field="tags", tag=tag[:80]
            )
        if _has_control_characters(tag) or "," in tag:
            raise InvalidInput("tags may not contain commas or control characters", field="tags")
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > limits.max_tags:
        raise InvalidInput(f"at most {limits.max_tags} tags", field="tags")
    return cleaned


def validate(draft: AssetDraft, limits: AssetLimits) -> AssetDraft:
    """Check a draft against the limits; returns it with tags normalised."""
    if draft.name is not None:
        if not draft.name.strip():
            raise InvalidInput("name must not be blank", field="name")
        if len(draft.name) > limits.max_name_length:
            raise InvalidInput(f"name longer than {limits.max_name_length}", field="name")
        if _has_control_characters(draft.name.replace("\t", " ")):
            raise InvalidInput("name may not contain control characters", field="name")
    if draft.content is not None:
        size = len(draft.content.encode("utf-8", "surrogatepass"))
        if size > limits.max_content_bytes:
            raise InvalidInput(
                f"content is {size} bytes; the limit is {limits.max_content_bytes}",
                field="content",
            )
        if not draft.content.strip():
            raise InvalidInput("content must not be blank", field="content")
    if draft.description is not None and len(draft.description) > limits.max_description_length:
        raise InvalidInput("description too long", field="description")
    if draft.language is not None and (
        not draft.language.strip() or len(draft.language) > 64 or "\n" in draft.language
    ):
        raise InvalidInput("language must be a short name like 'python'", field="language")
    if draft.metadata is not None:
        if len(json.dumps(draft.metadata, default=str)) > limits.max_metadata_bytes:
            raise InvalidInput("metadata too large", field="metadata")
    tags = None if draft.tags is None else normalise_tags(draft.tags, limits)
    return replace(draft, tags=tags, language=_language(draft.language))


def _language(language: str | None) -> str | None:
    return language.strip().lower() if language is not None else None


def new_asset(user_id: str, draft: AssetDraft) -> Asset:
    if draft.name is None or draft.content is None:
        raise InvalidInput(
            "name and content are required", field="name" if not draft.name else "content"
        )
    now = utcnow()
    return Asset(
        id=new_id(),
        user_id=user_id,
        name=draft.name,
        content=draft.content,
        description=draft.description,
        # Unlabelled snippets get a language only when the detector is confident.
        language=draft.language or detect_language(draft.content),
        tags=list(draft.tags or []),
        metadata=dict(draft.metadata or {}),
        source=draft.source,
        source_id=draft.source_id,
        created_at=now,
        updated_at=now,
    )


def apply_edit(asset: Asset, draft: AssetDraft, *, full: bool) -> bool:
    """Apply a PUT (`full`) or PATCH to `asset` in place; True if anything changed."""
    before = (
        asset.name,
        asset.content,
        asset.description,
        asset.language,
        asset.tags,
        asset.metadata,
    )
    if full:
        if draft.name is None or draft.content is None:
            raise InvalidInput("a full update needs name and content", field="name")
        asset.description = draft.description
        asset.language = draft.language
        asset.tags = list(draft.tags or [])
        asset.metadata = dict(draft.metadata or {})
    else:
        if draft.description is not None or "description" in draft.cleared:
            asset.description = draft.description
        if draft.language is not None or "language" in draft.cleared:
            asset.language = draft.language
        if draft.tags is not None:
            asset.tags = list(draft.tags)
        if draft.metadata is not None:
            asset.metadata = dict(draft.metadata)
    if draft.name is not None:
        asset.name = draft.name
    if draft.content is not None:
        asset.content = draft.content
    after = (
        asset.name,
        asset.content,
        asset.description,
        asset.language,
        asset.tags,
        asset.metadata,
    )
    if before == after:
        return False
    asset.content_hash = content_hash(asset.content)
    asset.version += 1
    asset.updated_at = utcnow()
    return True
