"""`token create`, `apikey create|list|revoke` and the local admin that `serve` creates (issue 4).

The commands run in-process (CliRunner) on the embedded default, in the data directory the
autouse fixture points PIECES_INTEGRATION_DATA_DIR at, so an app built afterwards shares their
database and JWT secret. `serve` runs as a real process for the local admin.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from typer.testing import CliRunner

from pieces_integration.entrypoints.cli.credentials import keys_table
from pieces_integration.entrypoints.cli.main import app
from tests.e2e.conftest import make_client

ASSETS = "/api/v1/assets"


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_token_create_prints_the_token_alone_on_the_last_line() -> None:
    code, out, err = cli("token", "create", "--user", "dana", "--role", "admin", "--ttl", "120")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 1  # stdout is the token and nothing else: TOKEN=$(... | tail -1)
    token = lines[-1]
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", token)
    assert "dana" in err and "admin" in err and "120" in err  # the header goes to stderr

    with make_client() as api:
        headers = {"Authorization": f"Bearer {token}"}
        assert api.get(ASSETS, headers=headers).status_code == 200
        assert api.get("/api/v1/audit", headers=headers).status_code == 200  # the admin role
        assert api.get(ASSETS, headers={"Authorization": f"Bearer {token}x"}).status_code == 401


def test_token_create_ttl_is_the_token_lifetime() -> None:
    _, out, _ = cli("token", "create", "--user", "dana", "--ttl", "300")
    claims = jwt.decode(out.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 300
    assert claims["sub"] == "dana" and claims["role"] == "user"


@pytest.mark.parametrize(
    "args",
    [
        ("token", "create", "--user", "dana", "--role", "bad"),
        ("apikey", "create", "--user", "dana", "--role", "bad"),
    ],
)
def test_a_bad_role_is_one_error_line_and_nothing_else(args: tuple[str, ...]) -> None:
    code, out, err = cli(*args)
    assert code != 0
    assert out == ""  # no token, no key
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "unknown role 'bad'" in lines[0] and "admin, user, service, guest" in lines[0]


def test_token_create_refuses_a_ttl_under_a_minute() -> None:
    code, out, _ = cli("token", "create", "--user", "dana", "--ttl", "5")
    assert code != 0 and out == ""


def _key_lines(out: str) -> list[list[str]]:
    header, *rows = (line.split("\t") for line in out.splitlines())
    assert header == ["id", "user", "name", "role", "prefix", "created", "last used", "state"]
    return rows


def test_apikey_create_list_revoke_round_trip(api: TestClient) -> None:
    code, out, err = cli("apikey", "create", "--user", "svc-ci", "--name", "ci runner")
    assert code == 0, err
    token = out.splitlines()[-1]
    assert out.splitlines() == [token] and token.startswith("pk_")
    key_id = re.search(r"api key (\S+) for svc-ci", err).group(1)  # type: ignore[union-attr]
    assert api.get(ASSETS, headers={"X-API-Key": token}).status_code == 200

    code, out, err = cli("apikey", "list")
    assert code == 0, err
    assert token not in out and token.rsplit("_", 1)[1] not in out  # shown once only
    rows = _key_lines(out)
    assert [(r[0], r[1], r[2], r[3], r[7]) for r in rows] == [
        (key_id, "svc-ci", "ci runner", "service", "active")
    ]
    assert token.startswith(rows[0][4])  # the prefix, to recognise the key by

    # The id as `list` prints it is what `revoke` takes.
    code, out, err = cli("apikey", "revoke", rows[0][0])
    assert code == 0, err
    assert api.get(ASSETS, headers={"X-API-Key": token}).status_code == 401
    assert _key_lines(cli("apikey", "list")[1])[0][7] == "revoked"

    code, _, err = cli("apikey", "revoke", "no-such-key")
    assert code != 0 and "no-such-key" in err


def test_apikey_list_filters_by_user_and_never_cuts_ids(api: TestClient) -> None:
    long_user = "a-service-account-with-a-rather-long-name-" + "x" * 40
    for user in ("svc-a", long_user):
        assert cli("apikey", "create", "--user", user, "--name", "a key name " * 5)[0] == 0
    rows = _key_lines(cli("apikey", "list", "--user", "svc-a")[1])
    assert [r[1] for r in rows] == ["svc-a"]
    rows = _key_lines(cli("apikey", "list")[1])
    assert {r[1] for r in rows} == {"svc-a", long_user}  # whole values when piped
    for row in rows:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", row[0])


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_terminal_table_keeps_each_id_whole(width: int) -> None:
    rows = [
        ("0b6f1d2e-6a3c-4c55-9d1e-4f0e8f2b7a11", "user-" + "y" * 50, "n" * 40, "service")
        + ("pk_0123456789ab", "2026-01-01T00:00:00+00:00", "-", "active")
    ]
    console = Console(width=width, record=True, force_terminal=True, color_system=None)
    console.print(keys_table(rows))
    assert rows[0][0] in console.export_text()


# --- the local admin `serve` creates -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_serve_creates_a_private_admin_key_and_a_one_time_sign_in_code(tmp_path: Path) -> None:
    data = tmp_path / "serve-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIECES_INTEGRATION_")}
    env.update(PIECES_INTEGRATION_DATA_DIR=str(data), PYTHONUNBUFFERED="1")
    port = _free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pieces_integration", "serve"]
            + ["--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(log_path.read_text()[-3000:])
            time.sleep(0.2)
        output = log_path.read_text()
        key_path = data / "local-admin.key"
        assert f"its API key is in {key_path}" in output
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        admin_key = key_path.read_text().strip()
        assert admin_key not in output  # the key itself is never printed
        audit = httpx.get(base + "/api/v1/audit", headers={"X-API-Key": admin_key}, timeout=5)
        assert audit.status_code == 200  # an admin credential

        match = re.search(rf"{re.escape(base)}/api/v1/auth/local-signin\?code=(\S+)", output)
        assert match, output
        first = httpx.get(match.group(0), timeout=5)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["user_id"] == "local-admin" and body["role"] == "admin"
        signed_in = {"Authorization": f"Bearer {body['access_token']}"}
        assert httpx.get(base + "/api/v1/audit", headers=signed_in, timeout=5).status_code == 200

        second = httpx.get(match.group(0), timeout=5)
        assert second.status_code == 401
        assert second.headers["content-type"] == "application/problem+json"
        wrong = httpx.get(base + "/api/v1/auth/local-signin?code=" + "x" * 32, timeout=5)
        assert wrong.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=15)

    with sqlite3.connect(data / "pieces-integration.db") as conn:
        dump = "\n".join(conn.iterdump())
    assert admin_key not in dump  # stored hashed


def test_token_create_names_the_tenant_where_a_tenant_claim_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 20: with TENANT_CLAIM, a CLI token for a user of a tenant keeps the tenant
    (a token without the claim would record the user as having none)."""
    code, _, err = cli("token", "create", "--user", "dana", "--tenant", "acme")
    assert code != 0 and "TENANT_CLAIM" in err
    monkeypatch.setenv("TENANT_CLAIM", "org_id")
    code, out, err = cli("token", "create", "--user", "dana", "--tenant", "acme")
    assert code == 0, err
    claims = jwt.decode(out.strip(), options={"verify_signature": False})
    assert claims["org_id"] == "acme"
    code, out, err = cli("token", "create", "--user", "dana", "--tenant", "two words")
    assert code != 0 and out == "" and "--tenant" in err
