"""A team asset changed on the owner's side (Pieces OS) and brought in by the sync is a
revision by the owner, like an edit through the API, and the team's members hear of it
(issue 16): the history of a team asset does not depend on where its owner edited it."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi.testclient import TestClient

from pieces_integration.ports.pieces import AssetChanges
from tests.e2e.conftest import TokenFactory
from tests.e2e.helpers import add_member, emulator_thread, new_team, next_event
from tests.e2e.sync_harness import pieces_client

pytestmark = pytest.mark.timeout(90)


async def edit_in_pieces(url: str, pieces_id: str, content: str) -> None:
    client = pieces_client(url, httpx.AsyncClient())  # closes its own client
    try:
        await client.connect()
        await client.update_asset("alice", pieces_id, AssetChanges(content=content))
    finally:
        await client.aclose()


def test_an_edit_in_the_owners_pieces_is_a_team_revision_and_an_event(
    api: TestClient, auth: TokenFactory
) -> None:
    alice, bob = auth("alice"), auth("bob")
    team = new_team(api, alice, "Backend")["id"]
    add_member(api, alice, team, "bob", "member")
    with emulator_thread(assets=2, seed=11) as emulator:
        connected = api.post(
            "/api/v1/integrations/pieces/connect",
            json={"pieces_url": emulator.base_url},
            headers=alice,
        )
        assert connected.json()["success"], connected.text
        assert api.post("/api/v1/context/alice/sync", headers=alice).status_code == 200
        target, other = api.get("/api/v1/assets", params={"limit": 2}, headers=alice).json()
        shared = api.post(
            f"/api/v1/assets/{target['id']}/shares", json={"team_id": team}, headers=alice
        )
        assert shared.status_code == 201, shared.text

        with api.websocket_connect("/ws", headers=bob) as ws:
            ws.send_text(json.dumps({"type": "subscribe", "payload": {}}))
            assert next_event(ws)["type"] == "subscribed"
            new_content = "# edited in Pieces by alice\n" + target["content"]
            asyncio.run(edit_in_pieces(emulator.base_url, target["source_id"], new_content))
            asyncio.run(edit_in_pieces(emulator.base_url, other["source_id"], "# private\n"))
            run = api.post("/api/v1/context/alice/sync", headers=alice)
            assert run.status_code == 200, run.text
            event = next_event(ws)
            assert event["type"] == "team_asset_updated", event
            assert event["payload"]["team_ids"] == [team]
            assert event["payload"]["updated_by"] == "alice"
            assert event["payload"]["asset"]["content"] == new_content

    history = api.get(f"/api/v1/assets/{target['id']}/revisions", headers=bob)
    assert history.status_code == 200, history.text
    revisions = history.json()["data"]
    assert [r["author_id"] for r in revisions] == ["alice", "alice"]
    latest = api.get(
        f"/api/v1/assets/{target['id']}/revisions/{revisions[0]['number']}", headers=bob
    ).json()
    assert latest["content"] == new_content
    assert "+# edited in Pieces by alice" in (revisions[0]["diff"] or "")
    # The unshared asset's edit made no revision and told the team nothing.
    assert api.get(f"/api/v1/assets/{other['id']}/revisions", headers=bob).status_code == 404
