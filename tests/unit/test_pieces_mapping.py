"""Snapshot decoding element by element agrees with json.loads, and rejects what it should;
an asset's origin (an AIWFE chat) survives the trip through a seed and back."""

from __future__ import annotations

import json

import pytest
from pieces_os_client.models.seed import Seed

from pieces_integration.adapters.pieces_os import mapping
from pieces_integration.domain.code_blocks import language_from_info
from pieces_integration.emulators.pieces.state import EmulatorState
from pieces_integration.ports.pieces import AssetDraft


def test_incremental_snapshot_decoding_matches_json_loads() -> None:
    state = EmulatorState()
    state.seed_library(40, seed=9)
    body = state.snapshot_bytes()
    assert list(mapping.iter_snapshot_items(body)) == json.loads(body)["iterable"]
    spaced = json.dumps(
        {"score": {"x": [1, 2]}, "iterable": json.loads(body)["iterable"], "indices": {"a": 1}},
        indent=2,
    ).encode()
    assert len(list(mapping.iter_snapshot_items(spaced))) == 40
    assets = mapping.assets_from_snapshot(body, "u1")
    assert [a.id for a in assets] == list(state.assets)


@pytest.mark.parametrize(
    "body", [b"[]", b'{"other": 1}', b'{"iterable": {}}', b'{"iterable": [1,', b"not json"]
)
def test_malformed_snapshots_are_payload_errors(body: bytes) -> None:
    with pytest.raises(mapping.PayloadError):
        mapping.assets_from_snapshot(body, "u1")


def test_language_names_round_trip_through_extensions() -> None:
    assert mapping.ext_of("python") == "py" and mapping.language_of("py") == "python"
    assert mapping.ext_of("TypeScript") == "ts" and mapping.ext_of("klingon") == "txt"
    assert mapping.ext_of(None) == "txt" and mapping.language_of(None) is None


# Fence info strings as chat assistants write them, and the label the chat import stores.
CHAT_FENCES = [
    ("sh", "bash"),
    ("bash", "bash"),
    ("shell", "bash"),
    ("zsh", "bash"),
    ("py", "python"),
    ("jsx", "javascript"),
    ("tsx", "tsx"),
    ("yml", "yaml"),
    ("c++", "cpp"),
    ("C#", "csharp"),
    ("postgres", "sql"),
    ("dockerfile", "docker"),
    ("pwsh", "powershell"),
    ("md", "markdown"),
    ("text", None),
]


@pytest.mark.parametrize(("fence", "label"), CHAT_FENCES)
def test_a_chat_snippet_keeps_its_language_through_a_pieces_round_trip(
    fence: str, label: str | None
) -> None:
    # Issue #19 (6): a snippet fenced `sh` was stored as "bash" and read back as "shell".
    stored = language_from_info(fence)
    assert stored == label
    state = EmulatorState()
    application = state.connect(mapping.connect_body("OPEN_SOURCE", "LINUX", "0.1.0"))
    draft = AssetDraft(content="echo hi\n", language=label, name="snippet")
    body = mapping.seed_body(draft, application["application"])
    assert mapping.asset_from_payload(state.create_from_seed(body), "u1").language == label


@pytest.mark.parametrize("chat_id", ["chat_1", "c/7 ü?#%", "a b"])
def test_an_aiwfe_chat_origin_round_trips_through_a_website(chat_id: str) -> None:
    website = mapping.origin_website("aiwfe", chat_id)
    assert website is not None
    name, url = website
    assert url.startswith("aiwfe://chats/") and "/" not in url.removeprefix("aiwfe://chats/")
    assert name == f"AIWFE chat {chat_id}"
    others = ["https://docs.python.org/", "aiwfe://chats/", "aiwfe://other/x"]
    assert mapping.origin_of([*others, url]) == {"source": "aiwfe", "source_id": chat_id}


def test_only_aiwfe_origins_are_recorded() -> None:
    assert mapping.origin_website("user", "u1") is None
    assert mapping.origin_website("pieces", "p1") is None
    assert mapping.origin_website("aiwfe", None) is None
    assert mapping.origin_website("aiwfe", "") is None
    assert mapping.origin_of(["https://x.y", "aiwfe://chats/a/b", "aiwfe:/chats/a"]) is None


def test_the_seed_carries_the_origin_and_the_asset_reports_it() -> None:
    state = EmulatorState()
    connected = mapping.connect_body("OPEN_SOURCE", "LINUX", "0.1.0")
    application = state.connect(connected)["application"]
    website = mapping.origin_website("aiwfe", "chat_42")
    assert website is not None
    draft = AssetDraft(content="print(1)\n", language="python", name="p", websites=(website,))
    body = mapping.seed_body(draft, application)
    seed = Seed.from_dict(body)  # the SDK's own model accepts it
    assert seed is not None and seed.asset is not None and seed.asset.metadata is not None
    assert [(w.name, w.url) for w in seed.asset.metadata.websites or []] == [website]
    asset = mapping.asset_from_payload(state.create_from_seed(body), "u1")
    assert asset.metadata["origin"] == {"source": "aiwfe", "source_id": "chat_42"}
    assert asset.metadata["websites"] == [{"name": website[0], "url": website[1]}]
    plain = mapping.seed_body(AssetDraft(content="x = 1\n", language="python"), application)
    assert "origin" not in mapping.asset_from_payload(state.create_from_seed(plain), "u1").metadata
