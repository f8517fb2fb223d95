"""What the command line's modules share: consoles, the error handling group, the options, and
the engine, clock and actor a command runs with. Heavy imports stay inside the functions."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from engine.errors import InvalidInput, RatifyError, Words
from engine.interfaces.fast import print_json

if TYPE_CHECKING:
    from engine.clock import Clock
    from engine.runtime import Engine
    from engine.runtime.access import Keys
    from engine.settings import Settings

__all__ = [
    "CLI_WORDS",
    "At",
    "By",
    "Group",
    "Json",
    "RoundArg",
    "actor_for",
    "clock_at",
    "current_keys",
    "current_settings",
    "db_engine",
    "err",
    "out",
    "parse_at",
    "print_json",
    "state",
]

# How the command line names what the core's messages mark as {opt.…} and {cmd.…}.
CLI_WORDS = Words(
    options={
        name: f"--{name}"
        for name in (
            "ref",
            "reason",
            "signatory",
            "title",
            "diary",
            "at",
            "by",
            "file",
            "db",
            "state",
            "format",
            "language",
            "text",
        )
    }
    | {"expect_head": "--expect-head"},
    commands={
        "tick": "`ratify tick`",
        "init": "`ratify init`",
        "outbox": "`ratify outbox`",
        "cancel": "`ratify cancel`",
        "audit_head": "`ratify audit head`",
        "audit_verify": "`ratify audit verify`",
    },
)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class Group(typer.core.TyperGroup):
    """Turns ratify's own errors into a message on stderr and the error's exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except RatifyError as exc:
            err.print(f"[bold red]error:[/] {escape(exc.worded(CLI_WORDS))}", soft_wrap=True)
            ctx.exit(exc.exit_code)


class _State:
    """The global options of this invocation, and the engine made from them."""

    db: str | None = None
    engine: Engine | None = None

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None


state = _State()

At = Annotated[
    str | None,
    typer.Option(
        "--at", help="Run as of this ISO date or date-time, local to the round's timezone."
    ),
]
By = Annotated[
    str | None, typer.Option("--by", help="Who records this (default RATIFY_ACTOR or the OS user).")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RoundArg = Annotated[
    str, typer.Argument(help="A round id (agreement/n) or an agreement id (its latest round).")
]


def db_engine() -> Engine:
    from engine.runtime import connect

    if state.engine is None:
        state.engine = connect(current_settings().database_url)
    return state.engine


def current_settings() -> Settings:
    from pydantic import ValidationError

    from engine.errors import InvalidInput
    from engine.settings import load_settings

    def named(loc: tuple[int | str, ...]) -> str:
        if loc == ("database_url",) and state.db is not None:
            return "--db"
        return "RATIFY_" + "_".join(str(p) for p in loc).upper()

    try:
        return load_settings(database_url=state.db)
    except ValidationError as exc:
        problems = "; ".join(
            f"{named(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise InvalidInput(f"invalid setting: {problems}") from None


def current_keys(base_url: str | None = None) -> Keys:
    """The server's secret (RATIFY_SECRET_KEY, else the file RATIFY_SECRET_FILE, made on first
    use, readable by its owner only), where the server is reached, and how long links last."""
    import os
    import secrets as random

    from engine.runtime.access import Keys

    settings = current_settings()
    if settings.secret_key is not None:
        secret = settings.secret_key.get_secret_value().encode()
    else:
        path = settings.secret_file
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:  # the first process to get here writes it; the others read what it wrote
            with os.fdopen(fd, "w") as made:
                made.write(random.token_hex(32) + "\n")
        with open(path, encoding="ascii") as kept:
            secret = kept.read().strip().encode()
    if len(secret) < 32:
        raise InvalidInput(
            "the secret (RATIFY_SECRET_KEY or the file RATIFY_SECRET_FILE) must have at least 32 "
            "characters; remove the file to have a new one made"
        )
    return Keys(secret, base_url or settings.base_url, settings.link_days)


def clock_at(at: str | None) -> Clock:
    """The clock of a command: the system's, or the moment ``--at`` gives (an empty one is an
    error, not the system time)."""
    from engine.clock import FixedClock

    return system_clock() if at is None else FixedClock(parse_at(at))


def system_clock() -> Clock:
    """The system's clock, or, where RATIFY_FAKE_CLOCK_FILE is set (tests, demonstrations), the
    simulated time every process reads from that file."""
    from pathlib import Path

    from engine.clock import SharedClock, SystemClock

    shared = current_settings().fake_clock_file
    if shared is None:
        return SystemClock()
    err.print(f"ratify: the time is read from {shared} (RATIFY_FAKE_CLOCK_FILE), not the system")
    return SharedClock(Path(shared))


def actor_for(by: str | None) -> str:
    """Who records: ``--by`` (one line, bounded), else RATIFY_ACTOR, else the OS user."""
    from engine.runtime import ACTOR_MAX, check_line
    from engine.settings import default_actor

    if by is not None and by.strip():
        return " ".join(check_line(by, "by", limit=ACTOR_MAX).split())
    return default_actor(current_settings())


def parse_at(text: str) -> datetime:
    """Parse ``--at``: an ISO date (midnight) or date-time, local to the round unless offset."""
    # Beyond these years time-zone arithmetic overflows (and no agreement is ratified there).
    first, last = 1970, 9000
    raw = text.strip()
    if not raw:
        raise InvalidInput(
            "{opt.at} is empty; give a date or a date-time, like 2026-12-01 or 2026-12-01T14:30, "
            "or leave {opt.at} out to run at the system time",
            field="at",
        )
    shown = repr(text if len(text) <= 40 else text[:40] + "…")
    out_of_range = InvalidInput(
        f"{{opt.at}} {shown}: the year is outside the supported range ({first}\u2013{last}); "
        "give a date within it",
        field="at",
    )
    year = raw.lstrip("+-").partition("-")[0] if "-" in raw else ""
    if year.isdigit() and len(year) >= 4 and not first <= int(year) <= last:
        raise out_of_range
    try:
        moment = (
            datetime.combine(date.fromisoformat(raw), time())
            if len(raw) == 10
            else datetime.fromisoformat(raw)
        )
    except ValueError:
        raise InvalidInput(
            f"{{opt.at}} {shown} is not an ISO date or date-time; "
            "write it as 2026-12-01 or 2026-12-01T14:30 (local to the round's timezone)",
            field="at",
        ) from None
    if not first <= moment.year <= last:
        raise out_of_range
    return moment
