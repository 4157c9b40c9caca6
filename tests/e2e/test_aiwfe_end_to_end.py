"""Issue 7 end to end, with both emulators and the real service, store and sync engine:

- a chat message with two code blocks, sent by the AIWFE emulator as a signed webhook,
  becomes two assets in the Pieces emulator; sending it again changes nothing;
- a Pieces asset with a TODO appears once as an AIWFE task suggestion.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator

import anyio.to_thread
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from pieces_integration.adapters.aiwfe import AIWFEHttpClient
from pieces_integration.adapters.aiwfe.sync_side import AIWFESyncSide
from pieces_integration.adapters.code_analysis import TreeSitterCodeAnalyzer
from pieces_integration.adapters.event_log_memory import MemoryEventLog
from pieces_integration.adapters.memory import MemoryEventBus, MemoryLocks
from pieces_integration.adapters.pieces_os.client import ClientSettings, PiecesOSClient
from pieces_integration.adapters.pieces_os.sync_side import PiecesSyncSide
from pieces_integration.adapters.pieces_os.transport import HttpxPiecesTransport
from pieces_integration.adapters.resilience import CircuitBreaker, RetryPolicy, TokenBucket
from pieces_integration.domain.hlc import HybridLogicalClock
from pieces_integration.domain.merge import Snapshot
from pieces_integration.domain.model import AssetSource, Side, User
from pieces_integration.domain.queries import AssetQuery
from pieces_integration.emulators.aiwfe import running_aiwfe_emulator
from pieces_integration.emulators.pieces.server import running_emulator
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.ports.sync_sides import SyncSide
from pieces_integration.service_layer.asset_analysis import (
    deliver_suggestion,
    queue_asset_suggestions,
)
from pieces_integration.service_layer.events import EventPublisher
from pieces_integration.service_layer.sync_engine import SyncEngine
from tests.e2e.test_aiwfe_webhook import CONTENT, SECRET, URL, _app

pytestmark = pytest.mark.anyio
USER = "user-aiwfe"


async def _serve(app: FastAPI) -> AsyncIterator[str]:
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


async def _deliver_suggestions(uow: UnitOfWorkFactory, client: AIWFEHttpClient) -> int:
    """What the outbox worker does for target "aiwfe" / create_suggestion messages."""
    from datetime import UTC, datetime, timedelta

    async with uow() as work:
        due = await work.outbox.claim_due(
            "e2e", now=datetime.now(UTC) + timedelta(days=1), lease_seconds=60, limit=100
        )
        await work.commit()
    delivered = 0
    for message in due:
        if message.target == "aiwfe" and message.operation == "create_suggestion":
            await deliver_suggestion(message, client)
            async with uow() as work:
                await work.outbox.mark_delivered(message.id or 0, "e2e", datetime.now(UTC))
                await work.commit()
            delivered += 1
    return delivered


async def test_chat_to_pieces_and_todo_to_aiwfe() -> None:
    app = await anyio.to_thread.run_sync(_app)
    service = _serve(app)
    service_url = await service.__anext__()
    try:
        container = app.state.container
        async with container.uow() as work:
            await work.users.add(User(id=USER))
            await work.commit()
        async with (
            running_emulator() as pieces_emulator,
            running_aiwfe_emulator(
                webhook_url=service_url + URL, webhook_secrets=[SECRET]
            ) as aiwfe,
            httpx.AsyncClient() as http,
        ):
            aiwfe.state.add_user(USER)
            pieces = PiecesOSClient(
                HttpxPiecesTransport(httpx.AsyncClient(), pieces_emulator.url),
                settings=ClientSettings(timeout=5.0),
                retry=RetryPolicy(
                    attempts=2, base_delay=0.01, max_delay=0.02, rng=random.Random(1)
                ),
                breaker=CircuitBreaker(failure_threshold=50),
                limiter=TokenBucket(rate_per_minute=60_000, burst=100),
            )
            await pieces.connect()
            aiwfe_client = AIWFEHttpClient(http, base_url=aiwfe.url, api_key=None)
            pieces_side = PiecesSyncSide(pieces, USER)
            sides: dict[Side, SyncSide] = {
                Side.PIECES: pieces_side,
                Side.AIWFE: AIWFESyncSide(aiwfe_client, USER),
            }

            async def connected(user_id: str) -> dict[Side, SyncSide]:
                return sides

            engine = SyncEngine(
                uow=container.uow,
                locks=MemoryLocks(),
                events=EventPublisher(MemoryEventBus(), MemoryEventLog()),
                sides=connected,
                clock=HybridLogicalClock("e2e"),
            )
            try:
                # 1. AIWFE chat -> webhook -> two assets -> sync -> two Pieces assets.
                chat = await aiwfe.control("POST", "/chats", {"user_id": USER, "title": "DB"})
                sent = await aiwfe.control(
                    "POST", f"/chats/{chat['id']}/messages",
                    {"role": "assistant", "content": CONTENT, "event_id": "evt_e2e_1"},
                )  # fmt: skip
                assert sent["delivery"]["status"] == 200, sent
                await engine.sync_user(USER)
                in_pieces = {r.snapshot.content: r for r in await pieces_side.list_assets()}
                assert set(in_pieces) >= {
                    "pip install asyncpg",
                    "conn = await asyncpg.connect(dsn)",
                }
                assert "aiwfe-chat" in in_pieces["pip install asyncpg"].snapshot.tags
                count = len(in_pieces)

                # Sending it again (same event, and the same message as a new event): nothing.
                data = sent["event"]["data"]
                for event_id, status in (("evt_e2e_1", 409), ("evt_e2e_2", 200)):
                    again = await aiwfe.control(
                        "POST", "/webhooks/send",
                        {"id": event_id, "type": "chat_message_created", "user_id": USER,
                         "data": data},
                    )  # fmt: skip
                    assert again["delivery"]["status"] == status
                await engine.sync_user(USER)
                assert len(await pieces_side.list_assets()) == count

                # 2. A Pieces asset with a TODO -> one AIWFE suggestion, however often seen.
                await pieces_side.create_asset(
                    "x",
                    Snapshot(
                        name="loader.py",
                        content="def load(p):\n    # TODO: handle missing files\n    return p\n",
                        language="python",
                    ),
                )
                analyzer = TreeSitterCodeAnalyzer()
                for _ in range(2):
                    await engine.sync_user(USER)
                    async with container.uow() as work:
                        page = await work.assets.page(USER, AssetQuery(limit=100))
                        await work.rollback()
                    for asset in page.items:
                        if asset.source is not AssetSource.AIWFE:
                            await queue_asset_suggestions(
                                asset, analyzer=analyzer, uow_factory=container.uow
                            )
                    await _deliver_suggestions(container.uow, aiwfe_client)
                stored = aiwfe.state.suggestions[USER]
                assert [(s["title"], s["line"]) for s in stored] == [
                    ("TODO: handle missing files", 2)
                ]
            finally:
                await pieces.aclose()
    finally:
        await service.aclose()
