"""asset_saves: members' "Save to my Pieces" copies of team assets (issue 16)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 16:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "asset_saves",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("source_asset_id", sa.String(length=36), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("revision_id", sa.String(length=36), nullable=False),
        sa.Column("copy_id", sa.String(length=36), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["copy_id"],
            ["assets.id"],
            name=op.f("fk_asset_saves_copy_id_assets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_asset_saves_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "source_asset_id", "revision_number", name=op.f("pk_asset_saves")
        ),
    )
    op.create_index(op.f("ix_asset_saves_copy_id"), "asset_saves", ["copy_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_asset_saves_copy_id"), table_name="asset_saves")
    op.drop_table("asset_saves")
