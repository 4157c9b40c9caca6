"""The adapter under each fault the emulator injects: no unhandled exception, retries only where
safe, the state machine ends in the right state with the right message, and it recovers."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import structlog.testing

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
    UserMessage,
    message_for,
)
from pieces_integration.domain.errors import PiecesOSUnavailable, UpstreamTimeout
from pieces_integration.domain.model import Connection
from pieces_integration.emulators.pieces.server import EmulatorHandle, running_emulator
from pieces_integration.ports.pieces import (
    AssetChanges,
    AssetDraft,
    IdentifierEvent,
    StoredConnection,
)
from pieces_integration.service_layer.pieces import PiecesConnections, PiecesIntegration
from tests.fakes import NoPiecesDetector

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
    def __init__(
        self,
        emulator: EmulatorHandle,
        *,
        max_attempts: int = 10,
        timeout: float = 2.0,
        base_delay: float = 0.02,
        max_delay: float = 0.1,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.emulator = emulator
        self.events: list[ConnectionStateChanged] = []
        self.frames: list[list[IdentifierEvent]] = []
        self.changed = asyncio.Event()
        self.store = MemoryConnectionStore()
        self.connections = PiecesConnections(
            publish=self.publish,
            stream_factory=identifier_stream_factory(self.sink),
            max_attempts=max_attempts,
            base_delay=base_delay,
            max_delay=max_delay,
        )
        self.factory = DirectPiecesOSFactory(
            ClientSettings(timeout=timeout), guard=ResolvingEndpointGuard(), transport=transport
        )
        self.pieces = PiecesIntegration(
            guard=ResolvingEndpointGuard(),
            detector=NoPiecesDetector(),
            factory=self.factory,
            store=self.store,
            connections=self.connections,
            encrypt=fake_encrypt,
            default_url=emulator.url,
        )

    async def publish(self, event: ConnectionStateChanged) -> None:
        self.events.append(event)
        self.changed.set()

    async def sink(self, events: list[IdentifierEvent]) -> None:
        self.frames.append(events)
        self.changed.set()

    async def connect(self):
        return await self.pieces.connect("u1", self.emulator.url, api_key=None, preferences=None)

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
            status = await harness.pieces.status("u1")
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
            status = await harness.pieces.retry("u1")
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


# --- the per-user connection flow while each fault is active (spec 8.4) ----------------------
#
# These run `PiecesIntegration.connect` / `.retry` and the stream's state machine against the
# emulator with a fault switched on through its control endpoint, and check what the user is
# told, what was sent to Pieces OS (a recording httpx transport under the factory's client),
# that nothing escapes unhandled, and how the link comes back once the fault is lifted.

# The spec 8.4 texts, written out here so a wrong table in the domain shows up too.
SPEC_8_4 = {
    FailureKind.SERVICE_UNAVAILABLE: (
        "Service Unavailable",
        "Pieces integration service is temporarily unavailable. Core AIWFE functionality "
        "remains available.",
        ["Retry in a few moments", "Check System Status", "Continue without Pieces"],
    ),
    FailureKind.NOT_RUNNING: (
        "Pieces OS Not Running",
        "Could not connect to your local Pieces OS. Please ensure Pieces OS is running on your "
        "machine to enable context synchronization and enhanced developer features.",
        [
            "Download Pieces OS",
            "Check if Pieces OS is running",
            "Retry Connection",
            "Continue without Pieces",
        ],
    ),
}
HEALTH = "/.well-known/health"


def assert_spec_message(message: UserMessage | None, kind: FailureKind) -> None:
    title, text, labels = SPEC_8_4[kind]
    assert message is not None
    assert (message.title, message.message) == (title, text)
    assert [action.label for action in message.actions] == labels


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    outcome: int | str  # the status, or the name of the transport error


class RecordingTransport(httpx.AsyncBaseTransport):
    """Every request the factory's clients send, with its status or transport error."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.log: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.inner.handle_async_request(request)
        except Exception as exc:
            self.log.append(Exchange(request.method, request.url.path, type(exc).__name__))
            raise
        self.log.append(Exchange(request.method, request.url.path, response.status_code))
        return response

    async def aclose(self) -> None:
        return None  # shared by every client the factory builds; the test closes `inner`

    def since(self, start: int) -> list[Exchange]:
        return self.log[start:]


async def eventually(predicate: Callable[[], bool], within: float) -> None:
    """Polls what no event announces (whether the emulator is listening)."""
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not so within {within} s")


async def until_refused(emulator: EmulatorHandle, within: float) -> None:
    """Until the port really refuses (uvicorn stops accepting a moment after it is told to)."""
    for _ in range(int(within / 0.01)):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", emulator.server.port)
        except ConnectionRefusedError:
            return
        except ConnectionResetError:  # closing while we knocked: look again
            pass
        else:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await asyncio.sleep(0.01)
    raise AssertionError(f"still accepting connections after {within} s")


@contextlib.asynccontextmanager
async def nothing_unhandled() -> AsyncIterator[None]:
    """Fails the test if any task dies unobserved or the stream loop logs an unexpected crash."""
    loop = asyncio.get_running_loop()
    crashes: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: crashes.append(context))
    try:
        with structlog.testing.capture_logs() as logs:
            yield
    finally:
        loop.set_exception_handler(previous)
    assert crashes == []
    assert not [entry for entry in logs if entry["log_level"] in ("error", "critical")]


@contextlib.asynccontextmanager
async def faulty(
    assets: int = 2, seed: int = 0, **options: Any
) -> AsyncIterator[tuple[EmulatorHandle, Harness, RecordingTransport]]:
    recorder = RecordingTransport()
    async with running_emulator(assets=assets, seed=seed) as emulator, nothing_unhandled():
        harness = Harness(emulator, transport=recorder, **options)
        try:
            async with harness.connections:
                yield emulator, harness, recorder
        finally:
            emulator.clear_faults()  # wakes anything still hung, even when not listening
            await recorder.inner.aclose()


CONNECT_FAULTS = [
    pytest.param({"error_rate": 1.0, "error_status": 503}, 503, id="error-rate-1.0-503"),
    pytest.param({"error_rate": 1.0, "error_status": 500}, 500, id="error-rate-1.0-500"),
    pytest.param({"latency_ms": 1500}, "ReadTimeout", id="latency-beyond-timeout"),
    pytest.param({"hang": True}, "ReadTimeout", id="hung"),
]


@pytest.mark.parametrize(("fault", "outcome"), CONNECT_FAULTS)
async def test_connect_under_a_fault_reports_service_unavailable_until_retried(
    fault: dict[str, Any], outcome: int | str
) -> None:
    """Pieces OS is there but cannot answer (5xx, or nothing in time): "Service Unavailable",
    not "not running" nor "network". The reads are retried, nothing is registered, and the
    documented retry connects once the fault is lifted."""
    async with faulty(timeout=0.3) as (emulator, harness, recorder):
        await emulator.control("POST", "/faults", fault)
        started = time.perf_counter()
        result = await harness.connect()
        assert time.perf_counter() - started < 3.0

        kind = FailureKind.SERVICE_UNAVAILABLE
        assert not result.success and result.state is ConnectionState.CONNECTION_FAILED
        assert result.failure is kind and result.pieces_info is None
        assert not result.initial_sync_scheduled
        assert_spec_message(result.user_message, kind)
        assert result.message == SPEC_8_4[kind][1]
        # The health read was tried three times (idempotent), and nothing else was sent.
        assert recorder.log == [Exchange("GET", HEALTH, outcome)] * 3
        assert harness.states() == [ConnectionState.CONNECTING, ConnectionState.CONNECTION_FAILED]
        status = await harness.pieces.status("u1")
        assert not status.connected and status.state is ConnectionState.CONNECTION_FAILED
        assert status.failure is kind
        assert_spec_message(status.user_message, kind)
        assert harness.store.rows["u1"].connection.state == "connection_failed"
        assert emulator.state.applications == {}

        await asyncio.sleep(0.3)  # a user-initiated connect does not retry in the background
        assert harness.state() is ConnectionState.CONNECTION_FAILED and len(recorder.log) == 3

        await emulator.control("POST", "/faults/clear")
        status = await harness.pieces.retry("u1")  # "Retry in a few moments"
        assert status is not None and status.connected
        assert status.state is ConnectionState.CONNECTED and status.user_message is None
        await harness.wait_for(lambda: len(harness.frames) == 1)  # the stream runs
        assert harness.store.rows["u1"].connection.state == "connected"
        assert len(emulator.state.applications) == 1


PARTIAL_RATE_SEED = 44  # with this seed the emulator's 50 % draws cover every case below


async def test_a_partial_error_rate_retries_reads_never_the_registration_and_gets_through() -> None:
    async with faulty(seed=PARTIAL_RATE_SEED) as (emulator, harness, recorder):
        await emulator.control("POST", "/faults", {"error_rate": 0.5, "error_status": 503})
        attempts: list[list[Exchange]] = []
        connected = False
        for attempt in range(6):
            start = len(recorder.log)
            if attempt == 0:
                connected = (await harness.connect()).success
            else:
                status = await harness.pieces.retry("u1")
                assert status is not None
                connected = status.connected
            exchanges = recorder.since(start)
            attempts.append(exchanges)
            registrations = [e for e in exchanges if e.path == "/connect"]
            assert len(registrations) <= 1, "POST /connect is never retried"
            for failed, following in zip(exchanges, exchanges[1:], strict=False):
                if failed.outcome == 503 and failed.method == "GET":
                    assert following.path == failed.path, "a failed read is retried at once"
            if connected:
                assert harness.state() is ConnectionState.CONNECTED
                break
            assert harness.state() is ConnectionState.CONNECTION_FAILED
            last = harness.events[-1]
            assert last.failure is FailureKind.SERVICE_UNAVAILABLE
            assert_spec_message(last.message, FailureKind.SERVICE_UNAVAILABLE)
            final = exchanges[-1]
            assert final.outcome == 503
            if final.method == "GET":  # a read gives up only after its three tries
                assert exchanges[-3:] == [final] * 3
        assert connected, "the user's retries get through a 50 % error rate"

        # What this seed is for: a registration answered 503 ended its attempt untried again,
        # a read gave up after three 503s, and reads that failed then succeeded on a retry.
        everything = [e for exchanges in attempts for e in exchanges]
        assert Exchange("POST", "/connect", 503) in everything
        assert any(ex[-1] == Exchange("POST", "/connect", 503) for ex in attempts[:-1])
        assert any(ex[-1].method == "GET" for ex in attempts[:-1])
        assert any(
            a.outcome == 503 and b == Exchange(a.method, a.path, 200)
            for a, b in zip(attempts[-1], attempts[-1][1:], strict=False)
        )
        assert [e for e in attempts[-1] if e.path == "/connect"] == [
            Exchange("POST", "/connect", 200)
        ]
        await emulator.control("POST", "/faults/clear")
        await harness.wait_for(lambda: len(harness.frames) == 1)


LIVE_FAULTS = [
    pytest.param({"error_rate": 1.0, "error_status": 503}, id="error-rate-1.0-503"),
    pytest.param({"error_rate": 1.0, "error_status": 500}, id="error-rate-1.0-500"),
    pytest.param({"latency_ms": 1500}, id="latency-beyond-timeout"),
    pytest.param({"hang": True}, id="hung"),
]


@pytest.mark.parametrize("fault", LIVE_FAULTS)
async def test_a_live_connection_hit_by_a_fault_says_so_and_heals_on_its_own(
    fault: dict[str, Any],
) -> None:
    """The stream drops while Pieces OS answers 5xx or nothing: each reconnect attempt fails
    with "Service Unavailable" (the re-registration, a POST, is sent once per attempt and
    never retried), and the link comes back by itself, resynchronised, once it is lifted."""
    async with faulty(timeout=0.3, base_delay=0.3, max_delay=0.6) as (emulator, harness, rec):
        assert (await harness.connect()).success
        await harness.wait_for(lambda: len(harness.frames) == 1)
        kind = FailureKind.SERVICE_UNAVAILABLE
        start, before = len(rec.log), len(harness.events)
        await emulator.control("POST", "/faults", fault)
        await emulator.control("POST", "/streams/drop")

        def failed_attempts() -> list[ConnectionStateChanged]:
            return [
                e
                for e in harness.events[before:]
                if e.previous is ConnectionState.CONNECTING
                and e.current is ConnectionState.DISCONNECTED
            ]

        await harness.wait_for(lambda: bool(failed_attempts()))
        failing = failed_attempts()[0]
        assert failing.failure is kind and failing.retry_in is not None
        assert_spec_message(failing.message, kind)
        status = await harness.pieces.status("u1")
        assert not status.connected and status.sync_status == "error"
        if status.state is ConnectionState.DISCONNECTED:  # not caught mid-attempt
            assert status.failure is kind
            assert_spec_message(status.user_message, kind)

        await emulator.control("POST", "/faults/clear")
        frames = len(harness.frames)
        await harness.wait_for(lambda: harness.state() is ConnectionState.CONNECTED)
        await harness.wait_for(lambda: len(harness.frames) > frames)
        assert all(e.snapshot for e in harness.frames[-1])  # resynchronised after the outage

        # The dropped stream itself, then attempts that each failed with `kind`, then back.
        during = harness.events[before:]
        failures = failed_attempts()
        assert (during[0].current, during[0].failure) == (
            ConnectionState.DISCONNECTED,
            FailureKind.NETWORK,
        )
        assert [e.current for e in during[1:]] == [
            ConnectionState.CONNECTING,
            ConnectionState.DISCONNECTED,
        ] * len(failures) + [ConnectionState.CONNECTING, ConnectionState.CONNECTED]
        assert {e.failure for e in failures} == {kind}
        assert during[-1].failure is None and during[-1].message is None
        registrations = [e.outcome for e in rec.since(start) if e.path == "/connect"]
        if "error_rate" in fault:
            # One POST /connect per reconnect attempt, each failed one sent once (never
            # retried), then the one that succeeded.
            assert registrations == [fault["error_status"]] * len(failures) + [200]
        else:
            # Nothing answered the stream's handshake, so nothing was registered until then.
            assert registrations == [200]


async def test_refusal_through_the_control_endpoint_reports_not_running_and_heals() -> None:
    async with faulty(base_delay=0.1, max_delay=0.4) as (emulator, harness, recorder):
        assert (await harness.connect()).success
        await harness.wait_for(lambda: len(harness.frames) == 1)
        before = len(harness.events)
        assert await emulator.control("POST", "/refuse", {"seconds": 1.0}) == {"refusing_for": 1.0}
        kind = FailureKind.NOT_RUNNING
        await harness.wait_for(lambda: any(e.failure is kind for e in harness.events[before:]))
        assert not emulator.server.listening
        refused = next(e for e in harness.events[before:] if e.failure is kind)
        assert refused.current is ConnectionState.DISCONNECTED and refused.retry_in is not None
        assert_spec_message(refused.message, kind)
        status = await harness.pieces.status("u1")
        assert not status.connected
        frames = len(harness.frames)
        await harness.wait_for(lambda: harness.state() is ConnectionState.CONNECTED, within=5)
        await harness.wait_for(lambda: len(harness.frames) > frames)
        assert emulator.server.listening
        assert len(emulator.state.applications) == 2  # registered again on the way back


async def test_connect_while_refused_through_the_control_endpoint_then_retry() -> None:
    async with faulty() as (emulator, harness, recorder):
        await emulator.control("POST", "/refuse", {"seconds": 1.5})
        await until_refused(emulator, within=2)
        result = await harness.connect()
        kind = FailureKind.NOT_RUNNING
        assert not result.success and result.state is ConnectionState.CONNECTION_FAILED
        assert result.failure is kind
        assert_spec_message(result.user_message, kind)
        assert recorder.log == [Exchange("GET", HEALTH, "ConnectError")] * 3
        await eventually(lambda: emulator.server.listening, within=3)
        status = await harness.pieces.retry("u1")  # "Retry Connection"
        assert status is not None and status.connected
        await harness.wait_for(lambda: len(harness.frames) == 1)


async def test_a_skewed_clock_shows_in_every_timestamp_the_emulator_writes() -> None:
    """The fault simulation's clock skew (#20) is real: Pieces OS's own timestamps move."""
    async with running_emulator() as emulator:
        client = make_client(emulator.url)
        try:
            await client.connect()
            emulator.set_faults(clock_skew_seconds=-7200)
            behind = await client.create_asset("u1", AssetDraft(content="a = 1", language="py"))
            emulator.set_faults(clock_skew_seconds=3600)
            edited = await client.update_asset("u1", behind.id, AssetChanges(content="a = 2"))
            emulator.clear_faults()
            on_time = await client.create_asset("u1", AssetDraft(content="b = 1", language="py"))
        finally:
            await client.aclose()
    now = datetime.now(UTC)
    assert behind.updated_at is not None and edited.updated_at is not None
    assert abs((now - behind.updated_at).total_seconds() - 7200) < 60
    assert abs((edited.updated_at - now).total_seconds() - 3600) < 60
    assert on_time.updated_at is not None
    assert abs((now - on_time.updated_at).total_seconds()) < 60
