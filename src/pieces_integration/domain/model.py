"""Domain entities of spec 6.3, as plain dataclasses.

Times are timezone-aware UTC datetimes. Identifiers are strings (UUIDs for the
service's own objects; whatever the remote side uses for `source_id`).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def content_hash(content: str) -> str:
    """Stable identity of an asset's text: SHA-256 of its exact UTF-8 bytes."""
    return hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"
    SERVICE = "service"
    GUEST = "guest"  # read-only

    @property
    def may_act_for_others(self) -> bool:
        return self in (Role.ADMIN, Role.SERVICE)

    @property
    def may_write(self) -> bool:
        return self is not Role.GUEST


class AssetSource(StrEnum):
    PIECES = "pieces"
    AIWFE = "aiwfe"
    USER = "user"


class Side(StrEnum):
    """The two remote systems an asset is kept in sync with."""

    PIECES = "pieces"
    AIWFE = "aiwfe"


@dataclass(slots=True)
class Consent:
    """Per-user privacy choices (spec 8.1), honoured by every flow that reads them."""

    asset_sync: bool = True
    context_sharing: str = "full"  # "full" | "limited"
    analytics: bool = False
    # Team collaboration (spec 8.1 "configurable", issue 16): off, the user cannot share
    # into teams. On by default, as teams shipped before the scope existed.
    team_collaboration: bool = True


# The reserved principal that keeps a deleted user's team assets (issue 16): their owner
# once the author's account is gone, shown as "deleted user". Stored disabled, refused by
# every sign-in path, never provisioned from a token; not a person, so never re-enabled.
DELETED_USER_ID = "~deleted-user"
DELETED_USER_LABEL = "deleted user"


def is_deleted_user(user_id: str | None) -> bool:
    return user_id == DELETED_USER_ID


@dataclass(slots=True)
class User:
    id: str
    role: Role = Role.USER
    email: str | None = None
    display_name: str | None = None
    consent: Consent = dc_field(default_factory=Consent)
    settings: dict[str, Any] = dc_field(default_factory=dict)
    created_at: datetime = dc_field(default_factory=utcnow)
    updated_at: datetime = dc_field(default_factory=utcnow)
    # Set while an admin has disabled the account (issue 20): every sign-in is refused,
    # the data stays. None: active.
    disabled_at: datetime | None = None
    # The identity provider's tenant (auth.tenant_claim) as of the user's last token:
    # their API keys share its rate limit (issue 20). None: no tenant.
    tenant: str | None = None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


@dataclass(frozen=True, slots=True)
class UserStanding:
    """What an API-key sign-in needs of its user, in one cheap read."""

    disabled_at: datetime | None
    tenant: str | None


@dataclass(slots=True)
class Asset:
    id: str
    user_id: str
    name: str
    content: str
    source: AssetSource = AssetSource.USER
    description: str | None = None
    language: str | None = None
    tags: list[str] = dc_field(default_factory=list)
    source_id: str | None = None
    metadata: dict[str, Any] = dc_field(default_factory=dict)
    created_at: datetime = dc_field(default_factory=utcnow)
    updated_at: datetime = dc_field(default_factory=utcnow)
    last_accessed: datetime | None = None
    usage_count: int = 0
    version: int = 1
    content_hash: str = ""
    hlc: str | None = None  # hybrid-logical-clock stamp of the last local change

    def __post_init__(self) -> None:
        if not self.content_hash:
            self.content_hash = content_hash(self.content)


@dataclass(slots=True)
class AssetLink:
    """Where an asset lives on one side, and the state last synced with it (the base)."""

    asset_id: str
    side: Side
    remote_id: str
    base_hash: str | None = None
    base_version: str | None = None
    synced_at: datetime | None = None
    base_snapshot: dict[str, Any] | None = None  # the synced fields at the base, for merges

    PENDING_PREFIX = "pending:"

    @property
    def pending(self) -> bool:
        """A create toward this side was started but its result not yet recorded."""
        return self.remote_id.startswith(self.PENDING_PREFIX)


@dataclass(slots=True)
class PiecesContextState:
    connected: bool = False
    last_sync: datetime | None = None
    sync_status: str = "idle"  # idle | syncing | error


@dataclass(slots=True)
class AIWFEContextState:
    active_chat: str | None = None
    recent_queries: list[str] = dc_field(default_factory=list)
    current_agent: str | None = None


@dataclass(slots=True)
class UserContext:
    user_id: str
    workspace_id: str | None = None
    current_task: str | None = None
    active_project: str | None = None
    active_files: list[str] = dc_field(default_factory=list)
    recent_assets: list[str] = dc_field(default_factory=list)
    keywords: list[str] = dc_field(default_factory=list)
    language_preferences: list[str] = dc_field(default_factory=list)
    last_updated: datetime = dc_field(default_factory=utcnow)
    pieces_context: PiecesContextState | None = None
    aiwfe_context: AIWFEContextState | None = None
    version: int = 0


@dataclass(slots=True)
class ContextChange:
    user_id: str
    field: str
    old_value: Any
    new_value: Any
    source: str  # "pieces" | "aiwfe" | "user"
    changed_at: datetime = dc_field(default_factory=utcnow)
    id: int | None = None


class ConnectionKind(StrEnum):
    PIECES = "pieces"
    AIWFE = "aiwfe"


@dataclass(slots=True)
class Connection:
    """A user's link to their Pieces OS (or to AIWFE). `secret` is plaintext in memory only."""

    id: str
    user_id: str
    kind: ConnectionKind
    url: str
    state: str = "disconnected"
    secret: str | None = None
    application_id: str | None = None
    remote_user_id: str | None = None
    remote_version: str | None = None
    last_successful_sync: datetime | None = None
    error_message: str | None = None
    settings: dict[str, Any] = dc_field(default_factory=dict)
    created_at: datetime = dc_field(default_factory=utcnow)
    updated_at: datetime = dc_field(default_factory=utcnow)


@dataclass(slots=True)
class ApiKey:
    id: str
    user_id: str
    name: str
    prefix: str
    key_hash: str
    role: Role
    created_at: datetime = dc_field(default_factory=utcnow)
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        now = utcnow()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(slots=True)
class SyncError:
    code: str
    message: str
    severity: str = "error"  # warning | error | critical
    item_id: str | None = None
    item_type: str | None = None
    timestamp: datetime = dc_field(default_factory=utcnow)


@dataclass(slots=True)
class SyncRun:
    """One synchronisation of one user; serialised as spec 6.3 `SyncResult`."""

    id: str
    user_id: str
    trigger: str = "manual"
    status: str = "pending"  # pending | in_progress | completed | failed
    started_at: datetime = dc_field(default_factory=utcnow)
    completed_at: datetime | None = None
    pieces_to_aiwfe: int = 0
    aiwfe_to_pieces: int = 0
    conflicts_resolved: int = 0
    errors: list[SyncError] = dc_field(default_factory=list)


@dataclass(slots=True)
class OutboxMessage:
    """A write toward a remote side, stored in the same transaction as the change it carries."""

    user_id: str
    target: str  # "pieces" | "aiwfe" | "events"
    operation: str
    payload: dict[str, Any]
    idempotency_key: str
    aggregate_id: str | None = None
    status: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime = dc_field(default_factory=utcnow)
    created_at: datetime = dc_field(default_factory=utcnow)
    delivered_at: datetime | None = None
    last_error: str | None = None
    id: int | None = None


@dataclass(slots=True)
class AuditEntry:
    action: str
    actor_id: str | None
    user_id: str | None = None
    target: str | None = None
    details: dict[str, Any] = dc_field(default_factory=dict)
    ip: str | None = None
    request_id: str | None = None
    at: datetime = dc_field(default_factory=utcnow)
    id: int | None = None


@dataclass(slots=True)
class SuggestionFeedback:
    """What a user did with a suggestion: shown, accepted, copied or dismissed."""

    user_id: str
    suggestion_id: str
    action: str
    asset_id: str | None = None
    context_hash: str | None = None
    created_at: datetime = dc_field(default_factory=utcnow)
    id: int | None = None


@dataclass(slots=True)
class AssetConflict:
    """The same asset changed on both sides since the base (spec 7.2 conflict resolution)."""

    id: str
    user_id: str
    asset_id: str
    side: str  # the remote side involved ("pieces" | "aiwfe")
    base: dict[str, Any] | None
    ours: dict[str, Any]
    theirs: dict[str, Any]
    strategy: str
    status: str = "open"  # open | resolved
    resolution: str | None = None  # auto | ours | theirs | merged
    created_at: datetime = dc_field(default_factory=utcnow)
    resolved_at: datetime | None = None


@dataclass(slots=True)
class AssetBackup:
    """A version kept before it was overwritten, so it can be restored (DEVIATIONS 12)."""

    id: str
    user_id: str
    asset_id: str
    reason: str
    snapshot: dict[str, Any]
    conflict_id: str | None = None
    created_at: datetime = dc_field(default_factory=utcnow)
