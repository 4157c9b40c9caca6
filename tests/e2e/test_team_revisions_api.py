"""Revisions of team assets over HTTP (issue 16): every edit of a shared asset is a
revision; an edit names its base version and a stale one gets 409 with the current
revision; concurrent edits lose nothing; restore brings an old revision back."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import TokenFactory
from tests.e2e.helpers import add_member, create, new_team


@pytest.fixture
def shared(api: TestClient, auth: TokenFactory) -> dict[str, str]:
    """alice's asset in team A; erin maintains A, carol views it."""
    alice = auth("alice")
    team_id = new_team(api, alice, "A")["id"]
    add_member(api, alice, team_id, "erin", "maintainer")
    add_member(api, alice, team_id, "carol", "viewer")
    asset = create(api, alice, name="retry", content="def retry():\n    pass\n")
    response = api.post(
        f"/api/v1/assets/{asset['id']}/shares", json={"team_id": team_id}, headers=alice
    )
    assert response.status_code == 201, response.text
    return {"team_id": team_id, "asset_id": asset["id"], "url": f"/api/v1/assets/{asset['id']}"}


def revisions(api: TestClient, headers: dict[str, str], url: str) -> list[dict[str, Any]]:
    response = api.get(f"{url}/revisions", headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_edits_are_revisions_and_a_stale_edit_gets_the_current_one(
    api: TestClient, auth: TokenFactory, shared: dict[str, str]
) -> None:
    alice, erin, carol = auth("alice"), auth("erin"), auth("carol")
    url = shared["url"]
    first = revisions(api, carol, url)  # a viewer reads the history
    assert [(r["number"], r["author_id"], r["diff"]) for r in first] == [(1, "alice", None)]

    unversioned = api.patch(url, json={"content": "x = 1\n"}, headers=erin)
    assert unversioned.status_code == 422 and unversioned.json()["field"] == "version"
    edited = api.patch(
        url, json={"content": "def retry():\n    return 1\n"}, headers={**erin, "If-Match": '"1"'}
    )
    assert edited.status_code == 200 and edited.headers["etag"] == '"2"'
    stale = api.put(url, json={"name": "retry", "content": "late\n", "version": 1}, headers=alice)
    assert stale.status_code == 409
    problem = stale.json()
    assert problem["current_version"] == 2
    assert problem["current_revision"]["number"] == 2
    assert problem["current_revision"]["author_id"] == "erin"
    assert problem["current_revision"]["content"] == "def retry():\n    return 1\n"

    history = revisions(api, alice, url)
    assert [r["number"] for r in history] == [2, 1]
    assert "-    pass" in history[0]["diff"] and "+    return 1" in history[0]["diff"]
    assert history[0]["content_hash"] != history[1]["content_hash"]
    one = api.get(f"{url}/revisions/1", headers=carol)
    assert one.status_code == 200 and one.json()["content"] == "def retry():\n    pass\n"
    assert api.get(f"{url}/revisions/9", headers=carol).status_code == 404


def test_restore_is_a_new_revision_and_audited(
    api: TestClient, auth: TokenFactory, shared: dict[str, str]
) -> None:
    alice, erin, carol = auth("alice"), auth("erin"), auth("carol")
    url = shared["url"]
    api.patch(url, json={"content": "broken\n", "version": 1}, headers=alice)
    assert api.post(f"{url}/revisions/1/restore", headers=carol).status_code == 403
    stale = api.post(f"{url}/revisions/1/restore", headers={**erin, "If-Match": '"1"'})
    assert stale.status_code == 409
    restored = api.post(f"{url}/revisions/1/restore", headers=erin)
    assert restored.status_code == 200, restored.text
    assert restored.json()["content"] == "def retry():\n    pass\n"
    assert restored.json()["version"] == 3 and restored.headers["etag"] == '"3"'
    history = revisions(api, alice, url)
    assert [(r["number"], r["restored_from"]) for r in history] == [(3, 1), (2, None), (1, None)]
    rows = api.get(
        "/api/v1/audit", params={"user_id": "alice"}, headers=auth("root", "admin")
    ).json()
    assert any(
        r["action"] == "asset_restored"
        and r["actor_id"] == "erin"
        and r["details"]["revision"] == 1
        for r in rows
    )


def test_concurrent_edits_one_wins_the_other_409_no_revision_lost(
    api: TestClient, auth: TokenFactory, shared: dict[str, str]
) -> None:
    url = shared["url"]
    writers = {"alice": auth("alice"), "erin": auth("erin")}

    def edit(name: str) -> Any:
        return api.patch(
            url, json={"content": f"{name}'s version\n", "version": 1}, headers=writers[name]
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(edit, ["alice", "erin"]))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()
    loser = next(r for r in responses if r.status_code == 409).json()
    assert loser["current_revision"]["content"] == winner["content"]
    history = revisions(api, writers["alice"], url)
    assert [r["number"] for r in history] == [2, 1]
    assert api.get(url, headers=writers["alice"]).json()["content"] == winner["content"]


def test_outsiders_get_404_on_revisions(
    api: TestClient, auth: TokenFactory, shared: dict[str, str]
) -> None:
    mallory, url = auth("mallory"), shared["url"]
    for method, path in (
        ("GET", f"{url}/revisions"),
        ("GET", f"{url}/revisions/1"),
        ("POST", f"{url}/revisions/1/restore"),
    ):
        response = api.request(method, path, headers=mallory)
        assert response.status_code == 404, (method, path, response.text)
        assert "retry" not in response.text


def test_the_export_holds_the_users_memberships_and_the_revisions_they_wrote(
    api: TestClient, auth: TokenFactory, shared: dict[str, str]
) -> None:
    erin = auth("erin")
    url = shared["url"]
    edited = api.patch(
        url, json={"content": "def retry():\n    return 3\n"}, headers={**erin, "If-Match": '"1"'}
    )
    assert edited.status_code == 200, edited.text
    exported = api.get("/api/v1/users/erin/export", headers=erin)
    assert exported.status_code == 200, exported.text
    document = exported.json()
    assert document["team_memberships"] == [
        {"team_id": shared["team_id"], "team_name": "A", "role": "maintainer"}
    ]
    written = document["team_revisions"]
    assert [(r["asset_id"], r["author_id"]) for r in written] == [(shared["asset_id"], "erin")]
    assert written[0]["content"] == "def retry():\n    return 3\n"
    # alice's export has her first revision (the share), none of erin's.
    theirs = api.get("/api/v1/users/alice/export", headers=auth("alice")).json()["team_revisions"]
    assert {r["author_id"] for r in theirs} == {"alice"}
