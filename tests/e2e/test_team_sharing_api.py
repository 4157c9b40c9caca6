"""Sharing into team libraries over HTTP (issue 16): who may share and unshare, and what
each scope of list, get and search returns. A removed member loses read access at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pieces_integration.bootstrap import Overrides
from tests.e2e.conftest import TokenFactory, make_client
from tests.e2e.helpers import add_member, create, new_team
from tests.fakes import HashingEmbedder

SEARCH = "/api/v1/assets/search"


@pytest.fixture
def api() -> Iterator[TestClient]:
    with make_client(Overrides(embedder=HashingEmbedder())) as client:
        yield client


def share(api: TestClient, headers: dict[str, str], asset_id: str, team_id: str) -> Any:
    return api.post(f"/api/v1/assets/{asset_id}/shares", json={"team_id": team_id}, headers=headers)


def listed(api: TestClient, headers: dict[str, str], scope: str | None = None) -> set[str]:
    params = {} if scope is None else {"scope": scope}
    response = api.get("/api/v1/assets", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return {a["name"] for a in response.json()}


def found(
    api: TestClient, headers: dict[str, str], query: str, scope: str | None = None
) -> set[str]:
    body: dict[str, Any] = {"query": query}
    if scope is not None:
        body["scope"] = scope
    response = api.post(SEARCH, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return {r["asset"]["name"] for r in response.json()["results"]}


@pytest.fixture
def library(api: TestClient, auth: TokenFactory) -> dict[str, str]:
    """alice owns team A (bob member, carol viewer), dave owns team B; each shares one asset.

    Every asset mentions "retry", so a search for it could find them all.
    """
    alice, dave = auth("alice"), auth("dave")
    team_a, team_b = new_team(api, alice, "A")["id"], new_team(api, dave, "B")["id"]
    add_member(api, alice, team_a, "bob", "member")
    add_member(api, alice, team_a, "carol", "viewer")
    shared = create(api, alice, name="alice-shared", content="def retry_shared(): pass")
    create(api, alice, name="alice-private", content="def retry_private(): pass")
    create(api, auth("bob"), name="bob-own", content="def retry_bob(): pass")
    other = create(api, dave, name="dave-shared", content="def retry_dave(): pass")
    assert share(api, alice, shared["id"], team_a).status_code == 201
    assert share(api, dave, other["id"], team_b).status_code == 201
    return {"team_a": team_a, "team_b": team_b, "shared": shared["id"], "other": other["id"]}


def test_scopes_of_list_and_search(
    api: TestClient, auth: TokenFactory, library: dict[str, str]
) -> None:
    bob = auth("bob")
    # mine (the default) never returns team assets; team never another team's.
    assert listed(api, bob) == listed(api, bob, "mine") == {"bob-own"}
    assert listed(api, bob, "team") == {"alice-shared"}
    assert listed(api, bob, "all") == {"bob-own", "alice-shared"}
    assert found(api, bob, "retry") == found(api, bob, "retry", "mine") == {"bob-own"}
    assert found(api, bob, "retry", "team") == {"alice-shared"}
    assert found(api, bob, "retry", "all") == {"bob-own", "alice-shared"}
    # The owner's own shared asset is in their team scope too; their private one is not.
    alice = auth("alice")
    assert listed(api, alice, "team") == {"alice-shared"}
    assert found(api, alice, "retry", "team") == {"alice-shared"}
    # Outside every team: team scope is empty, nothing of anyone else's leaks.
    mallory = auth("mallory")
    assert listed(api, mallory, "team") == set() and found(api, mallory, "retry", "all") == set()
    bad = api.get("/api/v1/assets", params={"scope": "everyone"}, headers=bob)
    assert bad.status_code == 422 and "scope" in bad.text
    bad = api.post(SEARCH, json={"query": "retry", "scope": "everyone"}, headers=bob)
    assert bad.status_code == 422 and "scope" in bad.text


def test_members_read_a_shared_asset_and_outsiders_get_404(
    api: TestClient, auth: TokenFactory, library: dict[str, str]
) -> None:
    url = f"/api/v1/assets/{library['shared']}"
    for member in ("bob", "carol"):
        got = api.get(url, headers=auth(member))
        assert got.status_code == 200 and got.json()["name"] == "alice-shared"
    for outsider in ("dave", "mallory"):
        refused = api.get(url, headers=auth(outsider))
        assert refused.status_code == 404 and "alice-shared" not in refused.text


def test_a_removed_member_loses_read_at_once(
    api: TestClient, auth: TokenFactory, library: dict[str, str]
) -> None:
    alice, bob = auth("alice"), auth("bob")
    assert found(api, bob, "retry", "team") == {"alice-shared"}
    removed = api.delete(f"/api/v1/teams/{library['team_a']}/members/bob", headers=alice)
    assert removed.status_code == 204
    assert api.get(f"/api/v1/assets/{library['shared']}", headers=bob).status_code == 404
    assert listed(api, bob, "team") == set() and listed(api, bob, "all") == {"bob-own"}
    assert found(api, bob, "retry", "team") == set()
    assert found(api, bob, "retry", "all") == {"bob-own"}


def test_who_may_share_and_unshare(
    api: TestClient, auth: TokenFactory, library: dict[str, str]
) -> None:
    alice, bob, carol, dave = auth("alice"), auth("bob"), auth("carol"), auth("dave")
    team_a, shared = library["team_a"], library["shared"]
    again = share(api, alice, shared, team_a)
    assert again.status_code == 200 and again.json()["shared_by"] == "alice"
    # A viewer may not share, even their own asset.
    own = create(api, carol, name="carol-own", content="x = 1")
    refused = share(api, carol, own["id"], team_a)
    assert refused.status_code == 403 and refused.json()["needs"] == "member"
    # Only the owner shares an asset, even one the caller can read.
    assert share(api, bob, shared, library["team_b"]).status_code == 404  # not in team B
    bob_team = new_team(api, bob, "bob's")["id"]
    assert share(api, bob, shared, bob_team).status_code == 403
    # Outsiders: 404 on the team and on the asset alike.
    assert share(api, dave, library["other"], team_a).status_code == 404
    assert share(api, dave, shared, library["team_b"]).status_code == 404
    # A member may not take out another's asset; the owner may.
    unshare = f"/api/v1/assets/{shared}/shares/{team_a}"
    assert api.delete(unshare, headers=bob).status_code == 403
    assert api.delete(unshare, headers=dave).status_code == 404
    assert api.delete(unshare, headers=alice).status_code == 204
    assert api.delete(unshare, headers=alice).status_code == 404  # already out
    assert api.get(f"/api/v1/assets/{shared}", headers=bob).status_code == 404
    assert found(api, bob, "retry", "team") == set()


def test_a_maintainer_takes_out_anyones_asset(
    api: TestClient, auth: TokenFactory, library: dict[str, str]
) -> None:
    alice = auth("alice")
    add_member(api, alice, library["team_a"], "erin", "maintainer")
    unshare = f"/api/v1/assets/{library['shared']}/shares/{library['team_a']}"
    assert api.delete(unshare, headers=auth("erin")).status_code == 204
    assert listed(api, auth("bob"), "team") == set()


def test_team_roles_bound_edits_and_deletes(
    api: TestClient, auth: TokenFactory, library: dict[str, str]
) -> None:
    alice, bob, carol = auth("alice"), auth("bob"), auth("carol")
    url = f"/api/v1/assets/{library['shared']}"
    viewer_edit = api.patch(url, json={"name": "carol was here", "version": 1}, headers=carol)
    assert viewer_edit.status_code == 403 and viewer_edit.json()["team_role"] == "viewer"
    assert api.patch(url, json={"name": "bob", "version": 1}, headers=bob).status_code == 403
    assert api.delete(url, headers=bob).status_code == 403
    add_member(api, alice, library["team_a"], "erin", "maintainer")
    edited = api.patch(url, json={"name": "erin's edit", "version": 1}, headers=auth("erin"))
    assert edited.status_code == 200 and edited.json()["user_id"] == "alice"
    assert api.get(url, headers=alice).json()["name"] == "erin's edit"
    assert api.patch(url, json={"name": "x"}, headers=auth("mallory")).status_code == 404


def test_shares_are_audited(api: TestClient, auth: TokenFactory, library: dict[str, str]) -> None:
    alice, root = auth("alice"), auth("root", "admin")
    api.delete(f"/api/v1/assets/{library['shared']}/shares/{library['team_a']}", headers=alice)
    rows = api.get("/api/v1/audit", params={"user_id": "alice"}, headers=root).json()
    mine = {(r["action"], r["target"], r["details"].get("team_id")) for r in rows}
    assert ("asset_shared", library["shared"], library["team_a"]) in mine
    assert ("asset_unshared", library["shared"], library["team_a"]) in mine


def test_with_team_collaboration_off_sharing_is_refused_and_says_why(
    api: TestClient, auth: TokenFactory
) -> None:
    alice, bob = auth("alice"), auth("bob")
    team = new_team(api, alice, "Consent")["id"]
    add_member(api, alice, team, "bob", "member")
    asset = create(api, alice, name="private-by-choice", content="x = 1")
    off = api.put("/api/v1/users/alice/consent", json={"team_collaboration": False}, headers=alice)
    assert off.status_code == 200 and off.json()["team_collaboration"] is False, off.text
    refused = share(api, alice, asset["id"], team)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "team_collaboration" in refused.json()["detail"]
    assert "private-by-choice" not in listed(api, bob, "team")  # nothing half-shared
    api.put("/api/v1/users/alice/consent", json={"team_collaboration": True}, headers=alice)
    assert share(api, alice, asset["id"], team).status_code == 201
    assert "private-by-choice" in listed(api, bob, "team")
