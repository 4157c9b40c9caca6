""" "Save to my Pieces" over HTTP (issue 16): a member copies a team asset into their own
library, linked to its revision; saving is idempotent per revision, audited, goes to Pieces
through the outbox, and is 404 for anyone outside the asset's teams."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pieces_integration.bootstrap import Container
from tests.e2e.conftest import TokenFactory
from tests.e2e.helpers import add_member, call, create, new_team

PROBLEM = "application/problem+json"


@pytest.fixture
def shared(api: TestClient, auth: TokenFactory) -> dict[str, str]:
    """alice's asset in team A (bob member, carol viewer); dave owns team B."""
    alice = auth("alice")
    team_id = new_team(api, alice, "A")["id"]
    add_member(api, alice, team_id, "bob", "member")
    add_member(api, alice, team_id, "carol", "viewer")
    new_team(api, auth("dave"), "B")
    asset = create(
        api,
        alice,
        name="retry",
        content="def retry():\n    pass\n",
        language="python",
        tags=["resilience"],
        metadata={"project": "core"},
    )
    private = create(api, alice, name="private", content="secret = 1\n")
    response = api.post(
        f"/api/v1/assets/{asset['id']}/shares", json={"team_id": team_id}, headers=alice
    )
    assert response.status_code == 201, response.text
    return {"team_id": team_id, "asset_id": asset["id"], "private": private["id"]}


def save(api: TestClient, headers: dict[str, str], asset_id: str) -> Any:
    return api.post(f"/api/v1/assets/{asset_id}/save", headers=headers)


def mine(api: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = api.get("/api/v1/assets", params={"scope": "mine"}, headers=headers)
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


def test_a_member_saves_an_owned_copy_linked_to_the_revision(
    api: TestClient, auth: TokenFactory, container: Container, shared: dict[str, str]
) -> None:
    bob = auth("bob")
    saved = save(api, bob, shared["asset_id"])
    assert saved.status_code == 201, saved.text
    copy = saved.json()
    assert saved.headers["location"] == f"/api/v1/assets/{copy['id']}"
    assert copy["id"] != shared["asset_id"] and copy["user_id"] == "bob"
    assert (copy["name"], copy["content"]) == ("retry", "def retry():\n    pass\n")
    assert copy["language"] == "python" and copy["tags"] == ["resilience"]
    assert copy["metadata"]["project"] == "core"
    origin = copy["metadata"]["saved_from"]

    async def revision_id() -> str | None:
        async with container.uow(readonly=True) as uow:
            revision = await uow.revisions.get(shared["asset_id"], 1)
        return None if revision is None else revision.id

    assert origin == {
        "asset_id": shared["asset_id"],
        "revision": 1,
        "revision_id": call(api, revision_id),
        "owner_id": "alice",
        "team_id": shared["team_id"],
        "team_name": "A",
    }
    assert [a["id"] for a in mine(api, bob)] == [copy["id"]]
    # The team asset itself is untouched and still alice's alone.
    assert shared["asset_id"] not in {a["id"] for a in mine(api, bob)}
    assert copy["id"] not in {a["id"] for a in mine(api, auth("alice"))}
    # A viewer reads the library, so a viewer saves too.
    assert save(api, auth("carol"), shared["asset_id"]).status_code == 201


def test_the_copy_goes_to_pieces_through_the_outbox(
    api: TestClient, auth: TokenFactory, container: Container, shared: dict[str, str]
) -> None:
    copy = save(api, auth("bob"), shared["asset_id"]).json()

    async def due() -> list[tuple[str, str, str, str]]:
        async with container.uow() as uow:
            claimed = await uow.outbox.claim_due(
                "test", now=datetime.now(UTC), lease_seconds=1, limit=50
            )
        return sorted(
            (m.user_id, m.target, m.operation, str(m.aggregate_id))
            for m in claimed
            if m.aggregate_id == copy["id"]
        )

    assert call(api, due) == [
        ("bob", "aiwfe", "asset.create", copy["id"]),
        ("bob", "pieces", "asset.create", copy["id"]),
    ]


def test_saving_is_idempotent_per_revision(
    api: TestClient, auth: TokenFactory, shared: dict[str, str]
) -> None:
    alice, bob = auth("alice"), auth("bob")
    first = save(api, bob, shared["asset_id"])
    again = save(api, bob, shared["asset_id"])
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert len(mine(api, bob)) == 1
    # A new revision is a new copy; the old copy stays as it was.
    url = f"/api/v1/assets/{shared['asset_id']}"
    edited = api.patch(
        url, json={"content": "def retry():\n    return 2\n", "version": 1}, headers=alice
    )
    assert edited.status_code == 200, edited.text
    newer = save(api, bob, shared["asset_id"])
    assert newer.status_code == 201
    assert newer.json()["metadata"]["saved_from"]["revision"] == 2
    assert newer.json()["content"] == "def retry():\n    return 2\n"
    assert len(mine(api, bob)) == 2
    # Deleting a copy lets the member save that revision again.
    deleted = api.delete(f"/api/v1/assets/{newer.json()['id']}", headers=bob)
    assert deleted.status_code == 204
    resaved = save(api, bob, shared["asset_id"])
    assert resaved.status_code == 201 and resaved.json()["id"] != newer.json()["id"]


def test_outsiders_get_404_and_nothing_leaks(
    api: TestClient, auth: TokenFactory, shared: dict[str, str]
) -> None:
    for outsider in ("dave", "mallory"):
        refused = save(api, auth(outsider), shared["asset_id"])
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert "retry" not in refused.text
        assert mine(api, auth(outsider)) == []
    # An asset not shared with the caller is as missing as one that does not exist.
    hidden = save(api, auth("bob"), shared["private"])
    missing = save(api, auth("bob"), "no-such-asset")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(shared["private"], "X") == missing.json()[
        "detail"
    ].replace("no-such-asset", "X")
    too_long = save(api, auth("bob"), "x" * 65)
    assert too_long.status_code == 422 and too_long.headers["content-type"].startswith(PROBLEM)


def test_a_removed_member_can_no_longer_save(
    api: TestClient, auth: TokenFactory, shared: dict[str, str]
) -> None:
    removed = api.delete(f"/api/v1/teams/{shared['team_id']}/members/bob", headers=auth("alice"))
    assert removed.status_code == 204
    assert save(api, auth("bob"), shared["asset_id"]).status_code == 404
    assert mine(api, auth("bob")) == []


def test_saving_your_own_asset_is_a_conflict_that_says_why(
    api: TestClient, auth: TokenFactory, shared: dict[str, str]
) -> None:
    refused = save(api, auth("alice"), shared["asset_id"])
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert "already yours" in refused.json()["detail"]
    assert len(mine(api, auth("alice"))) == 2  # no copy made


def test_saves_are_audited(api: TestClient, auth: TokenFactory, shared: dict[str, str]) -> None:
    copy = save(api, auth("bob"), shared["asset_id"]).json()
    save(api, auth("bob"), shared["asset_id"])  # returns the copy: no second entry
    rows = api.get("/api/v1/audit", params={"user_id": "bob"}, headers=auth("root", "admin"))
    assert rows.status_code == 200, rows.text
    saves = [r for r in rows.json() if r["action"] == "asset_saved"]
    assert len(saves) == 1
    assert saves[0]["target"] == shared["asset_id"] and saves[0]["actor_id"] == "bob"
    details = saves[0]["details"]
    assert details["copy_id"] == copy["id"] and details["revision"] == 1
    assert details["team_id"] == shared["team_id"] and details["owner_id"] == "alice"


def test_a_saved_copy_does_not_follow_the_sharing_default_back_into_a_team(
    api: TestClient, auth: TokenFactory, shared: dict[str, str]
) -> None:
    bob = auth("bob")
    default = api.put(
        "/api/v1/users/bob/preferences",
        json={"sharing_default": f"team:{shared['team_id']}"},
        headers=bob,
    )
    assert default.status_code == 200, default.text
    copy = save(api, bob, shared["asset_id"]).json()
    team = api.get("/api/v1/assets", params={"scope": "team"}, headers=auth("alice")).json()
    assert [a["id"] for a in team] == [shared["asset_id"]], team
    assert copy["id"] in {a["id"] for a in mine(api, bob)}
    # An asset bob makes himself does follow it.
    made = create(api, bob, name="bob-made", content="z = 3\n")
    team = api.get("/api/v1/assets", params={"scope": "team"}, headers=auth("alice")).json()
    assert {a["id"] for a in team} == {shared["asset_id"], made["id"]}
