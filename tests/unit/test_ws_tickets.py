"""WebSocket tickets (issue 20): a redeemed ticket is the principal it was issued to,
tenant included, so a browser's socket counts against the same buckets as its requests."""

from __future__ import annotations

import pytest

from pieces_integration.adapters.memory import MemoryCache
from pieces_integration.domain.auth import Principal
from pieces_integration.domain.errors import Unauthorized
from pieces_integration.domain.model import Role
from pieces_integration.service_layer.ws_tickets import WsTickets

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("tenant", ["acme", None])
async def test_a_ticket_redeems_to_its_principal_with_the_tenant(tenant: str | None) -> None:
    tickets = WsTickets(MemoryCache(max_entries=10))
    principal = Principal("alice", Role.ADMIN, "api_key", key_id="k1", tenant=tenant)
    ticket = await tickets.issue(principal)
    redeemed = await tickets.redeem(ticket)
    assert redeemed == Principal("alice", Role.ADMIN, "ticket:api_key", "k1", tenant)
    assert redeemed.tenant_rate_limit_key == (f"tenant:{tenant}" if tenant else None)
    with pytest.raises(Unauthorized):  # single use
        await tickets.redeem(ticket)
