"""The event log across replicas: a Redis Stream per user for history, a counter for ids,
and one pub/sub channel for fan-out.

One Lua script does INCR (the id), XADD ... MAXLEN ~ (the bounded history) and PUBLISH
(the fan-out) atomically, so ids are strictly increasing per user whichever replica writes,
the stream holds them in id order, and the channel carries them in the same order. Pub/sub
rather than a blocking XREAD per user: a replica needs one connection for all its users
instead of re-issuing XREAD over thousands of keys; what pub/sub may drop (during a
reconnect) the reader notices as a gap in the consecutive ids, or as `TailLost`, and
re-reads from the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as redis

from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.ports.event_log import (
    LoggedEvent,
    NewEvent,
    Replay,
    TailLost,
    wire_parts,
)

# A new sequence starts at the server clock in microseconds: above any id handed out before.
_START = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[1], t[1] .. string.format('%06d', tonumber(t[2])), 'EX', ARGV[1])
end
"""

_APPEND = (
    _START
    + """
local id = string.format('%.0f', redis.call('INCR', KEYS[1]))
local wire = ARGV[4] .. id .. ARGV[5]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], id .. '-0', 'w', wire)
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[3], wire)
return id
"""
)

_HEAD = _START + "return redis.call('GET', KEYS[1])"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _PubSubTail:
    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    async def get(self, max_wait: float | None = None) -> LoggedEvent | None:
        deadline = None if max_wait is None else time.monotonic() + max_wait
        while True:
            remaining = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=remaining
                )
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # redis-py resubscribes on the next call; what was published meanwhile is
                # gone from the channel (but not from the streams).
                await asyncio.sleep(0.2)
                raise TailLost(str(exc)) from exc
            if message is not None and message.get("type") == "message":
                return LoggedEvent.from_wire(_text(message["data"]))
            if deadline is not None and time.monotonic() >= deadline:
                return None


class RedisEventLog:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        history: int = 1000,
        retention_seconds: int = 7 * 24 * 3600,
    ) -> None:
        self._client = client
        self._prefix = prefix + "evlog:"
        self._channel = self._prefix + "fanout"
        self._history = history
        self._retention = retention_seconds
        self._append = client.register_script(_APPEND)
        self._head = client.register_script(_HEAD)

    def _keys(self, user_id: str) -> tuple[str, str]:
        return self._prefix + "seq:" + user_id, self._prefix + "stream:" + user_id

    async def append(self, event: NewEvent) -> LoggedEvent:
        head, tail = wire_parts(event)
        try:
            raw = await self._append(
                keys=list(self._keys(event.user_id)),
                args=[self._retention, self._history, self._channel, head, tail],
            )
        except redis.RedisError as exc:
            raise DependencyUnavailable(
                f"event log append failed: {exc}", upstream="redis"
            ) from exc
        event_id = int(_text(raw))
        return LoggedEvent(
            event_id,
            event.user_id,
            event.type,
            event.timestamp,
            event.payload,
            f"{head}{event_id}{tail}",
        )

    async def head(self, user_id: str) -> int:
        seq, _ = self._keys(user_id)
        return int(_text(await self._head(keys=[seq], args=[self._retention])))

    async def heads(self, user_ids: list[str]) -> dict[str, int]:
        if not user_ids:
            return {}
        values = await self._client.mget([self._keys(user_id)[0] for user_id in user_ids])
        found: dict[str, int] = {}
        for user_id, value in zip(user_ids, values, strict=True):
            found[user_id] = int(_text(value)) if value is not None else await self.head(user_id)
        return found

    async def read_after(self, user_id: str, after: int) -> Replay:
        seq, stream = self._keys(user_id)
        head = await self.head(user_id)
        if after >= head:
            return Replay([], reset=after > head, head=head)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.get(seq)
            pipe.xrange(stream, "-", "+", count=1)
            pipe.xrange(stream, f"{after + 1}-0", "+")
            raw_head, first, entries = await pipe.execute()
        head = int(_text(raw_head)) if raw_head is not None else head
        oldest = int(_text(first[0][0]).split("-")[0]) if first else None
        if oldest is None or oldest > after + 1:
            return Replay([], reset=True, head=head)
        events = [LoggedEvent.from_wire(_text(fields[b"w"])) for _, fields in entries]
        return Replay(events, reset=False, head=events[-1].id if events else head)

    async def purge(self, user_id: str) -> None:
        # The stream holds the events' payloads (asset content): both keys go, not their TTL.
        try:
            await self._client.delete(*self._keys(user_id))
        except redis.RedisError as exc:
            raise DependencyUnavailable(f"event log purge failed: {exc}", upstream="redis") from exc

    @asynccontextmanager
    async def tail(self) -> AsyncIterator[_PubSubTail]:
        pubsub = self._client.pubsub()
        await pubsub.subscribe(self._channel)
        try:
            yield _PubSubTail(pubsub)
        finally:
            try:
                await pubsub.unsubscribe()
            finally:
                await pubsub.aclose()

    async def aclose(self) -> None:
        return None  # the shared client is closed by its owner
