"""Client messages of the WebSocket protocol (spec 6.2) and the ticket response."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SubscribePayload(BaseModel):
    model_config = ConfigDict(extra="ignore")
    user_id: str | None = Field(None, min_length=1, max_length=256)
    events: list[str] | None = Field(None, max_length=64)
    last_event_id: int | None = Field(None, ge=0)


class UnsubscribePayload(BaseModel):
    model_config = ConfigDict(extra="ignore")
    user_id: str | None = Field(None, min_length=1, max_length=256)


class SyncRequestPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")
    user_id: str | None = Field(None, min_length=1, max_length=256)
    force: bool = False


class PingPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WsTicketPublic(BaseModel):
    ticket: str = Field(description="Pass as `/ws?ticket=...`; valid once, for `expires_in` s.")
    expires_in: float
