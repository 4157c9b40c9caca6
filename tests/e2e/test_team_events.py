"""Live team events over /ws (issue 16): a member hears of a share, of an edit of a shared
asset and of membership changes; once removed, nothing more of the team reaches them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import TokenFactory
from tests.e2e.helpers import add_member, create, new_team, next_event

pytestmark = pytest.mark.timeout(60)


def edit(api: TestClient, headers: dict[str, str], asset: dict[str, Any], content: str) -> Any:
    url = f"/api/v1/assets/{asset['id']}"
    current = api.get(url, headers=headers).json()
    response = api.patch(
        url, json={"content": content, "version": current["version"]}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_members_hear_of_shares_edits_and_membership_until_they_are_removed(
    api: TestClient, auth: TokenFactory
) -> None:
    alice, bob = auth("alice"), auth("bob")
    team = new_team(api, alice, "Backend")["id"]
    add_member(api, alice, team, "bob", "member")
    asset = create(api, alice, name="retry", content="def retry():\n    pass\n")
    with api.websocket_connect("/ws", headers=bob) as ws:
        ws.send_text(json.dumps({"type": "subscribe", "payload": {}}))
        assert next_event(ws)["type"] == "subscribed"

        shared = api.post(
            f"/api/v1/assets/{asset['id']}/shares", json={"team_id": team}, headers=alice
        )
        assert shared.status_code == 201, shared.text
        event = next_event(ws)
        assert event["type"] == "asset_shared", event
        assert event["payload"]["team_id"] == team and event["payload"]["shared_by"] == "alice"
        assert event["payload"]["asset"]["id"] == asset["id"]

        edit(api, alice, asset, "def retry():\n    return 1\n")
        event = next_event(ws)
        assert event["type"] == "team_asset_updated", event
        assert event["payload"]["team_ids"] == [team]
        assert event["payload"]["asset"]["content"] == "def retry():\n    return 1\n"

        add_member(api, alice, team, "carol", "viewer")
        event = next_event(ws)
        assert event["type"] == "team_member_changed", event
        assert event["payload"] | {"by": "alice"} == {
            "team_id": team,
            "user_id": "carol",
            "change": "added",
            "role": "viewer",
            "by": "alice",
        }

        removed = api.delete(f"/api/v1/teams/{team}/members/bob", headers=alice)
        assert removed.status_code == 204, removed.text
        event = next_event(ws)
        assert event["type"] == "team_member_changed", event
        assert event["payload"]["user_id"] == "bob" and event["payload"]["change"] == "removed"

        # Removed: the next edit of the team's asset is not bob's to hear; his own write is.
        edit(api, alice, asset, "def retry():\n    return 2\n")
        create(api, bob, name="mine", content="x = 1\n")
        event = next_event(ws)
        assert event["type"] == "asset_created", event
        assert event["payload"]["asset"]["name"] == "mine"


def test_the_sharer_and_the_owner_are_not_told_twice(api: TestClient, auth: TokenFactory) -> None:
    """The owner has `asset_updated` on their own stream already; the sharer knows."""
    alice = auth("alice")
    team = new_team(api, alice, "Solo")["id"]
    asset = create(api, alice, name="solo", content="y = 1\n")
    with api.websocket_connect("/ws", headers=alice) as ws:
        ws.send_text(json.dumps({"type": "subscribe", "payload": {}}))
        assert next_event(ws)["type"] == "subscribed"
        api.post(f"/api/v1/assets/{asset['id']}/shares", json={"team_id": team}, headers=alice)
        edit(api, alice, asset, "y = 2\n")
        assert next_event(ws)["type"] == "asset_updated"
        create(api, alice, name="marker", content="z = 1\n")
        event = next_event(ws)
        assert event["type"] == "asset_created" and event["payload"]["asset"]["name"] == "marker"
