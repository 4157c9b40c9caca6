"""Issue 7 end to end, through the composition root.

The service is the app `serve` runs (embedded SQLite, no Redis, `AIWFE_API_URL` pointing at
the AIWFE emulator), under uvicorn in this process; the user's Pieces connection is made
with the service's own connect use case, so the sync engine, its scheduler, the Pieces
change stream, the `after_pull` asset analysis and the outbox deliverers are the ones
`bootstrap.sync.wire_sync` builds. Syncs are asked for through `POST /context/{user}/sync`.
Both emulators record every HTTP request they answer.

- a chat message with two code blocks, sent by the AIWFE emulator as a signed webhook,
  becomes exactly two assets in the Pieces emulator; sending it again changes nothing;
  each names its chat in Pieces;
- a Pieces asset with a TODO, pulled by a sync, reaches AIWFE as exactly one task
  suggestion; further syncs send nothing more.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from pieces_integration.bootstrap import Container
from pieces_integration.domain.model import Asset, AssetSource, Role, User
from pieces_integration.domain.queries import AssetQuery
from pieces_integration.emulators.aiwfe.server import AIWFEEmulator
from pieces_integration.emulators.pieces.server import EmulatorServer
from pieces_integration.ports.pieces import AssetDraft
from tests.e2e.helpers import CHAT_WITH_CODE as CONTENT
from tests.e2e.helpers import WEBHOOK_SECRET as SECRET
from tests.e2e.helpers import WEBHOOK_URL as URL
from tests.e2e.helpers import webhook_app as _app
from tests.e2e.recording import Call, Recorder
from tests.e2e.sync_harness import pieces_client

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]
USER = "user-aiwfe"
TODO_CODE = "def load(p):\n    # TODO: handle missing files\n    return p\n"


@dataclass
class Stack:
    service_url: str
    container: Container
    pieces: EmulatorServer
    aiwfe: AIWFEEmulator
    calls: list[Call]
    http: httpx.AsyncClient

    def count(self, target: str, method: str, path: str) -> int:
        return sum(
            1
            for c in self.calls
            if (c.target, c.method, c.path) == (target, method, path) and c.status < 300
        )

    async def sync(self) -> dict[str, Any]:
        """A sync through the API, as a user's client asks for one."""
        token = self.container.jwt.issue(USER, Role.USER, ttl_seconds=600)
        response = await self.http.post(
            f"{self.service_url}/api/v1/context/{USER}/sync",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        assert result["status"] == "completed" and result["errors"] == [], result
        return result

    async def sync_until(self, done: Callable[[], Any], attempts: int = 5) -> None:
        """Sync until `done()` holds. A run started before the change (the scheduler's, or
        one a stream event started) may be joined instead of a fresh one: ask again."""
        for _ in range(attempts):
            await self.sync()
            if await done():
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"not reached after {attempts} syncs")

    async def pieces_assets(self) -> list[Asset]:
        """The Pieces library as a developer's IDE reads it."""
        client = pieces_client(self.pieces.base_url, httpx.AsyncClient())  # aclose closes it
        await client.connect()
        try:
            found: list[Asset] = await client.list_assets(USER)
            return found
        finally:
            await client.aclose()

    async def local_assets(self) -> list[Asset]:
        async with self.container.uow(readonly=True) as work:
            page = await work.assets.page(USER, AssetQuery(limit=100))
        items: list[Asset] = page.items
        return items

    async def outbox(self, operation: str) -> list[tuple[str, str]]:
        """(idempotency key, status) of our outbox messages of one operation."""
        async with self.container.engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT idempotency_key, status FROM outbox WHERE operation = :op"),
                {"op": operation},
            )
            return [(str(key), str(state)) for key, state in rows]


@asynccontextmanager
async def _serve(app: FastAPI, sock: socket.socket) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def _stack() -> AsyncIterator[Stack]:
    calls: list[Call] = []
    # The service's socket first: the AIWFE emulator must know where to send webhooks,
    # and the service where AIWFE is.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    service_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    aiwfe = AIWFEEmulator(webhook_url=service_url + URL, webhook_secrets=[SECRET])
    aiwfe.app = Recorder(aiwfe.app, "aiwfe", calls)  # type: ignore[assignment]
    pieces = EmulatorServer()
    pieces.app = Recorder(pieces.app, "pieces", calls)  # type: ignore[assignment]
    await aiwfe.start()
    await pieces.start()
    try:
        aiwfe.state.add_user(USER)
        app = await anyio.to_thread.run_sync(functools.partial(_app, aiwfe_api_url=aiwfe.url))
        async with _serve(app, sock), httpx.AsyncClient(timeout=30) as http:
            container: Container = app.state.container
            async with container.uow() as work:
                await work.users.add(User(id=USER))
                await work.commit()
            connected = await container.sync.pieces.connect(
                USER, pieces.base_url, api_key=None, preferences=None
            )
            assert connected.success, connected
            yield Stack(service_url, container, pieces, aiwfe, calls, http)
    finally:
        sock.close()
        await pieces.stop()
        await aiwfe.stop()


def _summary(assets: list[Asset]) -> set[tuple[str, str | None, frozenset[str]]]:
    return {(a.content, a.language, frozenset(a.tags)) for a in assets}


# What the chat's two code blocks become in Pieces: the code exactly, the language, and the
# tags `aiwfe-chat` + the language of the fence. Pieces records a language as an extension:
# `bash` is stored as `sh`, which reads back as "bash" again (one vocabulary, issue #19).
CHAT_ASSETS = {
    ("pip install asyncpg", "bash", frozenset({"aiwfe-chat", "bash"})),
    ("conn = await asyncpg.connect(dsn)", "python", frozenset({"aiwfe-chat", "python"})),
}


async def test_chat_message_becomes_exactly_two_pieces_assets_once() -> None:
    async with _stack() as stack:
        chat = await stack.aiwfe.control("POST", "/chats", {"user_id": USER, "title": "DB"})
        sent = await stack.aiwfe.control(
            "POST", f"/chats/{chat['id']}/messages",
            {"role": "assistant", "content": CONTENT, "event_id": "evt_e2e_1"},
        )  # fmt: skip
        assert sent["delivery"]["status"] == 200, sent

        async def both_in_pieces() -> bool:
            return len(await stack.pieces_assets()) >= 2

        await stack.sync_until(both_in_pieces)
        await stack.sync()
        in_pieces = await stack.pieces_assets()
        assert len(in_pieces) == 2  # no extra copy of either
        assert _summary(in_pieces) == CHAT_ASSETS
        creates = stack.count("pieces", "POST", "/assets/create")
        assert creates == 2

        # Sending it again (the same event, and the same message as a new event): nothing.
        data = sent["event"]["data"]
        for event_id, status in (("evt_e2e_1", 409), ("evt_e2e_2", 200)):
            again = await stack.aiwfe.control(
                "POST", "/webhooks/send",
                {"id": event_id, "type": "chat_message_created", "user_id": USER, "data": data},
            )  # fmt: skip
            assert again["delivery"]["status"] == status, again
        await stack.sync()
        await stack.sync()
        after = await stack.pieces_assets()
        assert len(after) == 2
        assert _summary(after) == CHAT_ASSETS
        assert stack.count("pieces", "POST", "/assets/create") == creates
        assert len(await stack.local_assets()) == 2


async def test_chat_assets_in_pieces_name_their_chat() -> None:
    async with _stack() as stack:
        chat = await stack.aiwfe.control("POST", "/chats", {"user_id": USER, "title": "DB"})
        sent = await stack.aiwfe.control(
            "POST", f"/chats/{chat['id']}/messages",
            {"role": "assistant", "content": CONTENT, "event_id": "evt_e2e_origin"},
        )  # fmt: skip
        assert sent["delivery"]["status"] == 200, sent

        async def both_in_pieces() -> bool:
            return len(await stack.pieces_assets()) == 2

        await stack.sync_until(both_in_pieces)
        origins = [a.metadata.get("origin") for a in await stack.pieces_assets()]
        assert origins == [{"source": "aiwfe", "source_id": chat["id"]}] * 2


async def test_pieces_todo_becomes_one_aiwfe_suggestion_through_the_wiring() -> None:
    suggestions = f"/v1/users/{USER}/suggestions"
    async with _stack() as stack:
        # A developer saves a snippet with a TODO in Pieces (their IDE, not the service).
        ide = pieces_client(stack.pieces.base_url, httpx.AsyncClient())
        await ide.connect()
        try:
            saved = await ide.create_asset(
                USER, AssetDraft(content=TODO_CODE, language="python", name="loader.py")
            )
        finally:
            await ide.aclose()

        async def suggested() -> bool:
            return bool(stack.aiwfe.state.suggestions.get(USER))

        await stack.sync_until(suggested)
        for _ in range(2):  # more syncs (and whatever the scheduler runs) add nothing
            await stack.sync()

        stored = stack.aiwfe.state.suggestions[USER]
        assert [(s["title"], s["line"], s["type"]) for s in stored] == [
            ("TODO: handle missing files", 2, "task")
        ]
        [suggestion] = stored
        [asset] = await stack.local_assets()
        # The sync pulled it from Pieces, and the suggestion names our copy of it.
        assert (asset.source, asset.source_id, asset.content) == (
            AssetSource.PIECES, saved.id, TODO_CODE
        )  # fmt: skip
        assert suggestion["asset_id"] == asset.id
        # Our side sent it once, not once per sync (AIWFE's own de-duplication by
        # fingerprint would hide a second send in its state, so count the requests).
        assert stack.count("aiwfe", "POST", suggestions) == 1
        queued = await stack.outbox("create_suggestion")
        assert len(queued) == 1 and queued[0][1] == "delivered", queued
