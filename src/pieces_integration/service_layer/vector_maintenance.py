"""Background maintenance of the vector store: optimise it when enough has been written.

The embedded engine never merges segments or builds its HNSW index by itself; the store's
`optimize()` does both (on a copy, without stopping queries; see the edge adapter). This
loop decides when: once a collection has received `min_writes` point writes since its last
optimisation, and writing has paused for `quiet_seconds` (a bulk load such as an initial
import or a large sync is then over, and is optimised once instead of many times midway),
or at the latest `max_delay_seconds` after the threshold was crossed (steady traffic that
never pauses still gets optimised). Runs never overlap: this is one loop, and the store
serialises `optimize()` calls too. A failure is logged and retried after a back-off.

On a store that optimises itself (Qdrant server) `writes_since_optimize()` stays 0, so the
loop never acts.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio

from pieces_integration.ports.clock import Clock, Sleep
from pieces_integration.ports.vectors import VectorStore
from pieces_integration.service_layer._background import BackgroundLoop

log = logging.getLogger(__name__)


class VectorMaintenance(BackgroundLoop):
    """Use with `async with` (the search runtime does); `run_once` for tests and tools."""

    def __init__(
        self,
        store: VectorStore,
        *,
        min_writes: int = 5_000,
        quiet_seconds: float = 30.0,
        max_delay_seconds: float = 600.0,
        poll_seconds: float = 5.0,
        failure_backoff_seconds: float = 300.0,
        counter: Any = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.store = store
        self.min_writes = min_writes
        self.quiet_seconds = quiet_seconds
        self.max_delay_seconds = max_delay_seconds
        self.poll_seconds = poll_seconds
        self.failure_backoff_seconds = failure_backoff_seconds
        self.counter = counter  # pieces_vector_optimizations_total{result}
        self.clock = clock
        self._sleep = sleep
        self.runs = 0
        self._last_seen = -1
        self._last_change = 0.0
        self._due_since: float | None = None
        self._retry_at = 0.0

    async def _loop(self) -> None:
        while True:
            await self._sleep(self.poll_seconds)
            await self.run_once()

    def due(self) -> bool:
        """Whether to optimise now (updates the quiet/delay bookkeeping)."""
        now = self.clock()
        pending = self.store.writes_since_optimize()
        if pending != self._last_seen:
            self._last_seen = pending
            self._last_change = now
        if pending < self.min_writes:
            self._due_since = None
            return False
        if self._due_since is None:
            self._due_since = now
        if now < self._retry_at:
            return False
        quiet = now - self._last_change >= self.quiet_seconds
        overdue = now - self._due_since >= self.max_delay_seconds
        return quiet or overdue

    async def run_once(self) -> bool | None:
        """Optimise if due; True/False as `optimize()` says, None if it was not due."""
        if not self.due():
            return None
        self.runs += 1
        try:
            changed = await self.store.optimize(min_writes=self.min_writes)
        except Exception:
            log.exception("optimising the vector store failed; retrying later")
            self._retry_at = self.clock() + self.failure_backoff_seconds
            self._count("failed")
            return False
        self._due_since = None
        self._count("optimized" if changed else "unchanged")
        return changed

    def _count(self, result: str) -> None:
        if self.counter is not None:
            self.counter.labels(result=result).inc()
