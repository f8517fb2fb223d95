"""calendars fetched from a URL by the worker: the URL, when it was last tried and last read,
the SHA-256 of what was read, the last error

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 19:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from engine.persistence.tables import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("body_calendars") as table:
        table.add_column(sa.Column("url", sa.String(), nullable=True))
        table.add_column(sa.Column("checked_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("fetched_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("sha256", sa.String(), nullable=True))
        table.add_column(sa.Column("error", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("body_calendars") as table:
        for name in ("error", "sha256", "fetched_at", "checked_at", "url"):
            table.drop_column(name)
