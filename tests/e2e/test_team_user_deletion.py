"""Deleting a user who shared into teams, over HTTP (issue 16): the team assets stay,
readable by the members and attributed to "deleted user"; the private ones go; the team
passes to a maintainer and the members are told; a maintainer can still remove the kept
asset; and the reserved principal that holds it cannot sign in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pieces_integration.bootstrap import Container, Overrides
from pieces_integration.domain.model import DELETED_USER_ID, Role
from tests.e2e.conftest import TokenFactory, make_client
from tests.e2e.helpers import add_member, create, new_team
from tests.fakes import HashingEmbedder


@pytest.fixture
def api() -> Iterator[TestClient]:
    with make_client(Overrides(embedder=HashingEmbedder())) as client:
        yield client


def test_a_deleted_users_team_asset_stays_for_the_team_and_the_rest_goes(
    api: TestClient, container: Container, auth: TokenFactory
) -> None:
    alice, bob, carol = auth("alice"), auth("bob"), auth("carol")
    root = auth("root", Role.ADMIN)
    team = new_team(api, alice, "Backend")["id"]
    add_member(api, alice, team, "carol", "member")
    add_member(api, alice, team, "bob", "maintainer")
    kept = create(api, alice, name="kept", content="def retry_kept(): pass", tags=["x"])
    gone = create(api, alice, name="gone", content="def retry_gone(): pass")
    url = f"/api/v1/assets/{kept['id']}"
    shared = api.post(f"{url}/shares", json={"team_id": team}, headers=alice)
    assert shared.status_code == 201, shared.text

    with api.websocket_connect("/ws", headers=carol) as ws:
        ws.send_json({"type": "subscribe", "payload": {"events": ["team_member_changed"]}})
        assert ws.receive_json()["type"] == "subscribed"
        assert api.delete("/api/v1/users/alice", headers=root).status_code == 204
        told: list[dict[str, Any]] = []
        while len(told) < 2:
            message = ws.receive_json()
            if message["type"] != "heartbeat":
                told.append(message)
    changes = {
        (e["payload"]["user_id"], e["payload"]["change"], e["payload"]["role"]) for e in told
    }
    assert changes == {("alice", "removed", None), ("bob", "role_changed", "owner")}

    read = api.get(url, headers=carol)
    assert read.status_code == 200, read.text
    body = read.json()
    assert body["owner_deleted"] is True and body["user_id"] == DELETED_USER_ID
    assert body["content"] == "def retry_kept(): pass" and body["tags"] == ["x"]
    listed = api.get("/api/v1/assets", params={"scope": "team"}, headers=carol).json()
    assert [a["id"] for a in listed] == [kept["id"]]
    found = api.post(
        "/api/v1/assets/search", json={"query": "retry", "scope": "team"}, headers=carol
    ).json()
    assert [r["asset"]["id"] for r in found["results"]] == [kept["id"]]
    history = api.get(f"{url}/revisions", headers=carol).json()["data"]
    assert history and all(r["author_id"] is None and r["author_deleted"] for r in history)
    assert api.get(f"/api/v1/assets/{gone['id']}", headers=root).status_code == 404
    members = api.get(f"/api/v1/teams/{team}/members", headers=bob).json()["data"]
    assert {m["user_id"]: m["role"] for m in members} == {"bob": "owner", "carol": "member"}

    # The reserved owner is no way in, whatever a token claims.
    for role in (Role.USER, Role.ADMIN):
        refused = api.get("/api/v1/assets", headers=auth(DELETED_USER_ID, role))
        assert refused.status_code == 401, refused.text
    reserved = f"/api/v1/users/{DELETED_USER_ID}"
    assert api.delete(reserved, headers=root).status_code == 404
    assert api.put(f"{reserved}/consent", json={}, headers=root).status_code == 404
    assert api.get(url, headers=carol).status_code == 200  # nothing happened to it

    # A member cannot remove it; the maintainer (now owner) can, and then it is gone.
    assert api.delete(f"{url}/shares/{team}", headers=carol).status_code == 403
    assert api.delete(f"{url}/shares/{team}", headers=bob).status_code == 204
    assert api.get(url, headers=root).status_code == 404
