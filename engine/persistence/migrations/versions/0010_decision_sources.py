"""parties' decision sources, and the decisions proposed from them

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 19:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from engine.persistence.tables import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "decision_sources",
        sa.Column("round_id", sa.String(), sa.ForeignKey("rounds.id"), primary_key=True),
        sa.Column("party_id", sa.String(), primary_key=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("diary", sa.String(), nullable=True),
        sa.Column("polled_at", UTCDateTime(), nullable=True),
        sa.Column("next_poll_at", UTCDateTime(), nullable=True),
        sa.Column("sha256", sa.String(), nullable=True),
        sa.Column("warning", sa.String(), nullable=True),
    )
    op.create_index("ix_decision_sources_due", "decision_sources", ["next_poll_at"])
    op.create_table(
        "decision_proposals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("round_id", sa.String(), sa.ForeignKey("rounds.id"), nullable=False),
        sa.Column("party_id", sa.String(), nullable=False),
        sa.Column("item_key", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("source_url", sa.String(), nullable=False),
        sa.Column("item_url", sa.String(), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("meeting", sa.Date(), nullable=False),
        sa.Column("section", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("diary", sa.String(), nullable=True),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("for_state", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("proposed_at", UTCDateTime(), nullable=False),
        sa.Column("settled_at", UTCDateTime(), nullable=True),
        sa.Column("settled_by", sa.String(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.UniqueConstraint("round_id", "party_id", "item_key"),
    )
    op.create_index("ix_decision_proposals_round_id", "decision_proposals", ["round_id"])


def downgrade() -> None:
    op.drop_index("ix_decision_proposals_round_id", table_name="decision_proposals")
    op.drop_table("decision_proposals")
    op.drop_index("ix_decision_sources_due", table_name="decision_sources")
    op.drop_table("decision_sources")
