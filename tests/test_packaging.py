"""The package as a user installs it: a wheel built from the tree, installed (not editable) in a
fresh virtual environment, renders an email and runs `ratify demo` with nothing from the source
tree on its path. Also: pyproject's list of packages is the tree's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def test_pyproject_lists_every_package_of_the_tree() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    mapped = config["package-dir"]
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("engine", "workflows", "notifications")
        for p in (ROOT / top).rglob("__init__.py")
    }
    found |= {name for name, folder in mapped.items() if (ROOT / folder / "__init__.py").is_file()}
    listed = set(config["packages"])
    assert found <= listed
    # Whatever else is listed is a folder of data inside a listed package, with its files shipped.
    for extra in listed - found:
        parent, _, name = extra.rpartition(".")
        assert parent in found, extra
        top = mapped.get(parent.split(".")[0], parent.split(".")[0])
        folder = ROOT / top / Path(*parent.split(".")[1:]) / name
        assert folder.is_dir(), extra
        assert config["package-data"][extra], extra


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; its dependencies come from this venv's site-packages
    (a path line, not this venv's .pth files, so the editable install stays out)."""
    folder = tmp_path_factory.mktemp("wheel")
    # A copy of the tree: setuptools keeps a build/ folder in the source, whose stale files
    # (of a module since removed) would otherwise end up in the wheel.
    source = folder / "source"
    junk = shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "*.db*", "mail")
    shutil.copytree(ROOT, source, ignore=junk)
    build = ["wheel", "--no-deps", "--no-build-isolation", "--quiet", "--wheel-dir", str(folder)]
    subprocess.run(
        [sys.executable, "-m", "pip", *build, str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = folder.glob("ratify-*.whl")
    env_dir = folder / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    (_site_packages(python) / "deps.pth").write_text(f"{_site_packages(Path(sys.executable))}\n")
    # pip of this venv, installing into the fresh one: no download, no dependency resolution.
    into = ["--python", str(python), "install", "--no-deps", "--quiet"]
    subprocess.run(
        [sys.executable, "-m", "pip", *into, str(wheel)],
        check=True,
        capture_output=True,
    )
    return env_dir


def _run(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATIFY_")}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(env_dir / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_the_installed_package_is_not_the_source_tree(installed: Path, tmp_path: Path) -> None:
    ran = _run(
        installed,
        "python",
        "-c",
        "import engine, notifications.render as r, workflows; "
        "print(engine.__file__); print(r.TEMPLATES)",
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    engine_file, templates = ran.stdout.split()
    assert Path(engine_file).is_relative_to(installed)
    assert Path(templates).is_relative_to(installed)
    assert not Path(engine_file).is_relative_to(ROOT)


def test_the_installed_package_renders_an_email(installed: Path, tmp_path: Path) -> None:
    code = (
        "from datetime import date\n"
        "from notifications.render import render\n"
        "subject, text, html = render('active', 'sv', {'title': 'Avtal', 'round_id': 'a/1', "
        "'sha256': '0' * 64, 'party': 'Raseborg', 'coordinator': {'name': 'C', "
        "'email': 'c@example.invalid'}, 'effective_date': date(2027, 1, 5)})\n"
        "print(subject); print('5.1.2027' in text, '<html' in html.lower())\n"
    )
    ran = _run(installed, "python", "-c", code, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    subject, checks = ran.stdout.strip().splitlines()
    assert "Avtal" in subject
    assert checks == "True True"


def test_the_installed_ratify_runs_the_demo(installed: Path, tmp_path: Path) -> None:
    ran = _run(installed, "ratify", "demo", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "Agreement in force from" in ran.stdout
    assert "intact; head" in ran.stdout
    assert list(tmp_path.iterdir()) == []  # the demo keeps its database and mail to itself


def test_the_installed_package_serves_its_pages(installed: Path, tmp_path: Path) -> None:
    # The web templates, stylesheet and words ship in the wheel: a page renders from them.
    code = (
        "import asyncio\n"
        "from engine.interfaces.web.app import create_app\n"
        "from engine.interfaces.web.common import WebConfig\n"
        "from engine.clock import SystemClock\n"
        "from engine.runtime import connect\n"
        "from engine.runtime.access import Keys\n"
        "app = create_app(WebConfig(connect('sqlite:///p.db'), SystemClock(), "
        "Keys(b'k' * 32, 'http://x')))\n"
        "sent = []\n"
        "async def receive():\n"
        "    return {'type': 'http.request', 'body': b'', 'more_body': False}\n"
        "async def send(message):\n"
        "    sent.append(message)\n"
        "scope = {'type': 'http', 'method': 'GET', 'path': '/signin', 'raw_path': b'/signin', "
        "'query_string': b'lang=sv', 'headers': [], 'scheme': 'http', 'server': ('x', 80), "
        "'client': ('127.0.0.1', 1), 'root_path': '', 'http_version': '1.1'}\n"
        "asyncio.run(app(scope, receive, send))\n"
        "body = b''.join(m.get('body', b'') for m in sent if m['type'] == 'http.response.body')\n"
        "print(sent[0]['status'], 'Logga in' in body.decode())\n"
    )
    ran = _run(installed, "python", "-c", code, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.split() == ["200", "True"]
