"""Repository behaviour, run once on SQLite and once on PostgreSQL (see conftest)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.domain.errors import Conflict, InvalidInput
from pieces_integration.domain.model import (
    ApiKey,
    Asset,
    AssetLink,
    AuditEntry,
    Connection,
    ConnectionKind,
    Consent,
    ContextChange,
    OutboxMessage,
    PiecesContextState,
    Role,
    Side,
    SyncError,
    SyncRun,
    User,
    UserContext,
    new_id,
    utcnow,
)
from pieces_integration.domain.queries import AssetQuery

pytestmark = pytest.mark.anyio


async def _user(uow_factory: SqlUnitOfWorkFactory, user_id: str = "alice") -> User:
    user = User(id=user_id, role=Role.USER, consent=Consent(context_sharing="limited"))
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.commit()
    return user


def _asset(user_id: str, name: str, content: str, **kwargs: object) -> Asset:
    return Asset(id=new_id(), user_id=user_id, name=name, content=content, **kwargs)  # type: ignore[arg-type]


async def test_rolls_back_uncommitted_work_by_default(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.users.add(User(id="ghost"))
    async with uow_factory(readonly=True) as uow:
        assert await uow.users.get("ghost") is None


async def test_user_round_trip_and_consent(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _user(uow_factory)
    async with uow_factory() as uow:
        user = await uow.users.get("alice")
        assert user is not None
        assert user.consent.context_sharing == "limited"
        user.role = Role.ADMIN
        user.consent.asset_sync = False
        await uow.users.update(user)
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        again = await uow.users.get("alice")
        assert again is not None and again.role is Role.ADMIN
        assert again.consent.asset_sync is False
        assert again.created_at.tzinfo is not None


async def test_a_users_tenant_is_stored_and_read_with_the_sign_in_standing(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    """Issue 20: users.tenant (migration 0011) round-trips, and `standing` (the API-key
    sign-in's one read) returns it with the disabled flag."""
    user_id = "tenant-" + new_id()[:8]
    async with uow_factory() as uow:
        assert await uow.users.standing(user_id) is None
        await uow.users.add(User(id=user_id, tenant="acme"))
        await uow.commit()
    async with uow_factory() as uow:
        standing = await uow.users.standing(user_id)
        assert standing is not None and (standing.tenant, standing.disabled_at) == ("acme", None)
        user = await uow.users.get(user_id)
        assert user is not None and user.tenant == "acme"
        user.tenant, user.disabled_at = None, utcnow()
        await uow.users.update(user)
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        standing = await uow.users.standing(user_id)
        assert standing is not None and standing.tenant is None
        assert standing.disabled_at is not None


async def test_asset_content_is_stored_byte_exact(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _user(uow_factory)
    content = "def f():\r\n\treturn '√ ünïcødé 🚀 \\x00-free'\n\n  \u200b trailing  "
    asset = _asset("alice", "unicode", content, tags=["py", "ünï"], metadata={"k": [1, "two"]})
    async with uow_factory() as uow:
        await uow.assets.add(asset)
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        loaded = await uow.assets.get(asset.id)
    assert loaded is not None
    assert loaded.content == content
    assert loaded.content_hash == asset.content_hash
    assert loaded.tags == ["py", "ünï"]
    assert loaded.metadata == {"k": [1, "two"]}


async def test_update_with_stale_version_is_refused(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _user(uow_factory)
    asset = _asset("alice", "a", "print(1)")
    async with uow_factory() as uow:
        await uow.assets.add(asset)
        await uow.commit()
    asset.content, asset.version = "print(2)", 2
    async with uow_factory() as uow:
        await uow.assets.update(asset, expected_version=1)
        await uow.commit()
    asset.content, asset.version = "print(3)", 3
    async with uow_factory() as uow:
        with pytest.raises(Conflict):
            await uow.assets.update(asset, expected_version=1)
    async with uow_factory(readonly=True) as uow:
        loaded = await uow.assets.get(asset.id)
        assert loaded is not None and loaded.content == "print(2)"


async def test_filters_by_language_tags_and_search(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _user(uow_factory)
    await _user(uow_factory, "bob")
    rows = [
        _asset("alice", "Parse JSON", "json.loads(x)", language="python", tags=["json", "io"]),
        _asset("alice", "fetch", "await fetch(url)", language="javascript", tags=["http"]),
        _asset("alice", "100%_sure", "x = 1", language="Python", tags=["json"]),
        _asset("bob", "Parse JSON", "json.loads(x)", language="python", tags=["json"]),
    ]
    async with uow_factory() as uow:
        for row in rows:
            await uow.assets.add(row)
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        python = await uow.assets.page("alice", AssetQuery(language="python"))
        tagged = await uow.assets.page("alice", AssetQuery(tags=("json", "io")))
        found = await uow.assets.page("alice", AssetQuery(search="LOADS"))
        literal = await uow.assets.page("alice", AssetQuery(search="%_"))
    assert {a.name for a in python.items} == {"Parse JSON", "100%_sure"}
    assert [a.name for a in tagged.items] == ["Parse JSON"]
    assert [a.user_id for a in found.items] == ["alice"]
    assert [a.name for a in literal.items] == ["100%_sure"]  # LIKE wildcards are escaped


async def test_cursor_and_offset_pages_cover_everything_once(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await _user(uow_factory)
    base = utcnow()
    async with uow_factory() as uow:
        for i in range(23):
            # Several share a timestamp, so the id tie-breaker matters.
            when = base - timedelta(seconds=i // 3)
            await uow.assets.add(
                _asset("alice", f"n{i}", f"c{i}", created_at=when, updated_at=when)
            )
        await uow.commit()
    seen: list[str] = []
    cursor = None
    async with uow_factory(readonly=True) as uow:
        while True:
            page = await uow.assets.page("alice", AssetQuery(limit=5, cursor=cursor))
            assert page.total == 23
            seen += [a.id for a in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        by_offset = []
        for offset in range(0, 23, 5):
            page = await uow.assets.page("alice", AssetQuery(limit=5, offset=offset))
            by_offset += [a.id for a in page.items]
    assert len(seen) == 23 and len(set(seen)) == 23
    assert by_offset == seen


async def test_garbage_cursor_is_invalid_input(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _user(uow_factory)
    async with uow_factory(readonly=True) as uow:
        with pytest.raises(InvalidInput):
            await uow.assets.page("alice", AssetQuery(cursor="not-a-cursor"))


async def test_links_find_assets_by_remote_id(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _user(uow_factory)
    asset = _asset("alice", "n", "c")
    async with uow_factory() as uow:
        await uow.assets.add(asset)
        await uow.assets.save_link("alice", AssetLink(asset.id, Side.PIECES, "p-1", "h1"))
        await uow.assets.save_link("alice", AssetLink(asset.id, Side.PIECES, "p-1", "h2"))
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        found = await uow.assets.find_by_remote_id("alice", Side.PIECES, "p-1")
        link = await uow.assets.get_link(asset.id, Side.PIECES)
        missing = await uow.assets.find_by_remote_id("alice", Side.AIWFE, "p-1")
    assert found is not None and found.id == asset.id
    assert link is not None and link.base_hash == "h2"
    assert missing is None


async def test_bulk_import_equals_one_by_one(uow_factory: SqlUnitOfWorkFactory) -> None:
    """`add_many` + `add_links` (a sync import's batch) store exactly what `add` +
    `save_link` would, tags in order and de-duplicated, and queue each for indexing."""
    import sqlalchemy as sa

    from pieces_integration.adapters.sql.tables import index_queue

    await _user(uow_factory)
    one = [_asset("alice", f"one {i}", f"x = {i}\n", tags=["b", "a", "b"]) for i in range(3)]
    many = [_asset("alice", f"many {i}", f"y = {i}\n", tags=["b", "a", "b"]) for i in range(3)]
    many.append(_asset("alice", "untagged", "z = 0\n"))
    async with uow_factory() as uow:
        for asset in one:
            await uow.assets.add(asset)
            await uow.assets.save_link("alice", AssetLink(asset.id, Side.PIECES, f"p-{asset.id}"))
        await uow.assets.add_many(many)
        await uow.assets.add_links(
            "alice", [AssetLink(asset.id, Side.PIECES, f"p-{asset.id}", "h") for asset in many]
        )
        assert set(uow.index_changes.upserted) == {a.id for a in one + many}
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        stored = await uow.assets.get_many("alice", [a.id for a in one + many])
        links = await uow.assets.links_for([a.id for a in many])
        found = await uow.assets.find_by_remote_id("alice", Side.PIECES, f"p-{many[0].id}")
        queued = await uow.connection.execute(sa.select(index_queue.c.asset_id))
        queued_ids = {row.asset_id for row in queued}
    by_id = {a.id: a for a in stored}
    for asset in one + many:
        assert by_id[asset.id].content == asset.content
        assert by_id[asset.id].tags == ([] if asset.name == "untagged" else ["b", "a"])
    assert all(links[a.id][0].base_hash == "h" for a in many)
    assert found is not None and found.id == many[0].id
    assert queued_ids == {a.id for a in one + many}


async def test_deleting_a_user_cascades(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _user(uow_factory)
    asset = _asset("alice", "n", "c", tags=["t"])
    async with uow_factory() as uow:
        await uow.assets.add(asset)
        await uow.contexts.save(UserContext(user_id="alice", current_task="x"))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.users.delete("alice")
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        assert await uow.assets.get(asset.id) is None
        assert await uow.contexts.get("alice") is None


async def test_context_and_history(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _user(uow_factory)
    now = utcnow()
    context = UserContext(
        user_id="alice",
        current_task="fix login",
        keywords=["auth"],
        pieces_context=PiecesContextState(connected=True, last_sync=now),
    )
    async with uow_factory() as uow:
        await uow.contexts.save(context)
        for i in range(5):
            await uow.contexts.add_change(
                ContextChange(
                    user_id="alice",
                    field="current_task",
                    old_value=f"t{i}",
                    new_value=f"t{i + 1}",
                    source="user",
                    changed_at=now - timedelta(minutes=10 - i),
                )
            )
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        loaded = await uow.contexts.get("alice")
        recent = await uow.contexts.history("alice", limit=10, since=now - timedelta(minutes=7))
        limited = await uow.contexts.history("alice", limit=2)
    assert loaded is not None and loaded.keywords == ["auth"]
    assert loaded.pieces_context is not None and loaded.pieces_context.last_sync == now
    assert [c.new_value for c in recent] == ["t5", "t4"]
    assert [c.new_value for c in limited] == ["t5", "t4"]


async def test_connection_keeps_only_ciphertext(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _user(uow_factory)
    connection = Connection(
        id=new_id(), user_id="alice", kind=ConnectionKind.PIECES, url="http://127.0.0.1:39300"
    )
    connection.secret = "plaintext-never-stored"
    async with uow_factory() as uow:
        await uow.connections.save(connection, b"\x01cipher")
        connection.state = "connected"
        await uow.connections.save(connection, b"\x01cipher2")
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        loaded = await uow.connections.get("alice", ConnectionKind.PIECES)
        secret = await uow.connections.get_secret_ciphertext("alice", ConnectionKind.PIECES)
        everything = await uow.connections.list_all_secrets()
    assert loaded is not None and loaded.state == "connected" and loaded.secret is None
    assert secret == b"\x01cipher2"
    assert everything == [("alice", ConnectionKind.PIECES, b"\x01cipher2")]


async def test_api_keys_by_prefix_and_revocation(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _user(uow_factory)
    key = ApiKey(
        id=new_id(), user_id="alice", name="ci", prefix="pk_abc", key_hash="h", role=Role.SERVICE
    )
    async with uow_factory() as uow:
        await uow.api_keys.add(key)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.api_keys.revoke(key.id, utcnow())
        assert not await uow.api_keys.revoke(key.id, utcnow())
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        loaded = await uow.api_keys.get_by_prefix("pk_abc")
        assert loaded is not None and not loaded.active
        assert [k.id for k in await uow.api_keys.list_keys("alice")] == [key.id]


async def test_audit_filters_by_user_and_time(uow_factory: SqlUnitOfWorkFactory) -> None:
    now = utcnow()
    async with uow_factory() as uow:
        await uow.audit.add(AuditEntry("login_failed", None, "alice", at=now - timedelta(hours=2)))
        await uow.audit.add(AuditEntry("export", "alice", "alice", at=now - timedelta(minutes=5)))
        await uow.audit.add(AuditEntry("export", "bob", "bob", at=now))
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        alice = await uow.audit.entries(user_id="alice")
        recent = await uow.audit.entries(since=now - timedelta(hours=1))
    assert [e.action for e in alice] == ["export", "login_failed"]
    assert {e.user_id for e in recent} == {"alice", "bob"}


async def test_outbox_is_idempotent_and_leases_messages(uow_factory: SqlUnitOfWorkFactory) -> None:
    def message(key: str) -> OutboxMessage:
        return OutboxMessage("alice", "pieces", "create_asset", {"k": key}, idempotency_key=key)

    async with uow_factory() as uow:
        assert await uow.outbox.add(message("a"))
        assert not await uow.outbox.add(message("a"))
        assert await uow.outbox.add(message("b"))
        await uow.commit()
    now = utcnow()
    async with uow_factory() as uow:
        first = await uow.outbox.claim_due("w1", now=now, lease_seconds=30, limit=10)
        await uow.commit()
    async with uow_factory() as uow:
        second = await uow.outbox.claim_due("w2", now=now, lease_seconds=30, limit=10)
        await uow.commit()
    assert [m.idempotency_key for m in first] == ["a", "b"]
    assert second == []  # leased to w1
    assert first[0].id is not None and first[1].id is not None
    async with uow_factory() as uow:
        assert not await uow.outbox.mark_delivered(first[0].id, "w2", now)  # not w2's lease
        assert await uow.outbox.mark_delivered(first[0].id, "w1", now)
        await uow.outbox.mark_failed(first[1].id, "w1", error="boom", retry_at=now)
        await uow.commit()
    later = now + timedelta(seconds=1)
    async with uow_factory() as uow:
        again = await uow.outbox.claim_due("w2", now=later, lease_seconds=30, limit=10)
        assert await uow.outbox.pending_count("alice") == 1
        await uow.commit()
    assert [(m.idempotency_key, m.attempts, m.last_error) for m in again] == [("b", 1, "boom")]


async def test_sync_run_with_errors(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _user(uow_factory)
    run = SyncRun(id=new_id(), user_id="alice", status="in_progress")
    async with uow_factory() as uow:
        await uow.sync_runs.add(run)
        await uow.commit()
    run.status, run.pieces_to_aiwfe, run.completed_at = "completed", 3, utcnow()
    run.errors.append(
        SyncError("remote_500", "Pieces answered 500", item_id="x", severity="warning")
    )
    async with uow_factory() as uow:
        await uow.sync_runs.update(run)
        await uow.commit()
    async with uow_factory(readonly=True) as uow:
        loaded = await uow.sync_runs.latest("alice", status="completed")
    assert loaded is not None and loaded.pieces_to_aiwfe == 3
    assert [(e.code, e.severity) for e in loaded.errors] == [("remote_500", "warning")]


async def test_webhook_inbox_records_each_event_once(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        first = await uow.webhooks.record_once(
            "evt-1", source="aiwfe", type="t", user_id=None, at=utcnow()
        )
        second = await uow.webhooks.record_once(
            "evt-1", source="aiwfe", type="t", user_id=None, at=utcnow()
        )
        await uow.commit()
    assert (first, second) == (True, False)
