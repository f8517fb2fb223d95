"""The README's examples are executed, so the documentation cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from engine.agreement import load_agreement
from engine.core.calendar import legal_force_date
from engine.interfaces.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")


def _block(language: str, after: str) -> str:
    start = README.index(after)
    match = re.search(rf"```{language}\n(.*?)```", README[start:], re.S)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


def test_the_readme_diagram_is_what_the_command_prints() -> None:
    printed = CliRunner().invoke(app, ["workflows", "show", "municipality", "--mermaid"])
    assert printed.exit_code == 0
    assert _block("mermaid", "### The `municipality` workflow").strip() == printed.stdout.strip()


def test_the_readme_agreement_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "agreement.toml"
    path.write_text(_block("toml", "## The agreement file"), "utf-8")
    (tmp_path / "agreement.md").write_text("Sopimus.\n", "utf-8")
    agreement = load_agreement(path)
    assert [p.id for p in agreement.parties] == ["hameenlinna", "hattula"]
    assert [b.name for b in agreement.parties[0].bodies] == [
        "Kaupunginhallitus",
        "Kaupunginvaltuusto",
    ]
    assert agreement.parties[1].bodies[0].appeal_days == 14


def test_the_readme_legal_force_example_holds() -> None:
    from datetime import date

    assert legal_force_date(date(2026, 12, 4), 14) == date(2026, 12, 29)
    assert legal_force_date(date(2026, 12, 7), 14) == date(2026, 12, 29)


def test_the_readme_refusal_message_is_the_real_one(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    example = Path(__file__).resolve().parent.parent / "examples" / "kanta-hame" / "agreement.toml"
    runner = CliRunner()
    assert runner.invoke(app, ["--db", db, "launch", str(example)]).exit_code == 0
    ran = runner.invoke(
        app,
        [
            "--db",
            db,
            "record",
            "kanta-hame-strategic-2026",
            "forssa",
            "sign",
            "--signatory",
            "Aino Esimerkki",
            "--title",
            "kunnanjohtaja",
        ],
    )
    assert ran.exit_code == 1
    shown = _block("console", "A refused event says").splitlines()[1]
    assert " ".join(ran.stderr.split()) == shown


def test_the_readme_reminder_defaults_are_the_real_ones() -> None:
    import tomllib

    from notifications.policy import ReminderPolicy

    block = _block("toml", "An optional `[reminders]` table")
    documented = ReminderPolicy.model_validate(tomllib.loads(block)["reminders"])
    assert documented == ReminderPolicy()
