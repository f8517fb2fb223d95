"""Replaying a round's log through today's workflows, to rebuild (and so check) its state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.core.evidence import Evidence, Signature
from engine.core.party import EVENTS, PartySnapshot, decide, reopened, round_outcome
from engine.errors import RatifyError, VerificationFailed
from workflows import Body

__all__ = ["CHASES", "Replayed", "replay"]

# Log events that record an email sent to chase a party; they never change a state.
CHASES = ("remind", "escalate")


@dataclass
class Replayed:
    state: str = "open"
    effective_date: date | None = None
    document_sha256: str | None = None
    text_from: date | None = None  # the local date the current text was launched or amended
    parties: dict[str, PartySnapshot] = field(default_factory=dict)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def replay(entries: Sequence[dict[str, Any]]) -> Replayed:
    """Rebuild the round from its entries; raise :class:`VerificationFailed` at the first that
    today's workflows would not have produced."""
    result = Replayed()
    tz = ZoneInfo("Europe/Helsinki")
    for entry in entries:
        name = f"round {entry['round']} entry #{entry['seq']} ({entry['event']})"
        try:
            tz = _replay_one(result, entry, tz)
        except VerificationFailed as exc:
            raise VerificationFailed(f"{name}: {exc}") from None
        except (RatifyError, KeyError, TypeError, ValueError) as exc:
            raise VerificationFailed(f"{name}: replaying it fails: {exc}") from None
    outcome = round_outcome(p.state for p in result.parties.values())
    if entries and outcome is not None and result.state == "open":
        raise VerificationFailed(
            f"round {entries[-1]['round']}: its parties make it {outcome}, but no entry says so"
        )
    return result


def _replay_one(result: Replayed, entry: dict[str, Any], tz: ZoneInfo) -> ZoneInfo:
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
            result.parties[p["id"]] = PartySnapshot(
                id=p["id"],
                workflow=p["workflow"],
                workflow_version=p["workflow_version"],
                state="draft",
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
    if result.state != "open":
        raise VerificationFailed(f"the round was already {result.state}")
    if party_id is not None:
        party = result.parties[party_id]
        if entry["from_state"] != party.state:
            raise VerificationFailed(
                f"it leaves {entry['from_state']} but party {party_id} was in {party.state}"
            )
        if event == "amend":
            after = reopened(party)
        elif event in EVENTS:
            now = _moment(entry["recorded_at"]).astimezone(tz)
            given = Evidence(
                ref=evidence.get("decision"),
                reason=evidence.get("reason"),
                signatory=evidence.get("signatory"),
                title=evidence.get("title"),
                diary=evidence.get("diary"),
            )
            after = decide(party, event, given, now, result.text_from).party
        else:
            raise VerificationFailed(f"unknown party event {event!r}")
        if after.state != entry["to_state"]:
            raise VerificationFailed(
                f"the workflow leads to {after.state}, the entry says {entry['to_state']}"
            )
        result.parties[party_id] = after
        return tz
    states = [p.state for p in result.parties.values()]
    if event == "amend":
        result.document_sha256 = entry["document_sha256"]
        result.text_from = _moment(entry["recorded_at"]).astimezone(tz).date()
    elif event in ("activate", "fail"):
        expected = "active" if event == "activate" else "failed"
        if round_outcome(states) != expected:
            raise VerificationFailed(f"the parties' states do not make the round {expected}")
        result.state = expected
        if event == "activate":
            result.effective_date = date.fromisoformat(evidence["effective_date"])
    elif event == "cancel":
        result.state = "cancelled"
    else:
        raise VerificationFailed(f"unknown round event {event!r}")
    return tz
