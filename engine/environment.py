"""The database URL a command would run with, read from the environment without pydantic (which
takes longer to import than a fast command takes to answer), for the command line's fast reads.

:class:`~engine.settings.Settings` stays the rule: this answers only when every ``RATIFY_``
setting given is one that ``Settings`` surely accepts as it is, and None otherwise (a value it
might refuse, or read differently): the caller then loads the settings, which say what is wrong.
Tests hold :data:`CHECKS` to the fields of ``Settings``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from engine.core.text import ACTOR_MAX, length_problem, line_problem

__all__ = ["CHECKS", "DEFAULT_DATABASE_URL", "PREFIX", "surely_database_url"]

DEFAULT_DATABASE_URL = "sqlite:///ratify.db"
PREFIX = "ratify_"  # Settings reads the environment without regard to case


def _one_line(value: str) -> bool:
    return line_problem(value) is None


def _anything(_value: str) -> bool:
    return True


def _actor(value: str) -> bool:
    return not value.strip() or not (
        line_problem(value) or length_problem(value.strip(), ACTOR_MAX)
    )


def _whole(low: int, high: int) -> Callable[[str], bool]:
    return lambda value: (
        re.fullmatch(r"[1-9][0-9]{0,5}", value) is not None and (low <= int(value) <= high)
    )


def _seconds(value: str) -> bool:
    return re.fullmatch(r"[0-9]{1,6}(\.[0-9]{1,6})?", value) is not None and float(value) > 0


def _matches(pattern: str) -> Callable[[str], bool]:
    return lambda value: re.fullmatch(pattern, value) is not None


# By field of Settings: True when Settings surely takes the value as given (a narrower test than
# its own, never a wider one).
CHECKS: Mapping[str, Callable[[str], bool]] = {
    "database_url": _one_line,
    "actor": _actor,
    "smtp_host": _one_line,
    "smtp_port": _whole(1, 65535),
    "smtp_username": _one_line,
    "smtp_password": _anything,
    "smtp_tls": lambda value: value in ("starttls", "tls", "none"),
    "smtp_timeout": _seconds,
    "mail_from": _one_line,
    "witness_email": _matches(r"([A-Za-z0-9._+-]+@[A-Za-z0-9.-]+)?"),
    "base_url": _matches(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?"),
    "secret_key": _anything,
    "secret_file": _anything,
    "fake_clock_file": _anything,  # status reads no clock
    "link_days": _whole(1, 3650),
}


def surely_database_url(given: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The database URL (``given`` on the command line, else RATIFY_DATABASE_URL, else the
    default) when the settings surely load; None when only loading them can tell."""
    values: dict[str, str] = {}
    for key, value in (os.environ if environ is None else environ).items():
        name = key.lower().removeprefix(PREFIX)
        if len(name) == len(key) or name not in CHECKS:
            continue  # not ratify's, or a name Settings ignores
        if name in values and values[name] != value:
            return None  # two spellings of one name: which one Settings reads is its own affair
        values[name] = value
    if given is not None:
        values["database_url"] = given
    if not all(CHECKS[name](value) for name, value in values.items()):
        return None
    return values.get("database_url", DEFAULT_DATABASE_URL)
