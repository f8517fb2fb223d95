"""`ratify demo`: the Kanta-Häme round played on a simulated clock in a temporary database."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path

from rich.console import Console

from engine.agreement import load_agreement
from engine.calendar import next_working_day
from engine.clock import FakeClock
from engine.evidence import Evidence
from engine.interfaces.render import status_table
from engine.persistence.database import connect, init_schema
from engine.runtime.auditing import verify_database
from engine.runtime.events import record, tick
from engine.runtime.rounds import launch, status

__all__ = ["EXAMPLE", "run_demo"]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kanta-hame" / "agreement.toml"
WEEKDAYS = ("ma", "ti", "ke", "to", "pe", "la", "su")
# Invented signatories: (name, title) pairs handed out in turn.
SIGNATORIES = [
    ("Aino Esimerkki", "kunnanjohtaja"),
    ("Veikko Malli", "hallituksen puheenjohtaja"),
    ("Liisa Testinen", "kaupunginjohtaja"),
    ("Olli Kuvitteellinen", "valtuuston puheenjohtaja"),
]

Action = Callable[[], None]


def run_demo(console: Console, file: Path | None = None) -> int:
    agreement = load_agreement(file or EXAMPLE)
    with tempfile.TemporaryDirectory(prefix="ratify-demo-") as folder:
        engine = connect(f"sqlite:///{folder}/demo.db")
        init_schema(engine)
        clock = FakeClock(datetime(2026, 12, 1, 9, 0))
        start = clock.moment.date()
        console.rule(f"[bold]{agreement.title}")
        console.print(
            f"{len(agreement.parties)} parties; a simulated clock from {start:%d.%m.%Y}; "
            f"a temporary SQLite database in {folder}\n"
        )
        round_id = launch(engine, agreement, clock, "koordinaattori")
        _line(console, clock, "—", "launch", f"round {round_id} opened, every party in draft")

        parties = {p["id"]: p for p in status(engine, round_id)[0]["parties"]}
        plan: dict[date, list[Action]] = defaultdict(list)
        section = iter(range(101, 999))
        signers = iter(SIGNATORIES * 20)

        def act(party: str, event: str, **evidence: str) -> None:
            result = record(engine, round_id, party, event, Evidence(**evidence), clock, "yhteyshenkilö")
            detail = evidence.get("ref") or evidence.get("reason") or evidence.get("signatory") or ""
            if event == "sign":
                detail = f"{evidence['signatory']}, {evidence['title']} ({result['signatures']}/{result['signatures_required']})"
            moved = f"{result['from_state']} → {result['to_state']}"
            if result["legal_force_from"] and result["to_state"] == "legal_force_wait":
                moved += f" (final from {date.fromisoformat(result['legal_force_from']):%d.%m.%Y})"
            _line(console, clock, party, event, f"{moved}  {detail}")
            if result["round_state"] == "active":
                console.print(
                    f"\n[bold green]The agreement is in force: round {round_id} became active, "
                    f"effective {date.fromisoformat(result['effective_date']):%d.%m.%Y}.[/]"
                )

        def decision(party: str, body_index: int, day: date) -> str:
            return f"{parties[party]['bodies'][body_index]} {day:%d.%m.%Y} § {next(section)}"

        def on(day: date, action: Action) -> None:
            plan[day].append(action)

        # Everyone puts the item on an agenda the day after launch.
        for party in parties:
            on(date(2026, 12, 2), lambda p=party: act(p, "submit"))
        # Boards meet on their own dates.
        board_days = [date(2026, 12, d) for d in (7, 8, 9, 10, 14, 15, 16, 17, 21)]
        ordinary = [p for p in parties if p not in ("hameenlinna", "janakkala", "loppi")]
        for party, day in zip(ordinary, board_days * 2, strict=False):
            on(day, lambda p=party, d=day: act(p, "approve", ref=decision(p, 0, d)))
        # Janakkala's board returns the text for preparation, then approves it in January.
        on(date(2026, 12, 8), lambda: act("janakkala", "return", reason="palautetaan valmisteluun: rahoitusosuudet tarkennettava", ref=decision("janakkala", 0, date(2026, 12, 8))))
        on(date(2027, 1, 5), lambda: act("janakkala", "submit"))
        on(date(2027, 1, 11), lambda: act("janakkala", "approve", ref=decision("janakkala", 0, date(2027, 1, 11))))
        # Hämeenlinna needs its council too.
        on(date(2026, 12, 14), lambda: act("hameenlinna", "approve", ref=decision("hameenlinna", 0, date(2026, 12, 14))))
        on(date(2027, 1, 25), lambda: act("hameenlinna", "approve", ref=decision("hameenlinna", 1, date(2027, 1, 25))))
        # Loppi's decision is appealed (a request for review), which its board then dismisses.
        on(date(2026, 12, 10), lambda: act("loppi", "approve", ref=decision("loppi", 0, date(2026, 12, 10))))
        on(date(2026, 12, 28), lambda: act("loppi", "appeal", reason="oikaisuvaatimus jätetty 22.12.2026"))
        on(date(2027, 1, 18), lambda: act("loppi", "appeal-resolved", reason="oikaisuvaatimus hylätty, Lopen kunnanhallitus 18.01.2027 § 12"))

        day, last = start, date(2027, 6, 30)
        while day <= last:
            clock.set(datetime.combine(day, time(7, 0)))
            for moved in tick(engine, clock):
                _line(console, clock, moved["party"], "legal-force", f"{moved['from_state']} → {moved['to_state']}")
            for action in plan.pop(day, []):
                clock.set(clock.moment + timedelta(minutes=17))
                action()
            # A party awaiting signature is signed on the next working days, one signatory a day.
            for p in status(engine, round_id)[0]["parties"]:
                if p["state"] == "awaiting_signature" and not any(
                    getattr(a, "signing", None) == p["id"] for d in plan.values() for a in d
                ):
                    _schedule_signatures(plan, p, day, signers, act)
            if status(engine, round_id)[0]["state"] != "open":
                break
            day += timedelta(days=1)

        console.print()
        console.print(status_table(status(engine, round_id)[0]))
        reports = verify_database(engine, round_id)
        console.print(
            f"\n[bold]ratify audit verify[/]: round {reports[0].round}, {reports[0].entries} "
            f"entries intact; head {reports[0].head}"
        )
        engine.dispose()
        return 0 if status_ok(engine_state=reports[0].ok) else 1


def status_ok(engine_state: bool) -> bool:
    return engine_state


def _schedule_signatures(
    plan: dict[date, list[Action]],
    party: dict[str, object],
    day: date,
    signers: object,
    act: Callable[..., None],
) -> None:
    needed = int(party["signatures_required"]) - int(party["signatures"])  # type: ignore[call-overload]
    when = day
    for _ in range(needed):
        when = next_working_day(when + timedelta(days=1))
        name, title = next(signers)  # type: ignore[call-overload]

        def sign(p: str = str(party["id"]), n: str = name, t: str = title) -> None:
            act(p, "sign", signatory=n, title=t)

        sign.signing = party["id"]  # type: ignore[attr-defined]
        plan[when].append(sign)


def _line(console: Console, clock: FakeClock, party: str, event: str, text: str) -> None:
    moment = clock.moment
    console.print(
        f"{WEEKDAYS[moment.weekday()]} {moment:%d.%m.%Y %H:%M}  {party:<28} {event:<16} {text}",
        markup=False,
        highlight=False,
    )
