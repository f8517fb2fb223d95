"""Calendars given by URL, fetched by the worker's tick from a real HTTP server on 127.0.0.1: a
good calendar with a recurring meeting and a cancelled occurrence, then a 500, then garbage, then
a huge body, then a redirect loop; each failure kept on the row as a warning that `ratify
calendar` shows, while the last good meetings stay in use and the tick goes on. Also the URLs an
agreement file may not give, each named by its key, and the once-a-working-day rule."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from engine.clock import FakeClock
from engine.core.evidence import Evidence
from engine.errors import AgreementFileError
from engine.persistence.database import transaction
from engine.persistence.tables import CalendarRow
from engine.runtime import fetch_calendars, launch, load_agreement, record, tick_once
from engine.runtime.calendar_fetch import MAX_BYTES
from engine.runtime.calendars import calendar
from notifications.mailer import Mailer
from tests.conftest import CLI, write_agreement
from tests.smtp import HOST, SmtpServer
from tests.test_calendars import ICS

FROM = "ratify@example.invalid"
HEL = ZoneInfo("Europe/Helsinki")


@dataclass
class CalendarServer:
    """Answers GET /kh.ics with ``status`` and ``body`` (``huge``: streams more than the cap,
    without saying its length); /loop redirects to itself; every request is counted."""

    status: int = 200
    body: bytes = ICS.encode()
    huge: bool = False
    requests: list[str] = field(default_factory=list)
    base: str = ""
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> CalendarServer:
        kept = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                kept.requests.append(self.path)
                if self.path == "/loop":
                    self.send_response(302)
                    self.send_header("Location", "/loop")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(kept.status)
                self.send_header("Content-Type", "text/calendar; charset=utf-8")
                if kept.huge:  # HTTP/1.0: the body ends when the connection closes
                    self.end_headers()
                    chunk = b"X" * 65536
                    try:
                        for _ in range(MAX_BYTES // len(chunk) + 4):
                            self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client stopped reading at the cap, as it should
                    return
                self.send_header("Content-Length", str(len(kept.body)))
                self.end_headers()
                self.wfile.write(kept.body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def served() -> Iterator[CalendarServer]:
    with CalendarServer() as server:
        yield server


def _launch(db: Engine, tmp_path: Path, url: str, clock: FakeClock) -> str:
    parties: list[dict[str, Any]] = [
        {
            "id": "hattula",
            "name": "Hattulan kunta",
            "calendars": {"Kunnanhallitus": {"url": url, "agenda_days": 7}},
        }
    ]
    path = write_agreement(tmp_path, parties)
    return launch(db, load_agreement(path, launch_at=clock), clock, "Cora").round


def _row(db: Engine, round_id: str) -> CalendarRow:
    with transaction(db) as session:
        row = session.get(CalendarRow, (round_id, "hattula", "Kunnanhallitus"))
        assert row is not None
        session.expunge(row)
        return row


def test_the_worker_fetches_a_url_calendar_and_keeps_the_last_good_meetings_through_failures(
    db: Engine, tmp_path: Path, served: CalendarServer, smtp: SmtpServer
) -> None:
    clock = FakeClock(datetime(2026, 12, 1, 9, 0, tzinfo=HEL))  # a Tuesday
    made = _launch(db, tmp_path, f"{served.base}/kh.ics", clock)
    (before,) = calendar(db, made, clock)
    assert before.next == ()
    assert before.warning is not None
    assert "has not been fetched yet" in before.warning

    report = tick_once(db, clock, Mailer(HOST, smtp.port, timeout=10.0), FROM)
    assert [(c.outcome, c.meetings) for c in report.calendars] == [("fetched", 6)]
    assert "calendars: 1 fetched, 0 failed" in report.summary()
    row = _row(db, made)
    # The recurring meeting, without the occurrence removed (21.12) and the one cancelled (4.1).
    assert row.meetings[:3] == ["2026-12-07", "2027-01-18", "2027-02-01"]
    assert row.sha256 == hashlib.sha256(ICS.encode()).hexdigest()
    assert row.fetched_at == clock.now(HEL)
    assert row.error is None
    (shown,) = calendar(db, made, clock)
    assert shown.warning is None
    assert [m.day for m in shown.next] == [date(2026, 12, 7), date(2027, 1, 18), date(2027, 2, 1)]

    # Later the same day: not fetched again.
    clock.advance(hours=5)
    assert fetch_calendars(db, clock) == []
    assert len(served.requests) == 1

    good = list(row.meetings)
    failures: list[tuple[dict[str, Any], str]] = [
        (dict(status=500), "the server answered 500 Internal Server Error"),
        (dict(status=200, body=b"<html>Sivua ei l\xc3\xb6ydy</html>"), "is not an iCalendar file"),
        (dict(status=200, body=b"\xff\xfe\x00garbage"), "is not UTF-8 text"),
        (dict(status=200, huge=True), f"is larger than {MAX_BYTES // 1024} KiB"),
    ]
    for change, said in failures:
        clock.advance(days=1)
        while clock.now(HEL).weekday() >= 5:  # fetched on working days only
            assert fetch_calendars(db, clock) == []
            clock.advance(days=1)
        for name, value in change.items():
            setattr(served, name, value)
        report = tick_once(db, clock, Mailer(HOST, smtp.port, timeout=10.0), FROM)
        (fetched,) = report.calendars
        assert fetched.outcome == "failed"
        assert fetched.error is not None
        assert said in fetched.error
        row = _row(db, made)
        assert row.error is not None
        assert said in row.error
        assert row.meetings == good  # the last good meetings stay in use
        assert row.sha256 == hashlib.sha256(ICS.encode()).hexdigest()
        (shown,) = calendar(db, made, clock)
        assert shown.warning is not None
        assert "calendars.Kunnanhallitus.url of party 'hattula'" in shown.warning
        assert said in shown.warning
        assert "the meetings fetched 01.12.2026 09.00 stay in use" in shown.warning
        assert shown.next[0].day == date(2026, 12, 7)
        served.huge = False

    # Recording goes on whatever the calendar's state.
    assert record(db, made, "hattula", "submit", Evidence(), clock, "Kalle").to_state
    # The good calendar again: the warning goes.
    served.status, served.body = 200, ICS.encode()
    clock.advance(days=1)
    while clock.now(HEL).weekday() >= 5:
        clock.advance(days=1)
    (fetched,) = fetch_calendars(db, clock)
    assert fetched.outcome == "fetched"
    assert _row(db, made).error is None


def test_a_redirect_loop_is_a_warning_after_a_few_hops(
    db: Engine, tmp_path: Path, served: CalendarServer
) -> None:
    clock = FakeClock(datetime(2026, 12, 5, 12, 0, tzinfo=HEL))  # a Saturday: never fetched yet
    made = _launch(db, tmp_path, f"{served.base}/loop", clock)
    (fetched,) = fetch_calendars(db, clock)
    assert fetched.outcome == "failed"
    assert fetched.error == "redirects more than 3 times (a redirect loop?)"
    assert len(served.requests) == 4  # the first request and three redirects, then it stops
    (shown,) = calendar(db, made, clock)
    assert shown.warning is not None
    assert "no meetings are known from it yet" in shown.warning
    clock.advance(days=1)  # Sunday: not tried again until a working day
    assert fetch_calendars(db, clock) == []


def test_an_unreachable_calendar_is_a_warning_in_the_json_and_the_tick_goes_on(
    cli: CLI, tmp_path: Path
) -> None:
    with CalendarServer() as gone:
        url = f"{gone.base}/kh.ics"  # a port nobody listens on once the server has closed
    parties: list[dict[str, Any]] = [
        {"id": "hattula", "name": "Hattulan kunta", "calendars": {"Kunnanhallitus": {"url": url}}}
    ]
    path = write_agreement(tmp_path, parties)
    assert cli("launch", str(path), "--at", "2026-12-01 09:00").exit_code == 0
    ran = cli("worker", "--once", "--at", "2026-12-01 09:05")
    assert ran.exit_code == 0, ran.stderr
    shown = cli("calendar", "test-agreement/1", "--json", "--at", "2026-12-01 10:00")
    (body,) = shown.json()
    assert body["url"] == url
    assert body["fetched_at"] is None
    assert "could not be reached" in body["warning"]
    text = cli("calendar", "test-agreement/1", "--at", "2026-12-01 10:00").stdout
    assert "warning: calendars.Kunnanhallitus.url of party 'hattula'" in text


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("ftp://hattula.example.invalid/kh.ics", "only http and https are fetched"),
        ("file:///etc/passwd", "only http and https are fetched"),
        ("hattula.example.invalid/kh.ics", "has no scheme"),
        ("https://kalle:salasana@hattula.example.invalid/kh.ics", "user name or password"),
        ("https://hattula.example.invalid/k h.ics", "spaces, control or non-ASCII"),
        ("https://hattula.example.invalid/kh.ics\tX-Evil: 1", "spaces, control or non-ASCII"),
        ("https://h\u0430ttula.example.invalid/kh.ics", "non-ASCII"),  # a Cyrillic a
        ("https:///kh.ics", "names no host"),
        ("https://hattula.example.invalid:99999/kh.ics", "is not a URL"),
        ("https://hattula.example.invalid/" + "a" * 2100, "longer than 2000 characters"),
    ],
)
def test_a_url_that_is_not_fetched_is_named_by_its_key(tmp_path: Path, url: str, said: str) -> None:
    parties: list[dict[str, Any]] = [
        {"id": "hattula", "name": "Hattulan kunta", "calendars": {"Kunnanhallitus": {"url": url}}}
    ]
    with pytest.raises(AgreementFileError) as refused:
        load_agreement(write_agreement(tmp_path, parties))
    assert "parties[0] (id 'hattula').calendars.Kunnanhallitus.url" in refused.value.keys
    assert said in "\n".join(refused.value.problems)


def test_a_calendar_gives_a_file_or_a_url_not_both(tmp_path: Path) -> None:
    (tmp_path / "kh.ics").write_text(ICS, "utf-8")
    parties: list[dict[str, Any]] = [
        {
            "id": "hattula",
            "name": "Hattulan kunta",
            "calendars": {
                "Kunnanhallitus": {"ical": "kh.ics", "url": "https://h.example.invalid/kh.ics"}
            },
        }
    ]
    with pytest.raises(AgreementFileError) as refused:
        load_agreement(write_agreement(tmp_path, parties))
    assert "not both" in "\n".join(refused.value.problems)
