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
