"""Health, readiness, metrics and the problem+json error format, through HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from pieces_integration.adapters.sql import migrate
from pieces_integration.config import load_settings
from pieces_integration.entrypoints.api.app import create_app

SPEC_METRICS = {
    "pieces_sync_operations_total",
    "pieces_suggestions_generated_total",
    "pieces_sync_duration_seconds",
    "pieces_suggestion_relevance_score",
    "pieces_active_connections",
    "pieces_cache_size_bytes",
}


def _client(**overrides: Any) -> TestClient:
    settings = load_settings(**overrides)
    if settings.embedded:
        migrate.upgrade(settings.sqlalchemy_url)
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with _client() as c:
        yield c


def test_health_answers_without_touching_dependencies() -> None:
    # A database URL nobody listens on: liveness must not care.
    with _client(database_url="postgresql://u@127.0.0.1:1/none") as c:
        response = c.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_on_the_embedded_default(client: TestClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert [c["name"] for c in body["checks"]] == ["database"]  # no Redis in this config


def test_ready_is_503_naming_an_unreachable_postgres() -> None:
    with _client(database_url="postgresql://postgres@127.0.0.1:1/test") as c:
        response = c.get("/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["failed_checks"] == ["database"]
    assert "database" in body["detail"]


def test_ready_is_503_naming_an_unreachable_redis() -> None:
    with _client(redis_url="redis://127.0.0.1:1/0") as c:
        response = c.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["failed_checks"] == ["redis"]
    assert {c["name"]: c["status"] for c in body["checks"]} == {
        "database": "healthy",
        "redis": "unhealthy",
    }


@pytest.mark.redis
def test_ready_with_the_real_redis() -> None:
    with _client(redis_url="redis://127.0.0.1:6379/0") as c:
        response = c.get("/ready")
    assert response.status_code == 200
    assert {c["name"] for c in response.json()["checks"]} == {"database", "redis"}


def test_pieces_and_aiwfe_are_reported_but_never_fail_readiness() -> None:
    settings = {
        "aiwfe_api_url": "http://127.0.0.1:1",
        "pieces": {"default_url": "http://127.0.0.1:1"},
    }
    with _client(**settings) as c:
        response = c.get("/ready")
    assert response.status_code == 200
    checks = {c["name"]: c for c in response.json()["checks"]}
    assert checks["pieces_default"]["status"] == "unhealthy"
    assert checks["pieces_default"]["critical"] is False
    assert checks["aiwfe"]["status"] == "unhealthy"


def test_metrics_expose_the_spec_names_without_user_labels(client: TestClient) -> None:
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    families = list(text_string_to_metric_families(response.text))
    names = {family.name for family in families}
    # The parser strips _total from counter names.
    assert {n.removesuffix("_total") for n in SPEC_METRICS} <= names
    labels = {label for f in families for s in f.samples for label in s.labels}
    assert "user_id" not in labels
    assert 'route="/health"' in response.text


def test_every_error_is_problem_json(client: TestClient) -> None:
    missing = client.get("/no/such/route")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 404
    wrong_method = client.delete("/health")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/problem+json"


def test_oversized_body_is_413(client: TestClient) -> None:
    response = client.post("/health", content=b"x" * (3 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["type"].endswith("payload_too_large")


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    echoed = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = client.get("/health", headers={"X-Request-ID": "bad id\n"})
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
