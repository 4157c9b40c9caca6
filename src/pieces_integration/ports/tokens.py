"""Port for bearer tokens: the service layer checks them without knowing JWT or its keys."""

from __future__ import annotations

from typing import Protocol

from pieces_integration.domain.model import Role


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> tuple[str, Role]:
        """The token's (user id, role); raises Unauthorized if it is not valid now."""
        ...
