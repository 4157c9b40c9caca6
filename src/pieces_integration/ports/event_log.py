"""The durable per-user event log behind the real-time API.

Every event a user can see gets an id that is strictly increasing per user. Within one
sequence "epoch" ids are consecutive (n, n+1, ...), which lets a reader notice a missed
message; a new epoch (history store lost or evicted) starts at a clock-derived base far
above any id handed out before, so a client's old id never lands inside a new sequence.
The log keeps a bounded history per user for resuming clients, and `tail()` delivers
every event appended on any replica, in per-user id order.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class NewEvent:
    """What a producer hands the log: the id is assigned on append."""

    user_id: str
    type: str
    timestamp: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    id: int
    user_id: str
    type: str
    timestamp: str
    payload: dict[str, Any]
    # The wire form, encoded once and shared by every connection that receives it.
    wire: str = field(default="", compare=False, repr=False)

    @classmethod
    def build(cls, event_id: int, event: NewEvent) -> LoggedEvent:
        head, tail = wire_parts(event)
        wire = f"{head}{event_id}{tail}"
        return cls(event_id, event.user_id, event.type, event.timestamp, event.payload, wire)

    @classmethod
    def from_wire(cls, wire: str) -> LoggedEvent:
        body = json.loads(wire)
        return cls(
            int(body["id"]), body["user_id"], body["type"], body["timestamp"], body["payload"], wire
        )


def wire_parts(event: NewEvent) -> tuple[str, str]:
    """The wire JSON split around the id, so a store can splice in the id it assigns:
    `{"type":..,"id":<id>,"user_id":..,"timestamp":..,"payload":..}`."""
    head = '{"type":' + json.dumps(event.type) + ',"id":'
    tail = (
        ',"user_id":'
        + json.dumps(event.user_id)
        + ',"timestamp":'
        + json.dumps(event.timestamp)
        + ',"payload":'
        + json.dumps(event.payload, separators=(",", ":"))
        + "}"
    )
    return head, tail


@dataclass(frozen=True, slots=True)
class Replay:
    """The events after a client's last id, or `reset` when the history no longer covers it."""

    events: list[LoggedEvent]
    reset: bool
    head: int  # the user's latest id when read; the cursor to continue from


class TailLost(Exception):
    """The tail may have dropped events (reconnect, overflow); re-read heads from the log."""


class EventTail(Protocol):
    async def get(self, max_wait: float | None = None) -> LoggedEvent | None:
        """The next appended event, None after `max_wait` seconds, TailLost after a gap."""
        ...


class EventLog(Protocol):
    async def append(self, event: NewEvent) -> LoggedEvent:
        """Assign the next id of the user, store it in the history, and fan it out."""
        ...

    async def head(self, user_id: str) -> int:
        """The user's latest id (starting a sequence when the user has none)."""
        ...

    async def heads(self, user_ids: list[str]) -> dict[str, int]:
        """`head` for many users at once (one round trip where the store allows)."""
        ...

    async def read_after(self, user_id: str, after: int) -> Replay:
        """Every retained event with an id above `after`, oldest first."""
        ...

    def tail(self) -> AbstractAsyncContextManager[EventTail]:
        """Events appended from now on, by any producer, for all users."""
        ...

    async def purge(self, user_id: str) -> None:
        """Forget the user's history and sequence (user deletion); idempotent.

        A later append or `head` starts a new sequence, above every id handed out before.
        """
        ...

    async def aclose(self) -> None: ...
