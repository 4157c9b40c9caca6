"""The Pieces integration endpoints through the app, against an emulator (spec 6.1, 7.1)."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from pieces_integration.adapters.pieces_os.client import ClientSettings
from pieces_integration.adapters.pieces_os.discovery import PortScanDetector
from pieces_integration.adapters.pieces_os.endpoint_guard import ResolvingEndpointGuard
from pieces_integration.adapters.pieces_os.factory import (
    DirectPiecesOSFactory,
    identifier_stream_factory,
)
from pieces_integration.bootstrap import Container
from pieces_integration.bootstrap.pieces import audit_to
from pieces_integration.domain.model import ConnectionKind, Role
from pieces_integration.domain.secrets import connection_secret_binding
from pieces_integration.entrypoints.api.routes import pieces as pieces_routes
from pieces_integration.service_layer.pieces import PiecesConnections, PiecesIntegration, publish_to
from pieces_integration.service_layer.pieces.store import UowPiecesConnectionStore
from tests.e2e.conftest import TokenFactory
from tests.e2e.helpers import emulator_thread
from tests.net import closed_ports

BASE = "/api/v1/integrations/pieces"


@pytest.fixture
def pieces_api(api: TestClient, container: Container) -> TestClient:
    """Wire the Pieces integration the way bootstrap would, with scan ports nobody uses."""
    if not any(getattr(r, "path", "").startswith(BASE) for r in api.app.routes):  # type: ignore[attr-defined]
        api.app.include_router(pieces_routes.router)  # type: ignore[attr-defined]
    ports = closed_ports(4)
    http = httpx.AsyncClient()
    guard = ResolvingEndpointGuard()
    connections = PiecesConnections(
        publish=publish_to(container.events),
        stream_factory=identifier_stream_factory(),
        base_delay=0.05,
        max_delay=0.2,
    )
    integration = PiecesIntegration(
        guard=guard,
        detector=PortScanDetector(http, ports=ports[:3], legacy_ports=ports[3:]),
        factory=DirectPiecesOSFactory(ClientSettings(timeout=5.0), guard=guard),
        store=UowPiecesConnectionStore(container.uow),
        connections=connections,
        encrypt=container.secrets.encrypt,
        default_url=f"http://127.0.0.1:{ports[0]}",
        audit=audit_to(container.uow),
    )
    # The route's dependency, swapped the FastAPI way (the container's own stays as built).
    overrides = api.app.dependency_overrides  # type: ignore[attr-defined]
    overrides[pieces_routes.get_pieces] = lambda: integration
    container.on_close(http.aclose)
    container.on_close(lambda: connections.__aexit__(None, None, None))
    return api


def test_detect_finds_the_emulator_and_refuses_public_urls(
    pieces_api: TestClient, auth: TokenFactory
) -> None:
    headers = auth("alice")
    with emulator_thread() as emulator:
        found = pieces_api.post(f"{BASE}/detect", json={"url": emulator.base_url}, headers=headers)
    assert found.status_code == 200, found.text
    assert found.json()["available"] and found.json()["version"] == "12.3.4"

    nothing = pieces_api.post(f"{BASE}/detect", json={}, headers=headers)
    assert nothing.status_code == 200
    body = nothing.json()
    assert not body["available"] and body["message"]["title"] == "Pieces OS Not Running"
    assert "Download Pieces OS" in [a["label"] for a in body["message"]["actions"]]

    for url in ("http://8.8.8.8:39300", "http://[::ffff:8.8.8.8]:1000", "http://0.0.0.0:1000"):
        refused = pieces_api.post(f"{BASE}/detect", json={"url": url}, headers=headers)
        assert refused.status_code == 422, url
        assert refused.json()["type"].endswith(":unsafe_endpoint")
        assert "loopback, private" in refused.json()["detail"]

    assert pieces_api.post(f"{BASE}/detect", json={}).status_code == 401


def test_connect_status_and_disconnect(
    pieces_api: TestClient, auth: TokenFactory, container: Container
) -> None:
    alice = auth("alice")
    with emulator_thread(assets=3) as emulator:
        connected = pieces_api.post(
            f"{BASE}/connect",
            json={"pieces_url": emulator.base_url, "api_key": "pieces-secret-key"},
            headers=alice,
        )
        assert connected.status_code == 200, connected.text
        result = connected.json()
        assert result["success"] and result["state"] == "connected"
        assert result["pieces_info"]["version"] == "12.3.4"
        assert result["pieces_info"]["user_id"] == emulator.state.user_id

        status = pieces_api.get(f"{BASE}/status", headers=alice).json()
        assert status["connected"] and status["connection_id"] == result["connection_id"]
        assert status["pieces_info"]["asset_count"] == 3

        # Another user cannot look at alice's link; an admin can.
        assert (
            pieces_api.get(f"{BASE}/status", params={"user_id": "alice"}, headers=auth("bob"))
        ).status_code == 403
        admin = auth("root", Role.ADMIN)
        as_admin = pieces_api.get(f"{BASE}/status", params={"user_id": "alice"}, headers=admin)
        assert as_admin.json()["connected"]

        gone = pieces_api.post(
            f"{BASE}/disconnect", json={"preserve_data": True}, headers=alice
        ).json()
        assert gone == {"success": True, "user_id": "alice", "data_preserved": True}
        after = pieces_api.get(f"{BASE}/status", headers=alice).json()
        assert not after["connected"] and after["state"] == "disconnected"
        assert after["connection_id"] == result["connection_id"]

    sealed = pieces_api.portal.call(_sealed_secret, container, "alice")  # type: ignore[union-attr]
    assert sealed is not None and b"pieces-secret-key" not in sealed
    binding = connection_secret_binding("alice", ConnectionKind.PIECES)
    assert container.secrets.decrypt(sealed, binding) == "pieces-secret-key"

    pieces_api.post(f"{BASE}/disconnect", json={"preserve_data": False}, headers=alice)
    assert pieces_api.get(f"{BASE}/status", headers=alice).json()["connection_id"] is None

    # Connections made and dropped are in the audit log, without the API key.
    audit = pieces_api.get(
        "/api/v1/audit", params={"user_id": "alice"}, headers=auth("root", Role.ADMIN)
    )
    assert audit.status_code == 200, audit.text
    trail = [
        (row["action"], row["actor_id"], row["details"].get("data_preserved"))
        for row in sorted(audit.json(), key=lambda row: row["at"])
        if row["action"].startswith("pieces_")
    ]
    assert trail == [
        ("pieces_connected", "alice", None),
        ("pieces_disconnected", "alice", True),
        ("pieces_disconnected", "alice", False),
    ]
    assert "pieces-secret-key" not in audit.text


async def _sealed_secret(container: Container, user_id: str) -> bytes | None:
    async with container.uow(readonly=True) as uow:
        return await uow.connections.get_secret_ciphertext(user_id, ConnectionKind.PIECES)


def test_connect_when_pieces_is_not_running_explains_what_to_do(
    pieces_api: TestClient, auth: TokenFactory
) -> None:
    port = closed_ports(1)[0]
    response = pieces_api.post(
        f"{BASE}/connect", json={"url": f"http://127.0.0.1:{port}"}, headers=auth("carol")
    )
    assert response.status_code == 200
    body = response.json()
    assert not body["success"] and body["state"] == "connection_failed"
    assert body["failure"] == "not_running"
    assert body["user_message"]["title"] == "Pieces OS Not Running"
    status = pieces_api.get(f"{BASE}/status", headers=auth("carol")).json()
    assert status["state"] == "connection_failed" and not status["connected"]
    audit = pieces_api.get(
        "/api/v1/audit", params={"user_id": "carol"}, headers=auth("root", Role.ADMIN)
    ).json()
    failed = [row for row in audit if row["action"] == "pieces_connect_failed"]
    assert [row["details"]["failure"] for row in failed] == ["not_running"]


def test_connect_refuses_a_public_url(pieces_api: TestClient, auth: TokenFactory) -> None:
    response = pieces_api.post(
        f"{BASE}/connect", json={"pieces_url": "http://1.1.1.1:39300"}, headers=auth("dave")
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith(":unsafe_endpoint")
