"""The sync engine on the real store (SQLite and PostgreSQL) with in-memory remote sides."""

from __future__ import annotations

from typing import Any, cast

import pytest

from pieces_integration.adapters.event_log_memory import MemoryEventLog
from pieces_integration.adapters.memory import MemoryLocks
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.domain.hlc import HybridLogicalClock
from pieces_integration.domain.merge import Snapshot
from pieces_integration.domain.model import Consent, Side, User
from pieces_integration.ports.event_log import LoggedEvent
from pieces_integration.ports.storage import UnitOfWork, UnitOfWorkFactory
from pieces_integration.ports.sync_sides import RemoteAsset, SyncSide
from pieces_integration.service_layer.events import EventPublisher, to_jsonable
from pieces_integration.service_layer.sync import SyncEngine
from tests.fakes import FakeSide

pytestmark = pytest.mark.anyio

BASE = "def f():\n    a = 1\n    b = 2\n    c = 3\n    return a\n"


def snap(content: str = BASE, name: str = "f", tags: tuple[str, ...] = ()) -> Snapshot:
    return Snapshot(name=name, content=content, language="python", tags=tags)


class StoreWatchingPublisher(EventPublisher):
    """Records each event with what the store held for its asset when it was published."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        super().__init__(MemoryEventLog())
        self._uow = uow
        self.published: list[tuple[str, dict[str, Any], str | None]] = []

    async def publish(self, user_id: str, event_type: str, payload: dict[str, Any]) -> LoggedEvent:
        asset_id = payload.get("asset_id") or payload.get("asset", {}).get("id")
        stored = None
        if asset_id is not None:
            async with self._uow(readonly=True) as uow:
                asset = await uow.assets.get(asset_id)
            stored = None if asset is None else asset.content
        self.published.append((event_type, to_jsonable(payload), stored))
        return await super().publish(user_id, event_type, payload)

    def of(self, event_type: str) -> list[tuple[dict[str, Any], str | None]]:
        return [(payload, stored) for kind, payload, stored in self.published if kind == event_type]


class _EditFirst:
    def __init__(self, uow: UnitOfWork, edit: Any) -> None:
        self._uow, self._edit = uow, edit

    async def __aenter__(self) -> UnitOfWork:
        await self._edit()
        return await self._uow.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        await self._uow.__aexit__(*exc)


class EditBeforeTheNextWrite:
    """A unit-of-work factory that, once armed, lets a user's edit commit just before the
    engine's next write transaction: an edit made while the run was deciding."""

    def __init__(self, inner: UnitOfWorkFactory) -> None:
        self._inner = inner
        self.edit: Any = None

    def __call__(self, *, readonly: bool = False) -> UnitOfWork:
        uow = self._inner(readonly=readonly)
        if readonly or self.edit is None:
            return uow
        edit, self.edit = self.edit, None
        return cast(UnitOfWork, _EditFirst(uow, edit))


class World:
    def __init__(self, uow: SqlUnitOfWorkFactory) -> None:
        self.uow = uow
        self.published = StoreWatchingPublisher(uow)
        self.pieces = FakeSide(Side.PIECES)
        self.aiwfe = FakeSide(Side.AIWFE, idempotent_create=True)
        self.connected = {Side.PIECES, Side.AIWFE}

        async def sides(user_id: str) -> dict[Side, SyncSide]:
            return {s.side: s for s in (self.pieces, self.aiwfe) if s.side in self.connected}

        self.engine = SyncEngine(
            uow=uow,
            locks=MemoryLocks(),
            events=self.published,
            sides=sides,
            clock=HybridLogicalClock("test"),
            batch_size=3,
        )

    async def sync(self) -> object:
        return await self.engine.sync_user("alice")

    async def local(self) -> list[Snapshot]:
        from pieces_integration.service_layer.sync.state import load_state

        state = await load_state(self.uow, "alice")
        return sorted((Snapshot.of(a) for a in state.assets.values()), key=lambda s: s.state_hash())

    async def converged(self) -> list[Snapshot]:
        local = await self.local()
        assert self.pieces.snapshots() == local
        assert self.aiwfe.snapshots() == local
        return local


@pytest.fixture
async def world(uow_factory: SqlUnitOfWorkFactory) -> World:
    async with uow_factory() as uow:
        await uow.users.add(User(id="alice"))
        await uow.commit()
    return World(uow_factory)


async def test_initial_import_reaches_every_side(world: World) -> None:
    for i in range(8):
        world.pieces.user_creates(snap(f"print({i})\n", name=f"s{i}"))
    run = await world.sync()
    assert run.status == "completed"  # type: ignore[attr-defined]
    assert run.pieces_to_aiwfe == 8  # type: ignore[attr-defined]
    assert len(await world.converged()) == 8
    again = await world.sync()
    assert (again.pieces_to_aiwfe, again.aiwfe_to_pieces) == (0, 0)  # type: ignore[attr-defined]


async def test_edits_and_deletes_flow_both_ways(world: World) -> None:
    pid = world.pieces.user_creates(snap())
    await world.sync()
    world.pieces.user_edits(pid, snap(BASE.replace("a = 1", "a = 5")))
    await world.sync()
    assert "a = 5" in world.aiwfe.snapshots()[0].content
    (aid,) = world.aiwfe.assets
    world.aiwfe.user_edits(aid, snap(BASE.replace("a = 1", "a = 6"), tags=("x",)))
    await world.sync()
    assert world.pieces.snapshots()[0].tags == ("x",)
    world.aiwfe.user_deletes(aid)
    await world.sync()
    await world.sync()  # the delete reaches Pieces through the outbox
    assert await world.converged() == []


async def test_non_overlapping_concurrent_edits_merge(world: World) -> None:
    pid = world.pieces.user_creates(snap())
    await world.sync()
    (aid,) = world.aiwfe.assets
    world.pieces.user_edits(pid, snap(BASE.replace("a = 1", "a = 10")))
    world.aiwfe.user_edits(aid, snap(BASE.replace("c = 3", "c = 30")))
    await world.sync()
    await world.sync()
    (merged,) = await world.converged()
    assert "a = 10" in merged.content and "c = 30" in merged.content


async def test_incompatible_edits_keep_the_loser_as_a_backup(world: World) -> None:
    pid = world.pieces.user_creates(snap())
    await world.sync()
    (aid,) = world.aiwfe.assets
    world.aiwfe.user_edits(aid, snap(BASE.replace("b = 2", "b = 'aiwfe'")))
    world.pieces.user_edits(pid, snap(BASE.replace("b = 2", "b = 'pieces'")))  # later
    await world.sync()
    await world.sync()
    (final,) = await world.converged()
    async with world.uow(readonly=True) as uow:
        backups = await uow.conflicts.backups("alice")
        conflicts = await uow.conflicts.for_user("alice")
    kept = {b.snapshot["content"] for b in backups} | {final.content}
    assert any("'aiwfe'" in c for c in kept) and any("'pieces'" in c for c in kept)
    assert conflicts and conflicts[0].status == "resolved"


async def test_edit_beats_delete(world: World) -> None:
    pid = world.pieces.user_creates(snap())
    await world.sync()
    (aid,) = world.aiwfe.assets
    world.pieces.user_deletes(pid)
    world.aiwfe.user_edits(aid, snap(BASE + "# kept\n"))
    await world.sync()
    await world.sync()
    (survivor,) = await world.converged()
    assert survivor.content.endswith("# kept\n")


async def test_lost_create_response_is_adopted_not_duplicated(world: World) -> None:
    world.aiwfe.user_creates(snap("x = 1\n"))
    world.pieces.crash_after_create = True
    first = await world.sync()
    assert first.errors  # type: ignore[attr-defined]
    world.pieces.crash_after_create = False
    await world.sync()
    await world.converged()
    assert len(world.pieces.assets) == 1


async def test_one_side_down_does_not_stop_the_other(world: World) -> None:
    world.aiwfe.failing.add("list")
    world.pieces.user_creates(snap())
    run = await world.sync()
    assert run.status == "completed"  # type: ignore[attr-defined]
    assert [e.code for e in run.errors] == ["aiwfe_unavailable"]  # type: ignore[attr-defined]
    assert len(await world.local()) == 1
    world.aiwfe.failing.clear()
    await world.sync()
    await world.converged()


async def test_consent_off_means_no_sync(world: World) -> None:
    async with world.uow() as uow:
        user = await uow.users.get("alice")
        assert user is not None
        user.consent = Consent(asset_sync=False)
        await uow.users.update(user)
        await uow.commit()
    world.pieces.user_creates(snap())
    run = await world.sync()
    assert [e.code for e in run.errors] == ["consent"]  # type: ignore[attr-defined]
    assert world.aiwfe.assets == {} and await world.local() == []


async def test_concurrent_requests_join_one_run(world: World) -> None:
    import asyncio

    world.pieces.user_creates(snap())
    first, second = await asyncio.gather(world.sync(), world.sync())
    assert first.id == second.id  # type: ignore[attr-defined]


async def test_a_scoped_run_reads_only_the_announced_ids(world: World) -> None:
    pid = world.pieces.user_creates(snap())
    for i in range(5):
        world.pieces.user_creates(snap(f"other = {i}\n", name=f"o{i}"))
    await world.sync()
    world.pieces.user_edits(pid, snap(BASE.replace("a = 1", "a = 7")))
    world.pieces.calls.clear()
    world.aiwfe.calls.clear()
    run = await world.engine.sync_user("alice", scope={Side.PIECES: {pid}})
    assert run.pieces_to_aiwfe == 1
    assert "list" not in world.pieces.calls and "list" not in world.aiwfe.calls
    assert world.pieces.calls.count("get") == 1
    await world.converged()


async def test_a_scoped_delete_does_not_override_an_edit_elsewhere(world: World) -> None:
    pid = world.pieces.user_creates(snap())
    await world.sync()
    (aid,) = world.aiwfe.assets
    world.pieces.user_deletes(pid)
    world.aiwfe.user_edits(aid, snap(BASE + "# still wanted\n"))
    await world.engine.sync_user("alice", scope={Side.PIECES: {pid}})
    await world.sync()
    (survivor,) = await world.converged()
    assert survivor.content.endswith("# still wanted\n")


async def test_a_delete_is_not_delivered_over_a_newer_edit(world: World) -> None:
    pid = world.pieces.user_creates(snap())
    await world.sync()
    (aid,) = world.aiwfe.assets
    world.pieces.user_deletes(pid)
    await world.engine.sync_user("alice", scope={Side.PIECES: {pid}})  # queues the delete
    world.aiwfe.user_edits(aid, snap(BASE + "# edited meanwhile\n"))
    await world.sync()
    await world.sync()
    contents = [s.content for s in await world.converged()]
    assert contents == [BASE + "# edited meanwhile\n"]


async def test_a_lost_create_record_on_an_id_keeping_side_is_not_duplicated(world: World) -> None:
    world.pieces.user_creates(snap("x = 1\n"))
    world.aiwfe.crash_after_create = True  # AIWFE stored it; we never heard back
    await world.sync()
    world.aiwfe.crash_after_create = False
    (aid,) = world.aiwfe.assets
    world.aiwfe.user_edits(aid, snap("x = 2\n"))  # and the user edits it there at once
    await world.sync()
    await world.sync()
    final = await world.converged()
    assert len(final) == 1 and len(world.aiwfe.assets) == 1
    async with world.uow(readonly=True) as uow:
        backups = {b.snapshot["content"] for b in await uow.conflicts.backups("alice")}
    assert {"x = 1\n", "x = 2\n"} <= backups | {final[0].content}


async def test_an_edit_committed_during_a_run_is_left_for_the_next_scoped_run(
    world: World,
) -> None:
    """A run settles only the outbox messages it saw before it read its state: an API edit
    committed while it pushes keeps its message, so the scoped run that edit pokes pushes
    it (instead of the change waiting for the next full reconciliation)."""
    from pieces_integration.adapters.event_log_memory import MemoryEventLog
    from pieces_integration.domain.assets import AssetDraft, AssetLimits
    from pieces_integration.domain.auth import Principal
    from pieces_integration.domain.model import Role
    from pieces_integration.service_layer.assets import AssetService

    edited_here = world.pieces.user_creates(snap())
    edited_there = world.pieces.user_creates(snap("other = 1\n", name="o"))
    await world.sync()
    async with world.uow(readonly=True) as uow:
        found = await uow.assets.find_by_remote_id("alice", Side.PIECES, edited_here)
    assert found is not None
    service = AssetService(world.uow, EventPublisher(MemoryEventLog()), AssetLimits())
    alice = Principal("alice", Role.USER, "jwt")
    edited = BASE.replace("a = 1", "a = 9")
    world.pieces.user_edits(edited_there, snap("other = 2\n", name="o"))
    push_to_aiwfe = world.aiwfe.update_asset

    async def push_while_the_user_edits(remote_id: str, snapshot: Snapshot) -> RemoteAsset:
        await service.update(alice, found.id, AssetDraft(content=edited), full=False)
        return await push_to_aiwfe(remote_id, snapshot)

    world.aiwfe.update_asset = push_while_the_user_edits  # type: ignore[method-assign]
    await world.sync()
    world.aiwfe.update_asset = push_to_aiwfe  # type: ignore[method-assign]
    async with world.uow(readonly=True) as uow:
        waiting = [m.operation for m in await uow.outbox.pending_for("alice", target="pieces")]
    assert waiting == ["asset.update"]
    # What the API's poke starts: a scoped run with nothing announced.
    await world.engine.sync_user("alice", scope={})
    assert edited in [s.content for s in world.pieces.snapshots()]
    await world.converged()


async def test_a_full_run_gives_way_while_listing_and_records_nothing(world: World) -> None:
    import asyncio

    world.pieces.user_creates(snap())
    gate = asyncio.Event()
    listing = world.pieces.list_assets

    async def slow_listing() -> list[RemoteAsset]:
        await gate.wait()
        return await listing()

    world.pieces.list_assets = slow_listing  # type: ignore[method-assign]
    interrupt = asyncio.Event()
    running = asyncio.ensure_future(
        world.engine.sync_user("alice", trigger="schedule", interrupt=interrupt)
    )
    await asyncio.sleep(0.05)
    interrupt.set()
    gave_way = await asyncio.wait_for(running, 5)
    assert gave_way.status == "interrupted"
    async with world.uow(readonly=True) as uow:
        assert await uow.sync_runs.latest("alice") is None  # nothing recorded
    assert world.aiwfe.assets == {} and await world.local() == []

    # Someone awaiting the same run (an API request joined it): it does not give way.
    interrupt = asyncio.Event()
    running = asyncio.ensure_future(
        world.engine.sync_user("alice", trigger="schedule", interrupt=interrupt)
    )
    await asyncio.sleep(0.05)
    joiner = asyncio.ensure_future(world.engine.sync_user("alice"))
    await asyncio.sleep(0.05)
    interrupt.set()
    gate.set()
    finished = await asyncio.wait_for(running, 5)
    assert finished.status == "completed"
    assert (await asyncio.wait_for(joiner, 5)).id == finished.id
    assert len(await world.converged()) == 1


async def test_a_joiner_that_wants_to_wait_is_not_turned_away_by_a_skipping_run(
    world: World,
) -> None:
    """The scheduler's run skips a user another replica holds (LockUnavailable); a request
    that joined it here must wait for that replica instead of failing."""
    import asyncio
    from contextlib import asynccontextmanager

    from pieces_integration.ports.infrastructure import LockUnavailable

    world.pieces.user_creates(snap())
    gate = asyncio.Event()
    listing = world.pieces.list_assets

    async def slow_listing() -> list[RemoteAsset]:
        await gate.wait()
        return await listing()

    locks = world.engine.locks

    class NetworkLocks:  # like Redis: asking for the lock takes a round trip
        @asynccontextmanager
        async def hold(self, name: str, *, ttl: float = 60.0, wait: float = 0.0) -> Any:
            await asyncio.sleep(0.05)
            async with locks.hold(name, ttl=ttl, wait=wait) as token:
                yield token

    world.engine.locks = NetworkLocks()
    other_replica = locks.hold("sync:alice", ttl=30)
    await other_replica.__aenter__()
    skipping = asyncio.ensure_future(world.engine.sync_user("alice", join=False))
    await asyncio.sleep(0.01)  # the scheduler's run is registered here...
    joiner = asyncio.ensure_future(world.engine.sync_user("alice", join=True))
    with pytest.raises(LockUnavailable):
        await skipping  # ...and skips: the lock is held elsewhere
    await asyncio.sleep(0.05)
    assert not joiner.done()  # waiting for the other replica, not failed
    world.pieces.list_assets = slow_listing  # type: ignore[method-assign]
    await other_replica.__aexit__(None, None, None)
    gate.set()
    run = await asyncio.wait_for(joiner, 5)
    assert run.status == "completed"


# --- what a run announces, and when (issue #19 defects 2, 4, 5) ---------------------------


async def _asset_id(world: World, remote_id: str) -> str:
    async with world.uow(readonly=True) as uow:
        found = await uow.assets.find_by_remote_id("alice", Side.PIECES, remote_id)
    assert found is not None
    return found.id


def _alice_edits(world: World, asset_id: str, content: str) -> Any:
    """An edit through the API (its own publisher: its events are not the engine's)."""
    from pieces_integration.domain.assets import AssetDraft, AssetLimits
    from pieces_integration.domain.auth import Principal
    from pieces_integration.domain.model import Role
    from pieces_integration.service_layer.assets import AssetService

    service = AssetService(world.uow, EventPublisher(MemoryEventLog()), AssetLimits())

    async def edit() -> None:
        alice = Principal("alice", Role.USER, "jwt")
        await service.update(alice, asset_id, AssetDraft(content=content), full=False)

    return edit


def _edit_while_pulling_pieces(world: World, edit: Any) -> EditBeforeTheNextWrite:
    """Let `edit` commit after the run read its state, before it writes what it pulled."""
    guarded = EditBeforeTheNextWrite(world.uow)
    world.engine.uow = guarded

    def arm(user_id: str, phase: str, done: int, total: int) -> None:
        if phase == "pull pieces":
            guarded.edit = edit

    world.engine.on_progress = arm
    return guarded


async def test_pulled_changes_are_announced_once_they_are_committed(world: World) -> None:
    pid = world.pieces.user_creates(snap())
    await world.sync()
    ((created, stored),) = world.published.of("asset_created")
    assert created["source"] == "pieces" and stored == created["asset"]["content"] == BASE
    edited = BASE.replace("a = 1", "a = 10")
    world.pieces.user_edits(pid, snap(edited))
    await world.sync()
    ((updated, stored),) = world.published.of("asset_updated")
    assert stored == updated["asset"]["content"] == edited
    world.pieces.user_deletes(pid)
    await world.sync()
    ((deleted, stored),) = world.published.of("asset_deleted")
    assert deleted["asset_id"] == created["asset"]["id"] and stored is None


async def test_a_pulled_change_skipped_for_a_concurrent_edit_is_not_announced(
    world: World,
) -> None:
    pid = world.pieces.user_creates(snap())
    await world.sync()
    asset_id = await _asset_id(world, pid)
    world.pieces.user_edits(pid, snap(BASE.replace("a = 1", "a = 10")))
    mine = BASE.replace("c = 3", "c = 30")
    guarded = _edit_while_pulling_pieces(world, _alice_edits(world, asset_id, mine))
    world.published.published.clear()
    await world.sync()
    assert guarded.edit is None  # the edit came in while the run was deciding
    assert world.published.of("asset_updated") == []  # its write was skipped: no news
    async with world.uow(readonly=True) as uow:
        kept = await uow.assets.get(asset_id)
    assert kept is not None and kept.content == mine
    world.engine.on_progress = None
    await world.sync()  # the next run merges both edits
    (merged,) = await world.converged()
    assert "a = 10" in merged.content and "c = 30" in merged.content


async def test_a_merge_skipped_for_a_concurrent_edit_records_and_announces_nothing(
    world: World,
) -> None:
    pid = world.pieces.user_creates(snap())
    await world.sync()
    asset_id = await _asset_id(world, pid)
    mine = BASE.replace("c = 3", "c = 30")
    await _alice_edits(world, asset_id, mine)()
    world.pieces.user_edits(pid, snap(BASE.replace("a = 1", "a = 10")))
    later = mine + "# later\n"
    _edit_while_pulling_pieces(world, _alice_edits(world, asset_id, later))
    world.published.published.clear()
    run = await world.sync()
    assert world.published.of("conflict_detected") == []
    assert run.conflicts_resolved == 0  # type: ignore[attr-defined]
    async with world.uow(readonly=True) as uow:
        assert await uow.conflicts.for_user("alice") == []
    world.engine.on_progress = None
    run = await world.sync()
    (merged,) = await world.converged()
    assert "a = 10" in merged.content and merged.content.endswith("c = 30\n    return a\n# later\n")
    ((conflict, _),) = world.published.of("conflict_detected")
    async with world.uow(readonly=True) as uow:
        (stored,) = await uow.conflicts.for_user("alice")
    assert conflict["conflict_id"] == stored.id and run.conflicts_resolved == 1  # type: ignore[attr-defined]


def _operations(metrics: Any) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["direction"], sample.labels["status"]): sample.value
        for family in metrics.sync_operations.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }


async def test_sync_operations_are_counted_by_the_directions_that_ran(world: World) -> None:
    from pieces_integration.observability.metrics import Metrics

    metrics = Metrics()
    world.engine.metrics = metrics
    world.pieces.user_creates(snap())
    await world.sync()
    assert _operations(metrics) == {
        ("aiwfe_to_pieces", "success"): 1,
        ("pieces_to_aiwfe", "success"): 1,
    }
    world.aiwfe.failing.add("list")  # AIWFE down: nothing reaches it
    await world.sync()
    world.aiwfe.failing.clear()
    world.connected = {Side.PIECES}  # only Pieces connected: only the way toward it
    await world.sync()
    world.connected = set()  # nothing connected: no direction ran
    await world.sync()
    assert _operations(metrics) == {
        ("aiwfe_to_pieces", "success"): 3,
        ("pieces_to_aiwfe", "success"): 1,
        ("pieces_to_aiwfe", "failure"): 1,
    }
    durations = metrics.registry.get_sample_value
    assert durations("pieces_sync_duration_seconds_count", {"direction": "aiwfe_to_pieces"}) == 3
    assert durations("pieces_sync_duration_seconds_count", {"direction": "pieces_to_aiwfe"}) == 2


async def test_both_paths_announce_the_same_sync_completed_payload(world: World) -> None:
    """The engine's own announcement and the WebSocket path's (a trigger that returns a
    result it did not announce) build `sync_completed` alike, conflicts included."""
    from pieces_integration.service_layer.realtime_session import Session
    from pieces_integration.service_layer.realtime_sync_request import run_sync_request
    from pieces_integration.service_layer.sync.result import sync_result

    pid = world.pieces.user_creates(snap())
    await world.sync()
    (aid,) = world.aiwfe.assets
    world.aiwfe.user_edits(aid, snap(BASE.replace("b = 2", "b = 'aiwfe'")))
    world.pieces.user_edits(pid, snap(BASE.replace("b = 2", "b = 'pieces'")))
    run = await world.sync()
    assert run.conflicts_resolved == 1 and run.pieces_to_aiwfe == 1  # type: ignore[attr-defined]
    from_engine, _ = world.published.of("sync_completed")[-1]

    class ResultOnly:
        async def request_sync(self, user_id: str, *, force: bool) -> dict[str, Any]:
            return sync_result(run)  # type: ignore[arg-type]

    published: list[tuple[str, Any]] = []

    async def publish(user_id: str, event_type: str, payload: dict[str, Any]) -> None:
        published.append((event_type, to_jsonable(payload)))

    await run_sync_request(cast(Session, None), ResultOnly(), publish, "alice", force=False)
    assert published == [("sync_completed", from_engine)]
    assert from_engine["changes_count"] == run.pieces_to_aiwfe + run.aiwfe_to_pieces  # type: ignore[attr-defined]
    assert from_engine["changes"]["conflicts_resolved"] == 1


async def test_a_delete_seen_while_the_other_side_is_down_is_not_undone(world: World) -> None:
    # Fault simulation seed 3 (#20): the delete was deferred by dropping the AIWFE link,
    # so the next run re-created the deleted asset there.
    world.aiwfe.user_creates(snap("x = 1\n"))
    await world.sync()
    await world.sync()
    (aid,) = world.aiwfe.assets
    assert len(world.pieces.assets) == 1
    world.aiwfe.user_deletes(aid)
    world.pieces.failing = {"list"}
    await world.sync()
    world.pieces.failing = set()
    await world.sync()
    await world.sync()  # the delete reaches Pieces through the outbox
    assert await world.converged() == []
