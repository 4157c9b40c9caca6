"""Search through the API: keyword tier at write time, semantic tier from the queue,
filters, context boosts, limits, and no vector left after deleting an asset or a user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pieces_integration.bootstrap import Container, Overrides
from pieces_integration.ports.vectors import ASSETS, CONTEXTS
from tests.e2e.conftest import TokenFactory, make_client
from tests.e2e.helpers import call, create
from tests.fakes import HashingEmbedder

SEARCH = "/api/v1/assets/search"


@pytest.fixture
def api() -> Iterator[TestClient]:
    with make_client(Overrides(embedder=HashingEmbedder())) as client:
        yield client


@pytest.fixture
def fake(container: Container) -> Container:
    """The app's container, its semantic tier on the hashing embedder."""
    return container


def test_an_asset_is_keyword_searchable_the_moment_it_is_stored(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    alice = auth("alice")
    created = create(
        api,
        alice,
        name="retryWithBackoff",
        content="def retry_with_backoff(fn):\n    return exponential(fn)\n",
        language="python",
        tags=["network"],
    )
    create(api, alice, name="unrelated", content="SELECT 1", language="sql")
    # Not embedded yet: only the keyword tier knows it.
    assert call(api, fake.search.queue.depth) == 2
    response = api.post(SEARCH, json={"query": "backoff"}, headers=alice)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["asset"]["id"] for r in body["results"]] == [created["id"]]
    assert body["total"] == 1 and body["took_ms"] >= 0
    assert any("backoff" in h for h in body["results"][0]["highlights"])
    assert body["results"][0]["score"] > 0


def test_filters_scope_by_language_and_tags_and_never_cross_users(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    alice, bob = auth("alice"), auth("bob")
    py = create(
        api, alice, name="parse config", content="import json", language="Python", tags=["Config"]
    )
    js = create(
        api, alice, name="parse config", content="JSON.parse(x)", language="js", tags=["web"]
    )
    create(api, bob, name="parse config", content="bob's secret parse config")

    def ids(body: dict[str, Any], headers: dict[str, str]) -> set[str]:
        response = api.post(SEARCH, json=body, headers=headers)
        assert response.status_code == 200, response.text
        return {r["asset"]["id"] for r in response.json()["results"]}

    assert ids({"query": "parse config"}, alice) == {py["id"], js["id"]}
    assert ids({"query": "parse config", "filters": {"language": "python"}}, alice) == {py["id"]}
    assert ids({"query": "parse config", "filters": {"language": "javascript"}}, alice) == {
        js["id"]
    }
    assert ids({"query": "parse config", "filters": {"tags": ["config"]}}, alice) == {py["id"]}
    forbidden = api.post(
        SEARCH, json={"query": "parse", "filters": {"user_id": "bob"}}, headers=alice
    )
    assert forbidden.status_code == 403
    admin = auth("root", "admin")
    assert len(ids({"query": "secret", "filters": {"user_id": "bob"}}, admin)) == 1


def test_context_boosts_the_matching_language(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    alice = auth("alice")
    a = create(api, alice, name="read file", content="read the file", language="go")
    b = create(api, alice, name="read file", content="read the file", language="rust")
    for language, first in (("go", a), ("rust", b)):
        response = api.post(
            SEARCH,
            json={"query": "read file", "context": {"language": language}},
            headers=alice,
        )
        assert response.json()["results"][0]["asset"]["id"] == first["id"]


def test_semantic_tier_indexes_from_the_queue_and_reports_lag(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    alice = auth("alice")
    for i in range(3):
        create(api, alice, name=f"snippet {i}", content=f"print({i})", language="python")
    store = fake.search.index.store
    assert call(api, store.count_dense, ASSETS, "alice") == 0
    indexer = fake.search.indexer
    assert call(api, indexer.drain) == 3
    assert call(api, store.count_dense, ASSETS, "alice") == 3
    assert call(api, fake.search.queue.depth) == 0
    assert "pieces_semantic_index_lag 0.0" in api.get("/metrics").text


def test_query_longer_than_the_limit_is_422_naming_the_field(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    limit = fake.settings.api.max_query_length
    response = api.post(SEARCH, json={"query": "x" * (limit + 1)}, headers=auth("alice"))
    assert response.status_code == 422
    assert "query" in response.text


def test_suggestions_path_is_not_taken_for_an_asset_id(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    response = api.get("/api/v1/assets/suggestions", headers=auth("alice"))
    assert response.status_code == 200, response.text
    assert response.json() == []


def test_language_is_detected_when_missing(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    created = create(
        api,
        auth("alice"),
        name="helper",
        content="def helper(x):\n    return x * 2\n\nclass Box:\n    pass\n",
    )
    assert created["language"] == "python"


def test_no_vector_remains_after_deleting_an_asset(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    alice = auth("alice")
    keep = create(api, alice, name="keep me", content="keep")
    gone = create(api, alice, name="delete me", content="delete")
    call(api, fake.search.indexer.drain)
    store = fake.search.index.store
    assert call(api, store.count, ASSETS, "alice") == 2
    assert api.delete(f"/api/v1/assets/{gone['id']}", headers=alice).status_code == 204
    assert call(api, store.count, ASSETS, "alice") == 1
    call(api, fake.search.indexer.drain)  # the queued delete changes nothing
    hits = api.post(SEARCH, json={"query": "delete me keep"}, headers=alice).json()["results"]
    assert [h["asset"]["id"] for h in hits] == [keep["id"]]
    assert call(api, store.count, ASSETS, "alice") == 1


def test_no_vector_remains_after_deleting_a_user(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    alice = auth("alice")
    asset = create(api, alice, name="parse config", content="json config parse")
    create(api, auth("bob"), name="bob's", content="bob")
    call(api, fake.search.indexer.drain)
    feedback = api.post(
        f"/api/v1/suggestions/asset:{asset['id']}/feedback",
        json={"action": "accepted", "context": {"current_task": "parse config"}},
        headers=alice,
    )
    assert feedback.status_code == 201, feedback.text
    store = fake.search.index.store
    assert call(api, store.count, CONTEXTS, "alice") == 1
    response = api.delete("/api/v1/users/alice", headers=alice)
    assert response.status_code in (200, 204), response.text
    assert call(api, store.count, ASSETS, "alice") == 0
    assert call(api, store.count, CONTEXTS, "alice") == 0
    assert call(api, store.count, ASSETS, "bob") == 1
