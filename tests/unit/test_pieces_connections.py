"""Connect / status / disconnect use cases with fakes at the edge (no network)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pieces_integration.domain.connection_state import ConnectionState, FailureKind
from pieces_integration.domain.errors import InvalidInput, PiecesOSUnavailable, UnsafeEndpoint
from pieces_integration.domain.model import Asset, Connection
from pieces_integration.ports.pieces import (
    AssetChanges,
    AssetDraft,
    PiecesHealth,
    PiecesOS,
    PiecesSession,
    PiecesUser,
    SafeEndpoint,
    SearchHit,
    SearchMode,
    StoredConnection,
)
from pieces_integration.service_layer.pieces_connections import (
    PiecesConnections,
    connect_pieces,
    disconnect_pieces,
    pieces_status,
    secret_context,
    stored_api_key,
)

pytestmark = pytest.mark.anyio


@dataclass
class FakePiecesOS:
    version: str = "12.3.4"
    healthy: bool = True
    down: bool = False
    closed: bool = False
    ids: list[str] = field(default_factory=lambda: ["a1", "a2"])

    async def health(self) -> PiecesHealth:
        if self.down:
            raise PiecesOSUnavailable("refused", kind="not_running")
        from pieces_integration.domain.connection_state import is_compatible

        return PiecesHealth(self.healthy, self.version, is_compatible(self.version))

    async def connect(self) -> PiecesSession:
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


class AllowAll:
    def __init__(self) -> None:
        self.checked: list[str] = []

    async def check(self, url: str) -> SafeEndpoint:
        self.checked.append(url)
        if "8.8.8.8" in url:
            raise UnsafeEndpoint("public address", field="pieces_url")
        return SafeEndpoint(url, "127.0.0.1", 39300, ("127.0.0.1",))


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[str, StoredConnection] = {}

    async def get(self, user_id: str) -> StoredConnection | None:
        return self.rows.get(user_id)

    async def save(self, connection: Connection, *, sealed_secret: bytes | None) -> None:
        self.rows[connection.user_id] = StoredConnection(connection, sealed_secret)

    async def delete(self, user_id: str) -> None:
        self.rows.pop(user_id, None)


def seal(plaintext: str, context: str) -> bytes:
    return (context + "|" + plaintext[::-1]).encode()


def unseal(sealed: bytes, context: str) -> str:
    bound, _, reversed_text = sealed.decode().partition("|")
    assert bound == context, "sealed for someone else"
    return reversed_text[::-1]


class Setup:
    def __init__(self, pieces: FakePiecesOS) -> None:
        self.pieces = pieces
        self.guard = AllowAll()
        self.store = MemoryStore()
        self.events: list[object] = []

        async def publish(event: object) -> None:
            self.events.append(event)

        self.connections = PiecesConnections(publish=publish)

    async def factory(self, url: str, *, api_key: str | None) -> PiecesOS:
        return self.pieces

    async def connect(self, url: str = "http://127.0.0.1:39300", api_key: str | None = None):
        return await connect_pieces(
            "u1",
            url,
            api_key=api_key,
            preferences={"initial_sync": False},
            guard=self.guard,
            factory=self.factory,
            store=self.store,
            connections=self.connections,
            encrypt=seal,
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
    assert await stored_api_key("u1", setup.store, unseal) == "k-123"
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
    status = await pieces_status("u1", store=setup.store, connections=setup.connections)
    assert status.connected and status.state is ConnectionState.CONNECTED
    kept = await disconnect_pieces(
        "u1", preserve_data=True, store=setup.store, connections=setup.connections
    )
    assert kept.data_preserved and setup.pieces.closed
    status = await pieces_status("u1", store=setup.store, connections=setup.connections)
    assert not status.connected and status.connection_id is not None
    await disconnect_pieces(
        "u1", preserve_data=False, store=setup.store, connections=setup.connections
    )
    status = await pieces_status("u1", store=setup.store, connections=setup.connections)
    assert status.connection_id is None and status.state is ConnectionState.DISCONNECTED
