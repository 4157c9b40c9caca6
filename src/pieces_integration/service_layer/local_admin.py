"""Local mode without friction: an admin credential on first start, and one-time sign-in codes.

On the embedded default, `serve` makes sure a `local-admin` user with an admin API key
exists (the key is written to `<data dir>/local-admin.key`, mode 0600), and prints a URL
carrying a one-time code that the browser exchanges for a token (as Jupyter does).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from pieces_integration.domain.errors import Unauthorized
from pieces_integration.domain.model import Role
from pieces_integration.ports.storage import UnitOfWorkFactory
from pieces_integration.service_layer.auth import create_api_key

LOCAL_ADMIN = "local-admin"
KEY_FILE = "local-admin.key"


def key_file(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


async def create_local_admin(uow: UnitOfWorkFactory) -> str:
    """Create the local admin's API key; returns the token (to be written to the key file)."""
    _, token = await create_api_key(
        uow, user_id=LOCAL_ADMIN, role=Role.ADMIN, name="local admin", actor_id=None
    )
    return token


def write_key_file(data_dir: Path, token: str) -> Path:
    path = key_file(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return path


@dataclass
class SignInCodes:
    """One-time codes, kept only in this process's memory (hashed), valid for `ttl` seconds."""

    ttl: float = 15 * 60
    _codes: dict[str, float] = field(default_factory=dict)

    def issue(self) -> str:
        code = secrets.token_urlsafe(24)
        self._codes[hashlib.sha256(code.encode()).hexdigest()] = time.monotonic() + self.ttl
        return code

    def redeem(self, code: str) -> None:
        digest = hashlib.sha256(code.encode()).hexdigest()
        now = time.monotonic()
        for known, expires in list(self._codes.items()):
            if expires < now:
                del self._codes[known]
            elif hmac.compare_digest(known, digest):
                del self._codes[known]
                return
        raise Unauthorized("sign-in code unknown, used or expired; restart `serve` for a new one")
