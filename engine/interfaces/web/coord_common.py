"""The coordinator's pages' shared pieces: the roles, the limits and the page words.

Auditors read the dashboard and the round pages; every POST needs a coordinator. Each write is a
plain form: done, it redirects (303) with ``?done=…`` and an anchor; refused, the page comes again
with the message beside the field concerned (400, or 409 when the rules refused it)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request, UploadFile

from engine.errors import NotFound
from engine.interfaces.web.common import (
    language,
)
from engine.interfaces.web.strings import words
from engine.runtime import (
    MAX_DOCUMENT_BYTES,
    MAX_FILE_BYTES,
)

READERS = ("coordinator", "auditor")
WRITER = "coordinator"
EVIDENCE = ("ref", "diary", "reason", "signatory", "title")
AGREEMENT_MAX = MAX_FILE_BYTES  # the agreement loader's limits, checked again by the loader
DOCUMENT_MAX = MAX_DOCUMENT_BYTES
PREVIEW_SHOWN = 3  # per round on the dashboard
PAGE = 50  # rounds per page of the dashboard
FAILED_SHOWN = 20
CHASES = ("remind", "escalate")
QUIET = {"message", "step_since", "previous_sha256", "via"}  # said elsewhere, or bookkeeping
# Log entries whose evidence the dashboard must read are only those of open rounds; past this
# many changed rounds one status() of all is cheaper than a status() each.
BULK = 40


class PageWords:
    """The page's words with their keys read once: a template asks whether a term has words
    (``key in t.keys()``) for every state and event it shows, and Words.keys() builds a new set
    each time."""

    def __init__(self, language_code: str) -> None:
        self.page_words = words(language_code)
        self._keys = self.page_words.keys()

    def __call__(self, key: str, **fields: object) -> str:
        return self.page_words(key, **fields)

    def keys(self) -> frozenset[str]:
        return self._keys

    def term(self, prefix: str, name: object) -> str:
        return self.page_words.term(prefix, name)


def page_words(request: Request) -> PageWords:
    return PageWords(language(request))


def round_id_of(agreement: str, number: str) -> str:
    if not re.fullmatch(r"[0-9]{1,9}", number):
        raise NotFound(f"no round {agreement}/{number}", field="round")
    return f"{agreement}/{number}"


def size_text(limit: int) -> str:
    return f"{limit / (1024 * 1024):g} MiB"


def read_upload(upload: UploadFile | None, limit: int) -> bytes | None:
    """The bytes of a chosen file, at most ``limit`` + 1 (one more tells it is too large); None
    when no file was chosen (a browser sends an empty part without a name)."""
    if upload is None or not upload.filename:
        return None
    return upload.file.read(limit + 1)


def plain_name(name: str) -> bool:
    """A file name alone: the text is saved under it beside the agreement, never elsewhere."""
    return (
        name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and name.isprintable()
        and len(name.encode()) <= 255
    )


def document_names(source: bytes) -> list[str]:
    """What the agreement's ``document`` key names (one text, or one per language), when the file
    can be read that far."""
    try:
        raw = tomllib.loads(source.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return []  # the loader words what is wrong with the file
    table = raw.get("agreement")
    value = table.get("document") if isinstance(table, dict) else None
    if isinstance(value, dict):
        value = list(value.values())
    given = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return list(dict.fromkeys(v.strip() for v in given if isinstance(v, str) and v.strip()))


@dataclass(frozen=True)
class Placed:
    """The uploaded texts written beside the agreement file, and what could not be."""

    agreement: Path  # where the agreement file was written
    not_plain: tuple[str, ...]  # names that are no file name alone
    missing: tuple[str, ...]  # names no uploaded file answers


def place_upload(folder: Path, source: bytes, texts: Sequence[tuple[str, bytes]]) -> Placed:
    """Write the agreement file and the texts it names into ``folder``. One text named and one
    uploaded: it is that text, whatever the upload's file name; several (one per language): each
    upload is the text of its file name."""
    names = document_names(source)
    agreement = next(
        folder / n
        for n in ("agreement.toml", "agreement-file.toml", "ratify-agreement.toml")
        if n not in names
    )
    agreement.write_bytes(source)
    not_plain = tuple(n for n in names if not plain_name(n))
    plain = [n for n in names if plain_name(n)]
    missing: list[str] = []
    if len(names) == 1 and len(texts) == 1:
        if plain:
            (folder / plain[0]).write_bytes(texts[0][1])
        return Placed(agreement, not_plain, ())
    by_name = {Path(name.replace("\\", "/")).name: data for name, data in texts}
    for name in plain:
        if name in by_name:
            (folder / name).write_bytes(by_name[name])
        else:
            missing.append(name)
    return Placed(agreement, not_plain, tuple(missing))
