"""Rules of the code base that a reviewer would otherwise have to remember."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "workflows", "notifications")
# The one module allowed to read the system clock: the SystemClock itself.
CLOCK_MODULE = ROOT / "engine" / "clock.py"
SYSTEM_TIME_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "localtime"),
    ("time", "gmtime"),
}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _system_time_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if (name, node.func.attr) in SYSTEM_TIME_CALLS:
                found.append(f"{path.name}:{node.lineno} {name}.{node.func.attr}()")
    return found


def test_no_module_but_the_clock_reads_the_system_time() -> None:
    reads = [hit for p in _modules() if p != CLOCK_MODULE for hit in _system_time_reads(p)]
    assert reads == []


def test_the_checker_finds_a_system_time_read(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import datetime\nx = datetime.datetime.now()\nfrom datetime import date\n"
        "y = date.today()\n",
        "utf-8",
    )
    assert len(_system_time_reads(sample)) == 2
    assert _system_time_reads(CLOCK_MODULE) != []


@pytest.mark.parametrize("package", ["engine", "workflows", "notifications"])
def test_public_names_exist(package: str) -> None:
    module = importlib.import_module(package)
    names = list(module.__all__)  # their order is ruff's (RUF022)
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(module, name), f"{package}.__all__ names {name}, which it does not have"


def test_help_imports_no_database_web_or_mail_library() -> None:
    code = (
        "import sys\n"
        "from engine.interfaces.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'sqlmodel', 'psycopg', 'aiosmtplib', 'fastapi',"
        " 'jinja2', 'apscheduler', 'transitions', 'holidays') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in ran.stdout
    assert "record" in ran.stdout
    assert "audit" in ran.stdout
