"""The emulated Pieces OS's records in the exact JSON shapes of the real API.

Assets render into the "useful asset" form of the reference (§3.1): the original format
inlined as a reference, tags, websites and annotations as `{iterable: [...]}`.
"""

from __future__ import annotations

from typing import Any

from pieces_integration.emulators.pieces.records import Annotation, StoredAsset, Tag, timestamp

_EXT_GENERIC = {"md": "TEXT", "txt": "TEXT"}


def render_format(record: StoredAsset, creator: str, *, full: bool) -> dict[str, Any]:
    size = len(record.content.encode())
    flat: dict[str, Any] = {
        "id": record.format_id,
        "creator": creator,
        "created": timestamp(record.created),
        "updated": timestamp(record.updated),
        "role": "BOTH",
        "application": record.application,
        "bytes": {"value": size, "readable": f"{size} B"},
        "classification": {
            "generic": _EXT_GENERIC.get(record.ext, "CODE"),
            "specific": record.ext,
        },
        "fragment": {"string": {"raw": record.content}, "metadata": {"ext": record.ext}},
    }
    flat["asset"] = _flattened_asset(record, creator) if full else record.id
    return flat


def _flattened_asset(record: StoredAsset, creator: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "creator": creator,
        "mechanism": record.mechanism,
        "created": timestamp(record.created),
        "updated": timestamp(record.updated),
        "formats": {"iterable": [{"id": record.format_id}]},
        "original": record.format_id,
        "preview": {"base": record.format_id},
    }


def render_tag(tag: Tag, record: StoredAsset | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": tag.id,
        "text": tag.text,
        "category": "UNKNOWN",
        "mechanism": "MANUAL",
        "created": timestamp(tag.created),
        "updated": timestamp(tag.created),
    }
    if record is not None:
        out["assets"] = {"iterable": [{"id": record.id}]}
    return out


def render_annotation(note: Annotation, record: StoredAsset | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": note.id,
        "type": note.type,
        "text": note.text,
        "mechanism": "MANUAL",
        "created": timestamp(note.created),
        "updated": timestamp(note.updated),
    }
    if record is not None:
        out["asset"] = {"id": record.id}
    return out


def render_asset(record: StoredAsset, creator: str) -> dict[str, Any]:
    reference = render_format(record, creator, full=False)
    asset: dict[str, Any] = {
        "id": record.id,
        "creator": creator,
        "mechanism": record.mechanism,
        "favorited": record.favorited,
        "created": timestamp(record.created),
        "updated": timestamp(record.updated),
        "formats": {"iterable": []},
        "original": {"id": record.format_id, "reference": reference},
        "preview": {"base": {"id": record.format_id, "reference": reference}},
        "tags": {"iterable": [render_tag(t, None) for t in record.tags]},
        "websites": {
            "iterable": [
                {
                    "id": w.id,
                    "name": w.name,
                    "url": w.url,
                    "created": timestamp(w.created),
                    "updated": timestamp(w.created),
                }
                for w in record.websites
            ]
        },
        "annotations": {"iterable": [render_annotation(a, None) for a in record.annotations]},
    }
    if record.name is not None:
        asset["name"] = record.name
    return asset
