"""Suggestions score assets found by keyword only with the dense vectors the store already
holds, and encode only assets the semantic indexer has not reached yet."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest
from fastapi.testclient import TestClient

from pieces_integration.bootstrap import Container, Overrides
from tests.e2e.conftest import TokenFactory, make_client
from tests.e2e.helpers import call, create
from tests.fakes import HashingEmbedder

SUGGESTIONS = "/api/v1/assets/suggestions"


class RecordingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return await super().embed(texts)


@pytest.fixture
def embedder() -> RecordingEmbedder:
    return RecordingEmbedder()


@pytest.fixture
def api(embedder: RecordingEmbedder) -> Iterator[TestClient]:
    with make_client(Overrides(embedder=embedder)) as client:
        yield client


def test_keyword_hits_reuse_stored_vectors_and_only_unindexed_ones_are_encoded(
    api: TestClient, container: Container, auth: TokenFactory, embedder: RecordingEmbedder
) -> None:
    alice = auth("alice")
    # 21 assets closer to the context in the dense tier fill its top 20; the target is
    # found through its rare keyword only.
    for n in range(21):
        create(api, alice, name=f"decoy {n}", content="stripes " * 5)
    target = create(
        api, alice, name="animals", content="zebra quagga okapi giraffe lion tiger bear wolf"
    )
    call(api, container.search.indexer.drain)

    def suggest(context: dict[str, object]) -> None:
        response = api.get(SUGGESTIONS, params={"context": json.dumps(context)}, headers=alice)
        assert response.status_code == 200, response.text

    embedder.texts.clear()
    suggest({"current_task": "zebra stripes", "keywords": ["zebra"]})
    assert embedder.texts == ["zebra stripes zebra"]  # the context only; no asset re-encoded
    assert target["id"]

    fresh = create(api, alice, name="fresh", content="zebra newly written")  # not indexed yet
    embedder.texts.clear()
    suggest({"current_task": "zebra stripes", "keywords": ["zebra", "newly"]})
    assert embedder.texts[0] == "zebra stripes zebra newly"
    assert len(embedder.texts) == 2 and "zebra newly written" in embedder.texts[1]
    assert fresh["id"]
