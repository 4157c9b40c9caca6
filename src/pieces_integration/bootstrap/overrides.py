"""What a caller (a test, a benchmark, a command) supplies instead of the production part.

Every field left as None is built from the settings by `bootstrap()`. Passing a part here is
the only way to replace one: nothing is patched into a module or assigned after start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from pieces_integration.observability.metrics import Metrics
from pieces_integration.ports.aiwfe import AIWFEClient
from pieces_integration.ports.clock import Clock
from pieces_integration.ports.event_log import EventLog
from pieces_integration.ports.infrastructure import Cache, EventBus, Locks
from pieces_integration.ports.pieces import EndpointGuard
from pieces_integration.ports.sync import SyncTrigger
from pieces_integration.ports.vectors import Embedder
from pieces_integration.service_layer.realtime_protocol import RealtimeLimits


@dataclass(frozen=True, slots=True)
class Overrides:
    engine: AsyncEngine | None = None
    cache: Cache | None = None
    bus: EventBus | None = None
    locks: Locks | None = None
    metrics: Metrics | None = None
    http: httpx.AsyncClient | None = None
    # The per-user event log behind live events (production: Redis with REDIS_URL, else memory).
    event_log: EventLog | None = None
    # Monotonic time for the scheduler and the in-process rate limiter.
    clock: Clock | None = None
    # Which Pieces OS addresses may be dialled (production: resolve, refuse what is not local).
    endpoint_guard: EndpointGuard | None = None
    embedder: Embedder | None = None
    aiwfe: AIWFEClient | None = None
    # The WebSocket `sync_request` port (production: the scheduler's).
    sync_trigger: SyncTrigger | None = None
    # Told (user, phase, done, total) as a sync run goes (the `sync` command's progress bars).
    sync_progress: Callable[[str, str, int, int], None] | None = None
    realtime_limits: RealtimeLimits | None = None
    # Around each WebSocket fan-out (the `serve` command's direct frame writer batches there).
    realtime_batch: Callable[[], AbstractContextManager[None]] | None = None
