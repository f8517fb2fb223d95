"""Reading an agreement file and its text: the only file I/O of the core's inputs. Whatever is
on the disk or in the arguments, the result is an :class:`Agreement`, an
:class:`AgreementFileError` or (for a text alone) an :class:`InvalidInput`: never a traceback."""

from __future__ import annotations

import os
import stat
import tomllib
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.agreement.schema import UNREADABLE, Agreement, build, document_keys
from engine.clock import DEFAULT_ZONE, Clock, NonexistentTime, SystemClock
from engine.core.chain import sha256_text
from engine.core.text import line_problem
from engine.errors import AgreementFileError, InvalidInput

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_FILE_BYTES",
    "load_agreement",
    "read_document",
    "sha256_text",
]

MAX_FILE_BYTES = 1024 * 1024  # an agreement file: 1 MiB (the 13-party example is 5 kB)
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024  # the agreement's text: 2 MiB


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


class _Unreadable(Exception):
    """Why a file cannot be used, worded to follow its path ("… is a directory; …")."""


def _path_problem(path: Path) -> str | None:
    """What makes ``path`` itself unusable (before the disk is asked), or None."""
    text = str(path)
    if "\x00" in text:
        return "contains a NUL character; give the file's real path"
    if problem := line_problem(text):
        return f"is not a usable path: it {problem}"
    return None


def _read(path: Path, limit: int, what: str) -> str:
    """The UTF-8 text of the regular file at ``path``, at most ``limit`` bytes; _Unreadable else.
    The file is opened without blocking (a FIFO would wait for a writer) and checked on the open
    descriptor, so what is checked is what is read."""
    if problem := _path_problem(path):
        raise _Unreadable(problem)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _Unreadable("does not exist; check the path") from None
    except IsADirectoryError:
        raise _Unreadable(f"is a directory; give the path of {what}") from None
    except PermissionError:
        raise _Unreadable("cannot be read (permission denied); check who may read it") from None
    except (OSError, ValueError) as exc:
        raise _Unreadable(f"cannot be opened ({_reason(exc)}); check the path") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise _Unreadable(f"is a directory; give the path of {what}")
        if not stat.S_ISREG(info.st_mode):
            raise _Unreadable(
                f"is not a regular file (a device, a FIFO or a socket); give the path of {what}"
            )
        if info.st_size > limit:
            raise _Unreadable(
                f"is {info.st_size} bytes, more than the limit of {_mib(limit)}; "
                f"give {what} of at most {_mib(limit)}"
            )
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise _Unreadable(f"cannot be read ({_reason(exc)})") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew after the check
        raise _Unreadable(f"is more than the limit of {_mib(limit)}; give {what} of at most that")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unreadable(
            f"is not UTF-8 (byte {exc.start} cannot be decoded); save it as UTF-8"
        ) from None


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _text(path: Path, folder: Path | None) -> str:
    """An agreement's text at ``path`` (inside ``folder`` when given), its line ends normalised
    so that the hash does not depend on the OS; _Unreadable when it is not fit."""
    what = "the agreement's text (a UTF-8 file)"
    if folder is not None:
        if path.is_absolute():
            raise _Unreadable(
                "is an absolute path; give the path of the text relative to the agreement file, "
                "in its folder"
            )
        if problem := _path_problem(path):
            raise _Unreadable(problem)
        try:
            base = folder.resolve()
            real = (folder / path).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            raise _Unreadable(f"cannot be resolved ({_reason(exc)}); check the path") from None
        if not real.is_relative_to(base):
            raise _Unreadable(
                f"is outside the agreement file's folder ({base}); put the text in that folder "
                "(or below it) and give its path relative to the agreement file"
            )
        path = real
    text = _read(path, MAX_DOCUMENT_BYTES, what)
    if "\x00" in text:
        raise _Unreadable("contains a NUL character, so it is no text; give a UTF-8 text file")
    return text.replace("\r\n", "\n")


def read_document(path: Path, *, folder: Path | None = None) -> str:
    """The agreement's text in the file at ``path``: a regular file, UTF-8, at most 2 MiB, with no
    NUL; with ``folder``, it must also lie inside that folder (symlinks resolved). Line ends are
    normalised so the hash does not depend on the OS. Raise :class:`InvalidInput` naming the
    file and the fix; nothing is read past the limit."""
    try:
        return _text(Path(path), folder)
    except _Unreadable as exc:
        raise InvalidInput(
            f"the text {_shown(path)} {exc}", field="document", path=_shown(path)
        ) from None


def load_agreement(path: str | Path, *, launch_at: Clock | None = None) -> Agreement:
    """Read and check an agreement file; raise :class:`AgreementFileError` listing every problem.
    ``launch_at``: the clock of a launch, so that a deadline already passed is one more problem of
    the same list."""
    path = Path(path)
    where = _shown(path)
    try:
        source = _read(path, MAX_FILE_BYTES, "an agreement file (TOML, UTF-8)")
    except _Unreadable as exc:
        raise AgreementFileError(where, [f"the file {exc}"]) from None
    try:
        raw = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise AgreementFileError(where, [f"is not valid TOML: {exc}"]) from None
    except RecursionError:
        raise AgreementFileError(
            where, ["cannot be parsed: its arrays or tables nest too deeply; flatten them"]
        ) from None
    problems: list[str] = []
    if launch_at is not None and (late := _deadline_passed(raw, launch_at)):
        problems.append(late)
    documents: dict[str, tuple[Path, str]] = {}
    for language, (key, written) in document_keys(raw).items():
        document_path = path.parent / written
        try:
            documents[language] = (document_path, _text(Path(written), path.parent))
        except _Unreadable as exc:
            problems.append(
                f"{key}: {_shown(document_path)} {exc} (the agreement's text: a "
                f"UTF-8 file of at most {_mib(MAX_DOCUMENT_BYTES)} in this file's folder, its "
                "path relative to this file)"
            )
    texts = _calendar_texts(raw, path.parent)
    start = (launch_at or SystemClock()).now(_zone(raw)).date()
    try:
        return build(
            raw,
            where=where,
            path=path,
            documents=documents,
            problems=problems,
            calendar_texts=texts,
            calendars_from=start,
        )
    except RecursionError:
        raise AgreementFileError(
            where, ["(top level): its arrays or tables nest too deeply; flatten them"]
        ) from None


def _deadline_passed(raw: dict[str, Any], clock: Clock) -> str | None:
    table = raw.get("agreement")
    if not isinstance(table, dict) or not isinstance(table.get("deadline"), date):
        return None
    deadline: date = table["deadline"]
    try:
        zone = ZoneInfo(str(table.get("timezone", "Europe/Helsinki")))
    except (ZoneInfoNotFoundError, ValueError):
        zone = DEFAULT_ZONE  # the bad zone is a problem of its own
    try:
        today = clock.now(zone).date()
    except NonexistentTime:
        return None  # the launch reports the time given
    if deadline >= today:
        return None
    return (
        f"agreement.deadline: {deadline:%d.%m.%Y} has passed at launch ({today:%d.%m.%Y}); "
        "give a later date, or leave the deadline out"
    )


def _shown(path: str | Path) -> str:
    """A path as messages show it: printable whatever its bytes (undecodable ones escaped)."""
    text = str(path)
    if line_problem(text):
        return repr(text)[1:-1]
    return text


def _zone(raw: dict[str, Any]) -> ZoneInfo:
    table = raw.get("agreement")
    name = table.get("timezone") if isinstance(table, dict) else None
    try:
        return ZoneInfo(name if isinstance(name, str) else "Europe/Helsinki")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("Europe/Helsinki")  # the file's check says what is wrong with it


def _calendar_texts(raw: dict[str, Any], folder: Path) -> dict[str, str]:
    """The text of every iCalendar file the parties' calendars name (in the agreement file's
    folder, as its text must be), or why it could not be read (schema.UNREADABLE first)."""
    names: set[str] = set()
    parties = raw.get("parties")
    for party in parties if isinstance(parties, list) else []:
        calendars = party.get("calendars") if isinstance(party, dict) else None
        for given in calendars.values() if isinstance(calendars, dict) else []:
            ical = given.get("ical") if isinstance(given, dict) else None
            if isinstance(ical, str) and ical.strip():
                names.add(ical.strip())
    found: dict[str, str] = {}
    for name in sorted(names)[:20]:
        try:
            found[name] = _text(Path(name), folder)
        except _Unreadable as exc:
            found[name] = f"{UNREADABLE}{exc}"
    return found
