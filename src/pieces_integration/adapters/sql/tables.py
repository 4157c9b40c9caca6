"""The relational schema, as SQLAlchemy Core tables (the domain never sees these).

One schema for SQLite and PostgreSQL. JSON columns become JSONB on PostgreSQL.
Constraint names follow a convention so Alembic can drop them on both databases.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def _user_fk() -> sa.ForeignKey:
    return sa.ForeignKey("users.id", ondelete="CASCADE")


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("display_name", sa.String(256)),
    sa.Column("consent", Json, nullable=False),
    sa.Column("settings", Json, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # Set while an admin has disabled the account (issue 20); NULL while active.
    sa.Column("disabled_at", Timestamp),
    # The identity provider's tenant as of the last token (issue 20); NULL: none.
    sa.Column("tenant", sa.String(128)),
)

# Spec 7.1 step 5 (domain/preferences.py); privacy choices stay in users.consent.
user_preferences = sa.Table(
    "user_preferences",
    metadata,
    sa.Column("user_id", sa.String(128), _user_fk(), primary_key=True),
    sa.Column("sync_frequency_seconds", sa.Integer),
    sa.Column("notifications", Json, nullable=False),
    sa.Column("sharing_default", sa.String(64), nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(128), _user_fk(), nullable=False, index=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_used_at", Timestamp),
    sa.Column("expires_at", Timestamp),
    sa.Column("revoked_at", Timestamp),
)

connections = sa.Table(
    "connections",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(128), _user_fk(), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    # AES-GCM envelope (key id + nonce + ciphertext); never plaintext.
    sa.Column("secret_ciphertext", sa.LargeBinary),
    sa.Column("application_id", sa.String(64)),
    sa.Column("remote_user_id", sa.String(128)),
    sa.Column("remote_version", sa.String(64)),
    sa.Column("last_successful_sync", Timestamp),
    sa.Column("error_message", sa.Text),
    sa.Column("settings", Json, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("user_id", "kind"),
)

assets = sa.Table(
    "assets",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(128), _user_fk(), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("language", sa.String(64)),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("source_id", sa.String(128)),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("usage_count", sa.Integer, nullable=False),
    sa.Column("last_accessed", Timestamp),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("hlc", sa.String(64)),
    sa.Index("ix_assets_user_updated", "user_id", "updated_at", "id"),
    sa.Index("ix_assets_user_language", "user_id", "language"),
    sa.Index("ix_assets_user_hash", "user_id", "content_hash"),
)

asset_tags = sa.Table(
    "asset_tags",
    metadata,
    sa.Column(
        "asset_id", sa.String(36), sa.ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("tag", sa.String(128), primary_key=True),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Index("ix_asset_tags_user_tag", "user_id", "tag"),
)

# Per side (pieces / aiwfe): the remote id and the state last synced (the base).
asset_links = sa.Table(
    "asset_links",
    metadata,
    sa.Column(
        "asset_id", sa.String(36), sa.ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("side", sa.String(16), primary_key=True),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("remote_id", sa.String(128), nullable=False),
    sa.Column("base_hash", sa.String(64)),
    sa.Column("base_version", sa.String(64)),
    sa.Column("base_snapshot", Json),
    sa.Column("hlc", sa.String(32)),
    sa.Column("synced_at", Timestamp),
    sa.UniqueConstraint("user_id", "side", "remote_id"),
)

user_contexts = sa.Table(
    "user_contexts",
    metadata,
    sa.Column("user_id", sa.String(128), _user_fk(), primary_key=True),
    sa.Column("workspace_id", sa.String(128)),
    sa.Column("current_task", sa.Text),
    sa.Column("active_project", sa.String(512)),
    sa.Column("active_files", Json, nullable=False),
    sa.Column("recent_assets", Json, nullable=False),
    sa.Column("keywords", Json, nullable=False),
    sa.Column("language_preferences", Json, nullable=False),
    sa.Column("pieces_context", Json),
    sa.Column("aiwfe_context", Json),
    sa.Column("hlc", sa.String(32)),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("last_updated", Timestamp, nullable=False),
)

context_changes = sa.Table(
    "context_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(128), _user_fk(), nullable=False),
    sa.Column("field", sa.String(64), nullable=False),
    sa.Column("old_value", Json),
    sa.Column("new_value", Json),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("hlc", sa.String(32)),
    sa.Column("changed_at", Timestamp, nullable=False),
    sa.Index("ix_context_changes_user_at", "user_id", "changed_at"),
)

sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(128), _user_fk(), nullable=False),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("completed_at", Timestamp),
    sa.Column("pieces_to_aiwfe", sa.Integer, nullable=False),
    sa.Column("aiwfe_to_pieces", sa.Integer, nullable=False),
    sa.Column("conflicts_resolved", sa.Integer, nullable=False),
    sa.Column("cursor", Json),
    sa.Index("ix_sync_runs_user_started", "user_id", "started_at"),
)

sync_errors = sa.Table(
    "sync_errors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "sync_id", sa.String(36), sa.ForeignKey("sync_runs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("item_id", sa.String(128)),
    sa.Column("item_type", sa.String(32)),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("timestamp", Timestamp, nullable=False),
    sa.Index("ix_sync_errors_sync", "sync_id"),
)

# Transactional outbox: written in the same transaction as the change it carries.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("target", sa.String(16), nullable=False),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("aggregate_id", sa.String(128)),
    sa.Column("payload", Json, nullable=False),
    sa.Column("idempotency_key", sa.String(256), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("delivered_at", Timestamp),
    sa.Column("last_error", sa.Text),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_until", Timestamp),
    sa.Index("ix_outbox_due", "status", "next_attempt_at"),
    sa.Index("ix_outbox_user", "user_id", "id"),
)

conflicts = sa.Table(
    "conflicts",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(128), _user_fk(), nullable=False),
    sa.Column("asset_id", sa.String(36), nullable=False),
    sa.Column("base", Json),
    sa.Column("ours", Json, nullable=False),
    sa.Column("theirs", Json, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("strategy", sa.String(32), nullable=False),
    sa.Column("resolution", sa.String(16)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("resolved_at", Timestamp),
    sa.Index("ix_conflicts_user_status", "user_id", "status"),
)

asset_backups = sa.Table(
    "asset_backups",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(128), _user_fk(), nullable=False),
    sa.Column("asset_id", sa.String(36), nullable=False),
    sa.Column("conflict_id", sa.String(36)),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("snapshot", Json, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_asset_backups_asset", "asset_id", "created_at"),
)

suggestion_feedback = sa.Table(
    "suggestion_feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(128), _user_fk(), nullable=False),
    sa.Column("suggestion_id", sa.String(64), nullable=False),
    sa.Column("asset_id", sa.String(36)),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("context_hash", sa.String(64)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_suggestion_feedback_user_asset", "user_id", "asset_id"),
)

# Append-only. No foreign key: the record of a user's deletion outlives the user.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("actor_id", sa.String(128)),
    sa.Column("user_id", sa.String(128)),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(256)),
    sa.Column("details", Json, nullable=False),
    sa.Column("ip", sa.String(64)),
    sa.Column("request_id", sa.String(128)),
    sa.Index("ix_audit_log_user_at", "user_id", "at"),
    sa.Index("ix_audit_log_at", "at"),
)

# Webhook deliveries already processed (idempotency on the sender's event id).
webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(128)),
    sa.Column("received_at", Timestamp, nullable=False),
)

# Work for the search indexes, written in the same transaction as the asset change (see
# adapters/sql/index_queue.py). No foreign key: a delete must outlive its asset row.
index_queue = sa.Table(
    "index_queue",
    metadata,
    sa.Column("asset_id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(128)),
    sa.Column("operation", sa.String(8), nullable=False),
    sa.Column("content_hash", sa.String(64)),
    sa.Column("enqueued_at", Timestamp, nullable=False),
    sa.Column("claimed_until", Timestamp),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Index("ix_index_queue_enqueued", "enqueued_at"),
    sa.Index("ix_index_queue_user", "user_id"),
)

# Paired bridges (DEVIATIONS 5): secrets only as SHA-256 digests.
bridges = sa.Table(
    "bridges",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(128), _user_fk(), nullable=False, index=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("pairing_hash", sa.String(64), unique=True),
    sa.Column("pairing_expires_at", Timestamp),
    sa.Column("credential_hash", sa.String(64)),
    sa.Column("device_hash", sa.String(64)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("paired_at", Timestamp),
    sa.Column("last_seen_at", Timestamp),
    sa.Column("agent_version", sa.String(64)),
    sa.Column("revoked_at", Timestamp),
)

# Teams (issue 16). `created_by` has no foreign key: a team outlives its creator's account.
teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("created_by", sa.String(128)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# A membership goes with its team and with its user's account.
team_members = sa.Table(
    "team_members",
    metadata,
    sa.Column(
        "team_id", sa.String(36), sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("user_id", sa.String(128), _user_fk(), primary_key=True, index=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("added_by", sa.String(128)),
    sa.Column("added_at", Timestamp, nullable=False),
)

# An asset shared into a team's library; goes with the asset and with the team.
asset_shares = sa.Table(
    "asset_shares",
    metadata,
    sa.Column(
        "asset_id", sa.String(36), sa.ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "team_id",
        sa.String(36),
        sa.ForeignKey("teams.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    sa.Column("shared_by", sa.String(128)),
    sa.Column("shared_at", Timestamp, nullable=False),
)

# "Save to my Pieces" (issue 16): a member's copy of a team asset at one revision. The row
# goes with the copy (deleting it lets the member save again) and with the member's account;
# `source_asset_id` has no foreign key, so the copy still says where it came from once the
# team asset is gone. One row per (member, asset, revision): saving twice returns the copy.
asset_saves = sa.Table(
    "asset_saves",
    metadata,
    sa.Column("user_id", sa.String(128), _user_fk(), primary_key=True),
    sa.Column("source_asset_id", sa.String(36), primary_key=True),
    sa.Column("revision_number", sa.Integer, primary_key=True),
    sa.Column("revision_id", sa.String(36), nullable=False),
    sa.Column(
        "copy_id",
        sa.String(36),
        sa.ForeignKey("assets.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("saved_at", Timestamp, nullable=False),
)

# Immutable revisions of team assets. `author_id` has no foreign key: the history outlives
# the author's account (it reads "deleted user" then).
asset_revisions = sa.Table(
    "asset_revisions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "asset_id", sa.String(36), sa.ForeignKey("assets.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("author_id", sa.String(128)),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("language", sa.String(64)),
    sa.Column("tags", Json, nullable=False),
    sa.Column("diff", sa.Text),
    sa.Column("restored_from", sa.Integer),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("asset_id", "number"),
)
