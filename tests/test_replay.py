"""Golden logs replayed through today's workflows reproduce the states they were recorded with.

The logs under ``tests/golden/`` were generated once on a fake clock and committed: a two-body party
with legal force and two signatures reaching activation, a round with a return, an amendment and a
rejection, and a round with appeals that is cancelled. Each carries the states it ended in.

The mutated copies are re-hashed after the change, so the chain verifies and only replaying the
log through the workflows can catch them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from engine.core.chain import GENESIS, check_chain, entry_hash
from engine.core.export import to_jsonl
from engine.core.replay import replay
from engine.errors import VerificationFailed
from engine.runtime.audit import verify_file
from workflows import default_catalog

GOLDEN = Path(__file__).parent / "golden"
NAMES = ["activation", "failure", "appeal-cancel"]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN / f"{name}.json").read_text("utf-8"))
    return data


def rechain(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Renumber and re-hash every entry, as a forger who knows the scheme would."""
    out = [dict(e) for e in entries]
    for i, entry in enumerate(out):
        entry["seq"] = i + 1
        entry["prev_hash"] = out[i - 1]["hash"] if i else GENESIS
        entry["hash"] = entry_hash(entry)
    return out


def test_the_golden_files_are_there() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_golden_chain_verifies(name: str) -> None:
    entries = load(name)["entries"]
    round_id = entries[0]["round"]
    report = check_chain(
        round_id, entries, expected_length=len(entries), expected_head=entries[-1]["hash"]
    )
    assert report.ok, report.problem
    assert report.entries == len(entries)
    assert entries[0]["prev_hash"] == GENESIS
    assert all(entry_hash(e) == e["hash"] for e in entries)
    # The forger's tool reproduces an untouched chain exactly, so the mutations below are fair.
    assert rechain(entries) == entries


@pytest.mark.parametrize("name", NAMES)
def test_golden_replay_reproduces_the_expected_states(name: str) -> None:
    golden = load(name)
    expected = golden["expected"]
    rebuilt = replay(golden["entries"], default_catalog().machine)
    assert rebuilt.state == expected["round_state"]
    effective = expected["effective_date"]
    assert rebuilt.effective_date == (date.fromisoformat(effective) if effective else None)
    assert rebuilt.document_sha256 == expected["document_sha256"]
    assert {pid: p.state for pid, p in rebuilt.parties.items()} == expected["parties"]
    assert {pid: [s.name for s in p.signatures] for pid, p in rebuilt.parties.items()} == expected[
        "signatories"
    ]


def test_golden_expectations_are_what_the_scenarios_say() -> None:
    """The golden files themselves: what each scenario was meant to end in."""
    activation = load("activation")
    assert activation["expected"]["round_state"] == "active"
    assert activation["expected"]["effective_date"] == "2027-01-05"
    assert activation["expected"]["parties"] == {"hameenlinna": "signed", "hattula": "signed"}
    events = [(e["party"], e["event"], e["to_state"]) for e in activation["entries"]]
    assert ("hameenlinna", "approve", "council_review") in events
    assert ("hameenlinna", "approve", "legal_force_wait") in events
    assert ("hameenlinna", "legal-force", "awaiting_signature") in events
    assert ("hameenlinna", "sign", "awaiting_signature") in events  # one of two signatures
    waited = next(e for e in activation["entries"] if e["to_state"] == "legal_force_wait")
    # 18.11.2026 + 7 + 30 days is Christmas Day; the period ends Monday 28.12, final from 29.12.
    assert waited["evidence"]["legal_force_from"] == "2026-12-29"

    failure = load("failure")
    assert failure["expected"]["round_state"] == "failed"
    assert {e["event"] for e in failure["entries"]} >= {"return", "amend", "reject", "fail"}
    assert failure["expected"]["parties"]["wellbeing"] == "rejected"

    appeal = load("appeal-cancel")
    assert appeal["expected"]["round_state"] == "cancelled"
    assert {e["event"] for e in appeal["entries"]} >= {"appeal", "appeal-resolved", "cancel"}


@pytest.mark.parametrize("name", NAMES)
def test_golden_export_verifies_as_a_file(name: str, tmp_path: Path) -> None:
    entries = load(name)["entries"]
    path = tmp_path / f"{name}.jsonl"
    path.write_text(to_jsonl(entries), "utf-8")
    report = verify_file(path)
    (chain,) = report.chains
    assert chain.entries == len(entries)
    assert chain.head == entries[-1]["hash"]
    assert report.file == path
    assert report.expected is None


def entry(entries: list[dict[str, Any]], seq: int) -> dict[str, Any]:
    found = entries[seq - 1]
    assert found["seq"] == seq
    return found


def approve_by_the_wrong_body(entries: list[dict[str, Any]]) -> None:
    target = entry(entries, 4)
    assert target["event"] == "approve"
    assert target["evidence"]["decision"] == "Kaupunginhallitus 09.11.2026 § 201"
    target["evidence"] = {"decision": "Kaupunginvaltuusto 09.11.2026 § 201"}


def approve_dated_after_it_was_recorded(entries: list[dict[str, Any]]) -> None:
    target = entry(entries, 5)
    assert target["event"] == "approve"
    target["evidence"] = {"decision": "Kunnanhallitus 30.11.2026 § 101"}


def legal_force_before_its_date(entries: list[dict[str, Any]]) -> None:
    target = entry(entries, 8)
    assert target["event"] == "legal-force"
    target["recorded_at"] = "2026-12-27T10:00:00.000000Z"


def same_signatory_twice(entries: list[dict[str, Any]]) -> None:
    target = entry(entries, 10)
    assert target["event"] == "sign"
    target["evidence"] = {**target["evidence"], "signatory": "RAIMO RAUTIO"}


def one_signature_said_to_complete(entries: list[dict[str, Any]]) -> None:
    target = entry(entries, 9)
    assert (target["event"], target["to_state"]) == ("sign", "awaiting_signature")
    target["to_state"] = "signed"


def fewer_signatures_required_at_launch(entries: list[dict[str, Any]]) -> None:
    launch = entry(entries, 1)
    for party in launch["evidence"]["parties"]:
        if party["id"] == "hameenlinna":
            party["signatures_required"] = 1


def entry_from_a_state_the_party_was_not_in(entries: list[dict[str, Any]]) -> None:
    target = entry(entries, 7)
    assert target["party"] == "hattula"
    target["from_state"] = "board_review"


def reject_without_a_reason(entries: list[dict[str, Any]]) -> None:
    target = entry(entries, 12)
    assert target["event"] == "reject"
    target["evidence"] = {"decision": target["evidence"]["decision"]}


def reopening_removed(entries: list[dict[str, Any]]) -> None:
    # Without the amendment's reopening of forssa, forssa's later submit (#10, then #9)
    # leaves draft while replay has forssa awaiting signature.
    target = entry(entries, 8)
    assert (target["party"], target["event"]) == ("forssa", "amend")
    entries.remove(target)


def document_hash_changed_without_an_amendment(entries: list[dict[str, Any]]) -> None:
    entry(entries, 5)["document_sha256"] = "e" * 64


def resolved_without_an_appeal(entries: list[dict[str, Any]]) -> None:
    target = entry(entries, 6)
    assert target["event"] == "appeal"
    target["event"] = "appeal-resolved"
    target["to_state"] = "awaiting_signature"


def entry_after_the_cancel(entries: list[dict[str, Any]]) -> None:
    last = entries[-1]
    assert last["event"] == "cancel"
    entries.append(
        {
            **last,
            "party": "loppi",
            "event": "submit",
            "from_state": "draft",
            "to_state": "board_review",
            "evidence": {},
        }
    )


def unknown_event(entries: list[dict[str, Any]]) -> None:
    entry(entries, 2)["event"] = "approve-all"


def launch_not_first(entries: list[dict[str, Any]]) -> None:
    entries[0], entries[1] = entries[1], entries[0]


Mutation = Callable[[list[dict[str, Any]]], None]

# (golden file, mutation, the entry replay must name)
MUTATIONS: list[tuple[str, Mutation, str]] = [
    ("activation", approve_by_the_wrong_body, "entry #4"),
    ("activation", approve_dated_after_it_was_recorded, "entry #5"),
    ("activation", legal_force_before_its_date, "entry #8"),
    ("activation", same_signatory_twice, "entry #10"),
    ("activation", one_signature_said_to_complete, "entry #9"),
    ("activation", fewer_signatures_required_at_launch, "entry #9"),
    ("activation", entry_from_a_state_the_party_was_not_in, "entry #7"),
    ("failure", reject_without_a_reason, "entry #12"),
    ("failure", reopening_removed, "entry #9"),
    ("failure", document_hash_changed_without_an_amendment, "entry #5"),
    ("appeal-cancel", resolved_without_an_appeal, "entry #6"),
    ("appeal-cancel", entry_after_the_cancel, "entry #12"),
    ("appeal-cancel", unknown_event, "entry #2"),
    ("appeal-cancel", launch_not_first, "entry #1"),
]


@pytest.mark.parametrize(
    ("name", "mutate", "named"), MUTATIONS, ids=[m.__name__ for _, m, _ in MUTATIONS]
)
def test_mutated_golden_log_fails_replay_naming_the_entry(
    name: str, mutate: Mutation, named: str, tmp_path: Path
) -> None:
    entries = load(name)["entries"]
    mutate(entries)
    forged = rechain(entries)
    assert forged != load(name)["entries"]
    report = check_chain(forged[0]["round"], forged)
    assert report.ok, report.problem  # the chain cannot tell ...
    with pytest.raises(VerificationFailed) as caught:
        replay(forged, default_catalog().machine)  # ... replaying can
    assert named in str(caught.value)
    assert forged[0]["round"] in str(caught.value)
    # An auditor verifying the forged export with no database is told the same.
    path = tmp_path / "forged.jsonl"
    path.write_text(to_jsonl(forged), "utf-8")
    with pytest.raises(VerificationFailed) as from_file:
        verify_file(path)
    assert named in str(from_file.value)


@pytest.mark.parametrize(
    ("name", "event", "outcome"),
    [("activation", "activate", "active"), ("failure", "fail", "failed")],
)
def test_outcome_entry_removed_is_caught(name: str, event: str, outcome: str) -> None:
    """The parties' states make the round active (or failed) but the log never says so."""
    entries = load(name)["entries"]
    assert entries[-1]["event"] == event
    forged = rechain(entries[:-1])
    assert check_chain(forged[0]["round"], forged).ok
    with pytest.raises(VerificationFailed, match=outcome):
        replay(forged, default_catalog().machine)


def test_activation_claimed_early_is_caught() -> None:
    """An "activate" entry slipped in before every party has signed."""
    entries = load("activation")["entries"]
    activate = entries[-1]
    forged = rechain([*entries[:7], {**activate, "recorded_at": entries[6]["recorded_at"]}])
    with pytest.raises(VerificationFailed) as caught:
        replay(forged, default_catalog().machine)
    assert "entry #8" in str(caught.value)


# Values a forger can give a re-chained entry that trip replay outside its own checks (they used to
# end in a traceback: AttributeError, IndexError, OverflowError). Each is a failed verification.
TRIPS: list[tuple[str, int, Callable[[dict[str, Any]], None]]] = [
    ("reason-a-number", 7, lambda e: e.update(evidence={**e["evidence"], "reason": 7})),
    ("title-a-list", 9, lambda e: e.update(evidence={**e["evidence"], "title": ["Mayor"]})),
    ("at-the-end-of-time", 4, lambda e: e.update(recorded_at="9999-12-31T23:59:59.999999Z")),
    ("no-bodies", 1, lambda e: e["evidence"]["parties"][0].update(bodies={})),
    ("body-name-a-list", 1, lambda e: e["evidence"]["parties"][0]["bodies"][0].update(name=[])),
]


@pytest.mark.parametrize(("name", "seq", "change"), TRIPS, ids=[t[0] for t in TRIPS])
def test_a_forged_value_that_trips_replay_fails_verification(
    name: str, seq: int, change: Callable[[dict[str, Any]], None], tmp_path: Path
) -> None:
    entries = load("activation")["entries"]
    change(entry(entries, seq))
    forged = rechain(entries)
    assert check_chain(forged[0]["round"], forged).ok
    path = tmp_path / f"{name}.jsonl"
    path.write_text(to_jsonl(forged), "utf-8")
    with pytest.raises(VerificationFailed) as caught:
        verify_file(path)
    assert forged[0]["round"] in str(caught.value)
    assert str(path) in str(caught.value)
