"""Signing and verifying AIWFE webhook deliveries (pure: the caller passes the clock).

Header format, modelled on Stripe's and the Standard Webhooks scheme so that a
captured delivery cannot be replayed later or under another body::

    X-AIWFE-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

Several ``v1=`` values may appear (the sender signs with the old and the new secret
while a secret is rotated); the receiver may also hold several secrets. A delivery is
authentic when any (secret, v1) pair matches.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pieces_integration.domain.errors import Unauthorized

SIGNATURE_HEADER = "X-AIWFE-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
# A header with hundreds of candidates is an attack on our CPU, not a rotation.
_MAX_SIGNATURES = 8
_HEX_DIGEST_LENGTH = 64


class WebhookSignatureError(Unauthorized):
    """The delivery is not provably from AIWFE (or not from now); `reason` says why."""

    code = "invalid_webhook_signature"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, details={"reason": reason})
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ParsedSignature:
    timestamp: int
    signatures: tuple[str, ...]


def parse_signature_header(header: str | None) -> ParsedSignature:
    """Split the header into its timestamp and v1 digests; unknown schemes are skipped."""
    if not header or not header.strip():
        raise WebhookSignatureError(f"missing {SIGNATURE_HEADER} header", reason="missing")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookSignatureError("malformed signature header", reason="malformed")
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                raise WebhookSignatureError("malformed signature timestamp", reason="malformed")
            timestamp = int(value)
        elif key == SCHEME:
            digest = value.lower()
            if len(digest) != _HEX_DIGEST_LENGTH or any(
                c not in "0123456789abcdef" for c in digest
            ):
                raise WebhookSignatureError("malformed v1 signature", reason="malformed")
            signatures.append(digest)
    if timestamp is None:
        raise WebhookSignatureError("signature header has no timestamp", reason="malformed")
    if not signatures:
        raise WebhookSignatureError("signature header has no v1 signature", reason="malformed")
    if len(signatures) > _MAX_SIGNATURES:
        raise WebhookSignatureError("too many signatures in header", reason="malformed")
    return ParsedSignature(timestamp=timestamp, signatures=tuple(signatures))


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: str | Iterable[str], *, timestamp: int) -> str:
    """Build the header value for `body`, one v1 per secret (the emulator and tests use this)."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys:
        raise ValueError("at least one secret is needed to sign a webhook")
    parts = [f"t={timestamp}", *(f"{SCHEME}={compute_signature(k, timestamp, body)}" for k in keys)]
    return ",".join(parts)


def verify(
    header: str | None,
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Check the header against `body`; return the signed timestamp or raise WebhookSignatureError.

    The signature is checked before the clock so a forger learns nothing about our
    window; every candidate is compared in constant time, and all of them are compared
    so timing does not reveal which secret matched.
    """
    usable = [s for s in secrets if s]
    if not usable:
        # A misconfigured receiver must refuse everything rather than accept unsigned posts.
        raise WebhookSignatureError("no webhook secret configured", reason="not_configured")
    parsed = parse_signature_header(header)
    matched = False
    for secret in usable:
        expected = compute_signature(secret, parsed.timestamp, body)
        for candidate in parsed.signatures:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookSignatureError("webhook signature does not match", reason="mismatch")
    if abs(now - parsed.timestamp) > tolerance_seconds:
        raise WebhookSignatureError(
            "webhook timestamp outside the replay window", reason="stale_timestamp"
        )
    return parsed.timestamp
