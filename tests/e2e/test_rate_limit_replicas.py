"""The rate limit holds across two service processes sharing Redis (issue 4).

Two real `pieces-integration serve` processes share one Redis (same key prefix) and one JWT
secret, so a single token works on both. Each has its own embedded SQLite data directory: the
state under test is the token bucket in Redis, and users are provisioned on first sight on each
replica, so a shared database would add setup (PostgreSQL schema, migrations) without testing
anything more here.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Role
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SECRET = "replica-test-secret-0123456789abcdef0123456789"
PER_MINUTE, BURST = 60, 10


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"replica exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"replica never became healthy:\n{log.read_text()[-3000:]}")


@pytest.fixture
def replica_env() -> dict[str, str]:
    """Settings on top of the shared ones (a test overrides this fixture to add some)."""
    return {}


@pytest.fixture
def replicas(tmp_path: Path, redis_prefix: str, replica_env: dict[str, str]) -> Iterator[list[str]]:
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for index in range(2):
            port = _free_port()
            data_dir = tmp_path / f"replica{index}"
            log = tmp_path / f"replica{index}.log"
            env = {
                **os.environ,
                "REDIS_URL": REDIS_URL,
                "REDIS_KEY_PREFIX": redis_prefix,
                "JWT_SECRET": SECRET,
                "RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
                "RATE_LIMIT_BURST": str(BURST),
                "PIECES_INTEGRATION_DATA_DIR": str(data_dir),
                **replica_env,
            }
            with log.open("wb") as output:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "pieces_integration", "serve"]
                        + ["--host", "127.0.0.1", "--port", str(port)],
                        env=env,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process, index in zip(urls, processes, range(2), strict=True):
            _wait_healthy(url, process, tmp_path / f"replica{index}.log")
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        keys = list(client.scan_iter(match=f"{redis_prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def _token(user_id: str, tenant: str | None = None) -> dict[str, str]:
    auth = load_settings().auth
    codec = JwtCodec(
        issuer=auth.jwt_issuer, audience=auth.jwt_audience, secret=SECRET, tenant_claim="org_id"
    )
    issued = codec.issue(user_id, Role.USER, ttl_seconds=600, tenant=tenant)
    return {"Authorization": f"Bearer {issued}"}


def test_two_replicas_share_one_bucket_per_user(replicas: list[str], redis_prefix: str) -> None:
    alice = _token("alice-replicas")
    statuses: list[int] = []
    refused: list[httpx.Response] = []
    with httpx.Client(timeout=10.0) as http:
        started = time.monotonic()
        for n in range(30):
            response = http.get(replicas[n % 2] + "/api/v1/assets", headers=alice)
            statuses.append(response.status_code)
            if response.status_code == 429:
                refused.append(response)
            else:
                assert response.status_code == 200, response.text
                assert int(response.headers["RateLimit-Limit"]) == BURST
        elapsed = time.monotonic() - started

        allowed = statuses.count(200)
        # One bucket of 10, refilled at one token a second while the run lasts. Two separate
        # buckets would have let 20 through.
        refill = math.ceil(elapsed * PER_MINUTE / 60)
        assert BURST <= allowed <= BURST + max(1, refill), (statuses, elapsed)
        assert allowed < 2 * BURST
        # Both replicas refused: the bucket they consult is the same one.
        assert {429} <= set(statuses[::2]) and {429} <= set(statuses[1::2])
        for response in refused:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert int(response.headers["Retry-After"]) >= 1
            assert response.headers["RateLimit-Limit"] == str(BURST)
            assert response.headers["RateLimit-Remaining"] == "0"
            assert int(response.headers["RateLimit-Reset"]) >= 1

        # Another user has a bucket of their own, on either replica.
        bob = _token("bob-replicas")
        for url in replicas:
            response = http.get(url + "/api/v1/assets", headers=bob)
            assert response.status_code == 200, response.text

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = {key.decode() for key in client.scan_iter(match=f"{redis_prefix}rl:*")}
    finally:
        client.close()
    assert keys == {f"{redis_prefix}rl:user:alice-replicas", f"{redis_prefix}rl:user:bob-replicas"}


TENANT_BURST = 6


@pytest.mark.parametrize(
    "replica_env",
    [
        {
            "TENANT_CLAIM": "org_id",
            "TENANT_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
            "TENANT_RATE_LIMIT_BURST": str(TENANT_BURST),
        }
    ],
)
def test_two_replicas_share_one_bucket_per_tenant(
    replicas: list[str], redis_prefix: str, replica_env: dict[str, str]
) -> None:
    """Issue 20: users of one tenant, each on their own replica, draw from one tenant
    bucket in Redis; each replica alone would have let a tenant's burst through."""
    members = [_token(f"{name}-tenant", "acme") for name in ("ann", "ben")]
    statuses: list[int] = []
    with httpx.Client(timeout=10.0) as http:
        started = time.monotonic()
        for n in range(2 * TENANT_BURST):
            response = http.get(replicas[n % 2] + "/api/v1/assets", headers=members[n % 2])
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.json()["scope"] == "tenant", response.text
                assert response.headers["RateLimit-Limit"] == str(TENANT_BURST)
            else:
                assert response.status_code == 200, response.text
        elapsed = time.monotonic() - started
        allowed = statuses.count(200)
        refill = math.ceil(elapsed * PER_MINUTE / 60)
        # Each member made 6 requests, within their own burst of 10: only the shared tenant
        # bucket can have refused any, and both replicas did.
        assert TENANT_BURST <= allowed <= TENANT_BURST + max(1, refill), (statuses, elapsed)
        assert {429} <= set(statuses[::2]) and {429} <= set(statuses[1::2])
        # Another tenant's user is unaffected, on either replica.
        other = _token("cid-tenant", "globex")
        for url in replicas:
            assert http.get(url + "/api/v1/assets", headers=other).status_code == 200

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = {key.decode() for key in client.scan_iter(match=f"{redis_prefix}rl:tenant:*")}
    finally:
        client.close()
    assert keys == {f"{redis_prefix}rl:tenant:acme", f"{redis_prefix}rl:tenant:globex"}
