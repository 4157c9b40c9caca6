"""The emulated Pieces OS's data, rendered in the exact JSON shapes of the real API.

Assets are kept as plain records (`records`) and rendered on demand (`rendering`); the
rendered bytes are cached per asset so a 10,000-asset snapshot is cheap.
Subscribers of the identifier stream get one queue each; every change is published to all.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pieces_integration.emulators.pieces.records import (
    Annotation,
    StoredAsset,
    Tag,
    Website,
    new_id,
    timestamp,
    utc_now,
)
from pieces_integration.emulators.pieces.rendering import (
    render_annotation,
    render_asset,
    render_format,
    render_tag,
)
from pieces_integration.emulators.pieces.samples import sample_library

VERSION = "12.3.4"
KNOWN_APPLICATIONS = frozenset(
    {
        "OPEN_SOURCE",
        "PIECES_FOR_DEVELOPERS_CLI",
        "VS_CODE",
        "JETBRAINS",
        "OBSIDIAN",
        "RAYCAST",
        "MCP_CLIENT",
        "PIECES_FOR_DEVELOPERS",
        "SUBLIME",
        "JUPYTER_HUB",
    }
)


class UnknownApplication(ValueError):
    pass


class EmulatorState:
    """Everything one emulated Pieces OS holds while it runs."""

    def __init__(self, *, version: str = VERSION) -> None:
        self.version = version
        self.os_id = new_id()
        self.user_id = new_id()
        self.signed_in = True
        self.applications: dict[str, dict[str, Any]] = {}
        self.assets: dict[str, StoredAsset] = {}
        self._rendered: dict[str, bytes] = {}
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._default_app = self._application("OPEN_SOURCE", "LINUX", version)
        # A skewed clock is a fault (FaultConfig.clock_skew_seconds): the app points this at
        # the live fault configuration, so every timestamp this Pieces OS writes follows it.
        self.clock_skew: Callable[[], float] = lambda: 0.0

    def now(self) -> datetime:
        """This Pieces OS's own clock: the machine's, plus any injected skew."""
        return utc_now() + timedelta(seconds=self.clock_skew())

    # --- users and applications ---------------------------------------------------------------

    def user_profile(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "email": "dev@example.com",
            "name": "Emulated Developer",
            "username": "emulated-dev",
            "aesthetics": {"font": {"size": 12}, "theme": {"dark": True}},
        }

    def _application(self, name: str, platform: str, version: str) -> dict[str, Any]:
        return {
            "id": new_id(),
            "name": name,
            "version": version,
            "platform": platform,
            "privacy": "OPEN",
            "onboarded": False,
        }

    def all_applications(self) -> list[dict[str, Any]]:
        return [self._default_app, *self.applications.values()]

    def connect(self, body: Any) -> dict[str, Any]:
        application = body.get("application") if isinstance(body, dict) else None
        name = application.get("name") if isinstance(application, dict) else None
        if not isinstance(application, dict) or name not in KNOWN_APPLICATIONS:
            raise UnknownApplication(
                "Application Failed to connect, Please ensure this is a valid integration."
            )
        app = self._application(
            str(name), str(application.get("platform", "LINUX")), str(application.get("version"))
        )
        self.applications[app["id"]] = app
        context: dict[str, Any] = {
            "application": app,
            "health": {"os": {"id": self.os_id, "version": self.version}},
            "os": self.os_id,
        }
        if self.signed_in:
            context["user"] = self.user_profile()
        return context

    # --- assets -----------------------------------------------------------------------------

    def seed_library(self, count: int, seed: int) -> None:
        base = datetime(2025, 1, 1, tzinfo=UTC)
        for index, sample in enumerate(sample_library(count, seed)):
            moment = base.replace(microsecond=0) + (utc_now() - base) * (index / max(count, 1))
            record = StoredAsset(
                id=new_id(),
                format_id=new_id(),
                name=sample.name,
                content=sample.code,
                ext=sample.ext,
                created=moment,
                updated=moment,
                application=self._default_app,
                tags=[Tag(new_id(), text, moment) for text in sample.tags],
                websites=(
                    [Website(new_id(), sample.website[0], sample.website[1], moment)]
                    if sample.website
                    else []
                ),
                annotations=[
                    Annotation(new_id(), "DESCRIPTION", sample.description, moment, moment)
                ],
            )
            self.assets[record.id] = record

    def create_from_seed(self, seed: Any) -> dict[str, Any]:
        asset = seed.get("asset") if isinstance(seed, dict) else None
        if not isinstance(asset, dict):
            raise ValueError("Seed.asset is required")
        fmt = asset.get("format") or {}
        fragment = fmt.get("fragment") or {}
        raw = ((fragment.get("string") or {}).get("raw")) or ""
        ext = (fragment.get("metadata") or {}).get("ext") or (
            (fmt.get("classification") or {}).get("specific") or "txt"
        )
        metadata = asset.get("metadata") or {}
        application = asset.get("application")
        now = self.now()
        record = StoredAsset(
            id=new_id(),
            format_id=new_id(),
            name=metadata.get("name"),
            content=str(raw),
            ext=str(ext),
            created=now,
            updated=now,
            application=application if isinstance(application, dict) else self._default_app,
            mechanism=str(metadata.get("mechanism") or "MANUAL"),
            tags=[Tag(new_id(), str(t["text"]), now) for t in metadata.get("tags") or []],
            websites=[
                Website(new_id(), str(w.get("name") or w["url"]), str(w["url"]), now)
                for w in metadata.get("websites") or []
            ],
            annotations=[
                Annotation(new_id(), str(a.get("type") or "COMMENT"), str(a["text"]), now, now)
                for a in metadata.get("annotations") or []
            ],
        )
        self.assets[record.id] = record
        self._changed(record.id)
        return self.render(record)

    def update_from_asset(self, body: Any) -> dict[str, Any] | None:
        """POST /asset/update: take name and favorite from the full Asset sent back."""
        record = self.assets.get(str(body.get("id"))) if isinstance(body, dict) else None
        if record is None:
            return None
        if "name" in body:
            record.name = body["name"]
        if isinstance(body.get("favorited"), bool):
            record.favorited = body["favorited"]
        record.updated = self.now()
        self._changed(record.id)
        return self.render(record)

    def delete(self, asset_id: str) -> bool:
        if self.assets.pop(asset_id, None) is None:
            return False
        self._rendered.pop(asset_id, None)
        self.publish({"iterable": [{"asset": {"id": asset_id}, "deleted": True}]})
        return True

    def asset_for_format(self, format_id: str) -> StoredAsset | None:
        return next((a for a in self.assets.values() if a.format_id == format_id), None)

    def update_format_value(self, body: Any) -> dict[str, Any] | None:
        record = self.asset_for_format(str(body.get("id"))) if isinstance(body, dict) else None
        if record is None:
            return None
        raw = ((body.get("fragment") or {}).get("string") or {}).get("raw")
        if isinstance(raw, str):
            record.content = raw
        record.updated = self.now()
        self._changed(record.id)
        return self.render_format(record, full=True)

    def create_tag(self, body: Any) -> dict[str, Any]:
        text = str(body["text"])
        now = self.now()
        tag = Tag(new_id(), text, now)
        record = self.assets.get(body.get("asset") or "")
        if record is not None:
            record.tags.append(tag)
            record.updated = now
            self._changed(record.id)
        return render_tag(tag, record)

    def disassociate_tag(self, asset_id: str, tag_id: str) -> bool:
        record = self.assets.get(asset_id)
        if record is None or not any(t.id == tag_id for t in record.tags):
            return False
        record.tags = [t for t in record.tags if t.id != tag_id]
        record.updated = self.now()
        self._changed(record.id)
        return True

    def create_annotation(self, body: Any) -> dict[str, Any]:
        now = self.now()
        note = Annotation(new_id(), str(body.get("type") or "COMMENT"), str(body["text"]), now, now)
        record = self.assets.get(body.get("asset") or "")
        if record is not None:
            record.annotations.append(note)
            record.updated = now
            self._changed(record.id)
        return render_annotation(note, record)

    def find_annotation(self, annotation_id: str) -> tuple[Annotation, StoredAsset] | None:
        for record in self.assets.values():
            for note in record.annotations:
                if note.id == annotation_id:
                    return note, record
        return None

    def update_annotation(self, body: Any) -> dict[str, Any] | None:
        found = self.find_annotation(body.get("id", "")) if isinstance(body, dict) else None
        if found is None:
            return None
        note, record = found
        if isinstance(body.get("text"), str):
            note.text = body["text"]
        note.updated = record.updated = self.now()
        self._changed(record.id)
        return render_annotation(note, record)

    def search(self, query: str) -> dict[str, Any]:
        """Rank by where the words hit: name (exact), then tags/description, then code."""
        words = [w for w in query.lower().split() if w]
        hits: list[dict[str, Any]] = []
        exact = suggested = 0
        for record in self.assets.values():
            name = (record.name or "").lower()
            score, match, is_exact = 0.0, "FUZZY", False
            if words and all(w in name for w in words):
                score, match, is_exact = 1.0, "TITLE", True
            elif words and all(any(w in t.text.lower() for t in record.tags) for w in words):
                score, match = 0.8, "TAGS"
            elif words and all(any(w in a.text.lower() for a in record.annotations) for w in words):
                score, match = 0.7, "ANNOTATION"
            elif words and all(w in record.content.lower() for w in words):
                score, match = 0.6, "CONTENT"
            if score == 0.0:
                continue
            exact += is_exact
            suggested += not is_exact
            hits.append(
                {"identifier": record.id, "exact": is_exact, "score": score, "match": match}
            )
        hits.sort(key=lambda h: (-h["score"], h["identifier"]))
        return {"iterable": hits, "exact": exact, "suggested": suggested}

    # --- rendering ----------------------------------------------------------------------------

    def render(self, record: StoredAsset) -> dict[str, Any]:
        return json.loads(self.render_bytes(record))  # type: ignore[no-any-return]

    def render_bytes(self, record: StoredAsset) -> bytes:
        cached = self._rendered.get(record.id)
        if cached is None:
            cached = json.dumps(render_asset(record, self.user_id), separators=(",", ":")).encode()
            self._rendered[record.id] = cached
        return cached

    def snapshot_bytes(self) -> bytes:
        return (
            b'{"iterable":[' + b",".join(self.render_bytes(a) for a in self.assets.values()) + b"]}"
        )

    def render_format(self, record: StoredAsset, *, full: bool) -> dict[str, Any]:
        return render_format(record, self.user_id, full=full)

    # --- identifier stream --------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    def identifiers_frame(self) -> dict[str, Any]:
        return {"iterable": [{"asset": {"id": asset_id}} for asset_id in self.assets]}

    def publish(self, frame: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            queue.put_nowait(frame)

    def _changed(self, asset_id: str) -> None:
        self._rendered.pop(asset_id, None)
        record = self.assets[asset_id]
        self.publish(
            {"iterable": [{"asset": {"id": asset_id}, "updated": timestamp(record.updated)}]}
        )
