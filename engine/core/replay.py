"""Replaying a round's log through its workflows, to rebuild (and so check) its state.

Replay asks the same pure functions the runtime asked when the entries were written: the party's
:func:`~engine.core.party.decide` with the machine of its workflow version, and the round's
:func:`~engine.core.round.settle`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.core.evidence import Evidence, Signature
from engine.core.party import PartySnapshot, decide, reopened
from engine.core.round import settle
from engine.errors import RatifyError, VerificationFailed
from workflows import Body, ProcessMachine

__all__ = ["CHASES", "Machines", "Replayed", "replay"]

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


def replay(entries: Sequence[Mapping[str, Any]], machines: Machines) -> Replayed:
    """Rebuild the round from its entries; raise :class:`VerificationFailed` at the first that
    its workflows would not have produced."""
    result = Replayed()
    tz = ZoneInfo("Europe/Helsinki")
    for entry in entries:
        name = f"round {entry['round']} entry #{entry['seq']} ({entry['event']})"
        try:
            tz = _replay_one(result, entry, tz, machines)
        except VerificationFailed as exc:
            raise VerificationFailed(f"{name}: {exc}") from None
        except (RatifyError, LookupError, TypeError, ValueError, AttributeError) as exc:
            # A forged entry (wrong types, a launch with no bodies…) is a failed verification.
            raise VerificationFailed(f"{name}: replaying it fails: {exc}") from None
        except (ArithmeticError, OSError) as exc:  # dates beyond what a calendar can count
            raise VerificationFailed(f"{name}: replaying it fails: {exc}") from None
    if entries and result.state == "open" and result.parties:
        last = _moment(entries[-1]["recorded_at"]).astimezone(tz)
        outcome = settle(_roles(result, machines), last)
        if outcome is not None:
            raise VerificationFailed(
                f"round {entries[-1]['round']}: its parties make it {outcome.state}, "
                "but no entry says so"
            )
    return result


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
