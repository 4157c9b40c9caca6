"""Connect / status / disconnect use cases with fakes at the edge (no network)."""

from __future__ import annotations

import pytest

from pieces_integration.domain.connection_state import ConnectionState, FailureKind
from pieces_integration.domain.errors import InvalidInput, UnsafeEndpoint
from pieces_integration.ports.pieces import PiecesOS, SafeEndpoint
from pieces_integration.service_layer.pieces import PiecesConnections, PiecesIntegration
from pieces_integration.service_layer.pieces.credentials import secret_context, stored_api_key
from tests.fakes import (
    FakePiecesOS,
    MemoryConnectionStore,
    NoPiecesDetector,
    fake_seal,
    fake_unseal,
)

pytestmark = pytest.mark.anyio


class AllowAll:
    def __init__(self) -> None:
        self.checked: list[str] = []

    async def check(self, url: str) -> SafeEndpoint:
        self.checked.append(url)
        if "8.8.8.8" in url:
            raise UnsafeEndpoint("public address", field="pieces_url")
        return SafeEndpoint(url, "127.0.0.1", 39300, ("127.0.0.1",))


class Setup:
    def __init__(self, pieces: FakePiecesOS) -> None:
        self.pieces = pieces
        self.guard = AllowAll()
        self.store = MemoryConnectionStore()
        self.events: list[object] = []

        async def publish(event: object) -> None:
            self.events.append(event)

        self.connections = PiecesConnections(publish=publish)
        self.integration = PiecesIntegration(
            guard=self.guard,
            detector=NoPiecesDetector(),
            factory=self.factory,
            store=self.store,
            connections=self.connections,
            encrypt=fake_seal,
            default_url="http://127.0.0.1:39300",
        )

    async def factory(self, url: str, *, api_key: str | None, user_id: str = "") -> PiecesOS:
        return self.pieces

    async def connect(self, url: str = "http://127.0.0.1:39300", api_key: str | None = None):
        return await self.integration.connect(
            "u1", url, api_key=api_key, preferences={"initial_sync": False}
        )


async def test_connect_stores_the_link_and_seals_the_key() -> None:
    setup = Setup(FakePiecesOS())
    result = await setup.connect(api_key="k-123")
    assert result.success and result.pieces_info is not None
    assert result.pieces_info.asset_count == 2 and not result.initial_sync_scheduled
    stored = setup.store.rows["u1"]
    assert stored.connection.state == "connected" and stored.connection.secret is None
    assert stored.connection.application_id == "app-1"
    assert stored.sealed_secret is not None and b"k-123" not in stored.sealed_secret
    assert await stored_api_key("u1", setup.store, fake_unseal) == "k-123"
    assert secret_context("u1") != secret_context("u2")


async def test_an_incompatible_version_is_refused_and_nothing_is_kept() -> None:
    setup = Setup(FakePiecesOS(version="11.2.0"))
    with pytest.raises(InvalidInput, match="not supported"):
        await setup.connect()
    assert setup.pieces.closed and setup.connections.get("u1") is None


async def test_an_unhealthy_pieces_os_is_reported_as_not_running() -> None:
    setup = Setup(FakePiecesOS(healthy=False))
    result = await setup.connect()
    assert not result.success and result.failure is FailureKind.NOT_RUNNING
    assert setup.pieces.closed


async def test_unsafe_urls_never_reach_pieces() -> None:
    setup = Setup(FakePiecesOS())
    with pytest.raises(UnsafeEndpoint):
        await setup.connect("http://8.8.8.8:39300")
    assert "u1" not in setup.store.rows


async def test_status_and_disconnect_with_and_without_preserving_data() -> None:
    setup = Setup(FakePiecesOS())
    assert (await setup.connect()).success
    status = await setup.integration.status("u1")
    assert status.connected and status.state is ConnectionState.CONNECTED
    kept = await setup.integration.disconnect("u1", preserve_data=True)
    assert kept.data_preserved and setup.pieces.closed
    status = await setup.integration.status("u1")
    assert not status.connected and status.connection_id is not None
    await setup.integration.disconnect("u1", preserve_data=False)
    status = await setup.integration.status("u1")
    assert status.connection_id is None and status.state is ConnectionState.DISCONNECTED


async def test_retry_connects_again_after_a_failed_connect() -> None:
    setup = Setup(FakePiecesOS(down=True))
    failed = await setup.connect()
    assert not failed.success and failed.state is ConnectionState.CONNECTION_FAILED
    setup.pieces.down = False
    status = await setup.integration.retry("u1")
    assert status.connected and status.connection_id == failed.connection_id
    assert setup.store.rows["u1"].connection.state == "connected"


async def test_retry_with_nothing_to_retry_only_reports_the_status() -> None:
    setup = Setup(FakePiecesOS())
    assert (await setup.integration.retry("u1")).state is ConnectionState.DISCONNECTED
    assert (await setup.connect()).success
    status = await setup.integration.retry("u1")
    assert status.connected and setup.events[-1].current is ConnectionState.CONNECTED


async def test_connect_and_disconnect_are_audited_with_the_acting_user() -> None:
    setup = Setup(FakePiecesOS())
    entries = []

    async def audit(entry):
        entries.append(entry)

    setup.integration.audit = audit
    await setup.integration.connect("u1", None, api_key=None, preferences=None, actor_id="admin")
    await setup.integration.disconnect("u1", preserve_data=False)
    assert [(e.action, e.actor_id) for e in entries] == [
        ("pieces_connected", "admin"),
        ("pieces_disconnected", "u1"),
    ]
    assert setup.guard.checked == ["http://127.0.0.1:39300"]  # the default URL
