"""Files kept with a round: the minutes extracts parties upload with their decisions.

A file is checked before anything is written (a PDF, under the size limit, with a name that is a
plain file name), stored by its SHA-256 in the event's transaction, and named by that hash in the
log entry, so the certificate and the evidence pack can prove which extract went with which
decision.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.core.text import line_problem
from engine.errors import InvalidInput, NotFound
from engine.persistence.database import ensure_schema, transaction
from engine.persistence.tables import FileRow
from engine.runtime.lookup import aware, resolve_round

__all__ = ["MINUTES_MAX", "StoredFile", "Upload", "check_upload", "file_of", "round_files"]

MINUTES_MAX = 10 * 1024 * 1024  # a scanned extract of a few pages; an attachment-sized limit
NAME_MAX = 120


@dataclass(frozen=True)
class Upload:
    """A file as it arrived: the name the sender gave, the type it claimed, its bytes."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class StoredFile:
    round: str
    sha256: str
    filename: str
    content_type: str
    size: int
    data: bytes
    recorded_at: datetime


def _plain_name(name: str) -> str:
    # Only the last part of whatever path a browser sent, without control or format characters;
    # the name is shown and offered for download, never used as a path.
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if not name or line_problem(name):
        name = "minutes.pdf"
    if len(name) > NAME_MAX:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: NAME_MAX - len(ext) - 1] + dot + ext) if dot else name[:NAME_MAX]
    if not name.casefold().endswith(".pdf"):
        name += ".pdf"
    return name


def check_upload(upload: Upload, field: str = "minutes") -> Upload:
    """The upload with a safe name, or InvalidInput: it must be a PDF under :data:`MINUTES_MAX`.
    The type is read from the bytes, not from what the sender claimed."""
    if not upload.data:
        raise InvalidInput("the minutes extract is empty; choose the PDF file", field=field)
    if len(upload.data) > MINUTES_MAX:
        raise InvalidInput(
            f"the minutes extract is {len(upload.data) / 1048576:.1f} MiB; the limit is "
            f"{MINUTES_MAX // 1048576} MiB",
            field=field,
        )
    if not upload.data.startswith(b"%PDF-"):
        raise InvalidInput(
            "the minutes extract is not a PDF file; save the extract as PDF and choose that file",
            field=field,
        )
    return Upload(_plain_name(upload.filename), "application/pdf", upload.data)


def store(session: Session, round_id: str, upload: Upload, now: datetime) -> str:
    """Keep a checked upload with the round (once per content); its SHA-256."""
    sha = hashlib.sha256(upload.data).hexdigest()
    if session.get(FileRow, (round_id, sha)) is None:
        session.add(
            FileRow(
                round_id=round_id,
                sha256=sha,
                filename=upload.filename,
                content_type=upload.content_type,
                size=len(upload.data),
                data=upload.data,
                recorded_at=now,
            )
        )
    return sha


def _stored(row: FileRow) -> StoredFile:
    return StoredFile(
        row.round_id,
        row.sha256,
        row.filename,
        row.content_type,
        row.size,
        row.data,
        aware(row.recorded_at),
    )


def round_files(engine: Engine, ref: str) -> list[StoredFile]:
    """Every file kept with a round, oldest first."""
    ensure_schema(engine)
    with transaction(engine) as session:
        row = resolve_round(session, ref)
        found = session.exec(
            select(FileRow)
            .where(FileRow.round_id == row.id)
            .order_by(col(FileRow.recorded_at), col(FileRow.sha256))
        ).all()
        return [_stored(f) for f in found]


def file_of(engine: Engine, ref: str, sha256: str) -> StoredFile:
    ensure_schema(engine)
    with transaction(engine) as session:
        row = resolve_round(session, ref)
        found = session.get(FileRow, (row.id, sha256.lower()))
        if found is None:
            raise NotFound(f"round {row.id} keeps no file {sha256[:16]}…", field="sha256")
        return _stored(found)
