"""The command line's fast reads: a use case answered through the database's driver alone
(``persistence.reader``), for a process that would otherwise spend most of its life importing
SQLAlchemy and SQLModel. Each answers exactly as the use case it stands for, or None when it
cannot be sure, and the caller runs that use case instead."""

from __future__ import annotations

from typing import NamedTuple

from engine.persistence.reader import Unsure, read_heads, read_status_rows
from engine.runtime.results import RoundStatus
from engine.runtime.status_view import round_status

__all__ = ["QuickHead", "quick_heads", "quick_status"]


class QuickHead(NamedTuple):
    """A round's head, as :class:`~engine.runtime.HeadReport` has it (which lives with the
    audit and its SQLAlchemy)."""

    round: str
    entries: int
    head: str


def quick_status(url: str, ref: str | None) -> list[RoundStatus] | None:
    """:func:`~engine.runtime.status` on the database at ``url``, or None: take the full path."""
    # A reference lookup.check_id refuses names no round, so the reader does not find it either.
    try:
        found = read_status_rows(url, ref)
    except Unsure:
        return None
    return [round_status(row, parties, outbox) for row, parties, outbox in found]


def quick_heads(url: str, ref: str | None) -> list[QuickHead] | None:
    """:func:`~engine.runtime.heads` on the database at ``url``, or None: take the full path."""
    try:
        return [QuickHead(*found) for found in read_heads(url, ref)]
    except Unsure:
        return None
