"""The Redis event log: ids strictly increasing per user across writers, bounded history,
replay and resets, and one ordered fan-out channel."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pieces_integration.adapters.event_log_redis import RedisEventLog
from pieces_integration.ports.event_log import NewEvent
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


def event(user: str, n: int = 0) -> NewEvent:
    return NewEvent(user, "asset_updated", "2025-01-01T00:00:00+00:00", {"n": n})


async def test_two_writers_get_strictly_increasing_consecutive_ids(
    redis_client: Any, redis_prefix: str
) -> None:
    import redis.asyncio as redis

    other = redis.Redis.from_url(REDIS_URL)
    try:
        here = RedisEventLog(redis_client, prefix=redis_prefix)
        there = RedisEventLog(other, prefix=redis_prefix)
        results = await asyncio.gather(
            *(log.append(event("alice", i)) for i in range(50) for log in (here, there))
        )
        ids = sorted(e.id for e in results)
        assert ids == list(range(ids[0], ids[0] + 100))
        replay = await here.read_after("alice", ids[0] - 1)
        assert [e.id for e in replay.events] == ids and not replay.reset
    finally:
        await other.aclose()


async def test_a_new_sequence_starts_above_any_clock_based_id(
    redis_client: Any, redis_prefix: str
) -> None:
    log = RedisEventLog(redis_client, prefix=redis_prefix)
    head = await log.head("bob")
    assert head > 1_600_000_000 * 1_000_000  # microseconds since the epoch
    assert (await log.append(event("bob"))).id == head + 1


async def test_history_is_bounded_and_an_older_gap_is_a_reset(
    redis_client: Any, redis_prefix: str
) -> None:
    log = RedisEventLog(redis_client, prefix=redis_prefix, history=10)
    first = await log.append(event("alice"))
    for i in range(300):
        await log.append(event("alice", i))
    assert await redis_client.xlen(f"{redis_prefix}evlog:stream:alice") < 150  # MAXLEN ~
    assert (await log.read_after("alice", first.id)).reset
    recent = await log.read_after("alice", first.id + 295)
    assert not recent.reset
    assert [e.payload["n"] for e in recent.events] == list(range(295, 300))
    assert (await log.read_after("alice", first.id + 1000)).reset  # an id from the future


async def test_the_tail_carries_every_append_in_order(redis_client: Any, redis_prefix: str) -> None:
    log = RedisEventLog(redis_client, prefix=redis_prefix)
    async with log.tail() as tail:
        sent = [await log.append(event(user, i)) for i in range(5) for user in ("a", "b")]
        got = [await tail.get(2.0) for _ in sent]
    assert got == sent
    heads = await log.heads(["a", "b", "nobody"])
    assert heads["a"] == sent[-2].id and heads["b"] == sent[-1].id and heads["nobody"] > 0


async def test_purge_removes_the_users_keys_and_restarts_above_the_old_ids(
    redis_client: Any, redis_prefix: str
) -> None:
    log = RedisEventLog(redis_client, prefix=redis_prefix)
    old = [await log.append(event("alice", i)) for i in range(5)]
    kept = await log.append(event("bob"))
    await log.purge("alice")
    await log.purge("alice")  # idempotent
    keys = {key.decode() async for key in redis_client.scan_iter(match=f"{redis_prefix}*")}
    assert not [key for key in keys if "alice" in key]
    assert {f"{redis_prefix}evlog:seq:bob", f"{redis_prefix}evlog:stream:bob"} <= keys
    assert (await log.read_after("alice", old[0].id)).reset
    assert (await log.append(event("alice"))).id > old[-1].id
    assert await log.head("bob") == kept.id
