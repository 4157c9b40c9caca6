"""Three-way merge of asset versions (DEVIATIONS 9, 12). Pure functions over plain values.

Given the version both sides last agreed on (the base) and each side's current version:
- text edits that touch different lines merge (line-based diff3; adjacent or overlapping
  edits are a conflict, as in git);
- tags merge as sets (additions from both sides kept, removals from either side applied);
- scalar fields (name, description, language) follow the later change by HLC timestamp.
When the text cannot be merged, the configured strategy picks a whole version and the
other is returned as `loser` so the caller keeps it as a backup: nothing is dropped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from difflib import SequenceMatcher
from enum import StrEnum

from pieces_integration.domain.model import Asset


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The synced part of an asset: what both sides must agree on."""

    name: str
    content: str
    description: str | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()

    @classmethod
    def of(cls, asset: Asset) -> Snapshot:
        return cls(
            name=asset.name,
            content=asset.content,
            description=asset.description or None,
            language=(asset.language or None),
            tags=tuple(dict.fromkeys(asset.tags)),
        )

    def state_hash(self) -> str:
        """Identity of the synced state; tag order does not count as a change."""
        canonical = json.dumps(
            [self.name, self.content, self.description, self.language, sorted(self.tags)],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "content": self.content,
            "description": self.description,
            "language": self.language,
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> Snapshot:
        tags = raw.get("tags") or []
        # bandit B101: narrows a type for mypy; holds by construction, no input reaches it.
        assert isinstance(tags, list)  # nosec B101
        description, language = raw.get("description"), raw.get("language")
        return cls(
            name=str(raw["name"]),
            content=str(raw["content"]),
            description=None if description is None else str(description),
            language=None if language is None else str(language),
            tags=tuple(str(tag) for tag in tags),
        )


class Strategy(StrEnum):
    LAST_WRITER_WINS = "last_writer_wins"
    PREFER_PIECES = "prefer_pieces"
    PREFER_AIWFE = "prefer_aiwfe"


@dataclass(frozen=True, slots=True)
class MergeResult:
    merged: Snapshot
    clean: bool  # True when no edit had to be overruled
    overruled: tuple[str, ...] = ()  # fields where one side's edit lost
    loser: Snapshot | None = None  # the version to keep as a backup, when something lost
    winner_side: str | None = None  # "local" | "remote" for a whole-version decision


def _hunks(base: list[str], other: list[str]) -> list[tuple[int, int, list[str]]]:
    matcher = SequenceMatcher(a=base, b=other, autojunk=False)
    return [
        (i1, i2, other[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    ]


def merge_text(base: str, ours: str, theirs: str) -> str | None:
    """Line-based three-way merge; None when both sides edited the same or adjacent lines."""
    if ours == theirs or theirs == base:
        return ours
    if ours == base:
        return theirs
    base_lines = base.splitlines(keepends=True)
    edits = [(*h, "o") for h in _hunks(base_lines, ours.splitlines(keepends=True))]
    edits += [(*h, "t") for h in _hunks(base_lines, theirs.splitlines(keepends=True))]
    edits.sort(key=lambda edit: (edit[0], edit[1]))
    merged: list[str] = []
    position = 0
    previous: tuple[int, int, list[str], str] | None = None
    for start, end, lines, side in edits:
        if previous is not None:
            p_start, p_end, p_lines, p_side = previous
            if start <= p_end and (start, end, lines) == (p_start, p_end, p_lines):
                continue  # the same edit on both sides
            if p_side != side and start <= p_end:
                return None  # overlapping or touching edits from both sides
        if start < position:
            return None
        merged += base_lines[position:start]
        merged += lines
        position = end
        previous = (start, end, lines, side)
    merged += base_lines[position:]
    return "".join(merged)


def merge_tags(
    base: tuple[str, ...], ours: tuple[str, ...], theirs: tuple[str, ...]
) -> tuple[str, ...]:
    removed = (set(base) - set(ours)) | (set(base) - set(theirs))
    combined = list(dict.fromkeys([*ours, *theirs]))
    return tuple(tag for tag in combined if tag not in removed)


def _scalar(
    base: str | None, ours: str | None, theirs: str | None, ours_later: bool
) -> tuple[str | None, bool]:
    """(value, overruled?)"""
    if ours == theirs or theirs == base:
        return ours, False
    if ours == base:
        return theirs, False
    return (ours if ours_later else theirs), True


@dataclass(frozen=True, slots=True)
class Versions:
    base: Snapshot | None
    local: Snapshot
    remote: Snapshot
    local_is_later: bool  # by HLC: the local change happened after the remote one
    remote_side: str = "pieces"  # which side `remote` came from, for prefer_* strategies


def merge(versions: Versions, strategy: Strategy) -> MergeResult:
    base, local, remote = versions.base, versions.local, versions.remote
    if local == remote:
        return MergeResult(local, clean=True)
    if base is None:
        # Never agreed on anything (e.g. both created the "same" asset): no merge possible.
        return _pick_whole(versions, strategy)
    text = merge_text(base.content, local.content, remote.content)
    if text is None:
        return _pick_whole(versions, strategy)
    later = versions.local_is_later
    overruled = []
    name, lost = _scalar(base.name, local.name, remote.name, later)
    if lost:
        overruled.append("name")
    description, lost = _scalar(base.description, local.description, remote.description, later)
    if lost:
        overruled.append("description")
    language, lost = _scalar(base.language, local.language, remote.language, later)
    if lost:
        overruled.append("language")
    merged = Snapshot(
        name=name or local.name,
        content=text,
        description=description,
        language=language,
        tags=merge_tags(base.tags, local.tags, remote.tags),
    )
    if not overruled:
        return MergeResult(merged, clean=True)
    # A scalar edit lost: keep the losing side's whole version as a backup.
    loser = remote if later else local
    return MergeResult(merged, clean=False, overruled=tuple(overruled), loser=loser)


def _pick_whole(versions: Versions, strategy: Strategy) -> MergeResult:
    if strategy is Strategy.PREFER_PIECES:
        local_wins = versions.remote_side != "pieces"
    elif strategy is Strategy.PREFER_AIWFE:
        local_wins = versions.remote_side != "aiwfe"
    else:
        local_wins = versions.local_is_later
    winner, loser = (
        (versions.local, versions.remote) if local_wins else (versions.remote, versions.local)
    )
    return MergeResult(
        winner,
        clean=False,
        overruled=("content",),
        loser=loser,
        winner_side="local" if local_wins else "remote",
    )


class Plan(StrEnum):
    """What the pull phase does with one asset of one side."""

    NOTHING = "nothing"  # nothing new there; the push phase carries any change made here
    AGREE = "agree"  # both already hold the same state: record it as the new base
    TAKE_THEIRS = "take_theirs"  # changed only there: apply it here
    MERGE = "merge"  # changed on both sides since the base: three-way merge
    DELETE_HERE = "delete_here"  # gone there, untouched here and elsewhere: delete here
    UNLINK = "unlink"  # gone there but edited here or elsewhere: keep it, re-create there
    RESTORE = "restore"  # deleted here, edited there since: an edit beats a delete


def plan(
    base: str | None,
    here: str | None,
    there: str | None,
    *,
    changed_elsewhere: bool = False,
) -> Plan:
    """Decide from state hashes alone: the base both agreed on (None: never known), the
    state here (None: deleted here, its delete still queued) and there (None: gone there).
    `changed_elsewhere`: the other side edited it since its base, or cannot be asked now.
    """
    if here is None:
        return Plan.NOTHING if there in (None, base) else Plan.RESTORE
    if there is None:
        return Plan.DELETE_HERE if here == base and not changed_elsewhere else Plan.UNLINK
    if there == base:
        return Plan.NOTHING
    if here == there:
        return Plan.AGREE
    return Plan.TAKE_THEIRS if here == base else Plan.MERGE
