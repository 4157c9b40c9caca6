"""What one run's phases share: its book-keeping and the tools the engine lends them."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pieces_integration.domain.hlc import HybridLogicalClock, Timestamp
from pieces_integration.domain.merge import Strategy
from pieces_integration.domain.model import Side, SyncRun
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.ports.sync_sides import RemoteAsset
from pieces_integration.service_layer.events import EventPublisher
from pieces_integration.service_layer.sync.writes import BatchWriter
from pieces_integration.service_layer.team_events import TeamEvents

Scope = dict[Side, set[str]]  # remote ids per side that a run looks at (None: everything)


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class RunBook:
    """Book-keeping of one run."""

    record: SyncRun
    connected: set[Side] = field(default_factory=set)  # the sides the run syncs with
    pushed: Counter[Side] = field(default_factory=Counter)
    changed_locally: set[str] = field(default_factory=set)
    pushed_ok: set[Side] = field(default_factory=set)
    # Outbox messages pending when the run began, before it read any state: only these are
    # carried by what the run saw. A write committed while the run goes on leaves a message
    # the run must not settle, or its change would wait for the next full reconciliation.
    seen_messages: set[int] = field(default_factory=set)
    # Assets someone edited while the run went on (a write of it was skipped): the run
    # leaves them alone from then on, and the next run merges from what is stored.
    moved: set[str] = field(default_factory=set)
    # Assets this run changed that are shared into teams, with their team ids: the revision
    # is recorded with the write, the members are told after the commit (issue 16).
    shared: dict[str, list[str]] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        return self.record.user_id


@dataclass
class RunContext:
    """The store, the publisher, the clock and the settings, with the run they serve."""

    uow: UnitOfWorkFactory
    events: EventPublisher
    clock: HybridLogicalClock
    strategy: Strategy
    batch_size: int
    book: RunBook
    # Called as (phase, done, total) while the run progresses.
    progress: Callable[[str, int, int], None] = lambda phase, done, total: None
    team_events: TeamEvents | None = None

    def writer(self, batch_size: int | None = None) -> BatchWriter:
        return BatchWriter(self.uow, batch_size or self.batch_size)

    def stamp(self) -> Timestamp:
        return self.clock.tick(int(time.time() * 1000))

    def remote_stamp(self, item: RemoteAsset) -> Timestamp:
        now = int(time.time() * 1000)
        if item.updated_at is None:
            return self.clock.tick(now)
        return self.clock.receive(Timestamp(millis(item.updated_at), 0, "remote"), now)
