"""Pieces integration schemas (spec 6.1 Integration Operations, 6.3 Connection models)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator

from pieces_integration.domain.connection_state import UserMessage
from pieces_integration.service_layer.pieces.results import (
    BridgeStatus,
    ConnectionResult,
    ConnectionStatus,
    Detection,
    DisconnectionResult,
    PiecesInfo,
)

_Url = Field(None, max_length=2048, validation_alias=AliasChoices("url", "pieces_url"))
ConnectionStateName = Literal["connected", "connecting", "disconnected", "connection_failed"]
FailureName = Literal[
    "not_running",
    "network",
    "authentication",
    "service_unavailable",
    "tls_untrusted",
    "tls_expired",
    "tls_hostname_mismatch",
]


class UserActionPublic(BaseModel):
    id: str
    label: str
    url: str | None = None


class UserMessagePublic(BaseModel):
    """What the UI shows for a failure (spec 8.4): the message and the actions it offers."""

    title: str
    message: str
    actions: list[UserActionPublic]

    @classmethod
    def of(cls, message: UserMessage | None) -> UserMessagePublic | None:
        if message is None:
            return None
        return cls(
            title=message.title,
            message=message.message,
            actions=[UserActionPublic(id=a.id, label=a.label, url=a.url) for a in message.actions],
        )


class PiecesDetect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = _Url


class PiecesDetectionPublic(BaseModel):
    available: bool
    url: str | None
    version: str | None
    compatible: bool | None
    legacy: bool
    elapsed_ms: float
    message: UserMessagePublic | None

    @classmethod
    def of(cls, detection: Detection) -> PiecesDetectionPublic:
        return cls(
            available=detection.available,
            url=detection.url,
            version=detection.version,
            compatible=detection.compatible,
            legacy=detection.legacy,
            elapsed_ms=round(detection.elapsed_ms, 1),
            message=UserMessagePublic.of(detection.message),
        )


_PRINTABLE_ASCII = r"^[\x21-\x7e]+$"  # an API key travels in an HTTP header


class PiecesConnect(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    pieces_url: str | None = Field(
        None, max_length=2048, validation_alias=AliasChoices("pieces_url", "url")
    )
    # Sent upstream in an HTTP header, so printable ASCII only.
    api_key: SecretStr | None = Field(
        None,
        max_length=4096,
        validation_alias=AliasChoices("api_key", "apiKey"),
        json_schema_extra={"pattern": _PRINTABLE_ASCII},
    )
    user_preferences: dict[str, Any] = Field(default_factory=dict)
    user_id: str | None = Field(None, min_length=1, max_length=128)

    @field_validator("api_key")
    @classmethod
    def _header_safe(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(_PRINTABLE_ASCII, value.get_secret_value()):
            raise ValueError("must be printable ASCII (it is sent in an HTTP header)")
        return value


class PiecesInfoPublic(BaseModel):
    version: str
    user_id: str
    capabilities: list[str]
    asset_count: int | None = None

    @classmethod
    def of(cls, info: PiecesInfo | None) -> PiecesInfoPublic | None:
        if info is None:
            return None
        return cls(
            version=info.version,
            user_id=info.user_id,
            capabilities=list(info.capabilities),
            asset_count=info.asset_count,
        )


class ConnectionResultPublic(BaseModel):
    success: bool
    connection_id: str
    state: ConnectionStateName
    pieces_info: PiecesInfoPublic | None
    initial_sync_scheduled: bool
    message: str | None = None
    failure: FailureName | None = None
    user_message: UserMessagePublic | None = None

    @classmethod
    def of(cls, result: ConnectionResult) -> ConnectionResultPublic:
        return cls(
            success=result.success,
            connection_id=result.connection_id,
            state=result.state.value,
            pieces_info=PiecesInfoPublic.of(result.pieces_info),
            initial_sync_scheduled=result.initial_sync_scheduled,
            message=result.message,
            failure=result.failure.value if result.failure else None,
            user_message=UserMessagePublic.of(result.user_message),
        )


class BridgeStatusPublic(BaseModel):
    """The user's bridge, when their Pieces connection runs through one (DEVIATIONS 5)."""

    id: str
    connected: bool
    last_heartbeat: datetime | None = None
    rtt_ms: float | None = None
    agent_version: str | None = None

    @classmethod
    def of(cls, bridge: BridgeStatus | None) -> BridgeStatusPublic | None:
        if bridge is None:
            return None
        return cls(
            id=bridge.bridge_id,
            connected=bridge.connected,
            last_heartbeat=bridge.last_heartbeat,
            rtt_ms=bridge.rtt_ms,
            agent_version=bridge.agent_version,
        )


class ConnectionStatusPublic(BaseModel):
    connected: bool
    state: ConnectionStateName
    connection_id: str | None = None
    last_successful_sync: datetime | None = None
    sync_status: Literal["idle", "syncing", "error"]
    error_message: str | None = None
    failure: FailureName | None = None
    user_message: UserMessagePublic | None = None
    retry_attempt: int = 0
    max_attempts: int = 0
    pieces_info: PiecesInfoPublic | None = None
    mode: Literal["direct", "bridge"] = "direct"
    bridge: BridgeStatusPublic | None = None

    @classmethod
    def of(cls, status: ConnectionStatus) -> ConnectionStatusPublic:
        return cls(
            connected=status.connected,
            state=status.state.value,
            connection_id=status.connection_id,
            last_successful_sync=status.last_successful_sync,
            sync_status=status.sync_status,
            error_message=status.error_message,
            failure=status.failure.value if status.failure else None,
            user_message=UserMessagePublic.of(status.user_message),
            retry_attempt=status.retry_attempt,
            max_attempts=status.max_attempts,
            pieces_info=PiecesInfoPublic.of(status.pieces_info),
            mode="bridge" if status.mode == "bridge" else "direct",
            bridge=BridgeStatusPublic.of(status.bridge),
        )


class PiecesDisconnect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = Field(None, min_length=1, max_length=128)
    preserve_data: bool = True


class DisconnectionResultPublic(BaseModel):
    success: bool
    user_id: str
    data_preserved: bool

    @classmethod
    def of(cls, result: DisconnectionResult) -> DisconnectionResultPublic:
        return cls(
            success=result.success, user_id=result.user_id, data_preserved=result.data_preserved
        )
