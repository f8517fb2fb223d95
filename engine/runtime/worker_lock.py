"""One worker process and one web process per SQLite database: a second of either is refused
with a clear message.

SQLite has one writer at a time and no SKIP LOCKED, and ratify supports a single worker process
beside a single web process on it; several workers need PostgreSQL (docs/deploy.md). The lock is
an advisory ``flock`` on a file beside the database: the kernel releases it when the process
ends, however it ends, so a killed worker never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine

from engine.errors import Refused

__all__ = ["WorkerLock", "single_web", "single_worker"]

# What each role's second process is told (the first's pid and the database's name filled in).
_REFUSALS = {
    "worker": "another ratify worker (process {pid}) is running on {name}: SQLite serves one "
    "worker process. Stop that one first, or move to PostgreSQL to run several (docs/deploy.md)",
    "web": "another ratify web server (process {pid}) is serving {name}: SQLite serves one web "
    "process. Stop that one first, or move to PostgreSQL to run several (docs/deploy.md)",
}


class WorkerLock:
    """The lock of one ``role`` (``worker`` or ``web``): a file ``<database>.<role>-lock``."""

    def __init__(self, engine: Engine, role: str = "worker") -> None:
        url = engine.url
        database = url.database or ""
        self.role = role
        self.path: Path | None = None
        if url.get_backend_name() == "sqlite" and database not in ("", ":memory:"):
            db = Path(database).resolve()
            self.path = db.with_name(f"{db.name}.{role}-lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.path is None:  # PostgreSQL: any number of workers, coordinated by the database
            return
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            name = self.path.name.removesuffix(f".{self.role}-lock")
            raise Refused(_REFUSALS[self.role].format(pid=holder, name=name)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def single_worker(engine: Engine, role: str = "worker") -> Iterator[None]:
    lock = WorkerLock(engine, role)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def single_web(engine: Engine) -> contextlib.AbstractContextManager[None]:
    """On SQLite, refused while another ``ratify serve`` serves the same database."""
    return single_worker(engine, "web")
