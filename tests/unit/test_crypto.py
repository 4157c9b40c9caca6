"""Secrets at rest: AES-256-GCM envelopes bound to owner and field, with a key ring."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from pieces_integration.adapters.crypto import (
    KEY_FILE_NAME,
    NONCE_BYTES,
    KeyRing,
    SecretBox,
    build_secret_box,
    generate_key,
    load_or_create_local_key,
)
from pieces_integration.config import ConfigError
from pieces_integration.domain.errors import PiecesIntegrationError
from pieces_integration.domain.model import ConnectionKind
from pieces_integration.domain.secrets import (
    DecryptionFailure,
    SecretDecryptionError,
    binding,
    connection_secret_binding,
)

KEY_A = generate_key("a")
KEY_B = generate_key("b")
ALICE = binding("alice", "connections.pieces.secret")
SECRET = "pieces-api-key-0123456789"


def box(material: str = KEY_A) -> SecretBox:
    return SecretBox(KeyRing.parse(material))


def header_length(kid: str) -> int:
    return 2 + len(kid)


def test_round_trip() -> None:
    sealer = box()
    envelope = sealer.encrypt(SECRET, ALICE)
    assert SECRET.encode() not in envelope
    assert sealer.decrypt(envelope, ALICE) == SECRET


def test_round_trip_of_empty_and_non_ascii_text() -> None:
    sealer = box()
    for text in ("", "clé-🔑-ключ"):
        assert sealer.decrypt(sealer.encrypt(text, ALICE), ALICE) == text


def test_envelope_layout_is_version_kid_nonce_ciphertext_tag() -> None:
    envelope = box().encrypt(SECRET, ALICE)
    assert envelope[0] == 1
    assert envelope[1] == 1 and envelope[2:3] == b"a"
    assert len(envelope) == header_length("a") + NONCE_BYTES + len(SECRET) + 16


def test_every_value_gets_a_fresh_nonce() -> None:
    sealer = box()
    envelopes = [sealer.encrypt(SECRET, ALICE) for _ in range(50)]
    start = header_length("a")
    nonces = {envelope[start : start + NONCE_BYTES] for envelope in envelopes}
    assert len(nonces) == 50
    assert len(set(envelopes)) == 50


def test_flipping_any_single_byte_fails_loudly() -> None:
    sealer = box()
    envelope = sealer.encrypt(SECRET, ALICE)
    for position in range(len(envelope)):
        tampered = bytearray(envelope)
        tampered[position] ^= 0x01
        with pytest.raises(SecretDecryptionError) as caught:
            sealer.decrypt(bytes(tampered), ALICE)
        assert SECRET not in str(caught.value)


def test_truncated_or_extended_envelope_fails() -> None:
    sealer = box()
    envelope = sealer.encrypt(SECRET, ALICE)
    for broken in (envelope[:-1], envelope + b"\x00", envelope[:10], b"", b"\x01"):
        with pytest.raises(SecretDecryptionError):
            sealer.decrypt(broken, ALICE)


def test_a_value_moved_to_another_owner_fails() -> None:
    sealer = box()
    envelope = sealer.encrypt(SECRET, ALICE)
    with pytest.raises(SecretDecryptionError) as caught:
        sealer.decrypt(envelope, binding("bob", "connections.pieces.secret"))
    assert caught.value.reason is DecryptionFailure.AUTHENTICATION_FAILED
    assert "authentication failed" in caught.value.message


def test_a_value_moved_to_another_field_fails() -> None:
    sealer = box()
    envelope = sealer.encrypt(SECRET, ALICE)
    with pytest.raises(SecretDecryptionError):
        sealer.decrypt(envelope, binding("alice", "connections.aiwfe.secret"))


def test_connection_bindings_differ_by_user_and_kind() -> None:
    values = {
        connection_secret_binding(user, kind)
        for user in ("alice", "bob")
        for kind in ConnectionKind
    }
    assert len(values) == 4


def test_binding_refuses_the_separator_so_pairs_cannot_collide() -> None:
    with pytest.raises(ValueError):
        binding("alice\x1fconnections", "x")
    with pytest.raises(ValueError):
        binding("", "field")


def test_unknown_key_id_fails_with_its_id() -> None:
    envelope = box(KEY_A).encrypt(SECRET, ALICE)
    with pytest.raises(SecretDecryptionError) as caught:
        box(KEY_B).decrypt(envelope, ALICE)
    assert caught.value.reason is DecryptionFailure.UNKNOWN_KEY
    assert caught.value.key_id == "a"
    assert "'a'" in caught.value.message and "not in ENCRYPTION_KEY" in caught.value.message


def test_same_id_with_wrong_key_material_fails_authentication() -> None:
    envelope = box(KEY_A).encrypt(SECRET, ALICE)
    with pytest.raises(SecretDecryptionError) as caught:
        box(generate_key("a")).decrypt(envelope, ALICE)
    assert caught.value.reason is DecryptionFailure.AUTHENTICATION_FAILED


def test_decryption_error_is_a_domain_error_without_data() -> None:
    sealer = box()
    envelope = sealer.encrypt(SECRET, ALICE)
    with pytest.raises(PiecesIntegrationError) as caught:
        sealer.decrypt(envelope[:-1] + bytes([envelope[-1] ^ 1]), ALICE)
    error = caught.value
    assert error.code == "secret_decryption_failed"
    assert error.details == {"reason": "authentication_failed", "key_id": "a"}
    text = repr(error) + str(error)
    assert SECRET not in text and "alice" not in text
    assert KEY_A.split(":")[1] not in text


def test_malformed_envelope_says_so() -> None:
    with pytest.raises(SecretDecryptionError) as caught:
        box().decrypt(b"\x07" + bytes(40), ALICE)
    assert caught.value.reason is DecryptionFailure.MALFORMED_ENVELOPE
    assert "malformed" in caught.value.message


def test_ring_seals_with_the_first_key_and_opens_with_any() -> None:
    old = box(KEY_A).encrypt(SECRET, ALICE)
    ring = box(f"{KEY_B},{KEY_A}")
    assert ring.primary_key_id == "b"
    assert ring.decrypt(old, ALICE) == SECRET
    assert ring.key_id_of(old) == "a" and ring.needs_rotation(old)
    fresh = ring.encrypt(SECRET, ALICE)
    assert ring.key_id_of(fresh) == "b" and not ring.needs_rotation(fresh)


def test_bare_base64_key_is_accepted_with_a_derived_id() -> None:
    raw = os.urandom(32)
    material = base64.b64encode(raw).decode()
    first, second = box(material), box(material)
    assert first.primary_key_id == second.primary_key_id
    assert first.primary_key_id.startswith("h")
    assert second.decrypt(first.encrypt(SECRET, ALICE), ALICE) == SECRET
    # URL-safe alphabet without padding, and hex (the spec's deployment sample), are the same key.
    for spelling in (base64.urlsafe_b64encode(raw).decode().rstrip("="), raw.hex()):
        assert box(spelling).primary_key_id == first.primary_key_id


@pytest.mark.parametrize(
    ("material", "needle"),
    [
        ("", "no key given"),
        (" , ", "no key given"),
        (f"{KEY_A}, ,{KEY_B}", "entry 2 is empty"),
        (f"{KEY_A},", "entry 2 is empty"),
        ("a:not base64!!", "entry 1 (a): the key is neither base64 nor 64 hex digits"),
        (f"a:{base64.b64encode(bytes(16)).decode()}", "must be 32 bytes (AES-256), got 16"),
        (f"bad id:{base64.b64encode(bytes(32)).decode()}", "entry 1: key id must be"),
        (f"{KEY_A},{KEY_A}", "key id 'a' appears more than once"),
    ],
)
def test_malformed_key_material_gives_a_clear_error(material: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        KeyRing.parse(material)
    message = str(caught.value)
    assert message.startswith("ENCRYPTION_KEY")
    assert needle in message
    assert "\n" not in message


def test_key_material_never_appears_in_errors_or_reprs() -> None:
    secret_part = base64.b64encode(bytes(range(16))).decode()
    with pytest.raises(ConfigError) as caught:
        KeyRing.parse(f"a:{secret_part}")
    assert secret_part not in str(caught.value)
    ring = KeyRing.parse(f"{KEY_B},{KEY_A}")
    assert KEY_A.split(":")[1] not in repr(ring) + repr(ring.keys())


def test_generate_key_gives_a_parseable_line_with_a_dated_id() -> None:
    line = generate_key()
    ring = KeyRing.parse(line)
    assert ring.primary.kid.startswith("k2") and len(ring.primary.material) == 32
    assert generate_key() != line
    with pytest.raises(ValueError):
        generate_key("no spaces")


def test_local_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    first = load_or_create_local_key(data_dir)
    path = data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_local_key(data_dir) == first
    KeyRing.parse(first)
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE_NAME]  # no temp file left


def test_local_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_or_create_local_key(tmp_path)
    (tmp_path / KEY_FILE_NAME).chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_local_key(tmp_path)


def test_production_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="production requires ENCRYPTION_KEY"):
        build_secret_box(None, env="production", data_dir=tmp_path)
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_production_settings_without_a_key_are_refused() -> None:
    from pieces_integration.config import load_settings

    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        load_settings(env="production")


def test_configured_key_wins_over_the_local_file(tmp_path: Path) -> None:
    sealer = build_secret_box(KEY_A, env="production", data_dir=tmp_path)
    assert sealer.primary_key_id == "a"
    local = build_secret_box(None, env="development", data_dir=tmp_path)
    assert (tmp_path / KEY_FILE_NAME).exists()
    again = build_secret_box(None, env="development", data_dir=tmp_path)
    assert again.decrypt(local.encrypt(SECRET, ALICE), ALICE) == SECRET
