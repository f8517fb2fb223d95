"""the web application: files, once-only requests, party links, users, sessions; personal parts
of messages

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from engine.persistence.tables import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("personal", sa.JSON(), nullable=True))
    op.create_table(
        "files",
        sa.Column("round_id", sa.String(), sa.ForeignKey("rounds.id"), primary_key=True),
        sa.Column("sha256", sa.String(), primary_key=True),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("content_type", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "requests",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "party_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("round_id", sa.String(), sa.ForeignKey("rounds.id"), nullable=False),
        sa.Column("party_id", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("nonce", sa.String(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_party_links_contact", "party_links", ["round_id", "party_id", "email"])
    op.create_table(
        "users",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(), primary_key=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("user_name", sa.String(), nullable=True),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("web_sessions")
    op.drop_table("users")
    op.drop_index("ix_party_links_contact", table_name="party_links")
    op.drop_table("party_links")
    op.drop_table("requests")
    op.drop_table("files")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("personal")
