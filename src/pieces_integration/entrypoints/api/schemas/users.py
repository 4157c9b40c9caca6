"""Schemas for privacy (consent, import) and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from pieces_integration.domain.model import AuditEntry, Consent, User


class ConsentPublic(BaseModel):
    asset_sync: bool
    context_sharing: Literal["full", "limited"]
    analytics: bool
    team_collaboration: bool

    @classmethod
    def of(cls, consent: Consent) -> ConsentPublic:
        return cls.model_validate(
            {
                "asset_sync": consent.asset_sync,
                "context_sharing": consent.context_sharing,
                "analytics": consent.analytics,
                "team_collaboration": consent.team_collaboration,
            }
        )


class ConsentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    asset_sync: bool | None = None
    context_sharing: Literal["full", "limited"] | None = None
    analytics: bool | None = None
    team_collaboration: bool | None = None

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class UserUpdate(BaseModel):
    """An admin's change to an account (issue 20): today only whether it is disabled."""

    model_config = ConfigDict(extra="forbid")
    disabled: StrictBool = Field(
        description="true: every sign-in is refused and live sessions end; false: re-enable"
    )


class UserAccountPublic(BaseModel):
    id: str
    role: str
    disabled: bool
    disabled_at: datetime | None = None

    @classmethod
    def of(cls, user: User) -> UserAccountPublic:
        return cls(
            id=user.id, role=user.role.value, disabled=user.disabled, disabled_at=user.disabled_at
        )


class ImportResult(BaseModel):
    user_id: str
    assets: int


class AuditEntryPublic(BaseModel):
    id: int | None
    at: datetime
    action: str
    actor_id: str | None = None
    user_id: str | None = None
    target: str | None = None
    details: dict[str, Any]
    ip: str | None = None
    request_id: str | None = None

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryPublic:
        return cls(
            id=entry.id,
            at=entry.at,
            action=entry.action,
            actor_id=entry.actor_id,
            user_id=entry.user_id,
            target=entry.target,
            details=entry.details,
            ip=entry.ip,
            request_id=entry.request_id,
        )
