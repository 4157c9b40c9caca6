"""Teams over HTTP (issue 16): create, read, rename, delete; members and their roles.

Outsiders get 404 on every team route, exactly as for a team that does not exist; members
whose role is too low get 403 naming what they would need.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.e2e.conftest import TokenFactory
from tests.e2e.helpers import add_member, new_team

TEAMS = "/api/v1/teams"


def roles(api: TestClient, headers: dict[str, str], team_id: str) -> dict[str, str]:
    response = api.get(f"{TEAMS}/{team_id}/members", headers=headers)
    assert response.status_code == 200, response.text
    return {m["user_id"]: m["role"] for m in response.json()["data"]}


def test_create_read_rename_delete(api: TestClient, auth: TokenFactory) -> None:
    alice = auth("alice")
    created = api.post(TEAMS, json={"name": "  Backend  "}, headers=alice)
    assert created.status_code == 201, created.text
    team = created.json()
    assert team["name"] == "Backend" and team["role"] == "owner" and team["id"]
    assert created.headers["location"] == f"{TEAMS}/{team['id']}"

    got = api.get(f"{TEAMS}/{team['id']}", headers=alice).json()
    assert got["name"] == "Backend"
    assert [(m["user_id"], m["role"]) for m in got["members"]] == [("alice", "owner")]
    listed = api.get(TEAMS, headers=alice).json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == team["id"]

    renamed = api.patch(f"{TEAMS}/{team['id']}", json={"name": "Platform"}, headers=alice)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Platform"
    assert api.get(f"{TEAMS}/{team['id']}", headers=alice).json()["name"] == "Platform"

    assert api.delete(f"{TEAMS}/{team['id']}", headers=alice).status_code == 204
    assert api.get(f"{TEAMS}/{team['id']}", headers=alice).status_code == 404
    assert api.get(TEAMS, headers=alice).json()["count"] == 0


def test_bad_input_is_a_problem_naming_the_field(api: TestClient, auth: TokenFactory) -> None:
    alice = auth("alice")
    team = new_team(api, alice)
    cases = [
        (TEAMS, {"name": "   "}, "name"),
        (TEAMS, {"name": "x" * 129}, "name"),
        (TEAMS, {}, "name"),
        (TEAMS, {"name": "ok", "colour": "red"}, "colour"),
        (f"{TEAMS}/{team['id']}/members", {"user_id": "bob", "role": "king"}, "role"),
        (f"{TEAMS}/{team['id']}/members", {"role": "member"}, "user_id"),
    ]
    for url, body, field in cases:
        response = api.post(url, json=body, headers=alice)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        named = problem.get("field") or " ".join(e["field"] for e in problem.get("errors", []))
        assert field in named, (field, problem)


def test_members_roles_and_what_each_may_do(api: TestClient, auth: TokenFactory) -> None:
    alice, bob, carol, dave = auth("alice"), auth("bob"), auth("carol"), auth("dave")
    team_id = new_team(api, alice)["id"]
    add_member(api, alice, team_id, "bob", "maintainer")
    add_member(api, bob, team_id, "carol", "member")  # a maintainer manages members
    add_member(api, bob, team_id, "dave", "viewer")
    assert roles(api, dave, team_id) == {
        "alice": "owner",
        "bob": "maintainer",
        "carol": "member",
        "dave": "viewer",
    }
    assert api.get(f"{TEAMS}/{team_id}", headers=dave).json()["role"] == "viewer"

    # Too low a role is a 403 that says what it needs; the team stays as it was.
    refused = api.post(
        f"{TEAMS}/{team_id}/members", json={"user_id": "erin", "role": "viewer"}, headers=carol
    )
    assert refused.status_code == 403
    assert refused.json()["needs"] == "maintainer" and refused.json()["team_role"] == "member"
    assert api.patch(f"{TEAMS}/{team_id}", json={"name": "x"}, headers=dave).status_code == 403
    assert api.delete(f"{TEAMS}/{team_id}", headers=bob).status_code == 403
    # Only an owner grants or touches the owner role.
    assert (
        api.patch(
            f"{TEAMS}/{team_id}/members/carol", json={"role": "owner"}, headers=bob
        ).status_code
        == 403
    )
    assert api.delete(f"{TEAMS}/{team_id}/members/alice", headers=bob).status_code == 403
    # Nobody promotes themselves.
    assert (
        api.patch(
            f"{TEAMS}/{team_id}/members/dave", json={"role": "member"}, headers=dave
        ).status_code
        == 403
    )

    changed = api.patch(f"{TEAMS}/{team_id}/members/dave", json={"role": "member"}, headers=bob)
    assert changed.status_code == 200 and changed.json()["role"] == "member"
    again = api.post(
        f"{TEAMS}/{team_id}/members", json={"user_id": "dave", "role": "viewer"}, headers=bob
    )
    assert again.status_code == 409 and again.json()["current_role"] == "member"
    assert api.delete(f"{TEAMS}/{team_id}/members/carol", headers=bob).status_code == 204
    assert api.get(f"{TEAMS}/{team_id}", headers=carol).status_code == 404  # gone at once
    assert api.delete(f"{TEAMS}/{team_id}/members/dave", headers=dave).status_code == 204  # leave
    assert roles(api, alice, team_id) == {"alice": "owner", "bob": "maintainer"}


def test_ownership_is_transferred_and_never_lost(api: TestClient, auth: TokenFactory) -> None:
    alice, bob = auth("alice"), auth("bob")
    team_id = new_team(api, alice)["id"]
    add_member(api, alice, team_id, "bob", "member")
    last = api.patch(f"{TEAMS}/{team_id}/members/alice", json={"role": "member"}, headers=alice)
    assert last.status_code == 409 and "owner" in last.json()["detail"]
    assert api.delete(f"{TEAMS}/{team_id}/members/alice", headers=alice).status_code == 409

    promoted = api.patch(f"{TEAMS}/{team_id}/members/bob", json={"role": "owner"}, headers=alice)
    assert promoted.status_code == 200
    assert api.delete(f"{TEAMS}/{team_id}/members/alice", headers=alice).status_code == 204
    assert roles(api, bob, team_id) == {"bob": "owner"}
    assert api.delete(f"{TEAMS}/{team_id}", headers=bob).status_code == 204


def test_outsiders_get_404_on_every_team_route(api: TestClient, auth: TokenFactory) -> None:
    alice, mallory = auth("alice"), auth("mallory")
    team_id = new_team(api, alice, name="SecretTeamName-p2k")["id"]
    add_member(api, alice, team_id, "bob", "member")
    base = f"{TEAMS}/{team_id}"
    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", base, None),
        ("PATCH", base, {"name": "owned"}),
        ("DELETE", base, None),
        ("GET", f"{base}/members", None),
        # Naming oneself (or anyone) in the body grants nothing (DEVIATIONS 7).
        ("POST", f"{base}/members", {"user_id": "mallory", "role": "owner"}),
        ("PATCH", f"{base}/members/bob", {"role": "viewer"}),
        ("DELETE", f"{base}/members/bob", None),
    ]
    missing = f"{TEAMS}/00000000-0000-4000-8000-000000000000"
    for method, url, body in attempts:
        response = api.request(method, url, json=body, headers=mallory)
        assert response.status_code == 404, (method, url, response.text)
        assert "SecretTeamName" not in response.text
        # ... the very answer a team that does not exist gives.
        absent = api.request(method, url.replace(base, missing), json=body, headers=mallory)
        assert absent.status_code == 404
        assert absent.json()["detail"] == response.json()["detail"].replace(team_id, missing[14:])
    assert api.get(TEAMS, headers=mallory).json()["count"] == 0
    assert roles(api, alice, team_id) == {"alice": "owner", "bob": "member"}


def test_admin_keeps_its_powers_and_a_guest_only_reads(api: TestClient, auth: TokenFactory) -> None:
    alice, root, guest = auth("alice"), auth("root", "admin"), auth("gus", "guest")
    team_id = new_team(api, alice)["id"]
    assert api.get(f"{TEAMS}/{team_id}", headers=root).json()["role"] == "owner"
    add_member(api, root, team_id, "gus", "maintainer")
    assert api.get(f"{TEAMS}/{team_id}/members", headers=guest).status_code == 200
    assert api.post(TEAMS, json={"name": "x"}, headers=guest).status_code == 403
    assert (
        api.patch(f"{TEAMS}/{team_id}", json={"name": "guest's"}, headers=guest).status_code == 403
    )
    assert api.delete(f"{TEAMS}/{team_id}", headers=root).status_code == 204


def test_membership_changes_are_audited(api: TestClient, auth: TokenFactory) -> None:
    alice, root = auth("alice"), auth("root", "admin")
    team_id = new_team(api, alice)["id"]
    add_member(api, alice, team_id, "bob", "viewer")
    api.patch(f"{TEAMS}/{team_id}/members/bob", json={"role": "member"}, headers=alice)
    api.delete(f"{TEAMS}/{team_id}/members/bob", headers=alice)
    rows = api.get("/api/v1/audit", params={"user_id": "bob"}, headers=root).json()
    mine = [(r["action"], r["actor_id"], r["details"].get("role")) for r in rows]
    assert ("team_member_added", "alice", "viewer") in mine
    assert ("team_role_changed", "alice", "member") in mine
    assert ("team_member_removed", "alice", None) in mine
    assert all(r["target"] == team_id for r in rows if r["action"].startswith("team_"))
