"""Secrets at rest: what a sealed value is bound to, and the error when it cannot be opened.

Every sealed value is bound (as AES-GCM associated data) to its owner and its field, so a
ciphertext copied to another user's row, or to another field, fails to decrypt instead of
handing one user's credential to another (DEVIATIONS 6). The binding is a plain string,
`"<owner>\\x1f<field>"`; the unit separator cannot appear in either part, so two different
(owner, field) pairs never produce the same string.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pieces_integration.domain.errors import PiecesIntegrationError
from pieces_integration.domain.model import ConnectionKind

_SEPARATOR = "\x1f"


class DecryptionFailure(StrEnum):
    UNKNOWN_KEY = "unknown_key"
    AUTHENTICATION_FAILED = "authentication_failed"
    MALFORMED_ENVELOPE = "malformed_envelope"


_EXPLANATIONS = {
    DecryptionFailure.UNKNOWN_KEY: (
        "it was sealed with key id {key_id!r}, which is not in ENCRYPTION_KEY"
    ),
    DecryptionFailure.AUTHENTICATION_FAILED: (
        "authentication failed under key id {key_id!r} (the value was altered, moved to "
        "another owner or field, or the key material for this id is wrong)"
    ),
    DecryptionFailure.MALFORMED_ENVELOPE: "the envelope is malformed ({detail})",
}


class SecretDecryptionError(PiecesIntegrationError):
    """A stored secret could not be opened. Never carries plaintext, ciphertext or key bytes."""

    code = "secret_decryption_failed"

    def __init__(
        self, reason: DecryptionFailure, *, key_id: str | None = None, detail: str = ""
    ) -> None:
        explanation = _EXPLANATIONS[reason].format(key_id=key_id, detail=detail or "unknown")
        details: dict[str, object] = {"reason": reason.value}
        if key_id is not None:
            details["key_id"] = key_id
        super().__init__(f"stored secret could not be decrypted: {explanation}", details=details)
        self.reason = reason
        self.key_id = key_id


def binding(owner_id: str, field: str) -> str:
    """The associated data that binds a sealed value to `owner_id` and `field`."""
    if not owner_id or not field:
        raise ValueError("a secret binding needs a non-empty owner and field")
    if _SEPARATOR in owner_id or _SEPARATOR in field:
        raise ValueError("owner and field of a secret binding cannot contain U+001F")
    return f"{owner_id}{_SEPARATOR}{field}"


def connection_secret_field(kind: ConnectionKind) -> str:
    return f"connections.{kind.value}.secret"


def connection_secret_binding(user_id: str, kind: ConnectionKind) -> str:
    """The binding of `connections.secret_ciphertext` for one user's connection of `kind`."""
    return binding(user_id, connection_secret_field(kind))


@dataclass(frozen=True, slots=True, order=True)
class SecretRef:
    """Where a sealed secret lives: one connection row."""

    user_id: str
    kind: ConnectionKind


@dataclass(frozen=True, slots=True)
class StoredSecret:
    ref: SecretRef
    ciphertext: bytes
