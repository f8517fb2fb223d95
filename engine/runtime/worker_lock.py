"""One worker process per SQLite database: a second is refused with a clear message.

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

__all__ = ["WorkerLock", "single_worker"]


class WorkerLock:
    def __init__(self, engine: Engine) -> None:
        url = engine.url
        database = url.database or ""
        self.path: Path | None = None
        if url.get_backend_name() == "sqlite" and database not in ("", ":memory:"):
            db = Path(database).resolve()
            self.path = db.with_name(db.name + ".worker-lock")
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
            name = self.path.name.removesuffix(".worker-lock")
            raise Refused(
                f"another ratify worker (process {holder}) is running on {name}: SQLite serves "
                "one worker process. Stop that one first, or move to PostgreSQL to run several "
                "(docs/deploy.md)"
            ) from None
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
def single_worker(engine: Engine) -> Iterator[None]:
    lock = WorkerLock(engine)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()
