"""Replaying a round's log through its workflows, to rebuild (and so check) its state.

Replay asks the same pure functions the runtime asked when the entries were written: the party's
:func:`~engine.core.party.decide` with the machine of its workflow version, and the round's
:func:`~engine.core.round.settle`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.core.evidence import Evidence, Signature
from engine.core.party import PartySnapshot, decide, reopened
from engine.core.round import settle
from engine.core.transitions_table import TransitionTable, advance, table_of
from engine.errors import RatifyError, VerificationFailed
from workflows import Body, ProcessMachine

__all__ = ["CHASES", "Machines", "Replayed", "Replayer", "replay"]

# Log events that record an email sent to chase a party, a correction of a party's contacts or
# its link, or a note on an entry: they never change a state.
CHASES = ("remind", "escalate")
CORRECTIONS = ("contacts", "link")
NOTES = ("annotate",)
# The machine of a workflow version, by name and version (a catalog's ``machine``).
Machines = Callable[[str, int], ProcessMachine]


@dataclass
class Replayed:
    state: str = "open"
    effective_date: date | None = None
    document_sha256: str | None = None
    text_from: date | None = None  # the local date the current text was launched or amended
    parties: dict[str, PartySnapshot] = field(default_factory=dict)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def replay(entries: Iterable[Mapping[str, Any]], machines: Machines) -> Replayed:
    """Rebuild the round from its entries; raise :class:`VerificationFailed` at the first that
    its workflows would not have produced."""
    replayer = Replayer(machines)
    for entry in entries:
        replayer.feed(entry)
    return replayer.finish()


class Replayer:
    """:func:`replay` one entry at a time, oldest first, holding none but the last: ``feed``
    each entry (it raises :class:`VerificationFailed` at the first bad one), then ``finish``.

    A party's event is looked up in its workflow version's :class:`TransitionTable` and applied
    by :func:`advance`; where that cannot vouch for it, :func:`decide` decides, as it did when the
    entry was written, and refuses in its own words."""

    def __init__(self, machines: Machines) -> None:
        self.result = Replayed()
        self._machines = machines
        self._tz = ZoneInfo("Europe/Helsinki")
        self._last: Mapping[str, Any] | None = None  # the last entry fed
        self._tables: dict[tuple[Any, Any], tuple[ProcessMachine, TransitionTable]] = {}

    def feed(self, entry: Mapping[str, Any]) -> None:
        where = (entry["round"], entry["seq"], entry["event"])
        try:
            self._tz = self._one(entry)
        except VerificationFailed as exc:
            raise VerificationFailed(f"{_named(*where)}: {exc}") from None
        except (RatifyError, LookupError, TypeError, ValueError, AttributeError) as exc:
            # A forged entry (wrong types, a launch with no bodies…) is a failed verification.
            raise VerificationFailed(f"{_named(*where)}: replaying it fails: {exc}") from None
        except (ArithmeticError, OSError) as exc:  # dates beyond what a calendar can count
            raise VerificationFailed(f"{_named(*where)}: replaying it fails: {exc}") from None
        self._last = entry

    def finish(self) -> Replayed:
        """The round the entries fed make; raise when its parties make it active or failed but
        no entry said so."""
        result, last = self.result, self._last
        if last is not None and result.state == "open" and result.parties:
            moment = _moment(last["recorded_at"]).astimezone(self._tz)
            outcome = settle(_roles(result, self._machines), moment)
            if outcome is not None:
                raise VerificationFailed(
                    f"round {last['round']}: its parties make it {outcome.state}, "
                    "but no entry says so"
                )
        return result

    def _table(self, workflow: Any, version: Any) -> tuple[ProcessMachine, TransitionTable]:
        """The machine of a workflow version, and its table, looked up once per replay."""
        try:
            return self._tables[workflow, version]
        except KeyError:
            found = self._tables[workflow, version] = self._machined(workflow, version)
            return found
        except TypeError:  # a name or version no dict can hold: whatever machines makes of it
            return self._machined(workflow, version)

    def _machined(self, workflow: Any, version: Any) -> tuple[ProcessMachine, TransitionTable]:
        machine = self._machines(workflow, version)
        return machine, table_of(machine)

    def _one(self, entry: Mapping[str, Any]) -> ZoneInfo:
        result, tz, machines = self.result, self._tz, self._machines
        event, evidence, party_id = entry["event"], entry["evidence"], entry["party"]
        if party_id is None or (
            # _not_by_the_table(event), inline: it is asked of every entry
            event in _NOT_BY_THE_TABLE_SET if type(event) is str else event in _NOT_BY_THE_TABLE
        ):
            return _replay_one(result, entry, tz, machines)
        # What _replay_one does with any other event of a party, the move looked up in the table.
        if entry["seq"] > 1 and result.document_sha256 != entry["document_sha256"]:
            raise VerificationFailed("its document hash is not the round's text at that time")
        if result.state != "open":
            raise VerificationFailed(f"the round was already {result.state}")
        now = _moment(entry["recorded_at"]).astimezone(tz)
        party = result.parties[party_id]
        try:  # self._table(...), inline
            machine, table = self._tables[party.workflow, party.workflow_version]
        except (KeyError, TypeError):
            machine, table = self._table(party.workflow, party.workflow_version)
        if entry["from_state"] != party.state:
            raise VerificationFailed(
                f"it leaves {entry['from_state']} but party {party_id} was in {party.state}"
            )
        if not table.has(event):
            raise VerificationFailed(f"unknown party event {event!r}")
        move = table.moves.get((party.state, event))  # table.move(...), inline
        after = None
        if move is not None and type(evidence) is dict:
            after = advance(move, party, evidence, now, result.text_from)
        if after is None:  # refused, or not for the table to say: as decide says
            given = Evidence(
                ref=evidence.get("decision"),
                reason=evidence.get("reason"),
                signatory=evidence.get("signatory"),
                title=evidence.get("title"),
                diary=evidence.get("diary"),
            )
            after = decide(machine, party, event, given, now, result.text_from).party
        if after.state != entry["to_state"]:
            raise VerificationFailed(
                f"the workflow leads to {after.state}, the entry says {entry['to_state']}"
            )
        result.parties[party_id] = after
        return tz


# The events _replay_one replays as it always has: the launch, the ones that change no state, the
# round's own, and an amendment's reopening of a party. Every other event of a party is a move.
_NOT_BY_THE_TABLE = ("launch", *CHASES, *NOTES, *CORRECTIONS, "signatories", "amend")
_NOT_BY_THE_TABLE_SET = frozenset(_NOT_BY_THE_TABLE)


def _not_by_the_table(event: Any) -> bool:
    if type(event) is str:
        return event in _NOT_BY_THE_TABLE_SET
    return event in _NOT_BY_THE_TABLE


def _named(round_id: Any, seq: Any, event: Any) -> str:
    return f"round {round_id} entry #{seq} ({event})"


def _roles(result: Replayed, machines: Machines) -> list[Any]:
    return [machines(p.workflow, p.workflow_version).role(p.state) for p in result.parties.values()]


def _replay_one(
    result: Replayed, entry: Mapping[str, Any], tz: ZoneInfo, machines: Machines
) -> ZoneInfo:
    event, evidence, party_id = entry["event"], entry["evidence"], entry["party"]
    if entry["seq"] > 1 and result.document_sha256 != entry["document_sha256"] and event != "amend":
        raise VerificationFailed("its document hash is not the round's text at that time")
    if event == "launch":
        if entry["seq"] != 1:
            raise VerificationFailed("a launch must be the first entry")
        tz = ZoneInfo(evidence["timezone"])
        result.document_sha256 = entry["document_sha256"]
        result.text_from = _moment(entry["recorded_at"]).astimezone(tz).date()
        for p in evidence["parties"]:
            machine = machines(p["workflow"], p["workflow_version"])
            result.parties[p["id"]] = PartySnapshot(
                id=p["id"],
                workflow=p["workflow"],
                workflow_version=p["workflow_version"],
                state=machine.definition.initial,
                bodies=tuple(Body(b["name"], b["kind"], b["appeal_days"]) for b in p["bodies"]),
                step=0,
                await_legal_force=p["await_legal_force"],
                notice_days=p["notice_days"],
                signatures_required=p["signatures_required"],
                signatories=tuple(
                    Signature(s["name"], s["title"]) for s in p.get("signatories", [])
                ),
            )
        return tz
    if event in CHASES:  # a reminder or escalation was sent: it records, it changes nothing
        if party_id is not None:
            state = result.parties[party_id].state
            if not entry["from_state"] == entry["to_state"] == state:
                raise VerificationFailed(
                    f"it chases party {party_id} in {entry['from_state']}, which was in {state}"
                )
        return tz
    if event in NOTES:
        if party_id is not None or not 1 <= int(evidence.get("refers_to", 0)) < entry["seq"]:
            raise VerificationFailed("a note must refer to an earlier entry of its round")
        return tz
    if result.state != "open":
        raise VerificationFailed(f"the round was already {result.state}")
    if event in (*CORRECTIONS, "signatories"):
        if party_id is None or party_id not in result.parties:
            raise VerificationFailed(f"{event} names no party of the round")
        state = result.parties[party_id].state
        if not entry["from_state"] == entry["to_state"] == state:
            raise VerificationFailed(
                f"it corrects party {party_id} in {entry['from_state']}, which was in {state}"
            )
        if event == "signatories":
            listed = tuple(Signature(s["name"], s["title"]) for s in evidence["signatories"])
            result.parties[party_id] = replace(result.parties[party_id], signatories=listed)
        return tz
    now = _moment(entry["recorded_at"]).astimezone(tz)
    if party_id is not None:
        party = result.parties[party_id]
        machine = machines(party.workflow, party.workflow_version)
        if entry["from_state"] != party.state:
            raise VerificationFailed(
                f"it leaves {entry['from_state']} but party {party_id} was in {party.state}"
            )
        if event == "amend":
            after = reopened(machine, party)
        elif event in machine.definition.events:
            given = Evidence(
                ref=evidence.get("decision"),
                reason=evidence.get("reason"),
                signatory=evidence.get("signatory"),
                title=evidence.get("title"),
                diary=evidence.get("diary"),
            )
            after = decide(machine, party, event, given, now, result.text_from).party
        else:
            raise VerificationFailed(f"unknown party event {event!r}")
        if after.state != entry["to_state"]:
            raise VerificationFailed(
                f"the workflow leads to {after.state}, the entry says {entry['to_state']}"
            )
        result.parties[party_id] = after
        return tz
    if event == "amend":
        result.document_sha256 = entry["document_sha256"]
        result.text_from = now.date()
    elif event in ("activate", "fail"):
        expected = "active" if event == "activate" else "failed"
        outcome = settle(_roles(result, machines), now)
        if outcome is None or outcome.state != expected:
            raise VerificationFailed(f"the parties' states do not make the round {expected}")
        if event == "activate":
            claimed = date.fromisoformat(evidence["effective_date"])
            if claimed != outcome.effective_date:
                raise VerificationFailed(
                    f"it makes the round effective {claimed}, but the last party's signature "
                    f"makes it {outcome.effective_date}"
                )
        result.state = outcome.state
        result.effective_date = outcome.effective_date
    elif event == "cancel":
        result.state = "cancelled"
    else:
        raise VerificationFailed(f"unknown round event {event!r}")
    return tz
