"""Reading an export line by line, for `audit verify --file`: the entries of
:func:`~engine.core.export.from_jsonl` (or ``from_csv``) one at a time, never the whole file.

What is wrong with a file is what reading it whole would find, in the same order: a byte that is
not UTF-8 (the first), else a NUL byte (the first), else the first line that is no entry. So
entries are given only while no line has failed, and the file is read to its end all the same;
once iteration ends, :attr:`ExportStream.undecodable` and :attr:`ExportStream.problem` say what
failed. The entries given before a failure may be checked meanwhile, but the failure is the answer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from engine.core.export import _BOM, _entry, _header, _loads, _row
from engine.errors import VerificationFailed

__all__ = ["ExportStream"]


class ExportStream:
    """The entries of an export's lines (bytes, each ending in b"\\n" but perhaps the last, as a
    binary file gives them); ``csv``: the file is csv, else jsonl. ``size``: at least the length
    of its text (the file's size in bytes), what the csv reader must allow a cell."""

    def __init__(self, lines: Iterable[bytes], *, csv_format: bool, size: int) -> None:
        self._lines = iter(lines)
        self._csv = csv_format
        self._size = size
        self.undecodable: int | None = None  # the offset of the first byte that is not UTF-8
        self._nul: int | None = None  # the number of the first line with a NUL byte
        self._bad: VerificationFailed | None = None  # the first line that is no entry

    @property
    def problem(self) -> VerificationFailed | None:
        """What reading the decoded text whole raises: its first NUL, else its first bad line."""
        if self._nul is not None:
            return VerificationFailed(f"line {self._nul} holds a NUL byte; an export never does")
        return self._bad

    def __iter__(self) -> Iterator[dict[str, Any]]:
        texts = self._texts()
        yield from (self._from_csv(texts) if self._csv else self._from_jsonl(texts))
        for _ in texts:  # to the end: a later byte that is no UTF-8, or NUL, is the answer
            pass

    def _texts(self) -> Iterator[str]:
        """The lines decoded, the byte-order mark dropped, until the first that is no UTF-8 or
        holds a NUL (noted); the rest of the file is read, not decoded, after that."""
        offset = 0
        for number, raw in enumerate(self._lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.undecodable = offset + exc.start
                break
            offset += len(raw)
            if number == 1:
                line = line.removeprefix(_BOM)
            if self._nul is None and "\x00" in line:
                self._nul = number
            if self._nul is None:
                yield line
        for _ in self._lines:
            pass

    def _from_jsonl(self, texts: Iterator[str]) -> Iterator[dict[str, Any]]:
        # from_jsonl: lines end at "\n" only; blank ones are skipped.
        for number, line in enumerate(texts, start=1):
            line = line.removesuffix("\n")
            if line.strip():
                where = f"line {number}"
                try:
                    entry = _entry(_loads(line, where), where)
                except VerificationFailed as exc:
                    self._bad = exc
                    return
                yield entry

    def _from_csv(self, texts: Iterator[str]) -> Iterator[dict[str, Any]]:
        # from_csv, its text given as io.StringIO(text, newline="") would cut it: at "\n", "\r\n"
        # or a lone "\r", each line with its ending. A line here ends at "\n", so a "\r\n" is
        # never split between two of them.
        csv.field_size_limit(max(csv.field_size_limit(), self._size))
        rows = (part for line in texts for part in io.StringIO(line, newline=""))
        reader = csv.reader(rows, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                return
            keys = _header(header)
            while True:
                where = f"line {reader.line_num + 1}"
                row = next(reader, None)
                if row is None:
                    return
                if row:  # an empty line is no row
                    yield _row(keys, row, where)
        except csv.Error as exc:
            self._bad = VerificationFailed(
                f"line {reader.line_num} is not csv as ratify writes it ({exc})"
            )
        except VerificationFailed as exc:
            self._bad = exc
