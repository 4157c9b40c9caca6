"""Every API route, walked from the OpenAPI document, refuses strangers (issue 4).

For each operation under `/api/v1` a request is built from its OpenAPI description: path
parameters name the victim's objects, `user_id` anywhere names the victim, and the JSON body is
a minimal valid instance of the request schema (so a refusal is about authorization, never a
422). Then:

(a) without credentials every operation answers 401, problem+json, with `WWW-Authenticate`;
(b) with another user's token every operation that names the victim answers 403 or 404, and no
    operation's answer contains any of the victim's content;
(c) a guest acting on its own data is refused (403) on every write;

and afterwards the victim's data is exactly as it was. Routes added later are walked too.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import TokenFactory

PREFIX = "/api/v1/"
# Public by design; each is authenticated by something other than a user credential.
SKIPPED = {
    "/api/v1/auth/local-signin": "exchanges the one-time code `serve` prints for a token",
    "/api/v1/integrations/aiwfe/webhook": "authenticated by its HMAC signature (own tests)",
    "/api/v1/integrations/pieces/bridges/pair": "authenticated by the one-time pairing code",
}
# Reads sent as POST: a guest may use them (each changes nothing stored).
READ_ONLY_POSTS = {
    ("POST", "/api/v1/assets/search"),  # spec 6.1 search takes a body
    ("POST", "/api/v1/integrations/pieces/detect"),  # probes for Pieces OS, stores nothing
    ("POST", "/api/v1/ws-ticket"),  # a ticket to read the caller's own live events
}

VICTIM = "victim-walk-7f3a"
ATTACKER = "mallory-walk-2b9c"
GUEST = "guest-walk-5d1e"
ADMIN = "root-walk-9a0f"
# Strings only the victim's data contains: none may reach another caller.
SECRETS = {
    "asset_name": "VictimAssetName-q8zr1",
    "asset_content": "print('VictimSecretContent-k3m9w')",
    "asset_description": "VictimDescription-x7t2p",
    "asset_tag": "victimtag-h4v6",
    "task": "VictimCurrentTask-n5b8d",
    "project": "VictimProject-c2f4g",
    "keyword": "victimkeyword-j9s3",
    "file": "/home/victim/VictimFile-r6y1.py",
    "team_name": "VictimTeamName-w3e5",
}
_HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def is_write(self) -> bool:
        return self.method != "GET" and (self.method, self.path) not in READ_ONLY_POSTS


@dataclass
class Built:
    url: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    names_user: bool = False  # the request addresses another user's data


# --- minimal valid instances of JSON schemas ---------------------------------------------


class Instances:
    """Smallest valid value for a JSON schema: required members, bounds, enums, formats."""

    def __init__(self, document: dict[str, Any], user_id: str) -> None:
        self.components = document.get("components", {}).get("schemas", {})
        self.user_id = user_id

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def value(self, schema: dict[str, Any], name: str = "") -> Any:
        schema = self.resolve(schema)
        if name == "user_id":
            return self.user_id
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.resolve(s) for s in schema[key]]
                chosen = next((s for s in options if s.get("type") != "null"), options[0])
                return self.value(chosen, name)
        if "allOf" in schema:
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged.update(self.resolve(part))
            return self.value(merged, name)
        kind = schema.get("type", "object" if "properties" in schema else "string")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object":
            return self._object(schema)
        if kind == "array":
            item = schema.get("items", {"type": "string"})
            return [self.value(item, name) for _ in range(schema.get("minItems", 0))]
        if kind in ("integer", "number"):
            return self._number(schema, kind)
        if kind == "boolean":
            return True  # e.g. `confirm: true`, so the operation gets as far as authorization
        if kind == "null":
            return None
        return self._string(schema, name)

    def _object(self, schema: dict[str, Any]) -> dict[str, Any]:
        properties = schema.get("properties", {})
        wanted = set(schema.get("required", []))
        if "user_id" in properties:
            wanted.add("user_id")
        return {key: self.value(properties.get(key, {}), key) for key in sorted(wanted)}

    @staticmethod
    def _number(schema: dict[str, Any], kind: str) -> int | float:
        low = schema.get(
            "minimum", schema.get("exclusiveMinimum", 0) + 1 if "exclusiveMinimum" in schema else 1
        )
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 2) - 1)
        chosen = max(low, min(1, high))
        return int(chosen) if kind == "integer" else float(chosen)

    @staticmethod
    def _string(schema: dict[str, Any], name: str) -> str:
        formats = {
            "date-time": datetime(2024, 1, 1, tzinfo=UTC).isoformat(),
            "date": "2024-01-01",
            "uuid": str(uuid.uuid4()),
            "email": "probe@example.com",
            "uri": "http://127.0.0.1:9/",
        }
        if schema.get("format") in formats:
            return str(formats[schema["format"]])
        low, high = schema.get("minLength", 1), schema.get("maxLength", 64)
        candidates = ["probe", "probe-1", "a" * max(low, 1), "1" * max(low, 1), "x1"]
        pattern = schema.get("pattern")
        for text in candidates:
            text = str(text * (low // len(text) + 1))[: max(low, min(len(text), high))]
            if low <= len(text) <= high and (pattern is None or re.search(pattern, text)):
                return text
        raise AssertionError(f"no instance for string schema {schema} ({name}); extend _string")


# --- requests from operations ------------------------------------------------------------


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in document["paths"].items():
        if not path.startswith(PREFIX) or path in SKIPPED:
            continue
        for method in _HTTP_METHODS:
            if method in item:
                found.append(Operation(method.upper(), path, item[method]))
    return found


def build(
    operation: Operation, document: dict[str, Any], user_id: str, ids: dict[str, str]
) -> Built:
    """A valid request for `operation` aimed at `user_id`'s data (ids: path parameter -> id)."""
    instances = Instances(document, user_id)
    path = operation.path
    query: dict[str, Any] = {}
    built = Built(url="")
    for parameter in operation.spec.get("parameters", []):
        name, where = parameter["name"], parameter["in"]
        schema = parameter.get("schema", {})
        if where == "path":
            value = user_id if name == "user_id" else ids.get(name, str(uuid.uuid4()))
            built.names_user = True
            path = path.replace("{" + name + "}", value)
        elif name == "user_id":
            query[name] = user_id
            built.names_user = True
        elif parameter.get("required"):
            value = instances.value(schema, name)
            if where == "query":
                query[name] = value
            elif where == "header":
                built.headers[name] = str(value)
    request_body = operation.spec.get("requestBody", {})
    content = request_body.get("content", {})
    if "application/json" in content:
        schema = content["application/json"].get("schema", {})
        built.body = instances.value(schema)
        if isinstance(built.body, dict) and "user_id" in built.body:
            built.names_user = True
    elif content:
        raise AssertionError(f"{operation.label}: teach build() {sorted(content)}")
    if query:
        path += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    built.url = path
    return built


def send(api: TestClient, operation: Operation, built: Built, headers: dict[str, str]) -> Any:
    kwargs: dict[str, Any] = {"headers": {**built.headers, **headers}}
    if built.body is not None:
        kwargs["json"] = built.body
    return api.request(operation.method, built.url, **kwargs)


# --- the victim ---------------------------------------------------------------------------


@dataclass
class Seeded:
    ids: dict[str, str]
    guest_ids: dict[str, str]
    snapshot: dict[str, Any]


def _snapshot(api: TestClient, auth: TokenFactory, ids: dict[str, str]) -> dict[str, Any]:
    headers = auth(VICTIM)
    reads = {
        "asset": f"/api/v1/assets/{ids['asset_id']}",
        "assets": "/api/v1/assets",
        "context": f"/api/v1/context/{VICTIM}",
        "history": f"/api/v1/context/{VICTIM}/history",
        "team": f"/api/v1/teams/{ids['team_id']}",
        "teams": "/api/v1/teams",
    }
    snapshot = {}
    for key, url in reads.items():
        response = api.get(url, headers=headers)
        assert response.status_code == 200, (url, response.text)
        snapshot[key] = response.json()
    return snapshot


def seed(api: TestClient, auth: TokenFactory) -> Seeded:
    victim = auth(VICTIM)
    created = api.post(
        "/api/v1/assets",
        json={
            "name": SECRETS["asset_name"],
            "content": SECRETS["asset_content"],
            "description": SECRETS["asset_description"],
            "tags": [SECRETS["asset_tag"]],
            "language": "python",
        },
        headers=victim,
    )
    assert created.status_code == 201, created.text
    context = api.post(
        f"/api/v1/context/{VICTIM}",
        json={
            "current_task": SECRETS["task"],
            "active_project": SECRETS["project"],
            "keywords": [SECRETS["keyword"]],
            "active_files": [SECRETS["file"]],
        },
        headers=victim,
    )
    assert context.status_code == 200, context.text
    # A guest cannot create anything; an admin gives it an asset so its writes are refused on
    # its own object (a 403 for the role), not on a missing one.
    guest_asset = api.post(
        "/api/v1/assets",
        json={"name": "guest's", "content": "x = 1", "user_id": GUEST},
        headers=auth(ADMIN, "admin"),
    )
    assert guest_asset.status_code == 201, guest_asset.text
    # The victim's team (issue 16): team routes name it; the guest is a maintainer of its own,
    # so its team writes are refused for the role, not for a missing team.
    team = api.post("/api/v1/teams", json={"name": SECRETS["team_name"]}, headers=victim)
    assert team.status_code == 201, team.text
    guest_team = api.post("/api/v1/teams", json={"name": "guest's"}, headers=auth(ADMIN, "admin"))
    assert guest_team.status_code == 201, guest_team.text
    joined = api.post(
        f"/api/v1/teams/{guest_team.json()['id']}/members",
        json={"user_id": GUEST, "role": "maintainer"},
        headers=auth(ADMIN, "admin"),
    )
    assert joined.status_code == 201, joined.text
    ids = {
        "user_id": VICTIM,
        "asset_id": created.json()["id"],
        "team_id": team.json()["id"],
        "number": "1",  # a revision number
    }
    guest_ids = {
        "user_id": GUEST,
        "asset_id": guest_asset.json()["id"],
        "team_id": guest_team.json()["id"],
        "number": "1",
    }
    return Seeded(ids=ids, guest_ids=guest_ids, snapshot=_snapshot(api, auth, ids))


@pytest.fixture
def walk(api: TestClient, auth: TokenFactory) -> tuple[dict[str, Any], list[Operation], Seeded]:
    document = api.get("/openapi.json").json()
    found = operations(document)
    labels = {operation.label for operation in found}
    # The walk is only as good as the document: it must see the routes we know of.
    assert {
        "GET /api/v1/assets/{asset_id}",
        "POST /api/v1/context/{user_id}",
        "DELETE /api/v1/teams/{team_id}/members/{user_id}",
    } <= labels
    return document, found, seed(api, auth)


def _leaks(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in text]


# --- the checks ---------------------------------------------------------------------------


def test_without_credentials_every_route_is_401(
    api: TestClient, walk: tuple[dict[str, Any], list[Operation], Seeded]
) -> None:
    document, found, seeded = walk
    failures = []
    for operation in found:
        built = build(operation, document, VICTIM, seeded.ids)
        response = send(api, operation, built, {})
        ok = (
            response.status_code == 401
            and response.headers.get("content-type", "").startswith("application/problem+json")
            and response.headers.get("www-authenticate", "").startswith("Bearer")
        )
        if not ok or _leaks(response.text):
            failures.append(f"{operation.label}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)


def test_another_users_token_never_reaches_the_victims_data(
    api: TestClient,
    auth: TokenFactory,
    walk: tuple[dict[str, Any], list[Operation], Seeded],
) -> None:
    document, found, seeded = walk
    attacker = auth(ATTACKER)
    failures, judged = [], 0
    for operation in found:
        built = build(operation, document, VICTIM, seeded.ids)
        response = send(api, operation, built, attacker)
        leaked = _leaks(response.text + json.dumps(dict(response.headers)))
        if leaked:
            failures.append(f"{operation.label}: leaked {leaked}")
        if built.names_user:
            judged += 1
            if response.status_code not in (403, 404):
                failures.append(f"{operation.label}: {response.status_code} {response.text[:200]}")
            elif not response.headers["content-type"].startswith("application/problem+json"):
                failures.append(f"{operation.label}: refusal is not problem+json")
    assert not failures, "\n".join(failures)
    assert judged >= 7  # the known per-user operations at least
    assert _snapshot(api, auth, seeded.ids) == seeded.snapshot


def test_a_guest_may_not_write_even_its_own_data(
    api: TestClient,
    auth: TokenFactory,
    walk: tuple[dict[str, Any], list[Operation], Seeded],
) -> None:
    document, found, seeded = walk
    guest = auth(GUEST, "guest")
    writes = [operation for operation in found if operation.is_write]
    assert len(writes) >= 5
    failures = []
    for operation in writes:
        built = build(operation, document, GUEST, seeded.guest_ids)
        response = send(api, operation, built, guest)
        if response.status_code != 403:
            failures.append(f"{operation.label}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)
    # Reads stay open to the guest on its own data.
    own = api.get(f"/api/v1/assets/{seeded.guest_ids['asset_id']}", headers=guest)
    assert own.status_code == 200
    assert _snapshot(api, auth, seeded.ids) == seeded.snapshot


def test_the_generated_requests_are_valid(
    api: TestClient,
    auth: TokenFactory,
    walk: tuple[dict[str, Any], list[Operation], Seeded],
) -> None:
    """The owner's generated reads are accepted, so a refusal above is never about validity.

    (Writes are covered by the other checks: a 422 there fails them.)
    """
    document, found, seeded = walk
    failures = []
    for operation in found:
        if operation.is_write:
            continue
        built = build(operation, document, VICTIM, seeded.ids)
        response = send(api, operation, built, auth(VICTIM))
        if response.status_code == 422:
            failures.append(f"{operation.label}: {response.text[:200]}")
    assert not failures, "\n".join(failures)
