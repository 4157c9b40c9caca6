"""A paired bridge (DEVIATIONS 5): one developer's agent, bound to one user and one device.

Secrets are kept only as SHA-256 digests: the one-time pairing code (valid ten minutes) and
the long-lived credential the agent presents on every connect. Both are long random strings,
so a fast digest is enough (no password stretching needed); comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

PAIRING_TTL = timedelta(minutes=10)
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: read aloud, typed by hand
CODE_LENGTH = 10  # 30**10 ≈ 6e14 codes, each valid 10 minutes and once
CREDENTIAL_PREFIX = "pib_"
_CREDENTIAL = re.compile(r"pib_([a-f0-9]{32})\.([A-Za-z0-9_-]{32,128})")
# A user's Pieces connection through a bridge has this URL (the adapter routes on it).
URL_SCHEME = "bridge://"
_URL = re.compile(r"bridge://([a-f0-9]{32})")


@dataclass(slots=True)
class Bridge:
    id: str
    user_id: str
    name: str
    created_at: datetime
    pairing_hash: str | None = None
    pairing_expires_at: datetime | None = None
    credential_hash: str | None = None
    device_hash: str | None = None
    paired_at: datetime | None = None
    last_seen_at: datetime | None = None
    agent_version: str | None = None
    revoked_at: datetime | None = None

    @property
    def paired(self) -> bool:
        return self.credential_hash is not None

    def pairable(self, now: datetime) -> bool:
        return (
            self.revoked_at is None
            and not self.paired
            and self.pairing_expires_at is not None
            and now < self.pairing_expires_at
        )


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored: str | None) -> bool:
    return stored is not None and hmac.compare_digest(digest(secret), stored)


def normalise_code(code: str) -> str:
    """What the user typed, as issued: case and separators do not matter."""
    return re.sub(r"[\s-]", "", code).upper()


def format_code(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def format_credential(bridge_id: str, secret: str) -> str:
    return f"{CREDENTIAL_PREFIX}{bridge_id}.{secret}"


def parse_credential(credential: str) -> tuple[str, str] | None:
    """(bridge id, secret), or None when it is not a bridge credential at all."""
    found = _CREDENTIAL.fullmatch(credential.strip())
    return (found.group(1), found.group(2)) if found else None


def bridge_url(bridge_id: str) -> str:
    return URL_SCHEME + bridge_id


def bridge_id_of(url: str | None) -> str | None:
    """The bridge a connection URL names; None for a direct URL; ValueError if malformed."""
    if url is None or not url.startswith(URL_SCHEME):
        return None
    found = _URL.fullmatch(url)
    if found is None:
        raise ValueError(f"{url[:80]} is not a bridge URL")
    return found.group(1)
