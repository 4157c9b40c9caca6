"""The app runs the embedded vector store's maintenance: after enough writes through the API
it optimises the store (the counter moves) and search keeps answering correctly."""

from __future__ import annotations

import asyncio
import time

from fastapi.testclient import TestClient

from pieces_integration.adapters.sql import migrate
from pieces_integration.bootstrap import Overrides, bootstrap
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.app import create_app
from tests.e2e.helpers import create
from tests.fakes import HashingEmbedder

SEARCH = "/api/v1/assets/search"


def test_the_app_optimises_the_embedded_store_after_enough_writes() -> None:
    settings = load_settings(
        intelligence={"vector_optimize_min_writes": 20, "vector_optimize_quiet_seconds": 0}
    )
    migrate.upgrade(settings.sqlalchemy_url)
    container = bootstrap(settings, Overrides(embedder=HashingEmbedder()))
    container.search.indexer.settle_seconds = 3_600  # only keyword writes count
    maintenance = container.search.maintenance
    assert maintenance is not None  # the embedded store
    maintenance.poll_seconds = 0.05

    def optimisations() -> float:
        registry = container.metrics.registry
        return sum(
            registry.get_sample_value("pieces_vector_optimizations_total", {"result": r}) or 0.0
            for r in ("optimized", "unchanged")
        )

    try:
        with TestClient(create_app(settings, container=container)) as api:
            token = container.jwt.issue("alice", Role.USER, ttl_seconds=600)
            alice = {"Authorization": f"Bearer {token}"}
            for n in range(19):
                create(api, alice, name=f"helper {n}", content=f"def helper_{n}(): pass")
            time.sleep(0.3)
            assert optimisations() == 0  # 19 keyword-tier writes: below the threshold
            target = create(api, alice, name="retry", content="def retry_with_backoff(): ...")
            deadline = time.monotonic() + 60
            while optimisations() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert optimisations() >= 1
            assert maintenance.runs >= 1
            response = api.post(SEARCH, json={"query": "backoff"}, headers=alice)
            assert [r["asset"]["id"] for r in response.json()["results"]] == [target["id"]]
    finally:
        asyncio.run(container.aclose())
