"""Our Pieces OS adapter against the emulator: the same scenario as the SDK contract test."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from pieces_integration.adapters.pieces_os.client import ClientSettings, PiecesOSClient
from pieces_integration.adapters.pieces_os.streams import ReconnectingIdentifierStream
from pieces_integration.adapters.pieces_os.transport import HttpxPiecesTransport
from pieces_integration.adapters.resilience import CircuitBreaker, RetryPolicy, TokenBucket
from pieces_integration.domain.connection_state import FailureKind
from pieces_integration.domain.errors import NotFound
from pieces_integration.domain.model import AssetSource
from pieces_integration.emulators.pieces.server import running_emulator
from pieces_integration.ports.pieces import (
    AssetChanges,
    AssetDraft,
    IdentifierEvent,
    SearchMode,
)

pytestmark = pytest.mark.anyio


def make_client(url: str, **overrides: object) -> PiecesOSClient:
    settings = ClientSettings(timeout=float(overrides.pop("timeout", 5.0)))  # type: ignore[arg-type]
    return PiecesOSClient(
        HttpxPiecesTransport(httpx.AsyncClient(), url),
        settings=settings,
        retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, rng=random.Random(1)),
        breaker=overrides.pop("breaker", None) or CircuitBreaker(failure_threshold=50),  # type: ignore[arg-type]
        limiter=TokenBucket(rate_per_minute=60_000, burst=100),
    )


async def test_full_scenario_maps_pieces_payloads_to_domain_assets() -> None:
    async with running_emulator(assets=5, seed=2) as emulator:
        client = make_client(emulator.url)
        try:
            health = await client.health()
            assert health.healthy and health.version == "12.3.4" and health.compatible
            session = await client.connect()
            assert session.application_id in emulator.state.applications
            user = await client.user()
            assert user is not None and user.id == emulator.state.user_id

            created = await client.create_asset(
                "u1",
                AssetDraft(
                    content="def add(a, b):\n    return a + b\n",
                    language="python",
                    name="add two numbers",
                    tags=("python", "math"),
                    description="Adds two numbers.",
                    websites=(("docs", "https://docs.python.org/3/"),),
                ),
            )
            assert created.source is AssetSource.PIECES and created.source_id == created.id
            assert created.language == "python" and created.tags == ["python", "math"]
            assert created.description == "Adds two numbers."
            assert created.metadata["websites"] == [
                {"name": "docs", "url": "https://docs.python.org/3/"}
            ]
            assert created.created_at.tzinfo is not None

            listed = await client.list_assets("u1")
            assert len(listed) == 6 and created.id in {a.id for a in listed}
            assert set(await client.asset_ids()) == {a.id for a in listed}

            updated = await client.update_asset(
                "u1",
                created.id,
                AssetChanges(
                    name="add numbers",
                    content="def add(*xs):\n    return sum(xs)\n",
                    tags=("python", "variadic"),
                    description="Adds any numbers.",
                ),
            )
            assert updated.name == "add numbers"
            assert updated.content == "def add(*xs):\n    return sum(xs)\n"
            assert sorted(updated.tags) == ["python", "variadic"]
            assert updated.description == "Adds any numbers."
            assert updated.updated_at >= created.updated_at

            for mode in SearchMode:
                hits = await client.search(
                    "add numbers" if mode is SearchMode.FUZZY else "sum", mode
                )
                assert created.id in {h.asset_id for h in hits}, mode

            await client.delete_asset(created.id)
            await client.delete_asset(created.id)  # already gone: still fine
            with pytest.raises(NotFound):
                await client.get_asset("u1", created.id)
        finally:
            await client.aclose()


async def test_adapter_parses_a_whole_seeded_library() -> None:
    async with running_emulator(assets=300, seed=5) as emulator:
        client = make_client(emulator.url)
        try:
            assets = await client.list_assets("u1")
        finally:
            await client.aclose()
    assert len(assets) == 300 and len({a.id for a in assets}) == 300
    languages = {a.language for a in assets}
    assert {"python", "typescript", "go", "rust", "sql"} <= languages
    assert all(a.content and a.name and a.description for a in assets)


class RecordingObserver:
    def __init__(self, delays: list[float | None] | None = None) -> None:
        self.log: list[str] = []
        self.opened_event = asyncio.Event()

    async def attempt_starting(self) -> None:
        self.log.append("attempt")

    async def opened(self) -> None:
        self.log.append("opened")
        self.opened_event.set()

    async def failed(self, kind: FailureKind, detail: str) -> float | None:
        self.log.append(f"failed:{kind.value}")
        self.opened_event = asyncio.Event()
        return 0.01


async def test_identifier_stream_announces_snapshot_creates_changes_and_deletes() -> None:
    async with running_emulator(assets=3, seed=1) as emulator:
        client = make_client(emulator.url)
        received: list[list[IdentifierEvent]] = []
        got = asyncio.Event()

        async def handler(events: list[IdentifierEvent]) -> None:
            received.append(events)
            got.set()

        async def frames(since: int, count: int) -> list[list[IdentifierEvent]]:
            """Wait for `count` frames after the first `since`; return just those."""
            async with asyncio.timeout(5):
                while len(received) < since + count:
                    got.clear()
                    await got.wait()
            return received[since:]

        observer = RecordingObserver()
        await client.connect()
        async with ReconnectingIdentifierStream(client.transport, handler, observer):
            (snapshot,) = await frames(0, 1)
            assert len(snapshot) == 3 and all(e.snapshot for e in snapshot)
            assert {e.asset_id for e in snapshot} == set(emulator.state.assets)
            seen = len(received)
            created = await client.create_asset("u1", AssetDraft(content="x = 1", language="py"))
            assert await frames(seen, 1) == [[IdentifierEvent(created.id)]]

            # Changed: an existing asset renamed and its code edited (two Pieces routes, so
            # two announcements), each an update of that id, neither deleted nor a snapshot.
            target = next(e.asset_id for e in snapshot)
            seen = len(received)
            updated = await client.update_asset(
                "u1", target, AssetChanges(name="renamed", content="y = 2\n")
            )
            assert (updated.name, updated.content) == ("renamed", "y = 2\n")
            assert await frames(seen, 2) == [[IdentifierEvent(target)], [IdentifierEvent(target)]]

            seen = len(received)
            await client.delete_asset(created.id)
            assert await frames(seen, 1) == [[IdentifierEvent(created.id, deleted=True)]]
        await client.aclose()
    assert observer.log[:2] == ["attempt", "opened"]


async def test_connections_dial_the_address_the_guard_vetted() -> None:
    """`pieces.test` resolves only in the guard's resolver: if the client resolved the name
    again (where DNS rebinding would bite), it could not connect at all."""
    from pieces_integration.adapters.pieces_os.endpoint_guard import ResolvingEndpointGuard
    from pieces_integration.adapters.pieces_os.factory import DirectPiecesOSFactory

    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    async with running_emulator(assets=2) as emulator:
        factory = DirectPiecesOSFactory(
            ClientSettings(timeout=5), guard=ResolvingEndpointGuard(resolve)
        )
        client = await factory(f"http://pieces.test:{emulator.server.port}", api_key=None)
        assert isinstance(client, PiecesOSClient)
        try:
            assert (await client.health()).healthy
            await client.connect()
            assert len(await client.list_assets("u1")) == 2
            got = asyncio.Event()

            async def handler(events: list[IdentifierEvent]) -> None:
                got.set()

            async with ReconnectingIdentifierStream(client.transport, handler, RecordingObserver()):
                await asyncio.wait_for(got.wait(), 5)
        finally:
            await client.aclose()
    assert lookups == ["pieces.test"]  # vetted once, never re-resolved


async def test_a_failing_handler_does_not_kill_the_stream() -> None:
    async with running_emulator(assets=1) as emulator:
        client = make_client(emulator.url)
        calls = 0
        second = asyncio.Event()

        async def handler(events: list[IdentifierEvent]) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("a bug in the consumer")
            second.set()

        observer = RecordingObserver()
        async with ReconnectingIdentifierStream(client.transport, handler, observer):
            await asyncio.wait_for(second.wait(), 5)
        await client.aclose()
    assert observer.log[:4] == ["attempt", "opened", "failed:service_unavailable", "attempt"]
