"""Rules of the code base that a reviewer would otherwise have to remember."""

from __future__ import annotations

import ast
import importlib
import re
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


# --- the import direction --------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _of(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    def hits(name: str) -> bool:
        return any(name == f or name.startswith(f + ".") for f in forbidden)

    return sorted(
        f"{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p.name} imports {name}"
        for p in paths
        for name in _imports(p)
        if hits(name)
    )


RATIFY = ("engine", "workflows", "notifications")
HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "psycopg", "jinja2", "aiosmtplib", "typer", "fastapi")


def test_errors_and_clock_import_nothing_of_ratify() -> None:
    leaves = [ROOT / "engine" / "errors.py", ROOT / "engine" / "clock.py"]
    assert _offending(leaves, RATIFY) == []


def test_the_pure_core_imports_no_database_template_mail_or_interface_library() -> None:
    core = _of("engine/core")
    assert _offending(core, HEAVY) == []
    assert _offending(core, ("engine.runtime", "engine.persistence", "engine.interfaces")) == []


def test_workflows_and_notifications_import_no_runtime_or_persistence() -> None:
    paths = _of("workflows", "notifications")
    assert _offending(paths, ("engine.runtime", "engine.persistence", "engine.interfaces")) == []


def test_interfaces_call_only_the_service_layer() -> None:
    # What an interface may use besides engine.runtime: the errors, the clock, the settings, the
    # wording of counts, and the mail adapters it builds from the settings.
    paths = _of("engine/interfaces")
    below = ("engine.core", "engine.agreement", "engine.persistence", "workflows")
    assert _offending(paths, (*below, "sqlalchemy", "sqlmodel", "alembic")) == []
    assert _offending(paths, ("notifications.render", "notifications.policy")) == []


def test_the_pure_core_loads_without_the_heavy_libraries() -> None:
    # Transitively too: importing every core module pulls in no database, template or mail code.
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts) for p in _of("engine/core")
    )
    code = (
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    __import__(name.removesuffix('.__init__'))\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "[]"


def test_the_checker_finds_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f() -> None:\n    from sqlalchemy import select\n", "utf-8")
    assert "sample.py imports sqlalchemy" in _offending([sample], HEAVY)


# --- the public surface ------------------------------------------------------------------------

SURFACES = ["engine", "engine.runtime", "engine.agreement", "workflows", "notifications"]


@pytest.mark.parametrize("package", SURFACES)
def test_all_is_exactly_the_public_names(package: str) -> None:
    import types

    module = importlib.import_module(package)
    for name in module.__all__:  # a name provided on first use (PEP 562) is then there too
        getattr(module, name)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } - {"annotations"}
    assert set(module.__all__) == public


def test_the_runtime_modules_import_one_another_without_cycles() -> None:
    folder = ROOT / "engine" / "runtime"
    names = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    graph = {
        name: {
            imported.split(".")[2]
            for imported in _imports(folder / f"{name}.py")
            if imported.startswith("engine.runtime.") and imported.split(".")[2] in names
        }
        for name in names
    }
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise AssertionError(" → ".join((*path[path.index(name) :], name)))
        if name in done:
            return
        for nxt in sorted(graph[name]):
            visit(nxt, (*path, name))
        done.add(name)

    for name in sorted(names):
        visit(name, ())
    assert {"rounds", "chasing", "messages"} <= set(graph)


def test_the_outbox_is_queried_only_by_its_store() -> None:
    # Other modules may hold its rows (a claimed message is one), never query or update them.
    store = ROOT / "engine" / "persistence" / "outbox.py"
    queried = re.compile(r"(select|update|delete|insert)\(\s*(col\()?OutboxRow")
    offenders = [
        str(p.relative_to(ROOT))
        for p in _modules()
        if p != store and queried.search(p.read_text("utf-8"))
    ]
    assert offenders == []
    assert queried.search(store.read_text("utf-8"))
