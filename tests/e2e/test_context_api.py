"""Context over HTTP: update, history, consent-limited sharing toward AIWFE."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from pieces_integration.bootstrap import Container
from tests.e2e.conftest import TokenFactory


def test_empty_context_then_updates_and_history(api: TestClient, auth: TokenFactory) -> None:
    alice = auth("alice")
    empty = api.get("/api/v1/context/alice", headers=alice)
    assert empty.status_code == 200
    assert empty.json()["current_task"] is None and empty.json()["keywords"] == []

    first = api.post(
        "/api/v1/context/alice",
        json={"current_task": "fix login", "keywords": ["auth", "auth", "jwt"]},
        headers=alice,
    )
    assert first.status_code == 200
    assert first.json()["keywords"] == ["auth", "jwt"] and first.json()["version"] == 1
    api.post("/api/v1/context/alice", json={"current_task": "write tests"}, headers=alice)
    unchanged = api.post(
        "/api/v1/context/alice", json={"current_task": "write tests"}, headers=alice
    )
    assert unchanged.json()["version"] == 2

    history = api.get("/api/v1/context/alice/history", headers=alice).json()
    pairs = [(c["field"], c["new_value"]) for c in history]
    assert pairs[0] == ("current_task", "write tests")  # newest first
    assert sorted(map(str, pairs[1:])) == sorted(
        map(str, [("keywords", ["auth", "jwt"]), ("current_task", "fix login")])
    )
    assert len(history) == 3
    limited = api.get("/api/v1/context/alice/history", params={"limit": 1}, headers=alice)
    assert len(limited.json()) == 1
    future = datetime.now(UTC).replace(year=2100).isoformat()
    assert (
        api.get("/api/v1/context/alice/history", params={"since": future}, headers=alice).json()
        == []
    )


def test_bad_context_fields_are_422(api: TestClient, auth: TokenFactory) -> None:
    alice = auth("alice")
    for body in ({"mood": "happy"}, {"keywords": "not-a-list"}, {"current_task": "x" * 2001}):
        response = api.post("/api/v1/context/alice", json=body, headers=alice)
        assert response.status_code == 422, body


def test_limited_sharing_sends_only_task_and_project(
    api: TestClient, auth: TokenFactory, container: Container
) -> None:
    portal = api.portal  # type: ignore[attr-defined]
    api.get("/api/v1/assets", headers=auth("carol"))  # provisions carol

    async def limit_sharing() -> None:
        async with container.uow() as uow:
            user = await uow.users.get("carol")
            assert user is not None
            user.consent.context_sharing = "limited"
            await uow.users.update(user)
            await uow.commit()

    async def sent() -> list[dict[str, object]]:
        async with container.uow() as uow:
            due = await uow.outbox.claim_due("t", now=datetime.now(UTC), lease_seconds=1, limit=50)
        return [m.payload for m in due if m.operation == "context.update"]

    portal.call(limit_sharing)
    carol = auth("carol")
    api.post(
        "/api/v1/context/carol",
        json={"current_task": "t", "active_files": ["secret.py"], "keywords": ["k"]},
        headers=carol,
    )
    api.post("/api/v1/context/carol", json={"active_files": ["other.py"]}, headers=carol)
    payloads = portal.call(sent)
    assert [p["fields"] for p in payloads] == [{"current_task": "t"}]


def test_aiwfe_context_is_stored_with_history(api: TestClient, auth: TokenFactory) -> None:
    alice = auth("alice")
    body = {"aiwfe_context": {"active_chat": "c-1", "recent_queries": ["q"], "current_agent": "a"}}
    response = api.post("/api/v1/context/alice", json=body, headers=alice)
    assert response.status_code == 200, response.text
    assert response.json()["aiwfe_context"]["active_chat"] == "c-1"
    history = api.get("/api/v1/context/alice/history", headers=alice).json()
    assert history[0]["field"] == "aiwfe_context"
    assert history[0]["new_value"]["recent_queries"] == ["q"]
