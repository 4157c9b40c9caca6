"""Export -> delete -> import restores an identical user; deletion leaves nothing behind.

Run on the embedded default and with Redis (cache, event log, rate limits): after the delete,
no row, vector, Redis key or in-process entry of the user remains, and the audit log keeps
the deletion record and, of the user's other entries, only who did what and when.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pieces_integration.adapters.sql.tables import metadata
from pieces_integration.bootstrap import Container
from pieces_integration.domain.bm25 import document_tokens, sparse_document
from pieces_integration.domain.model import (
    AssetBackup,
    AssetConflict,
    AssetLink,
    Role,
    Side,
    SuggestionFeedback,
    SyncRun,
    new_id,
)
from pieces_integration.ports.vectors import ASSETS, CONTEXTS, IndexedPoint
from pieces_integration.service_layer.auth import create_api_key
from pieces_integration.service_layer.indexer import SearchIndex
from tests.conftest import REDIS_URL
from tests.e2e.conftest import TokenFactory, make_client

VOLATILE = {"id"}  # history/feedback row ids are re-assigned on import
SECRET_NAME = "plan for the surprise party"  # an asset name that only the audit log quotes


@pytest.fixture(
    params=[
        pytest.param("embedded", id="embedded"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
def redis_prefix_or_none(request: pytest.FixtureRequest) -> str | None:
    if request.param == "embedded":
        return None
    prefix: str = request.getfixturevalue("redis_prefix")
    return prefix


@pytest.fixture
def api(redis_prefix_or_none: str | None) -> Iterator[TestClient]:
    """The app on the embedded default, or with REDIS_URL under this test's key prefix."""
    prefix = redis_prefix_or_none
    overrides: dict[str, Any] = {}
    if prefix is not None:
        overrides = {"redis_url": REDIS_URL, "redis_key_prefix": prefix}
    try:
        with make_client(**overrides) as client:
            yield client
    finally:
        if prefix is not None:
            keys = _redis_keys(prefix)
            if keys:
                _remove_redis_keys(keys)


def _redis_keys(prefix: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return [key.decode() for key in client.scan_iter(match=f"{prefix}*")]
    finally:
        client.close()


def _remove_redis_keys(keys: list[str]) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.delete(*keys)
    finally:
        client.close()


def _seed(api: TestClient, container: Container, headers: dict[str, str]) -> str:
    """Everything a user can own; returns the id of their API key (used once)."""
    # No background work for the user: a sync run (after each asset write, or scheduled) or
    # a suggestions push (after a context change) still in flight when the user is deleted
    # publishes to their event log afterwards, re-creating it. A known gap of those
    # producers, not of the purge; left on, it would make this test flaky.
    container.assets.on_change = None
    container.sync.scheduler.interval = 3600.0
    container.context.events = container.events
    for i in range(7):
        response = api.post(
            "/api/v1/assets",
            json={
                "name": f"snippet {i} ✓",
                "content": f"def f{i}():\r\n    return '{i}' * 2\n",
                "language": "python",
                "tags": ["export", f"t{i}"],
                "metadata": {"file_path": f"src/f{i}.py", "line_numbers": [1, 2], "n": i},
            },
            headers=headers,
        )
        assert response.status_code == 201
    doomed = api.post(
        "/api/v1/assets", json={"name": SECRET_NAME, "content": "cake"}, headers=headers
    ).json()["id"]
    assert api.delete(f"/api/v1/assets/{doomed}", headers=headers).status_code == 204
    api.post(
        "/api/v1/context/alice",
        json={"current_task": "ship it", "keywords": ["release"], "active_files": ["a.py"]},
        headers=headers,
    )
    api.post("/api/v1/context/alice", json={"current_task": "ship it now"}, headers=headers)
    api.put("/api/v1/users/alice/consent", json={"context_sharing": "limited"}, headers=headers)
    first = api.get("/api/v1/assets?limit=1", headers=headers).json()[0]["id"]

    async def extra() -> tuple[str, str]:
        async with container.uow() as uow:
            await uow.assets.save_link("alice", AssetLink(first, Side.PIECES, "p-1", "h", "3"))
            await uow.feedback.add(SuggestionFeedback("alice", "s-1", "accepted", asset_id=first))
            await uow.sync_runs.add(SyncRun(new_id(), "alice", status="completed"))
            conflict = AssetConflict(
                new_id(), "alice", first, "pieces", None, {"c": "ours"}, {"c": "theirs"}, "manual"
            )
            await uow.conflicts.add(conflict)
            await uow.conflicts.add_backup(
                AssetBackup(new_id(), "alice", first, "conflict", {"c": "ours"}, conflict.id)
            )
            await uow.commit()
        await container.cache.set("user:alice:suggestions", b"cached")
        index: SearchIndex = container.search.index
        snapshot = sparse_document(document_tokens("", "ship it now"))
        await index.store.upsert(
            CONTEXTS, [IndexedPoint(f"alice:ctx:{first}", "alice", snapshot, None, {})]
        )
        key, token = await create_api_key(
            container.uow, user_id="alice", role=Role.USER, name="alice laptop", actor_id="alice"
        )
        return key.id, token

    key_id, token = api.portal.call(extra)  # type: ignore[attr-defined]
    # A request with the key: its rate-limit bucket exists too.
    assert api.get("/api/v1/assets", headers={"X-API-Key": token}).status_code == 200
    return str(key_id)


def _leftovers(
    api: TestClient, container: Container, prefix: str | None, needles: list[str]
) -> dict[str, Any]:
    """Whatever of the user remains: rows, vectors, Redis keys or in-process entries."""
    portal = api.portal  # type: ignore[attr-defined]
    found: dict[str, Any] = {}
    if rows := _rows_of(portal, container, "alice"):
        found["rows"] = rows
    index: SearchIndex = container.search.index
    for collection in (ASSETS, CONTEXTS):
        if points := portal.call(index.store.count, collection, "alice"):
            found[f"vectors:{collection}"] = points
    if prefix is not None:
        keys = [key for key in _redis_keys(prefix) if any(n in key for n in needles)]
    else:  # the in-process adapters of the embedded default
        keys = [
            *container.events.log._users,  # type: ignore[attr-defined]
            *container.rate_limiter._buckets,  # type: ignore[attr-defined]
            *container.cache._entries,  # type: ignore[attr-defined]
        ]
        keys = [key for key in keys if any(n in key for n in needles)]
    if keys:
        found["keys"] = sorted(keys)
    return found


def _audit_about_alice(api: TestClient, auth: TokenFactory) -> list[dict[str, Any]]:
    response = api.get("/api/v1/audit", params={"user_id": "alice"}, headers=auth("root", "admin"))
    assert response.status_code == 200
    entries: list[dict[str, Any]] = response.json()
    return entries


def _strip(document: dict[str, Any]) -> dict[str, Any]:
    document = dict(document)
    document.pop("exported_at")
    for key in ("context_history", "suggestion_feedback"):
        document[key] = [{k: v for k, v in r.items() if k not in VOLATILE} for r in document[key]]
    return document


def _rows_of(portal: Any, container: Container, user_id: str) -> dict[str, int]:
    async def count() -> dict[str, int]:
        found = {}
        async with container.engine.connect() as conn:
            for table in metadata.sorted_tables:
                if table.name == "audit_log":
                    continue
                column = table.c.id if table.name == "users" else table.c.get("user_id")
                if column is None:
                    continue
                n = (
                    await conn.execute(sa.select(sa.func.count()).where(column == user_id))
                ).scalar_one()
                if n:
                    found[table.name] = n
        return found

    return dict(portal.call(count))


def test_export_delete_import_round_trip_leaves_nothing_behind(
    api: TestClient, container: Container, auth: TokenFactory, redis_prefix_or_none: str | None
) -> None:
    alice = auth("alice")
    key_id = _seed(api, container, alice)
    needles = ["alice", key_id]

    exported = api.get("/api/v1/users/alice/export", headers=alice)
    assert exported.status_code == 200
    document = exported.json()
    assert document["format"] == "pieces-integration-export"
    assert len(document["assets"]) == 7
    assert any(a["links"] for a in document["assets"])
    before = _leftovers(api, container, redis_prefix_or_none, needles)
    # There is something of alice everywhere the check looks: it can fail.
    assert {"rows", "vectors:assets", "vectors:contexts", "keys"} <= before.keys(), before
    assert {"sync_runs", "conflicts", "asset_backups", "api_keys"} <= before["rows"].keys()
    # The rate-limit bucket is the user's, shared by all their keys and tokens (issue 20).
    assert any(key.endswith("user:alice") for key in before["keys"]), before["keys"]
    audit_before = json.dumps(_audit_about_alice(api, auth))
    assert SECRET_NAME in audit_before and "alice laptop" in audit_before

    assert api.delete("/api/v1/users/alice", headers=alice).status_code == 204
    assert _leftovers(api, container, redis_prefix_or_none, needles) == {}

    audit = _audit_about_alice(api, auth)
    assert [e["action"] for e in audit].count("user_deleted") == 1  # the record stays
    for entry in audit:
        if entry["action"] != "user_deleted":
            assert entry["details"] == {"scrubbed": True}, entry
            assert entry["target"] is None and entry["ip"] is None, entry
    text = json.dumps(audit)
    for quoted in (SECRET_NAME, "alice laptop", "limited", "context_sharing"):
        assert quoted not in text
    assert {"asset_deleted", "consent_changed", "api_key_created"} <= {e["action"] for e in audit}

    # A token minted before the deletion no longer works (issue 20); a new one does. `iat`
    # counts whole seconds, so a token of the deletion's own second is refused too.
    assert api.get("/api/v1/users/alice/export", headers=alice).status_code == 401
    time.sleep(1.02 - time.time() % 1)
    alice = auth("alice")
    imported = api.post("/api/v1/users/alice/import", json=document, headers=alice)
    assert imported.status_code == 201, imported.text
    assert imported.json() == {"user_id": "alice", "assets": 7}
    again = api.get("/api/v1/users/alice/export", headers=alice).json()
    assert _strip(again) == _strip(document)

    twice = api.post("/api/v1/users/alice/import", json=document, headers=alice)
    assert twice.status_code == 409


def test_a_failed_purge_keeps_the_user_and_the_retry_finishes(
    api: TestClient, container: Container, auth: TokenFactory
) -> None:
    alice = auth("alice")
    assert api.post("/api/v1/assets", json={"name": "n", "content": "c"}, headers=alice).is_success
    calls: list[str] = []

    async def flaky(user_id: str) -> None:
        calls.append(user_id)
        if len(calls) == 1:
            raise RuntimeError("vector store unreachable")

    container.privacy.purge_hooks.append(flaky)
    failed = api.delete("/api/v1/users/alice", headers=alice)
    assert failed.status_code == 503, failed.text
    assert "retry" in failed.json()["detail"]
    portal = api.portal  # type: ignore[attr-defined]
    assert _rows_of(portal, container, "alice")["assets"] == 1  # nothing deleted yet
    assert api.delete("/api/v1/users/alice", headers=alice).status_code == 204
    assert _rows_of(portal, container, "alice") == {}
    assert calls == ["alice"] * 3  # failed; before and after the rows on the retry


def test_a_purge_failing_after_the_commit_is_finished_by_a_retried_delete(
    api: TestClient, container: Container, auth: TokenFactory
) -> None:
    alice, admin = auth("alice"), auth("root", "admin")
    assert api.post("/api/v1/assets", json={"name": "n", "content": "c"}, headers=alice).is_success
    calls: list[str] = []

    async def late_write_then_fail(user_id: str) -> None:
        calls.append(user_id)
        if len(calls) == 2:  # after the commit: something raced in, and the purge fails
            await container.cache.set("user:alice:late", b"x")
            raise RuntimeError("cache unreachable")

    container.privacy.purge_hooks.append(late_write_then_fail)
    portal = api.portal  # type: ignore[attr-defined]
    assert api.delete("/api/v1/users/alice", headers=admin).status_code == 503
    assert _rows_of(portal, container, "alice") == {}  # the rows are gone...
    assert portal.call(container.cache.get, "user:alice:late") == b"x"  # ...not everything
    assert api.delete("/api/v1/users/alice", headers=admin).status_code == 404
    assert portal.call(container.cache.get, "user:alice:late") is None
    assert len(calls) == 3


def test_the_vector_purge_happens_even_when_this_process_has_not_opened_the_store(
    api: TestClient, container: Container, auth: TokenFactory
) -> None:
    portal = api.portal  # type: ignore[attr-defined]
    index: SearchIndex = container.search.index
    alice = auth("alice")
    assert api.post("/api/v1/assets", json={"name": "n", "content": "c"}, headers=alice).is_success
    assert portal.call(index.store.count, ASSETS, "alice") == 1

    # The store is held (here by the runtime, as by another process): no silent skip, the
    # DELETE fails and the user stays.
    index.opened = False
    try:
        assert api.delete("/api/v1/users/alice", headers=alice).status_code == 503
    finally:
        index.opened = True
    assert _rows_of(portal, container, "alice")["assets"] == 1

    portal.call(index.close)  # nobody holds it: the purge opens it for itself
    try:
        assert api.delete("/api/v1/users/alice", headers=alice).status_code == 204
    finally:
        portal.call(index.open)
    assert portal.call(index.store.count, ASSETS, "alice") == 0


def test_import_rejects_foreign_documents(api: TestClient, auth: TokenFactory) -> None:
    alice = auth("alice")
    bad = api.post("/api/v1/users/alice/import", json={"format": "other"}, headers=alice)
    assert bad.status_code == 422
    broken = api.post(
        "/api/v1/users/alice/import",
        json={"format": "pieces-integration-export", "version": 1, "user": {}},
        headers=alice,
    )
    assert broken.status_code == 422


def test_audit_is_admin_only(api: TestClient, auth: TokenFactory) -> None:
    assert api.get("/api/v1/audit", headers=auth("alice")).status_code == 403
    assert api.get("/api/v1/audit", headers=auth("root", "admin")).status_code == 200
