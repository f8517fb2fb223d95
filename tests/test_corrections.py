"""Correcting a running round: contacts, links, signatories and notes are log entries that the
audit replays, and what waited for a wrong address goes to the right one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.clock import FakeClock
from engine.errors import InvalidInput, NotFound, Refused, TransitionRefused
from engine.persistence import outbox
from engine.persistence.database import transaction
from engine.persistence.tables import OutboxRow
from engine.runtime import Evidence, launch, load_agreement, log_entries, record, status, verify
from engine.runtime.corrections import (
    add_contact,
    annotate,
    change_contact,
    remove_contact,
    revoke_link,
    set_signatories,
)
from tests.conftest import CLI
from tests.smtp import SmtpServer
from tests.webkit import BASE, KEYS

KIM = "kim@alpha.example.invalid"
NEW = "kirjaamo@alpha.example.invalid"


def _rows(db: Engine) -> list[OutboxRow]:
    with transaction(db) as session:
        return list(outbox.messages(session, None))


@pytest.fixture
def alpha(db: Engine, clock: FakeClock, agreement_file: Callable[..., Path]) -> str:
    path = agreement_file(
        [
            {
                "id": "alpha",
                "name": "Alpha",
                "contacts": [{"name": "Kim", "email": KIM}],
                "signatures_required": 1,
                "await_legal_force": False,
                "signatories": [{"name": "Aino Alpha", "title": "Mayor"}],
            }
        ]
    )
    return launch(db, load_agreement(path), clock, "coordinator").round


def test_a_changed_contact_gets_what_waited_for_the_old_address(
    db: Engine, clock: FakeClock, alpha: str
) -> None:
    (invitation,) = [r for r in _rows(db) if r.kind == "invitation"]
    assert invitation.recipients == [KIM]
    assert invitation.state == "pending"
    seq = change_contact(
        db,
        alpha,
        "alpha",
        KIM.upper(),
        name="Kirjaamo",
        new_email=NEW,
        language="sv",
        clock=clock,
        actor="coordinator",
        reason="the address was mistyped",
    )
    rows = {r.key: r for r in _rows(db) if r.kind == "invitation"}
    assert rows[invitation.key].state == "skipped"
    (moved,) = [r for r in rows.values() if r.key != invitation.key]
    assert moved.recipients == [NEW]
    assert moved.state == "pending"
    assert moved.personal == {"link": ["alpha", NEW], "document": invitation.personal["document"]}  # type: ignore[index]
    entry = log_entries(db, alpha)[seq - 1]
    assert entry["event"] == "contacts"
    assert entry["evidence"]["change"] == "changed"
    assert entry["evidence"]["messages_sent_on"] == 1
    assert KIM not in str(entry), "no address in the log"
    assert NEW not in str(entry)
    (party,) = status(db, alpha)[0].parties
    assert party.state == "draft"
    verify(db, alpha)


def test_contacts_are_added_and_removed_but_never_the_last(
    db: Engine, clock: FakeClock, alpha: str
) -> None:
    with pytest.raises(Refused, match="no contact left"):
        remove_contact(db, alpha, "alpha", KIM, clock, "coordinator")
    with pytest.raises(InvalidInput, match="email"):
        add_contact(db, alpha, "alpha", "Bad", "not an address", "fi", clock, "coordinator")
    add_contact(db, alpha, "alpha", "Kirjaamo", NEW, "fi", clock, "coordinator")
    with pytest.raises(Refused, match="already"):
        add_contact(db, alpha, "alpha", "Again", NEW, "fi", clock, "coordinator")
    remove_contact(db, alpha, "alpha", KIM, clock, "coordinator")
    with pytest.raises(NotFound, match="not a contact"):
        remove_contact(db, alpha, "alpha", KIM, clock, "coordinator")
    verify(db, alpha)


def test_new_signatories_are_replayed_by_the_audit(
    db: Engine, clock: FakeClock, alpha: str
) -> None:
    record(db, alpha, "alpha", "submit", Evidence(), clock, "c")
    clock.advance(days=1)
    record(db, alpha, "alpha", "approve", Evidence(ref="Kunnanhallitus 02.12.2026 § 1"), clock, "c")
    with pytest.raises(TransitionRefused) as refused:
        record(db, alpha, "alpha", "sign", Evidence(signatory="Bo Beta", title="Chair"), clock, "c")
    assert refused.value.field == "signatory"
    set_signatories(db, alpha, "alpha", [("Bo Beta", "Chair")], clock, "c", "the board chose")
    with pytest.raises(InvalidInput, match="twice"):
        set_signatories(db, alpha, "alpha", [("Bo Beta", "x"), ("bo  beta", "y")], clock, "c")
    done = record(db, alpha, "alpha", "sign", Evidence(signatory="Bo Beta"), clock, "c")
    assert done.round_state == "active"
    report = verify(db, alpha)  # replaying the log needs the new list to accept the signature
    assert [c.entries for c in report.chains] == [len(log_entries(db, alpha))]


def test_a_note_is_appended_even_after_the_round_closed_and_never_edits_an_entry(
    db: Engine, clock: FakeClock, alpha: str
) -> None:
    before = log_entries(db, alpha)
    seq = annotate(db, alpha, 1, "the launch used the draft of 28.11.", clock, "auditor")
    after = log_entries(db, alpha)
    assert after[: len(before)] == before
    assert after[-1]["evidence"] == {"refers_to": 1, "note": "the launch used the draft of 28.11."}
    assert seq == len(after)
    with pytest.raises(NotFound):
        annotate(db, alpha, 99, "no such entry", clock, "auditor")
    with pytest.raises(InvalidInput):
        annotate(db, alpha, 1, "   ", clock, "auditor")
    from engine.runtime import cancel

    cancel(db, alpha, "a test", clock, "coordinator")
    annotate(db, alpha, 2, "cancelled on purpose", clock, "auditor")
    verify(db, alpha)


def test_a_reissued_link_replaces_the_withdrawn_one(
    db: Engine, clock: FakeClock, alpha: str, smtp: SmtpServer
) -> None:
    from engine.runtime import tick_once
    from engine.runtime.access import open_link
    from notifications.mailer import Mailer
    from tests.webkit import links_in

    def send() -> None:
        tick_once(db, clock, Mailer("127.0.0.1", smtp.port, timeout=5), "r@x.invalid", KEYS)

    send()
    (first,) = links_in(smtp.messages()[0])
    token = first.removeprefix(BASE + "/p/")
    assert open_link(db, KEYS, token, clock).party == "alpha"
    revoke_link(db, alpha, "alpha", KIM, clock, "coordinator", reissue=True)
    send()
    again = [m for m in smtp.messages() if links_in(m)]
    assert len(again) == 2
    (second,) = links_in(again[-1])
    assert second != first
    from engine.errors import AccessDenied

    with pytest.raises(AccessDenied) as denied:
        open_link(db, KEYS, token, clock)
    assert denied.value.reason == "revoked"
    assert open_link(db, KEYS, second.removeprefix(BASE + "/p/"), clock).party == "alpha"
    verify(db, alpha)


def test_mail_after_a_withdrawn_link_says_so_and_carries_no_dead_link(
    db: Engine, clock: FakeClock, alpha: str, smtp: SmtpServer
) -> None:
    from engine.runtime import tick_once
    from notifications.mailer import Mailer
    from tests.webkit import links_in

    def send() -> None:
        tick_once(db, clock, Mailer("127.0.0.1", smtp.port, timeout=5), "r@x.invalid", KEYS)

    send()
    revoke_link(db, alpha, "alpha", KIM, clock, "coordinator", reason="sent to a shared box")
    record(db, alpha, "alpha", "submit", Evidence(), clock, "c")  # a receipt to Kim
    send()
    receipt = smtp.messages()[-1]
    assert receipt["X-Ratify-Kind"] == "receipt"
    assert links_in(receipt) == []
    text = receipt.get_body(preferencelist=("plain",))
    html = receipt.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert "linkkinne osapuolen sivulle on peruttu" in text.get_content()
    assert "/p/" not in text.get_content() + html.get_content()
    assert "personal-link.ratify.invalid" not in text.get_content() + html.get_content()
    assert "on peruttu" in html.get_content()


def test_the_command_line_corrects_and_annotates(
    cli: CLI, agreement_file: Callable[..., Path]
) -> None:
    path = agreement_file(
        [{"id": "alpha", "name": "Alpha", "contacts": [{"name": "Kim", "email": KIM}]}]
    )
    round_id = cli("launch", str(path), "--at", "2026-12-01T09:00", "--json").json()["round"]
    ran = cli(
        "party",
        "contacts",
        "change",
        round_id,
        "alpha",
        KIM,
        "--name",
        "Kirjaamo",
        "--email",
        NEW,
        "--at",
        "2026-12-01T10:00",
    )
    assert ran.exit_code == 0, ran.stderr
    ran = cli("party", "contacts", "remove", round_id, "alpha", NEW, "--at", "2026-12-01T10:00")
    assert ran.exit_code == 1
    assert "no contact left" in ran.stderr
    ran = cli("party", "signatories", round_id, "alpha", "--signatory", "Aino; Mayor")
    assert ran.exit_code == 0, ran.stderr
    ran = cli("party", "signatories", round_id, "alpha", "--signatory", "no title")
    assert ran.exit_code == 2
    ran = cli("annotate", round_id, "1", "--note", "checked against the paper copy")
    assert ran.exit_code == 0, ran.stderr
    log = cli("audit", "log", round_id, "--json").json()
    assert [e["event"] for e in log] == ["launch", "contacts", "signatories", "annotate"]
    assert cli("audit", "verify", round_id).exit_code == 0
    made = cli(
        "user", "add", "liisa", "--role", "coordinator", input_text="a long enough password\n"
    )
    assert made.exit_code == 0, made.stderr
    short = cli("user", "add", "kalle", "--role", "auditor", input_text="short\n")
    assert short.exit_code == 2
    assert "12 characters" in short.stderr
