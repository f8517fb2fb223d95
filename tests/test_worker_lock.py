"""One worker process and one web process per SQLite database: a second worker (or a one-off
tick beside it), or a second `ratify serve`, is refused with a message that says why and what to
do; a killed process leaves no lock behind. PostgreSQL takes any number."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.errors import Refused
from engine.persistence.database import connect, init_schema
from engine.runtime.worker_lock import WorkerLock
from tests.smtp import unused_port

ENV = {**os.environ, "RATIFY_SECRET_KEY": "test-secret-" + "0" * 40, "PYTHONUNBUFFERED": "1"}


def ratify(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine.interfaces.cli", *args]


def test_a_second_worker_on_sqlite_is_refused_until_the_first_is_gone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ratify.db'}"
    made = connect(url)
    init_schema(made)
    made.dispose()
    first = subprocess.Popen(
        ratify("--db", url, "worker", "--interval", "3600"),
        env=ENV,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert first.stdout is not None
        assert "ticking every" in first.stdout.readline()  # it holds the lock from here on
        for args in (("worker", "--interval", "60"), ("worker", "--once")):
            second = subprocess.run(
                ratify("--db", url, *args), env=ENV, cwd=tmp_path, capture_output=True, text=True
            )
            assert second.returncode == 1, second.stderr
            assert f"another ratify worker (process {first.pid}) is running" in second.stderr
            assert "PostgreSQL" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)  # no clean exit: the kernel drops the lock
        first.wait()
        if first.stdout is not None:
            first.stdout.close()
    deadline = time.monotonic() + 30
    while True:
        after = subprocess.run(
            ratify("--db", url, "worker", "--once"),
            env=ENV,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        if after.returncode == 0 or time.monotonic() > deadline:
            break
    assert after.returncode == 0, after.stderr


def test_a_second_web_server_on_sqlite_is_refused_and_a_worker_beside_it_is_not(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'ratify.db'}"
    made = connect(url)
    init_schema(made)
    made.dispose()
    port = str(unused_port())
    first = subprocess.Popen(
        ratify("--db", url, "serve", "--no-worker", "--port", port),
        env=ENV,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert first.stdout is not None
        assert "serving on" in first.stdout.readline()  # it holds the web lock from here on
        second = subprocess.run(
            ratify("--db", url, "serve", "--no-worker", "--port", str(unused_port())),
            env=ENV,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1, second.stderr
        said = second.stderr
        assert f"another ratify web server (process {first.pid}) is serving ratify.db" in said
        assert "PostgreSQL" in said
        # The one worker SQLite takes runs beside the one web process.
        beside = subprocess.run(
            ratify("--db", url, "worker", "--once"),
            env=ENV,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert beside.returncode == 0, beside.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        if first.stdout is not None:
            first.stdout.close()
    assert WorkerLock(made, "web").path == tmp_path / "ratify.db.web-lock"
    lock = WorkerLock(made, "web")
    lock.acquire()  # the killed server left nothing held
    lock.release()


def test_the_lock_in_one_process(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'ratify.db'}")
    one, two = WorkerLock(engine), WorkerLock(engine)
    one.acquire()
    with pytest.raises(Refused, match=f"process {os.getpid()}"):
        two.acquire()
    one.release()
    two.acquire()  # free again
    two.release()
    engine.dispose()


def test_postgresql_takes_any_number_of_workers(postgres_url: str) -> None:
    engine = connect(postgres_url)
    locks = [WorkerLock(engine) for _ in range(3)]
    for lock in locks:
        lock.acquire()
    assert all(lock.path is None for lock in locks)
    engine.dispose()
