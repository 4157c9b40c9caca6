"""Sync through the API against the Pieces emulator: import, push, join, status, conflicts."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from tests.e2e.conftest import TokenFactory
from tests.e2e.helpers import emulator_thread


def test_sync_imports_the_library_and_pushes_new_assets(
    api: TestClient, auth: TokenFactory
) -> None:
    alice = auth("alice")
    with emulator_thread(assets=12, seed=3) as emulator:
        connected = api.post(
            "/api/v1/integrations/pieces/connect",
            json={"pieces_url": emulator.base_url},
            headers=alice,
        )
        assert connected.json()["success"], connected.text

        first = api.post("/api/v1/context/alice/sync", headers=alice)
        assert first.status_code == 200, first.text
        result = first.json()
        assert result["status"] == "completed" and result["user_id"] == "alice"
        assert set(result["changes"]) == {
            "pieces_to_aiwfe",
            "aiwfe_to_pieces",
            "conflicts_resolved",
        }
        listed = api.get("/api/v1/assets", params={"limit": 100}, headers=alice)
        assert listed.headers["x-total-count"] == "12"
        assert {a["source"] for a in listed.json()} == {"pieces"}

        created = api.post(
            "/api/v1/assets",
            json={"name": "from the api", "content": "print('hello')\n", "language": "python"},
            headers=alice,
        ).json()
        second = api.post("/api/v1/context/alice/sync", headers=alice).json()
        assert second["changes"]["aiwfe_to_pieces"] == 1
        contents = {fmt for asset in emulator.state.assets.values() for fmt in [str(asset)]}
        assert any("print('hello')" in text for text in contents)
        status = api.get(f"/api/v1/sync/{second['sync_id']}", headers=alice)
        assert status.json()["sync_id"] == second["sync_id"]
        assert api.get(f"/api/v1/sync/{second['sync_id']}", headers=auth("bob")).status_code == 404
        assert api.get("/api/v1/conflicts", headers=alice).json() == []
        assert created["id"]


def test_sync_for_another_user_is_forbidden(api: TestClient, auth: TokenFactory) -> None:
    assert api.post("/api/v1/context/alice/sync", headers=auth("bob")).status_code == 403
    assert api.post("/api/v1/context/alice/sync", headers=auth("g", "guest")).status_code == 403


def test_sync_without_connections_reports_it(api: TestClient, auth: TokenFactory) -> None:
    result = api.post("/api/v1/context/dave/sync", headers=auth("dave")).json()
    assert result["status"] == "completed"
    assert [e["code"] for e in result["errors"]] == ["not_connected"]


def test_an_api_edit_reaches_pieces_without_a_sync_request(
    api: TestClient, auth: TokenFactory
) -> None:
    """The write pokes the scheduler: the edit is pushed at once, not at the next
    periodic reconciliation (30 s by default)."""
    alice = auth("alice")
    with emulator_thread(assets=3, seed=5) as emulator:
        connected = api.post(
            "/api/v1/integrations/pieces/connect",
            json={"pieces_url": emulator.base_url},
            headers=alice,
        )
        assert connected.json()["success"], connected.text
        assert api.post("/api/v1/context/alice/sync", headers=alice).status_code == 200
        target = api.get("/api/v1/assets", params={"limit": 1}, headers=alice).json()[0]
        marker = "edited-through-the-api-" + target["id"][:8]
        patched = api.patch(
            f"/api/v1/assets/{target['id']}", json={"content": f"# {marker}\n"}, headers=alice
        )
        assert patched.status_code == 200, patched.text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if marker in str(emulator.state.assets[target["source_id"]]):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the API edit did not reach Pieces without a sync request")
