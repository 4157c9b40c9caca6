"""AES-256-GCM sealing of secrets at rest, with a key ring for rotation (DEVIATIONS 6).

Key material (`ENCRYPTION_KEY`) is a comma-separated list; the FIRST entry is the primary key
(every new value is sealed with it), the others only open values sealed before a rotation:

    ENCRYPTION_KEY="k20250601-3fa2c1:<base64 32 bytes>,k20240101-77d0e9:<base64 32 bytes>"

An entry is `kid:key` or a bare key (its id is then derived from a hash of the key). A key is
32 bytes, written as base64 (standard or URL-safe, padding optional) or as 64 hex digits (the
spec's deployment sample). Key ids are 1-32 characters of `A-Z a-z 0-9 . _ -`.

Envelope (bytes, stored as is in `connections.secret_ciphertext`):

    offset  size  field
    0       1     version, 0x01
    1       1     n = length of the key id (1-32)
    2       n     key id, ASCII
    2+n     12    nonce, fresh from os.urandom for every value
    14+n    rest  AES-GCM ciphertext followed by the 16-byte tag

The associated data is the header (version, n, key id) followed by the binding string
`"<owner>\\x1f<field>"` (UTF-8), so changing any byte of the envelope, or moving it to another
owner or field, makes decryption fail with `SecretDecryptionError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pieces_integration.config import ConfigError
from pieces_integration.domain.secrets import DecryptionFailure, SecretDecryptionError

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_KID_LENGTH = 32
KEY_FILE_NAME = "encryption.key"

_KID = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")
_SETTING = "ENCRYPTION_KEY"


def _derived_kid(key: bytes) -> str:
    # Domain-separated hash: identifies the key without being usable to attack it.
    return "h" + hashlib.sha256(b"pieces-integration/key-id\x00" + key).hexdigest()[:12]


def _decode_key(text: str, where: str) -> bytes:
    if _HEX_KEY.match(text):
        return bytes.fromhex(text)
    padded = text + "=" * (-len(text) % 4)
    try:
        # Accept both alphabets; validate=True refuses stray characters instead of skipping them.
        key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            f"{_SETTING}: {where}: the key is neither base64 nor 64 hex digits"
        ) from None
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"{_SETTING}: {where}: the key must be {KEY_BYTES} bytes (AES-256), got {len(key)}"
        )
    return key


@dataclass(frozen=True, slots=True)
class Key:
    kid: str
    material: bytes

    def __repr__(self) -> str:  # never print key bytes, even in a traceback
        return f"Key(kid={self.kid!r})"


class KeyRing:
    """Keys by id; the first is the primary, used to seal every new value."""

    def __init__(self, keys: list[Key]) -> None:
        if not keys:
            raise ConfigError(f"{_SETTING}: no key given")
        by_id: dict[str, Key] = {}
        for key in keys:
            if key.kid in by_id:
                raise ConfigError(f"{_SETTING}: key id {key.kid!r} appears more than once")
            by_id[key.kid] = key
        self.primary = keys[0]
        self._by_id = by_id

    @classmethod
    def parse(cls, material: str) -> KeyRing:
        """Parse `kid:key[,kid:key...]` (or bare keys); ConfigError names the bad entry."""
        entries = [entry.strip() for entry in material.split(",")]
        if not any(entries):
            raise ConfigError(f"{_SETTING}: no key given")
        keys = []
        for position, entry in enumerate(entries, start=1):
            where = f"entry {position}"
            if not entry:
                raise ConfigError(f"{_SETTING}: {where} is empty (stray comma?)")
            kid, separator, encoded = entry.rpartition(":")
            if not separator:
                key = _decode_key(entry, where)
                keys.append(Key(_derived_kid(key), key))
                continue
            kid = kid.strip()
            if not _KID.match(kid):
                raise ConfigError(
                    f"{_SETTING}: {where}: key id must be 1-{MAX_KID_LENGTH} characters "
                    "of A-Z a-z 0-9 . _ -"
                )
            keys.append(Key(kid, _decode_key(encoded.strip(), f"{where} ({kid})")))
        return cls(keys)

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._by_id)

    def keys(self) -> tuple[Key, ...]:
        return tuple(self._by_id.values())

    def get(self, kid: str) -> Key | None:
        return self._by_id.get(kid)

    def __len__(self) -> int:
        return len(self._by_id)

    def __repr__(self) -> str:
        return f"KeyRing(primary={self.primary.kid!r}, key_ids={self.key_ids!r})"


@dataclass(frozen=True, slots=True)
class _Envelope:
    header: bytes
    kid: str
    nonce: bytes
    sealed: bytes


def _parse(envelope: bytes) -> _Envelope:
    def malformed(detail: str) -> SecretDecryptionError:
        return SecretDecryptionError(DecryptionFailure.MALFORMED_ENVELOPE, detail=detail)

    if len(envelope) < 2:
        raise malformed("too short")
    if envelope[0] != VERSION:
        raise malformed(f"unknown version {envelope[0]}")
    kid_length = envelope[1]
    if not 1 <= kid_length <= MAX_KID_LENGTH:
        raise malformed("bad key id length")
    header_end = 2 + kid_length
    if len(envelope) < header_end + NONCE_BYTES + TAG_BYTES:
        raise malformed("too short")
    try:
        kid = envelope[2:header_end].decode("ascii")
    except UnicodeDecodeError:
        raise malformed("key id is not ASCII") from None
    if not _KID.match(kid):
        raise malformed("bad key id")
    return _Envelope(
        header=envelope[:header_end],
        kid=kid,
        nonce=envelope[header_end : header_end + NONCE_BYTES],
        sealed=envelope[header_end + NONCE_BYTES :],
    )


class SecretBox:
    """Seals and opens secrets bound to an owner and field.

    `encrypt` / `decrypt` have the shapes of the `Encrypt` / `Decrypt` ports: the second
    argument is the binding string, `domain.secrets.binding(owner, field)`.
    """

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        # AESGCM objects are immutable and thread-safe; build each once.
        self._ciphers = {key.kid: AESGCM(key.material) for key in ring.keys()}

    @property
    def primary_key_id(self) -> str:
        return self.ring.primary.kid

    def encrypt(self, plaintext: str, binding: str) -> bytes:
        kid = self.ring.primary.kid.encode("ascii")
        header = bytes([VERSION, len(kid)]) + kid
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.ring.primary.kid].encrypt(
            nonce, plaintext.encode("utf-8"), header + binding.encode("utf-8")
        )
        return header + nonce + sealed

    def decrypt(self, envelope: bytes, binding: str) -> str:
        parsed = _parse(bytes(envelope))
        cipher = self._ciphers.get(parsed.kid)
        if cipher is None:
            raise SecretDecryptionError(DecryptionFailure.UNKNOWN_KEY, key_id=parsed.kid)
        try:
            plaintext = cipher.decrypt(
                parsed.nonce, parsed.sealed, parsed.header + binding.encode("utf-8")
            )
        except InvalidTag:
            raise SecretDecryptionError(
                DecryptionFailure.AUTHENTICATION_FAILED, key_id=parsed.kid
            ) from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:  # authentic, so sealed by something other than encrypt()
            raise SecretDecryptionError(
                DecryptionFailure.MALFORMED_ENVELOPE, key_id=parsed.kid, detail="not UTF-8 text"
            ) from None

    def key_id_of(self, envelope: bytes) -> str:
        """The id of the key that sealed `envelope` (no decryption; raises if malformed)."""
        return _parse(bytes(envelope)).kid

    def needs_rotation(self, envelope: bytes) -> bool:
        return self.key_id_of(envelope) != self.primary_key_id


def generate_key(kid: str | None = None) -> str:
    """A new `kid:base64key` entry; the default id sorts by creation date."""
    if kid is None:
        kid = f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"
    if not _KID.match(kid):
        raise ValueError(f"key id must be 1-{MAX_KID_LENGTH} characters of A-Z a-z 0-9 . _ -")
    return f"{kid}:{base64.b64encode(os.urandom(KEY_BYTES)).decode('ascii')}"


def load_or_create_local_key(data_dir: Path) -> str:
    """The embedded default's key material: `<data_dir>/encryption.key`, created on first use.

    The file is created with mode 0600 and appears atomically with its full content, so two
    processes starting at once agree on one key. It may hold a ring (`new,old`) like
    ENCRYPTION_KEY. A file readable by group or others is refused, as ssh does.
    """
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _create_exclusively(path, generate_key() + "\n")
    if os.name == "posix":
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(
                f"{path}: the key file is readable by others (mode {mode:o}); run chmod 600"
            )
    material = path.read_text(encoding="ascii").strip()
    if not material:
        raise ConfigError(f"{path}: the key file is empty")
    return material


def _create_exclusively(path: Path, content: str) -> None:
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".encryption.key.")  # mode 0600
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)  # fails if another process created the key first: keep theirs
        except FileExistsError:
            pass
    finally:
        temp.unlink(missing_ok=True)


def build_secret_box(encryption_key: str | None, *, env: str, data_dir: Path) -> SecretBox:
    """The SecretBox of a configuration: ENCRYPTION_KEY, else the local key file.

    Production never falls back to a key file on the pod's disk: without ENCRYPTION_KEY it
    refuses to start (a lost pod would take the key, and every stored secret, with it).
    """
    if encryption_key is not None and encryption_key.strip():
        return SecretBox(KeyRing.parse(encryption_key))
    if env == "production":
        raise ConfigError("production requires ENCRYPTION_KEY (secrets are encrypted at rest)")
    return SecretBox(KeyRing.parse(load_or_create_local_key(data_dir)))
