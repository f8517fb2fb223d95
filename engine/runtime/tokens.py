"""The JSON API's clients: bearer tokens, each with a name, a role and maybe one round.

A token is ``ratify_`` and 256 random bits (URL-safe base64), printed once when made. The
database keeps only its SHA-256: a token is a random secret, not a password, so a fast hash is
enough (no guessing beats 2^256) and checking one costs a lookup. A name is given once: the log
names a client's writes by it, so a revoked token's name is never someone else's.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import col, select

from engine.clock import Clock
from engine.errors import AccessDenied, InvalidInput, NotFound, Refused
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import ApiTokenRow
from engine.runtime.lookup import aware, resolve_round

__all__ = [
    "TOKEN_ROLES",
    "ApiClient",
    "NewToken",
    "TokenInfo",
    "authenticate",
    "create_token",
    "revoke_token",
    "tokens",
]

TOKEN_ROLES = ("coordinator", "auditor")
PREFIX = "ratify_"  # lets secret scanners and people tell a ratify token from other strings
# ASCII only: a name is typed into commands and read in the log, where look-alikes would mislead.
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_TOKEN = re.compile(r"ratify_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class ApiClient:
    """Who a request's token belongs to."""

    name: str
    role: str  # coordinator, auditor
    round: str | None  # the one round it reaches, or None for every round

    def may_write(self) -> bool:
        return self.role == "coordinator"

    def reaches(self, round_id: str) -> bool:
        return self.round is None or self.round == round_id


@dataclass(frozen=True)
class TokenInfo:
    name: str
    role: str
    round: str | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewToken:
    info: TokenInfo
    token: str  # shown once; only its hash is kept


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _info(row: ApiTokenRow) -> TokenInfo:
    revoked = aware(row.revoked_at) if row.revoked_at is not None else None
    return TokenInfo(
        row.name, row.role, row.round_id, row.created_by, aware(row.created_at), revoked
    )


def _name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"token name {name!r}: use 1 to 64 of a-z, 0-9, '.', '_' and '-', "
            "starting with a letter or digit (for example dynasty-hameenlinna)",
            field="name",
        )
    return name


def create_token(
    engine: Engine, name: str, role: str, clock: Clock, actor: str, *, round_ref: str | None = None
) -> NewToken:
    """Make a token for a client; the token itself is in the result and nowhere else."""
    ensure_schema(engine)
    name = _name(name)
    if role not in TOKEN_ROLES:
        raise InvalidInput(f"role {role!r}: give one of {', '.join(TOKEN_ROLES)}", field="role")
    token = PREFIX + secrets.token_urlsafe(32)
    with transaction(engine) as session:
        round_id = resolve_round(session, round_ref).id if round_ref is not None else None
        taken = session.exec(select(ApiTokenRow).where(col(ApiTokenRow.name) == name)).first()
        if taken is not None:
            state = "revoked" if taken.revoked_at is not None else "in use"
            raise Refused(
                f"a token named {name!r} exists ({state}); a name is given once, "
                "so choose another (for example with the year or a number)"
            )
        row = ApiTokenRow(
            name=name,
            role=role,
            round_id=round_id,
            token_hash=_hash(token),
            created_by=actor,
            created_at=clock.now(UTC),
        )
        session.add(row)
        session.flush()
        return NewToken(_info(row), token)


def tokens(engine: Engine) -> list[TokenInfo]:
    ensure_schema(engine)
    with transaction(engine) as session:
        rows = session.exec(select(ApiTokenRow).order_by(col(ApiTokenRow.name))).all()
        return [_info(r) for r in rows]


def revoke_token(engine: Engine, name: str, clock: Clock) -> TokenInfo:
    """Stop a token at once; it stays listed, revoked."""
    ensure_schema(engine)
    with transaction(engine) as session:
        row = session.exec(
            select(ApiTokenRow).where(col(ApiTokenRow.name) == name).with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"no token named {name!r}; `ratify token list` shows them", field="name")
        if row.revoked_at is None:
            row.revoked_at = clock.now(UTC)
            session.add(row)
            session.flush()
        return _info(row)


def authenticate(engine: Engine, token: str) -> ApiClient:
    """The client a bearer token belongs to; AccessDenied for a malformed, unknown or revoked
    one (the same answer for each, so that an answer tells nothing about other tokens)."""
    if not _TOKEN.fullmatch(token):
        raise AccessDenied("no valid bearer token", reason="token")
    ensure_schema(engine)
    with transaction(engine) as session:
        row = session.exec(
            select(ApiTokenRow).where(col(ApiTokenRow.token_hash) == _hash(token))
        ).first()
        if row is None or row.revoked_at is not None:
            raise AccessDenied("no valid bearer token", reason="token")
        return ApiClient(row.name, row.role, row.round_id)
