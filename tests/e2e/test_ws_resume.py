"""No lost events: a client that reconnects with its last id gets exactly what it missed,
in order, from the bounded history, or a `reset` when the gap is older than the history.
Run on the in-process log and on Redis Streams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pieces_integration.bootstrap import Container
from pieces_integration.domain.model import Role
from tests.conftest import REDIS_URL
from tests.e2e.conftest import make_client


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
def app(request: pytest.FixtureRequest) -> Iterator[tuple[TestClient, Container]]:
    overrides: dict[str, Any] = {}
    prefix = None
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        overrides = {"redis_url": REDIS_URL, "redis_key_prefix": prefix}
    try:
        with make_client(**overrides) as client:
            yield client, client.app.state.container  # type: ignore[attr-defined]
    finally:
        if prefix is not None:
            remove_keys(prefix)


def remove_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def headers(container: Container, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {container.jwt.issue(user, Role.USER, ttl_seconds=600)}"}


def publish(api: TestClient, container: Container, user: str, count: int, start: int = 0) -> None:
    async def produce() -> None:
        for n in range(start, start + count):
            await container.events.publish(user, "asset_updated", {"n": n})

    api.portal.call(produce)  # type: ignore[attr-defined]


def resubscribe(ws: Any, **payload: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Everything the server sends for a subscribe, up to and including its ack."""
    ws.send_text(json.dumps({"type": "subscribe", "payload": payload}))
    before: list[dict[str, Any]] = []
    while True:
        message = ws.receive_json()
        if message["type"] == "subscribed":
            return before, message
        before.append(message)


def test_a_reconnecting_client_receives_exactly_the_missed_events_in_order(
    app: tuple[TestClient, Container],
) -> None:
    api, container = app
    alice = headers(container, "alice")
    with api.websocket_connect("/ws", headers=alice) as ws:
        _, ack = resubscribe(ws)
        publish(api, container, "alice", 3)
        seen = [ws.receive_json() for _ in range(3)]
    last = seen[-1]["id"]
    assert [m["id"] for m in seen] == [ack["payload"]["last_event_id"] + i for i in (1, 2, 3)]

    publish(api, container, "alice", 100, start=3)
    publish(api, container, "bob", 5)  # someone else's events are not replayed

    with api.websocket_connect("/ws", headers=alice) as ws:
        replayed, ack = resubscribe(ws, last_event_id=last)
        assert [m["id"] for m in replayed] == list(range(last + 1, last + 101))
        assert [m["payload"]["n"] for m in replayed] == list(range(3, 103))
        assert {m["type"] for m in replayed} == {"asset_updated"}
        assert ack["payload"]["replayed"] == 100 and ack["payload"]["reset"] is False
        assert ack["payload"]["last_event_id"] == last + 100
        publish(api, container, "alice", 1, start=103)
        live = ws.receive_json()
        assert (live["id"], live["payload"]["n"]) == (last + 101, 103)  # no duplicate, no gap


def test_the_replay_honours_the_events_filter(app: tuple[TestClient, Container]) -> None:
    api, container = app
    with api.websocket_connect("/ws", headers=headers(container, "carol")) as ws:
        _, ack = resubscribe(ws)
    start = ack["payload"]["last_event_id"]

    async def produce() -> None:
        for n in range(10):
            kind = "context_changed" if n % 2 else "asset_created"
            await container.events.publish("carol", kind, {"n": n})

    api.portal.call(produce)  # type: ignore[attr-defined]
    with api.websocket_connect("/ws", headers=headers(container, "carol")) as ws:
        replayed, ack = resubscribe(ws, last_event_id=start, events=["context_changed"])
    assert [m["payload"]["n"] for m in replayed] == [1, 3, 5, 7, 9]
    assert ack["payload"]["last_event_id"] == start + 10


def test_a_gap_older_than_the_history_gets_reset(app: tuple[TestClient, Container]) -> None:
    api, container = app
    dave = headers(container, "dave")
    with api.websocket_connect("/ws", headers=dave) as ws:
        _, ack = resubscribe(ws)
    last = ack["payload"]["last_event_id"]
    publish(api, container, "dave", 2500)  # more than the 1,000 kept per user
    with api.websocket_connect("/ws", headers=dave) as ws:
        replayed, ack = resubscribe(ws, last_event_id=last)
        assert [m["type"] for m in replayed] == ["reset"]
        reset = replayed[0]["payload"]
        assert reset == {"user_id": "dave", "last_event_id": last + 2500, "reason": "history_gap"}
        assert ack["payload"]["reset"] is True and ack["payload"]["last_event_id"] == last + 2500
        publish(api, container, "dave", 1)
        assert ws.receive_json()["id"] == last + 2501  # continues from the reset point


def test_an_unknown_future_id_gets_reset(app: tuple[TestClient, Container]) -> None:
    api, container = app
    with api.websocket_connect("/ws", headers=headers(container, "erin")) as ws:
        replayed, ack = resubscribe(ws, last_event_id=10**17)
        assert [m["type"] for m in replayed] == ["reset"]
        assert ack["payload"]["reset"] is True
