"""The in-process cache: least recently used out first, per-entry TTL on an injected clock."""

from __future__ import annotations

import pytest

from pieces_integration.adapters.memory import MemoryCache
from tests.fakes import FakeClock

pytestmark = pytest.mark.anyio


async def test_entries_expire_after_their_own_ttl_or_the_default() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_entries=10, default_ttl=60, clock=clock)
    await cache.set("short", b"1", ttl=5)
    await cache.set("default", b"2")
    clock.advance(5)
    assert await cache.get("short") is None
    assert await cache.get("default") == b"2"
    clock.advance(55)
    assert await cache.get("default") is None


async def test_without_a_ttl_an_entry_stays_until_evicted() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_entries=10, clock=clock)
    await cache.set("k", b"v")
    clock.advance(10**9)
    assert await cache.get("k") == b"v"


async def test_the_least_recently_read_entry_leaves_first_and_size_reads_reorder_nothing() -> None:
    cache = MemoryCache(max_entries=2, clock=FakeClock())
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    assert await cache.get("a") == b"1"  # "b" is now the least recently used
    assert cache.size_bytes() == 4
    await cache.set("c", b"3")
    assert await cache.get("b") is None
    assert await cache.get("a") == b"1" and await cache.get("c") == b"3"


async def test_delete_and_delete_prefix_count_only_live_entries() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_entries=10, clock=clock)
    await cache.set("user:alice:a", b"1", ttl=1)
    await cache.set("user:alice:b", b"2")
    await cache.set("user:bob:a", b"3")
    clock.advance(1)
    assert await cache.delete_prefix("user:alice:") == 1
    assert await cache.delete("user:bob:a", "missing") == 1
