"""Property-based fuzzing of the whole API from its own OpenAPI document (issue 4).

Schemathesis generates requests for every operation in `/openapi.json` and checks each answer:
no 5xx, every status and content type documented, every body valid against its schema. It
runs twice, as a normal user and as an admin, on a fresh embedded database; the rate limit is
off so a 429 never hides what the operation itself does (the limit has its own tests).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
import structlog
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pieces_integration.adapters.pieces_os.endpoint_guard import ResolvingEndpointGuard
from pieces_integration.adapters.sql import migrate
from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.bootstrap import Overrides
from pieces_integration.config import load_settings
from pieces_integration.domain.errors import UnsafeEndpoint
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.app import create_app
from pieces_integration.ports.pieces import SafeEndpoint

_SECRET = "fuzz-secret-0123456789abcdef0123456789abcdef"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


class LoopbackOnlyGuard(ResolvingEndpointGuard):
    """The fuzzer invents Pieces URLs: never let one reach an address off this machine."""

    async def check(self, url: str) -> SafeEndpoint:
        host = (urlsplit(url.strip()).hostname or "") if "://" in url else ""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise UnsafeEndpoint("fuzzing only talks to loopback", field="pieces_url")
        return await super().check(url)


# Schemathesis' pytest integration needs the schema at import time (its lazy fixture loader does
# not work with this pytest), so the app is built here on a throwaway data directory. Every
# setting that could reach a real service is pinned, so the developer's environment is ignored.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="pi-fuzz-"))
SETTINGS = load_settings(
    env="development",
    data_dir=_DATA_DIR,
    database_url=None,
    redis_url=None,
    qdrant_url=None,
    aiwfe_api_url=None,
    auth={"jwt_secret": _SECRET},
    api={"rate_limit_per_minute": 0},
    pieces={"default_timeout": 2000},
)
APP = create_app(SETTINGS, overrides=Overrides(endpoint_guard=LoopbackOnlyGuard()))
# Loaded from the app's own document without a request, so the lifespan (which opens the
# database) starts only when the first case runs, after the fixture below has migrated it.
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def _database() -> Iterator[None]:
    migrate.upgrade(SETTINGS.sqlalchemy_url)
    # Plain-text logs: the default console renderer draws every 500's traceback with rich,
    # which costs seconds per case. Restored afterwards.
    saved = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event"]),
        ],
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**saved)
        # Schemathesis ran the lifespan in its own event-loop thread; stop it before cleanup.
        asgi.shutdown_lifespans()
        shutil.rmtree(_DATA_DIR, ignore_errors=True)


def _headers(user_id: str, role: Role) -> dict[str, str]:
    auth = SETTINGS.auth
    codec = JwtCodec(issuer=auth.jwt_issuer, audience=auth.jwt_audience, secret=_SECRET)
    return {"Authorization": f"Bearer {codec.issue(user_id, role, ttl_seconds=3600)}"}


FUZZ = settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.slow
@schema.parametrize()
@FUZZ
def test_api_as_user(case: Any) -> None:
    case.call_and_validate(headers=_headers("fuzz-user", Role.USER), checks=CHECKS)


@pytest.mark.slow
@schema.parametrize()
@FUZZ
def test_api_as_admin(case: Any) -> None:
    case.call_and_validate(headers=_headers("fuzz-admin", Role.ADMIN), checks=CHECKS)
