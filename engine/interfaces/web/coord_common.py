"""The coordinator's pages' shared pieces: the roles, the limits and the page words.

Auditors read the dashboard and the round pages; every POST needs a coordinator. Each write is a
plain form: done, it redirects (303) with ``?done=…`` and an anchor; refused, the page comes again
with the message beside the field concerned (400, or 409 when the rules refused it)."""

from __future__ import annotations

import re
import tomllib

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


def document_name(source: bytes) -> str | None:
    """What the agreement's ``document`` key names, when the file can be read that far."""
    try:
        raw = tomllib.loads(source.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None  # the loader words what is wrong with the file
    table = raw.get("agreement")
    value = table.get("document") if isinstance(table, dict) else None
    return value.strip() if isinstance(value, str) else None
