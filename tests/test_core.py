"""The core's rules, called as pure functions: a party's facts, its workflow's machine, an event,
its evidence and `now` in; a decision, a refusal or a round's outcome out. No database, no clock,
no files: milliseconds each. (The end-to-end tests keep the shell honest.)"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.core.evidence import Evidence, Signature
from engine.core.party import PartySnapshot, allowed, body_in_charge, decide, had_approval, reopened
from engine.core.round import Outcome, settle
from engine.errors import InvalidInput, TransitionRefused
from workflows import Body, ProcessMachine, default_catalog

HELSINKI = ZoneInfo("Europe/Helsinki")
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=HELSINKI)
BOARD = Body("Kunnanhallitus", "board", 14)
COUNCIL = Body("Kunnanvaltuusto", "council", 30)


def machine() -> ProcessMachine:
    return default_catalog().machine("municipality", 1)


def party(state: str = "draft", **changes: object) -> PartySnapshot:
    base = PartySnapshot(
        id="hattula",
        workflow="municipality",
        workflow_version=1,
        state=state,
        bodies=(BOARD, COUNCIL),
        step=0,
        await_legal_force=True,
        notice_days=7,
        signatures_required=2,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_submit_goes_to_the_first_body_and_approve_to_the_next() -> None:
    m = machine()
    submitted = decide(m, party(), "submit", Evidence(diary="1/00.01/2026"), NOW)
    assert (submitted.to_state, submitted.party.step) == ("board_review", 0)
    assert submitted.evidence == {"diary": "1/00.01/2026"}
    approved = decide(
        m, submitted.party, "approve", Evidence(ref="Kunnanhallitus 07.12.2026 § 5"), NOW
    )
    assert (approved.to_state, approved.party.step) == ("council_review", 1)
    assert body_in_charge(m, approved.party) == COUNCIL


def test_the_last_approval_dates_legal_force_from_the_decision() -> None:
    m = machine()
    reviewing = party("council_review", step=1)
    decided = decide(m, reviewing, "approve", Evidence(ref="Kunnanvaltuusto 07.12.2026 § 9"), NOW)
    # 7.12 + 7 + 30 days = 13.1.2027, a Wednesday: final from Thursday 14.1.
    assert decided.to_state == "legal_force_wait"
    assert decided.party.legal_force_from == date(2027, 1, 14)
    assert decided.evidence["legal_force_from"] == "2027-01-14"


def test_a_refusal_carries_the_party_its_state_the_event_and_what_is_allowed() -> None:
    with pytest.raises(TransitionRefused) as caught:
        decide(machine(), party("draft"), "sign", Evidence(signatory="A B", title="Mayor"), NOW)
    refused = caught.value
    assert (refused.party, refused.state, refused.event) == ("hattula", "draft", "sign")
    assert refused.allowed == ["submit"]
    assert str(refused) == (
        'Party "hattula" is draft; "sign" is allowed only in awaiting_signature. '
        'Allowed now: "submit".'
    )


def test_a_decision_by_another_body_is_refused() -> None:
    with pytest.raises(TransitionRefused, match="awaiting the decision of Kunnanhallitus"):
        decide(
            machine(),
            party("board_review"),
            "approve",
            Evidence(ref="Kunnanvaltuusto 07.12.2026 § 1"),
            NOW,
        )


def test_missing_evidence_names_the_input_with_a_marker() -> None:
    with pytest.raises(InvalidInput) as caught:
        decide(machine(), party("board_review"), "approve", Evidence(), NOW)
    assert caught.value.field == "ref"
    assert caught.value.template.startswith('"approve" needs {opt.ref}')


def test_legal_force_is_refused_before_its_date_and_applied_on_it() -> None:
    m = machine()
    waiting = party("legal_force_wait", legal_force_from=date(2026, 12, 29))
    with pytest.raises(TransitionRefused, match="awaits legal force until 2026-12-29"):
        decide(m, waiting, "legal-force", Evidence(), NOW)
    on_the_day = datetime(2026, 12, 29, 0, 5, tzinfo=HELSINKI)
    assert decide(m, waiting, "legal-force", Evidence(), on_the_day).to_state == (
        "awaiting_signature"
    )


def test_signatures_are_counted_and_a_look_alike_cannot_sign_twice() -> None:
    m = machine()
    signing = party("awaiting_signature")
    first = decide(m, signing, "sign", Evidence(signatory="Aino Esimerkki", title="Mayor"), NOW)
    assert (first.to_state, len(first.party.signatures)) == ("awaiting_signature", 1)
    with pytest.raises(TransitionRefused, match="has already signed"):
        decide(m, first.party, "sign", Evidence(signatory="AINO\u00a0ESIMERKKI", title="x"), NOW)
    second = decide(m, first.party, "sign", Evidence(signatory="Veikko Malli", title="Chair"), NOW)
    assert second.to_state == "signed"


def test_only_listed_signatories_sign_when_the_party_lists_them() -> None:
    listed = party("awaiting_signature", signatories=(Signature("Aino Esimerkki", "Mayor"),))
    done = decide(machine(), listed, "sign", Evidence(signatory="aino esimerkki"), NOW)
    assert done.evidence["signatory"] == "Aino Esimerkki"
    assert done.evidence["title"] == "Mayor"
    with pytest.raises(TransitionRefused, match="not one of its authorised signatories"):
        decide(machine(), listed, "sign", Evidence(signatory="Someone Else", title="x"), NOW)


def test_what_a_person_may_record_leaves_the_timed_events_out() -> None:
    m = machine()
    assert allowed(m, party("legal_force_wait")) == ["appeal"]
    assert allowed(m, party("signed")) == []


def test_an_amendment_reopens_what_was_approved_and_keeps_a_first_review() -> None:
    m = machine()
    assert not had_approval(m, party("board_review"))
    assert had_approval(m, party("council_review", step=1))
    assert had_approval(m, party("signed"))
    assert not had_approval(m, party("rejected"))
    back = reopened(m, party("awaiting_signature", signatures=(Signature("A", "B"),)))
    assert (back.state, back.step, back.signatures, back.legal_force_from) == ("draft", 0, (), None)


@pytest.mark.parametrize(
    ("roles", "outcome"),
    [
        (["done", "done"], Outcome("active", date(2026, 12, 10))),
        (["done", "failed"], Outcome("failed")),
        (["done", "signing"], None),
        (["failed", "preparing"], Outcome("failed")),
        ([], None),
    ],
)
def test_the_round_settles_from_its_parties_roles(
    roles: list[str], outcome: Outcome | None
) -> None:
    assert settle(roles, NOW) == outcome  # type: ignore[arg-type]


def test_the_kept_answers_of_the_machine_follow_the_facts_they_were_asked_with() -> None:
    """decide keeps where an event leads (engine.core.party._fire): asked again with other facts
    (one body fewer, no wait for legal force, the last signature), it answers anew."""
    m = machine()
    ref = Evidence(ref="Kunnanhallitus 07.12.2026 § 5")
    for _ in range(2):  # the second time from what was kept
        assert decide(m, party("board_review"), "approve", ref, NOW).to_state == "council_review"
        one_body = party("board_review", bodies=(BOARD,))
        assert decide(m, one_body, "approve", ref, NOW).to_state == "legal_force_wait"
        no_wait = party("board_review", bodies=(BOARD,), await_legal_force=False)
        assert decide(m, no_wait, "approve", ref, NOW).to_state != "legal_force_wait"
        signing = party("awaiting_signature", step=1)
        first = decide(m, signing, "sign", Evidence(signatory="A B", title="Mayor"), NOW)
        assert first.to_state == "awaiting_signature"
        last = decide(m, first.party, "sign", Evidence(signatory="C D", title="Chair"), NOW)
        assert last.to_state != "awaiting_signature"


def test_facts_that_cannot_be_kept_are_asked_afresh() -> None:
    """A tampered log replayed by verify can give a body a list for a name: no key for the kept
    answers, so the machine is asked as before (here it answers)."""
    odd = Body(["Kunnanhallitus"], "board", 14)  # type: ignore[arg-type]
    submitted = decide(machine(), party(bodies=(odd, COUNCIL)), "submit", Evidence(), NOW)
    assert submitted.to_state == "board_review"
