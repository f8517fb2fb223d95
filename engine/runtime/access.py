"""Who may do what: coordinators' and auditors' accounts, party contacts' personal links, and the
sessions of the browsers that use them.

A party link is ``{id}-{mac}``: the row's id and an HMAC-SHA256 (32 bytes) of the id and the row's
random nonce under the server's secret. The database never holds a token nor the secret, so a
copy of it opens nothing; changing one character of a link makes it unknown. Sessions are random
tokens of which only the SHA-256 is stored. Opening a link reads; only starting a session writes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Table, delete, insert, tuple_
from sqlmodel import Session, col, select

from engine.clock import Clock
from engine.core.text import ACTOR_MAX, length_problem, line_problem
from engine.errors import AccessDenied, InvalidInput
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import LinkRow, PartyRow, RoundRow, SessionRow, UserRow
from engine.runtime.languages import title_in
from engine.runtime.lookup import aware

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = [
    "ROLES",
    "Keys",
    "LinkView",
    "Principal",
    "UserInfo",
    "add_user",
    "link_for",
    "links_for",
    "new_link",
    "open_link",
    "principal_of",
    "sign_in",
    "sign_out",
    "start_party_session",
    "users",
]

ROLES = ("coordinator", "auditor")
USER_HOURS = 8  # a user's session lasts a working day
PARTY_HOURS = 2  # a contact's, long enough to fill in a form; the link starts another
FREE_FAILURES = 3  # sign-ins that may fail before the next one waits
MAX_WAIT = timedelta(minutes=15)
NO_DEADLINE_DAYS = 180  # how long a link lasts in a round without a deadline

Role = Literal["coordinator", "auditor", "party"]


@dataclass(frozen=True)
class Keys:
    """The server's secret, where it is reached, and how long party links last."""

    secret: bytes
    base_url: str
    link_days: int = 30

    def link_token(self, link_id: int, nonce: str) -> str:
        mac = hmac.new(self.secret, f"ratify-link\0{link_id}\0{nonce}".encode(), hashlib.sha256)
        return f"{link_id}-{base64.urlsafe_b64encode(mac.digest()).decode().rstrip('=')}"

    def link_url(self, token: str | None) -> str:
        return f"{self.base_url.rstrip('/')}/p/{token or '-'}"


@dataclass(frozen=True)
class Principal:
    """Who a session belongs to: a user (coordinator, auditor) or one party's contact."""

    kind: Literal["user", "party"]
    name: str
    role: Role
    expires_at: datetime
    round: str | None = None
    party: str | None = None
    email: str | None = None
    language: str | None = None

    def may_write(self) -> bool:
        return self.role in ("coordinator", "party")


@dataclass(frozen=True)
class LinkView:
    """What opening a party link shows, before any session: nothing is written."""

    round: str
    title: str
    party: str
    party_name: str
    contact: str
    language: str
    expires_at: datetime  # in the round's zone


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: str
    created_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utcnow(clock: Clock) -> datetime:
    return clock.now(UTC)


# ---- users ---------------------------------------------------------------------------------


def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher  # a C extension: loaded by the commands that need it

    return PasswordHasher()


def add_user(engine: Engine, name: str, role: str, password: str, clock: Clock) -> UserInfo:
    """Create an account, or set the role and password of an existing one."""
    ensure_schema(engine)
    name = " ".join(name.split())
    problem = line_problem(name) or length_problem(name, ACTOR_MAX)
    if not name or problem:
        raise InvalidInput(f"user name: {problem or 'give a name'}", field="name")
    if role not in ROLES:
        raise InvalidInput(f"role {role!r}: give one of {', '.join(ROLES)}", field="role")
    if len(password) < 12:
        raise InvalidInput("the password must have at least 12 characters", field="password")
    if len(password) > 1024:
        raise InvalidInput("the password may have at most 1024 characters", field="password")
    hashed = _hasher().hash(password)
    now = _utcnow(clock)
    with transaction(engine) as session:
        row = session.get(UserRow, name)
        if row is None:
            row = UserRow(name=name, role=role, password_hash=hashed, created_at=now)
        else:
            row.role, row.password_hash, row.failures, row.locked_until = role, hashed, 0, None
            # A new password ends the sessions opened with the old one.
            session.execute(delete(SessionRow).where(col(SessionRow.user_name) == name))
        session.add(row)
        return UserInfo(row.name, row.role, aware(row.created_at))


def users(engine: Engine) -> list[UserInfo]:
    ensure_schema(engine)
    with transaction(engine) as session:
        rows = session.exec(select(UserRow).order_by(col(UserRow.name))).all()
        return [UserInfo(r.name, r.role, aware(r.created_at)) for r in rows]


# An argon2 hash to check against when the user does not exist, so that an unknown name costs
# what a wrong password does and the time of the answer does not tell which it was.
_DUMMY: list[str] = []


def sign_in(engine: Engine, name: str, password: str, clock: Clock) -> tuple[str, Principal]:
    """Check a user's password; a session token (for the cookie) and who it is. After a few
    failures each further attempt must wait, doubling up to a quarter of an hour."""
    from argon2.exceptions import InvalidHashError, VerifyMismatchError

    ensure_schema(engine)
    name = " ".join(name.split())
    now = _utcnow(clock)
    hasher = _hasher()
    with transaction(engine) as session:
        row = session.get(UserRow, name, with_for_update=True) if name else None
        if row is None:
            if not _DUMMY:
                _DUMMY.append(hasher.hash(secrets.token_hex(16)))
            with contextlib.suppress(VerifyMismatchError):
                hasher.verify(_DUMMY[0], password)
            raise AccessDenied("wrong user name or password", reason="credentials")
        if row.locked_until is not None and aware(row.locked_until) > now:
            wait = int((aware(row.locked_until) - now).total_seconds()) + 1
            raise AccessDenied(
                f"too many failed sign-ins; try again in {wait} s", reason="throttled", wait=wait
            )
        try:
            hasher.verify(row.password_hash, password)
        except (VerifyMismatchError, InvalidHashError):
            row.failures += 1
            if row.failures >= FREE_FAILURES:
                wait_s = min(2 ** (row.failures - FREE_FAILURES), MAX_WAIT.total_seconds())
                row.locked_until = now + timedelta(seconds=wait_s)
            session.add(row)
            failed = True
        else:
            failed = False
            row.failures, row.locked_until = 0, None
            if hasher.check_needs_rehash(row.password_hash):
                row.password_hash = hasher.hash(password)
            session.add(row)
            token = secrets.token_urlsafe(32)
            expires = now + timedelta(hours=USER_HOURS)
            session.add(
                SessionRow(
                    token_hash=_hash(token),
                    kind="user",
                    user_name=row.name,
                    created_at=now,
                    expires_at=expires,
                )
            )
            principal = Principal("user", row.name, row.role, expires)  # type: ignore[arg-type]
    if failed:  # the failure is counted (committed) before it is reported
        raise AccessDenied("wrong user name or password", reason="credentials")
    return token, principal


def sign_out(engine: Engine, token: str) -> None:
    ensure_schema(engine)
    with transaction(engine) as session:
        session.execute(delete(SessionRow).where(col(SessionRow.token_hash) == _hash(token)))


# ---- party links ---------------------------------------------------------------------------


def _link_row(session: Session, keys: Keys, token: str) -> LinkRow:
    head, dash, _ = token.partition("-")
    if not dash or not head.isdigit() or len(head) > 12 or len(token) > 80:
        raise AccessDenied("this link is not known", reason="unknown")
    row = session.get(LinkRow, int(head))
    if row is None or not hmac.compare_digest(keys.link_token(int(head), row.nonce), token):
        raise AccessDenied("this link is not known", reason="unknown")
    return row


def _contact(party: PartyRow | None, email: str) -> dict[str, str] | None:
    if party is None:
        return None
    return next((c for c in party.contacts if c["email"] == email), None)


def _check_link(
    session: Session, link: LinkRow, now: datetime
) -> tuple[RoundRow, PartyRow, dict[str, str]]:
    if link.revoked_at is not None:
        raise AccessDenied("this link was withdrawn by the coordinator", reason="revoked")
    if aware(link.expires_at) <= now:
        raise AccessDenied("this link has expired", reason="expired")
    row = session.get(RoundRow, link.round_id)
    party = session.get(PartyRow, (link.round_id, link.party_id))
    contact = _contact(party, link.email)
    if row is None or party is None or contact is None:
        raise AccessDenied("this link was withdrawn by the coordinator", reason="revoked")
    return row, party, contact


def open_link(engine: Engine, keys: Keys, token: str, clock: Clock) -> LinkView:
    """What a link leads to. Writes nothing: mail scanners open every link."""
    ensure_schema(engine)
    with transaction(engine) as session:
        link = _link_row(session, keys, token)
        row, party, contact = _check_link(session, link, _utcnow(clock))
        return LinkView(
            round=row.id,
            title=title_in(row, contact["language"]),  # the contact's language's
            party=party.party_id,
            party_name=party.name,
            contact=contact["name"],
            language=contact["language"],
            expires_at=aware(link.expires_at).astimezone(ZoneInfo(row.timezone)),
        )


def start_party_session(
    engine: Engine, keys: Keys, token: str, clock: Clock
) -> tuple[str, Principal]:
    """A session for the link's contact, in its party of its round: asked for by a button, so
    that a scanner that only opens the link starts nothing."""
    ensure_schema(engine)
    now = _utcnow(clock)
    with transaction(engine) as session:
        link = _link_row(session, keys, token)
        row, party, contact = _check_link(session, link, now)
        expires = min(now + timedelta(hours=PARTY_HOURS), aware(link.expires_at))
        session_token = secrets.token_urlsafe(32)
        session.add(
            SessionRow(
                token_hash=_hash(session_token),
                kind="party",
                link_id=link.id,
                created_at=now,
                expires_at=expires,
            )
        )
        return session_token, _party_principal(row, party, contact, expires)


def _party_principal(
    row: RoundRow, party: PartyRow, contact: dict[str, str], expires: datetime
) -> Principal:
    return Principal(
        "party",
        contact["name"],
        "party",
        expires,
        round=row.id,
        party=party.party_id,
        email=contact["email"],
        language=contact["language"],
    )


def principal_of(engine: Engine, token: str, clock: Clock) -> Principal:
    """Who holds this session cookie; AccessDenied when it has expired or was ended (a party
    contact's also when the link was withdrawn or the contact removed)."""
    ensure_schema(engine)
    now = _utcnow(clock)
    with transaction(engine) as session:
        found = session.get(SessionRow, _hash(token)) if token else None
        if found is None or aware(found.expires_at) <= now:
            raise AccessDenied("your session has ended; sign in again", reason="session")
        if found.kind == "user":
            user = session.get(UserRow, found.user_name) if found.user_name else None
            if user is None:
                raise AccessDenied("your session has ended; sign in again", reason="session")
            return Principal("user", user.name, user.role, aware(found.expires_at))  # type: ignore[arg-type]
        link = session.get(LinkRow, found.link_id) if found.link_id is not None else None
        if link is None:
            raise AccessDenied("your session has ended; open your link again", reason="session")
        row, party, contact = _check_link(session, link, now)
        return _party_principal(row, party, contact, aware(found.expires_at))


def _expiry(row: RoundRow, link_days: int, now: datetime) -> datetime:
    """The end of the deadline's day plus ``link_days``, and never sooner than ``link_days``
    from now (a link sent after the deadline still works for a while)."""
    if row.deadline is None:
        return now + timedelta(days=NO_DEADLINE_DAYS)
    end = row.deadline + timedelta(days=link_days)
    last = datetime.combine(end, time(23, 59), ZoneInfo(row.timezone)).astimezone(UTC)
    return max(last, now + timedelta(days=link_days))


def new_link(
    row: RoundRow, party_id: str, email: str, now: datetime, link_days: int = 30
) -> LinkRow:
    return LinkRow(**_link_values(row, party_id, email, now, link_days))


def _link_values(
    row: RoundRow, party_id: str, email: str, now: datetime, link_days: int
) -> dict[str, Any]:
    return {
        "round_id": row.id,
        "party_id": party_id,
        "email": email,
        "nonce": secrets.token_urlsafe(16),
        "created_at": now,
        "expires_at": _expiry(row, link_days, now),
    }


def link_for(
    session: Session, keys: Keys, round_id: str, party_id: str, email: str, now: datetime
) -> str | None:
    """The contact's link for an email about to be sent: its current one, or a new one when it
    has none or the last has expired; None when the coordinator withdrew it (or the contact is
    gone), so that a withdrawn link is not handed out again by the next reminder."""
    contact = (round_id, party_id, email)
    return links_for(session, keys, [contact], now)[contact]


Contact = tuple[str, str, str]  # (round id, party id, email)


def links_for(
    session: Session, keys: Keys, contacts: Iterable[Contact], now: datetime
) -> dict[Contact, str | None]:
    """:func:`link_for` for many contacts at once (the messages of a batch): their last links
    read in one query, the links made new written in one flush."""
    wanted = list(dict.fromkeys(contacts))  # in order: new links are numbered as asked for
    if not wanted:
        return {}
    # One at a time, but from the session where the caller has read them already (a batch).
    rows = {r: session.get(RoundRow, r) for r, _, _ in wanted}
    parties = {(r, p): session.get(PartyRow, (r, p)) for r, p, _ in wanted}
    last: dict[Contact, LinkRow] = {}
    for link in session.exec(
        select(LinkRow)
        .where(tuple_(col(LinkRow.round_id), col(LinkRow.party_id), col(LinkRow.email)).in_(wanted))
        .order_by(col(LinkRow.id))
    ):
        last[link.round_id, link.party_id, link.email] = link  # by id: the last one stays
    tokens: dict[Contact, str | None] = {}
    made: list[dict[str, Any]] = []  # the rows of the new links, as new_link makes them
    for contact in wanted:
        round_id, party_id, email = contact
        row, current = rows.get(round_id), last.get(contact)
        gone = row is None or _contact(parties.get((round_id, party_id)), email) is None
        if gone or (current is not None and current.revoked_at is not None):
            tokens[contact] = None
        elif row is not None and (current is None or aware(current.expires_at) <= now):
            tokens[contact] = None  # its place, in order, until its id is known
            made.append(_link_values(row, party_id, email, now, keys.link_days))
        else:
            assert current is not None
            assert current.id is not None
            tokens[contact] = keys.link_token(current.id, current.nonce)
    if made:  # one INSERT for them all (the ORM would make and flush an object each)
        table: Table = LinkRow.__table__  # type: ignore[attr-defined]  # set by SQLModel
        # Told apart by their nonces, random: a RETURNING in the rows' order would cost SQLite
        # one INSERT a row.
        statement = insert(table).returning(table.c.id, table.c.nonce)
        ids = {nonce: link_id for link_id, nonce in session.execute(statement, made)}
        for values in made:
            contact = (values["round_id"], values["party_id"], values["email"])
            tokens[contact] = keys.link_token(ids[values["nonce"]], values["nonce"])
    return tokens
