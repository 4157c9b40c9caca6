"""Pieces payloads <-> our domain, in one place, through the official SDK's models.

Parsing goes through `pieces_os_client` models (`Asset.from_dict`, ...), so a payload the SDK
would reject is rejected here too; building goes through them and is serialised the way the
SDK's `ApiClient.sanitize_for_serialization` does (aliases, no None, ISO datetimes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from urllib.parse import quote, unquote

from pieces_os_client.models.annotation_type_enum import AnnotationTypeEnum
from pieces_os_client.models.application import Application
from pieces_os_client.models.asset import Asset as PiecesAsset
from pieces_os_client.models.assets_search_with_filters_input import (
    AssetsSearchWithFiltersInput,
)
from pieces_os_client.models.classification_specific_enum import ClassificationSpecificEnum
from pieces_os_client.models.context import Context
from pieces_os_client.models.flattened_assets import FlattenedAssets
from pieces_os_client.models.fragment_metadata import FragmentMetadata
from pieces_os_client.models.returned_user_profile import ReturnedUserProfile
from pieces_os_client.models.searched_assets import SearchedAssets
from pieces_os_client.models.seed import Seed
from pieces_os_client.models.seed_type_enum import SeedTypeEnum
from pieces_os_client.models.seeded_annotation import SeededAnnotation
from pieces_os_client.models.seeded_asset import SeededAsset
from pieces_os_client.models.seeded_asset_metadata import SeededAssetMetadata
from pieces_os_client.models.seeded_asset_tag import SeededAssetTag
from pieces_os_client.models.seeded_asset_website import SeededAssetWebsite
from pieces_os_client.models.seeded_connector_connection import SeededConnectorConnection
from pieces_os_client.models.seeded_format import SeededFormat
from pieces_os_client.models.seeded_fragment import SeededFragment
from pieces_os_client.models.seeded_tag import SeededTag
from pieces_os_client.models.seeded_tracked_application import SeededTrackedApplication
from pieces_os_client.models.streamed_identifiers import StreamedIdentifiers
from pieces_os_client.models.transferable_string import TransferableString

from pieces_integration.domain.languages import PLAIN_EXTENSION, canonical_language, extension_of
from pieces_integration.domain.model import Asset, AssetSource
from pieces_integration.ports.pieces import (
    AssetDraft,
    IdentifierEvent,
    PiecesSession,
    PiecesUser,
    SearchHit,
)

# Pieces classifies by extension code; the domain speaks language names (spec 6.3
# examples). Both directions go through the one vocabulary, so a label survives a round trip.
_PIECES_EXTENSIONS = frozenset(member.value for member in ClassificationSpecificEnum)


class PayloadError(ValueError):
    """Pieces answered with a payload the SDK's models reject."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_wire(model: Any) -> Any:
    """An SDK model as the SDK would put it on the wire."""
    return json.loads(json.dumps(model.to_dict(), default=_jsonable))


def _parse(model: Any, payload: Any) -> Any:
    try:
        parsed = model.from_dict(payload)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise PayloadError(f"unexpected {model.__name__} payload: {exc}") from exc
    if parsed is None:
        raise PayloadError(f"empty {model.__name__} payload")
    return parsed


def language_of(ext: str | None) -> str | None:
    return canonical_language(ext)


def ext_of(language: str | None) -> str:
    code = extension_of(language)
    return code if code in _PIECES_EXTENSIONS else PLAIN_EXTENSION


# --- connect / user --------------------------------------------------------------------------


def connect_body(name: str, platform: str, version: str) -> Any:
    return to_wire(
        SeededConnectorConnection(
            application=SeededTrackedApplication(name=name, platform=platform, version=version)
        )
    )


def parse_context(payload: Any) -> PiecesSession:
    context = _parse(Context, payload)
    return PiecesSession(
        application_id=context.application.id,
        os_id=context.os,
        version=context.health.os.version,
        application=to_wire(context.application),
    )


def parse_user(payload: Any) -> PiecesUser | None:
    profile = _parse(ReturnedUserProfile, payload).user
    if profile is None:
        return None
    return PiecesUser(
        id=profile.id, email=profile.email, name=profile.name, username=profile.username
    )


# --- assets ----------------------------------------------------------------------------------


def _text_of(asset: PiecesAsset) -> tuple[str, str | None]:
    """Code text and extension: preview first (as the SDK wrapper does), then original."""
    for referenced in (asset.preview.base, asset.original):
        reference = referenced.reference if referenced is not None else None
        if reference is None:
            continue
        ext = reference.classification.specific if reference.classification else None
        fragment = reference.fragment
        if fragment is not None and fragment.string is not None and fragment.string.raw:
            return fragment.string.raw, (ext.value if ext is not None else None)
        file = reference.file
        if file is not None and file.string is not None and file.string.raw:
            return file.string.raw, (ext.value if ext is not None else None)
    return "", None


# --- provenance ------------------------------------------------------------------------------
#
# Where a snippet came from travels as one of the asset's websites (Pieces' "related links",
# `SeededAssetMetadata.websites`): the place Pieces itself records a snippet's origin, carried
# by the real API and the SDK's models, and kept when the asset is edited. An AIWFE chat has
# no public web address, so the link is `aiwfe://chats/<chat id>`.

_AIWFE_CHAT = "aiwfe://chats/"


def origin_website(source: str | None, source_id: str | None) -> tuple[str, str] | None:
    """(name, url) of the website recording an asset's origin: an AIWFE chat. None for
    other origins (the user's own assets, Pieces' own), which Pieces is not told about."""
    if source != AssetSource.AIWFE.value or not source_id:
        return None
    return f"AIWFE chat {source_id}", _AIWFE_CHAT + quote(source_id, safe="")


def origin_of(urls: list[str]) -> dict[str, str] | None:
    """The origin `origin_website` recorded among an asset's website URLs, if any."""
    for url in urls:
        chat = url.removeprefix(_AIWFE_CHAT)
        if chat != url and chat and "/" not in chat:
            return {"source": AssetSource.AIWFE.value, "source_id": unquote(chat)}
    return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def to_domain(asset: PiecesAsset, user_id: str) -> Asset:
    content, ext = _text_of(asset)
    tags = [t.text for t in (asset.tags.iterable if asset.tags else [])]
    websites = [
        {"name": w.name, "url": w.url} for w in (asset.websites.iterable if asset.websites else [])
    ]
    origin = origin_of([w["url"] for w in websites])
    annotations = asset.annotations.iterable if asset.annotations else []
    description = next(
        (a.text for a in annotations if a.type == AnnotationTypeEnum.DESCRIPTION), None
    )
    return Asset(
        id=asset.id,
        user_id=user_id,
        name=asset.name or "Unnamed snippet",
        content=content,
        source=AssetSource.PIECES,
        description=description,
        language=language_of(ext),
        tags=tags,
        source_id=asset.id,
        metadata={
            "websites": websites,
            **({"origin": origin} if origin is not None else {}),
            "pieces": {
                "format_id": asset.original.id,
                "extension": ext,
                "mechanism": asset.mechanism.value,
                "favorited": bool(asset.favorited),
                "creator": asset.creator,
            },
        },
        created_at=_aware(asset.created.value),
        updated_at=_aware(asset.updated.value),
    )


def parse_asset(payload: Any) -> PiecesAsset:
    parsed: PiecesAsset = _parse(PiecesAsset, payload)
    return parsed


def asset_from_payload(payload: Any, user_id: str) -> Asset:
    return to_domain(parse_asset(payload), user_id)


_WS = " \t\n\r"


def iter_snapshot_items(body: bytes) -> Iterator[Any]:
    """The entries of an `Assets` document's `iterable`, decoded one at a time.

    A single `json.loads` of a 30 MB library holds the GIL for the whole parse (seconds on a
    busy machine), freezing the event loop even from a worker thread; decoding element by
    element keeps every hold short.
    """
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    end = len(text)

    def skip(i: int) -> int:
        while i < end and text[i] in _WS:
            i += 1
        return i

    i = skip(0)
    if i >= end or text[i] != "{":
        raise PayloadError("GET /assets did not answer an Assets object")
    i = skip(i + 1)
    seen_iterable = False
    while i < end and text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i = skip(i)
        if i >= end or text[i] != ":":
            raise PayloadError("malformed Assets object")
        i = skip(i + 1)
        if key == "iterable":
            seen_iterable = True
            if text[i] != "[":
                raise PayloadError("Assets.iterable is not a list")
            i = skip(i + 1)
            while i < end and text[i] != "]":
                item, i = decoder.raw_decode(text, i)
                yield item
                i = skip(i)
                if i < end and text[i] == ",":
                    i = skip(i + 1)
            i = skip(i + 1)
        else:
            _, i = decoder.raw_decode(text, i)
            i = skip(i)
        if i < end and text[i] == ",":
            i = skip(i + 1)
    if not seen_iterable:
        raise PayloadError("GET /assets did not answer an Assets object")


def assets_from_snapshot(body: bytes, user_id: str) -> list[Asset]:
    """Decode and map a whole `GET /assets` answer. CPU-bound: run it in a worker thread."""
    try:
        return [asset_from_payload(item, user_id) for item in iter_snapshot_items(body)]
    except (ValueError, IndexError) as exc:
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError(f"GET /assets answered malformed JSON: {exc}") from exc


def identifiers_from_snapshot(payload: Any) -> list[str]:
    flattened = _parse(FlattenedAssets, payload)
    return [item.id for item in flattened.iterable or []]


def seed_body(draft: AssetDraft, application: Any) -> Any:
    metadata = SeededAssetMetadata(
        name=draft.name,
        tags=[SeededAssetTag(text=tag) for tag in draft.tags] or None,
        websites=[SeededAssetWebsite(name=name, url=url) for name, url in draft.websites] or None,
        annotations=(
            [SeededAnnotation(type=AnnotationTypeEnum.DESCRIPTION, text=draft.description)]
            if draft.description
            else None
        ),
    )
    seed = Seed(
        type=SeedTypeEnum.SEEDED_ASSET,
        asset=SeededAsset(
            application=Application.from_dict(application),
            format=SeededFormat(
                fragment=SeededFragment(
                    string=TransferableString(raw=draft.content),
                    metadata=FragmentMetadata(ext=ext_of(draft.language)),
                )
            ),
            metadata=metadata,
        ),
    )
    return to_wire(seed)


def tag_body(text: str, asset_id: str) -> Any:
    return to_wire(SeededTag(text=text, asset=asset_id))


def description_body(text: str, asset_id: str) -> Any:
    return to_wire(SeededAnnotation(type=AnnotationTypeEnum.DESCRIPTION, text=text, asset=asset_id))


def filtered_search_body(query: str) -> Any:
    return to_wire(AssetsSearchWithFiltersInput(query=query))


def parse_search(payload: Any) -> list[SearchHit]:
    searched = _parse(SearchedAssets, payload)
    hits = [
        SearchHit(asset_id=h.identifier, score=float(h.score), exact=h.exact, match=h.match.value)
        for h in searched.iterable
    ]
    # Exact hits first, then suggested, as the SDK wrapper orders them.
    return sorted(hits, key=lambda h: (not h.exact, -h.score))


def parse_identifier_frame(payload: Any, *, first: bool) -> list[IdentifierEvent]:
    frame = _parse(StreamedIdentifiers, payload)
    events: list[IdentifierEvent] = []
    for item in frame.iterable:
        if item.asset is None:
            continue
        events.append(
            IdentifierEvent(asset_id=item.asset.id, deleted=bool(item.deleted), snapshot=first)
        )
    return events
