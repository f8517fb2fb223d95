"""bodies' meeting calendars, as the agreement file gave them at launch

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 05:40:00.000000
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
        "body_calendars",
        sa.Column("round_id", sa.String(), sa.ForeignKey("rounds.id"), primary_key=True),
        sa.Column("party_id", sa.String(), primary_key=True),
        sa.Column("body", sa.String(), primary_key=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("meetings", sa.JSON(), nullable=False),
        sa.Column("agenda_days", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("body_calendars")
