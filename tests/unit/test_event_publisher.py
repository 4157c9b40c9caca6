"""Events go to the per-user log only; the subscribe filter speaks the published vocabulary."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import pytest

from pieces_integration.adapters.memory import MemoryCache, MemoryEventBus, MemoryLocks
from pieces_integration.bootstrap import Overrides, bootstrap
from pieces_integration.config import load_settings
from pieces_integration.domain.events import EventType
from pieces_integration.ports.infrastructure import EventBus, Subscription
from pieces_integration.service_layer.events import EVENT_TYPES, subscription_filter

pytestmark = pytest.mark.anyio


class RecordingBus:
    """A working bus that also keeps every message published on any channel."""

    def __init__(self) -> None:
        self.inner = MemoryEventBus()
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, channel: str, message: bytes) -> None:
        self.published.append((channel, message))
        await self.inner.publish(channel, message)

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]:
        return self.inner.subscribe(channel)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        await self.inner.aclose()


def _conforms(bus: RecordingBus) -> EventBus:
    return bus


async def test_publishing_an_event_appends_to_the_log_and_nothing_goes_on_the_bus() -> None:
    # Issue #19 (8): every event was also sent to a bus channel `user:{id}` nobody read.
    bus = RecordingBus()
    container = bootstrap(
        load_settings(),
        Overrides(bus=_conforms(bus), cache=MemoryCache(max_entries=100), locks=MemoryLocks()),
    )
    try:
        log = container.events.log
        start = await log.head("alice")
        logged = await container.events.publish("alice", EventType.ASSET_CREATED, {"n": 1})
        replay = await log.read_after("alice", start)
        assert [(e.id, e.type, e.payload) for e in replay.events] == [
            (logged.id, "asset_created", {"n": 1})
        ]
        assert logged.wire.startswith('{"type":"asset_created",')
        assert bus.published == []
    finally:
        await container.aclose()


def test_the_subscribe_vocabulary_is_the_published_one_plus_the_deprecated_alias() -> None:
    assert EVENT_TYPES == {event.value for event in EventType} | {"connection_state_changed"}


def test_a_filter_resolves_the_deprecated_alias_and_reports_unknown_names() -> None:
    selected, unknown = subscription_filter(
        ["connection_state_changed", "asset_created", "nope", "pieces_connection_state_changed"]
    )
    assert selected == {"pieces_connection_state_changed", "asset_created"}
    assert unknown == ["nope"]
    assert subscription_filter([]) == (frozenset(), [])
