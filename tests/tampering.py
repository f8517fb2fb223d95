"""Changing the database behind ratify's back, as an intruder with full rights would.

The log and the stored texts are guarded by triggers (migration 0003); someone who can write to
the database directly can usually drop triggers too, so the tamper tests do that first and then
check that ``ratify audit verify`` still catches the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, TextClause, text

GUARDED = ("log_entries", "documents")


def drop_append_only_guards(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in GUARDED:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}"))
            else:
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))


def tamper(engine: Engine, statement: str | TextClause, **params: Any) -> None:
    """Run ``statement`` with the append-only guards out of the way."""
    drop_append_only_guards(engine)
    with engine.begin() as conn:
        conn.execute(text(statement) if isinstance(statement, str) else statement, params)
