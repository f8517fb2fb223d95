"""Fixtures: real SQLite files and a throwaway PostgreSQL database, a fake clock, the CLI."""

from __future__ import annotations

import os
import secrets
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import hypothesis
import psycopg
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from engine.clock import FakeClock
from engine.interfaces.cli import app
from engine.persistence.database import connect, init_schema
from tests.smtp import SmtpServer

POSTGRES_ADMIN = os.environ.get(
    "RATIFY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
# The commands' secret (party links, sessions): given, so that no test writes ratify.secret.
os.environ.setdefault("RATIFY_SECRET_KEY", "test-secret-" + "0" * 40)

# In CI the property tests replay the same examples every run, so a landing never hangs on luck;
# run locally (`make test` without CI=true) they explore new ones each time.
hypothesis.settings.register_profile("ci", derandomize=True, database=None)
if IN_CI:
    hypothesis.settings.load_profile("ci")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this test run, dropped at the end."""
    name = f"ratify_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN} (set CI=true to fail instead)")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        try:
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that uses it runs twice: on a fresh SQLite file and a clean PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ratify.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    yield empty_postgres(url)


def empty_postgres(url: str) -> str:
    """``url``'s database with nothing in it (one throwaway database serves the whole run)."""
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ratify.db'}"


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    engine = connect(database_url)
    init_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001  (naive: local to each round)


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        import json

        return json.loads(self.stdout)


CLI = Callable[..., Ran]


def cli_on(database_url: str) -> CLI:
    """Run `ratify --db URL ARGS...` in this process, as a user would on the command line."""
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None, input_text: str | None = None) -> Ran:
        result = runner.invoke(app, ["--db", database_url, *args], env=env, input=input_text)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Ran(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def cli(database_url: str) -> CLI:
    return cli_on(database_url)


PARTY_DEFAULTS = {
    "workflow": "municipality",
    "contacts": [{"name": "Kim Test", "email": "kim@example.invalid"}],
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return str(value)  # dates


def write_agreement(
    folder: Path,
    parties: list[dict[str, Any]],
    *,
    agreement: dict[str, Any] | None = None,
    text: str = "The agreement's text.\n",
    extra: str = "",
    name: str = "agreement.toml",
) -> Path:
    """Write an agreement file (and its document) into ``folder``; return the file's path."""
    head = {"id": "test-agreement", "title": "Test agreement", "document": "agreement.md"}
    head |= agreement or {}
    lines = ["[agreement]", *(f"{k} = {_toml_value(v)}" for k, v in head.items() if v is not None)]
    lines += ["", "[coordinator]", 'name = "Cora Coordinator"', 'email = "cora@example.invalid"']
    for party in parties:
        lines += ["", "[[parties]]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in (PARTY_DEFAULTS | party).items()]
    (folder / "agreement.md").write_text(text, "utf-8")
    path = folder / name
    path.write_text("\n".join(lines) + "\n" + textwrap.dedent(extra), "utf-8")
    return path


@pytest.fixture
def agreement_file(tmp_path: Path) -> Callable[..., Path]:
    def make(parties: list[dict[str, Any]] | None = None, **kwargs: Any) -> Path:
        return write_agreement(tmp_path, parties or [{"id": "alpha", "name": "Alpha"}], **kwargs)

    return make


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free loopback port, storing what it receives."""
    with SmtpServer(tmp_path / "mail") as server:
        yield server
