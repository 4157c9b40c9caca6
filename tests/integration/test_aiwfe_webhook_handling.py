"""The webhook use case and asset analysis over the real unit of work (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pieces_integration.adapters.aiwfe import AIWFEHttpClient
from pieces_integration.adapters.code_analysis import TreeSitterCodeAnalyzer
from pieces_integration.domain.model import Asset, Consent, OutboxMessage, User
from pieces_integration.domain.preferences import NotificationPreferences, Preferences
from pieces_integration.domain.queries import AssetQuery
from pieces_integration.domain.webhook_events import DuplicateWebhookEvent, parse_webhook_event
from pieces_integration.emulators.aiwfe import running_aiwfe_emulator
from pieces_integration.ports.aiwfe import Chat, ChatMessage
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.asset_analysis import (
    deliver_suggestion,
    queue_asset_suggestions,
)
from pieces_integration.service_layer.chat_insights import asset_commands_for_chat
from pieces_integration.service_layer.webhooks import handle_aiwfe_event

pytestmark = pytest.mark.anyio
USER = "user-1"
TWO_BLOCKS = (
    "Create the table:\n\n```sql\nCREATE TABLE notes (id serial PRIMARY KEY);\n```\n\n"
    "Then query it:\n\n~~~python\nrows = await conn.fetch('SELECT * FROM notes')\n~~~\n"
)


def event(
    event_id: str = "evt_1",
    *,
    role: str = "assistant",
    content: str = TWO_BLOCKS,
    user_id: str = USER,
    message_id: str = "msg_1",
    type_: str = "chat_message_created",
    data: dict[str, Any] | None = None,
) -> bytes:
    body = {
        "id": event_id,
        "type": type_,
        "created_at": "2026-11-25T10:00:00Z",
        "user_id": user_id,
        "data": data
        if data is not None
        else {
            "chat_id": "chat_1",
            "message": {
                "id": message_id,
                "role": role,
                "content": content,
                "created_at": "2026-11-25T10:00:00Z",
            },
        },
    }
    return json.dumps(body).encode()


async def add_user(uow_factory: UnitOfWorkFactory, **kw: Any) -> None:
    async with uow_factory() as uow:
        await uow.users.add(User(id=USER, **kw))
        await uow.commit()


async def outbox(uow_factory: UnitOfWorkFactory) -> list[OutboxMessage]:
    async with uow_factory() as uow:
        messages = await uow.outbox.claim_due(
            "test", now=datetime.now(UTC) + timedelta(days=1), lease_seconds=1, limit=100
        )
        await uow.rollback()
    return sorted(messages, key=lambda m: m.id or 0)


async def aiwfe_assets(uow_factory: UnitOfWorkFactory) -> list[Asset]:
    async with uow_factory() as uow:
        page = await uow.assets.page(USER, AssetQuery(tags=("aiwfe-chat",), limit=100))
        await uow.rollback()
    return sorted(page.items, key=lambda a: a.name)


async def test_chat_message_becomes_one_asset_per_code_block(
    uow_factory: UnitOfWorkFactory,
) -> None:
    await add_user(uow_factory)
    outcome = await handle_aiwfe_event(parse_webhook_event(event()), uow_factory=uow_factory)
    assert (outcome.status, outcome.actions) == ("processed", 2)
    assets = await aiwfe_assets(uow_factory)
    assert [(a.language, sorted(a.tags), a.source.value, a.source_id) for a in assets] == [
        ("python", ["aiwfe-chat", "python"], "aiwfe", "chat_1"),
        ("sql", ["aiwfe-chat", "sql"], "aiwfe", "chat_1"),
    ]
    assert assets[1].content == "CREATE TABLE notes (id serial PRIMARY KEY);"
    assert assets[0].metadata["aiwfe_message_id"] == "msg_1"
    messages = await outbox(uow_factory)
    assert [(m.target, m.operation) for m in messages] == [("pieces", "asset.create")] * 2
    assert {m.payload["asset_id"] for m in messages} == {a.id for a in assets}


async def test_redelivered_event_is_a_duplicate_and_changes_nothing(
    uow_factory: UnitOfWorkFactory,
) -> None:
    await add_user(uow_factory)
    await handle_aiwfe_event(parse_webhook_event(event()), uow_factory=uow_factory)
    before = await outbox(uow_factory)
    with pytest.raises(DuplicateWebhookEvent):
        await handle_aiwfe_event(parse_webhook_event(event()), uow_factory=uow_factory)
    assert len(await outbox(uow_factory)) == len(before) == 2
    assert len(await aiwfe_assets(uow_factory)) == 2


async def test_same_message_under_a_new_event_id_creates_no_second_asset(
    uow_factory: UnitOfWorkFactory,
) -> None:
    await add_user(uow_factory)
    await handle_aiwfe_event(parse_webhook_event(event("evt_1")), uow_factory=uow_factory)
    outcome = await handle_aiwfe_event(parse_webhook_event(event("evt_2")), uow_factory=uow_factory)
    assert outcome.actions == 0
    assert len(await outbox(uow_factory)) == 2
    assert len(await aiwfe_assets(uow_factory)) == 2


async def test_polling_a_chat_yields_the_webhook_keys(uow_factory: UnitOfWorkFactory) -> None:
    await add_user(uow_factory)
    await handle_aiwfe_event(parse_webhook_event(event()), uow_factory=uow_factory)
    stamp = datetime.now(UTC)
    chat = Chat(
        "chat_1", USER, (ChatMessage("msg_1", "assistant", TWO_BLOCKS, stamp),), title="Notes"
    )
    commands = asset_commands_for_chat(USER, [chat])
    assets = await aiwfe_assets(uow_factory)
    assert sorted(c.asset_id for c in commands) == sorted(a.id for a in assets)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"role": "user"}, "no_code_blocks"),
        ({"content": "No code here, just `inline` and prose."}, "no_code_blocks"),
        ({"user_id": "stranger"}, "unknown_user"),
        ({"type_": "something_new", "data": {}}, "unhandled_type"),
    ],
)
async def test_events_without_effect_are_recorded_and_ignored(
    uow_factory: UnitOfWorkFactory, kwargs: dict[str, Any], reason: str
) -> None:
    await add_user(uow_factory)
    outcome = await handle_aiwfe_event(
        parse_webhook_event(event(**kwargs)), uow_factory=uow_factory
    )
    assert (outcome.status, outcome.actions, outcome.reason) == ("ignored", 0, reason)
    assert await outbox(uow_factory) == []
    assert await aiwfe_assets(uow_factory) == []
    with pytest.raises(DuplicateWebhookEvent):
        await handle_aiwfe_event(parse_webhook_event(event(**kwargs)), uow_factory=uow_factory)


async def test_no_assets_without_consent(uow_factory: UnitOfWorkFactory) -> None:
    await add_user(uow_factory, consent=Consent(asset_sync=False))
    outcome = await handle_aiwfe_event(parse_webhook_event(event()), uow_factory=uow_factory)
    assert (outcome.status, outcome.reason) == ("ignored", "asset_sync_not_consented")
    assert await outbox(uow_factory) == []
    assert await aiwfe_assets(uow_factory) == []


@pytest.mark.parametrize(
    ("type_", "data", "expected"),
    [
        ("task_created", {"task": {"id": "t1", "title": "Ship it"}}, {"current_task": "Ship it"}),
        ("opportunity_created", {"opportunity": {"id": "o1", "name": "Acme"}},
         {"active_project": "Acme"}),
        ("context_updated", {"context": {"user_id": USER, "version": 3,
                                         "updated_at": "2026-11-25T10:00:00Z",
                                         "current_task": {"id": "t2", "title": "Review"},
                                         "active_opportunity": None, "keywords": ["hmac"],
                                         "recent_chats": [{"id": "chat_9"}],
                                         "recent_queries": ["q"], "current_agent": "coder"}},
         {"current_task": "Review", "keywords": ["hmac"]}),
    ],
)  # fmt: skip
async def test_aiwfe_context_events_update_the_context_with_history(
    uow_factory: UnitOfWorkFactory, type_: str, data: dict[str, Any], expected: dict[str, Any]
) -> None:
    await add_user(uow_factory)
    outcome = await handle_aiwfe_event(
        parse_webhook_event(event(type_=type_, data=data)), uow_factory=uow_factory
    )
    assert outcome.status == "processed" and outcome.actions >= 1
    async with uow_factory() as uow:
        context = await uow.contexts.get(USER)
        history = await uow.contexts.history(USER, limit=10)
        await uow.rollback()
    assert context is not None
    for name, value in expected.items():
        assert getattr(context, name) == value
    assert history and {c.source for c in history} == {"aiwfe"}
    assert await outbox(uow_factory) == []  # nothing echoes back to AIWFE
    if type_ == "context_updated":
        assert context.aiwfe_context is not None
        assert context.aiwfe_context.active_chat == "chat_9"


async def test_repeated_context_is_processed_without_changes(
    uow_factory: UnitOfWorkFactory,
) -> None:
    await add_user(uow_factory)
    data = {"task": {"id": "t1", "title": "Ship it"}}
    await handle_aiwfe_event(
        parse_webhook_event(event("e1", type_="task_created", data=data)), uow_factory=uow_factory
    )
    again = await handle_aiwfe_event(
        parse_webhook_event(event("e2", type_="task_created", data=data)), uow_factory=uow_factory
    )
    assert (again.status, again.actions, again.reason) == ("ignored", 0, "context_unchanged")


# --- Pieces -> AIWFE: asset analysis ----------------------------------------------------

SOURCE_V1 = "def load(path):\n    # TODO: handle missing files\n    return open(path).read()\n"
SOURCE_V2 = (
    SOURCE_V1
    + "\n\ndef save(path, data):\n    # FIXME: not atomic\n    open(path, 'w').write(data)\n"
)


async def test_a_todo_becomes_one_suggestion_in_aiwfe_however_often_analysed(
    uow_factory: UnitOfWorkFactory,
) -> None:
    await add_user(uow_factory)
    analyzer = TreeSitterCodeAnalyzer()
    asset = Asset(id="asset-1", user_id=USER, name="io.py", content=SOURCE_V1, language="python")
    assert await queue_asset_suggestions(asset, analyzer=analyzer, uow_factory=uow_factory) == 1
    assert await queue_asset_suggestions(asset, analyzer=analyzer, uow_factory=uow_factory) == 0
    asset.content = SOURCE_V2  # changed asset: only the new finding is queued
    assert await queue_asset_suggestions(asset, analyzer=analyzer, uow_factory=uow_factory) == 1
    messages = await outbox(uow_factory)
    assert [m.payload["suggestion"]["title"] for m in messages] == [
        "TODO: handle missing files",
        "FIXME: not atomic",
    ]

    async with running_aiwfe_emulator() as emulator, httpx.AsyncClient() as http:
        emulator.state.add_user(USER)
        client = AIWFEHttpClient(http, base_url=emulator.url, api_key=None)
        for message in messages + messages:  # a redelivery of the outbox changes nothing
            await deliver_suggestion(message, client)
        stored = emulator.state.suggestions[USER]
    assert [(s["title"], s["line"], s["asset_id"]) for s in stored] == [
        ("TODO: handle missing files", 2, "asset-1"),
        ("FIXME: not atomic", 7, "asset-1"),
    ]


async def test_a_webhook_type_the_user_muted_is_recorded_and_ignored(
    uow_factory: UnitOfWorkFactory,
) -> None:
    await add_user(uow_factory)
    async with uow_factory() as uow:
        await uow.preferences.save(
            USER, Preferences(notifications=NotificationPreferences(webhook_events=frozenset()))
        )
        await uow.commit()
    outcome = await handle_aiwfe_event(parse_webhook_event(event()), uow_factory=uow_factory)
    assert (outcome.status, outcome.reason) == ("ignored", "muted_by_preferences")
    assert await aiwfe_assets(uow_factory) == []
    with pytest.raises(DuplicateWebhookEvent):  # still recorded once
        await handle_aiwfe_event(parse_webhook_event(event()), uow_factory=uow_factory)
