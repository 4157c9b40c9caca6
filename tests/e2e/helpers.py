"""Small API helpers the e2e tests share (not tests themselves)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from pieces_integration.adapters.sql import migrate
from pieces_integration.config import load_settings
from pieces_integration.emulators.pieces.server import EmulatorServer
from pieces_integration.entrypoints.api.app import create_app

WEBHOOK_URL = "/api/v1/integrations/aiwfe/webhook"
WEBHOOK_SECRET = "whsec_test_current"
OLD_WEBHOOK_SECRET = "whsec_test_previous"
# An assistant message with two fenced blocks, one of them indented in a list item.
CHAT_WITH_CODE = (
    "Two steps:\n\n```bash\npip install asyncpg\n```\n\n"
    "- then, in your code:\n\n  ```python\n  conn = await asyncpg.connect(dsn)\n  ```\n"
)


def call(api: TestClient, func: Any, *args: Any) -> Any:
    """Run an async callable on the test client's event loop (the app's)."""
    return api.portal.call(func, *args)  # type: ignore[attr-defined]


def create(api: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = api.post("/api/v1/assets", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@contextmanager
def emulator_thread(**options: object) -> Iterator[EmulatorServer]:
    """The Pieces emulator on its own event loop, since TestClient runs the app on another."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = EmulatorServer(**options)  # type: ignore[arg-type]
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def webhook_app(**settings_values: Any) -> FastAPI:
    """An app on a migrated database that accepts AIWFE webhooks signed with either secret."""
    settings = load_settings(
        aiwfe_webhook_secret=f"{WEBHOOK_SECRET},{OLD_WEBHOOK_SECRET}", **settings_values
    )
    migrate.upgrade(settings.sqlalchemy_url)
    return create_app(settings)


def new_team(api: TestClient, headers: dict[str, str], name: str = "Backend") -> dict[str, Any]:
    response = api.post("/api/v1/teams", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def add_member(
    api: TestClient, headers: dict[str, str], team_id: str, user_id: str, role: str
) -> dict[str, Any]:
    response = api.post(
        f"/api/v1/teams/{team_id}/members", json={"user_id": user_id, "role": role}, headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# A write pokes the writer's background sync; its runs' events are not this test's subject.
UNRELATED = {"heartbeat", "sync_completed"}


def next_event(ws: WebSocketTestSession) -> dict[str, Any]:
    """The next message of interest: the order of events is part of the test."""
    for _ in range(100):
        message: dict[str, Any] = ws.receive_json()
        if message["type"] not in UNRELATED:
            return message
    raise AssertionError("nothing but heartbeats and sync runs")
