"""Revocation at once (issue 20): deleting a user or revoking an API key ends their live
WebSockets within 1 s, and the next request with the same credential gets 401."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from pieces_integration.bootstrap import Container
from pieces_integration.domain.model import Role
from pieces_integration.service_layer.auth import create_api_key, revoke_api_key
from pieces_integration.service_layer.revocation import api_key_subject
from tests.e2e.conftest import TokenFactory
from tests.e2e.helpers import call

pytestmark = pytest.mark.timeout(30)


def _closed_within(ws: object, seconds: float) -> tuple[int, float]:
    started = time.monotonic()
    with pytest.raises(WebSocketDisconnect) as closed:
        while True:
            message = ws.receive_json()  # type: ignore[attr-defined]
            assert message["type"] in ("heartbeat", "subscribed", "pong"), message
    elapsed = time.monotonic() - started
    assert elapsed < seconds, elapsed
    return closed.value.code, elapsed


def test_a_deleted_users_websocket_is_closed_within_a_second_and_the_token_then_fails(
    api: TestClient, auth: TokenFactory
) -> None:
    alice = auth("alice")
    assert api.get("/api/v1/assets", headers=alice).status_code == 200
    with api.websocket_connect("/ws", headers=alice) as ws:
        ws.send_json({"type": "subscribe", "payload": {}})
        assert ws.receive_json()["type"] == "subscribed"
        assert (
            api.delete("/api/v1/users/alice", headers=auth("root", Role.ADMIN)).status_code == 204
        )
        code, _ = _closed_within(ws, 1.0)
    assert code == 4001
    # The token was minted before the deletion: it must not bring alice back.
    again = api.get("/api/v1/assets", headers=alice)
    assert again.status_code == 401, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    with (
        api.websocket_connect("/ws", headers=alice) as ws,
        pytest.raises(WebSocketDisconnect) as refused,
    ):
        ws.receive_json()
    assert refused.value.code == 4001


def test_revoking_an_api_key_closes_its_sessions_but_not_the_users_other_ones(
    api: TestClient, container: Container, auth: TokenFactory
) -> None:
    key, token = call(
        api,
        lambda: create_api_key(
            container.uow, user_id="bob", role=Role.USER, name="ci", actor_id=None
        ),
    )
    with (
        api.websocket_connect("/ws", headers={"X-API-Key": token}) as by_key,
        api.websocket_connect("/ws", headers=auth("bob")) as by_token,
    ):
        for ws in (by_key, by_token):
            ws.send_json({"type": "ping", "payload": {}})
            assert ws.receive_json()["type"] == "pong"
        # The revocation runs on the app's loop, as the CLI's does in its own process.
        call(
            api,
            lambda: revoke_api_key(
                container.uow, key.id, actor_id="test", revocations=container.revocations
            ),
        )
        code, _ = _closed_within(by_key, 1.0)
        assert code == 4001
        by_token.send_json({"type": "ping", "payload": {}})
        assert by_token.receive_json()["type"] == "pong"
    assert api.get("/api/v1/assets", headers={"X-API-Key": token}).status_code == 401
    assert container.revocations.watched == 0
    assert api_key_subject(key.id).startswith("api_key:")
