"""The notice that the agreement is in force carries the certificate of completion."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from engine.clock import FakeClock
from engine.runtime import Evidence, heads, launch, load_agreement, record
from tests.smtp import SmtpServer
from tests.webkit import KEYS


def test_the_in_force_notice_carries_the_certificate_naming_every_party(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Callable[..., Path]
) -> None:
    from engine.runtime import tick_once
    from notifications.mailer import Mailer

    parties = [
        {"id": p, "name": name, "await_legal_force": False, "signatures_required": 1}
        for p, name in (("alpha", "Alphan kunta"), ("beta", "Betan kaupunki"))
    ]
    round_id = launch(db, load_agreement(agreement_file(parties)), clock, "c").round
    for party in ("alpha", "beta"):
        record(db, round_id, party, "submit", Evidence(), clock, "c")
    clock.advance(days=1)
    for party in ("alpha", "beta"):
        ref = Evidence(ref="Kunnanhallitus 02.12.2026 § 4")
        record(db, round_id, party, "approve", ref, clock, "c")
        record(db, round_id, party, "sign", Evidence(signatory="Aino A", title="Mayor"), clock, "c")
    tick_once(db, clock, Mailer("127.0.0.1", smtp.port, timeout=5), "r@x.invalid", KEYS)

    notices = [m for m in smtp.messages() if str(m["X-Ratify-Kind"]) == "active"]
    assert len(notices) == 3  # each party's contact, and the coordinator
    (head,) = [h.head for h in heads(db) if h.round == round_id]
    for notice in notices:
        (attached,) = [
            a for a in notice.iter_attachments() if a.get_filename() == "certificate.html"
        ]
        page = attached.get_content()
        page = page.decode() if isinstance(page, bytes) else page
        assert "Alphan kunta" in page
        assert "Betan kaupunki" in page
        assert "Kunnanhallitus 02.12.2026 § 4" in page
        assert head in page


def test_a_receipt_is_rendered_when_it_is_sent_and_kept_as_sent(
    db: Engine, clock: FakeClock, smtp: SmtpServer, agreement_file: Callable[..., Path]
) -> None:
    """Every recorded event queues a receipt inside the round's lock: its template is rendered
    by the sender instead, and the outbox then keeps the bodies that went out."""
    from engine.persistence import outbox
    from engine.persistence.database import transaction
    from engine.runtime import outbox_messages, tick_once
    from notifications.mailer import Mailer

    round_id = launch(db, load_agreement(agreement_file()), clock, "cora").round
    record(db, round_id, "alpha", "submit", Evidence(diary="12/2026"), clock, "cora")

    def receipt() -> tuple[str, str]:
        with transaction(db) as session:
            (row,) = [r for r in outbox.messages(session) if r.kind == "receipt"]
            return row.state, row.text_body

    assert receipt() == ("pending", "")  # queued with its context, not its text
    (listed,) = [m for m in outbox_messages(db) if m.kind == "receipt"]
    assert listed.subject  # the listing words it all the same
    tick_once(db, clock, Mailer("127.0.0.1", smtp.port, timeout=5), "r@example.invalid", KEYS)
    state, text = receipt()
    assert state == "sent"
    assert "12/2026" in text
    (sent,) = [m for m in smtp.messages() if m["X-Ratify-Kind"] == "receipt"]
    assert str(sent["Subject"]) == listed.subject
    body = sent.get_body(preferencelist=("plain",))
    assert body is not None
    assert "12/2026" in body.get_content()
