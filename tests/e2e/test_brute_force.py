"""Brute-force limits (issue 20): guessed credentials from one address are throttled with
429 + Retry-After (problem+json), audited and counted; an attacker guessing a user's key
prefix from elsewhere does not lock that user out."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from pieces_integration.bootstrap import Container
from pieces_integration.domain.errors import RateLimited, Unauthorized
from pieces_integration.domain.model import Role
from pieces_integration.service_layer.auth import RequestMeta, create_api_key
from pieces_integration.service_layer.realtime_protocol import CloseCode
from tests.e2e.conftest import TokenFactory
from tests.e2e.helpers import call

pytestmark = pytest.mark.timeout(60)


def _metric(api: TestClient, name: str) -> float:
    text = api.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def test_sixty_guessed_api_keys_from_one_address_are_throttled_within_the_first_thirty(
    api: TestClient, auth: TokenFactory
) -> None:
    statuses = []
    first_429 = None
    for i in range(60):
        guess = f"pk_{i:012x}_{'x' * 43}"
        response = api.get("/api/v1/assets", headers={"X-API-Key": guess})
        statuses.append(response.status_code)
        if response.status_code == 429 and first_429 is None:
            first_429 = response
    assert set(statuses) <= {401, 429}
    assert 429 in statuses[:30], statuses
    assert statuses[statuses.index(429) :] == [429] * (60 - statuses.index(429))
    assert first_429 is not None
    assert first_429.headers["content-type"].startswith("application/problem+json")
    assert int(first_429.headers["Retry-After"]) >= 1
    assert first_429.json()["type"].endswith(":rate_limited")
    # Locked out: even a valid token from this address waits (the address is the attacker).
    assert api.get("/api/v1/assets", headers=auth("alice")).status_code == 429
    audit = api.app.state.container  # type: ignore[attr-defined]
    entries = call(api, lambda: _audit_actions(audit))
    assert entries.count("sign_in_locked_out") >= 1 and "sign_in_failed" in entries
    assert _metric(api, "pieces_auth_failures_total") >= statuses.index(429)
    assert _metric(api, "pieces_auth_lockouts_total") >= 1


async def _audit_actions(container: Container) -> list[str]:
    async with container.uow(readonly=True) as uow:
        return [entry.action for entry in await uow.audit.entries(limit=1000)]


def test_a_locked_out_address_gets_4029_on_the_websocket(api: TestClient) -> None:
    for i in range(25):
        api.get("/api/v1/assets", headers={"Authorization": f"Bearer not-a-token-{i}"})
    with (
        api.websocket_connect("/ws", headers={"Authorization": "Bearer nope"}) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == CloseCode.TOO_MANY_ATTEMPTS


def test_an_attacker_guessing_a_users_prefix_elsewhere_does_not_lock_the_user_out(
    api: TestClient, container: Container
) -> None:
    authenticator = container.authenticator
    _, token = call(
        api,
        lambda: create_api_key(
            container.uow, user_id="bob", role=Role.USER, name="laptop", actor_id=None
        ),
    )

    async def sign_in(key: str, ip: str) -> str:
        try:
            await authenticator.authenticate(bearer=None, api_key=key, meta=RequestMeta(ip=ip))
        except Unauthorized:
            return "401"
        except RateLimited:
            return "429"
        return "ok"

    home = "192.0.2.10"
    assert call(api, lambda: sign_in(token, home)) == "ok"
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    # A botnet: each address guesses a few times, under its own address limit.
    outcomes = [call(api, lambda ip=f"198.51.100.{n}": sign_in(wrong, ip)) for n in range(12)]
    assert outcomes[:10] == ["401"] * 10 and set(outcomes[10:]) == {"429"}, outcomes
    # Bob, at the address he signed in from before, still gets in; a stranger does not.
    assert call(api, lambda: sign_in(token, home)) == "ok"
    assert call(api, lambda: sign_in(token, "203.0.113.7")) == "429"
    # Other users' keys are not affected by bob's lockout.
    assert call(api, lambda: sign_in("pk_" + "0" * 12 + "_" + "y" * 43, "198.51.100.99")) == "401"


def test_bridge_pairing_codes_are_sign_in_attempts(api: TestClient, auth: TokenFactory) -> None:
    """A wrong pairing code is a failed sign-in (audited, counted, towards the lockout); a
    locked-out address cannot pair even with the right code."""
    bridges = "/api/v1/integrations/pieces/bridges"
    created = api.post(bridges, json={"name": "laptop"}, headers=auth("alice"))
    assert created.status_code == 201, created.text

    def pair(code: str) -> int:
        body = {"code": code, "device_id": "d" * 16, "agent_version": "1.0"}
        return api.post(f"{bridges}/pair", json=body).status_code

    assert pair("WRONG-CODE-0000") == 401
    failures = 'pieces_auth_failures_total{kind="pairing_code"}'
    assert _metric(api, failures) == 1
    container = api.app.state.container  # type: ignore[attr-defined]
    assert "sign_in_failed" in call(api, lambda: _audit_actions(container))
    for i in range(30):  # the same address now guesses API keys until it is locked out
        if (
            api.get("/api/v1/assets", headers={"X-API-Key": f"pk_{i:012x}_{'x' * 43}"}).status_code
            == 429
        ):
            break
    assert pair(created.json()["pairing_code"]) == 429
