"""Export -> delete -> import restores an identical user; deletion leaves nothing behind."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from pieces_integration.adapters.sql.tables import metadata
from pieces_integration.bootstrap import Container
from pieces_integration.domain.model import AssetLink, Side, SuggestionFeedback
from tests.e2e.conftest import TokenFactory

VOLATILE = {"id"}  # history/feedback row ids are re-assigned on import


def _seed(api: TestClient, container: Container, headers: dict[str, str]) -> None:
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
    api.post(
        "/api/v1/context/alice",
        json={"current_task": "ship it", "keywords": ["release"], "active_files": ["a.py"]},
        headers=headers,
    )
    api.post("/api/v1/context/alice", json={"current_task": "ship it now"}, headers=headers)
    api.put("/api/v1/users/alice/consent", json={"context_sharing": "limited"}, headers=headers)
    first = api.get("/api/v1/assets?limit=1", headers=headers).json()[0]["id"]

    async def extra() -> None:
        async with container.uow() as uow:
            await uow.assets.save_link("alice", AssetLink(first, Side.PIECES, "p-1", "h", "3"))
            await uow.feedback.add(SuggestionFeedback("alice", "s-1", "accepted", asset_id=first))
            await uow.commit()
        await container.cache.set("user:alice:suggestions", b"cached")

    api.portal.call(extra)  # type: ignore[attr-defined]


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


def test_export_delete_import_round_trip(
    api: TestClient, container: Container, auth: TokenFactory
) -> None:
    portal = api.portal  # type: ignore[attr-defined]
    alice = auth("alice")
    _seed(api, container, alice)

    exported = api.get("/api/v1/users/alice/export", headers=alice)
    assert exported.status_code == 200
    document = exported.json()
    assert document["format"] == "pieces-integration-export"
    assert len(document["assets"]) == 7
    assert any(a["links"] for a in document["assets"])
    assert _rows_of(portal, container, "alice")  # there is data to delete

    assert api.delete("/api/v1/users/alice", headers=alice).status_code == 204
    assert _rows_of(portal, container, "alice") == {}
    cached = portal.call(container.cache.get, "user:alice:suggestions")
    assert cached is None

    admin = auth("root", "admin")
    audit = api.get("/api/v1/audit", params={"user_id": "alice"}, headers=admin).json()
    assert "user_deleted" in {entry["action"] for entry in audit}  # the record stays

    imported = api.post("/api/v1/users/alice/import", json=document, headers=alice)
    assert imported.status_code == 201, imported.text
    assert imported.json() == {"user_id": "alice", "assets": 7}
    again = api.get("/api/v1/users/alice/export", headers=alice).json()
    assert _strip(again) == _strip(document)

    twice = api.post("/api/v1/users/alice/import", json=document, headers=alice)
    assert twice.status_code == 409


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
