"""The WebSocket protocol of spec 6.2 through the app: every message type, bad input,
authentication (header, API key, ticket), Origin, authorization, limits, shutdown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from pieces_integration.adapters.sql import migrate
from pieces_integration.bootstrap import Container, Overrides, bootstrap
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.app import create_app
from pieces_integration.service_layer.auth import create_api_key
from pieces_integration.service_layer.realtime_hub import RealtimeHub
from pieces_integration.service_layer.realtime_protocol import RealtimeLimits
from tests.e2e.conftest import TokenFactory, make_client
from tests.fakes import FakeSyncTrigger


def send(ws: WebSocketTestSession, kind: str, payload: Any = None) -> None:
    ws.send_text(json.dumps({"type": kind, "payload": payload if payload is not None else {}}))


def next_of(ws: WebSocketTestSession, *kinds: str) -> dict[str, Any]:
    """The next message of one of `kinds`, skipping heartbeats."""
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message["type"] in kinds:
            return message
        assert message["type"] == "heartbeat", message


def subscribe(ws: WebSocketTestSession, **payload: Any) -> dict[str, Any]:
    send(ws, "subscribe", payload)
    return next_of(ws, "subscribed", "error")


def create_asset(api: TestClient, headers: dict[str, str], name: str = "snippet") -> Any:
    response = api.post(
        "/api/v1/assets", json={"name": name, "content": "print(1)"}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_ping_gets_pong(api: TestClient, auth: TokenFactory) -> None:
    with api.websocket_connect("/ws", headers=auth("alice")) as ws:
        send(ws, "ping")
        assert next_of(ws, "pong") == {"type": "pong", "payload": {}}


def test_subscribed_client_receives_asset_events_with_ids(
    api: TestClient, auth: TokenFactory
) -> None:
    alice = auth("alice")
    with api.websocket_connect("/ws", headers=alice) as ws:
        ack = subscribe(ws)
        assert ack["payload"]["user_id"] == "alice" and ack["payload"]["events"] is None
        created = create_asset(api, alice)
        event = next_of(ws, "asset_created")
        assert event["payload"]["asset"]["id"] == created["id"]
        assert event["payload"]["source"] == "user" and event["user_id"] == "alice"
        assert event["id"] == ack["payload"]["last_event_id"] + 1
        api.patch(f"/api/v1/assets/{created['id']}", json={"name": "renamed"}, headers=alice)
        updated = next_of(ws, "asset_updated")
        assert updated["payload"]["asset"]["name"] == "renamed"
        assert updated["id"] == event["id"] + 1
        api.delete(f"/api/v1/assets/{created['id']}", headers=alice)
        deleted = next_of(ws, "asset_deleted")
        assert deleted["payload"]["asset_id"] == created["id"]


def test_the_events_filter_limits_what_is_delivered(api: TestClient, auth: TokenFactory) -> None:
    alice = auth("alice")
    with api.websocket_connect("/ws", headers=alice) as ws:
        ack = subscribe(ws, events=["context_changed"])
        assert ack["payload"]["events"] == ["context_changed"]
        create_asset(api, alice)
        api.post("/api/v1/context/alice", json={"current_task": "review"}, headers=alice)
        event = next_of(ws, "context_changed", "asset_created")
        assert event["type"] == "context_changed"
        payload = event["payload"]
        assert payload["user_id"] == "alice"
        assert payload["new_context"]["current_task"] == "review"
        assert payload["old_context"]["current_task"] is None
        assert [c["field"] for c in payload["changes"]] == ["current_task"]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ('["a list"]', "invalid_message"),
        ('{"payload": {}}', "invalid_message"),
        ('{"type": "dance", "payload": {}}', "unknown_message_type"),
        ('{"type": "subscribe", "payload": {"events": "asset_created"}}', "invalid_message"),
        ('{"type": "subscribe", "payload": {"events": ["nope"]}}', "invalid_message"),
        ('{"type": "subscribe", "payload": {"last_event_id": -1}}', "invalid_message"),
        ('{"type": "sync_request", "payload": {"force": "maybe"}}', "invalid_message"),
    ],
)
def test_bad_messages_get_an_error_and_the_connection_stays_open(
    api: TestClient, auth: TokenFactory, frame: str, code: str
) -> None:
    with api.websocket_connect("/ws", headers=auth("alice")) as ws:
        ws.send_text(frame)
        error = next_of(ws, "error")
        assert error["payload"]["code"] == code
        assert set(error["payload"]) == {"code", "message", "details"}
        send(ws, "ping")
        assert next_of(ws, "pong")["type"] == "pong"


def test_binary_frames_get_an_error(api: TestClient, auth: TokenFactory) -> None:
    with api.websocket_connect("/ws", headers=auth("alice")) as ws:
        ws.send_bytes(b'{"type":"ping"}')
        assert next_of(ws, "error")["payload"]["code"] == "invalid_message"
        send(ws, "ping")
        assert next_of(ws, "pong")


def test_an_oversized_frame_closes_with_1009(api: TestClient, auth: TokenFactory) -> None:
    with api.websocket_connect("/ws", headers=auth("alice")) as ws:
        ws.send_text(json.dumps({"type": "ping", "payload": {"pad": "x" * 70_000}}))
        with pytest.raises(WebSocketDisconnect) as closed:
            next_of(ws, "pong")
        assert closed.value.code == 1009


def test_a_user_cannot_subscribe_to_another_users_events(
    api: TestClient, auth: TokenFactory
) -> None:
    with api.websocket_connect("/ws", headers=auth("mallory")) as ws:
        error = subscribe(ws, user_id="alice")
        assert error["type"] == "error" and error["payload"]["code"] == "forbidden"
        create_asset(api, auth("alice"))
        send(ws, "ping")
        assert next_of(ws, "pong", "asset_created")["type"] == "pong"  # nothing leaked


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SERVICE])
def test_admin_and_service_may_subscribe_to_another_user(
    api: TestClient, auth: TokenFactory, role: Role
) -> None:
    with api.websocket_connect("/ws", headers=auth("ops", role)) as ws:
        assert subscribe(ws, user_id="alice")["payload"]["user_id"] == "alice"
        created = create_asset(api, auth("alice"))
        assert next_of(ws, "asset_created")["payload"]["asset"]["id"] == created["id"]
        send(ws, "unsubscribe", {"user_id": "alice"})
        assert next_of(ws, "unsubscribed")["payload"]["was_subscribed"] is True
        create_asset(api, auth("alice"))
        send(ws, "ping")
        assert next_of(ws, "pong", "asset_created")["type"] == "pong"


def test_sync_request_runs_the_real_engine_and_announces_once(
    api: TestClient, auth: TokenFactory
) -> None:
    with api.websocket_connect("/ws", headers=auth("alice")) as ws:
        send(ws, "subscribe", {"user_id": "alice", "events": ["sync_completed"]})
        next_of(ws, "subscribed")
        send(ws, "sync_request", {"user_id": "alice", "force": False})
        done = next_of(ws, "sync_completed")["payload"]
        assert done["user_id"] == "alice" and done["status"] == "completed"
        assert [e["code"] for e in done["errors"]] == ["not_connected"]
        send(ws, "ping", {})
        assert next_of(ws, "pong")["type"] == "pong"  # no second sync_completed before it


@pytest.fixture
def trigger() -> FakeSyncTrigger:
    return FakeSyncTrigger()


@pytest.fixture
def triggered(trigger: FakeSyncTrigger) -> Iterator[TestClient]:
    """An app whose WebSocket `sync_request` goes to `trigger`."""
    with make_client(Overrides(sync_trigger=trigger)) as client:
        yield client


def test_sync_request_runs_the_sync_and_publishes_sync_completed(
    triggered: TestClient, trigger: FakeSyncTrigger
) -> None:
    alice = _headers(triggered, "alice")
    with (
        triggered.websocket_connect("/ws", headers=alice) as ws,
        triggered.websocket_connect("/ws", headers=alice) as other_device,
    ):
        subscribe(ws)
        subscribe(other_device, events=["sync_completed"])
        send(ws, "sync_request", {"force": True})
        for client in (ws, other_device):
            done = next_of(client, "sync_completed")
            assert done["payload"]["user_id"] == "alice"
            assert done["payload"]["changes_count"] == 3
            assert done["payload"]["errors"] == [] and done["payload"]["status"] == "completed"
    assert trigger.calls == [("alice", True)]


def test_a_failing_sync_request_reports_the_error(
    triggered: TestClient, trigger: FakeSyncTrigger
) -> None:
    trigger.fail = True
    with triggered.websocket_connect("/ws", headers=_headers(triggered, "alice")) as ws:
        send(ws, "sync_request", {})
        assert next_of(ws, "error")["payload"]["code"] == "pieces_os_unavailable"


def test_unauthenticated_connections_are_closed_with_4001(api: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"X-API-Key": "pk_bad"}):
        with (
            api.websocket_connect("/ws", headers=headers) as ws,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            ws.receive_json()
        assert closed.value.code == 4001


def test_an_api_key_header_authenticates(api: TestClient, container: Container) -> None:
    async def mint() -> str:
        _, token = await create_api_key(
            container.uow, user_id="svc", role=Role.SERVICE, name="ws", actor_id=None
        )
        return token

    token = api.portal.call(mint)  # type: ignore[attr-defined]
    with api.websocket_connect("/ws", headers={"X-API-Key": token}) as ws:
        assert subscribe(ws, user_id="alice")["payload"]["user_id"] == "alice"
    with api.websocket_connect("/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert subscribe(ws)["payload"]["user_id"] == "svc"


def test_a_browser_connects_with_a_single_use_ticket(api: TestClient, auth: TokenFactory) -> None:
    issued = api.post("/api/v1/ws-ticket", headers=auth("alice"))
    assert issued.status_code == 200
    ticket = issued.json()["ticket"]
    assert 0 < issued.json()["expires_in"] <= 60
    origin = {"Origin": "http://localhost:3000"}
    with api.websocket_connect(f"/ws?ticket={ticket}", headers=origin) as ws:
        assert subscribe(ws)["payload"]["user_id"] == "alice"
    with (
        api.websocket_connect(f"/ws?ticket={ticket}", headers=origin) as ws,
        pytest.raises(WebSocketDisconnect) as replayed,
    ):
        ws.receive_json()
    assert replayed.value.code == 4001
    assert api.post("/api/v1/ws-ticket").status_code == 401


def test_an_origin_outside_cors_origins_is_refused(api: TestClient, auth: TokenFactory) -> None:
    with pytest.raises(WebSocketDisconnect) as refused:
        with api.websocket_connect("/ws", headers={**auth("alice"), "Origin": "https://evil.test"}):
            pass
    assert refused.value.code == 1008


@pytest.fixture
def tight() -> Iterator[tuple[TestClient, Container]]:
    settings = load_settings()
    migrate.upgrade(settings.sqlalchemy_url)
    limits = RealtimeLimits(heartbeat_interval=0.2, idle_timeout=0.8)
    container = bootstrap(settings, Overrides(realtime_limits=limits))
    with TestClient(create_app(settings, container=container)) as client:
        yield client, container
    import asyncio

    asyncio.run(container.aclose())


def test_heartbeats_flow_and_a_silent_client_is_closed_for_idleness(
    tight: tuple[TestClient, Container],
) -> None:
    api, container = tight
    token = container.jwt.issue("alice", Role.USER, ttl_seconds=60)
    with api.websocket_connect("/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_json()["type"] == "heartbeat"
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
        assert closed.value.code == 4010


def test_graceful_shutdown_tells_clients_to_reconnect_then_closes_1012(
    api: TestClient, auth: TokenFactory, container: Container
) -> None:
    hub: RealtimeHub = container.realtime.hub
    with api.websocket_connect("/ws", headers=auth("alice")) as ws:
        subscribe(ws)
        api.portal.call(hub.drain)  # type: ignore[attr-defined]
        message = next_of(ws, "reconnect")
        assert message["payload"]["reason"] == "server_shutdown"
        assert message["payload"]["retry_after_ms"] > 0
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1012


def _headers(api: TestClient, user_id: str) -> dict[str, str]:
    container: Container = api.app.state.container  # type: ignore[attr-defined]
    token = container.jwt.issue(user_id, Role.USER, ttl_seconds=600)
    return {"Authorization": f"Bearer {token}"}
