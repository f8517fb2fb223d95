"""an agreement in several languages: each language's title with the round, each language's text
with each version of it

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 19:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: the round runs in one language (its title and its text are the columns beside).
    # A plain ADD COLUMN: a batch would copy ``documents`` and lose its append-only triggers.
    op.add_column("rounds", sa.Column("titles", sa.JSON(), nullable=True))
    op.add_column("documents", sa.Column("texts", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("documents", "texts")
    op.drop_column("rounds", "titles")
