"""A party's contact from the emailed link to a recorded decision: what opening the link does
(nothing), what the session reaches (its own party only), and the forms' refusals."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.clock import FakeClock
from engine.persistence.database import transaction
from engine.persistence.tables import LogRow, SessionRow
from engine.runtime import Engine, log_entries, status
from engine.runtime.access import sign_in
from tests.smtp import SmtpServer
from tests.webkit import BASE, Site, make_site, post_form

HML = "matti.virtanen@hameenlinna.example.invalid"
RIIHIMAKI = "juha.nieminen@riihimaki.example.invalid"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def site(sqlite_url: str, clock: FakeClock, smtp: SmtpServer) -> Site:
    from engine.runtime import connect

    return make_site(connect(sqlite_url), clock, smtp)


def _counts(db: Engine) -> tuple[int, int]:
    with transaction(db) as session:
        entries = session.scalar(select(func.count()).select_from(LogRow))
        sessions = session.scalar(select(func.count()).select_from(SessionRow))
        return int(entries or 0), int(sessions or 0)


def _state(site: Site, party: str) -> str:
    (found,) = [p for p in status(site.db, site.round_id)[0].parties if p.id == party]
    return found.state


def test_every_email_to_a_party_carries_its_contacts_own_link_and_replies_reach_the_coordinator(
    site: Site,
) -> None:
    invitations = [m for m in site.smtp.messages() if HML in str(m["To"])]
    assert len(invitations) == 1
    message = invitations[0]
    assert str(message["Reply-To"]) == "liisa.koskinen@omahame.example.invalid"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Älä vastaa" not in text
    assert site.link_of(HML) != site.link_of("kirjaamo.hameenlinna@example.invalid")
    # The token is in no table: the outbox keeps the stand-in, the links table a nonce.
    token = site.link_of(HML).rsplit("/", 1)[1]
    with transaction(site.db) as session:
        for table in ("outbox", "party_links", "log_entries"):
            rows = session.execute(select(func.count()).select_from(LogRow)) if False else None
            del rows
            dump = " ".join(
                str(r) for r in session.connection().exec_driver_sql(f"SELECT * FROM {table}")
            )
            assert token not in dump, table
            assert token.split("-", 1)[1] not in dump, table


def test_opening_the_link_changes_nothing_and_the_button_starts_a_session(site: Site) -> None:
    client = site.client()
    link = site.link_of(HML).removeprefix(BASE)
    before = _counts(site.db)
    for _ in range(3):  # a mail scanner opens a link, sometimes more than once
        landing = client.get(link)
        assert landing.status_code == 200
        assert "Hämeenlinnan kaupunki" in landing.text
        assert client.head(link).status_code in (200, 405)
    assert _counts(site.db) == before
    assert "ratify_session" not in client.cookies
    assert client.get("/party").status_code == 403

    started = post_form(client, link, {})
    assert started.status_code == 303
    assert started.headers["location"] == "/party"
    cookie = started.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert _counts(site.db) == (before[0], before[1] + 1)  # a session, no log entry
    page = client.get("/party")
    assert page.status_code == 200
    assert site.round_id in page.text


def test_a_link_with_one_character_changed_is_unknown(site: Site) -> None:
    link = site.link_of(HML).removeprefix(BASE)
    last = link[-1]
    wrong = link[:-1] + ("A" if last != "A" else "B")
    client = site.client()
    for bad in (wrong, link[:-1], link + "x", "/p/1-" + "A" * 43, "/p/-"):
        answer = client.get(bad)
        assert answer.status_code in (403, 404), bad
        assert post_form(client, bad, {}).status_code in (403, 404), bad
    assert "ratify_session" not in client.cookies


def test_the_partys_page_shows_the_document_and_records_an_approval_with_its_minutes(
    site: Site,
) -> None:
    client = site.party_client(RIIHIMAKI)
    page = client.get("/party")
    assert "Riihimäen kaupunki" in page.text
    (text,) = [
        d
        for d in __import__("engine.runtime", fromlist=["documents"]).documents(
            site.db, site.round_id
        )
    ]
    assert text.sha256 in page.text
    download = client.get("/party/document")
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == text.sha256

    assert post_form(client, "/party/record", {"event": "submit", "once": "a1"}).status_code == 303
    site.clock.advance(days=7)
    assert client.get("/party").status_code == 403, "a session lasts hours, not days"
    client = site.party_client(RIIHIMAKI)  # the link starts another
    form = {"event": "approve", "once": "a2", "ref": "Kaupunginhallitus 07.12.2026 § 12"}
    files = {"minutes": ("pöytäkirjanote.pdf", PDF, "application/pdf")}
    answer = post_form(client, "/party/record", form, files)
    assert answer.status_code == 303, answer.text
    assert _state(site, "riihimaki") == "legal_force_wait"
    entry = log_entries(site.db, site.round_id)[-1]
    assert entry["event"] == "approve"
    assert entry["actor"] == "Juha Nieminen"
    assert entry["evidence"]["via"] == "link"
    assert entry["evidence"]["minutes_sha256"] == hashlib.sha256(PDF).hexdigest()
    assert entry["evidence"]["minutes_file"] == "pöytäkirjanote.pdf"


def test_a_form_posted_twice_records_once(site: Site) -> None:
    client = site.party_client(RIIHIMAKI)
    length = len(log_entries(site.db, site.round_id))
    form = {"event": "submit", "once": "same-nonce"}
    assert post_form(client, "/party/record", form).status_code == 303
    assert post_form(client, "/party/record", form).status_code == 303
    assert len(log_entries(site.db, site.round_id)) == length + 1
    # Its receipt waits in the outbox; the page does not offer it as the next reminder.
    assert "Seuraava muistutus</dt><dd>ei ajastettu" in client.get("/party").text


def test_a_refused_event_shows_the_clis_message_beside_its_field_and_changes_nothing(
    site: Site,
) -> None:
    client = site.party_client(RIIHIMAKI)
    post_form(client, "/party/record", {"event": "submit", "once": "s"})
    length = len(log_entries(site.db, site.round_id))
    bad = {"event": "approve", "once": "b", "ref": "Kunnanvaltuusto 01.12.2026 § 3"}
    answer = post_form(client, "/party/record", bad)
    assert answer.status_code == 409
    assert "Kaupunginhallitus" in answer.text  # the body whose decision is awaited
    assert 'aria-invalid="true"' in answer.text
    assert "Kunnanvaltuusto 01.12.2026 § 3" in answer.text  # the value is kept
    malformed = {"event": "approve", "once": "c", "ref": "yesterday"}
    answer = post_form(client, "/party/record", malformed)
    assert answer.status_code == 400
    assert "dd.mm.yyyy" in answer.text
    assert len(log_entries(site.db, site.round_id)) == length
    assert _state(site, "riihimaki") == "board_review"


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("minutes.pdf", b"<html>not a pdf</html>", "not a PDF"),
        ("big.pdf", b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024), "limit"),
    ],
    ids=["not-pdf", "oversized"],
)
def test_an_upload_that_is_no_pdf_or_too_large_is_refused(
    site: Site, name: str, data: bytes, words: str
) -> None:
    client = site.party_client(RIIHIMAKI)
    post_form(client, "/party/record", {"event": "submit", "once": "s"})
    length = len(log_entries(site.db, site.round_id))
    form = {"event": "approve", "once": "u", "ref": "Kaupunginhallitus 01.12.2026 § 1"}
    answer = post_form(client, "/party/record", form, {"minutes": (name, data, "application/pdf")})
    assert answer.status_code == 400
    assert words in answer.text
    assert len(log_entries(site.db, site.round_id)) == length


def test_a_form_without_its_csrf_token_is_refused(site: Site) -> None:
    client = site.party_client(RIIHIMAKI)
    length = len(log_entries(site.db, site.round_id))
    answer = post_form(client, "/party/record", {"event": "submit"}, csrf=False)
    assert answer.status_code == 403
    forged = client.post(
        "/party/record",
        data={"csrftoken": "forged", "event": "submit"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert len(log_entries(site.db, site.round_id)) == length


def test_a_partys_session_opens_nothing_else(site: Site) -> None:
    client = site.party_client(RIIHIMAKI)
    for path in ("/", "/rounds/new", f"/rounds/{site.round_id}", f"/rounds/{site.round_id}/log"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code in (303, 403, 404), path
        assert "Hämeenlinnan kaupunki" not in answer.text
    # Its record form acts on its own party whatever the form says.
    post_form(client, "/party/record", {"event": "submit", "once": "x", "party": "hameenlinna"})
    assert _state(site, "hameenlinna") == "draft"
    assert _state(site, "riihimaki") == "board_review"


def test_a_withdrawn_or_expired_link_opens_nothing(site: Site) -> None:
    from engine.runtime.corrections import revoke_link

    client = site.party_client(RIIHIMAKI)
    revoke_link(site.db, site.round_id, "riihimaki", RIIHIMAKI, site.clock, "coordinator")
    assert client.get("/party").status_code == 403  # the session went with the link
    link = site.link_of(RIIHIMAKI).removeprefix(BASE)
    landing = site.client().get(link)
    assert landing.status_code == 403
    assert "koordinaattori" in landing.text.lower()

    other = site.link_of(HML).removeprefix(BASE)
    site.clock.advance(days=200)  # past the deadline (31.3.2027) and 30 days more
    assert site.client().get(other).status_code == 403


def test_signing_in_is_slowed_after_failures(site: Site, tmp_path: Path) -> None:
    from engine.errors import AccessDenied
    from engine.runtime.access import add_user

    add_user(site.db, "liisa", "coordinator", "correct horse battery", site.clock)
    client: TestClient = site.client()
    for _ in range(3):
        answer = post_form(client, "/signin", {"name": "liisa", "password": "wrong password!"})
        assert answer.status_code == 401
    answer = post_form(client, "/signin", {"name": "liisa", "password": "correct horse battery"})
    assert answer.status_code == 429  # even the right password waits now
    with pytest.raises(AccessDenied):
        sign_in(site.db, "liisa", "correct horse battery", site.clock)
    site.clock.advance(minutes=1)
    answer = post_form(client, "/signin", {"name": "liisa", "password": "correct horse battery"})
    assert answer.status_code == 303
    assert client.get("/", follow_redirects=False).status_code in (200, 404)
