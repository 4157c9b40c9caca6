"""A session's two send paths: straight to the transport when nothing is ahead, else queued.

The fast path (`Channel.send_nowait`) must never overtake a message already queued or being
sent, and must give way whenever the transport says no.
"""

from __future__ import annotations

import asyncio

import pytest

from pieces_integration.adapters.event_log_memory import MemoryEventLog
from pieces_integration.domain.auth import Principal
from pieces_integration.domain.model import Role
from pieces_integration.ports.channel import ChannelClosed
from pieces_integration.service_layer.realtime_hub import RealtimeHub
from pieces_integration.service_layer.realtime_protocol import CloseCode
from pieces_integration.service_layer.realtime_session import Session

pytestmark = pytest.mark.anyio


class GatedChannel:
    """`send_nowait` succeeds while `fast`; `send_text` waits for `gate` (a slow socket)."""

    def __init__(self) -> None:
        self.fast = True
        self.gate = asyncio.Event()
        self.gate.set()
        self.wire: list[str] = []
        self.nowait_calls = 0
        self.slow_sends = 0
        self._closed = asyncio.Event()

    def send_nowait(self, text: str) -> bool:
        self.nowait_calls += 1
        if self.fast:
            self.wire.append(text)
        return self.fast

    async def send_text(self, text: str) -> None:
        self.slow_sends += 1
        await self.gate.wait()
        self.wire.append(text)

    async def receive(self) -> str | bytes:
        await self._closed.wait()
        raise ChannelClosed(1000)

    async def close(self, code: int, reason: str) -> None:
        self._closed.set()


async def _handle(session: Session, text: str) -> None:
    return None


async def _session(hub: RealtimeHub, channel: GatedChannel) -> tuple[Session, asyncio.Task[None]]:
    principal = Principal(user_id="alice", role=Role.USER, via="jwt")
    task = asyncio.create_task(hub.serve(channel, principal, _handle))
    for _ in range(100):
        if hub.stats()["sessions"]:
            break
        await asyncio.sleep(0.01)
    return next(iter(hub._sessions)), task


async def _settle(channel: GatedChannel, count: int) -> None:
    for _ in range(200):
        if len(channel.wire) >= count:
            return
        await asyncio.sleep(0.005)


async def test_an_idle_session_writes_at_once_without_its_sender_task() -> None:
    hub = RealtimeHub(MemoryEventLog())
    await hub.start()
    channel = GatedChannel()
    session, task = await _session(hub, channel)
    session.enqueue("a")
    session.enqueue("b")
    # Synchronously on the wire, before any other task ran; nothing went the slow way.
    assert channel.wire == ["a", "b"]
    assert channel.slow_sends == 0
    assert session.queued == (0, 0)
    session.finish(CloseCode.NORMAL, "done")
    await task
    await hub.stop()


async def test_a_refused_fast_write_queues_and_later_messages_never_overtake_it() -> None:
    hub = RealtimeHub(MemoryEventLog())
    await hub.start()
    channel = GatedChannel()
    session, task = await _session(hub, channel)
    channel.fast, channel.gate = False, asyncio.Event()  # backed-up transport, slow socket
    session.enqueue("1")
    await asyncio.sleep(0.02)  # the sender task has taken "1" and is blocked sending it
    assert channel.slow_sends == 1 and session.queued == (0, 0)
    channel.fast = True  # the transport would take more now...
    session.enqueue("2")  # ...but "1" is still in flight: "2" must wait behind it
    session.enqueue("3")
    assert channel.wire == []
    channel.gate.set()
    await _settle(channel, 3)
    assert channel.wire == ["1", "2", "3"]
    # Drained: the next message goes straight through again.
    sends = channel.slow_sends
    session.enqueue("4")
    assert channel.wire[-1] == "4" and channel.slow_sends == sends
    session.finish(CloseCode.NORMAL, "done")
    await task
    await hub.stop()


async def test_a_closing_session_sends_nothing_more() -> None:
    hub = RealtimeHub(MemoryEventLog())
    await hub.start()
    channel = GatedChannel()
    session, task = await _session(hub, channel)
    session.abort(CloseCode.SLOW_CONSUMER, "slow")
    calls = channel.nowait_calls
    session.enqueue("late")
    assert "late" not in channel.wire and channel.nowait_calls == calls
    await task
    await hub.stop()
