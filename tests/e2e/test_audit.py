"""The audit log (issue 4): failed sign-ins, exports and role changes are recorded, and
`GET /api/v1/audit` (admin only) filters them by user and time."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from fastapi.testclient import TestClient

from tests.e2e.conftest import TokenFactory

AUDIT = "/api/v1/audit"


def entries(api: TestClient, admin: dict[str, str], **query: str) -> list[dict[str, Any]]:
    response = api.get(AUDIT, params=query, headers=admin)
    assert response.status_code == 200, response.text
    return list(response.json())


def of(action: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in rows if row["action"] == action]


def test_failed_sign_ins_are_audited_without_the_credential(
    api: TestClient, auth: TokenFactory
) -> None:
    admin = auth("root", "admin")
    forged = jwt.encode(
        {"sub": "alice", "role": "admin", "iss": "x", "aud": "y", "exp": time.time() + 60},
        "not-the-secret-0123456789abcdef0123456789",
        algorithm="HS256",
    )
    bad_key = "pk_0123456789ab_" + "s3cr3t" * 7
    attempts = [
        {"Authorization": f"Bearer {forged}", "X-Request-ID": "req-forged"},
        {"X-API-Key": bad_key, "X-Request-ID": "req-badkey"},
        {"Authorization": "Bearer garbage", "X-Request-ID": "req-garbage"},
    ]
    for headers in attempts:
        assert api.get("/api/v1/assets", headers=headers).status_code == 401
    failed = of("sign_in_failed", entries(api, admin))
    by_request = {row["request_id"]: row for row in failed}
    assert {"req-forged", "req-badkey", "req-garbage"} <= set(by_request)
    for row in by_request.values():
        assert row["actor_id"] is None and row["ip"] == "testclient"
        assert row["details"]["reason"]
    assert "signature" in by_request["req-forged"]["details"]["reason"].lower()
    assert "api key" in by_request["req-badkey"]["details"]["reason"].lower()
    text = json.dumps(failed)
    assert forged not in text and forged.split(".")[2] not in text
    assert bad_key not in text and "s3cr3t" not in text
    # A request with no credential at all is not a sign-in attempt: no row (a scan of the
    # API would otherwise fill the log).
    before = len(of("sign_in_failed", entries(api, admin)))
    assert api.get("/api/v1/assets").status_code == 401
    assert len(of("sign_in_failed", entries(api, admin))) == before


def test_exports_are_audited_with_actor_and_subject(api: TestClient, auth: TokenFactory) -> None:
    alice, admin = auth("alice"), auth("root", "admin")
    created = api.post("/api/v1/assets", json={"name": "a", "content": "b"}, headers=alice)
    assert created.status_code == 201
    assert api.get("/api/v1/users/alice/export", headers=alice).status_code == 200
    assert api.get("/api/v1/users/alice/export", headers=admin).status_code == 200
    refused = api.get("/api/v1/users/alice/export", headers=auth("mallory"))
    assert refused.status_code in (403, 404)

    exports = of("user_exported", entries(api, admin, user_id="alice"))
    assert sorted((row["actor_id"], row["user_id"]) for row in exports) == [
        ("alice", "alice"),
        ("root", "alice"),
    ]
    assert not of("user_exported", entries(api, admin, user_id="mallory"))


def test_a_role_change_from_the_identity_provider_is_audited(
    api: TestClient, auth: TokenFactory
) -> None:
    admin = auth("root", "admin")
    assert api.get("/api/v1/assets", headers=auth("erin", "user")).status_code == 200
    assert not of("role_changed", entries(api, admin, user_id="erin"))
    assert api.get("/api/v1/assets", headers=auth("erin", "admin")).status_code == 200
    assert api.get("/api/v1/assets", headers=auth("erin", "admin")).status_code == 200  # once
    assert api.get("/api/v1/assets", headers=auth("erin", "guest")).status_code == 200

    changes = of("role_changed", entries(api, admin, user_id="erin"))
    assert sorted((row["details"]["from"], row["details"]["to"]) for row in changes) == [
        ("admin", "guest"),
        ("user", "admin"),
    ]
    for row in changes:
        assert row["user_id"] == "erin" and row["actor_id"] == "erin"
        assert row["details"]["via"] == "jwt" and row["request_id"]


def test_the_audit_log_is_admin_only_and_filters_by_user_and_time(
    api: TestClient, auth: TokenFactory
) -> None:
    admin = auth("root", "admin")
    for role in ("user", "service", "guest"):
        refused = api.get(AUDIT, headers=auth("someone", role))
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
    assert api.get(AUDIT).status_code == 401

    api.get("/api/v1/users/frank/export", headers=auth("frank"))
    api.get("/api/v1/users/grace/export", headers=auth("grace"))
    everything = entries(api, admin)
    assert {"frank", "grace"} <= {row["user_id"] for row in everything}
    assert {row["user_id"] for row in entries(api, admin, user_id="frank")} == {"frank"}

    stamps = [datetime.fromisoformat(row["at"]) for row in everything]
    latest = max(stamps)
    if latest.tzinfo is None:
        latest = latest.replace(tzinfo=UTC)
    later = (latest + timedelta(seconds=1)).isoformat()
    assert entries(api, admin, since=later) == []
    assert len(entries(api, admin, until=later)) == len(everything)
    earlier = (latest - timedelta(days=1)).isoformat()
    assert entries(api, admin, until=earlier) == []
    assert len(entries(api, admin, limit="1")) == 1
