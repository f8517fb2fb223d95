"""A command loads what it runs: `ratify status` on SQLite imports no migration, template, mail,
web, PDF or PostgreSQL library (they cost a second at every start), and says the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.persistence import database
from tests.conftest import CLI, cli_on

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "kanta-hame" / "agreement.toml"
# Each with what brought it in before: Alembic (and Mako) for the schema check, psycopg and the
# PostgreSQL dialect, the renderers (Jinja2, babel, icalendar) and the agreement's validation
# (email-validator, holidays) behind the use cases' package, the web server, PDFs, mail, the
# scheduler, and the workflows' `transitions` machines (reading a state's role or events needs
# none).
UNNEEDED = (
    "alembic",
    "mako",
    "psycopg",
    "fastapi",
    "starlette",
    "uvicorn",
    "weasyprint",
    "jinja2",
    "babel",
    "icalendar",
    "holidays",
    "email_validator",
    "aiosmtplib",
    "aiosmtpd",
    "apscheduler",
    "argon2",
    "transitions",
)
RUN = (
    "import contextlib, io, json, os, runpy, sys\n"
    "watch = set(sys.argv.pop().split(','))\n"
    "sys.argv = ['ratify', *sys.argv[1:]]\n"
    "out = io.StringIO()\n"
    "try:\n"
    "    with contextlib.redirect_stdout(out):\n"
    "        runpy.run_module('engine.interfaces.cli', run_name='__main__')\n"
    "except SystemExit as stop:\n"
    "    assert not stop.code, stop.code\n"
    "loaded = sorted({m.split('.')[0] for m in sys.modules} & watch)\n"
    "sys.__stdout__.write(json.dumps(loaded) + '\\n' + out.getvalue())\n"
)


def ratify_in_a_new_process(*args: str, watch: tuple[str, ...] = UNNEEDED) -> tuple[list[str], str]:
    """Run `ratify ARGS` in a fresh interpreter: which of ``watch`` it imported, and its output."""
    ran = subprocess.run(
        [sys.executable, "-c", RUN, *args, ",".join(watch)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert ran.returncode == 0, ran.stderr
    loaded, _, output = ran.stdout.partition("\n")
    return json.loads(loaded), output


@pytest.fixture
def launched(sqlite_url: str) -> tuple[str, CLI]:
    cli = cli_on(sqlite_url)
    assert cli("launch", str(EXAMPLE)).exit_code == 0
    return sqlite_url, cli


def test_status_on_sqlite_imports_none_of_what_it_does_not_run(launched: tuple[str, CLI]) -> None:
    url, cli = launched
    loaded, output = ratify_in_a_new_process("--db", url, "status", "--json")
    assert loaded == []
    assert json.loads(output) == cli("status", "--json").json()
    assert len(json.loads(output)[0]["parties"]) == 13


def test_the_checker_sees_what_a_command_imports(launched: tuple[str, CLI]) -> None:
    # The same check finds the renderers once a command needs them, so the test above can fail.
    url, _ = launched
    loaded, _ = ratify_in_a_new_process("--db", url, "reminders", "--json", watch=("jinja2",))
    assert loaded == ["jinja2"]


def test_the_head_read_from_the_scripts_is_alembics() -> None:
    database._head.cache_clear()
    assert database._head() == database._scripts().get_current_head()


def test_a_schema_to_make_still_imports_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    loaded, output = ratify_in_a_new_process("--db", url, "status", "--json", watch=("alembic",))
    assert loaded == ["alembic"]
    assert json.loads(output) == []


# What `ratify status` needs no longer includes the libraries of the full command line: it is
# answered by interfaces.fast through the driver (tests/test_quick.py holds it to the full path).
FULL_PATH = ("sqlalchemy", "sqlmodel", "pydantic", "pydantic_settings", "typer", "click", "alembic")


def test_status_json_imports_no_sqlalchemy_sqlmodel_pydantic_or_typer(
    launched: tuple[str, CLI],
) -> None:
    url, cli = launched
    loaded, output = ratify_in_a_new_process("--db", url, "status", "--json", watch=FULL_PATH)
    assert loaded == []
    assert output == cli("status", "--json").stdout
    one, _ = ratify_in_a_new_process("--db", url, "status", "kanta-hame-strategic-2026", "--json")
    assert one == []


def test_the_status_table_imports_no_sqlalchemy_either(launched: tuple[str, CLI]) -> None:
    url, _ = launched
    loaded, output = ratify_in_a_new_process("--db", url, "status", watch=(*FULL_PATH, "rich"))
    assert loaded == ["rich"]
    assert "0/13 signed" in output


@pytest.mark.postgres
def test_status_on_postgresql_imports_the_driver_only(postgres_url: str) -> None:
    from tests.conftest import empty_postgres

    url = empty_postgres(postgres_url)
    cli = cli_on(url)
    assert cli("launch", str(EXAMPLE)).exit_code == 0
    watch = (*FULL_PATH, "psycopg")
    loaded, output = ratify_in_a_new_process("--db", url, "status", "--json", watch=watch)
    assert loaded == ["psycopg"]
    assert output == cli("status", "--json").stdout


def test_a_command_it_does_not_answer_takes_the_full_path(launched: tuple[str, CLI]) -> None:
    # The checker sees the full path's libraries when they are loaded (so the tests above can
    # fail): an unknown round goes there, and has its usual error.
    url, cli = launched
    ran = subprocess.run(
        [sys.executable, "-m", "engine.interfaces.cli", "--db", url, "status", "nope"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    full = cli("status", "nope")
    assert (ran.returncode, ran.stdout, ran.stderr) == (full.exit_code, full.stdout, full.stderr)
    log = ("audit", "log", "kanta-hame-strategic-2026", "--json")
    loaded, _ = ratify_in_a_new_process("--db", url, *log, watch=FULL_PATH)
    assert {"sqlalchemy", "sqlmodel", "typer"} <= set(loaded)


def test_audit_head_imports_no_sqlalchemy_either(launched: tuple[str, CLI]) -> None:
    url, cli = launched
    for args in (("--json",), ()):
        command = ("--db", url, "audit", "head", *args)
        loaded, output = ratify_in_a_new_process(*command, watch=FULL_PATH)
        assert loaded == []
        assert output == cli(*command[2:]).stdout


def test_a_reader_gone_ends_the_fast_path_as_the_full_one(launched: tuple[str, CLI]) -> None:
    # `ratify status --json | head`: typer exits 1 without a word; the fast path does the same.
    url, _ = launched
    ratify = [sys.executable, "-m", "engine.interfaces.cli", "--db", url]
    ended = []
    for args in (("audit", "log", "kanta-hame-strategic-2026", "--json"), ("status", "--json")):
        child = subprocess.Popen(
            [*ratify, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
        )
        assert child.stdout is not None
        assert child.stderr is not None
        child.stdout.close()  # before it writes: it starts in far longer than this takes
        said = child.stderr.read()
        child.stderr.close()
        ended.append((child.wait(), said))
    assert ended == [(1, b""), (1, b"")]


def test_every_write_runs_in_a_fresh_process(sqlite_url: str, tmp_path: Path) -> None:
    """Each command as a person runs it: its own interpreter, nothing loaded before it (an ORM
    class first used by a write, not by a query, once failed there and nowhere in-process)."""
    import os

    env = {**os.environ, "RATIFY_DATABASE_URL": sqlite_url}

    def ratify(*args: str) -> str:
        ran = subprocess.run(
            [sys.executable, "-m", "engine.interfaces.cli", *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
            env=env,
        )
        assert ran.returncode == 0, (args, ran.stderr)
        return ran.stdout

    at = ("--at", "2026-12-01 10:00")
    assert "Launched round" in ratify("launch", str(EXAMPLE), *at)
    ref = "kanta-hame-strategic-2026/1"
    assert "draft → board_review" in ratify("record", ref, "hattula", "submit", *at)
    ref_text = "Kunnanhallitus 01.12.2026 § 5"
    approved = ratify("record", ref, "hattula", "approve", "--ref", ref_text, *at)
    assert "board_review → legal_force_wait" in approved
    assert "hattula" in ratify("forecast", ref, *at)
    assert json.loads(ratify("status", ref, "--json"))["parties"][0]["state"] == "draft"
    assert "3 entries intact" in ratify("audit", "verify", ref)
