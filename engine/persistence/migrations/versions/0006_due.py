"""when each party may next have something due (a reminder, an escalation, legal force)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from engine.persistence.tables import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_at", UTCDateTime(), nullable=True))
        batch_op.create_index("ix_parties_due", ["due_at"])
    # Every party of an open round is looked at by the next tick, which sets its real time.
    op.execute(
        "UPDATE parties SET due_at = since "
        "WHERE round_id IN (SELECT id FROM rounds WHERE state = 'open')"
    )


def downgrade() -> None:
    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.drop_index("ix_parties_due")
        batch_op.drop_column("due_at")
