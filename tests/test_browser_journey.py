"""The whole journey in a real browser, as issue 7 checks it: the coordinator signs in and launches
a round by upload; the party's contact opens the link in the email the SMTP sink caught, starts its
session, records its board's approval with a minutes extract and its two signatures; the round
comes into force; the auditor downloads the certificate and the evidence pack and verifies the
export with the pack's own program. Then the wrong ways in.

Debian's headless chromium through Playwright, against the application served by uvicorn over a
real SQLite file, with a real SMTP sink; the worker's ticks and the clock are the test's (a fake
clock moved forward, never a sleep). Every page visited is checked with axe-core (WCAG 2.1 AA),
nothing may be fetched from outside the server, and the key pages are kept as screenshots in
``docs/screenshots/`` for the README.
"""

from __future__ import annotations

import email.policy
import hashlib
import io
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image
from playwright.sync_api import Browser, Download, Locator, Page, ViewportSize, expect
from pypdf import PdfReader

from engine.clock import FakeClock
from engine.interfaces.web.app import create_app
from engine.interfaces.web.common import WebConfig, round_path
from engine.runtime import Engine, connect, log_entries, status, tick_once
from engine.runtime.access import Keys, add_user
from engine.runtime.corrections import revoke_link
from engine.runtime.pack import PROGRAM_BEGINS, PROGRAM_ENDS
from notifications.mailer import Mailer
from notifications.sink import MailSink
from tests.browser_support import AXE_JS, LiveServer, check_axe, launch_chromium, open_page

FIXTURES = Path(__file__).parent / "journey_fixtures"
AGREEMENT = FIXTURES / "agreement.toml"
BROKEN = FIXTURES / "broken-agreement.toml"
DOCUMENT = FIXTURES / "agreement.md"
MINUTES = FIXTURES / "minutes.pdf"
SCREENSHOTS = Path(__file__).parent.parent / "docs" / "screenshots"
SCREENSHOT_MAX = 300 * 1024
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}

COORDINATOR = ("cora", "coordinator", "correct horse battery staple")
AUDITOR = ("audrey", "auditor", "an auditor's long passphrase")
PAT = "pat.party@seaside.example.invalid"  # the contact who acts
ROB = "registry@seaside.example.invalid"  # the second contact, whose link is withdrawn
PARTY = "seaside"
ROUND = "harbour-cooperation/1"
TITLE = "Harbour cooperation agreement"
MAIL_FROM = "ratify <ratify@example.invalid>"
START = datetime(2026, 12, 1, 9, 0)  # noqa: DTZ001  (naive: local to the round, Helsinki)


# ---- the site -----------------------------------------------------------------------------------


@dataclass
class Site:
    """The application over a SQLite file, live on a local port, with the SMTP sink its /sink
    page lists and the worker's ticks in the test's hands."""

    db: Engine
    clock: FakeClock
    cfg: WebConfig
    sink: MailSink
    smtp_port: int
    server: LiveServer
    shots: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def tick(self) -> None:
        """One tick of the worker, on a thread of its own: the mailer runs an event loop, and
        Playwright's sync API keeps one running on the test's thread."""
        mailer = Mailer("127.0.0.1", self.smtp_port, timeout=5)
        with ThreadPoolExecutor(max_workers=1) as worker:
            args = (self.db, self.clock, mailer, MAIL_FROM, self.cfg.keys)
            worker.submit(tick_once, *args).result(timeout=30)

    def log_length(self) -> int:
        return len(log_entries(self.db, ROUND))

    def round_state(self) -> str:
        return status(self.db, ROUND)[0].state

    def party_state(self) -> str:
        (party,) = [p for p in status(self.db, ROUND)[0].parties if p.id == PARTY]
        return party.state

    def messages(self) -> list[EmailMessage]:
        parser = BytesParser(policy=email.policy.default, _class=EmailMessage)
        return [
            parser.parsebytes(p.read_bytes()) for p in sorted(self.sink.directory.glob("*.eml"))
        ]

    def link_of(self, address: str) -> str:
        """The newest personal link the sink caught for ``address`` (read from the file, for a
        contact whose email no one opens in the browser). Emails sent after a link was withdrawn
        carry none (``/p/-``), so the last real one is the invitation's."""
        for message in reversed(self.messages()):
            if address in str(message["To"]):
                body = message.get_body(preferencelist=("plain",))
                assert body is not None
                found = re.findall(
                    re.escape(self.url) + r"/p/[0-9]+-[A-Za-z0-9_-]+", body.get_content()
                )
                if found:
                    return str(found[-1])
        raise AssertionError(f"no link was sent to {address}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    db = connect(f"sqlite:///{tmp_path / 'ratify.db'}")
    clock = FakeClock(START)
    for name, role, password in (COORDINATOR, AUDITOR):
        add_user(db, name, role, password, clock)
    sink = MailSink(tmp_path / "mail")
    _, port = sink.start("127.0.0.1", 0)
    # The links in the emails must lead to the live server, whose port is known once it runs:
    # the keys' address is set then, on the very configuration the application reads.
    cfg = WebConfig(
        db, clock, Keys(secret=b"j" * 32, base_url="http://unset"), sink_folder=sink.directory
    )
    try:
        with LiveServer(create_app(cfg)) as server:
            cfg.keys = replace(cfg.keys, base_url=server.url)
            yield Site(db, clock, cfg, sink, port, server)
    finally:
        sink.stop()
        db.dispose()


# ---- what each step shares ---------------------------------------------------------------------


def visit(page: Page, path: str, *, status: int = 200) -> None:
    """Open ``path`` (after its redirects), expect ``status``, and check the page with axe."""
    response = page.goto(path)
    assert response is not None
    assert response.status == status, f"{path}: {response.status}\n{page.content()[:2000]}"
    check_axe(page)


def arrived(page: Page) -> None:
    """After a click that loads a page: once it has loaded, check it with axe."""
    page.wait_for_load_state()
    check_axe(page)


def shoot(site: Site, page: Page, name: str, *, hide: Sequence[Locator] = ()) -> None:
    """A full-page screenshot for the README: docs/screenshots/NAME.png, in 256 colours (text on
    flat colours loses nothing to the eye, and the file a third of its size). ``hide``: what
    differs from run to run (a temporary folder), painted over in the cards' white, so that the
    same pages give the same files and a test run leaves the tree as it was."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.set_viewport_size(VIEWPORT)
    png = page.screenshot(full_page=True, type="png", mask=list(hide), mask_color="#ffffff")
    shot = Image.open(io.BytesIO(png)).convert("RGB")
    shot.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )
    site.shots.append(path)


def sign_in(page: Page, name: str, password: str) -> None:
    visit(page, "/signin?lang=en")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    arrived(page)


def submit_expecting(page: Page, button: Locator, status: int) -> None:
    """Click a form's button and expect the page it leads to (after its redirect) to answer
    ``status``; check that page with axe."""
    with page.expect_navigation() as navigation:
        button.click()
    response = navigation.value
    assert response is not None
    assert response.status == status, f"{page.url}: {response.status}\n{page.content()[:3000]}"
    check_axe(page)


def start_party_session(page: Page, link: str) -> None:
    """Open the personal link and press the button: the party's page."""
    visit(page, link)
    button = page.get_by_role("button", name="Open the party's page")
    submit_expecting(page, button, 200)
    assert page.url.endswith("/party")


def urlpath(url: str) -> str:
    return urlsplit(url).path


def csrf_token(page: Page) -> str:
    (token,) = [c["value"] for c in page.context.cookies() if c["name"] == "csrftoken"]
    return token


def post_form(page: Page, path: str, fields: Mapping[str, str]) -> int:
    """A form posted as a crafted request, with the page's cookies (its session, its CSRF
    cookie), the redirect not followed; the status."""
    form: dict[str, str | float | bool] = dict(fields)
    return page.request.post(path, form=form, max_redirects=0).status


def download(page: Page, link_name: str) -> bytes:
    """Click a download link; the bytes that arrived."""
    with page.expect_download() as started:
        page.get_by_role("link", name=link_name, exact=True).click()
    got: Download = started.value
    assert got.failure() is None, got.failure()
    path = got.path()
    return Path(path).read_bytes()


def verify_with_the_packs_program(pack: bytes, folder: Path) -> str:
    """Take the program out of the evidence pack's README and run it on the pack's log export,
    with no ratify at all; its output."""
    with zipfile.ZipFile(io.BytesIO(pack)) as archive:
        names = archive.namelist()
        readme = archive.read("README.txt").decode("utf-8")
        export = archive.read("log.jsonl")
    assert "certificate.pdf" in names
    assert any(n.startswith("minutes/") and n.endswith(".pdf") for n in names)
    assert any(n.startswith("documents/v1-") for n in names)
    program = readme.split(PROGRAM_BEGINS + "\n", 1)[1].split(PROGRAM_ENDS, 1)[0]
    (folder / "verify_log.py").write_text(program, "utf-8")
    (folder / "log.jsonl").write_bytes(export)
    ran = subprocess.run(
        [sys.executable, "-I", "verify_log.py", "log.jsonl"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


# ---- the journey --------------------------------------------------------------------------------


def test_the_whole_journey_in_a_browser(browser: Browser, site: Site, tmp_path: Path) -> None:
    coordinator_name, _, coordinator_password = COORDINATOR
    auditor_name, _, auditor_password = AUDITOR
    text_sha = hashlib.sha256(DOCUMENT.read_bytes()).hexdigest()

    with (
        open_page(browser, site.server) as (coord, coord_blocked),
        open_page(browser, site.server) as (party, party_blocked),
        open_page(browser, site.server) as (audit, audit_blocked),
        open_page(browser, site.server) as (stranger, stranger_blocked),
    ):
        for page in (coord, party, audit, stranger):
            # axe-core in every page as it loads (check_axe then injects nothing): a third off
            # the run, the 550 kB read by chromium once a context rather than once a page.
            page.context.add_init_script(path=AXE_JS)
        # 1. The coordinator signs in, sees the dashboard and launches a round by upload.
        visit(coord, "/signin?lang=en")
        shoot(site, coord, "signin")
        sign_in(coord, coordinator_name, coordinator_password)
        expect(coord.get_by_role("heading", name="Rounds", level=1)).to_be_visible()
        coord.get_by_role("link", name="Launch a round").first.click()
        arrived(coord)
        expect(coord.get_by_role("heading", name="Launch a round")).to_be_visible()

        coord.get_by_label("Agreement file (TOML)").set_input_files(BROKEN)
        coord.get_by_label("The agreement's text").set_input_files(DOCUMENT)
        submit_expecting(coord, coord.get_by_role("button", name="Check and launch"), 400)
        problems = coord.get_by_role("alert")
        expect(problems).to_contain_text("signatures_requried")
        expect(problems).to_contain_text("Nothing was created")
        assert status(site.db, None) == []
        shoot(site, coord, "launch-error")

        coord.get_by_label("Agreement file (TOML)").set_input_files(AGREEMENT)
        coord.get_by_label("The agreement's text").set_input_files(DOCUMENT)
        submit_expecting(coord, coord.get_by_role("button", name="Check and launch"), 200)
        assert coord.url.endswith(round_path(ROUND) + "?done=launched")
        expect(coord.get_by_role("heading", name=TITLE, exact=True)).to_be_visible()
        expect(coord.get_by_text(text_sha).first).to_be_visible()
        assert status(site.db, ROUND)[0].document_sha256 == text_sha
        visit(coord, "/")
        expect(coord.get_by_role("link", name=TITLE)).to_be_visible()
        shoot(site, coord, "dashboard")

        # 2. The worker sends the invitations; the contact opens hers from the sink's page and
        # follows the personal link. Opening it records nothing; the button starts a session.
        site.tick()
        visit(party, "/sink?lang=en")
        folder = party.locator("p").filter(has_text=str(site.sink.directory))
        shoot(site, party, "sink", hide=[folder])
        invitation = party.get_by_role("row").filter(has_text=PAT).filter(has_text="invitation")
        invitation.get_by_role("link").click()
        arrived(party)
        before = site.log_length()
        personal = party.locator(f'a[href^="{site.url}/p/"]')
        personal.click()
        arrived(party)
        link = party.url
        expect(party.get_by_role("heading", name="Municipality of Seaside")).to_be_visible()
        expect(party.get_by_text("Opening the link records nothing")).to_be_visible()
        shoot(site, party, "party-landing")
        visit(party, link)  # a scanner, or a second look: still nothing
        assert site.log_length() == before
        submit_expecting(party, party.get_by_role("button", name="Open the party's page"), 200)
        assert party.url.endswith("/party")
        assert site.log_length() == before
        expect(party.get_by_text(text_sha).first).to_be_visible()

        # 3. The party records that it is on the agenda; the next day, the board's approval with
        # the minutes extract; then its two listed signatories sign.
        form = party.locator("#form-submit")
        form.get_by_label("Diary number").fill("SEA/112/00.04.01/2026")
        submit_expecting(party, form.get_by_role("button", name="Put on the agenda"), 200)
        assert site.party_state() == "board_review"
        # The second contact's link reached the wrong person: the coordinator withdraws it.
        revoke_link(site.db, ROUND, PARTY, ROB, site.clock, coordinator_name)

        site.clock.advance(days=1)
        start_party_session(party, link)  # the session of yesterday has ended
        decision = f"Kunnanhallitus {site.clock.moment:%d.%m.%Y} § 12"
        form = party.locator("#form-approve")
        form.get_by_label("Decision (body, date and section)").fill(decision)
        form.get_by_label("Minutes extract (PDF)").set_input_files(MINUTES)
        submit_expecting(party, form.get_by_role("button", name="The body approved"), 200)
        assert site.party_state() == "awaiting_signature"
        approval = log_entries(site.db, ROUND)[-1]
        assert approval["event"] == "approve"
        assert approval["evidence"]["via"] == "link"
        assert (
            approval["evidence"]["minutes_sha256"]
            == hashlib.sha256(MINUTES.read_bytes()).hexdigest()
        )

        for signatory in ("Maria Mayor", "Bernt Board"):
            assert site.round_state() == "open"
            form = party.locator("#form-sign")
            form.get_by_label("Signatory").select_option(signatory)
            submit_expecting(party, form.get_by_role("button", name="Signature"), 200)
        assert site.round_state() == "active"
        assert [
            e["evidence"].get("signatory")
            for e in log_entries(site.db, ROUND)
            if e["event"] == "sign"
        ] == [
            "Maria Mayor",
            "Bernt Board",
        ]
        site.tick()  # the receipts, and the notices of the agreement in force
        visit(party, "/party")
        shoot(site, party, "party")

        # 4. The auditor signs in, reads the log, verifies the chain, and takes away the
        # certificate and the evidence pack; the pack's own program verifies the export.
        sign_in(audit, auditor_name, auditor_password)
        audit.get_by_role("link", name=TITLE).click()
        arrived(audit)
        audit.get_by_role("link", name="Log", exact=True).click()
        arrived(audit)
        expect(audit.get_by_role("heading", name="The round's log")).to_be_visible()
        shoot(site, audit, "log")
        audit.get_by_role("link", name="Verify the chain").click()
        arrived(audit)
        expect(audit.get_by_text("The log is intact.")).to_be_visible()
        audit.get_by_role("link", name="Certificate of completion").click()
        arrived(audit)
        expect(audit.get_by_text(decision).first).to_be_visible()
        shoot(site, audit, "certificate")
        audit.go_back()
        arrived(audit)

        pdf = PdfReader(io.BytesIO(download(audit, "Certificate (PDF)")))
        printed = " ".join(p.extract_text() for p in pdf.pages)
        assert TITLE in printed
        assert "Bernt Board" in printed
        export = download(audit, "Download the log (JSONL)")
        pack = download(audit, "Evidence pack (zip)")
        with zipfile.ZipFile(io.BytesIO(pack)) as archive:
            assert archive.read("log.jsonl") == export
        head = log_entries(site.db, ROUND)[-1]["hash"]
        verified = verify_with_the_packs_program(pack, tmp_path)
        assert verified.startswith("INTACT:"), verified
        assert head in verified

        # 5. The wrong ways in.
        token = link.rsplit("/", 1)[1]
        changed = link[: -len(token)] + token[:-1] + ("A" if token[-1] != "A" else "B")
        visit(stranger, changed + "?lang=en", status=403)
        expect(stranger.get_by_role("heading", name="The link does not work")).to_be_visible()
        expect(stranger.get_by_text("The link is not recognised")).to_be_visible()
        visit(stranger, site.link_of(ROB), status=403)
        expect(stranger.get_by_role("heading", name="The link does not work")).to_be_visible()
        expect(stranger.get_by_text("The coordinator has withdrawn this link.")).to_be_visible()

        length = site.log_length()
        cancel = round_path(ROUND, "cancel")
        forged = {"csrftoken": csrf_token(audit), "confirm": "yes", "reason": "an auditor's try"}
        assert post_form(audit, cancel, forged) == 403
        assert site.round_state() == "active"

        sign_in(coord, coordinator_name, coordinator_password)  # yesterday's session has ended
        note = round_path(ROUND, "annotate")
        unsigned = {"seq": "1", "note": "without the form's token"}
        assert post_form(coord, note, unsigned) == 403
        assert site.log_length() == length
        signed = {"csrftoken": csrf_token(coord), **unsigned, "note": "checked by the auditor"}
        assert post_form(coord, note, signed) == 303  # the same form with its token is taken
        assert site.log_length() == length + 1
        visit(coord, round_path(ROUND))
        shoot(site, coord, "round")

        for path in ("/", "/rounds/new", round_path(ROUND), round_path(ROUND, "log")):
            visit(party, path)
            assert urlpath(party.url) == "/signin", (path, party.url)
            shown = party.locator("body").inner_text()  # the page's words (axe is in its HTML)
            for coordinators_own in ("Check and launch", ROB, TITLE, "Verify the", "Log"):
                assert coordinators_own not in shown, (path, coordinators_own, shown)
        visit(party, "/party")  # its own page still opens
        expect(party.get_by_text(text_sha).first).to_be_visible()

        assert coord_blocked == party_blocked == audit_blocked == stranger_blocked == []

    for shot in site.shots:
        assert shot.stat().st_size < SCREENSHOT_MAX, (shot.name, shot.stat().st_size)
