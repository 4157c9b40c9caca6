"""Port for bearer tokens: the service layer checks them without knowing JWT or its keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pieces_integration.domain.model import Role


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    user_id: str
    role: Role
    issued_at: float | None = None  # seconds since the epoch (`iat`), if the token says
    tenant: str | None = None  # the tenant claim's value, where one is configured


class TokenVerifier(Protocol):
    @property
    def reads_tenant(self) -> bool:
        """Whether tokens name a tenant (a tenant claim is configured)."""
        ...

    async def verify(self, token: str) -> VerifiedToken:
        """The token's subject and role; raises Unauthorized if it is not valid now."""
        ...

    def claimed_subject(self, token: str) -> str | None:
        """Whom the token claims to be, unverified (what failures are counted against)."""
        ...
