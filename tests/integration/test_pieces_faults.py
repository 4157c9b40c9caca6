"""The adapter under each fault the emulator injects: no unhandled exception, retries only where
safe, the state machine ends in the right state with the right message, and it recovers."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from pieces_integration.adapters.pieces_os.client import ClientSettings, PiecesOSClient
from pieces_integration.adapters.pieces_os.endpoint_guard import ResolvingEndpointGuard
from pieces_integration.adapters.pieces_os.factory import (
    DirectPiecesOSFactory,
    identifier_stream_factory,
)
from pieces_integration.adapters.pieces_os.transport import HttpxPiecesTransport
from pieces_integration.adapters.resilience import (
    BreakerState,
    CircuitBreaker,
    RetryPolicy,
    TokenBucket,
)
from pieces_integration.domain.connection_state import (
    ConnectionState,
    ConnectionStateChanged,
    FailureKind,
    message_for,
)
from pieces_integration.domain.errors import PiecesOSUnavailable, UpstreamTimeout
from pieces_integration.domain.model import Connection
from pieces_integration.emulators.pieces.server import EmulatorHandle, running_emulator
from pieces_integration.ports.pieces import AssetDraft, IdentifierEvent, StoredConnection
from pieces_integration.service_layer.pieces_connections import (
    PiecesConnections,
    connect_pieces,
    pieces_status,
    retry_pieces,
)

pytestmark = pytest.mark.anyio


def make_client(url: str, *, timeout: float = 5.0, breaker: CircuitBreaker | None = None):
    return PiecesOSClient(
        HttpxPiecesTransport(httpx.AsyncClient(), url),
        settings=ClientSettings(timeout=timeout),
        retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, rng=random.Random(7)),
        breaker=breaker or CircuitBreaker(failure_threshold=50),
        limiter=TokenBucket(rate_per_minute=60_000, burst=100),
    )


async def test_idempotent_reads_are_retried_through_503s() -> None:
    async with running_emulator(assets=4) as emulator:
        client = make_client(emulator.url)
        emulator.set_faults(fail_next=2, error_status=503)
        assets = await client.list_assets("u1")
        await client.aclose()
        assert len(assets) == 4
        assert emulator.server.faults.failures_injected == 2


async def test_creates_are_never_retried() -> None:
    async with running_emulator() as emulator:
        client = make_client(emulator.url)
        await client.connect()
        seen = emulator.server.faults.requests_seen
        emulator.set_faults(fail_next=1, error_status=500)
        with pytest.raises(PiecesOSUnavailable) as caught:
            await client.create_asset("u1", AssetDraft(content="x = 1", language="python"))
        assert caught.value.details["kind"] == FailureKind.SERVICE_UNAVAILABLE.value
        assert emulator.server.faults.requests_seen == seen + 1  # one try, no retry
        assert emulator.state.assets == {}
        created = await client.create_asset("u1", AssetDraft(content="x = 1"))  # fault lifted
        assert list(emulator.state.assets) == [created.id]
        await client.aclose()


async def test_breaker_opens_under_errors_and_closes_when_they_stop() -> None:
    async with running_emulator(assets=1) as emulator:
        breaker = CircuitBreaker(failure_threshold=3, reset_timeout=0.3)
        client = make_client(emulator.url, breaker=breaker)
        emulator.set_faults(error_rate=1.0, error_status=503)
        with pytest.raises(PiecesOSUnavailable):
            await client.asset_ids()  # three attempts, three failures
        assert breaker.state is BreakerState.OPEN
        seen = emulator.server.faults.requests_seen
        with pytest.raises(PiecesOSUnavailable) as paused:
            await client.asset_ids()
        assert "paused" in paused.value.message
        assert emulator.server.faults.requests_seen == seen  # failed fast, Pieces left alone
        emulator.clear_faults()
        await asyncio.sleep(0.35)
        assert len(await client.asset_ids()) == 1  # the half-open trial succeeds
        assert breaker.state is BreakerState.CLOSED
        await client.aclose()


async def test_added_latency_beyond_the_timeout_times_out_then_recovers() -> None:
    async with running_emulator(assets=1) as emulator:
        client = make_client(emulator.url, timeout=0.2)
        emulator.set_faults(latency_ms=400)
        with pytest.raises(UpstreamTimeout):
            await client.asset_ids()
        emulator.set_faults(latency_ms=50)
        assert len(await client.asset_ids()) == 1
        await client.aclose()


async def test_hung_requests_time_out_then_recover() -> None:
    async with running_emulator(assets=2) as emulator:
        client = make_client(emulator.url, timeout=0.2)
        emulator.set_faults(hang=True)
        started = time.perf_counter()
        with pytest.raises(UpstreamTimeout):
            await client.health()
        assert time.perf_counter() - started < 2.0  # three bounded attempts, not forever
        emulator.clear_faults()
        assert (await client.health()).healthy
        await client.aclose()


async def test_refused_connections_report_not_running_then_recover() -> None:
    async with running_emulator() as emulator:
        client = make_client(emulator.url)
        await emulator.server.stop_listening()
        with pytest.raises(PiecesOSUnavailable) as caught:
            await client.health()
        assert caught.value.details["kind"] == FailureKind.NOT_RUNNING.value
        await emulator.server.start()
        assert (await client.health()).healthy
        await client.aclose()


# --- the state machine through the service layer ---------------------------------------------


class MemoryConnectionStore:
    def __init__(self) -> None:
        self.rows: dict[str, StoredConnection] = {}

    async def get(self, user_id: str) -> StoredConnection | None:
        return self.rows.get(user_id)

    async def save(self, connection: Connection, *, sealed_secret: bytes | None) -> None:
        self.rows[connection.user_id] = StoredConnection(connection, sealed_secret)

    async def delete(self, user_id: str) -> None:
        self.rows.pop(user_id, None)


def fake_encrypt(plaintext: str, context: str) -> bytes:
    return f"sealed[{context}]".encode() + plaintext[::-1].encode()


class Harness:
    def __init__(self, emulator: EmulatorHandle, *, max_attempts: int = 10) -> None:
        self.emulator = emulator
        self.events: list[ConnectionStateChanged] = []
        self.frames: list[list[IdentifierEvent]] = []
        self.changed = asyncio.Event()
        self.store = MemoryConnectionStore()
        self.connections = PiecesConnections(
            publish=self.publish,
            stream_factory=identifier_stream_factory(self.sink),
            max_attempts=max_attempts,
            base_delay=0.02,
            max_delay=0.1,
        )
        self.factory = DirectPiecesOSFactory(
            ClientSettings(timeout=2.0), guard=ResolvingEndpointGuard()
        )

    async def publish(self, event: ConnectionStateChanged) -> None:
        self.events.append(event)
        self.changed.set()

    async def sink(self, events: list[IdentifierEvent]) -> None:
        self.frames.append(events)
        self.changed.set()

    async def connect(self):
        return await connect_pieces(
            "u1",
            self.emulator.url,
            api_key=None,
            preferences=None,
            guard=ResolvingEndpointGuard(),
            factory=self.factory,
            store=self.store,
            connections=self.connections,
            encrypt=fake_encrypt,
        )

    async def wait_for(self, predicate, within: float = 8.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    def state(self) -> ConnectionState:
        live = self.connections.get("u1")
        assert live is not None
        return live.machine.state

    def states(self) -> list[ConnectionState]:
        return [e.current for e in self.events]


async def test_dropped_stream_reconnects_and_resynchronises() -> None:
    async with running_emulator(assets=2) as emulator:
        harness = Harness(emulator)
        async with harness.connections:
            result = await harness.connect()
            assert result.success and result.pieces_info and result.pieces_info.asset_count == 2
            await harness.wait_for(lambda: len(harness.frames) == 1)
            await emulator.control("POST", "/streams/drop")
            await harness.wait_for(lambda: len(harness.frames) == 2)
            assert all(e.snapshot for e in harness.frames[1])  # resync after reconnect
            assert harness.state() is ConnectionState.CONNECTED
            assert harness.states() == [
                ConnectionState.CONNECTING,
                ConnectionState.CONNECTED,
                ConnectionState.DISCONNECTED,
                ConnectionState.CONNECTING,
                ConnectionState.CONNECTED,
            ]
            lost = harness.events[2]
            assert lost.failure is FailureKind.NETWORK and lost.retry_in is not None
            assert lost.message == message_for(FailureKind.NETWORK)


async def test_short_outage_recovers_on_its_own() -> None:
    async with running_emulator(assets=1) as emulator:
        harness = Harness(emulator)
        async with harness.connections:
            assert (await harness.connect()).success
            await harness.wait_for(lambda: len(harness.frames) == 1)
            await emulator.server.stop_listening()
            await harness.wait_for(
                lambda: any(e.failure is FailureKind.NOT_RUNNING for e in harness.events)
            )
            status = await pieces_status("u1", store=harness.store, connections=harness.connections)
            assert not status.connected
            assert status.user_message == message_for(FailureKind.NOT_RUNNING)
            await emulator.server.start()
            await harness.wait_for(lambda: harness.state() is ConnectionState.CONNECTED)
            await harness.wait_for(lambda: len(harness.frames) >= 2)
            assert len(emulator.state.applications) == 2  # registered again after the outage


async def test_long_outage_ends_in_connection_failed_until_manual_retry() -> None:
    async with running_emulator(assets=1) as emulator:
        harness = Harness(emulator, max_attempts=3)
        async with harness.connections:
            assert (await harness.connect()).success
            await harness.wait_for(lambda: len(harness.frames) == 1)
            await emulator.server.stop_listening()
            await harness.wait_for(lambda: harness.state() is ConnectionState.CONNECTION_FAILED)
            final = harness.events[-1]
            assert final.failure is FailureKind.NOT_RUNNING
            assert final.message is not None
            assert "Retry Connection" in [a.label for a in final.message.actions]
            await emulator.server.start()
            await asyncio.sleep(0.3)
            assert harness.state() is ConnectionState.CONNECTION_FAILED  # no more auto-retries
            status = await retry_pieces("u1", harness.connections)
            assert status is not None
            await harness.wait_for(lambda: harness.state() is ConnectionState.CONNECTED)


async def test_repeatedly_cut_streams_keep_reconnecting() -> None:
    async with running_emulator(assets=1) as emulator:
        harness = Harness(emulator)
        emulator.set_faults(drop_websockets_after=0.1)
        async with harness.connections:
            assert (await harness.connect()).success
            await harness.wait_for(lambda: len(harness.frames) >= 3)
            emulator.clear_faults()
            await emulator.control("POST", "/streams/drop")
            await harness.wait_for(lambda: harness.state() is ConnectionState.CONNECTED)


async def test_rejected_stream_handshakes_retry_until_lifted() -> None:
    async with running_emulator(assets=1) as emulator:
        harness = Harness(emulator)
        emulator.set_faults(reject_websockets=True)
        async with harness.connections:
            assert (await harness.connect()).success
            await harness.wait_for(
                lambda: any(e.failure is FailureKind.SERVICE_UNAVAILABLE for e in harness.events)
            )
            emulator.clear_faults()
            await harness.wait_for(lambda: len(harness.frames) == 1)
            assert harness.state() is ConnectionState.CONNECTED


async def test_signed_out_user_fails_with_the_authentication_message() -> None:
    async with running_emulator() as emulator:
        harness = Harness(emulator)
        emulator.set_faults(signed_out=True)
        async with harness.connections:
            result = await harness.connect()
        assert not result.success and result.state is ConnectionState.CONNECTION_FAILED
        assert result.failure is FailureKind.AUTHENTICATION
        assert result.user_message == message_for(FailureKind.AUTHENTICATION)
        assert harness.store.rows["u1"].connection.state == "connection_failed"


async def test_pieces_not_running_at_connect_time_gives_guidance() -> None:
    async with running_emulator() as emulator:
        harness = Harness(emulator)
        await emulator.server.stop_listening()
        async with harness.connections:
            result = await harness.connect()
        assert not result.success and result.failure is FailureKind.NOT_RUNNING
        assert result.message == message_for(FailureKind.NOT_RUNNING).message
