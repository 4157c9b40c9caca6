"""Who is calling, and what they may do (spec 8.2, DEVIATIONS 7). Pure decisions."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from pieces_integration.domain.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from pieces_integration.domain.model import Role

API_KEY_PREFIX = "pk_"
MAX_TENANT_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    role: Role
    via: str  # "jwt" | "api_key"
    key_id: str | None = None
    tenant: str | None = None  # the identity provider's organisation, where configured

    @property
    def rate_limit_key(self) -> str:
        """One bucket per user across all their keys and tokens (issue 20): minting more
        keys does not multiply the limit."""
        return f"user:{self.user_id}"

    @property
    def tenant_rate_limit_key(self) -> str | None:
        """The bucket the principal's tenant shares (issue 20); None: no tenant limit.

        Service principals act for users of any tenant, so charging one tenant for them
        would be wrong: they keep only their own bucket. Admins from a tenant share it.
        """
        if self.tenant is None or self.role is Role.SERVICE:
            return None
        return f"tenant:{self.tenant}"


def valid_tenant(value: object) -> bool:
    """A short printable string without spaces (it names a rate-limit bucket and is stored)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_TENANT_LENGTH
        and value.isprintable()
        and not any(char.isspace() for char in value)
    )


def parse_tenant(value: object, *, claim: str) -> str | None:
    """A token's tenant claim: absent is no tenant; anything but a valid tenant is refused."""
    if value is None:
        return None
    if isinstance(value, str) and valid_tenant(value):
        return value
    raise Unauthorized(
        f"invalid token: the tenant claim {claim!r} must be a string of 1 to "
        f"{MAX_TENANT_LENGTH} printable characters without spaces"
    )


def resolve_user(principal: Principal, requested: str | None) -> str:
    """The user an operation acts on: the caller's own unless admin/service name another.

    A user id in a path, query or body never grants access by itself.
    """
    if requested is None or requested == principal.user_id:
        return principal.user_id
    if principal.role.may_act_for_others:
        return requested
    raise Forbidden(
        "you may only act on your own data", details={"user_id": requested, "role": principal.role}
    )


def ensure_can_write(principal: Principal) -> None:
    if not principal.role.may_write:
        raise Forbidden("the guest role is read-only", details={"role": principal.role.value})


def ensure_admin(principal: Principal) -> None:
    if principal.role is not Role.ADMIN:
        raise Forbidden("this needs the admin role", details={"role": principal.role.value})


def ensure_owner(principal: Principal, owner_id: str, kind: str, identifier: str) -> None:
    """Another user's object is reported as missing, so its existence does not leak."""
    if owner_id != principal.user_id and not principal.role.may_act_for_others:
        raise NotFound(kind, identifier)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly minted key: `token` is shown once; only `prefix` and `digest` are stored."""

    token: str
    prefix: str
    digest: str


def hash_api_key(token: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching).
    return hashlib.sha256(token.encode()).hexdigest()


def mint_api_key() -> NewApiKey:
    prefix = API_KEY_PREFIX + secrets.token_hex(6)
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(token=token, prefix=prefix, digest=hash_api_key(token))


def split_api_key(token: str) -> str:
    """The stored lookup prefix of a presented key."""
    head, sep, rest = token.partition("_")[2].partition("_")
    if head != "" and sep and rest and len(head) == 12:
        return API_KEY_PREFIX + head
    raise InvalidInput("malformed API key", field="authorization")


def api_key_matches(token: str, digest: str) -> bool:
    return hmac.compare_digest(hash_api_key(token), digest)
