"""`GET/PUT /api/v1/users/{user_id}/preferences`: validation, authorization, audit, and the
real effects (the scheduler's period, the live stream's filter, muted webhooks)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pieces_integration.bootstrap import Container
from pieces_integration.domain.model import Role
from tests.e2e.conftest import TokenFactory, make_client

URL = "/api/v1/users/{}/preferences"
_ids = itertools.count()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the module (one per test costs seconds); each test has its own users."""
    # Module fixtures start before the per-test clean environment: name the data dir here.
    with make_client(data_dir=tmp_path_factory.mktemp("console-data")) as client:
        yield client


@pytest.fixture
def api(shared: TestClient) -> TestClient:
    return shared


@pytest.fixture
def container(shared: TestClient) -> Container:
    running: Container = shared.app.state.container  # type: ignore[attr-defined]
    return running


@pytest.fixture
def auth(container: Container) -> TokenFactory:
    """Bearer headers for a user; `X-Test-User` tells `put` whose preferences are "mine"."""

    def headers(user_id: str, role: Role | str = Role.USER) -> dict[str, str]:
        token = container.jwt.issue(user_id, Role(role), ttl_seconds=600)
        return {"Authorization": f"Bearer {token}", "X-Test-User": user_id}

    return headers


@pytest.fixture
def user() -> str:
    return f"pref-user-{next(_ids)}"


@pytest.fixture
def other(user: str) -> str:
    return f"{user}-other"


def put(api: TestClient, headers: dict[str, str], body: Any, user: str | None = None) -> Any:
    """PUT to `user`'s preferences, by default the caller's own (their token's subject)."""
    owner = user or headers["X-Test-User"]
    return api.put(URL.format(owner), json=body, headers=headers)


def test_defaults_follow_the_service_and_the_consent(
    api: TestClient, auth: TokenFactory, user: str
) -> None:
    response = api.get(URL.format(user), headers=auth(user))
    assert response.status_code == 200
    assert response.json() == {
        "user_id": user,
        "sync_frequency_seconds": None,
        "effective_sync_frequency_seconds": 30.0,
        "privacy": {
            "asset_sync": True,
            "context_sharing": "full",
            "analytics": False,
            "team_collaboration": True,
        },
        "notifications": {"websocket_events": None, "webhook_events": None},
        "sharing_default": "private",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sync_frequency_seconds": -5}, "body.sync_frequency_seconds"),
        ({"sync_frequency_seconds": 4}, "body.sync_frequency_seconds"),
        ({"sync_frequency_seconds": 86_401}, "body.sync_frequency_seconds"),
        ({"sync_frequency_seconds": "60"}, "body.sync_frequency_seconds"),
        ({"sync_frequency_seconds": True}, "body.sync_frequency_seconds"),
        ({"colour": "blue"}, "body.colour"),
        ({"privacy": {"context_sharing": "some"}}, "body.privacy.context_sharing"),
        ({"privacy": {"analytics": "yes"}}, "body.privacy.analytics"),
        (
            {"notifications": {"websocket_events": ["nope"]}},
            "body.notifications.websocket_events.0",
        ),
        ({"notifications": {"webhook_events": ["asset_created"]}}, None),
    ],
)
def test_bad_input_is_a_422_problem_naming_the_field_and_saves_nothing(
    api: TestClient, auth: TokenFactory, body: dict[str, Any], field: str | None, user: str
) -> None:
    mine = auth(user)
    response = put(api, mine, {**body, "sharing_default": "private"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem
    assert api.get(URL.format(user), headers=mine).json()["sync_frequency_seconds"] is None


def test_a_team_sharing_default_needs_a_team_the_user_is_in(
    api: TestClient, auth: TokenFactory, user: str
) -> None:
    # The whole rule is tests/e2e/test_sharing_default.py; here, the problem's shape.
    response = put(api, auth(user), {"sharing_default": "team:core"})
    assert response.status_code == 422
    assert response.json()["field"] == "sharing_default"


def test_a_change_is_stored_partial_audited_and_privacy_is_the_consent(
    api: TestClient, auth: TokenFactory, user: str
) -> None:
    mine = auth(user)
    body = {
        "sync_frequency_seconds": 60,
        "privacy": {"context_sharing": "limited", "analytics": True},
        "notifications": {"websocket_events": ["sync_completed"]},
    }
    changed = put(api, mine, body)
    assert changed.status_code == 200, changed.text
    assert changed.json()["effective_sync_frequency_seconds"] == 60
    # Left out: kept. Null: back to the default.
    again = put(api, mine, {"notifications": {"webhook_events": []}}).json()
    assert again["sync_frequency_seconds"] == 60
    assert again["notifications"] == {"websocket_events": ["sync_completed"], "webhook_events": []}
    assert put(api, mine, {"sync_frequency_seconds": None}).json()["sync_frequency_seconds"] is None
    consent = api.get(f"/api/v1/users/{user}/consent", headers=mine).json()
    assert consent == {
        "asset_sync": True,
        "context_sharing": "limited",
        "analytics": True,
        "team_collaboration": True,
    }
    audit = api.get("/api/v1/audit", params={"user_id": user}, headers=auth("root", "admin"))
    actions = [entry["action"] for entry in audit.json()]
    assert actions.count("preferences_changed") == 3 and actions.count("consent_changed") == 1


def test_same_authorization_as_other_per_user_routes(
    api: TestClient, auth: TokenFactory, user: str, other: str
) -> None:
    assert api.get(URL.format(user)).status_code == 401
    assert api.get(URL.format(other), headers=auth(user)).status_code == 403
    assert put(api, auth(user), {"sync_frequency_seconds": 60}, user=other).status_code == 403
    assert put(api, auth(other, Role.GUEST), {"sync_frequency_seconds": 60}, other).status_code == (
        403
    )
    admin = auth("root", Role.ADMIN)
    assert put(api, admin, {"sync_frequency_seconds": 90}, user=other).status_code == 200
    assert api.get(URL.format(other), headers=admin).json()["sync_frequency_seconds"] == 90


def test_the_sync_frequency_drives_the_users_schedule(
    api: TestClient, auth: TokenFactory, container: Container, user: str
) -> None:
    scheduler = container.sync.scheduler
    put(api, auth(user), {"sync_frequency_seconds": 45})
    assert scheduler.interval_for(user) == 45.0
    put(api, auth(user), {"sync_frequency_seconds": None})
    assert scheduler.interval_for(user) == container.settings.sync.interval_seconds


def _next(ws: Any, *kinds: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message["type"] in kinds:
            return message


def test_notifications_filter_the_live_stream(
    api: TestClient, auth: TokenFactory, user: str
) -> None:
    mine = auth(user)
    put(api, mine, {"notifications": {"websocket_events": ["asset_updated"]}})
    with api.websocket_connect("/ws", headers=mine) as ws:
        ws.send_text(json.dumps({"type": "subscribe", "payload": {}}))
        _next(ws, "subscribed")
        created = api.post(
            "/api/v1/assets", json={"name": "a", "content": "print(1)"}, headers=mine
        ).json()
        api.patch(f"/api/v1/assets/{created['id']}", json={"name": "b"}, headers=mine)
        # asset_created is muted: the first event through is the update.
        assert _next(ws, "asset_created", "asset_updated")["type"] == "asset_updated"
        put(api, mine, {"notifications": {"websocket_events": None}})  # live, same session
        api.post("/api/v1/assets", json={"name": "c", "content": "x = 1"}, headers=mine)
        assert _next(ws, "asset_created", "asset_updated")["type"] == "asset_created"


def test_preferences_travel_with_the_export_and_the_user_deletion(
    api: TestClient, auth: TokenFactory, user: str
) -> None:
    mine = auth(user)
    body = {"sync_frequency_seconds": 120, "notifications": {"websocket_events": ["asset_created"]}}
    assert put(api, mine, body).status_code == 200
    document = api.get(f"/api/v1/users/{user}/export", headers=mine).json()
    assert document["preferences"]["sync_frequency_seconds"] == 120
    assert api.delete(f"/api/v1/users/{user}", headers=mine).status_code == 204
    time.sleep(1.02 - time.time() % 1)  # tokens of the deletion's second are refused
    mine = auth(user)
    assert api.get(URL.format(user), headers=mine).json()["sync_frequency_seconds"] is None
    tampered = {**document, "preferences": {"sync_frequency_seconds": -5}}
    refused = api.post(f"/api/v1/users/{user}/import", json=tampered, headers=mine)
    assert refused.status_code == 422
    assert api.post(f"/api/v1/users/{user}/import", json=document, headers=mine).status_code == 201
    restored = api.get(URL.format(user), headers=mine).json()
    assert restored["sync_frequency_seconds"] == 120
    assert restored["notifications"]["websocket_events"] == ["asset_created"]
