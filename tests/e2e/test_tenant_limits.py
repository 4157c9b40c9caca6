"""Rate limits per tenant where configured (issue 20): the users of one tenant (a JWT claim,
recorded on the user for their API keys) share a bucket on top of their own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from pieces_integration.bootstrap import Container
from pieces_integration.domain.model import AuditEntry, Role, User
from pieces_integration.entrypoints.console.session import CSRF_COOKIE, SESSION_COOKIE
from pieces_integration.service_layer.auth import create_api_key
from tests.e2e.conftest import make_client

SECRET = "tenant-test-secret-0123456789abcdef0123456789abcdef"
ISSUER, AUDIENCE = "pieces-integration", "pieces-integration"
ASSETS = "/api/v1/assets"

# One request a minute refills: nothing refills while a test runs.
LIMITS = {
    "rate_limit_per_minute": 1,
    "rate_limit_burst": 3,
    "tenant_rate_limit_per_minute": 1,
    "tenant_rate_limit_burst": 4,
}


def token(user_id: str, **claims: Any) -> dict[str, str]:
    now = int(time.time())
    payload = {"sub": user_id, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    payload.update(claims)
    return {"Authorization": f"Bearer {jwt.encode(payload, SECRET, 'HS256')}"}


@pytest.fixture
def tenants() -> Iterator[TestClient]:
    with make_client(auth={"jwt_secret": SECRET, "tenant_claim": "org_id"}, api=LIMITS) as client:
        yield client


def _container(client: TestClient) -> Container:
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    return container


def new_key(client: TestClient, user_id: str) -> str:
    """Mint an API key through the service layer, on the app's own event loop."""
    job = partial(
        create_api_key,
        _container(client).uow,
        user_id=user_id,
        role=Role.USER,
        name="k",
        actor_id=None,
    )
    _, secret = client.portal.call(job)  # type: ignore[union-attr]
    return secret


def stored_user(client: TestClient, user_id: str) -> User | None:
    async def read() -> User | None:
        async with _container(client).uow(readonly=True) as uow:
            return await uow.users.get(user_id)

    return client.portal.call(read)  # type: ignore[union-attr]


def tenant_changes(client: TestClient, user_id: str) -> list[AuditEntry]:
    async def read() -> list[AuditEntry]:
        async with _container(client).uow(readonly=True) as uow:
            entries = await uow.audit.entries(user_id=user_id, limit=100)
        return [entry for entry in entries if entry.action == "tenant_changed"]

    return client.portal.call(read)  # type: ignore[union-attr]


def test_the_users_of_one_tenant_share_its_bucket(tenants: TestClient) -> None:
    alice, bob = token("alice", org_id="acme"), token("bob", org_id="acme")
    first = tenants.get(ASSETS, headers=alice)
    # The user's bucket (2 of 3 left) is tighter than the tenant's (3 of 4): its headers.
    assert (first.headers["RateLimit-Limit"], first.headers["RateLimit-Remaining"]) == ("3", "2")
    for _ in range(2):
        assert tenants.get(ASSETS, headers=alice).status_code == 200
    last = tenants.get(ASSETS, headers=bob)  # the tenant's last token
    assert last.status_code == 200, last.text
    assert (last.headers["RateLimit-Limit"], last.headers["RateLimit-Remaining"]) == ("4", "0")

    refused = tenants.get(ASSETS, headers=bob)  # bob's own bucket still has two
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["scope"] == "tenant"
    assert "tenant" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Limit"] == "4"
    assert refused.headers["RateLimit-Remaining"] == "0"
    # Refused by the tenant, bob's own bucket was not charged: two left, this takes one.
    limiter = _container(tenants).rate_limiter
    hit = partial(limiter.hit, "user:bob", per_minute=1, burst=3)
    assert tenants.portal.call(hit).remaining == 1  # type: ignore[union-attr]

    # Another tenant, and a user with no tenant, are unaffected.
    assert tenants.get(ASSETS, headers=token("carol", org_id="globex")).status_code == 200
    assert tenants.get(ASSETS, headers=token("dave")).status_code == 200
    # A user over their own limit is told so, not about the tenant.
    own = _exhaust_own(tenants, token("erin", org_id="globex"))
    assert own.status_code == 429 and own.json()["scope"] == "user"
    assert own.headers["RateLimit-Limit"] == "3"


def _exhaust_own(client: TestClient, headers: dict[str, str]) -> Any:
    for _ in range(3):
        assert client.get(ASSETS, headers=headers).status_code == 200
    return client.get(ASSETS, headers=headers)


def test_an_api_key_carries_its_users_recorded_tenant(tenants: TestClient) -> None:
    assert tenants.get(ASSETS, headers=token("alice", org_id="acme")).status_code == 200
    alice_key = new_key(tenants, "alice")
    stranger_key = new_key(tenants, "stranger")  # never signed in: no tenant
    for _ in range(3):  # bob spends the rest of acme's four
        assert tenants.get(ASSETS, headers=token("bob", org_id="acme")).status_code == 200
    refused = tenants.get(ASSETS, headers={"X-API-Key": alice_key})
    assert refused.status_code == 429, refused.text
    assert refused.json()["scope"] == "tenant"
    assert tenants.get(ASSETS, headers={"X-API-Key": stranger_key}).status_code == 200


def test_a_changed_claim_updates_the_users_tenant_once_and_is_audited(
    tenants: TestClient,
) -> None:
    assert tenants.get(ASSETS, headers=token("alice", org_id="acme")).status_code == 200
    user = stored_user(tenants, "alice")
    assert user is not None and user.tenant == "acme"
    assert tenant_changes(tenants, "alice") == []  # first sight is no change

    for _ in range(2):  # the second sight of the same tenant writes nothing
        tenants.get(ASSETS, headers=token("alice", org_id="globex"))
    user = stored_user(tenants, "alice")
    assert user is not None and user.tenant == "globex"
    changes = tenant_changes(tenants, "alice")
    assert [entry.details for entry in changes] == [{"from": "acme", "to": "globex", "via": "jwt"}]

    tenants.get(ASSETS, headers=token("alice"))  # the claim is gone: no tenant any more
    user = stored_user(tenants, "alice")
    assert user is not None and user.tenant is None
    assert len(tenant_changes(tenants, "alice")) == 2


@pytest.mark.parametrize("value", [42, "", "two words", "x" * 129, ["acme"]])
def test_a_bad_tenant_claim_is_401(tenants: TestClient, value: object) -> None:
    response = tenants.get(ASSETS, headers=token("alice", org_id=value))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "tenant claim 'org_id'" in response.json()["detail"]
    assert stored_user(tenants, "alice") is None


def test_without_a_tenant_claim_configured_tenants_change_nothing() -> None:
    with make_client(auth={"jwt_secret": SECRET}, api=LIMITS) as client:
        alice, bob = token("alice", org_id="acme"), token("bob", org_id="acme")
        assert _exhaust_own(client, alice).status_code == 429
        # With tenants, bob would find acme's bucket spent after one request.
        assert _exhaust_own(client, bob).status_code == 429
        user = stored_user(client, "alice")
        assert user is not None and user.tenant is None


def test_a_console_session_keeps_the_tenant(tenants: TestClient) -> None:
    """The console mints its own session token: it names the tenant, or the session's first
    request would record the user as having none."""
    tenants.get("/console/sign-in")
    bearer = token("alice", org_id="acme")["Authorization"].split(" ", 1)[1]
    signed_in = tenants.post(
        "/console/sign-in",
        data={"credential": bearer, "csrf_token": tenants.cookies[CSRF_COOKIE]},
        follow_redirects=False,
    )
    assert signed_in.status_code in (302, 303), signed_in.text
    session = jwt.decode(tenants.cookies[SESSION_COOKIE], options={"verify_signature": False})
    assert session["org_id"] == "acme"
    assert tenants.get("/console").status_code == 200
    user = stored_user(tenants, "alice")
    assert user is not None and user.tenant == "acme"
    assert tenant_changes(tenants, "alice") == []
