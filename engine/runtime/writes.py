"""What every write carries besides its content: how it came (``via``), and a once-only key.

A form posted twice (a double click, a reload, a browser retrying), or an API client sending its
request again, must write once. The key is kept in the write's own transaction (``requests``), so
a second write with it finds the first one's answer, whichever process it reaches. The key is
looked at under the round's lock, so two copies arriving together wait for each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session

from engine.core.text import line_problem
from engine.errors import InvalidInput
from engine.persistence.tables import RequestRow

__all__ = ["Once", "OnceKey", "Via", "check_once", "earlier", "keep", "with_via"]

# How a write was made when not from the command line: ``link``, by a party's contact from their
# personal link; ``web``, by a coordinator's page; ``api``, by a client of the API.
Via = Literal["link", "web", "api"]


@dataclass(frozen=True)
class Once:
    """A key its client chose (an API's Idempotency-Key) and the SHA-256 of the request it came
    with. A form's key is made from what was posted, so it is a plain ``str``; a client's key is
    its own, so the same key with another request is refused instead of answered."""

    key: str
    fingerprint: str


OnceKey = str | Once


def _key(kind: str, once: OnceKey) -> str:
    return f"{kind}:{once.key if isinstance(once, Once) else once}"


def check_once(once: OnceKey | None) -> None:
    key = once.key if isinstance(once, Once) else once
    if key is not None and (not key or len(key) > 200 or line_problem(key)):
        raise InvalidInput(
            "the once-only key must be one line of at most 200 characters", field="once"
        )


def earlier(session: Session, kind: str, once: OnceKey | None) -> dict[str, Any] | None:
    """The answer of the write of this kind that carried the key, if there was one."""
    if once is None:
        return None
    done = session.get(RequestRow, _key(kind, once))
    if done is None:
        return None
    if isinstance(once, Once) and done.fingerprint != once.fingerprint:
        raise InvalidInput(
            "this Idempotency-Key came first with another request; a new request needs a new key",
            field="once",
        )
    return done.result


def keep(
    session: Session, kind: str, once: OnceKey | None, result: dict[str, Any], now: datetime
) -> None:
    if once is not None:
        fingerprint = once.fingerprint if isinstance(once, Once) else None
        session.add(
            RequestRow(key=_key(kind, once), result=result, created_at=now, fingerprint=fingerprint)
        )


def with_via(evidence: dict[str, Any], via: Via | None) -> dict[str, Any]:
    return evidence if via is None else {**evidence, "via": via}
