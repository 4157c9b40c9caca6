"""Pieces OS as a sync side, against the Pieces emulator: snapshots survive the round trip,
and a create records the AIWFE chat an asset came from without it reading back as a change."""

from __future__ import annotations

import random

import anyio.to_thread
import httpx
import pytest
from pieces_os_client.api.asset_api import AssetApi
from pieces_os_client.api_client import ApiClient
from pieces_os_client.configuration import Configuration
from pieces_os_client.models.asset import Asset as PiecesSDKAsset

from pieces_integration.adapters.pieces_os.client import ClientSettings, PiecesOSClient
from pieces_integration.adapters.pieces_os.endpoint_guard import ResolvingEndpointGuard
from pieces_integration.adapters.pieces_os.factory import DirectPiecesOSFactory
from pieces_integration.adapters.pieces_os.sync_side import PiecesSyncSide
from pieces_integration.adapters.pieces_os.transport import HttpxPiecesTransport
from pieces_integration.adapters.resilience import CircuitBreaker, RetryPolicy, TokenBucket
from pieces_integration.domain.merge import Snapshot
from pieces_integration.domain.model import Side
from pieces_integration.emulators.pieces.server import running_emulator
from pieces_integration.service_layer.connected_sides import ConnectedSides
from pieces_integration.service_layer.pieces import PiecesConnections, PiecesIntegration
from tests.fakes import MemoryConnectionStore, NoPiecesDetector, fake_seal, fake_unseal

pytestmark = pytest.mark.anyio


def _client(url: str) -> PiecesOSClient:
    return PiecesOSClient(
        HttpxPiecesTransport(httpx.AsyncClient(), url),
        settings=ClientSettings(timeout=5.0),
        retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, rng=random.Random(1)),
        breaker=CircuitBreaker(failure_threshold=50),
        limiter=TokenBucket(rate_per_minute=60_000, burst=100),
    )


async def test_create_list_get_update_delete_round_trip() -> None:
    async with running_emulator(assets=3, seed=4) as emulator:
        client = _client(emulator.url)
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


def _sdk_asset(url: str, asset_id: str) -> PiecesSDKAsset:
    """The asset as the official SDK reads it."""
    api = ApiClient(Configuration(host=url))
    asset: PiecesSDKAsset = AssetApi(api).asset_snapshot(
        asset_id, transferables=True, _request_timeout=5.0
    )
    return asset


async def test_a_create_records_the_aiwfe_chat_it_came_from() -> None:
    async with running_emulator() as emulator:
        client = _client(emulator.url)
        try:
            await client.connect()
            side = PiecesSyncSide(client, "alice")
            wanted = Snapshot(
                name="python: conn = await asyncpg.connect(dsn)",
                content="conn = await asyncpg.connect(dsn)",
                description="Code snippet from AIWFE chat 'DB'",
                language="python",
                tags=("aiwfe-chat", "python"),
            )
            created = await side.create_asset(
                "our-id", wanted, source="aiwfe", source_id="chat_000042"
            )
            plain = await side.create_asset("other-id", Snapshot(name="n", content="x = 1\n"))
            # The origin is not part of the synced state: nothing to reconcile afterwards.
            assert created.snapshot.state_hash() == wanted.state_hash()
            listed = {r.remote_id: r.snapshot for r in await side.list_assets()}
            assert listed[created.remote_id].state_hash() == wanted.state_hash()

            ours = await client.get_asset("alice", created.remote_id)
            assert ours.metadata["origin"] == {"source": "aiwfe", "source_id": "chat_000042"}
            other = await client.get_asset("alice", plain.remote_id)
            assert "origin" not in other.metadata and other.metadata["websites"] == []
            sdk = await anyio.to_thread.run_sync(_sdk_asset, emulator.url, created.remote_id)
            assert sdk.websites is not None
            assert [(w.name, w.url) for w in sdk.websites.iterable] == [
                ("AIWFE chat chat_000042", "aiwfe://chats/chat_000042")
            ]

            # Edits through the side keep it, and still read back as exactly what was sent.
            edited = Snapshot(
                name="connect",
                content="conn = await asyncpg.connect(dsn, timeout=5)",
                description="Connects.",
                language="python",
                tags=("aiwfe-chat",),
            )
            updated = await side.update_asset(created.remote_id, edited)
            assert updated.snapshot.state_hash() == edited.state_hash()
            again = await side.get_asset(created.remote_id)
            assert again is not None and again.snapshot.state_hash() == edited.state_hash()
            kept = await client.get_asset("alice", created.remote_id)
            assert kept.metadata["origin"] == {"source": "aiwfe", "source_id": "chat_000042"}
        finally:
            await client.aclose()


async def _ignore(event: object) -> None:
    return None


async def test_a_sync_after_the_user_moves_pieces_os_reads_the_new_one() -> None:
    """Sync runs on a replica without the live link: it follows the stored connection to
    the Pieces OS the user connected last, and to none once they disconnect."""
    async with running_emulator(assets=1, seed=1) as old, running_emulator(assets=2) as new:
        guard = ResolvingEndpointGuard()
        factory = DirectPiecesOSFactory(ClientSettings(timeout=5.0), guard=guard)
        store = MemoryConnectionStore()
        pieces = PiecesIntegration(
            guard=guard,
            detector=NoPiecesDetector(),
            factory=factory,
            store=store,
            connections=PiecesConnections(publish=_ignore),
            encrypt=fake_seal,
            default_url=old.url,
        )
        sides = ConnectedSides(
            store=store,
            connections=PiecesConnections(publish=_ignore),
            factory=factory,
            decrypt=fake_unseal,
            pieces_side=PiecesSyncSide,
        )
        try:
            assert (await pieces.connect("alice", old.url, api_key=None, preferences=None)).success
            assert len(await (await sides("alice"))[Side.PIECES].list_assets()) == 1
            assert (await pieces.connect("alice", new.url, api_key=None, preferences=None)).success
            assert len(await (await sides("alice"))[Side.PIECES].list_assets()) == 2
            await pieces.disconnect("alice", preserve_data=True)
            assert Side.PIECES not in await sides("alice")
        finally:
            await sides.aclose()
            await pieces.connections.__aexit__(None, None, None)
