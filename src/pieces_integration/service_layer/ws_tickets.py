"""Short-lived, single-use tickets that let a browser open an authenticated WebSocket.

Browsers cannot set headers on a WebSocket, and a token in the URL would end up in logs and
history. So the page asks `POST /api/v1/ws-ticket` (with its normal Authorization header)
for a ticket and connects with `/ws?ticket=...`. Tickets live in the cache port (Redis when
configured, so any replica can redeem them), only as a hash, for `ttl` seconds, and the
first redemption deletes them.
"""

from __future__ import annotations

import hashlib
import json
import secrets

from pieces_integration.domain.auth import Principal
from pieces_integration.domain.errors import Unauthorized
from pieces_integration.domain.model import Role
from pieces_integration.ports.infrastructure import Cache

TICKET_TTL_SECONDS = 30.0


def _key(ticket: str) -> str:
    return "ws-ticket:" + hashlib.sha256(ticket.encode()).hexdigest()


class WsTickets:
    def __init__(self, cache: Cache, *, ttl: float = TICKET_TTL_SECONDS) -> None:
        self._cache = cache
        self.ttl = ttl

    async def issue(self, principal: Principal) -> str:
        ticket = "wst_" + secrets.token_urlsafe(32)
        grant = {
            "user_id": principal.user_id,
            "role": principal.role.value,
            "via": principal.via,
            "key_id": principal.key_id,
            "tenant": principal.tenant,
        }
        await self._cache.set(_key(ticket), json.dumps(grant).encode(), ttl=self.ttl)
        return ticket

    async def redeem(self, ticket: str) -> Principal:
        key = _key(ticket)
        raw = await self._cache.get(key)
        # Whoever deletes the entry owns the ticket: two replicas racing cannot both win.
        if raw is None or await self._cache.delete(key) != 1:
            raise Unauthorized("the WebSocket ticket is unknown, expired or already used")
        grant = json.loads(raw)
        return Principal(
            user_id=grant["user_id"],
            role=Role(grant["role"]),
            via=f"ticket:{grant['via']}",
            key_id=grant.get("key_id"),
            tenant=grant.get("tenant"),
        )
