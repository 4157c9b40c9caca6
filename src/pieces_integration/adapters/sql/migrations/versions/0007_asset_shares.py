"""asset_shares: assets shared into team libraries (issue 16)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "asset_shares",
        sa.Column("asset_id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("shared_by", sa.String(length=128), nullable=True),
        sa.Column("shared_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_asset_shares_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_asset_shares_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("asset_id", "team_id", name=op.f("pk_asset_shares")),
    )
    op.create_index(op.f("ix_asset_shares_team_id"), "asset_shares", ["team_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_asset_shares_team_id"), table_name="asset_shares")
    op.drop_table("asset_shares")
