"""`keys generate` / `keys rotate`: the documented rotation procedure, on the embedded SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pieces_integration.adapters.crypto import KeyRing, SecretBox, generate_key
from pieces_integration.adapters.sql import migrate
from pieces_integration.adapters.sql.engine import create_engine
from pieces_integration.adapters.sql.tables import connections
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.config import load_settings
from pieces_integration.domain.model import Connection, ConnectionKind, Consent, Role, User
from pieces_integration.domain.secrets import connection_secret_binding
from pieces_integration.entrypoints.cli.keys import app

USERS = ["ann", "ben", "cy"]
KIND = ConnectionKind.PIECES


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


async def _seed(url: str, sealer: SecretBox) -> None:
    engine = create_engine(url)
    try:
        async with SqlUnitOfWorkFactory(engine)() as uow:
            for user_id in USERS:
                await uow.users.add(User(id=user_id, role=Role.USER, consent=Consent()))
                sealed = sealer.encrypt(f"key-{user_id}", connection_secret_binding(user_id, KIND))
                await uow.connections.save(
                    Connection(id=f"c-{user_id}", user_id=user_id, kind=KIND, url="http://x"),
                    sealed,
                )
            await uow.commit()
    finally:
        await engine.dispose()


async def _ciphertexts(url: str) -> dict[str, bytes]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(connections.c.user_id, connections.c.secret_ciphertext)
            )
            return {row[0]: bytes(row[1]) for row in rows}
    finally:
        await engine.dispose()


@pytest.fixture
def database() -> str:
    url = load_settings().sqlalchemy_url  # under the test's own data dir (conftest)
    Path(url.removeprefix("sqlite+aiosqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(url)
    return url


def test_generate_prints_one_parseable_key_line() -> None:
    code, out, _ = run("generate")
    assert code == 0
    ring = KeyRing.parse(out.strip())
    assert len(ring) == 1 and len(ring.primary.material) == 32
    code, out, _ = run("generate", "--kid", "prod-2025")
    assert out.startswith("prod-2025:")


def test_rotation_procedure_end_to_end(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = generate_key("old"), generate_key("new")
    asyncio.run(_seed(database, SecretBox(KeyRing.parse(old))))

    monkeypatch.setenv("ENCRYPTION_KEY", f"{new},{old}")
    code, out, _ = run("rotate", "--dry-run")
    assert code == 0 and "would rotate: 3" in out and "remaining under old keys: 3" in out

    code, out, _ = run("rotate", "--batch-size", "2")
    assert code == 0, out
    assert "rotated: 3" in out and "remaining under old keys: 0" in out
    assert "key ids before: old=3" in out

    monkeypatch.setenv("ENCRYPTION_KEY", new)  # step 4: the old key is gone
    code, out, _ = run("rotate")
    assert code == 0 and "rotated: 0" in out and "already under primary key: 3" in out
    only_new = SecretBox(KeyRing.parse(new))
    for user_id, sealed in asyncio.run(_ciphertexts(database)).items():
        assert only_new.decrypt(sealed, connection_secret_binding(user_id, KIND)) == (
            f"key-{user_id}"
        )


def test_rotate_exits_non_zero_and_names_a_secret_that_does_not_open(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key("only")
    asyncio.run(_seed(database, SecretBox(KeyRing.parse(generate_key("lost")))))
    monkeypatch.setenv("ENCRYPTION_KEY", key)

    code, out, err = run("rotate")

    assert code == 1
    assert "failed: 3" in out
    assert "ann pieces: stored secret could not be decrypted" in err
    assert "'lost', which is not in ENCRYPTION_KEY" in err


def test_malformed_encryption_key_is_one_clear_line(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCRYPTION_KEY", "new:c2hvcnQ=")
    code, _, err = run("rotate")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "ENCRYPTION_KEY: entry 1 (new): the key must be 32 bytes" in lines[0]
    assert "c2hvcnQ" not in err


def test_rotate_help_documents_the_procedure() -> None:
    code, out, _ = run("rotate", "--help")
    assert code == 0
    for step in ("keys generate", "new FIRST", "keys rotate", "ENCRYPTION_KEY=<new> alone"):
        assert step in " ".join(out.split())
