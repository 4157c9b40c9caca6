"""Bridge schemas (issue 13, DEVIATIONS 5)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pieces_integration.service_layer.pieces.bridges import BridgeView, PairedBridge, PairingTicket


class BridgeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)


class BridgePairingPublic(BaseModel):
    """The one-time code to give `pieces-integration bridge pair --code` (valid 10 minutes)."""

    id: str
    pairing_code: str
    expires_at: datetime

    @classmethod
    def of(cls, ticket: PairingTicket) -> BridgePairingPublic:
        return cls(id=ticket.bridge.id, pairing_code=ticket.code, expires_at=ticket.expires_at)


class BridgePair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=4, max_length=32)
    device_id: str = Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    agent_version: str = Field("unknown", max_length=64)


class BridgeCredentialPublic(BaseModel):
    """Shown once: the agent stores it (0600); the service keeps only its digest."""

    bridge_id: str
    user_id: str
    name: str
    credential: str

    @classmethod
    def of(cls, paired: PairedBridge) -> BridgeCredentialPublic:
        return cls(
            bridge_id=paired.bridge_id,
            user_id=paired.user_id,
            name=paired.name,
            credential=paired.credential,
        )


class BridgePublic(BaseModel):
    id: str
    name: str
    created_at: datetime
    paired: bool
    last_seen: datetime | None
    agent_version: str | None
    connected: bool
    last_heartbeat: datetime | None = None
    rtt_ms: float | None = None

    @classmethod
    def of(cls, view: BridgeView) -> BridgePublic:
        bridge, link = view.bridge, view.link
        return cls(
            id=bridge.id,
            name=bridge.name,
            created_at=bridge.created_at,
            paired=bridge.paired,
            last_seen=bridge.last_seen_at,
            agent_version=link.agent_version if link else bridge.agent_version,
            connected=view.connected,
            last_heartbeat=link.last_heartbeat if link else None,
            rtt_ms=round(link.rtt_ms, 2) if link and link.rtt_ms is not None else None,
        )


class BridgesPublic(BaseModel):
    data: list[BridgePublic]
    count: int
