"""The command line's fast path: `ratify [--db URL] status [ROUND] [--json]` and `ratify [--db
URL] audit head [ROUND] [--json]` answered without typer, pydantic, SQLAlchemy or SQLModel,
whose imports take ten times as long as the answer.

:func:`answer` answers only what it is sure of, exactly as ``commands`` would (the same result
through the same view, the same output); for anything else (another command, an option it does
not know, ``--help``, a setting the full settings might refuse, a database that is missing or of
another revision, a round not found, any error) it returns None and the full command line runs,
with its own words for whatever is wrong. Nothing is written before it is sure."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["NO_ROUNDS", "answer", "print_json", "show_heads"]

NO_ROUNDS = "No rounds yet. Launch one with `ratify launch FILE`."


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def answer(args: Sequence[str]) -> int | None:
    """Run `ratify ARGS` here and give its exit code, or None: the full command line must."""
    split = _global_options(args)
    if split is None:
        return None
    db, rest = split
    if rest[:1] == ["status"]:
        return _status(db, rest[1:])
    if rest[:2] == ["audit", "head"]:
        return _heads(db, rest[2:])
    return None


def _global_options(args: Sequence[str]) -> tuple[str | None, list[str]] | None:
    """``--db URL`` (or ``--db=URL``), at most once, before the command; None for any other."""
    rest = list(args)
    db = None
    if rest[:1] == ["--db"] and len(rest) > 1:
        db, rest = rest[1], rest[2:]
    elif rest[:1] and rest[0].startswith("--db="):
        db, rest = rest[0].removeprefix("--db="), rest[1:]
    if db is not None and db.startswith("-"):
        return None  # as click reads it or not: let click say
    if rest[:1] and rest[0].startswith("-"):
        return None  # --help, a second --db, an option the command line does not know
    return db, rest


def _round_and_json(args: Sequence[str]) -> tuple[str | None, bool] | None:
    """A command's ``[ROUND] [--json]``, in any order; None for anything else."""
    as_json = False
    refs = []
    for arg in args:
        if arg == "--json":
            as_json = True
        elif arg.startswith("-"):
            return None  # --help, --, an unknown option
        else:
            refs.append(arg)
    if len(refs) > 1:
        return None
    return (refs[0] if refs else None), as_json


def _status(db: str | None, args: Sequence[str]) -> int | None:
    parsed = _round_and_json(args)
    if parsed is None:
        return None
    ref, as_json = parsed
    from engine.environment import surely_database_url

    url = surely_database_url(db)
    if url is None:
        return None
    try:
        from engine.runtime import jsonable, quick_status

        found = quick_status(url, ref)
        if found is None:
            return None
        rounds = jsonable(found)
    except Exception:  # whatever it is, the full path meets it too, and says it its way
        return None
    if as_json:
        print_json(rounds[0] if ref is not None else rounds)
        return 0
    from rich.console import Console

    from engine.interfaces.render import status_table

    out = Console(highlight=False)  # as common.out
    if not rounds:
        out.print(NO_ROUNDS)
    for r in rounds:
        out.print(status_table(r))
    return 0


class Head(Protocol):
    @property
    def round(self) -> str: ...
    @property
    def entries(self) -> int: ...
    @property
    def head(self) -> str: ...


def show_heads(found: Sequence[Head], as_json: bool, out: Console | None = None) -> None:
    """`ratify audit head`'s output (on ``out``, else a console as common.out)."""
    if as_json:
        print_json([{"round": h.round, "entries": h.entries, "head": h.head} for h in found])
        return
    from engine.wording import counted

    if out is None:
        from rich.console import Console

        out = Console(highlight=False)
    for h in found:
        out.print(
            f"round {h.round}: {counted(h.entries, 'entry', 'entries')}; head {h.head}",
            soft_wrap=True,
        )
    if not found:
        out.print("No rounds.")


def _heads(db: str | None, args: Sequence[str]) -> int | None:
    parsed = _round_and_json(args)
    if parsed is None:
        return None
    ref, as_json = parsed
    from engine.environment import surely_database_url

    url = surely_database_url(db)
    if url is None:
        return None
    try:
        from engine.runtime import quick_heads

        found = quick_heads(url, ref)
    except Exception:  # as in _status
        return None
    if found is None:
        return None
    show_heads(found, as_json)
    return 0
