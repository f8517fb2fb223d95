"""`make run` runs `ratify demo`: it must play the whole round, send its emails and verify."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from engine.interfaces.cli import app


def test_the_demo_plays_the_round_to_activation() -> None:
    ran = CliRunner().invoke(app, ["demo"])
    assert ran.exit_code == 0, ran.stderr
    text = " ".join(ran.stdout.split())
    assert "Agreement in force from 2027-03-08." in text
    assert "13/13 signed" in text
    assert "janakkala return → draft" in text
    assert "hameenlinna approve → council_review" in text
    assert "hameenlinna ✉ escalation to the coordinator" in text
    sent = re.search(r"The SMTP sink received (\d+) messages", text)
    assert sent is not None
    assert int(sent.group(1)) > 13
    assert re.search(
        r"ratify audit verify: round kanta-hame-strategic-2026/1, \d+ entries intact", text
    )
