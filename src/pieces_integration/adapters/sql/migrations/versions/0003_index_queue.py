"""index_queue: durable work list of the search indexer

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "index_queue",
        sa.Column("asset_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("operation", sa.String(length=8), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_index_queue")),
    )
    op.create_index("ix_index_queue_enqueued", "index_queue", ["enqueued_at"], unique=False)
    op.create_index("ix_index_queue_user", "index_queue", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_index_queue_user", table_name="index_queue")
    op.drop_index("ix_index_queue_enqueued", table_name="index_queue")
    op.drop_table("index_queue")
