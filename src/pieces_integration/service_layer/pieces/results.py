"""What the Pieces use cases answer (spec 6.3 ConnectionResult / ConnectionStatus)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pieces_integration.domain.connection_state import ConnectionState, FailureKind, UserMessage

CAPABILITIES = ("assets.read", "assets.write", "search", "streams.identifiers")


@dataclass(frozen=True, slots=True)
class Detection:
    available: bool
    url: str | None
    version: str | None
    compatible: bool | None
    legacy: bool
    elapsed_ms: float
    message: UserMessage | None


@dataclass(frozen=True, slots=True)
class PiecesInfo:
    version: str
    user_id: str
    capabilities: tuple[str, ...] = CAPABILITIES
    asset_count: int | None = None


@dataclass(frozen=True, slots=True)
class ConnectionResult:
    success: bool
    connection_id: str
    state: ConnectionState
    pieces_info: PiecesInfo | None
    initial_sync_scheduled: bool
    message: str | None = None
    failure: FailureKind | None = None
    user_message: UserMessage | None = None


@dataclass(frozen=True, slots=True)
class BridgeStatus:
    """The bridge of a user whose Pieces connection runs through one (DEVIATIONS 5)."""

    connected: bool
    bridge_id: str
    last_heartbeat: datetime | None = None
    rtt_ms: float | None = None
    agent_version: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    connected: bool
    state: ConnectionState
    connection_id: str | None = None
    last_successful_sync: datetime | None = None
    sync_status: str = "idle"
    error_message: str | None = None
    failure: FailureKind | None = None
    user_message: UserMessage | None = None
    retry_attempt: int = 0
    max_attempts: int = 0
    pieces_info: PiecesInfo | None = None
    mode: str = "direct"  # or "bridge"
    bridge: BridgeStatus | None = None


@dataclass(frozen=True, slots=True)
class DisconnectionResult:
    success: bool
    user_id: str
    data_preserved: bool
