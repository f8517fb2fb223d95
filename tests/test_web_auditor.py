"""The auditor's pages (log, verification, exports, certificate, evidence pack) and the
development mail sink's page, through the real application on a real SQLite file.

One round (the Kanta-Häme example, a few events and a note on an entry) is built once for the
module: every page here reads, and every attempt to write is refused before it writes.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from engine.clock import FakeClock
from engine.core.evidence import Evidence
from engine.interfaces.web.app import create_app
from engine.interfaces.web.common import SESSION_COOKIE, WebConfig, round_path
from engine.persistence.database import connect, init_schema, transaction
from engine.runtime import export, heads, launch, load_agreement, log_entries, record, verify_file
from engine.runtime.access import Keys, add_user, link_for, sign_in, start_party_session
from engine.runtime.corrections import annotate
from notifications.sink import MailSink

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kanta-hame" / "agreement.toml"
HELSINKI = ZoneInfo("Europe/Helsinki")
PASSWORD = "correct horse battery"
KEYS = Keys(secret=b"x" * 32, base_url="http://testserver")


@dataclass
class World:
    engine: Engine
    clock: FakeClock
    round: str
    sink: Path
    auditor: str  # session tokens
    coordinator: str
    party: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("auditor")
    engine = connect(f"sqlite:///{folder / 'ratify.db'}")
    init_schema(engine)
    clock = FakeClock(datetime(2026, 12, 1, 9, 0, tzinfo=HELSINKI))
    round_id = launch(engine, load_agreement(EXAMPLE), clock, "Liisa Koskinen").round
    decision = Evidence(ref="Kunnanhallitus 07.12.2026 § 5")
    steps: list[tuple[str, str, Evidence, datetime]] = [
        ("hattula", "submit", Evidence(), datetime(2026, 12, 2, 10, 0, tzinfo=HELSINKI)),
        ("forssa", "submit", Evidence(), datetime(2026, 12, 2, 11, 0, tzinfo=HELSINKI)),
        ("hattula", "approve", decision, datetime(2026, 12, 7, tzinfo=HELSINKI)),
    ]
    for party, event, evidence, moment in steps:
        clock.set(moment)
        record(engine, round_id, party, event, evidence, clock, f"clerk of {party}")
    clock.set(datetime(2026, 12, 8, 9, 0, tzinfo=HELSINKI))
    annotate(engine, round_id, 4, "the minutes were checked afterwards", clock, "Liisa Koskinen")
    add_user(engine, "Aino Auditor", "auditor", PASSWORD, clock)
    add_user(engine, "Liisa Koskinen", "coordinator", PASSWORD, clock)
    auditor, _ = sign_in(engine, "Aino Auditor", PASSWORD, clock)
    coordinator, _ = sign_in(engine, "Liisa Koskinen", PASSWORD, clock)
    with transaction(engine) as session:
        email = "kirjaamo.forssa@example.invalid"
        link = link_for(session, KEYS, round_id, "forssa", email, clock.now(HELSINKI))
    assert link is not None
    party, _ = start_party_session(engine, KEYS, link, clock)
    yield World(engine, clock, round_id, folder / "mail", auditor, coordinator, party)
    engine.dispose()


def client_for(world: World, session: str | None = None, *, sink: bool = True) -> TestClient:
    app = create_app(
        WebConfig(
            engine=world.engine,
            clock=world.clock,
            keys=KEYS,
            sink_folder=world.sink if sink else None,
        )
    )
    client = TestClient(app, base_url="http://testserver", follow_redirects=False)
    if session is not None:
        client.cookies.set(SESSION_COOKIE, session)
    return client


@pytest.fixture
def auditor(world: World) -> Iterator[TestClient]:
    with client_for(world, world.auditor) as client:
        yield client


@pytest.fixture
def anyone(world: World) -> Iterator[TestClient]:
    with client_for(world) as client:
        yield client


def url(world: World, *more: str, **query: str) -> str:
    tail = "&".join(f"{k}={v}" for k, v in query.items())
    return round_path(world.round, *more) + (f"?{tail}" if tail else "")


def body_rows(html: str) -> list[str]:
    """The seq of each entry the log table shows."""
    return re.findall(r'<tr id="entry-(\d+)">', html)


# --- the log ------------------------------------------------------------------------------------


def test_the_log_lists_every_entry_in_the_rounds_zone(world: World, auditor: TestClient) -> None:
    got = auditor.get(url(world, "log", lang="en"))
    assert got.status_code == 200
    html = got.text
    assert body_rows(html) == ["1", "2", "3", "4", "5"]
    assert "<caption>" in html
    assert 'scope="col"' in html
    assert 'scope="row"' in html
    assert "Europe/Helsinki" in html
    # Entry #4 was recorded at midnight in Helsinki (22:00 UTC the day before): shown locally.
    assert "07/12/2026, 00:00" in html
    assert "Kunnanhallitus 07.12.2026 § 5" in html
    assert "clerk of hattula" in html
    assert "draft → board_review" in html
    entries = log_entries(world.engine, world.round)
    head = entries[-1]["hash"]
    assert f"<code>{head}</code>" in html
    assert f"<code>{head[:12]}…</code>" in html


def test_a_note_is_shown_beside_the_entry_it_refers_to(world: World, auditor: TestClient) -> None:
    html = auditor.get(url(world, "log", lang="en")).text
    row4 = html.split('<tr id="entry-4">')[1].split("</tr>")[0]
    assert "the minutes were checked afterwards" in row4
    assert 'href="/rounds/kanta-hame-strategic-2026/1/log#entry-5"' in row4
    row5 = html.split('<tr id="entry-5">')[1].split("</tr>")[0]
    assert "A note on entry" in row5
    assert "#entry-4" in row5


def test_the_log_filters_by_party_and_by_event(world: World, auditor: TestClient) -> None:
    assert body_rows(auditor.get(url(world, "log", party="hattula")).text) == ["2", "4"]
    assert body_rows(auditor.get(url(world, "log", event="submit")).text) == ["2", "3"]
    both = auditor.get(url(world, "log", party="forssa", event="submit")).text
    assert body_rows(both) == ["3"]
    assert '<option value="forssa" selected>' in both
    none = auditor.get(url(world, "log", party="nobody", lang="en")).text
    assert body_rows(none) == []
    assert "No entries match the filter." in none


def test_the_pages_speak_the_visitors_language(world: World, auditor: TestClient) -> None:
    assert "Kierroksen loki" in auditor.get(url(world, "log", lang="fi")).text
    assert "Omgångens logg" in auditor.get(url(world, "log", lang="sv")).text


def test_a_coordinator_reads_the_log_too(world: World) -> None:
    with client_for(world, world.coordinator) as client:
        assert client.get(url(world, "log")).status_code == 200
        assert client.get(url(world, "verify")).status_code == 200


def test_an_unknown_round_is_not_found(world: World, auditor: TestClient) -> None:
    assert auditor.get("/rounds/kanta-hame-strategic-2026/9/log").status_code == 404
    assert auditor.get("/rounds/no-such/1/verify").status_code == 404


# --- who may read -------------------------------------------------------------------------------


def test_a_visitor_without_a_session_is_sent_to_sign_in(world: World, anyone: TestClient) -> None:
    for page in ("log", "verify", "export.jsonl", "export.csv"):
        got = anyone.get(url(world, page))
        assert got.status_code == 303
        assert got.headers["location"].startswith("/signin?next=/rounds/")


def test_a_partys_session_opens_no_audit_page(world: World) -> None:
    # require_user sends anyone who is no signed-in user to sign in, a party's contact too.
    with client_for(world, world.party) as client:
        for page in ("log", "verify", "export.jsonl", "export.csv"):
            got = client.get(url(world, page))
            assert got.status_code == 303
            assert got.headers["location"].startswith("/signin")


def _csrf(client: TestClient) -> str:
    client.get("/healthz")  # asgi-csrf sets its cookie on every response
    token = client.cookies.get("csrftoken")
    assert token
    return token


def test_the_audit_pages_take_no_post(world: World, auditor: TestClient) -> None:
    from engine.interfaces.web import pages_auditor, pages_sink

    for router in (pages_auditor.router, pages_sink.router):
        methods = {m for r in router.routes for m in getattr(r, "methods", set())}
        assert methods <= {"GET", "HEAD"}
    token = _csrf(auditor)
    got = auditor.post(url(world, "log"), data={"csrftoken": token})
    assert got.status_code == 405


def _coordinator_posts() -> list[Any]:
    """The coordinator's POST routes: the launch's and the round's forms."""
    routes = []
    for name in ("pages_launch", "pages_coordinator"):
        module = importlib.import_module(f"engine.interfaces.web.{name}")
        routes += [r for r in module.router.routes if "POST" in getattr(r, "methods", set())]
    return routes


# What a coordinator would post, so that each form is complete and only the role refuses it.
PLAUSIBLE = {
    "party": "hattula",
    "event": "approve",
    "ref": "Kunnanhallitus 07.12.2026 § 5",
    "seq": "2",
    "note": "an auditor's note",
    "email": "kirjaamo.forssa@example.invalid",
    "new_email": "kirjaamo2.forssa@example.invalid",
    "name": "Someone",
    "language": "fi",
    "reason": "trying",
    "confirm": "yes",
    "action": "revoke",
}


def _post_to(path: str, fields: list[Any], world: World, token: str) -> dict[str, Any]:
    agreement, _, number = world.round.rpartition("/")
    values = {"agreement": agreement, "number": number, "party": "hattula"}
    address = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values.get(m[1], "1"), path)
    data = {"csrftoken": token}
    files = {}
    for field in fields:
        if type(field.field_info).__name__ == "File":
            files[field.alias] = (f"{field.alias}.pdf", b"%PDF-1.4 x", "application/pdf")
        else:
            data[field.alias] = PLAUSIBLE.get(field.alias, "1")
    return {"url": address, "data": data, "files": files or None}


def test_an_auditors_post_to_the_coordinators_pages_is_refused(
    world: World, auditor: TestClient
) -> None:
    routes = {r.path: r for r in _coordinator_posts()}
    assert "/rounds" in routes, "the coordinator's launch is a POST"
    on_a_round = [p for p in routes if p.startswith("/rounds/{")]
    assert on_a_round, "the coordinator's round pages have POSTs"
    before = heads(world.engine)
    token = _csrf(auditor)
    for path in ["/rounds", *on_a_round]:
        request = _post_to(path, list(routes[path].dependant.body_params), world, token)
        got = auditor.post(**request)
        assert got.status_code == 403, path
        assert "auditor" in got.text, path  # the role's refusal, not the CSRF check's
    assert heads(world.engine) == before  # nothing was written, no round launched


# --- verifying ----------------------------------------------------------------------------------


def test_verify_shows_the_chain_intact_and_its_head(world: World, auditor: TestClient) -> None:
    (head,) = heads(world.engine, world.round)
    html = auditor.get(url(world, "verify", lang="en")).text
    assert "The log is intact." in html
    assert f'<code id="head">{head.head}</code>' in html
    assert "<dd>5</dd>" in html
    assert 'name="expect"' in html
    assert '<form method="get"' in html


def test_a_pasted_head_is_compared_whatever_its_case(world: World, auditor: TestClient) -> None:
    (head,) = heads(world.engine, world.round)
    html = auditor.get(url(world, "verify", lang="en", expect=f"+{head.head.upper()}+")).text
    assert "✓ Match." in html
    assert "entry #5" in html
    assert "Mismatch" not in html


def test_a_wrong_head_says_mismatch(world: World, auditor: TestClient) -> None:
    html = auditor.get(url(world, "verify", lang="en", expect="ab" * 32)).text
    assert "✗ Mismatch." in html
    assert "No entry of this log has that hash" in html
    assert "✓ Match." not in html


def test_an_earlier_head_says_how_much_the_log_grew(world: World, auditor: TestClient) -> None:
    second = log_entries(world.engine, world.round)[1]["hash"]
    html = auditor.get(url(world, "verify", lang="en", expect=second)).text
    assert "Mismatch." in html
    assert "entry #2" in html
    assert "3 entries have been added" in html


def test_a_malformed_head_is_refused_beside_its_field(world: World, auditor: TestClient) -> None:
    html = auditor.get(url(world, "verify", lang="en", expect="abc123")).text
    assert 'aria-invalid="true"' in html
    assert "is not a head hash" in html
    assert "Mismatch" not in html
    assert "✓ Match." not in html


# --- exports ------------------------------------------------------------------------------------


def test_the_jsonl_export_downloads_and_verifies(
    world: World, auditor: TestClient, tmp_path: Path
) -> None:
    got = auditor.get(url(world, "export.jsonl"))
    assert got.status_code == 200
    assert got.headers["content-disposition"] == (
        'attachment; filename="kanta-hame-strategic-2026-1-log.jsonl"'
    )
    assert got.text == export(world.engine, world.round, "jsonl")
    path = tmp_path / "log.jsonl"
    path.write_bytes(got.content)
    (head,) = heads(world.engine, world.round)
    report = verify_file(path, expect_head=head.head)
    assert report.chains[0].entries == 5
    assert report.chains[0].head == head.head


def test_the_csv_export_has_a_header_row(world: World, auditor: TestClient) -> None:
    got = auditor.get(url(world, "export.csv"))
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/csv")
    assert 'filename="kanta-hame-strategic-2026-1-log.csv"' in got.headers["content-disposition"]
    first, *rest = got.text.splitlines()
    assert first.startswith("seq,round,party,event")
    assert len(rest) >= 5


# --- the certificate and the evidence pack, once their use cases exist ----------------------------


def _present(*names: str) -> bool:
    """Whether the service layer has these use cases yet (where the pages look for them)."""
    from engine.interfaces.web.pages_auditor import _service

    return all(_service(name) is not None for name in names)


def test_the_certificate_is_served_as_html(world: World, auditor: TestClient) -> None:
    assert _present("certificate", "render_certificate_html")
    html = auditor.get(url(world, "certificate"))
    assert html.status_code == 200
    assert "text/html" in html.headers["content-type"]
    (head,) = heads(world.engine, world.round)
    assert head.head in html.text
    assert url(world, "certificate") in auditor.get(url(world, "log")).text


def test_the_certificate_downloads_as_pdf(world: World, auditor: TestClient) -> None:
    assert _present("certificate", "certificate_pdf")
    pdf = auditor.get(url(world, "certificate.pdf"))
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"] == (
        'attachment; filename="kanta-hame-strategic-2026-1-certificate.pdf"'
    )


def test_the_evidence_pack_downloads(world: World, auditor: TestClient) -> None:
    assert _present("evidence_pack")
    got = auditor.get(url(world, "evidence.zip"))
    assert got.status_code == 200
    assert got.content.startswith(b"PK")
    assert (
        'filename="kanta-hame-strategic-2026-1-evidence.zip"' in got.headers["content-disposition"]
    )


# --- the development mail sink ------------------------------------------------------------------


def _message(to: str, subject: str, text: str, html: str, sent: datetime, key: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "ratify <ratify@example.invalid>"
    message["To"] = to
    message["Reply-To"] = "liisa.koskinen@omahame.example.invalid"
    message["Subject"] = subject
    message["Date"] = format_datetime(sent)
    message["Message-ID"] = f"<{key}@ratify.invalid>"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


@pytest.fixture(scope="module")
def caught(world: World) -> list[str]:
    """Two emails sent through a real SMTP sink into the app's sink folder; their file names."""
    first = _message(
        "kirjaamo.forssa@example.invalid",
        "Kutsu: hyväksykää sopimus",
        "Avatkaa linkki: http://testserver/p/12-AbC_d. Kiitos!\n",
        '<p>Hello <img src="http://tracker.example/pixel.png"></p>',
        datetime(2026, 12, 1, 9, 0, tzinfo=HELSINKI),
        "invitation-forssa",
    )
    second = _message(
        "matti.virtanen@hameenlinna.example.invalid",
        "Muistutus",
        "Katso (https://example.invalid/ohje) ja http://testserver/p/34-XyZ\n",
        "<p>x</p>",
        datetime(2026, 12, 2, 9, 0, tzinfo=HELSINKI),
        "reminder-hameenlinna",
    )
    second.add_attachment(
        b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="sopimus ä.pdf"
    )
    sink = MailSink(world.sink)
    host, port = sink.start(port=0)
    try:
        with smtplib.SMTP(host, port) as smtp:
            smtp.send_message(first)
            smtp.send_message(second)
    finally:
        sink.stop()
    return [r.path.name for r in sink.received]


def test_the_sink_lists_the_caught_emails_newest_first(
    world: World, anyone: TestClient, caught: list[str]
) -> None:
    got = anyone.get("/sink?lang=en")
    assert got.status_code == 200
    html = got.text
    assert "A development tool." in html
    first, second = caught
    assert html.index(f'href="/sink/{second}"') < html.index(f'href="/sink/{first}"')
    assert "Muistutus" in html
    assert "matti.virtanen@hameenlinna.example.invalid" in html


def test_a_caught_email_shows_its_headers_text_links_and_attachments(
    world: World, anyone: TestClient, caught: list[str]
) -> None:
    first, second = caught
    html = anyone.get(f"/sink/{first}?lang=en").text
    assert "Reply-To" in html
    assert "liisa.koskinen@omahame.example.invalid" in html
    assert "Message-ID" in html
    assert '<a href="http://testserver/p/12-AbC_d">' in html  # the sentence's "." left out
    assert "Avatkaa linkki" in html
    assert "tracker.example" not in html
    assert "<img" not in html
    assert "No attachments." in html
    other = anyone.get(f"/sink/{second}?lang=en").text
    assert '<a href="https://example.invalid/ohje">' in other
    assert '<a href="http://testserver/p/34-XyZ">' in other
    assert "sopimus ä.pdf" in other
    assert "application/pdf" in other
    assert "13 bytes" in other
    download = anyone.get(f"/sink/{second}/attachment/0")
    assert download.status_code == 200
    assert download.content == b"%PDF-1.4 fake"
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith('attachment; filename="sopimus-.pdf"')


def test_a_name_that_is_not_a_caught_email_is_not_found(
    world: World, anyone: TestClient, caught: list[str]
) -> None:
    outside = world.sink.parent / "secret.eml"
    outside.write_text("Subject: secret\n\nnot for you\n", "utf-8")
    (world.sink / "notes.txt").write_text("not a message", "utf-8")
    (world.sink / "link.eml").symlink_to(outside)
    first = caught[0]
    for name in (
        "..%2Fsecret.eml",
        "%2E%2E%2Fsecret.eml",
        "%2Fetc%2Fpasswd",
        "%2E%2E",
        "notes.txt",
        "link.eml",
        "missing.eml",
        f"{first}%00",
        f"..%2F{world.sink.name}%2F{first}",
        f"{first}%2F..%2F..%2Fsecret.eml",
    ):
        got = anyone.get(f"/sink/{name}")
        assert got.status_code == 404, name
        assert "not for you" not in got.text
    assert anyone.get("/sink/..%2Fsecret.eml/attachment/0").status_code == 404
    for index in ("1", "-1", "x", "99999999999999999999"):
        assert anyone.get(f"/sink/{first}/attachment/{index}").status_code == 404, index


def test_an_html_only_email_is_shown_as_text(world: World, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "000001-html.eml").write_text(
        "From: ratify <ratify@example.invalid>\nTo: kim@example.invalid\nSubject: Only HTML\n"
        "MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n"
        '<html><head><style>p { color: red }</style><script>alert("x")</script></head>'
        '<body><p>Open <a href="http://testserver/p/7-Qq">your page</a></p>'
        '<img src="https://tracker.example/p.png"><a href="javascript:alert(1)">no</a></body>'
        "</html>\n",
        "utf-8",
    )
    app: Any = create_app(
        WebConfig(engine=world.engine, clock=world.clock, keys=KEYS, sink_folder=folder)
    )
    with TestClient(app) as client:
        html = client.get("/sink/000001-html.eml?lang=en").text
    assert "this is the text of its HTML part" in html
    assert "Open your page" in html
    assert '<a href="http://testserver/p/7-Qq">' in html
    assert "javascript:" not in html
    assert "tracker.example" not in html
    assert "alert" not in html
    assert "color: red" not in html


def test_a_tampered_log_is_reported_broken(tmp_path: Path) -> None:
    from tests.conftest import write_agreement
    from tests.tampering import tamper

    engine = connect(f"sqlite:///{tmp_path / 'ratify.db'}")
    init_schema(engine)
    clock = FakeClock(datetime(2026, 12, 1, 9, 0, tzinfo=HELSINKI))
    path = write_agreement(tmp_path, [{"id": "alpha", "name": "Alpha"}])
    round_id = launch(engine, load_agreement(path), clock, "Cora Coordinator").round
    record(engine, round_id, "alpha", "submit", Evidence(), clock, "clerk")
    add_user(engine, "Aino Auditor", "auditor", PASSWORD, clock)
    token, _ = sign_in(engine, "Aino Auditor", PASSWORD, clock)
    (head,) = heads(engine, round_id)
    tamper(engine, "UPDATE log_entries SET actor = 'someone else' WHERE seq = 2")
    world = World(engine, clock, round_id, tmp_path / "mail", token, token, token)
    try:
        with client_for(world, token) as client:
            html = client.get(url(world, "verify", lang="en", expect=head.head)).text
    finally:
        engine.dispose()
    assert "The log is NOT intact." in html
    assert "#2" in html
    assert f'<code id="head">{head.head}</code>' in html  # the database's anchor, to compare
    assert "Match." not in html


def test_there_is_no_sink_page_without_a_sink(world: World, caught: list[str]) -> None:
    with client_for(world, world.auditor, sink=False) as client:
        assert client.get("/sink").status_code == 404
        assert client.get(f"/sink/{caught[0]}").status_code == 404


def test_the_sink_page_with_no_mail_yet(world: World, tmp_path: Path) -> None:
    app: Any = create_app(
        WebConfig(engine=world.engine, clock=world.clock, keys=KEYS, sink_folder=tmp_path / "x")
    )
    with TestClient(app) as client:
        html = client.get("/sink?lang=en").text
    assert "No message has been received yet." in html
