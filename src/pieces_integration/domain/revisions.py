"""Immutable revisions of team assets (issue 16): who changed what, when, and the diff.

A revision is the whole editable state of an asset at one version (its `number` is the
asset's version), its author, its content hash and a unified diff of the content against the
revision before it. Revisions are only ever added; a restore adds a new one that names the
revision it brought back (`restored_from`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime

from pieces_integration.domain.assets import AssetDraft
from pieces_integration.domain.model import Asset, new_id, utcnow

# Above this many characters on either side the diff is left out (difflib's cost grows
# with the product of the sides' line counts); the content of both revisions remains.
MAX_DIFF_INPUT = 256 * 1024


@dataclass(frozen=True, slots=True)
class Revision:
    asset_id: str
    number: int
    author_id: str | None  # None once the author's account is deleted ("deleted user")
    content_hash: str
    name: str
    content: str
    description: str | None
    language: str | None
    tags: tuple[str, ...]
    diff: str | None  # None: too large to diff, or the first revision
    restored_from: int | None = None
    created_at: datetime = field(default_factory=utcnow)
    id: str = field(default_factory=new_id)

    def draft(self) -> AssetDraft:
        """The editable state this revision holds, as a full edit (PUT) of the asset."""
        return AssetDraft(
            name=self.name,
            content=self.content,
            description=self.description,
            language=self.language,
            tags=list(self.tags),
        )


def content_diff(before: str, after: str, *, number: int) -> str | None:
    if len(before) > MAX_DIFF_INPUT or len(after) > MAX_DIFF_INPUT:
        return None
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"revision {number - 1}",
        tofile=f"revision {number}",
    )
    return "".join(lines)


def revision_of(
    asset: Asset,
    author_id: str | None,
    previous: Revision | None,
    *,
    restored_from: int | None = None,
) -> Revision:
    """The revision recording `asset` as it is now, after `previous`."""
    diff = None
    if previous is not None:
        diff = content_diff(previous.content, asset.content, number=asset.version)
    return Revision(
        asset_id=asset.id,
        number=asset.version,
        author_id=author_id,
        content_hash=asset.content_hash,
        name=asset.name,
        content=asset.content,
        description=asset.description,
        language=asset.language,
        tags=tuple(asset.tags),
        diff=diff,
        restored_from=restored_from,
    )


def revision_summary(revision: Revision) -> dict[str, object]:
    """The revision as plain JSON values (a 409's `current_revision`)."""
    return {
        "number": revision.number,
        "author_id": revision.author_id,
        "created_at": revision.created_at.isoformat(),
        "content_hash": revision.content_hash,
        "name": revision.name,
        "content": revision.content,
        "restored_from": revision.restored_from,
    }
