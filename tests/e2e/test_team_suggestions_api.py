"""Suggestions with team assets over HTTP (issue 16): `scope` as in search (default mine);
another member's shared asset comes with source `team` and an attribution; outsiders and
removed members never get a team's assets, not even from the cache."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pieces_integration.bootstrap import Container, Overrides
from tests.e2e.conftest import TokenFactory, make_client
from tests.e2e.helpers import add_member, call, create, new_team
from tests.fakes import HashingEmbedder

SUGGESTIONS = "/api/v1/assets/suggestions"
CONTEXT = {"current_task": "parse yaml config file", "keywords": ["yaml", "config"]}


@pytest.fixture
def api() -> Iterator[TestClient]:
    with make_client(Overrides(embedder=HashingEmbedder())) as client:
        yield client


def suggest(
    api: TestClient, headers: dict[str, str], scope: str | None = None
) -> dict[str, dict[str, Any]]:
    """The suggestions for CONTEXT, by asset name."""
    params = {"context": json.dumps(CONTEXT)}
    if scope is not None:
        params["scope"] = scope
    response = api.get(SUGGESTIONS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return {s["title"]: s for s in response.json()}


def _yaml_asset(api: TestClient, headers: dict[str, str], name: str, word: str) -> Any:
    return create(
        api,
        headers,
        name=name,
        content=f"parse yaml config file {word}",
        tags=["yaml", "config"],
    )


@pytest.fixture
def library(api: TestClient, auth: TokenFactory, container: Container) -> dict[str, str]:
    """alice owns team A (bob member, carol viewer), dave owns team B; each shares one
    asset about the context; bob has one of his own. Everything is embedded."""
    alice, dave = auth("alice"), auth("dave")
    team_a, team_b = new_team(api, alice, "A")["id"], new_team(api, dave, "B")["id"]
    add_member(api, alice, team_a, "bob", "member")
    add_member(api, alice, team_a, "carol", "viewer")
    shared = _yaml_asset(api, alice, "alice-shared", "alpha")
    _yaml_asset(api, alice, "alice-private", "bravo")
    _yaml_asset(api, auth("bob"), "bob-own", "charlie")
    other = _yaml_asset(api, dave, "dave-shared", "delta")
    for headers, asset_id, team_id in ((alice, shared["id"], team_a), (dave, other["id"], team_b)):
        response = api.post(
            f"/api/v1/assets/{asset_id}/shares", json={"team_id": team_id}, headers=headers
        )
        assert response.status_code == 201, response.text
    call(api, container.search.indexer.drain)
    return {"team_a": team_a, "team_b": team_b, "shared": shared["id"]}


def test_members_get_team_suggestions_with_source_team_and_attribution(
    api: TestClient, auth: TokenFactory, library: dict[str, str]
) -> None:
    for member in ("bob", "carol"):  # a viewer reads the library too
        team = suggest(api, auth(member), "team")
        assert set(team) == {"alice-shared"}, team
        item = team["alice-shared"]
        assert item["id"] == f"asset:{library['shared']}"
        assert item["source"] == "team"
        attribution = item["attribution"]
        assert attribution["team_id"] == library["team_a"] and attribution["team_name"] == "A"
        assert attribution["shared_by"] == "alice" and attribution["owner_id"] == "alice"
        assert attribution["teams"] == [
            {"team_id": library["team_a"], "team_name": "A", "shared_by": "alice"}
        ]
    everything = suggest(api, auth("bob"), "all")
    assert set(everything) == {"bob-own", "alice-shared"}
    assert everything["bob-own"]["source"] != "team"
    assert everything["bob-own"]["attribution"] is None
    assert everything["alice-shared"]["source"] == "team"


def test_scope_mine_the_default_never_suggests_team_assets(
    api: TestClient, auth: TokenFactory, library: dict[str, str]
) -> None:
    bob = auth("bob")
    assert set(suggest(api, bob)) == set(suggest(api, bob, "mine")) == {"bob-own"}
    assert all(s["source"] != "team" for s in suggest(api, bob).values())
    # The owner's own shared asset is theirs: in mine, with its usual source.
    own = suggest(api, auth("alice"))
    assert {"alice-shared", "alice-private"} <= set(own)
    assert all(s["source"] != "team" and s["attribution"] is None for s in own.values())


def test_outsiders_never_get_another_teams_assets(
    api: TestClient, auth: TokenFactory, library: dict[str, str]
) -> None:
    assert suggest(api, auth("mallory"), "all") == {}
    assert suggest(api, auth("mallory"), "team") == {}
    dave = suggest(api, auth("dave"), "all")
    assert set(dave) == {"dave-shared"} and dave["dave-shared"]["source"] != "team"
    assert "dave-shared" not in suggest(api, auth("bob"), "all")


def test_a_removed_member_loses_team_suggestions_at_once(
    api: TestClient, auth: TokenFactory, library: dict[str, str]
) -> None:
    alice, bob, carol = auth("alice"), auth("bob"), auth("carol")
    add_member(api, auth("dave"), library["team_b"], "bob", "viewer")  # bob keeps a team
    both = {"alice-shared", "dave-shared"}
    assert set(suggest(api, bob, "team")) == both  # now cached for bob
    assert set(suggest(api, bob, "all")) == {"bob-own", *both}
    removed = api.delete(f"/api/v1/teams/{library['team_a']}/members/bob", headers=alice)
    assert removed.status_code == 204
    assert set(suggest(api, bob, "team")) == {"dave-shared"}
    assert set(suggest(api, bob, "all")) == {"bob-own", "dave-shared"}
    # Unsharing takes it out of the remaining members' suggestions just as fast.
    assert set(suggest(api, carol, "team")) == {"alice-shared"}
    url = f"/api/v1/assets/{library['shared']}/shares/{library['team_a']}"
    assert api.delete(url, headers=alice).status_code == 204
    assert suggest(api, carol, "team") == {}


def test_feedback_on_a_team_suggestion_is_the_members_alone(
    api: TestClient, auth: TokenFactory, library: dict[str, str]
) -> None:
    key = f"asset:{library['shared']}"
    url = f"/api/v1/suggestions/{key}/feedback"
    accepted = api.post(url, json={"action": "accepted", "context": CONTEXT}, headers=auth("bob"))
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["asset_id"] == library["shared"]
    # The owner's usage statistics are theirs: a member's use leaves them as they were.
    asset = api.get(f"/api/v1/assets/{library['shared']}", headers=auth("alice")).json()
    assert asset["usage_count"] == 0
    refused = api.post(url, json={"action": "accepted"}, headers=auth("mallory"))
    assert refused.status_code == 404 and "alice-shared" not in refused.text


def test_a_bad_scope_is_a_problem(
    api: TestClient, auth: TokenFactory, library: dict[str, str]
) -> None:
    bad = api.get(
        SUGGESTIONS,
        params={"context": json.dumps(CONTEXT), "scope": "everyone"},
        headers=auth("bob"),
    )
    assert bad.status_code == 422 and "scope" in bad.text
    assert bad.headers["content-type"].startswith("application/problem+json")


def test_a_share_removed_elsewhere_never_leaks_through_the_reach_cache(
    api: TestClient, auth: TokenFactory, container: Container, library: dict[str, str]
) -> None:
    """The team shares behind search and suggestions are cached for a moment; an unshare
    made by another replica (here: straight in the store, past this replica's cache) must
    still keep the asset out of suggestions, search and reads at once."""
    bob = auth("bob")
    assert set(suggest(api, bob, "team")) == {"alice-shared"}  # the reach is now cached
    search = {"query": "yaml config", "scope": "team"}
    found = api.post("/api/v1/assets/search", json=search, headers=bob).json()["results"]
    assert {r["asset"]["name"] for r in found} == {"alice-shared"}

    async def unshare_elsewhere() -> None:
        async with container.uow() as uow:
            await uow.teams.unshare(library["shared"], library["team_a"])
            await uow.commit()

    call(api, unshare_elsewhere)
    context_after = {**CONTEXT, "keywords": [*CONTEXT["keywords"], "again"]}  # not cached
    params = {"context": json.dumps(context_after), "scope": "team"}
    after = api.get(SUGGESTIONS, params=params, headers=bob)
    assert after.status_code == 200, after.text
    assert after.json() == [], after.json()
    found = api.post("/api/v1/assets/search", json=search, headers=bob).json()["results"]
    assert found == []
    assert api.get(f"/api/v1/assets/{library['shared']}", headers=bob).status_code == 404
