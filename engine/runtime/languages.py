"""An agreement in several languages: each contact reads its own language's title and text, and
one whose language the agreement lacks reads the round's (its main language's)."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["text_in", "title_in"]


class _Titled(Protocol):
    @property
    def title(self) -> str: ...
    @property
    def titles(self) -> dict[str, str] | None: ...


class _Text(Protocol):
    @property
    def source(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def texts(self) -> list[dict[str, Any]] | None: ...


def title_in(row: _Titled, language: str) -> str:
    """The round's title in ``language``, else in the round's own language."""
    return (row.titles or {}).get(language) or row.title


def text_in(document: _Text, language: str) -> tuple[str, str, str | None]:
    """A version's text in ``language`` (else the round's language's) as (the file name it was
    read from, the text, its own SHA-256 when the version has several languages)."""
    for given in document.texts or []:
        if given.get("language") == language:
            return str(given["source"]), str(given["text"]), str(given["sha256"])
    if document.texts:
        return document.source, document.text, str(document.texts[0]["sha256"])
    return document.source, document.text, None
