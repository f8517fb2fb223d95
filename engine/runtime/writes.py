"""What every write carries besides its content: how it came (``via``), and a once-only key.

A form posted twice (a double click, a reload, a browser retrying), or an API client sending its
request again, must write once. The key is kept in the write's own transaction (``requests``), so
a second write with it finds the first one's answer, whichever process it reaches. The key is
looked at under the round's lock, so two copies arriving together wait for each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session

from engine.core.text import line_problem
from engine.errors import InvalidInput
from engine.persistence.tables import RequestRow

__all__ = ["Via", "check_once", "earlier", "keep", "with_via"]

# How a write was made when not from the command line: ``link``, by a party's contact from their
# personal link; ``web``, by a coordinator's page; ``api``, by a client of the API.
Via = Literal["link", "web", "api"]


def check_once(once: str | None) -> None:
    if once is not None and (not once or len(once) > 200 or line_problem(once)):
        raise InvalidInput("the once-only key must be one line of at most 200 characters")


def earlier(session: Session, kind: str, once: str | None) -> dict[str, Any] | None:
    """The answer of the write of this kind that carried the key, if there was one."""
    if once is None:
        return None
    done = session.get(RequestRow, f"{kind}:{once}")
    return None if done is None else done.result


def keep(
    session: Session, kind: str, once: str | None, result: dict[str, Any], now: datetime
) -> None:
    if once is not None:
        session.add(RequestRow(key=f"{kind}:{once}", result=result, created_at=now))


def with_via(evidence: dict[str, Any], via: Via | None) -> dict[str, Any]:
    return evidence if via is None else {**evidence, "via": via}
