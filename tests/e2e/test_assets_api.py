"""Asset CRUD over HTTP: validation, pagination, concurrency, outbox and events."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from pieces_integration.bootstrap import Container
from tests.e2e.conftest import TokenFactory


def _create(api: TestClient, headers: dict[str, str], **fields: object) -> dict[str, object]:
    body = {"name": "Parse JSON", "content": "import json\njson.loads(s)\n", **fields}
    response = api.post("/api/v1/assets", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_read_update_patch_delete(api: TestClient, auth: TokenFactory) -> None:
    alice = auth("alice")
    created = _create(api, alice, language="Python", tags=["json", " io ", "json"])
    assert created["language"] == "python"
    assert created["tags"] == ["json", "io"]
    assert created["source"] == "user" and created["version"] == 1
    asset_id = created["id"]

    got = api.get(f"/api/v1/assets/{asset_id}", headers=alice)
    assert got.status_code == 200 and got.headers["etag"] == '"1"'

    replaced = api.put(
        f"/api/v1/assets/{asset_id}",
        json={"name": "Parse", "content": "x = 1\n"},
        headers={**alice, "If-Match": '"1"'},
    )
    assert replaced.status_code == 200
    assert replaced.json()["tags"] == [] and replaced.json()["language"] is None
    assert replaced.json()["version"] == 2

    stale = api.patch(
        f"/api/v1/assets/{asset_id}", json={"name": "late"}, headers={**alice, "If-Match": '"1"'}
    )
    assert stale.status_code == 409
    patched = api.patch(f"/api/v1/assets/{asset_id}", json={"tags": ["a"]}, headers=alice)
    assert patched.json()["tags"] == ["a"] and patched.json()["name"] == "Parse"

    assert api.delete(f"/api/v1/assets/{asset_id}", headers=alice).status_code == 204
    assert api.get(f"/api/v1/assets/{asset_id}", headers=alice).status_code == 404


def test_content_is_kept_byte_exact(api: TestClient, auth: TokenFactory) -> None:
    content = 'fn main() {\r\n\tprintln!("héllo 🌍");\r\n}\n\n\u00a0'
    created = _create(api, auth("alice"), content=content)
    got = api.get(f"/api/v1/assets/{created['id']}", headers=auth("alice"))
    assert got.json()["content"] == content


def test_invalid_input_names_the_field(api: TestClient, auth: TokenFactory) -> None:
    alice = auth("alice")
    cases = [
        ({"name": "x", "content": "a" * (1024 * 1024 + 1)}, "content"),
        ({"name": "", "content": "x"}, "name"),
        ({"name": "x", "content": "x", "tags": ["ok", ""]}, "tags"),
        ({"name": "x", "content": "x", "tags": [f"t{i}" for i in range(51)]}, "tags"),
        ({"name": "x", "content": "x", "tags": ["a" * 65]}, "tags"),
        ({"name": "x", "content": "x", "colour": "red"}, "colour"),
        ({"name": "x"}, "content"),
    ]
    for body, field in cases:
        response = api.post("/api/v1/assets", json=body, headers=alice)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        named = problem.get("field") or " ".join(e["field"] for e in problem.get("errors", []))
        assert field in named, (field, problem)
    malformed = api.post(
        "/api/v1/assets",
        content=b"{not json",
        headers={**alice, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 422
    listed = api.get("/api/v1/assets", headers=alice)
    assert listed.json() == []  # nothing half-written


def test_list_filters_and_pages(api: TestClient, auth: TokenFactory) -> None:
    alice = auth("alice")
    for i in range(7):
        _create(api, alice, name=f"n{i}", language="go" if i % 2 else "python", tags=[f"t{i % 3}"])
    python = api.get("/api/v1/assets", params={"language": "python"}, headers=alice)
    assert len(python.json()) == 4 and python.headers["x-total-count"] == "4"
    tagged = api.get("/api/v1/assets", params={"tags": "t0"}, headers=alice)
    assert {a["name"] for a in tagged.json()} == {"n0", "n3", "n6"}
    seen: list[str] = []
    url = "/api/v1/assets?limit=3"
    while url:
        page = api.get(url, headers=alice)
        seen += [a["id"] for a in page.json()]
        link = page.headers.get("link")
        url = link.split(">")[0].lstrip("<") if link else ""
    assert len(seen) == 7 and len(set(seen)) == 7
    capped = api.get("/api/v1/assets", params={"limit": 100000}, headers=alice)
    assert capped.status_code == 200


def test_writes_enter_the_outbox_and_publish_events(
    api: TestClient, auth: TokenFactory, container: Container
) -> None:
    portal = api.portal  # type: ignore[attr-defined]
    tail_cm = container.events.log.tail()
    tail = portal.call(tail_cm.__aenter__)
    try:
        created = _create(api, auth("alice"))
        event = portal.call(tail.get, 2)
    finally:
        portal.call(tail_cm.__aexit__, None, None, None)
    assert event is not None and event.user_id == "alice"
    assert event.type == "asset_created"
    assert event.payload["asset"]["id"] == created["id"]

    async def due() -> list[tuple[str, str, str]]:
        async with container.uow() as uow:
            claimed = await uow.outbox.claim_due(
                "test", now=datetime.now(UTC), lease_seconds=1, limit=10
            )
        return sorted((m.target, m.operation, str(m.aggregate_id)) for m in claimed)

    assert portal.call(due) == [
        ("aiwfe", "asset.create", created["id"]),
        ("pieces", "asset.create", created["id"]),
    ]


def test_no_outbox_when_the_user_turned_asset_sync_off(
    api: TestClient, auth: TokenFactory, container: Container
) -> None:
    portal = api.portal  # type: ignore[attr-defined]
    _create(api, auth("bob"))  # provisions bob

    async def opt_out() -> None:
        async with container.uow() as uow:
            user = await uow.users.get("bob")
            assert user is not None
            user.consent.asset_sync = False
            await uow.users.update(user)
            await uow.commit()

    async def pending() -> int:
        async with container.uow(readonly=True) as uow:
            return await uow.outbox.pending_count("bob")

    portal.call(opt_out)
    before = portal.call(pending)
    _create(api, auth("bob"), name="private")
    assert portal.call(pending) == before
