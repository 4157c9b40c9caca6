"""The SDK's own high-level `PiecesClient` finds and uses the emulator like a real Pieces OS:
port scan of 39300–39333, connect, user, eight WebSockets, stream-fed cache, create, search,
delete."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

from pieces_integration.adapters.pieces_os.discovery import SCAN_PORTS, PortScanDetector
from pieces_integration.emulators.pieces.server import running_emulator
from tests.net import free_port_in

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _wait(predicate, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the SDK wrapper")
        time.sleep(0.05)


def _wrapper_scenario(expected_port: int) -> None:
    from pieces_os_client.wrapper import PiecesClient
    from pieces_os_client.wrapper.basic_identifier import BasicAsset
    from pieces_os_client.wrapper.streamed_identifiers import AssetSnapshot

    client = PiecesClient()
    try:
        assert client.port == str(expected_port), "another Pieces OS in the range answered first"
        assert client.is_pieces_running()
        client.ensure_initialization()
        # The first stream frame queues every id; a worker then fetches each asset.
        _wait(lambda: len(client.assets()) == 3)
        created_id = client.create_asset("x = 1\n")
        # The id is listed (value None) before the SDK's worker has fetched the asset.
        _wait(lambda: AssetSnapshot.identifiers_snapshot.get(created_id) is not None)
        asset = BasicAsset(created_id)
        assert asset.raw_content == "x = 1\n"
        hits = BasicAsset.search("x = 1", "fts") or []
        assert created_id in [hit.id for hit in hits]
        asset.delete()
        _wait(lambda: created_id not in AssetSnapshot.identifiers_snapshot)
    finally:
        client.close()


async def test_sdk_pieces_client_wrapper_works_against_the_emulator() -> None:
    async with httpx.AsyncClient() as http:
        busy = await PortScanDetector(http, legacy_ports=(), deadline=1.0).detect("127.0.0.1")
    if busy.found:
        pytest.skip(f"another Pieces OS answers at {busy.url}; the wrapper would pick it")
    port = free_port_in(SCAN_PORTS)
    async with running_emulator(port=port, assets=3, seed=4):
        await anyio.to_thread.run_sync(_wrapper_scenario, port)
