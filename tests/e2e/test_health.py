"""Health, readiness, metrics and the problem+json error format, through HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from pieces_integration.adapters.sql import migrate
from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.bootstrap import Container
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.app import create_app
from pieces_integration.observability.metrics import Metrics
from pieces_integration.service_layer.auth import create_api_key

SPEC_METRICS = {
    "pieces_sync_operations_total",
    "pieces_suggestions_generated_total",
    "pieces_sync_duration_seconds",
    "pieces_suggestion_relevance_score",
    "pieces_active_connections",
    "pieces_cache_size_bytes",
}
METRICS_SECRET = "metrics-test-secret-0123456789abcdef0123456789"


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


def _registry_label_names(registry: CollectorRegistry) -> dict[str, set[str]]:
    """Every metric's label names as declared, whether or not it has samples yet.

    `/metrics` shows a labelled metric only once it has a sample, so the exposition alone
    would miss a `user_id` label on a metric nothing has touched; the collectors declare theirs.
    """
    declared: dict[str, set[str]] = {}
    for collector in list(registry._collector_to_names):
        names = getattr(collector, "_labelnames", None)
        for family in collector.describe() or collector.collect():
            labels = declared.setdefault(family.name, set())
            if names is not None:
                labels.update(names)
            labels.update(label for sample in family.samples for label in sample.labels)
    return declared


def test_metrics_expose_the_spec_names_without_user_labels(client: TestClient) -> None:
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    families = list(text_string_to_metric_families(response.text))
    names = {family.name for family in families}
    # The parser strips _total from counter names.
    assert {n.removesuffix("_total") for n in SPEC_METRICS} <= names
    assert 'route="/health"' in response.text

    container: Container = client.app.state.container  # type: ignore[attr-defined]
    declared = _registry_label_names(container.metrics.registry)
    assert {n.removesuffix("_total") for n in SPEC_METRICS} <= set(declared)
    assert declared["pieces_http_requests"] >= {"method", "route", "status"}  # sees labels
    # DEVIATIONS 14: no per-user label on any metric, sampled or not.
    per_user = {
        name: sorted(label for label in labels if "user" in label.lower())
        for name, labels in declared.items()
    }
    assert not {name: labels for name, labels in per_user.items() if labels}
    exposed = {label for f in families for s in f.samples for label in s.labels}
    assert not {label for label in exposed if "user" in label.lower()}


def test_the_label_check_sees_unsampled_labelled_metrics() -> None:
    """The check above is not vacuous: a user label on a metric with no samples is found."""
    metrics = Metrics()
    Counter("pieces_probe_total", "probe", ["user_id"], registry=metrics.registry)
    declared = _registry_label_names(metrics.registry)
    assert declared["pieces_probe"] == {"user_id"}
    assert "user_id" not in metrics.render().decode()  # invisible in the exposition


def _metrics_client(**overrides: Any) -> TestClient:
    return _client(auth={"jwt_secret": METRICS_SECRET}, **overrides)


def _token(role: str) -> dict[str, str]:
    token = JwtCodec(
        issuer="pieces-integration", audience="pieces-integration", secret=METRICS_SECRET
    ).issue("scraper", Role(role), ttl_seconds=300)
    return {"Authorization": f"Bearer {token}"}


def test_metrics_are_open_by_default() -> None:
    with _metrics_client() as c:
        assert c.get("/metrics").status_code == 200


def test_metrics_can_require_admin_or_service_credentials() -> None:
    with _metrics_client(monitoring={"metrics_require_auth": True}) as c:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"X-API-Key": "pk_nope"}):
            refused = c.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "pieces_sync_operations" not in refused.text
        for role in ("user", "guest"):
            assert c.get("/metrics", headers=_token(role)).status_code == 403
        for role in ("admin", "service"):
            allowed = c.get("/metrics", headers=_token(role))
            assert allowed.status_code == 200
            assert "pieces_sync_operations_total" in allowed.text
        container: Container = c.app.state.container  # type: ignore[attr-defined]
        _, key = c.portal.call(  # type: ignore[union-attr]
            partial(
                create_api_key,
                container.uow,
                user_id="prometheus",
                role=Role.SERVICE,
                name="scraper",
                actor_id=None,
            )
        )
        assert c.get("/metrics", headers={"X-API-Key": key}).status_code == 200
        assert c.get("/metrics", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert c.get("/health").status_code == 200  # liveness stays open
        assert c.get("/ready").status_code == 200


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
