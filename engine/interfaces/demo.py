"""`ratify demo`: the Kanta-Häme round played on a simulated clock in a temporary database.

Boards meet on different dates; Janakkala's board returns the text for preparation; Hämeenlinna's
council decides after its board; Loppi's decision is appealed; every party waits for legal force
(across Christmas, New Year and Epiphany); Hämeenlinna and Hämeen liitto need two signatories.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from importlib import resources
from itertools import count, cycle
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich.console import Console

from engine.clock import FakeClock
from engine.interfaces.render import status_table
from engine.runtime import (
    Evidence,
    connect,
    init_schema,
    jsonable,
    launch,
    load_agreement,
    next_working_day,
    record,
    status,
    tick_once,
    verify_database,
)
from engine.wording import counted
from notifications.mailer import Mailer
from notifications.sink import MailSink

if TYPE_CHECKING:
    from engine.runtime import Engine

__all__ = ["EXAMPLE", "run_demo"]

# Shipped inside the package (``ratify_examples``, the repository's examples/ folder).
EXAMPLE = Path(str(resources.files("ratify_examples") / "kanta-hame" / "agreement.toml"))
WEEKDAYS = ("ma", "ti", "ke", "to", "pe", "la", "su")
START = date(2026, 12, 1)
# Invented signatories, handed out in turn.
SIGNATORIES = [
    ("Aino Esimerkki", "kunnanjohtaja"),
    ("Veikko Malli", "hallituksen puheenjohtaja"),
    ("Liisa Testinen", "kaupunginjohtaja"),
    ("Olli Kuvitteellinen", "valtuuston puheenjohtaja"),
]


@dataclass(frozen=True)
class Step:
    party: str
    event: str
    body: int = 0  # which of the party's bodies decides (approve, return)
    reason: str | None = None
    signatory: tuple[str, str] | None = None


@dataclass
class Play:
    engine: Engine
    round_id: str
    clock: FakeClock
    console: Console
    bodies: dict[str, list[str]]
    mailer: Mailer
    sent: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # messages by kind
    plan: dict[date, list[Step]] = field(default_factory=lambda: defaultdict(list))
    sections: Iterator[int] = field(default_factory=lambda: count(101))
    signers: Iterator[tuple[str, str]] = field(default_factory=lambda: cycle(SIGNATORIES))

    def on(self, day: date, *steps: Step) -> None:
        self.plan[day].extend(steps)

    def run(self, step: Step) -> str:
        """Record one step; return the round's state after it."""
        today = self.clock.moment.date()
        evidence = Evidence(reason=step.reason)
        if step.event in ("approve", "return"):
            ref = f"{self.bodies[step.party][step.body]} {today:%d.%m.%Y} § {next(self.sections)}"
            evidence = Evidence(ref=ref, reason=step.reason)
        if step.signatory:
            evidence = Evidence(signatory=step.signatory[0], title=step.signatory[1])
        result = record(
            self.engine,
            self.round_id,
            step.party,
            step.event,
            evidence,
            self.clock,
            "yhteyshenkilö",
        )
        detail = evidence.ref or evidence.reason or ""
        if step.signatory:
            detail = f"{step.signatory[0]}, {step.signatory[1]} "
            detail += f"({result.signatures}/{result.signatures_required})"
        if result.role == "legal_force" and result.legal_force_from:
            detail += f"; final from {result.legal_force_from:%d.%m.%Y}"
        self.line(step.party, step.event, result.to_state, detail)
        return result.round_state

    def line(self, party: str, event: str, state: str, detail: str = "") -> None:
        moment = self.clock.moment
        arrow = f"→ {state:<18}" if state else ""
        self.console.print(
            f"{WEEKDAYS[moment.weekday()]} {moment:%d.%m.%Y}  {party:<14.14} {event:<15} "
            f"{arrow} {detail}".rstrip(),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def tick(self) -> None:
        """The worker's tick: legal force, then reminders due, then the outbox sent."""
        report = tick_once(self.engine, self.clock, self.mailer, "ratify <ratify@example.invalid>")
        for moved in report.moved:
            self.line(moved.party, moved.event, moved.to_state, "the decision is final")
        shown: set[tuple[str, str]] = set()
        for s in report.sent:
            if s.outcome != "sent":
                continue
            self.sent[s.kind] += 1
            chase = s.chase or {}
            told = chase.get("told")
            what = s.kind + (f" {told[0]}/{told[1]}" if told else "")
            if s.kind == "escalation":
                what += " to the coordinator"
            who = s.party or "(everyone)"
            chasing = ("reminder", "deadline", "agenda", "followup", "escalation")
            if s.kind in chasing and (who, what) not in shown:
                shown.add((who, what))  # one line, whatever the languages
                self.line(who, f"✉ {what}", "", "")
        for kind in ("invitation", "active", "failed", "cancelled", "amended"):
            count = sum(s.kind == kind and s.outcome == "sent" for s in report.sent)
            if count:
                self.line("(everyone)", f"✉ {kind}", "", f"{count} messages")

    def schedule_signatures(self, day: date) -> None:
        """A party newly awaiting signature is signed on the next working days, one a day."""
        pending = {s.party for steps in self.plan.values() for s in steps if s.event == "sign"}
        for party in status(self.engine, self.round_id)[0].parties:
            if party.role != "signing" or party.id in pending:
                continue
            when = day
            # The party's authorised signatories where it lists them, else invented ones.
            listed = iter((s.name, s.title) for s in party.may_sign)
            for _ in range(party.signatures_required - party.signatures):
                when = next_working_day(when + timedelta(days=1))
                signer = next(listed, None) or next(self.signers)
                self.on(when, Step(party.id, "sign", signatory=signer))


def _script(play: Play) -> None:
    parties = list(play.bodies)
    special = {"hameenlinna", "janakkala", "loppi"}
    play.on(date(2026, 12, 2), *(Step(p, "submit") for p in parties))
    board_days = [date(2026, 12, d) for d in (7, 8, 9, 10, 14, 15, 16, 17, 21, 22)]
    for party, day in zip([p for p in parties if p not in special], board_days, strict=False):
        play.on(day, Step(party, "approve"))
    play.on(
        date(2026, 12, 8),
        Step("janakkala", "return", reason="palautetaan valmisteluun: kustannusjako tarkennettava"),
    )
    play.on(date(2027, 1, 5), Step("janakkala", "submit"))
    play.on(date(2027, 1, 11), Step("janakkala", "approve"))
    play.on(date(2026, 12, 14), Step("hameenlinna", "approve", body=0))
    play.on(date(2027, 1, 25), Step("hameenlinna", "approve", body=1))
    play.on(date(2026, 12, 10), Step("loppi", "approve"))
    play.on(
        date(2026, 12, 28), Step("loppi", "appeal", reason="oikaisuvaatimus jätetty 22.12.2026")
    )
    play.on(
        date(2027, 1, 18),
        Step("loppi", "appeal-resolved", reason="oikaisuvaatimus hylätty 18.01.2027 § 12"),
    )


def run_demo(console: Console, file: Path | None = None) -> int:
    agreement = load_agreement(file or EXAMPLE)
    tz = ZoneInfo(agreement.timezone)
    with tempfile.TemporaryDirectory(prefix="ratify-demo-") as folder:
        engine = connect(f"sqlite:///{folder}/demo.db")
        sink = MailSink(Path(folder) / "mail")
        _, port = sink.start(port=0)
        try:
            init_schema(engine)
            clock = FakeClock(datetime.combine(START, time(9, 0), tz))
            console.rule(f"[bold]{agreement.title}")
            console.print(
                f"{len(agreement.parties)} parties, a simulated clock from {START:%d.%m.%Y}, "
                f"a temporary SQLite database, and an SMTP sink on port {port}.\n"
            )
            round_id = launch(engine, agreement, clock, "koordinaattori").round
            bodies = {p.id: [b.name for b in p.bodies] for p in agreement.parties}
            play = Play(engine, round_id, clock, console, bodies, Mailer("127.0.0.1", port))
            play.line("(round)", "launch", "open", round_id)
            if file is None:
                _script(play)
            else:  # another agreement: every party's bodies approve in turn
                for party, names in bodies.items():
                    play.on(START + timedelta(days=1), Step(party, "submit"))
                    for i in range(len(names)):
                        play.on(START + timedelta(days=7 * (i + 1)), Step(party, "approve", body=i))
            state = _play(play, tz)
            console.print()
            final = status(engine, round_id)[0]
            console.print(status_table(jsonable(final)))
            if state == "active" and final.effective_date:
                console.print(
                    f"\n[bold green]Agreement in force from {final.effective_date.isoformat()}.[/]"
                )
            _mail_summary(console, sink, play.sent)
            reports = verify_database(engine, round_id)
            console.print(
                f"\n[bold]ratify audit verify[/]: round {reports[0].round}, "
                f"{counted(reports[0].entries, 'entry', 'entries')} intact; head {reports[0].head}"
            )
            return 0 if state == "active" else 1
        finally:
            sink.stop()
            engine.dispose()


def _mail_summary(console: Console, sink: MailSink, sent: dict[str, int]) -> None:
    import email
    import email.policy

    received = sink.received
    console.print(
        f"\nThe SMTP sink received {len(received)} messages: "
        + ", ".join(f"{n} {kind}" for kind, n in sorted(sent.items()))
    )
    sample = next((r for r in received if "muistutus" in r.subject.lower()), None)
    if sample is not None:
        message = email.message_from_bytes(sample.path.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        console.rule("[dim]one of the reminders, as sent[/]")
        console.print(f"To: {message['To']}\nSubject: {message['Subject']}\n", markup=False)
        console.print("\n".join(text.strip().splitlines()[:9]), markup=False, highlight=False)
        console.rule()


def _play(play: Play, tz: ZoneInfo) -> str:
    day, state = START, "open"
    while state == "open" and day <= START + timedelta(days=365):
        play.clock.set(datetime.combine(day, time(9, 0), tz))
        play.tick()
        play.clock.set(datetime.combine(day, time(10, 0), tz))
        for step in play.plan.pop(day, []):
            play.clock.advance(minutes=15)
            state = play.run(step)
        play.schedule_signatures(day)
        day += timedelta(days=1)
    play.clock.advance(hours=1)
    play.tick()  # the notices of the last day
    return state
