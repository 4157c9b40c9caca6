"""The subscribe filter speaks the vocabulary the service publishes (issue #19, defect 1).

Event names are written here as literal strings, the way a client sends them, so renaming
an `EventType` value breaks this test rather than silently changing the contract.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from tests.e2e.conftest import TokenFactory

CONNECT = "/api/v1/integrations/pieces/connect"
# Nothing listens on the discard port: the attempt fails at once and the connection
# monitor publishes its state changes (connecting, then disconnected).
UNREACHABLE_PIECES = "http://127.0.0.1:9"


def send(ws: WebSocketTestSession, kind: str, payload: Any) -> None:
    ws.send_text(json.dumps({"type": kind, "payload": payload}))


def next_of(ws: WebSocketTestSession, *kinds: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message["type"] in kinds:
            return message
        assert message["type"] == "heartbeat", message


def test_a_filter_on_the_published_name_receives_connection_events(
    api: TestClient, auth: TokenFactory
) -> None:
    alice = auth("alice")
    with api.websocket_connect("/ws", headers=alice) as ws:
        send(ws, "subscribe", {"events": ["pieces_connection_state_changed"]})
        subscribed = next_of(ws, "subscribed", "error")
        assert subscribed["payload"]["events"] == ["pieces_connection_state_changed"]
        response = api.post(CONNECT, json={"pieces_url": UNREACHABLE_PIECES}, headers=alice)
        assert response.status_code == 200, response.text
        event = next_of(ws, "pieces_connection_state_changed")
        assert event["user_id"] == "alice"
        assert event["payload"]["state"] in {"connecting", "disconnected"}


def test_the_old_name_is_an_alias_that_now_receives_the_connection_events(
    api: TestClient, auth: TokenFactory
) -> None:
    alice = auth("alice")
    with api.websocket_connect("/ws", headers=alice) as ws:
        send(ws, "subscribe", {"events": ["connection_state_changed", "asset_created"]})
        subscribed = next_of(ws, "subscribed", "error")
        assert subscribed["type"] == "subscribed", subscribed
        assert subscribed["payload"]["events"] == [
            "asset_created",
            "pieces_connection_state_changed",
        ]
        api.post(CONNECT, json={"pieces_url": UNREACHABLE_PIECES}, headers=alice)
        assert next_of(ws, "pieces_connection_state_changed")["user_id"] == "alice"


def test_an_unknown_event_name_is_rejected_by_name(api: TestClient, auth: TokenFactory) -> None:
    with api.websocket_connect("/ws", headers=auth("alice")) as ws:
        send(ws, "subscribe", {"events": ["asset_created", "pieces_conection_state_changed"]})
        error = next_of(ws, "subscribed", "error")
        assert error["type"] == "error"
        assert error["payload"]["code"] == "invalid_message"
        assert error["payload"]["details"]["unknown"] == ["pieces_conection_state_changed"]
        assert "pieces_connection_state_changed" in error["payload"]["details"]["supported"]
