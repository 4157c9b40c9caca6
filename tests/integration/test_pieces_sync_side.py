"""Pieces OS as a sync side, against the Pieces emulator: snapshots survive the round trip."""

from __future__ import annotations

import random

import httpx
import pytest

from pieces_integration.adapters.pieces_os.client import ClientSettings, PiecesOSClient
from pieces_integration.adapters.pieces_os.sync_side import PiecesSyncSide
from pieces_integration.adapters.pieces_os.transport import HttpxPiecesTransport
from pieces_integration.adapters.resilience import CircuitBreaker, RetryPolicy, TokenBucket
from pieces_integration.domain.merge import Snapshot
from pieces_integration.emulators.pieces.server import running_emulator

pytestmark = pytest.mark.anyio


async def test_create_list_get_update_delete_round_trip() -> None:
    async with running_emulator(assets=3, seed=4) as emulator:
        client = PiecesOSClient(
            HttpxPiecesTransport(httpx.AsyncClient(), emulator.url),
            settings=ClientSettings(timeout=5.0),
            retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, rng=random.Random(1)),
            breaker=CircuitBreaker(failure_threshold=50),
            limiter=TokenBucket(rate_per_minute=60_000, burst=100),
        )
        try:
            await client.connect()
            side = PiecesSyncSide(client, "alice")
            assert len(await side.list_assets()) == 3
            wanted = Snapshot(
                name="add",
                content="def add(a, b):\n    return a + b\n",
                description="Adds.",
                language="python",
                tags=("math", "py"),
            )
            created = await side.create_asset("our-id", wanted)
            assert created.snapshot.state_hash() == wanted.state_hash()
            fetched = await side.get_asset(created.remote_id)
            assert fetched is not None and fetched.snapshot.state_hash() == wanted.state_hash()

            edited = Snapshot(
                name="add numbers",
                content="def add(a, b):\n    return b + a\n",
                description=None,
                language="python",
                tags=("math",),
            )
            updated = await side.update_asset(created.remote_id, edited)
            assert updated.snapshot.state_hash() == edited.state_hash()
            await side.delete_asset(created.remote_id)
            await side.delete_asset(created.remote_id)  # idempotent
            assert await side.get_asset(created.remote_id) is None
            assert len(await side.list_assets()) == 3
        finally:
            await client.aclose()
