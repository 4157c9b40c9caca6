"""The sides a sync run gets for a user: the live Pieces client, else one opened from the
stored connection and kept only while that connection stays what it was opened from."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pieces_integration.domain.errors import PiecesOSUnavailable
from pieces_integration.domain.model import Side
from pieces_integration.ports.pieces import PiecesOS, SafeEndpoint
from pieces_integration.ports.sync_sides import SyncSide
from pieces_integration.service_layer.connected_sides import ConnectedSides, UnreachableSide
from pieces_integration.service_layer.pieces import PiecesConnections, PiecesIntegration
from tests.fakes import (
    FakePiecesOS,
    FakeSide,
    MemoryConnectionStore,
    NoPiecesDetector,
    fake_seal,
    fake_unseal,
)

pytestmark = pytest.mark.anyio
FIRST_URL = "http://127.0.0.1:39300"
SECOND_URL = "http://127.0.0.1:39301"


@dataclass
class ClientSide(FakeSide):
    """A Pieces side that says which client it talks to."""

    client: PiecesOS | None = None


def side_of(client: PiecesOS, user_id: str) -> SyncSide:
    return ClientSide(Side.PIECES, client=client)


class AllowAll:
    async def check(self, url: str) -> SafeEndpoint:
        return SafeEndpoint(url, "127.0.0.1", 39300, ("127.0.0.1",))


async def nobody_listens(event: object) -> None:
    return None


class TwoReplicas:
    """The user's connect/disconnect handled by one replica; sync runs on another, which
    only sees the stored connection (any replica can sync any user)."""

    def __init__(self) -> None:
        self.store = MemoryConnectionStore()
        self.opened: list[FakePiecesOS] = []
        self.pieces = PiecesIntegration(
            guard=AllowAll(),
            detector=NoPiecesDetector(),
            factory=self.factory,
            store=self.store,
            connections=PiecesConnections(publish=nobody_listens),
            encrypt=fake_seal,
            default_url=FIRST_URL,
        )
        self.syncing_replica = PiecesConnections(publish=nobody_listens)
        self.sides = ConnectedSides(
            store=self.store,
            connections=self.syncing_replica,
            factory=self.factory,
            decrypt=fake_unseal,
            pieces_side=side_of,
        )

    async def factory(self, url: str, *, api_key: str | None, user_id: str = "") -> PiecesOS:
        client = FakePiecesOS(url=url, api_key=api_key)
        self.opened.append(client)
        return client

    async def connect(self, url: str = FIRST_URL, api_key: str | None = None) -> None:
        result = await self.pieces.connect("u1", url, api_key=api_key, preferences=None)
        assert result.success

    async def synced_client(self) -> FakePiecesOS | None:
        side = (await self.sides("u1")).get(Side.PIECES)
        if side is None:
            return None
        assert isinstance(side, ClientSide) and isinstance(side.client, FakePiecesOS)
        return side.client


async def test_an_unchanged_connection_keeps_its_client_across_runs() -> None:
    replicas = TwoReplicas()
    await replicas.connect(api_key="k-1")
    first = await replicas.synced_client()
    assert first is not None and first.url == FIRST_URL and first.api_key == "k-1"
    assert await replicas.synced_client() is first and not first.closed


@pytest.mark.parametrize("preserve_data", [True, False])
async def test_after_a_disconnect_there_is_no_pieces_side_and_the_client_is_closed(
    preserve_data: bool,
) -> None:
    replicas = TwoReplicas()
    await replicas.connect()
    cached = await replicas.synced_client()
    assert cached is not None
    await replicas.pieces.disconnect("u1", preserve_data=preserve_data)
    assert await replicas.sides("u1") == {}
    assert cached.closed


async def test_after_a_url_change_the_side_talks_to_the_new_url() -> None:
    replicas = TwoReplicas()
    await replicas.connect(FIRST_URL)
    old = await replicas.synced_client()
    await replicas.connect(SECOND_URL)
    new = await replicas.synced_client()
    assert old is not None and new is not None
    assert new.url == SECOND_URL and old.closed and not new.closed


async def test_after_an_api_key_change_the_side_uses_the_new_key() -> None:
    replicas = TwoReplicas()
    await replicas.connect(api_key="old-key")
    old = await replicas.synced_client()
    await replicas.connect(api_key="new-key")
    new = await replicas.synced_client()
    assert old is not None and new is not None
    assert new.api_key == "new-key" and old.closed


async def test_a_reconnect_after_a_disconnect_syncs_again() -> None:
    replicas = TwoReplicas()
    await replicas.connect()
    await replicas.synced_client()
    await replicas.pieces.disconnect("u1", preserve_data=True)
    assert await replicas.synced_client() is None
    await replicas.connect()
    again = await replicas.synced_client()
    assert again is not None and not again.closed


async def test_the_live_client_of_this_replica_is_used_first() -> None:
    replicas = TwoReplicas()
    await replicas.connect()
    opened_from_store = await replicas.synced_client()
    live = replicas.syncing_replica.fresh("u1")
    live.client = FakePiecesOS(url=SECOND_URL)
    assert await replicas.synced_client() is live.client
    assert opened_from_store is not None and opened_from_store.closed


async def test_a_stored_connection_that_cannot_be_opened_is_an_unreachable_side() -> None:
    replicas = TwoReplicas()
    await replicas.connect()

    async def refusing(url: str, *, api_key: str | None, user_id: str = "") -> PiecesOS:
        return FakePiecesOS(url=url, down=True)

    sides = ConnectedSides(
        store=replicas.store,
        connections=replicas.syncing_replica,
        factory=refusing,
        decrypt=fake_unseal,
        pieces_side=side_of,
    )
    side = (await sides("u1"))[Side.PIECES]
    assert isinstance(side, UnreachableSide)
    with pytest.raises(PiecesOSUnavailable):
        await side.list_assets()


async def test_aclose_closes_every_client_opened_from_the_store() -> None:
    replicas = TwoReplicas()
    await replicas.connect()
    client = await replicas.synced_client()
    await replicas.sides.aclose()
    assert client is not None and client.closed
