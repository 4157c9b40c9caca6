"""Suggestions and feedback through the API (spec 4.4, 6.3): shape, threshold, feedback in
the ranking, usage statistics and metric, AIWFE failures tolerated, push on context change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pieces_integration.bootstrap import Container, Overrides
from pieces_integration.domain.errors import AIPlatformError
from pieces_integration.domain.model import Role
from pieces_integration.ports.aiwfe import DocResult, FrequentItem, TaskTemplate
from tests.e2e.conftest import TokenFactory, make_client
from tests.e2e.helpers import call, create
from tests.fakes import HashingEmbedder

SUGGESTIONS = "/api/v1/assets/suggestions"
CONTEXT = {"current_task": "parse yaml config file", "keywords": ["yaml", "config"]}


@pytest.fixture
def api() -> Iterator[TestClient]:
    with make_client(Overrides(embedder=HashingEmbedder())) as client:
        yield client


@pytest.fixture
def fake(container: Container) -> Container:
    """The app's container, its semantic tier on the hashing embedder."""
    return container


def suggest(api: TestClient, headers: dict[str, str], context: dict[str, Any]) -> list[Any]:
    response = api.get(SUGGESTIONS, params={"context": json.dumps(context)}, headers=headers)
    assert response.status_code == 200, response.text
    result: list[Any] = response.json()
    return result


def test_suggestions_carry_score_reasoning_and_actions(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    alice = auth("alice")
    relevant = create(
        api,
        alice,
        name="parse yaml config",
        content="parse yaml config file",
        tags=["yaml", "config"],
        metadata={"file_path": "src/config.py"},
    )
    create(api, alice, name="unrelated", content="matrix multiply gpu kernel")
    call(api, fake.search.indexer.drain)
    items = suggest(api, alice, CONTEXT)
    assert [s["id"] for s in items] == [f"asset:{relevant['id']}"]
    first = items[0]
    assert first["type"] == "code_snippet"
    assert first["relevance_score"] >= fake.settings.intelligence.min_relevance_score
    assert "matches yaml, config" in first["metadata"]["reasoning"]
    assert {a["type"] for a in first["actions"]} == {"copy", "insert", "create_task", "open_file"}
    assert first["content"]["code"] == "parse yaml config file"
    assert 'pieces_suggestions_generated_total{source="hybrid",type="code_snippet"} 1.0' in (
        api.get("/metrics").text
    )


def test_keyword_only_assets_are_suggested_before_embedding(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    alice = auth("alice")
    created = create(api, alice, name="parse yaml config", content="parse yaml config file")
    assert [s["id"] for s in suggest(api, alice, CONTEXT)] == [f"asset:{created['id']}"]


def test_feedback_moves_the_ranking_and_updates_usage(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    alice = auth("alice")
    a = create(api, alice, name="parse yaml config", content="parse yaml config file a")
    b = create(api, alice, name="parse yaml config", content="load the yaml config file b")
    call(api, fake.search.indexer.drain)
    before = {s["id"]: s["relevance_score"] for s in suggest(api, alice, CONTEXT)}
    key_a, key_b = f"asset:{a['id']}", f"asset:{b['id']}"
    assert key_a in before

    def feedback(key: str, action: str) -> None:
        response = api.post(
            f"/api/v1/suggestions/{key}/feedback",
            json={"action": action, "context": CONTEXT},
            headers=alice,
        )
        assert response.status_code == 201, response.text

    feedback(key_a, "shown")
    feedback(key_a, "dismissed")
    feedback(key_b, "accepted")
    after = {s["id"]: s for s in suggest(api, alice, CONTEXT)}
    assert key_a not in after  # dismissed in this context: below the threshold now
    if key_b in before:
        assert after[key_b]["relevance_score"] > before[key_b]
    assert "you used it in this context" in after[key_b]["metadata"]["reasoning"]
    asset_b = api.get(f"/api/v1/assets/{b['id']}", headers=alice).json()
    assert asset_b["usage_count"] == 1 and asset_b["last_accessed"] is not None
    metrics = api.get("/metrics").text
    assert 'pieces_suggestion_feedback_total{action="accepted"} 1.0' in metrics
    assert 'pieces_suggestion_feedback_total{action="dismissed"} 1.0' in metrics


def test_feedback_validates_action_and_ownership(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    a = create(api, auth("alice"), name="x", content="y")
    bad = api.post(
        "/api/v1/suggestions/s1/feedback", json={"action": "liked"}, headers=auth("alice")
    )
    assert bad.status_code == 422
    other = api.post(
        f"/api/v1/suggestions/asset:{a['id']}/feedback",
        json={"action": "accepted"},
        headers=auth("bob"),
    )
    assert other.status_code in (403, 404)
    unknown = api.post(
        "/api/v1/suggestions/no-such-suggestion/feedback",
        json={"action": "shown"},
        headers=auth("alice"),
    )
    assert unknown.status_code == 404


class FakeAIWFE:
    """The AIWFE client's suggestion-source methods, healthy or failing."""

    def __init__(self, *, down: bool) -> None:
        self.down = down

    def _check(self) -> None:
        if self.down:
            raise AIPlatformError("AIWFE is unavailable")

    async def get_task_templates(self, user_id: str, **_: Any) -> list[TaskTemplate]:
        self._check()
        return [
            TaskTemplate(
                id="t1",
                name="parse yaml config",
                description="Task: parse the yaml config file",
                content="parse yaml config file steps",
                tags=("yaml", "config"),
            )
        ]

    async def search_documentation(self, query: str, **_: Any) -> list[DocResult]:
        self._check()
        return [
            DocResult(
                id="d1",
                title="yaml config",
                summary="yaml config file: parse it with the safe loader",
                content="docs",
            )
        ]

    async def get_user_frequent_items(self, user_id: str, **_: Any) -> list[FrequentItem]:
        self._check()
        return [
            FrequentItem(
                id="f1",
                type="code_snippet",
                title="parse yaml config",
                usage_count=12,
                last_used=datetime.now(UTC),
                content="yaml.safe_load(open('config file'))",
            )
        ]


def test_aiwfe_sources_join_and_their_failure_is_tolerated() -> None:
    aiwfe = FakeAIWFE(down=False)
    with make_client(Overrides(embedder=HashingEmbedder(), aiwfe=aiwfe)) as api:
        container: Container = api.app.state.container  # type: ignore[attr-defined]
        alice = {
            "Authorization": "Bearer " + container.jwt.issue("alice", Role.USER, ttl_seconds=60)
        }
        _aiwfe_sources_join_then_fail(api, alice, aiwfe)


def _aiwfe_sources_join_then_fail(api: TestClient, alice: dict[str, str], aiwfe: FakeAIWFE) -> None:
    create(api, alice, name="parse yaml config", content="parse yaml config file")
    ids = {s["id"] for s in suggest(api, alice, CONTEXT)}
    assert {"template:t1", "doc:d1"} <= ids
    template = next(s for s in suggest(api, alice, CONTEXT) if s["id"] == "template:t1")
    assert template["type"] == "template" and template["source"] == "aiwfe"
    aiwfe.down = True
    other_context = {**CONTEXT, "keywords": ["yaml"]}  # not cached
    ids = {s["id"] for s in suggest(api, alice, other_context)}
    assert ids and not any(i.startswith(("template:", "doc:", "frequent:")) for i in ids)


def test_a_context_change_pushes_suggestions_updated(
    api: TestClient, fake: Container, auth: TokenFactory
) -> None:
    alice = auth("alice")
    create(api, alice, name="parse yaml config", content="parse yaml config file")
    portal = api.portal  # type: ignore[attr-defined]
    subscription_cm = fake.events.log.tail()
    subscription = portal.call(subscription_cm.__aenter__)
    try:
        response = api.post(
            "/api/v1/context/alice",
            json={"current_task": "parse yaml config file", "keywords": ["yaml", "config"]},
            headers=alice,
        )
        assert response.status_code in (200, 201), response.text
        seen = []
        for _ in range(10):
            event = portal.call(subscription.get, 5)
            if event is None:
                break
            seen.append(event.type)
            if event.type == "suggestions_updated":
                suggestions = event.payload["suggestions"]
                assert suggestions and suggestions[0]["title"] == "parse yaml config"
                break
        assert "suggestions_updated" in seen, seen
    finally:
        portal.call(subscription_cm.__aexit__, None, None, None)
