"""The revocation feed (issue 20): a revocation on one replica ends the matching sessions
on every other within 1 s (Redis pub/sub), and a replica that missed a message (its
subscription dropped) ends them at its recheck."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

import pytest
import redis.asyncio as redis

from pieces_integration.adapters.memory import MemoryEventBus
from pieces_integration.adapters.redis_infra import RedisEventBus
from pieces_integration.domain.auth import Principal
from pieces_integration.domain.model import Role
from pieces_integration.service_layer.revocation import (
    Revocations,
    api_key_subject,
    credential_subject,
    user_subject,
)
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


async def test_a_revocation_ends_matching_watches_here_and_leaves_others() -> None:
    revocations = Revocations(MemoryEventBus())
    ended: list[str] = []
    alice = revocations.watch_principal(
        Principal("alice", Role.USER, "api_key", key_id="k1"), ended.append
    )
    bob = revocations.watch_principal(Principal("bob", Role.USER, "jwt"))
    bridge = revocations.watch([credential_subject("bridge", "b1")])
    assert await revocations.revoke(api_key_subject("k1"), reason="API key revoked") == 1
    assert ended == ["API key revoked"] and alice.revoked.is_set()
    assert not bob.revoked.is_set() and not bridge.revoked.is_set()
    # Revoking again, or a subject nobody watches, ends nothing; cancelled watches are gone.
    assert await revocations.revoke(user_subject("alice"), reason="x") == 0
    bob.cancel()
    assert await revocations.revoke(user_subject("bob"), reason="x") == 0
    assert revocations.watched == 1


@pytest.mark.redis
async def test_a_revocation_on_one_replica_ends_the_session_on_another_within_a_second(
    redis_client: object, redis_prefix: str
) -> None:
    clients = [redis.Redis.from_url(REDIS_URL) for _ in range(2)]
    a, b = (Revocations(RedisEventBus(c, prefix=redis_prefix)) for c in clients)
    await a.start()
    await b.start()
    try:
        watch = b.watch_principal(Principal("carol", Role.USER, "jwt"))
        started = time.monotonic()
        assert await a.revoke(user_subject("carol"), reason="user deleted") == 0
        await asyncio.wait_for(watch.revoked.wait(), 1.0)
        assert time.monotonic() - started < 1.0
        assert watch.reason == "user deleted" and b.watched == 0
    finally:
        await a.stop()
        await b.stop()
        for client in clients:
            await client.aclose()


async def test_a_replica_that_missed_the_message_ends_the_session_at_its_recheck() -> None:
    gone: set[str] = set()

    async def still_valid(subjects: Collection[str]) -> list[str]:
        return [s for s in subjects if s in gone]

    # The other replica published while this one's bus was down: nothing arrives here.
    revocations = Revocations(MemoryEventBus(), still_valid=still_valid, recheck_interval=0.2)
    await revocations.start()
    try:
        watch = revocations.watch_principal(Principal("dave", Role.USER, "jwt"))
        gone.add(user_subject("dave"))
        await asyncio.wait_for(watch.revoked.wait(), 2.0)
        assert watch.reason == "credential no longer valid"
    finally:
        await revocations.stop()
