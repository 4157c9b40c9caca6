"""Sealing a user's Pieces API key: the binding it is sealed under, and unsealing it."""

from __future__ import annotations

from pieces_integration.domain.model import ConnectionKind
from pieces_integration.domain.secrets import connection_secret_binding
from pieces_integration.ports.pieces import ConnectionStore, Decrypt


def secret_context(user_id: str) -> str:
    """Associated data binding a sealed API key to its owner and field (DEVIATIONS 6); the
    same binding key rotation uses for `connections.secret_ciphertext`."""
    return connection_secret_binding(user_id, ConnectionKind.PIECES)


def unseal_api_key(user_id: str, sealed: bytes | None, decrypt: Decrypt) -> str | None:
    return decrypt(sealed, secret_context(user_id)) if sealed else None


async def stored_api_key(user_id: str, store: ConnectionStore, decrypt: Decrypt) -> str | None:
    """The user's Pieces API key, unsealed for a reconnect."""
    stored = await store.get(user_id)
    if stored is None:
        return None
    return unseal_api_key(user_id, stored.sealed_secret, decrypt)
