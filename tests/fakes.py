"""In-memory stand-ins for the remote sides, for fast sync-engine tests.

They behave like the real sides where the engine can tell: Pieces-like sides pick their own
ids (a repeated create makes a second asset), AIWFE-like sides are keyed by our asset id
(a repeated create is an upsert). Faults can be switched on per operation.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pieces_integration.domain.connection_state import is_compatible
from pieces_integration.domain.errors import PiecesOSUnavailable
from pieces_integration.domain.merge import Snapshot
from pieces_integration.domain.model import Asset, Connection, Side
from pieces_integration.domain.tokenize import tokenize
from pieces_integration.ports.channel import ChannelClosed
from pieces_integration.ports.pieces import (
    AssetChanges,
    AssetDraft,
    DetectionResult,
    PiecesHealth,
    PiecesSession,
    PiecesUser,
    SearchHit,
    SearchMode,
    StoredConnection,
)
from pieces_integration.ports.sync_sides import RemoteAsset, SyncSide


class SideDown(Exception):
    pass


@dataclass
class FakeSide:
    side: Side
    idempotent_create: bool = False
    assets: dict[str, tuple[Snapshot, datetime]] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)  # operation names that raise
    crash_after_create: bool = False  # create remotely, then raise (lost response)
    calls: list[str] = field(default_factory=list)
    _clock: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def tick(self) -> datetime:
        self._clock += timedelta(milliseconds=1)
        return self._clock

    def _check(self, operation: str) -> None:
        self.calls.append(operation)
        if operation in self.failing:
            raise SideDown(f"{self.side.value} {operation} failed")

    def _remote(self, remote_id: str) -> RemoteAsset:
        snapshot, updated = self.assets[remote_id]
        return RemoteAsset(remote_id, snapshot, updated_at=updated)

    # --- what a user does directly on that side ---
    def user_creates(self, snapshot: Snapshot) -> str:
        remote_id = str(uuid.uuid4())
        self.assets[remote_id] = (snapshot, self.tick())
        return remote_id

    def user_edits(self, remote_id: str, snapshot: Snapshot) -> None:
        self.assets[remote_id] = (snapshot, self.tick())

    def user_deletes(self, remote_id: str) -> None:
        self.assets.pop(remote_id, None)

    # --- SyncSide ---
    async def list_assets(self) -> list[RemoteAsset]:
        self._check("list")
        return [self._remote(remote_id) for remote_id in self.assets]

    async def get_asset(self, remote_id: str) -> RemoteAsset | None:
        self._check("get")
        return self._remote(remote_id) if remote_id in self.assets else None

    async def create_asset(
        self,
        asset_id: str,
        snapshot: Snapshot,
        *,
        source: str | None = None,
        source_id: str | None = None,
    ) -> RemoteAsset:
        self._check("create")
        remote_id = asset_id if self.idempotent_create else str(uuid.uuid4())
        self.assets[remote_id] = (snapshot, self.tick())
        if self.crash_after_create:
            raise SideDown("connection lost after the create")
        return self._remote(remote_id)

    async def update_asset(self, remote_id: str, snapshot: Snapshot) -> RemoteAsset:
        self._check("update")
        if remote_id not in self.assets:
            raise SideDown("not found")
        self.assets[remote_id] = (snapshot, self.tick())
        return self._remote(remote_id)

    async def delete_asset(self, remote_id: str) -> None:
        self._check("delete")
        self.assets.pop(remote_id, None)

    def snapshots(self) -> list[Snapshot]:
        return sorted((s for s, _ in self.assets.values()), key=lambda s: s.state_hash())


def _conforms(side: FakeSide) -> SyncSide:
    return side


class FakeClock:
    """Time that moves only when told: call it for "now", `await clock.sleep(s)` to let `s`
    seconds pass (recorded in `slept`), `advance(s)` to move it from the test."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is


class VirtualClock:
    """Time for code with several concurrent sleepers (background loops): `sleep` waits until
    the test moves time on with `await advance(s)`, which wakes sleepers in deadline order and
    lets each run before moving on, so nothing waits on the wall clock."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), woken))
        await woken

    async def settle(self) -> None:
        """Let every task that can run do so (a few dozen loop turns)."""
        for _ in range(50):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        target = self.now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, woken = heapq.heappop(self._sleepers)
            self.now = max(self.now, deadline)
            if not woken.done():  # a cancelled sleeper is skipped
                woken.set_result(None)
                await self.settle()
        self.now = target
        await self.settle()

    async def run_until(self, condition: Callable[[], bool], *, step: float, limit: float) -> None:
        """Advance `step` at a time until `condition()` holds; fail after `limit` seconds."""
        deadline = self.now + limit
        while not condition():
            if self.now >= deadline:
                raise AssertionError(f"condition not met within {limit} virtual seconds")
            await self.advance(step)


# --- Pieces OS link -------------------------------------------------------------------------


@dataclass
class FakePiecesOS:
    """A `PiecesOS` that answers the connect handshake; `url`/`api_key` say what it was
    opened with, `closed` whether it was closed."""

    version: str = "12.3.4"
    healthy: bool = True
    down: bool = False
    closed: bool = False
    ids: list[str] = field(default_factory=lambda: ["a1", "a2"])
    url: str = "http://127.0.0.1:39300"
    api_key: str | None = None

    async def health(self) -> PiecesHealth:
        if self.down:
            raise PiecesOSUnavailable("refused", kind="not_running")
        return PiecesHealth(self.healthy, self.version, is_compatible(self.version))

    async def connect(self) -> PiecesSession:
        if self.down:
            raise PiecesOSUnavailable("refused", kind="not_running")
        return PiecesSession("app-1", "os-1", self.version, {"id": "app-1"})

    async def user(self) -> PiecesUser | None:
        return PiecesUser("pieces-user")

    async def asset_ids(self) -> list[str]:
        return list(self.ids)

    async def list_assets(self, user_id: str) -> list[Asset]:
        raise NotImplementedError

    async def get_asset(self, user_id: str, asset_id: str) -> Asset:
        raise NotImplementedError

    async def create_asset(self, user_id: str, draft: AssetDraft) -> Asset:
        raise NotImplementedError

    async def update_asset(self, user_id: str, asset_id: str, changes: AssetChanges) -> Asset:
        raise NotImplementedError

    async def delete_asset(self, asset_id: str) -> None:
        raise NotImplementedError

    async def search(self, query: str, mode: SearchMode = SearchMode.FUZZY) -> list[SearchHit]:
        return []

    async def aclose(self) -> None:
        self.closed = True


class MemoryConnectionStore:
    """A `ConnectionStore` in a dict."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredConnection] = {}

    async def get(self, user_id: str) -> StoredConnection | None:
        return self.rows.get(user_id)

    async def save(self, connection: Connection, *, sealed_secret: bytes | None) -> None:
        self.rows[connection.user_id] = StoredConnection(connection, sealed_secret)

    async def delete(self, user_id: str) -> None:
        self.rows.pop(user_id, None)


class NoPiecesDetector:
    """A `PiecesDetector` that finds nothing anywhere."""

    async def probe(self, base_url: str) -> str | None:
        return None

    async def detect(self, host: str, *, scheme: str = "http") -> DetectionResult:
        return DetectionResult(found=False)


def fake_seal(plaintext: str, context: str) -> bytes:
    """An `Encrypt` that binds the context and hides the text (reversed), for `fake_unseal`."""
    return (context + "|" + plaintext[::-1]).encode()


def fake_unseal(sealed: bytes, context: str) -> str:
    bound, _, reversed_text = sealed.decode().partition("|")
    assert bound == context, "sealed for someone else"
    return reversed_text[::-1]


class HashingEmbedder:
    """A tiny deterministic embedder (hashed bag of terms): shared words -> high cosine."""

    dimension = 384
    model_name = "hashing-test"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        rows = []
        for text in texts:
            row = [0.0] * self.dimension
            for term in tokenize(text):
                slot = int(hashlib.md5(term.encode()).hexdigest(), 16) % self.dimension
                row[slot] += 1.0
            norm = math.sqrt(sum(v * v for v in row)) or 1.0
            rows.append([v / norm for v in row])
        return rows


class FakeSyncTrigger:
    """The WebSocket `sync_request` port, answering a fixed SyncResult (or failing)."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.fail = fail

    async def request_sync(self, user_id: str, *, force: bool) -> dict[str, Any]:
        self.calls.append((user_id, force))
        if self.fail:
            raise PiecesOSUnavailable("Pieces OS is not running")
        return {
            "user_id": user_id,
            "sync_id": "s1",
            "started_at": "2025-01-01T00:00:00+00:00",
            "completed_at": "2025-01-01T00:00:01+00:00",
            "status": "completed",
            "changes": {"pieces_to_aiwfe": 2, "aiwfe_to_pieces": 1, "conflicts_resolved": 1},
            "errors": [],
        }


class MemoryBridgeWire:
    """One end of an in-memory bridge socket (`ports.bridge.BridgeWire`). `cut()` makes the
    link silent both ways without a close (a pulled cable): nothing arrives any more."""

    def __init__(self, inbox: asyncio.Queue[str | bytes | None], outbox: Any) -> None:
        self._inbox = inbox
        self._outbox: asyncio.Queue[str | bytes | None] = outbox
        self.silent = False
        self.closed_with: int | None = None
        self.sent_chunks = 0

    @classmethod
    def pair(cls) -> tuple[MemoryBridgeWire, MemoryBridgeWire]:
        a: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        b: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        return cls(a, b), cls(b, a)

    async def send_text(self, text: str) -> None:
        if self.closed_with is not None:
            raise ChannelClosed(self.closed_with)
        if not self.silent:
            await self._outbox.put(text)

    async def send_bytes(self, data: bytes) -> None:
        if self.closed_with is not None:
            raise ChannelClosed(self.closed_with)
        self.sent_chunks += 1
        if not self.silent:
            await self._outbox.put(data)

    async def receive(self) -> str | bytes:
        message = await self._inbox.get()
        if message is None:
            raise ChannelClosed(self.closed_with or 1000)
        return message

    async def close(self, code: int, reason: str) -> None:
        if self.closed_with is None:
            self.closed_with = code
            await self._outbox.put(None)
            await self._inbox.put(None)
