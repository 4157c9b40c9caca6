"""Authentication over HTTP (issue 4, spec 8.2): JWT (HS256, RS256, JWKS), API keys, roles and
the rate limit, against the in-process app on a fresh embedded database.

Tokens are signed here with PyJWT, so each test controls every claim; the JWKS document is
served by a small HTTP server on loopback, because the app fetches it over the network.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from pieces_integration.adapters.tokens import JwtCodec
from pieces_integration.bootstrap import Container
from pieces_integration.domain.errors import DependencyUnavailable
from pieces_integration.domain.model import ApiKey, Role
from pieces_integration.service_layer.auth import create_api_key, revoke_api_key
from tests.e2e.conftest import make_client

SECRET = "auth-test-secret-0123456789abcdef0123456789abcdef"
ISSUER, AUDIENCE = "pieces-integration", "pieces-integration"
ASSETS = "/api/v1/assets"
ASSET = {"name": "note", "content": "x = 1\n"}


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "alice",
        "role": "user",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture
def hs256() -> Iterator[TestClient]:
    with make_client(auth={"jwt_secret": SECRET}) as client:
        yield client


def _container(client: TestClient) -> Container:
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    return container


def new_key(client: TestClient, user_id: str, role: Role = Role.SERVICE) -> tuple[ApiKey, str]:
    """Mint an API key through the service layer, on the app's own event loop."""
    job = partial(
        create_api_key,
        _container(client).uow,
        user_id=user_id,
        role=role,
        name=f"{user_id} key",
        actor_id=None,
    )
    key, token = client.portal.call(job)  # type: ignore[union-attr]
    return key, token


# --- HS256 ----------------------------------------------------------------------------------


def test_a_valid_hs256_token_is_accepted(hs256: TestClient) -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    response = hs256.get(ASSETS, headers=bearer(token))
    assert response.status_code == 200, response.text
    created = hs256.post(ASSETS, json=ASSET, headers=bearer(token))
    assert created.status_code == 201 and created.json()["user_id"] == "alice"


def _unsigned(payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


BAD_TOKENS = {
    # Past the 30 s leeway.
    "expired": lambda: jwt.encode(claims(exp=int(time.time()) - 120), SECRET, "HS256"),
    "wrong_issuer": lambda: jwt.encode(claims(iss="https://evil.example"), SECRET, "HS256"),
    "wrong_audience": lambda: jwt.encode(claims(aud="another-service"), SECRET, "HS256"),
    "no_expiry": lambda: jwt.encode(claims(exp=None), SECRET, "HS256"),
    "no_subject": lambda: jwt.encode(claims(sub=None), SECRET, "HS256"),
    "unknown_role": lambda: jwt.encode(claims(role="root"), SECRET, "HS256"),
    "bad_signature": lambda: jwt.encode(claims(), SECRET + "-not-it", "HS256"),
    "tampered_payload": lambda: _tampered(),
    "alg_none": lambda: _unsigned(claims(role="admin")),
    "malformed": lambda: "not-a-jwt",
    "malformed_segments": lambda: "eyJhbGciOiJIUzI1NiJ9.%%%.abc",
}


def _tampered() -> str:
    header, _, signature = jwt.encode(claims(), SECRET, "HS256").split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims(role="admin")).encode()).rstrip(b"=")
    return f"{header}.{payload.decode()}.{signature}"


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_a_bad_token_is_401_problem_with_www_authenticate(hs256: TestClient, name: str) -> None:
    token = BAD_TOKENS[name]()
    assert_401(hs256.get(ASSETS, headers=bearer(token)))
    assert_401(hs256.post(ASSETS, json=ASSET, headers=bearer(token)))


def test_no_credential_is_401(hs256: TestClient) -> None:
    assert_401(hs256.get(ASSETS))
    assert_401(hs256.get(ASSETS, headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"}))


def test_expired_within_the_leeway_is_still_accepted(hs256: TestClient) -> None:
    token = jwt.encode(claims(exp=int(time.time()) - 5), SECRET, "HS256")
    assert hs256.get(ASSETS, headers=bearer(token)).status_code == 200


# --- RS256 with a configured public key -------------------------------------------------------


def test_rs256_with_the_configured_public_key(
    monkeypatch: pytest.MonkeyPatch, signing_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    pem = public_pem(signing_key)
    monkeypatch.setenv("JWT_PUBLIC_KEY", pem)  # the documented environment name
    with make_client() as client:
        good = jwt.encode(claims(), signing_key, algorithm="RS256")
        assert client.get(ASSETS, headers=bearer(good)).status_code == 200
        foreign = jwt.encode(claims(), other_key, algorithm="RS256")
        assert_401(client.get(ASSETS, headers=bearer(foreign)))
        expired = jwt.encode(claims(exp=int(time.time()) - 120), signing_key, algorithm="RS256")
        assert_401(client.get(ASSETS, headers=bearer(expired)))
        wrong_aud = jwt.encode(claims(aud="elsewhere"), signing_key, algorithm="RS256")
        assert_401(client.get(ASSETS, headers=bearer(wrong_aud)))
        # Algorithm confusion: an HS256 token keyed with the public key's own PEM text.
        header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
        body = base64.urlsafe_b64encode(json.dumps(claims(role="admin")).encode()).rstrip(b"=")
        signing_input = header + b"." + body
        mac = hmac.new(pem.encode(), signing_input, hashlib.sha256).digest()
        confused = (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()
        assert_401(client.get(ASSETS, headers=bearer(confused)))
        assert_401(client.get(ASSETS, headers=bearer(_unsigned(claims(role="admin")))))


# --- JWKS --------------------------------------------------------------------------------------


class JwksServer:
    """Serves one JWKS document on loopback; counts fetches; can be slowed down or broken."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.fetches = 0
        self.delay = 0.0
        self.status = 200
        self.fetch_started = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                server.fetch_started.set()
                time.sleep(server.delay)
                body = json.dumps(server.document).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture
def jwks(signing_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    server = JwksServer({"keys": [jwk(signing_key, "key-1")]})
    yield server
    server.close()


def _kid_token(key: rsa.RSAPrivateKey, kid: str | None, **changes: Any) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims(**changes), key, algorithm="RS256", headers=headers)


def test_jwks_keys_verify_tokens_and_are_cached(
    monkeypatch: pytest.MonkeyPatch,
    jwks: JwksServer,
    signing_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey,
) -> None:
    monkeypatch.setenv("JWKS_URL", jwks.url)
    with make_client() as client:
        for user in ("alice", "bob", "alice"):
            token = _kid_token(signing_key, "key-1", sub=user)
            assert client.get(ASSETS, headers=bearer(token)).status_code == 200
        assert jwks.fetches == 1  # one fetch, then the cached key set
        # A known kid but another key's signature; an unknown kid; no kid at all.
        assert_401(client.get(ASSETS, headers=bearer(_kid_token(other_key, "key-1"))))
        assert_401(client.get(ASSETS, headers=bearer(_kid_token(other_key, "key-9"))))
        assert_401(client.get(ASSETS, headers=bearer(_kid_token(signing_key, None))))
        expired = _kid_token(signing_key, "key-1", exp=int(time.time()) - 120)
        assert_401(client.get(ASSETS, headers=bearer(expired)))
        assert_401(client.get(ASSETS, headers=bearer(_unsigned(claims(role="admin")))))
        assert_401(client.get(ASSETS, headers=bearer("not-a-jwt")))


def test_a_rotated_in_jwks_key_is_picked_up(
    monkeypatch: pytest.MonkeyPatch,
    jwks: JwksServer,
    signing_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey,
) -> None:
    monkeypatch.setenv("JWKS_URL", jwks.url)
    with make_client() as client:
        assert client.get(ASSETS, headers=bearer(_kid_token(signing_key, "key-1"))).is_success
        jwks.document = {"keys": [jwk(signing_key, "key-1"), jwk(other_key, "key-2")]}
        # Within the cooldown after a fetch an unknown kid does not refetch (no fetch storm) ...
        assert_401(client.get(ASSETS, headers=bearer(_kid_token(other_key, "key-2"))))
        assert jwks.fetches == 1
        # ... and after it, the new key is fetched once and accepted.
        codec = _container(client).jwt
        codec._jwks._client._last_successful_fetch = time.monotonic() - 60  # type: ignore[union-attr]
        assert client.get(ASSETS, headers=bearer(_kid_token(other_key, "key-2"))).is_success
        assert jwks.fetches == 2


def test_the_jwks_fetch_does_not_block_the_event_loop(
    monkeypatch: pytest.MonkeyPatch, jwks: JwksServer, signing_key: rsa.RSAPrivateKey
) -> None:
    jwks.delay = 2.0
    monkeypatch.setenv("JWKS_URL", jwks.url)
    with make_client() as client:
        token = _kid_token(signing_key, "key-1")
        answers: list[int] = []
        waiting = threading.Thread(
            target=lambda: answers.append(client.get(ASSETS, headers=bearer(token)).status_code)
        )
        waiting.start()
        try:
            assert jwks.fetch_started.wait(10)
            started = time.monotonic()
            assert client.get("/health").status_code == 200
            # A fetch on the loop would hold /health until the JWKS server answers (2 s).
            assert time.monotonic() - started < 1.0
        finally:
            waiting.join(15)
        assert answers == [200]


def test_an_unreachable_jwks_is_503_not_401(
    monkeypatch: pytest.MonkeyPatch, jwks: JwksServer, signing_key: rsa.RSAPrivateKey
) -> None:
    """The caller's token may be fine: the identity provider is down, so retry later."""
    jwks.status = 500
    monkeypatch.setenv("JWKS_URL", jwks.url)
    with make_client() as client:
        response = client.get(ASSETS, headers=bearer(_kid_token(signing_key, "key-1")))
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        jwks.status = 200
        assert client.get(ASSETS, headers=bearer(_kid_token(signing_key, "key-1"))).is_success


@pytest.mark.anyio
async def test_a_slow_jwks_fetch_is_bounded_by_its_timeout(
    jwks: JwksServer, signing_key: rsa.RSAPrivateKey
) -> None:
    jwks.delay = 3.0
    codec = JwtCodec(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks.url, jwks_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable):
        await codec.verify(_kid_token(signing_key, "key-1"))
    assert time.monotonic() - started < 2.0


# --- API keys ----------------------------------------------------------------------------------


def test_api_keys_via_x_api_key_and_bearer(hs256: TestClient) -> None:
    key, token = new_key(hs256, "svc-reporter")
    assert token.startswith("pk_")
    by_header = hs256.post(ASSETS, json=ASSET, headers={"X-API-Key": token})
    assert by_header.status_code == 201, by_header.text
    assert by_header.json()["user_id"] == "svc-reporter"
    by_bearer = hs256.get(ASSETS, headers=bearer(token))
    assert by_bearer.status_code == 200
    assert [a["user_id"] for a in by_bearer.json()] == ["svc-reporter"]

    # Same lookup prefix, wrong secret; a malformed key; a key that was never issued.
    assert_401(hs256.get(ASSETS, headers={"X-API-Key": token[:-4] + "AAAA"}))
    assert_401(hs256.get(ASSETS, headers={"X-API-Key": "pk_short"}))
    assert_401(hs256.get(ASSETS, headers=bearer("pk_0123456789ab_" + "x" * 43)))

    container = _container(hs256)
    hs256.portal.call(partial(revoke_api_key, container.uow, key.id, actor_id=None))  # type: ignore[union-attr]
    assert_401(hs256.get(ASSETS, headers={"X-API-Key": token}))
    assert_401(hs256.get(ASSETS, headers=bearer(token)))


def test_an_api_key_is_stored_hashed_only(hs256: TestClient) -> None:
    key, token = new_key(hs256, "svc-hashed")
    assert hs256.get(ASSETS, headers={"X-API-Key": token}).status_code == 200
    assert_401(hs256.get(ASSETS, headers={"X-API-Key": token + "x"}))
    secret_part = token.rsplit("_", 1)[1]
    database = _container(hs256).settings.data_dir / "pieces-integration.db"
    with sqlite3.connect(database) as conn:
        dump = "\n".join(conn.iterdump())
        (stored_hash,) = conn.execute(
            "SELECT key_hash FROM api_keys WHERE id = ?", (key.id,)
        ).fetchone()
    assert key.prefix in dump  # the row is there ...
    assert token not in dump and secret_part not in dump  # ... but never the key itself
    assert stored_hash == hashlib.sha256(token.encode()).hexdigest()


def test_a_guest_may_read_but_not_write(hs256: TestClient) -> None:
    guest = bearer(jwt.encode(claims(sub="gus", role="guest"), SECRET, "HS256"))
    assert hs256.get(ASSETS, headers=guest).status_code == 200
    refused = hs256.post(ASSETS, json=ASSET, headers=guest)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    _, guest_key = new_key(hs256, "gus-key", Role.GUEST)
    assert hs256.get(ASSETS, headers={"X-API-Key": guest_key}).status_code == 200
    assert hs256.post(ASSETS, json=ASSET, headers={"X-API-Key": guest_key}).status_code == 403
    user = bearer(jwt.encode(claims(sub="gus", role="user"), SECRET, "HS256"))
    assert hs256.post(ASSETS, json=ASSET, headers=user).status_code == 201


# --- rate limiting -------------------------------------------------------------------------------


@pytest.fixture
def limited() -> Iterator[TestClient]:
    # One request a minute refills: nothing refills while the test runs.
    with make_client(
        auth={"jwt_secret": SECRET}, api={"rate_limit_per_minute": 1, "rate_limit_burst": 3}
    ) as client:
        yield client


def _exhaust(client: TestClient, headers: dict[str, str]) -> Any:
    for remaining in (2, 1, 0):
        response = client.get(ASSETS, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Remaining"] == str(remaining)
        assert int(response.headers["RateLimit-Reset"]) > 0
    return client.get(ASSETS, headers=headers)


def test_429_with_retry_after_and_ratelimit_headers(limited: TestClient) -> None:
    alice = bearer(jwt.encode(claims(), SECRET, "HS256"))
    refused = _exhaust(limited, alice)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert int(refused.headers["RateLimit-Reset"]) >= 1
    # Another user has a bucket of their own.
    bob = bearer(jwt.encode(claims(sub="bob"), SECRET, "HS256"))
    assert limited.get(ASSETS, headers=bob).status_code == 200


def test_the_limit_is_per_user_across_all_their_keys_and_tokens(limited: TestClient) -> None:
    """Issue 20: tokens and every API key of a user share one bucket, so minting more keys
    or fresh tokens does not multiply the limit; another user has their own."""
    _, first_key = new_key(limited, "carol", Role.USER)
    _, second_key = new_key(limited, "carol", Role.USER)
    assert _exhaust(limited, {"X-API-Key": first_key}).status_code == 429
    assert limited.get(ASSETS, headers=bearer(first_key)).status_code == 429  # same key
    assert limited.get(ASSETS, headers={"X-API-Key": second_key}).status_code == 429
    another_token = jwt.encode(claims(sub="carol", iat=int(time.time()) - 1), SECRET, "HS256")
    assert limited.get(ASSETS, headers=bearer(another_token)).status_code == 429
    _, dave_key = new_key(limited, "dave", Role.USER)
    assert limited.get(ASSETS, headers={"X-API-Key": dave_key}).status_code == 200


def test_a_zero_limit_turns_limiting_off() -> None:
    with make_client(auth={"jwt_secret": SECRET}, api={"rate_limit_per_minute": 0}) as client:
        alice = bearer(jwt.encode(claims(), SECRET, "HS256"))
        for _ in range(25):
            response = client.get(ASSETS, headers=alice)
            assert response.status_code == 200
        assert "RateLimit-Limit" not in response.headers
