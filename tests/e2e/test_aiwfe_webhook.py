"""POST /api/v1/integrations/aiwfe/webhook through the app: signatures, replay, limits, and
the emulator delivering a chat message to a running service."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio.to_thread
import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pieces_integration.adapters.sql import migrate
from pieces_integration.config import load_settings
from pieces_integration.domain.model import User
from pieces_integration.domain.webhook_signature import SIGNATURE_HEADER, sign
from pieces_integration.emulators.aiwfe import running_aiwfe_emulator
from pieces_integration.emulators.aiwfe.webhooks import build_event, encode_event
from pieces_integration.entrypoints.api.app import create_app
from pieces_integration.entrypoints.api.routes import aiwfe_webhook
from tests.aiwfe_contract import validate
from tests.e2e.helpers import (
    CHAT_WITH_CODE,
    OLD_WEBHOOK_SECRET,
    WEBHOOK_SECRET,
    WEBHOOK_URL,
    webhook_app,
)

URL, SECRET, OLD_SECRET = WEBHOOK_URL, WEBHOOK_SECRET, OLD_WEBHOOK_SECRET
CONTENT = CHAT_WITH_CODE
USER = "user-aiwfe"


_app = webhook_app


def _chat_event(event_id: str = "evt_1", content: str = CONTENT) -> dict[str, Any]:
    message = {"id": "msg_1", "role": "assistant", "content": content,
               "created_at": "2026-11-25T10:00:00Z"}  # fmt: skip
    return build_event(
        "chat_message_created", USER, {"chat_id": "chat_1", "message": message}, event_id=event_id
    )


def _post(
    client: TestClient, body: bytes, *, secrets: list[str] | None = None, t: int | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if secrets != []:
        stamp = int(time.time()) if t is None else t
        headers[SIGNATURE_HEADER] = sign(body, secrets or [SECRET], timestamp=stamp)
    return client.post(URL, content=body, headers=headers)


def _counts(client: TestClient) -> dict[str, int]:
    async def count() -> dict[str, int]:
        engine = client.app.state.container.engine  # type: ignore[attr-defined]
        async with engine.connect() as conn:
            return {
                table: int((await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar())
                for table in ("webhook_events", "assets", "outbox")
            }

    return client.portal.call(count)  # type: ignore[union-attr]


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(_app(), raise_server_exceptions=False) as c:

        async def add_user() -> None:
            async with c.app.state.container.uow() as uow:  # type: ignore[attr-defined]
                await uow.users.add(User(id=USER))
                await uow.commit()

        c.portal.call(add_user)  # type: ignore[union-attr]
        yield c


def test_valid_delivery_creates_the_assets(client: TestClient) -> None:
    event = _chat_event()
    validate(event, "components", "schemas", "WebhookEvent")  # what the emulator sends is contract
    response = _post(client, encode_event(event))
    assert response.status_code == 200, response.text
    body = response.json()
    validate(body, "components", "schemas", "WebhookResponse")
    assert body == {"received": True, "event_id": "evt_1", "status": "processed", "actions": 2,
                    "reason": None}  # fmt: skip
    assert _counts(client) == {"webhook_events": 1, "assets": 2, "outbox": 2}


def test_replayed_event_id_is_409_and_changes_nothing(client: TestClient) -> None:
    body = encode_event(_chat_event())
    assert _post(client, body).status_code == 200
    before = _counts(client)
    replay = _post(client, body)
    assert replay.status_code == 409
    assert replay.headers["content-type"] == "application/problem+json"
    assert _counts(client) == before


def test_secret_rotation_accepts_old_and_new(client: TestClient) -> None:
    assert _post(client, encode_event(_chat_event("e1")), secrets=[OLD_SECRET]).status_code == 200
    both = _post(client, encode_event(_chat_event("e2")), secrets=["retired", SECRET])
    assert both.status_code == 200


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("bad_signature", 401),
        ("unsigned", 401),
        ("stale_timestamp", 401),
        ("future_timestamp", 401),
        ("oversized", 413),
        ("malformed_json", 400),
        ("not_an_event", 422),
    ],
)
def test_rejected_deliveries_change_nothing(client: TestClient, case: str, status: int) -> None:
    body = encode_event(_chat_event())
    now = int(time.time())
    if case == "bad_signature":
        response = _post(client, body, secrets=["not-the-secret"])
    elif case == "unsigned":
        response = _post(client, body, secrets=[])
    elif case == "stale_timestamp":
        response = _post(client, body, t=now - 600)  # well outside the 300 s window
    elif case == "future_timestamp":
        response = _post(client, body, t=now + 600)
    elif case == "oversized":
        big = _chat_event(content="```python\n" + "x = 1\n" * 60_000 + "```\n")
        response = _post(client, encode_event(big))
    elif case == "malformed_json":
        response = _post(client, b'{"id": "evt_1", "type": ')
    else:
        response = _post(client, json.dumps({"id": "evt_1", "type": "task_created"}).encode())
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert _counts(client) == {"webhook_events": 0, "assets": 0, "outbox": 0}


def test_tampered_body_with_valid_header_is_rejected(client: TestClient) -> None:
    body = encode_event(_chat_event())
    header = sign(body, SECRET, timestamp=int(time.time()))
    tampered = body.replace(b"asyncpg", b"evilpkg")
    response = client.post(URL, content=tampered, headers={SIGNATURE_HEADER: header})
    assert response.status_code == 401
    assert _counts(client)["webhook_events"] == 0


def test_unconfigured_secret_rejects_everything() -> None:
    settings = load_settings()
    migrate.upgrade(settings.sqlalchemy_url)
    app = create_app(settings)
    if not any(getattr(r, "path", None) == URL for r in app.routes):
        app.include_router(aiwfe_webhook.router)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert _post(c, encode_event(_chat_event())).status_code == 401


# --- the emulator delivers to a running service -----------------------------------------


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.mark.anyio
async def test_emulator_chat_message_becomes_two_assets_once() -> None:
    app = await anyio.to_thread.run_sync(_app)  # migrations run their own event loop
    async with serving(app) as service_url:
        container = app.state.container
        async with container.uow() as uow:
            await uow.users.add(User(id=USER))
            await uow.commit()
        async with running_aiwfe_emulator(
            webhook_url=service_url + URL, webhook_secrets=[SECRET]
        ) as emulator:
            emulator.state.add_user(USER)
            chat = await emulator.control("POST", "/chats", {"user_id": USER, "title": "DB"})
            sent = await emulator.control(
                "POST", f"/chats/{chat['id']}/messages",
                {"role": "assistant", "content": CONTENT, "event_id": "evt_e2e"},
            )  # fmt: skip
            assert sent["delivery"]["status"] == 200, sent
            assert sent["delivery"]["body"]["actions"] == 2
            again = await emulator.control(
                "POST", "/webhooks/send",
                {"id": "evt_e2e", "type": "chat_message_created", "user_id": USER,
                 "data": sent["event"]["data"]},
            )  # fmt: skip
            assert again["delivery"]["status"] == 409
        async with container.uow() as uow:
            from pieces_integration.domain.queries import AssetQuery

            page = await uow.assets.page(USER, AssetQuery(tags=("aiwfe-chat",)))
    assert sorted((a.language, a.content) for a in page.items) == [
        ("bash", "pip install asyncpg"),
        ("python", "conn = await asyncpg.connect(dsn)"),
    ]
    assert all(a.source_id == chat["id"] for a in page.items)
