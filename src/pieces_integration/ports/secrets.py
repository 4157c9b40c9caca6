"""Ports for secrets at rest: the cipher that seals them and the store that holds them."""

from __future__ import annotations

from typing import Protocol

from pieces_integration.domain.secrets import SecretRef, StoredSecret


class SecretCipher(Protocol):
    """Seals values bound to a binding string; see `domain.secrets.binding`."""

    @property
    def primary_key_id(self) -> str: ...
    def encrypt(self, plaintext: str, binding: str) -> bytes: ...
    def decrypt(self, envelope: bytes, binding: str) -> str: ...
    def key_id_of(self, envelope: bytes) -> str: ...


class SecretStore(Protocol):
    """Stored secrets, read in pages and replaced one by one; each call is one transaction."""

    async def page(self, *, after: SecretRef | None, limit: int) -> list[StoredSecret]:
        """Up to `limit` secrets ordered by (user_id, kind), strictly after `after`."""
        ...

    async def replace(self, ref: SecretRef, *, expected: bytes, new: bytes) -> bool:
        """Swap `expected` for `new`; False (no write) if the row no longer holds `expected`."""
        ...
