"""The in-process event log: per-user ids, bounded history, resets, the tail."""

from __future__ import annotations

import itertools

import pytest

from pieces_integration.adapters.event_log_memory import MemoryEventLog
from pieces_integration.ports.event_log import LoggedEvent, NewEvent, TailLost

pytestmark = pytest.mark.anyio


def event(user: str, n: int = 0) -> NewEvent:
    return NewEvent(user, "asset_created", "2025-01-01T00:00:00+00:00", {"n": n})


async def test_ids_are_consecutive_per_user_and_independent_between_users() -> None:
    log = MemoryEventLog()
    alice = [(await log.append(event("alice", i))).id for i in range(5)]
    bob = [(await log.append(event("bob", i))).id for i in range(3)]
    assert alice == list(range(alice[0], alice[0] + 5))
    assert bob == list(range(bob[0], bob[0] + 3))
    assert await log.head("alice") == alice[-1]


async def test_the_wire_form_carries_id_type_and_payload() -> None:
    logged = await MemoryEventLog().append(event("alice", 7))
    assert LoggedEvent.from_wire(logged.wire) == logged
    assert logged.wire.startswith('{"type":"asset_created","id":')


async def test_read_after_returns_exactly_the_missed_events_in_order() -> None:
    log = MemoryEventLog(history=50)
    first = await log.append(event("alice", 0))
    for i in range(1, 30):
        await log.append(event("alice", i))
    replay = await log.read_after("alice", first.id + 9)
    assert not replay.reset
    assert [e.payload["n"] for e in replay.events] == list(range(10, 30))
    assert replay.head == first.id + 29
    assert (await log.read_after("alice", replay.head)).events == []


async def test_a_gap_older_than_the_history_is_a_reset() -> None:
    log = MemoryEventLog(history=10)
    first = await log.append(event("alice"))
    for _ in range(20):
        await log.append(event("alice"))
    assert (await log.read_after("alice", first.id)).reset
    # The oldest retained event is first.id + 11; after first.id + 10 is still covered.
    covered = await log.read_after("alice", first.id + 10)
    assert not covered.reset and len(covered.events) == 10


async def test_an_id_from_another_epoch_is_a_reset_not_a_wrong_slice() -> None:
    clock = itertools.count(1_000, 4_000)
    log = MemoryEventLog(max_users=1, clock=lambda: next(clock))
    old = await log.append(event("alice"))
    await log.append(event("bob"))  # evicts alice's ring
    again = await log.append(event("alice"))
    assert again.id > old.id
    assert (await log.read_after("alice", old.id)).reset
    assert (await log.read_after("alice", again.id + 100)).reset  # from the future


async def test_the_tail_sees_every_user_and_reports_overflow() -> None:
    log = MemoryEventLog(tail_size=3)
    async with log.tail() as tail:
        await log.append(event("alice", 1))
        await log.append(event("bob", 2))
        assert [(await tail.get(0.1)).payload["n"], (await tail.get(0.1)).payload["n"]] == [1, 2]
        assert await tail.get(0.01) is None
        for i in range(5):
            await log.append(event("alice", i))
        with pytest.raises(TailLost):
            await tail.get(0.1)


async def test_purge_forgets_the_user_and_a_new_sequence_starts_above_the_old_ids() -> None:
    log = MemoryEventLog(clock=itertools.count(1000).__next__)
    old = [await log.append(event("alice", i)) for i in range(5)]
    kept = await log.append(event("bob"))
    await log.purge("alice")
    await log.purge("alice")  # idempotent
    await log.purge("nobody")
    assert "alice" not in log._users  # the history (payloads) is gone
    replay = await log.read_after("alice", old[0].id)
    assert replay.reset and replay.events == [] and replay.head > old[-1].id
    assert (await log.append(event("alice"))).id > old[-1].id
    assert await log.head("bob") == kept.id


async def test_the_user_evicted_is_the_least_recently_used_not_the_oldest() -> None:
    log = MemoryEventLog(max_users=2)
    alice = await log.append(event("alice"))
    bob = await log.append(event("bob"))
    await log.head("alice")  # alice is active again; bob is now the least recently used
    await log.append(event("carol"))
    kept = await log.read_after("alice", alice.id - 1)
    assert not kept.reset and [e.id for e in kept.events] == [alice.id]
    assert (await log.read_after("bob", bob.id - 1)).reset  # bob's history was dropped
