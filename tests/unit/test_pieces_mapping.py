"""Snapshot decoding element by element agrees with json.loads, and rejects what it should."""

from __future__ import annotations

import json

import pytest

from pieces_integration.adapters.pieces_os import mapping
from pieces_integration.emulators.pieces.state import EmulatorState


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
