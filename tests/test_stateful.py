"""Property-based: under any sequence of events, state and log agree.

A hypothesis state machine drives one round on a real SQLite file through random events (right
and wrong evidence, duplicate signatories, events in the wrong state), clock moves, ticks and
amendments. After every step: the stored states are what replaying the log gives, the round is
active exactly when every party has signed, the chain and its anchors verify, and the sequence
numbers have no gaps. A refused event must leave the database exactly as it was.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import func
from sqlmodel import Session, col, select

from engine.agreement import load_agreement
from engine.clock import FakeClock
from engine.core.chain import Entry, check_chain
from engine.core.evidence import Evidence
from engine.core.replay import replay
from engine.errors import RatifyError
from engine.persistence.database import connect, init_schema
from engine.persistence.tables import DocumentRow, LogRow, PartyRow, RoundRow
from engine.runtime.audit import log_entries, verify_database
from engine.runtime.events import record, tick
from engine.runtime.journal import entry_dict, snapshot
from engine.runtime.rounds import amend, launch
from tests.conftest import write_agreement
from workflows import default_catalog, load_definition

HELSINKI = ZoneInfo("Europe/Helsinki")

PARTIES: list[dict[str, Any]] = [
    {
        "id": "twobody",
        "name": "Two-body city",
        "bodies": ["Kaupunginhallitus", "Kaupunginvaltuusto"],
        "signatures_required": 2,
        "await_legal_force": True,
    },
    {"id": "single", "name": "Single-body municipality", "await_legal_force": False},
    {"id": "county", "name": "Wellbeing county", "workflow": "wellbeing-county"},
]
PARTY_IDS = [p["id"] for p in PARTIES]
ALL_BODIES = [
    "Kunnanhallitus",
    "Kaupunginhallitus",
    "Kaupunginvaltuusto",
    "Aluehallitus",
    "Aluevaltuusto",
]
# Variants of the same names, so that the same signatory signing twice happens often.
SIGNATORIES = ["Aino Aalto", "aino  aalto", "Bert Berg", "BERT BERG", "Cecilia Cedar", None]
REF_KINDS = ["right", "right", "right-earlier", "wrong-body", "future", "garbage", "none"]
REASONS = [None, "   ", "needs more preparation", "not acceptable as it stands"]


@dataclass(frozen=True)
class Fingerprint:
    """Everything a write would change."""

    log_rows: int
    round: tuple[Any, ...]
    parties: tuple[tuple[str, str, int, int], ...]
    documents: int


class RoundMachine(RuleBasedStateMachine):
    outcomes: ClassVar[Counter[str]] = Counter()  # how the examples' rounds ended

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory(prefix="ratify-stateful-")
        self.folder = Path(self.tmp.name)
        path = write_agreement(self.folder, PARTIES)
        self.engine = connect(f"sqlite:///{self.folder / 'ratify.db'}")
        init_schema(self.engine)
        self.clock = FakeClock(datetime(2026, 12, 1, 9, 0, tzinfo=HELSINKI))
        self.round = launch(self.engine, load_agreement(path), self.clock, "Cora Coordinator").round
        self.amendments = 0

    def teardown(self) -> None:
        try:
            # What `ratify audit verify` checks, once per example (the invariant checks the rest).
            assert log_entries(self.engine, self.round) == self.entries()
            reports = verify_database(self.engine, self.round)
            assert [r.round for r in reports] == [self.round]
            self.outcomes[self.round_row().state] += 1
        finally:
            self.engine.dispose()
        self.tmp.cleanup()

    # --- reading the database ----------------------------------------------------------------

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def round_row(self) -> RoundRow:
        with self.session() as s:
            row = s.get(RoundRow, self.round)
            assert row is not None
            return row

    def party_rows(self) -> dict[str, PartyRow]:
        with self.session() as s:
            rows = s.exec(select(PartyRow).where(PartyRow.round_id == self.round)).all()
            return {r.party_id: r for r in rows}

    def fingerprint(self) -> Fingerprint:
        with self.session() as s:
            log_rows = s.scalar(
                select(func.count()).select_from(LogRow).where(LogRow.round_id == self.round)
            )
            documents = s.scalar(
                select(func.count())
                .select_from(DocumentRow)
                .where(DocumentRow.round_id == self.round)
            )
            row = s.get(RoundRow, self.round)
            assert row is not None
            parties = s.exec(
                select(PartyRow)
                .where(PartyRow.round_id == self.round)
                .order_by(col(PartyRow.party_id))
            ).all()
            return Fingerprint(
                log_rows=int(log_rows or 0),
                round=(row.version, row.state, row.log_length, row.log_head, row.document_sha256),
                parties=tuple((p.party_id, p.state, p.version, len(p.signatures)) for p in parties),
                documents=int(documents or 0),
            )

    def today(self) -> datetime:
        return self.clock.now(HELSINKI)

    def ref(self, kind: str, party: PartyRow, section: int) -> str | None:
        today = self.today().date()
        body = snapshot(party).body.name
        if kind == "right":
            return f"{body} {today:%d.%m.%Y} § {section}"
        if kind == "right-earlier":
            return f"{body} {today - timedelta(days=3):%d.%m.%Y} § {section}"
        if kind == "wrong-body":
            other = next(b for b in ALL_BODIES if b.casefold() != body.casefold())
            return f"{other} {today:%d.%m.%Y} § {section}"
        if kind == "future":
            return f"{body} {today + timedelta(days=1):%d.%m.%Y} § {section}"
        if kind == "garbage":
            return f"{body} § {section}"
        return None

    # --- rules -------------------------------------------------------------------------------

    def attempt(self, party_id: str, event: str, evidence: Evidence) -> None:
        before = self.fingerprint()
        parties_before = {p[0]: p for p in before.parties}
        try:
            result = record(
                self.engine, self.round, party_id, event, evidence, self.clock, "tester"
            )
        except RatifyError:
            assert self.fingerprint() == before, f"refused {event} for {party_id} wrote"
            return
        after = self.fingerprint()
        assert before.round[1] == "open", "an event was recorded on a closed round"
        grew = after.log_rows - before.log_rows
        closed = after.round[1] != "open"
        assert grew == (2 if closed else 1)
        assert result.from_state == parties_before[party_id][1]
        for pid, state, version, _ in after.parties:
            old = parties_before[pid]
            if pid == party_id:
                assert (state, version) == (result.to_state, old[2] + 1)
            else:
                assert (state, version) == (old[1], old[2]), f"{pid} changed by {event}"
        if event == "sign":
            assert after_signatures(after, party_id) == parties_before[party_id][3] + 1

    @rule(
        party_id=st.sampled_from(PARTY_IDS),
        event=st.sampled_from(list(load_definition("municipality").events)),
        ref_kind=st.sampled_from(REF_KINDS),
        reason=st.sampled_from(REASONS),
        signatory=st.sampled_from(SIGNATORIES),
        title=st.sampled_from(["Mayor", None]),
        section=st.integers(min_value=0, max_value=400),
    )
    def record_random(
        self,
        party_id: str,
        event: str,
        ref_kind: str,
        reason: str | None,
        signatory: str | None,
        title: str | None,
        section: int,
    ) -> None:
        party = self.party_rows()[party_id]
        evidence = Evidence(
            ref=self.ref(ref_kind, party, section),
            reason=reason,
            signatory=signatory,
            title=title,
        )
        self.attempt(party_id, event, evidence)

    @rule(
        party_id=st.sampled_from(PARTY_IDS),
        signatories=st.lists(st.sampled_from(SIGNATORIES[:-1]), min_size=1, max_size=6),
    )
    def push(self, party_id: str, signatories: list[str]) -> None:
        """Up to a few events the party's state calls for, with the evidence they need, so that
        rounds do reach their end."""
        for signatory in signatories:
            if self.round_row().state != "open":
                return
            self.sensible(party_id, signatory)

    @rule(signatories=st.lists(st.sampled_from(SIGNATORIES[:-1]), min_size=1, max_size=4))
    def push_everyone(self, signatories: list[str]) -> None:
        for party_id in PARTY_IDS:
            self.push(party_id, signatories)

    def sensible(self, party_id: str, signatory: str) -> None:
        party = self.party_rows()[party_id]
        if party.state == "draft":
            self.attempt(party_id, "submit", Evidence())
        elif party.state in ("board_review", "council_review"):
            self.attempt(party_id, "approve", Evidence(ref=self.ref("right", party, 7)))
        elif party.state == "appeal_pending":
            self.attempt(party_id, "appeal-resolved", Evidence(reason="dismissed"))
        elif party.state == "awaiting_signature":
            self.attempt(party_id, "sign", Evidence(signatory=signatory, title="Mayor"))
        elif party.state == "legal_force_wait" and party.legal_force_from is not None:
            final = datetime.combine(party.legal_force_from, datetime.min.time(), HELSINKI)
            if final > self.today():
                self.clock.set(final.replace(hour=9))
            self.do_tick()

    @rule(party_id=st.sampled_from(PARTY_IDS), reject=st.booleans())
    def turn_down(self, party_id: str, reject: bool) -> None:
        """A body returns the text for preparation, or rejects it, with proper evidence."""
        party = self.party_rows()[party_id]
        ref = self.ref("right", party, 13) if party.state != "appeal_pending" else None
        if reject:
            self.attempt(party_id, "reject", Evidence(ref=ref, reason="not acceptable"))
        else:
            self.attempt(party_id, "return", Evidence(ref=ref, reason="more preparation"))

    @rule(hours=st.integers(min_value=1, max_value=72))
    def advance_hours(self, hours: int) -> None:
        self.clock.advance(hours=hours)

    @rule(days=st.integers(min_value=1, max_value=45))
    def advance_days(self, days: int) -> None:
        self.clock.advance(days=days)

    @rule()
    def do_tick(self) -> None:
        before = self.fingerprint()
        try:
            moved = tick(self.engine, self.clock)
        except RatifyError:
            assert self.fingerprint() == before
            return
        after = self.fingerprint()
        if not moved:
            assert after == before
        assert all(m.to_state == "awaiting_signature" for m in moved)
        if after.round[1] == "open":
            today = self.today().date()
            for party in self.party_rows().values():
                if party.state == "legal_force_wait":
                    assert party.legal_force_from is not None
                    assert party.legal_force_from > today, f"tick left {party.party_id} waiting"

    @rule()
    def amend_text(self) -> None:
        self.amendments += 1
        document = self.folder / f"amended-{self.amendments}.md"
        document.write_text(f"The agreement's text, version {self.amendments + 1}.\n", "utf-8")
        before = self.fingerprint()
        try:
            result = amend(
                self.engine, self.round, document, "changes", self.clock, "Cora Coordinator"
            )
        except RatifyError:
            assert self.fingerprint() == before
            return
        after = self.fingerprint()
        assert after.documents == before.documents + 1
        assert after.log_rows == before.log_rows + 1 + len(result.reopened)
        for party in self.party_rows().values():
            # Nothing approved or signed of the old text survives an amendment.
            assert party.state == "draft" or (party.state == "board_review" and party.step == 0)
            assert party.signatures == []

    # --- invariants --------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        with self.session() as s:
            rows = s.exec(
                select(LogRow).where(LogRow.round_id == self.round).order_by(col(LogRow.seq))
            ).all()
            return [entry_dict(r) for r in rows]

    @invariant()
    def state_and_log_agree(self) -> None:
        entries = self.entries()
        row = self.round_row()
        parties = self.party_rows()
        # The sequence has no gaps, and the chain and the round's anchors verify.
        assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
        report = check_chain(
            self.round, entries, expected_length=row.log_length, expected_head=row.log_head
        )
        assert report.ok, report.problem
        # Replaying the log gives the stored states.
        rebuilt = replay(entries, default_catalog().machine)
        assert {pid: p.state for pid, p in rebuilt.parties.items()} == {
            pid: p.state for pid, p in parties.items()
        }
        assert {pid: [s.name for s in p.signatures] for pid, p in rebuilt.parties.items()} == {
            pid: [s["name"] for s in p.signatures] for pid, p in parties.items()
        }
        assert (rebuilt.state, rebuilt.effective_date) == (row.state, row.effective_date)
        assert rebuilt.document_sha256 == row.document_sha256
        # The round is active exactly when every party has signed, failed when one rejected.
        states = [p.state for p in parties.values()]
        assert (row.state == "active") == all(s == "signed" for s in states)
        assert (row.effective_date is not None) == (row.state == "active")
        assert (row.state == "failed") == ("rejected" in states)
        assert row.state in ("open", "active", "failed")
        if row.effective_date is not None:
            assert entries[-1]["event"] == "activate"
            assert entries[-1]["evidence"]["effective_date"] == row.effective_date.isoformat()
            assert sum(e["event"] == "activate" for e in entries) == 1
        # Signatures: distinct signatories, as many as required once signed.
        for party in parties.values():
            names = [" ".join(s["name"].split()).casefold() for s in party.signatures]
            assert len(names) == len(set(names))
            if party.state == "signed":
                assert len(names) == party.signatures_required
            elif party.state == "awaiting_signature":
                assert len(names) < party.signatures_required
            else:
                assert names == []


def after_signatures(fingerprint: Fingerprint, party_id: str) -> int:
    return next(p[3] for p in fingerprint.parties if p[0] == party_id)


RoundMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRound = RoundMachine.TestCase


def test_the_rules_can_finish_a_round() -> None:
    """The machine's own rules, driven by hand: pushing every party along activates the round
    (so the random runs can reach activation), and nothing is recorded after it."""
    machine = RoundMachine()
    try:
        machine.state_and_log_agree()
        for _ in range(3):
            for party_id in PARTY_IDS:
                machine.push(party_id, ["Aino Aalto", "Bert Berg", "aino aalto", "Cecilia Cedar"])
                machine.state_and_log_agree()
        row = machine.round_row()
        assert row.state == "active"
        assert row.effective_date == machine.today().date()
        before = machine.fingerprint()
        machine.turn_down("single", reject=True)
        machine.amend_text()
        machine.do_tick()
        assert machine.fingerprint() == before
    finally:
        machine.teardown()
    assert RoundMachine.outcomes["active"] >= 1


def test_the_rules_can_fail_a_round() -> None:
    machine = RoundMachine()
    try:
        machine.push("county", ["Aino Aalto"])  # submit
        machine.turn_down("county", reject=False)  # returned for preparation
        assert machine.party_rows()["county"].state == "draft"
        machine.push("county", ["Aino Aalto"])
        machine.advance_hours(5)
        machine.turn_down("county", reject=True)
        machine.state_and_log_agree()
        assert machine.round_row().state == "failed"
        assert machine.party_rows()["county"].state == "rejected"
    finally:
        machine.teardown()
