"""The coordinator's pages over a real SQLite file: the dashboard, launching by upload, a round's
page and every write on it, as a browser posts them (the CSRF token first, no redirect followed),
and who may do what."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.clock import FakeClock
from engine.errors import AccessDenied
from engine.interfaces.web.common import round_path
from engine.runtime import Engine, cancel, log_entries, outbox_messages, status
from engine.runtime.access import add_user, open_link, sign_in
from tests.conftest import cli_on, write_agreement
from tests.smtp import SmtpServer
from tests.webkit import EXAMPLE, KEYS, Site, csrf_of, make_site, post_form

ROUND = "kanta-hame-strategic-2026/1"
PAGE = "/rounds/kanta-hame-strategic-2026/1"
PASSWORD = "correct horse battery staple"
MATTI = "matti.virtanen@hameenlinna.example.invalid"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def site(sqlite_url: str, clock: FakeClock, smtp: SmtpServer) -> Site:
    from engine.runtime import connect

    made = make_site(connect(sqlite_url), clock, smtp)
    add_user(made.db, "Cora Coordinator", "coordinator", PASSWORD, clock)
    add_user(made.db, "Audrey Auditor", "auditor", PASSWORD, clock)
    return made


def _signed_in(site: Site, name: str = "Cora Coordinator") -> TestClient:
    """A browser signed in through the sign-in form (or, before that page exists, with a session
    made by the service layer), reading the pages in English."""
    client = site.client()
    client.cookies.set("ratify_lang", "en")
    answer = post_form(client, "/signin", {"name": name, "password": PASSWORD, "next": "/"})
    if answer.status_code in (404, 405):
        token, _ = sign_in(site.db, name, PASSWORD, site.clock)
        client.cookies.set("ratify_session", token)
    else:
        assert answer.status_code == 303, answer.text
    return client


def _party(db: Engine, party: str) -> Any:
    (found,) = [p for p in status(db, ROUND)[0].parties if p.id == party]
    return found


def _text(answer: Any) -> str:
    """The page's text with its markup's entities read, for comparing with messages."""
    return html.unescape(answer.text)


def test_without_a_session_every_page_sends_to_sign_in(site: Site) -> None:
    client = site.client()
    for path in ("/", "/rounds/new", PAGE, f"{PAGE}/parties/hattula"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == f"/signin?next={path}"
    posted = post_form(client, f"{PAGE}/record", {"party": "hattula", "event": "submit"})
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/signin")
    assert _party(site.db, "hattula").state == "draft"


def test_the_dashboard_lists_the_round_with_its_progress_and_what_needs_attention(
    site: Site,
) -> None:
    client = _signed_in(site)
    page = client.get("/")
    assert page.status_code == 200
    assert ROUND in page.text
    assert f'href="{PAGE}"' in page.text
    assert '<progress max="13" value="0"' in page.text
    assert "Launch a round" in page.text
    assert "Past the deadline" not in page.text

    # After the deadline every party not yet signed is overdue (the day is the round's own).
    site.clock.set(datetime(2027, 4, 1, 9, 0))  # noqa: DTZ001  (naive: local to each round)
    client = _signed_in(site)  # the session of December has ended
    late = _text(client.get("/"))
    assert "Past the deadline (13)" in late
    assert "Hämeenlinnan kaupunki" in late

    auditor = _signed_in(site, "Audrey Auditor")
    read = auditor.get("/")
    assert read.status_code == 200
    assert ROUND in read.text
    assert "Launch a round" not in read.text


def test_the_dashboard_shows_the_scheduler_s_next_messages_and_mail_that_failed(
    site: Site,
) -> None:
    client = _signed_in(site)
    submitted = post_form(client, f"{PAGE}/record", {"party": "hattula", "event": "submit"})
    assert submitted.status_code == 303
    # The receipt to Hattula's contact is queued: the next tick sends it.
    assert "Receipt → hattula" in _text(client.get("/"))
    # A message to a party of two contacts is one line, not one per contact.
    two = post_form(client, f"{PAGE}/record", {"party": "janakkala", "event": "submit"})
    assert two.status_code == 303
    assert _text(client.get("/")).count("Receipt → janakkala") == 1

    site.smtp.reject("kirjaamo.hattula@example.invalid", "550 5.1.1 no such mailbox")
    site.tick()
    failed = [m for m in outbox_messages(site.db, "failed") if m.party == "hattula"]
    assert failed
    page = _text(client.get("/"))
    assert "Mail that failed (1)" in page
    assert "kirjaamo.hattula@example.invalid" in page
    assert "Undelivered messages: 1" in page


def _agreement(
    folder: Path, parties: list[dict[str, Any]] | None = None, **kwargs: Any
) -> tuple[bytes, bytes]:
    path = write_agreement(folder, parties or [{"id": "alpha", "name": "Alpha"}], **kwargs)
    return path.read_bytes(), (folder / "agreement.md").read_bytes()


def test_launching_by_upload_creates_the_round_and_goes_to_its_page(
    site: Site, tmp_path: Path
) -> None:
    client = _signed_in(site)
    assert client.get("/rounds/new").status_code == 200
    source, text = _agreement(
        tmp_path, parties=[{"id": "alpha", "name": "Alpha"}, {"id": "beta", "name": "Beta"}]
    )
    answer = post_form(
        client,
        "/rounds",
        {},
        files={
            "agreement": ("any-name.toml", source, "application/toml"),
            "document": ("whatever.md", text, "text/markdown"),
        },
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/rounds/test-agreement/1?done=launched"
    page = client.get(answer.headers["location"])
    assert "The round was launched" in page.text
    assert "Alpha" in page.text
    (launched,) = status(site.db, "test-agreement/1")
    assert launched.document_sha256 == __import__("hashlib").sha256(text).hexdigest()
    assert log_entries(site.db, "test-agreement/1")[0]["actor"] == "Cora Coordinator"


def test_a_bilingual_agreement_is_launched_with_each_languages_text(site: Site) -> None:
    from engine.core.chain import combined_sha256

    client = _signed_in(site)
    folder = Path(__file__).resolve().parent.parent / "examples" / "vastra-nyland"
    source = (folder / "agreement.toml").read_bytes()
    sv, fi = (folder / "agreement.md").read_bytes(), (folder / "sopimus.md").read_bytes()
    agreement = ("agreement.toml", source, "application/toml")
    # One language's text only: the other is named as missing, and nothing is launched.
    half = [("agreement", agreement), ("document", ("agreement.md", sv, "text/markdown"))]
    refused = post_form(client, "/rounds", {}, files=half)
    assert refused.status_code == 400
    assert "sopimus.md" in _text(refused)
    assert [r.round for r in status(site.db, None)] == [ROUND]  # the example's round alone
    both = [*half, ("document", ("sopimus.md", fi, "text/markdown"))]
    answer = post_form(client, "/rounds", {}, files=both)
    assert answer.status_code == 303, answer.text
    made = answer.headers["location"].split("?")[0].removeprefix("/rounds/")
    (launched,) = status(site.db, made)
    hashes = {"sv": hashlib.sha256(sv).hexdigest(), "fi": hashlib.sha256(fi).hexdigest()}
    assert launched.document_sha256 == combined_sha256(hashes)
    # The round's page asks for each language's new text, and amends with both.
    page = client.get(round_path(made))
    assert 'name="text_fi"' in page.text
    assert "The new text (Swedish)" in _text(page)
    assert "The new text (Finnish)" in _text(page)
    sv2, fi2 = sv + b"\nTillagd punkt.\n", fi + "\nLisätty kohta.\n".encode()
    alone = post_form(
        client, f"{round_path(made)}/amend", {"once": "b1"}, files={"document": ("a.md", sv2)}
    )
    assert alone.status_code in (400, 409)
    assert status(site.db, made)[0].document_version == 1  # nothing changed
    amended = post_form(
        client,
        f"{round_path(made)}/amend",
        {"once": "b2", "reason": "En punkt till"},
        files={"document": ("avtal-v2.md", sv2), "text_fi": ("sopimus-v2.md", fi2)},
    )
    assert amended.status_code == 303, amended.text
    (after,) = status(site.db, made)
    assert after.document_version == 2
    new = {"sv": hashlib.sha256(sv2).hexdigest(), "fi": hashlib.sha256(fi2).hexdigest()}
    assert after.document_sha256 == combined_sha256(new)


def test_a_broken_agreement_shows_each_problem_under_its_key_and_creates_nothing(
    site: Site, tmp_path: Path
) -> None:
    client = _signed_in(site)
    source, text = _agreement(
        tmp_path,
        parties=[
            {"id": "alpha", "name": "Alpha", "contacts": [{"name": "A", "email": "not-an-email"}]},
            {"id": "beta", "name": "Beta", "workflow": "no-such-flow"},
        ],
    )
    files = {"agreement": ("a.toml", source, "text/plain"), "document": ("a.md", text, "text/x")}
    answer = post_form(client, "/rounds", {}, files=files)
    assert answer.status_code == 400
    page = _text(answer)
    for key, words in (
        ("parties[0] (id 'alpha').contacts[0].email", "email 'not-an-email' is not valid"),
        ("parties[1] (id 'beta').workflow", "unknown workflow 'no-such-flow'"),
    ):
        at = page.index(f"<code>{key}</code>")
        assert words in page[at : at + 400], key
    assert "/tmp/" not in page  # the server's folders are no concern of the uploader
    assert [r.round for r in status(site.db, None)] == [ROUND]

    # The text is saved under the name the file gives: a path is refused, whatever it is.
    source, text = _agreement(tmp_path, agreement={"document": "../outside.md"})
    files = {"agreement": ("a.toml", source, "text/plain"), "document": ("a.md", text, "text/x")}
    answer = post_form(client, "/rounds", {}, files=files)
    assert answer.status_code == 400
    at = _text(answer).index("<code>agreement.document</code>")
    assert "must be a plain file name" in _text(answer)[at : at + 300]
    assert not (tmp_path.parent / "outside.md").exists()
    # Even a path that leads back into the folder: it would name the agreement file itself.
    source, text = _agreement(tmp_path, agreement={"document": "sub/../agreement.toml"})
    files = {"agreement": ("a.toml", source, "text/plain"), "document": ("a.md", text, "text/x")}
    answer = post_form(client, "/rounds", {}, files=files)
    assert answer.status_code == 400
    assert "must be a plain file name" in _text(answer)

    too_big = post_form(
        client, "/rounds", {}, files={"agreement": ("a.toml", b"#" * (1024 * 1024 + 1), "x/y")}
    )
    assert too_big.status_code == 400
    assert "larger than 1 MiB" in too_big.text
    assert [r.round for r in status(site.db, None)] == [ROUND]


def test_the_round_page_shows_every_party_with_its_picture_and_forms(site: Site) -> None:
    client = _signed_in(site)
    page = client.get(PAGE)
    assert page.status_code == 200
    parties = status(site.db, ROUND)[0].parties
    assert len(parties) == 13
    for party in parties:
        assert f'id="party-{party.id}"' in page.text
        assert party.name in _text(page)
        assert f'id="form-record-{party.id}"' in page.text
    assert page.text.count("<svg") == 13 + 1  # each party's workflow, and the forecast
    assert 'aria-current="step"' in page.text
    party_page = client.get(f"{PAGE}/parties/hameenlinna")
    assert party_page.status_code == 200
    assert "Kaisa Kuvitteellinen" in party_page.text  # a listed signatory
    assert client.get(f"{PAGE}/parties/nobody").status_code == 404
    assert client.get("/rounds/kanta-hame-strategic-2026/x").status_code == 404
    assert client.get("/rounds/kanta-hame-strategic-2026/9").status_code == 404


def test_the_round_page_draws_the_forecast_and_says_it_in_words(site: Site) -> None:
    from engine.runtime import forecast

    client = _signed_in(site)
    page = client.get(PAGE)
    made = forecast(site.db, ROUND, site.clock)
    assert made.in_force is not None
    assert made.critical is not None
    names = {p.id: p.name for p in status(site.db, ROUND)[0].parties}
    text = " ".join(_text(page).split())
    day = f"{made.in_force:%-d %b %Y}"  # the page's medium English date, e.g. 2 Mar 2027
    assert f"The agreement can enter into force on {day} at the earliest." in text
    assert f"{names[made.critical]} holds the round back the longest." in text
    timeline = page.text[page.text.index('class="timeline"') :]
    timeline = timeline[: timeline.index("</svg>")]
    # A row a party: its name, its line, and a square where it has signed at the earliest.
    assert timeline.count("<rect") == sum(p.signed_by is not None for p in made.parties) == 13
    assert 'font-weight="bold"' in timeline  # the party holding the round back
    assert 'role="img"' in timeline
    assert "<title" in timeline
    # The table beside it: every party, its earliest date and what the dates rest on.
    table = text[text.index("The forecast party by party") :]
    for p in made.parties:
        assert names[p.party] in table
    assert "no meetings known" in table  # the example's bodies have no calendars
    client.cookies.set("ratify_lang", "sv")
    assert "Avtalet kan träda i kraft tidigast" in _text(client.get(PAGE))
    # A closed round has no forecast.
    cancel(site.db, ROUND, "the text is withdrawn", site.clock, "Cora Coordinator")
    closed = client.get(PAGE)
    assert closed.status_code == 200
    assert 'class="timeline"' not in closed.text
    assert "Prognos" not in _text(closed)


def test_recording_an_approval_on_a_partys_behalf_moves_it_with_evidence_via_web(
    site: Site,
) -> None:
    client = _signed_in(site)
    submitted = post_form(
        client, f"{PAGE}/record", {"party": "hattula", "event": "submit", "once": "a1"}
    )
    assert submitted.status_code == 303
    assert submitted.headers["location"] == f"{PAGE}?done=recorded#party-hattula"
    approved = post_form(
        client,
        f"{PAGE}/record",
        {
            "party": "hattula",
            "event": "approve",
            "once": "a2",
            "ref": "Kunnanhallitus 01.12.2026 § 5",
            "diary": "123/00.01/2026",
        },
        files={"minutes": ("ote.pdf", PDF, "application/pdf")},
    )
    assert approved.status_code == 303, approved.text
    assert _party(site.db, "hattula").role == "legal_force"
    entry = log_entries(site.db, ROUND)[-1]
    assert entry["event"] == "approve"
    assert entry["actor"] == "Cora Coordinator"
    assert entry["evidence"]["via"] == "web"
    assert entry["evidence"]["decision"] == "Kunnanhallitus 01.12.2026 § 5"
    assert entry["evidence"]["diary"] == "123/00.01/2026"
    assert entry["evidence"]["minutes_sha256"] == __import__("hashlib").sha256(PDF).hexdigest()
    page = _text(client.get(submitted.headers["location"]))
    assert "Recorded." in page
    assert "Kunnanhallitus 01.12.2026 § 5" in page


def test_a_refused_event_shows_the_clis_message_beside_the_event_with_409(
    site: Site, sqlite_url: str
) -> None:
    client = _signed_in(site)
    before = len(log_entries(site.db, ROUND))
    answer = post_form(
        client,
        f"{PAGE}/record",
        {"party": "hattula", "event": "sign", "signatory": "Kim", "title": "mayor"},
    )
    assert answer.status_code == 409
    ran = cli_on(sqlite_url)(
        "record", ROUND, "hattula", "sign", "--signatory", "Kim", "--title", "mayor"
    )
    assert ran.exit_code == 1
    message = ran.stderr.strip().removeprefix("error: ")
    page = _text(answer)
    assert message in page
    # Beside the event's field of Hattula's form, which is open again with the values kept.
    assert re.search(r'id="record-hattula-event-error">[^<]*' + re.escape(message), page)
    assert 'value="Kim"' in page
    assert _party(site.db, "hattula").state == "draft"
    assert len(log_entries(site.db, ROUND)) == before

    # An invalid reference is the input's fault: 400, beside the reference.
    bad = post_form(
        client, f"{PAGE}/record", {"party": "hattula", "event": "submit", "ref": "yesterday"}
    )
    assert bad.status_code == 400
    assert 'id="record-hattula-ref-error"' in bad.text


def test_a_form_posted_twice_records_once(site: Site) -> None:
    client = _signed_in(site)
    form = {"party": "hattula", "event": "submit", "once": "same-page", "diary": "1/2026"}
    first = post_form(client, f"{PAGE}/record", form)
    second = post_form(client, f"{PAGE}/record", form)
    assert first.status_code == second.status_code == 303
    submits = [e for e in log_entries(site.db, ROUND) if e["event"] == "submit"]
    assert len(submits) == 1
    # A correction too: the same note from the same page is one note.
    note = {"seq": "1", "note": "the launch was announced on 1.12.", "once": "same-page"}
    assert post_form(client, f"{PAGE}/annotate", note).status_code == 303
    assert post_form(client, f"{PAGE}/annotate", note).status_code == 303
    assert [e["event"] for e in log_entries(site.db, ROUND)].count("annotate") == 1


def test_the_once_only_key_is_kept_in_the_database_not_in_one_process(
    site: Site, tmp_path: Path
) -> None:
    """The second copy of a form reaching another web process (a retry behind a load balancer,
    a restart in between) still writes nothing."""
    from engine.interfaces.web.app import create_app
    from engine.interfaces.web.common import WebConfig

    first = _signed_in(site)
    other = TestClient(
        create_app(WebConfig(site.db, site.clock, KEYS)), base_url=str(first.base_url)
    )
    other.cookies = first.cookies  # the same browser, now served by the other process
    contact = {
        "party": "hattula",
        "name": "Uusi Henkilö",
        "email": "uusi@hattula.example.invalid",
        "language": "fi",
        "once": "page-1",
    }
    assert post_form(first, f"{PAGE}/contacts/add", contact).status_code == 303
    again = post_form(other, f"{PAGE}/contacts/add", contact)
    assert again.status_code == 303  # where the first went, not "already a contact"
    assert again.headers["location"].endswith("?done=contact_added#contacts")
    added = [e for e in log_entries(site.db, ROUND) if e["event"] == "contacts"]
    assert len(added) == 1
    assert added[0]["evidence"]["via"] == "web"

    source, text = _agreement(tmp_path)
    upload = {
        "agreement": ("agreement.toml", source, "application/toml"),
        "document": ("agreement.md", text, "text/markdown"),
    }
    launched = post_form(first, "/rounds", {"once": "launch-page"}, files=upload)
    assert launched.status_code == 303, launched.text
    twice = post_form(other, "/rounds", {"once": "launch-page"}, files=upload)
    assert twice.status_code == 303, twice.text  # the round it launched, not "still open"
    assert twice.headers["location"] == launched.headers["location"]
    assert len(status(site.db, None)) == 2
    assert log_entries(site.db, "test-agreement/1")[0]["evidence"]["via"] == "web"
    from engine.runtime.certificate import certificate

    (version,) = certificate(site.db, "test-agreement/1").documents
    assert version.recorded is not None
    assert version.recorded.via == "web"  # the certificate says a coordinator's page launched it


def test_changing_a_contacts_email_withdraws_its_link_and_sends_its_messages_on(
    site: Site,
) -> None:
    client = _signed_in(site)
    link = site.link_of(MATTI).rsplit("/", 1)[1]
    assert open_link(site.db, KEYS, link, site.clock).party == "hameenlinna"
    # Hämeenlinna's board has the item: the receipts wait in the outbox for the next tick.
    submitted = post_form(client, f"{PAGE}/record", {"party": "hameenlinna", "event": "submit"})
    assert submitted.status_code == 303
    waiting = [m for m in outbox_messages(site.db, "pending") if MATTI in m.recipients]
    assert len(waiting) == 1

    new = "matti.virtanen@uusi.example.invalid"
    answer = post_form(
        client,
        f"{PAGE}/contacts/change",
        {
            "party": "hameenlinna",
            "email": MATTI,
            "form_id": "contact-change-0",
            "name": "Matti Virtanen",
            "new_email": new,
            "language": "fi",
            "reason": "the address was mistyped",
        },
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"{PAGE}/parties/hameenlinna?done=contact_changed#contacts"
    with pytest.raises(AccessDenied) as denied:
        open_link(site.db, KEYS, link, site.clock)
    assert denied.value.reason == "revoked"
    entry = log_entries(site.db, ROUND)[-1]
    assert entry["event"] == "contacts"
    assert entry["evidence"]["links_withdrawn"] == 1
    assert entry["evidence"]["messages_sent_on"] == 1
    assert MATTI not in str(entry)  # the log names contacts by a pseudonym
    pending = outbox_messages(site.db, "pending")
    assert not [m for m in pending if MATTI in m.recipients]
    assert [m.kind for m in pending if new in m.recipients] == ["receipt"]
    page = _text(client.get(answer.headers["location"]))
    assert "The contact was changed." in page

    # The next tick sends it there, with a new link of its own.
    site.tick()
    assert site.link_of(new) != site.link_of(MATTI)


def test_refused_corrections_come_back_beside_their_form(site: Site) -> None:
    client = _signed_in(site)
    bad = post_form(
        client,
        f"{PAGE}/contacts/add",
        {"party": "hattula", "name": "Uusi Henkilö", "email": "no-at-sign", "language": "fi"},
    )
    assert bad.status_code == 400
    assert 'id="contact-add-email-error"' in bad.text
    assert 'value="Uusi Henkilö"' in bad.text
    last = post_form(
        client,
        f"{PAGE}/contacts/remove",
        {
            "party": "hattula",
            "email": "kirjaamo.hattula@example.invalid",
            "form_id": "contact-actions-0",
        },
    )
    assert last.status_code == 409
    assert "would have no contact left" in _text(last)


def test_signatories_amendment_notes_and_cancelling(site: Site, tmp_path: Path) -> None:
    client = _signed_in(site)
    # Repeated fields (a row each), the CSRF token first as a browser sends it.
    rows = {
        "csrftoken": csrf_of(client),
        "party": "riihimaki",
        "signatory_name": ["Anna Allekirjoittaja", ""],
        "signatory_title": ["kaupunginjohtaja", ""],
    }
    replaced = client.post(f"{PAGE}/signatories", data=rows, follow_redirects=False)
    assert replaced.status_code == 303, replaced.text
    assert [s.name for s in _party(site.db, "riihimaki").may_sign] == ["Anna Allekirjoittaja"]

    unchanged = post_form(
        client,
        f"{PAGE}/amend",
        {},
        files={
            "document": ("agreement.md", EXAMPLE.with_suffix(".md").read_bytes(), "text/markdown")
        },
    )
    assert unchanged.status_code == 400  # the same text: nothing to amend
    amended = post_form(
        client,
        f"{PAGE}/amend",
        {"reason": "a typo in § 3"},
        files={"document": ("v2.md", b"The amended text.\n", "text/markdown")},
    )
    assert amended.status_code == 303, amended.text
    assert status(site.db, ROUND)[0].document_version == 2

    noted = post_form(client, f"{PAGE}/annotate", {"seq": "1", "note": "checked by phone"})
    assert noted.status_code == 303
    assert log_entries(site.db, ROUND)[-1]["evidence"] == {
        "refers_to": 1,
        "note": "checked by phone",
        "via": "web",
    }
    assert "checked by phone" in client.get(PAGE).text

    unconfirmed = post_form(client, f"{PAGE}/cancel", {"reason": "a new text is coming"})
    assert unconfirmed.status_code == 400
    assert 'id="cancel-confirm-error"' in unconfirmed.text
    assert status(site.db, ROUND)[0].state == "open"
    cancelled = post_form(
        client, f"{PAGE}/cancel", {"reason": "a new text is coming", "confirm": "yes"}
    )
    assert cancelled.status_code == 303
    assert status(site.db, ROUND)[0].state == "cancelled"
    closed = client.get(PAGE)
    assert f'action="{PAGE}/record"' not in closed.text  # nothing more to record
    again = post_form(client, f"{PAGE}/record", {"party": "hattula", "event": "submit"})
    assert again.status_code == 409


def test_an_auditor_reads_but_every_post_is_refused(site: Site, tmp_path: Path) -> None:
    client = _signed_in(site, "Audrey Auditor")
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "<form" not in page.text.split("</header>", 1)[1]  # no form but signing out
    assert client.get("/rounds/new").status_code == 403
    before = len(log_entries(site.db, ROUND))
    source, _ = _agreement(tmp_path)
    for path, form in (
        ("/rounds", {}),
        (f"{PAGE}/record", {"party": "hattula", "event": "submit"}),
        (f"{PAGE}/amend", {}),
        (f"{PAGE}/cancel", {"reason": "x", "confirm": "yes"}),
        (f"{PAGE}/annotate", {"seq": "1", "note": "x"}),
        (f"{PAGE}/contacts/add", {"party": "hattula", "name": "X", "email": "x@example.fi"}),
        (f"{PAGE}/contacts/change", {"party": "hattula", "email": "x@example.fi"}),
        (f"{PAGE}/contacts/remove", {"party": "hattula", "email": "x@example.fi"}),
        (f"{PAGE}/link", {"party": "hattula", "email": "x@example.fi"}),
        (f"{PAGE}/signatories", {"party": "hattula"}),
    ):
        files = {"agreement": ("a.toml", source, "x/y")} if path == "/rounds" else None
        assert post_form(client, path, form, files).status_code == 403, path
    assert len(log_entries(site.db, ROUND)) == before
    assert [r.round for r in status(site.db, None)] == [ROUND]
