"""An app on a fresh embedded database, and tokens for any user and role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pieces_integration.adapters.sql import migrate
from pieces_integration.bootstrap import Container, Overrides
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.app import create_app

TokenFactory = Callable[..., dict[str, str]]


def make_client(overrides: Overrides | None = None, **settings_values: Any) -> TestClient:
    """An app on `load_settings(**settings_values)`, its parts replaced by `overrides`."""
    settings = load_settings(**settings_values)
    if settings.embedded:
        migrate.upgrade(settings.sqlalchemy_url)
    return TestClient(create_app(settings, overrides=overrides), raise_server_exceptions=False)


@pytest.fixture
def api() -> Iterator[TestClient]:
    with make_client() as client:
        yield client


@pytest.fixture
def container(api: TestClient) -> Container:
    container: Container = api.app.state.container  # type: ignore[attr-defined]
    return container


@pytest.fixture
def auth(container: Container) -> TokenFactory:
    """`auth("alice")` -> headers with a bearer token for alice (role user by default)."""

    def headers(user_id: str, role: Role | str = Role.USER, ttl: int = 600) -> dict[str, str]:
        token = container.jwt.issue(user_id, Role(role), ttl_seconds=ttl)
        return {"Authorization": f"Bearer {token}"}

    return headers
