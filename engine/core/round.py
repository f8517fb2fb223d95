"""Pure decisions about a whole round: whether its parties make it active or failed, and from when.

The runtime asks :func:`settle` in the transaction of every event that ends a party; replay asks
the same function of the log, so the rule lives here alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from workflows import Role

__all__ = ["Outcome", "settle"]


@dataclass(frozen=True)
class Outcome:
    """What the round becomes: ``active`` from ``effective_date``, or ``failed``."""

    state: Literal["active", "failed"]
    effective_date: date | None = None


def settle(roles: Iterable[Role], now: datetime) -> Outcome | None:
    """The round's outcome once its parties are in states of ``roles``, at ``now`` (local time):
    failed when any party failed, active (effective today) when every party is done, otherwise
    None (the round stays open)."""
    roles = list(roles)
    if "failed" in roles:
        return Outcome("failed")
    if roles and all(role == "done" for role in roles):
        return Outcome("active", now.date())
    return None
