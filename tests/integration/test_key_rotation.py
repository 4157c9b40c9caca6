"""Key rotation and tamper detection on stored secrets, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pieces_integration.adapters.crypto import KeyRing, SecretBox, generate_key
from pieces_integration.adapters.sql.secrets import SqlSecretStore
from pieces_integration.adapters.sql.tables import connections
from pieces_integration.adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from pieces_integration.domain.model import (
    Connection,
    ConnectionKind,
    Consent,
    Role,
    User,
    new_id,
)
from pieces_integration.domain.secrets import (
    DecryptionFailure,
    SecretDecryptionError,
    SecretRef,
    connection_secret_binding,
)
from pieces_integration.service_layer.key_rotation import rotate_secrets

pytestmark = pytest.mark.anyio

KEY_A = generate_key("key-a")
KEY_B = generate_key("key-b")
USERS = [f"user-{n:02d}" for n in range(7)]
PIECES = ConnectionKind.PIECES
AIWFE = ConnectionKind.AIWFE


def box(material: str) -> SecretBox:
    return SecretBox(KeyRing.parse(material))


def plaintext(user_id: str, kind: ConnectionKind) -> str:
    return f"api-key-of-{user_id}-{kind.value}"


async def store_secrets(
    uows: SqlUnitOfWorkFactory, sealer: SecretBox, rows: list[tuple[str, ConnectionKind]]
) -> None:
    async with uows() as uow:
        for user_id in sorted({user_id for user_id, _ in rows}):
            await uow.users.add(User(id=user_id, role=Role.USER, consent=Consent()))
        for user_id, kind in rows:
            connection = Connection(id=new_id(), user_id=user_id, kind=kind, url="http://x")
            sealed = sealer.encrypt(
                plaintext(user_id, kind), connection_secret_binding(user_id, kind)
            )
            await uow.connections.save(connection, sealed)
        await uow.commit()


async def read_secret(
    uows: SqlUnitOfWorkFactory, opener: SecretBox, user_id: str, kind: ConnectionKind
) -> str:
    async with uows(readonly=True) as uow:
        sealed = await uow.connections.get_secret_ciphertext(user_id, kind)
    assert sealed is not None
    return opener.decrypt(sealed, connection_secret_binding(user_id, kind))


async def raw_ciphertexts(uows: SqlUnitOfWorkFactory) -> dict[tuple[str, str], bytes]:
    async with uows.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(connections.c.user_id, connections.c.kind, connections.c.secret_ciphertext)
        )
        return {(row[0], row[1]): bytes(row[2]) for row in rows}


async def set_ciphertext(
    uows: SqlUnitOfWorkFactory, user_id: str, kind: ConnectionKind, value: bytes
) -> None:
    async with uows.engine.begin() as conn:
        await conn.execute(
            sa.update(connections)
            .where(connections.c.user_id == user_id, connections.c.kind == kind.value)
            .values(secret_ciphertext=value)
        )


ALL_ROWS = [(user_id, PIECES) for user_id in USERS] + [(USERS[0], AIWFE), (USERS[3], AIWFE)]


async def test_rotation_moves_every_secret_to_the_new_key(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await store_secrets(uow_factory, box(KEY_A), ALL_ROWS)
    ring = box(f"{KEY_B},{KEY_A}")

    # Small pages so the walk crosses page boundaries, including inside one user's rows.
    report = await rotate_secrets(SqlSecretStore(uow_factory), ring, batch_size=2)

    assert (report.scanned, report.rotated, report.already_current) == (9, 9, 0)
    assert report.complete and report.key_ids_seen == {"key-a": 9}
    only_b = box(KEY_B)
    for user_id, kind in ALL_ROWS:
        assert await read_secret(uow_factory, only_b, user_id, kind) == plaintext(user_id, kind)
    with pytest.raises(SecretDecryptionError) as caught:
        await read_secret(uow_factory, box(KEY_A), USERS[0], PIECES)
    assert caught.value.reason is DecryptionFailure.UNKNOWN_KEY


async def test_rerun_is_a_no_op(uow_factory: SqlUnitOfWorkFactory) -> None:
    await store_secrets(uow_factory, box(KEY_A), ALL_ROWS)
    ring = box(f"{KEY_B},{KEY_A}")
    store = SqlSecretStore(uow_factory)
    await rotate_secrets(store, ring, batch_size=3)
    before = await raw_ciphertexts(uow_factory)

    again = await rotate_secrets(store, ring, batch_size=3)

    assert (again.scanned, again.rotated, again.already_current) == (9, 0, 9)
    assert await raw_ciphertexts(uow_factory) == before


async def test_an_interrupted_rotation_resumes_with_the_rest(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    # Three users were written after the deploy of `B,A` (sealed with B), the rest before.
    await store_secrets(uow_factory, box(KEY_A), [(u, PIECES) for u in USERS[:4]])
    await store_secrets(uow_factory, box(KEY_B), [(u, PIECES) for u in USERS[4:]])

    report = await rotate_secrets(SqlSecretStore(uow_factory), box(f"{KEY_B},{KEY_A}"))

    assert (report.rotated, report.already_current) == (4, 3)
    for user_id in USERS:
        assert await read_secret(uow_factory, box(KEY_B), user_id, PIECES) == plaintext(
            user_id, PIECES
        )


async def test_dry_run_writes_nothing(uow_factory: SqlUnitOfWorkFactory) -> None:
    await store_secrets(uow_factory, box(KEY_A), ALL_ROWS)
    before = await raw_ciphertexts(uow_factory)

    report = await rotate_secrets(
        SqlSecretStore(uow_factory), box(f"{KEY_B},{KEY_A}"), dry_run=True
    )

    assert report.rotated == 9 and report.complete
    assert await raw_ciphertexts(uow_factory) == before


async def test_one_tampered_byte_in_the_row_fails_loudly(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await store_secrets(uow_factory, box(KEY_A), ALL_ROWS)
    victim = USERS[2]
    stored = (await raw_ciphertexts(uow_factory))[(victim, PIECES.value)]
    for position in (len(stored) // 2, len(stored) - 1, 10):
        tampered = bytearray(stored)
        tampered[position] ^= 0x80
        await set_ciphertext(uow_factory, victim, PIECES, bytes(tampered))
        with pytest.raises(SecretDecryptionError) as caught:
            await read_secret(uow_factory, box(KEY_A), victim, PIECES)
        assert caught.value.reason is DecryptionFailure.AUTHENTICATION_FAILED

    # Rotation reports the row, leaves it as it is, and still rotates all the others.
    before = await raw_ciphertexts(uow_factory)
    report = await rotate_secrets(SqlSecretStore(uow_factory), box(f"{KEY_B},{KEY_A}"))
    assert report.rotated == 8 and not report.complete
    assert [(f.ref, f.reason) for f in report.failures] == [
        (SecretRef(victim, PIECES), "authentication_failed")
    ]
    assert (await raw_ciphertexts(uow_factory))[(victim, PIECES.value)] == before[
        (victim, PIECES.value)
    ]


async def test_a_secret_copied_to_another_users_row_fails_loudly(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await store_secrets(uow_factory, box(KEY_A), ALL_ROWS)
    rows = await raw_ciphertexts(uow_factory)
    await set_ciphertext(uow_factory, USERS[1], PIECES, rows[(USERS[0], PIECES.value)])
    # ...and one user's Pieces secret moved into their own AIWFE row (another field).
    await set_ciphertext(uow_factory, USERS[3], AIWFE, rows[(USERS[3], PIECES.value)])

    for user_id, kind in ((USERS[1], PIECES), (USERS[3], AIWFE)):
        with pytest.raises(SecretDecryptionError) as caught:
            await read_secret(uow_factory, box(KEY_A), user_id, kind)
        assert caught.value.reason is DecryptionFailure.AUTHENTICATION_FAILED
        assert plaintext(USERS[0], PIECES) not in str(caught.value)

    report = await rotate_secrets(SqlSecretStore(uow_factory), box(f"{KEY_B},{KEY_A}"))
    assert sorted(f.ref for f in report.failures) == [
        SecretRef(USERS[1], PIECES),
        SecretRef(USERS[3], AIWFE),
    ]


async def test_replace_never_overwrites_a_value_changed_meanwhile(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await store_secrets(uow_factory, box(KEY_A), [(USERS[0], PIECES)])
    store = SqlSecretStore(uow_factory)
    [item] = await store.page(after=None, limit=10)
    ring = box(f"{KEY_B},{KEY_A}")
    binding = connection_secret_binding(USERS[0], PIECES)
    # The user reconnects with a new API key between the rotation's read and its write.
    await set_ciphertext(uow_factory, USERS[0], PIECES, ring.encrypt("new-api-key", binding))

    replaced = await store.replace(
        item.ref, expected=item.ciphertext, new=ring.encrypt("stale", binding)
    )

    assert replaced is False
    assert await read_secret(uow_factory, ring, USERS[0], PIECES) == "new-api-key"
