"""The sharing default of the preferences (spec 7.1 step 5, issue 16): "team:<id>" shares
every asset the user creates into that team as it is created, with its first revision, the
audit entry and an `asset_shared` event; only a team the user may share into is accepted,
and a default that stopped holding leaves new assets private."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import TokenFactory
from tests.e2e.helpers import add_member, create, new_team, next_event

pytestmark = pytest.mark.timeout(60)
PREFS = "/api/v1/users/{}/preferences"


def set_default(api: TestClient, headers: dict[str, str], user: str, value: str) -> Any:
    return api.put(PREFS.format(user), json={"sharing_default": value}, headers=headers)


def team_names(api: TestClient, headers: dict[str, str]) -> set[str]:
    response = api.get("/api/v1/assets", params={"scope": "team"}, headers=headers)
    assert response.status_code == 200, response.text
    return {a["name"] for a in response.json()}


def test_new_assets_go_into_the_default_team_with_a_revision_and_an_event(
    api: TestClient, auth: TokenFactory
) -> None:
    alice, bob = auth("alice"), auth("bob")
    team = new_team(api, alice, "Backend")["id"]
    add_member(api, alice, team, "bob", "member")
    assert create(api, alice, name="before", content="x = 1")
    answer = set_default(api, alice, "alice", f"team:{team}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["sharing_default"] == f"team:{team}"

    with api.websocket_connect("/ws", headers=bob) as ws:
        ws.send_text(json.dumps({"type": "subscribe", "payload": {}}))
        assert next_event(ws)["type"] == "subscribed"
        made = create(api, alice, name="after", content="def after(): pass")
        event = next_event(ws)
        assert event["type"] == "asset_shared", event
        assert event["payload"]["team_id"] == team and event["payload"]["shared_by"] == "alice"
        assert event["payload"]["asset"]["id"] == made["id"]

    # Only what was created after the choice is shared; bob reads it in the team scope.
    assert team_names(api, bob) == {"after"}
    revisions = api.get(f"/api/v1/assets/{made['id']}/revisions", headers=bob)
    assert revisions.status_code == 200, revisions.text
    assert [r["number"] for r in revisions.json()["data"]] == [1]
    audit = api.get("/api/v1/audit", params={"user_id": "alice"}, headers=auth("root", "admin"))
    assert audit.status_code == 200, audit.text
    shared = {e["target"] for e in audit.json() if e["action"] == "asset_shared"}
    assert shared == {made["id"]}

    # Back to private: the next asset stays alice's alone.
    assert set_default(api, alice, "alice", "private").status_code == 200
    create(api, alice, name="private-again", content="y = 2")
    assert team_names(api, bob) == {"after"}

    # Turning team collaboration off takes the team default with it.
    assert set_default(api, alice, "alice", f"team:{team}").status_code == 200
    off = api.put(
        PREFS.format("alice"), json={"privacy": {"team_collaboration": False}}, headers=alice
    )
    assert off.status_code == 200 and off.json()["sharing_default"] == "private", off.text


def test_only_a_team_the_user_may_share_into_is_accepted(
    api: TestClient, auth: TokenFactory
) -> None:
    alice, carol, mallory = auth("alice"), auth("carol"), auth("mallory")
    team = new_team(api, alice, "Backend")["id"]
    add_member(api, alice, team, "carol", "viewer")
    refusals = [
        set_default(api, mallory, "mallory", f"team:{team}"),  # not in the team
        set_default(api, mallory, "mallory", "team:no-such-team"),  # reads the same
        set_default(api, carol, "carol", f"team:{team}"),  # a viewer does not share
        set_default(api, alice, "alice", "team:"),
        set_default(api, alice, "alice", "everyone"),
    ]
    for refused in refusals:
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["field"] == "sharing_default", refused.json()
    # The unknown team and the team mallory is not in answer alike: nothing leaks.
    assert refusals[0].json()["detail"].replace(team, "X") == refusals[1].json()["detail"].replace(
        "no-such-team", "X"
    )
    for user, headers in (("mallory", mallory), ("carol", carol)):
        kept = api.get(PREFS.format(user), headers=headers).json()["sharing_default"]
        assert kept == "private"

    # Team collaboration off (in the same request or already) refuses a team default too.
    off = api.put(
        PREFS.format("alice"),
        json={"sharing_default": f"team:{team}", "privacy": {"team_collaboration": False}},
        headers=alice,
    )
    assert off.status_code == 422 and "team_collaboration" in off.json()["detail"], off.text
    assert api.get(PREFS.format("alice"), headers=alice).json()["privacy"]["team_collaboration"]


def test_a_default_that_stopped_holding_leaves_new_assets_private(
    api: TestClient, auth: TokenFactory
) -> None:
    alice, bob = auth("alice"), auth("bob")
    team = new_team(api, alice, "Backend")["id"]
    add_member(api, alice, team, "bob", "member")
    assert set_default(api, bob, "bob", f"team:{team}").status_code == 200
    create(api, bob, name="while-member", content="a = 1")
    assert team_names(api, alice) == {"while-member"}

    removed = api.delete(f"/api/v1/teams/{team}/members/bob", headers=alice)
    assert removed.status_code == 204, removed.text
    made = create(api, bob, name="after-leaving", content="b = 2")
    assert made["name"] == "after-leaving"  # the create itself succeeds
    assert team_names(api, alice) == {"while-member"}
    mine = api.get("/api/v1/assets", headers=bob).json()
    assert {a["name"] for a in mine} == {"while-member", "after-leaving"}
