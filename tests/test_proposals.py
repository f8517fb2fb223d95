"""Decisions proposed from published minutes, on both backends, read from a real HTTP server on
127.0.0.1 serving the saved feeds: the matching item becomes one proposal (the misleading ones
none), polled twice still one; a failing source is a warning that stops nothing; confirming
records the decision through the normal path with the source's address, the fetch time and the
hash in the log (and `ratify audit verify` passes); dismissing records nothing; a party that has
moved on is refused; the CLI."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from engine.clock import FakeClock
from engine.errors import InvalidInput, NotFound, Refused
from engine.runtime import (
    Evidence,
    certificate,
    confirm_proposal,
    dismiss_proposal,
    launch,
    load_agreement,
    log_entries,
    paste_proposal,
    poll_sources,
    proposals,
    record,
    render_certificate_html,
    sources,
    tick_once,
    verify,
)
from engine.sources import MAX_BYTES
from notifications.mailer import Mailer
from tests.conftest import CLI, write_agreement
from tests.feeds import FIXTURES, FeedServer
from tests.smtp import SmtpServer

TITLE = "Kanta-Hämeen strateginen yhteistyösopimus"
LAUNCH = datetime(2026, 12, 1, 9, 0)  # noqa: DTZ001  (local to the round: a Tuesday)
PUBLISHED = datetime(2026, 12, 16, 10, 0)  # noqa: DTZ001  (a Wednesday, after the meetings)


def _parties(feeds: FeedServer) -> list[dict[str, Any]]:
    return [
        {
            "id": "hattula",
            "name": "Hattulan kunta",
            "source": {
                "kind": "dynasty",
                "url": feeds.serve("/hattula/rss", "dynasty-hattula-kh.xml"),
            },
        },
        {
            "id": "riihimaki",
            "name": "Riihimäen kaupunki",
            "bodies": ["Kaupunginhallitus"],
            "source": {
                "kind": "cloudnc",
                "url": feeds.serve("/riihimaki/odata/Meetings", "cloudnc-riihimaki-kh.json"),
                "diary": "RMKI/1873/00.04.01/2026",
            },
        },
        {
            "id": "hameenlinna",
            "name": "Hämeenlinnan kaupunki",
            "bodies": ["Kaupunginhallitus"],
            "source": {
                "kind": "6aika",
                "url": feeds.serve("/hml/decisions", "6aika-hameenlinna-kh.json"),
            },
        },
        {"id": "loppi", "name": "Lopen kunta", "source": {"kind": "manual"}},
        {"id": "forssa", "name": "Forssan kaupunki"},
    ]


def _launch(db: Engine, tmp_path: Path, feeds: FeedServer, clock: FakeClock) -> str:
    path = write_agreement(tmp_path, _parties(feeds), agreement={"title": TITLE})
    made = launch(db, load_agreement(path, launch_at=clock), clock, "Cora").round
    clock.set(datetime(2026, 12, 2, 9, 0))  # noqa: DTZ001
    for party in ("hattula", "riihimaki", "hameenlinna", "loppi"):
        record(db, made, party, "submit", Evidence(), clock, "Kim")
    return made


@pytest.fixture
def feeds() -> Any:
    with FeedServer() as server:
        yield server


def test_the_matching_items_become_one_proposal_each_and_the_misleading_none(
    db: Engine, tmp_path: Path, feeds: FeedServer
) -> None:
    clock = FakeClock(LAUNCH)
    made = _launch(db, tmp_path, feeds, clock)
    clock.set(PUBLISHED)
    polled = poll_sources(db, clock)
    assert sorted((p.party, p.items, p.proposed, p.warning) for p in polled) == [
        ("hameenlinna", 3, 1, None),
        ("hattula", 3, 1, None),
        ("riihimaki", 3, 1, None),
    ]  # Loppi's manual source is not read; Forssa names none
    found = proposals(db, made)
    assert [(p.party, p.question, p.state) for p in found] == [
        ("hattula", "Kunnanhallitus 14.12.2026 § 5 approved?", "pending"),
        ("riihimaki", "Kaupunginhallitus 14.12.2026 § 7 approved?", "pending"),
        ("hameenlinna", "Kaupunginhallitus 14.12.2026 § 212 approved?", "pending"),
    ]
    hattula = found[0]
    fetched = (FIXTURES / "dynasty-hattula-kh.xml").read_bytes()
    assert hattula.sha256 == hashlib.sha256(fetched).hexdigest()
    assert hattula.source_url == feeds.url("/hattula/rss")
    assert hattula.item_url.endswith("/20261235-5.HTM")
    assert hattula.diary == "HAT/412/00.04.01/2026"
    # Nothing is recorded by a proposal itself.
    assert [e["event"] for e in log_entries(db, made)].count("approve") == 0

    # The same day again: nothing is due. The next working day: read again, nothing new.
    assert poll_sources(db, clock) == []
    hattula_source = sources(db, made)[0]
    assert hattula_source.polled_at == datetime(2026, 12, 16, 8, 0, tzinfo=UTC)
    assert hattula_source.next_poll_at == datetime(2026, 12, 16, 22, 0, tzinfo=UTC)  # 17.12 0.00
    clock.set(datetime(2026, 12, 18, 10, 0))  # noqa: DTZ001  (Friday)
    assert len(poll_sources(db, clock)) == 3
    assert sources(db, made)[0].next_poll_at == datetime(2026, 12, 20, 22, 0, tzinfo=UTC)
    clock.set(datetime(2026, 12, 19, 10, 0))  # noqa: DTZ001  (a Saturday: no reading)
    assert poll_sources(db, clock) == []
    clock.set(datetime(2026, 12, 21, 10, 0))  # noqa: DTZ001  (Monday)
    again = poll_sources(db, clock)
    assert len(again) == 3
    assert [p.proposed for p in again] == [0, 0, 0]
    assert len(proposals(db, made)) == 3
    assert len(feeds.hits) == 9


def test_a_failing_source_is_a_warning_and_the_others_are_read(
    db: Engine, tmp_path: Path, feeds: FeedServer
) -> None:
    clock = FakeClock(LAUNCH)
    made = _launch(db, tmp_path, feeds, clock)
    feeds.files["/hattula/rss"] = (FIXTURES / "dynasty-billion-laughs.xml").read_bytes()
    feeds.files["/riihimaki/odata/Meetings"] = (FIXTURES / "dynasty-lookalike.xml").read_bytes()
    del feeds.files["/hml/decisions"]  # 404
    clock.set(PUBLISHED)
    polled = {p.party: p for p in poll_sources(db, clock)}
    assert "declares entities or a DTD" in str(polled["hattula"].warning)
    assert "is not JSON" in str(polled["riihimaki"].warning)
    assert "answered HTTP 404" in str(polled["hameenlinna"].warning)
    assert proposals(db, made) == []
    # The warnings are kept with the sources, to be read later.
    kept = {s.party: s for s in sources(db, made)}
    assert list(kept) == ["hattula", "riihimaki", "hameenlinna", "loppi"]
    assert "declares entities or a DTD" in str(kept["hattula"].warning)
    assert kept["hattula"].polled_at is not None
    assert (kept["loppi"].kind, kept["loppi"].polled_at, kept["loppi"].warning) == (
        "manual",
        None,
        None,
    )
    # Fixed by the next working day: read again, proposed, the warning gone.
    feeds.serve("/hattula/rss", "dynasty-hattula-kh.xml")
    clock.set(datetime(2026, 12, 17, 10, 0))  # noqa: DTZ001
    again = {p.party: p for p in poll_sources(db, clock)}
    assert (again["hattula"].proposed, again["hattula"].warning) == (1, None)
    assert {s.party: s.warning for s in sources(db, made)}["hattula"] is None


def test_an_answer_too_large_is_a_warning_and_the_tick_goes_on(
    db: Engine, tmp_path: Path, feeds: FeedServer, smtp: SmtpServer
) -> None:
    clock = FakeClock(LAUNCH)
    made = _launch(db, tmp_path, feeds, clock)
    feeds.files["/hattula/rss"] = b"<rss>" + b" " * (MAX_BYTES + 10) + b"</rss>"
    clock.set(PUBLISHED)
    mailer = Mailer("127.0.0.1", smtp.port, timeout=5)
    report = tick_once(db, clock, mailer, "ratify <ratify@example.invalid>")
    polled = {p.party: p for p in report.polled}
    assert f"answered more than {MAX_BYTES:,} bytes" in str(polled["hattula"].warning)
    assert polled["hattula"].sha256 is None
    assert polled["riihimaki"].proposed == 1  # the others are read all the same
    summary = report.summary()
    assert "sources: 3 read, 2 decisions proposed" in summary
    assert f"warning: {made} hattula: " in summary
    assert report.sent  # the tick's mail went out as ever
    assert [p.party for p in proposals(db, made)] == ["riihimaki", "hameenlinna"]


def test_a_look_alike_body_is_a_warning_and_no_proposal(
    db: Engine, tmp_path: Path, feeds: FeedServer
) -> None:
    clock = FakeClock(LAUNCH)
    made = _launch(db, tmp_path, feeds, clock)
    feeds.files["/hattula/rss"] = (FIXTURES / "dynasty-lookalike.xml").read_bytes()
    clock.set(PUBLISHED)
    polled = {p.party: p for p in poll_sources(db, clock)}
    assert polled["hattula"].items == 1
    assert polled["hattula"].proposed == 0
    assert "mixes scripts" in str(polled["hattula"].warning)
    assert [p.party for p in proposals(db, made)] == ["riihimaki", "hameenlinna"]


def test_an_unreachable_source_is_a_warning(db: Engine, tmp_path: Path) -> None:
    clock = FakeClock(LAUNCH)
    with FeedServer() as closed:
        parties = _parties(closed)
    made = _launch_with(db, tmp_path, parties, clock)  # the server has stopped
    clock.set(PUBLISHED)
    polled = poll_sources(db, clock)
    assert {p.party for p in polled} == {"hattula", "riihimaki", "hameenlinna"}
    assert all("could not be read (ConnectError" in str(p.warning) for p in polled)
    assert proposals(db, made) == []


def _launch_with(
    db: Engine, tmp_path: Path, parties: list[dict[str, Any]], clock: FakeClock
) -> str:
    path = write_agreement(tmp_path, parties, agreement={"title": TITLE})
    made = launch(db, load_agreement(path, launch_at=clock), clock, "Cora").round
    clock.set(datetime(2026, 12, 2, 9, 0))  # noqa: DTZ001
    record(db, made, "hattula", "submit", Evidence(), clock, "Kim")
    record(db, made, "riihimaki", "submit", Evidence(), clock, "Kim")
    record(db, made, "hameenlinna", "submit", Evidence(), clock, "Kim")
    return made


def test_confirming_records_the_decision_with_its_source_and_the_chain_verifies(
    db: Engine, tmp_path: Path, feeds: FeedServer
) -> None:
    clock = FakeClock(LAUNCH)
    made = _launch(db, tmp_path, feeds, clock)
    clock.set(PUBLISHED)
    poll_sources(db, clock)
    hattula, riihimaki, hameenlinna = proposals(db, made)
    clock.set(datetime(2026, 12, 16, 11, 0))  # noqa: DTZ001
    done = confirm_proposal(db, hattula.id, clock, "Kim Test", via="link")
    assert (done.recorded.party, done.recorded.event) == ("hattula", "approve")
    assert done.recorded.from_state == "board_review"
    assert done.proposal.state == "confirmed"
    assert done.proposal.seq == done.recorded.seq
    assert done.proposal.settled_by == "Kim Test"
    entry = log_entries(db, made)[-1]
    assert entry["seq"] == done.recorded.seq
    assert entry["actor"] == "Kim Test"
    evidence = entry["evidence"]
    assert evidence["decision"] == "Kunnanhallitus 14.12.2026 § 5"
    assert evidence["diary"] == "HAT/412/00.04.01/2026"
    assert evidence["source_kind"] == "dynasty"
    assert evidence["source_url"] == feeds.url("/hattula/rss")
    assert evidence["item_url"] == hattula.item_url
    assert evidence["fetched_at"] == "2026-12-16T08:00:00+00:00"
    assert evidence["fetched_sha256"] == hattula.sha256
    assert evidence["proposal"] == str(hattula.id)
    assert evidence["via"] == "link"

    # The certificate says where the decision was read, too.
    cert = certificate(db, made)
    (hattula_record,) = [p for p in cert.parties if p.id == "hattula"]
    (approval,) = [st for st in hattula_record.steps if st.event == "approve"]
    assert approval.read_from is not None
    assert (approval.read_from.url, approval.read_from.sha256) == (
        hattula.item_url,
        hattula.sha256,
    )
    shown = render_certificate_html(cert, "fi")
    assert "Luettu julkaistusta pöytäkirjasta" in shown
    assert hattula.item_url in shown

    with pytest.raises(Refused, match="already confirmed by Kim Test"):
        confirm_proposal(db, hattula.id, clock, "Cora")
    # Riihimäki's board returned it instead: the coordinator dismisses; nothing is recorded.
    length = len(log_entries(db, made))
    gone = dismiss_proposal(db, riihimaki.id, clock, "Cora")
    assert (gone.state, gone.settled_by) == ("dismissed", "Cora")
    assert len(log_entries(db, made)) == length
    with pytest.raises(Refused, match="already dismissed"):
        confirm_proposal(db, riihimaki.id, clock, "Cora")
    # Hämeenlinna records its decision by hand meanwhile: the proposal is for a step passed.
    record(
        db,
        made,
        "hameenlinna",
        "approve",
        Evidence(ref="Kaupunginhallitus 14.12.2026 § 212"),
        clock,
        "Kim",
    )
    with pytest.raises(Refused) as moved:
        confirm_proposal(db, hameenlinna.id, clock, "Cora")
    said = str(moved.value.template)
    assert 'Party "hameenlinna" has moved on: it is legal_force_wait now' in said
    assert "was for board_review before" in said
    assert 'Allowed now: "appeal"' in said
    assert len(log_entries(db, made)) == length + 1  # only the hand-recorded approval
    assert all(c.ok for c in verify(db, made).chains)


def test_a_proposal_for_a_step_left_and_begun_again_is_refused(
    db: Engine, tmp_path: Path, feeds: FeedServer
) -> None:
    clock = FakeClock(LAUNCH)
    made = _launch(db, tmp_path, feeds, clock)
    clock.set(PUBLISHED)
    poll_sources(db, clock)
    first = proposals(db, made, "hattula")[0]
    record(db, made, "hattula", "return", Evidence(reason="Valmisteltava uudelleen"), clock, "Kim")
    clock.set(datetime(2026, 12, 17, 9, 0))  # noqa: DTZ001
    record(db, made, "hattula", "submit", Evidence(), clock, "Kim")  # board_review once more
    with pytest.raises(Refused, match=r"it is board_review again since 17\.12\.2026"):
        confirm_proposal(db, first.id, clock, "Kim")
    assert log_entries(db, made)[-1]["event"] == "submit"


def test_a_proposal_is_of_its_round_and_party(
    db: Engine, tmp_path: Path, feeds: FeedServer
) -> None:
    clock = FakeClock(LAUNCH)
    made = _launch(db, tmp_path, feeds, clock)
    clock.set(PUBLISHED)
    poll_sources(db, clock)
    first = proposals(db, made)[0]
    with pytest.raises(NotFound, match="no proposal"):
        confirm_proposal(db, first.id, clock, "Kim", round_ref=made, party="forssa")
    with pytest.raises(NotFound, match="no proposal 999"):
        dismiss_proposal(db, 999, clock, "Kim")
    with pytest.raises(InvalidInput, match="one of approve, reject, return"):
        confirm_proposal(db, first.id, clock, "Kim", event="sign")
    assert [p.state for p in proposals(db, made, "hattula")] == ["pending"]


def test_a_pasted_decision_is_a_proposal_checked_like_a_fetched_one(
    db: Engine, tmp_path: Path, feeds: FeedServer
) -> None:
    clock = FakeClock(LAUNCH)
    made = _launch(db, tmp_path, feeds, clock)
    clock.set(PUBLISHED)
    pasted = (FIXTURES / "manual-loppi-kh.txt").read_text("utf-8")
    made_one = paste_proposal(db, made, "loppi", pasted, clock, "Kim")
    assert made_one.question == "Kunnanhallitus 14.12.2026 § 9 approved?"
    assert made_one.kind == "manual"
    assert made_one.sha256 == hashlib.sha256(pasted.encode()).hexdigest()
    with pytest.raises(Refused, match="already proposed"):
        paste_proposal(db, made, "loppi", pasted, clock, "Kim")
    with pytest.raises(InvalidInput, match="is not the decision party 'loppi' awaits"):
        paste_proposal(
            db,
            made,
            "loppi",
            "https://l.example.invalid/pk\nKunnanvaltuusto 14.12.2026 § 3",
            clock,
            "Kim",
        )
    with pytest.raises(Refused, match="awaits no body's decision now"):
        paste_proposal(
            db,
            made,
            "forssa",
            "https://f.example.invalid/pk\nKaupunginhallitus 14.12.2026 § 3",
            clock,
            "Kim",
        )
    done = confirm_proposal(db, made_one.id, clock, "Kim")
    assert log_entries(db, made)[-1]["evidence"]["source_url"] == made_one.item_url
    assert done.recorded.to_state == "legal_force_wait"


def test_the_command_line_lists_confirms_and_dismisses(
    cli: CLI, tmp_path: Path, feeds: FeedServer
) -> None:
    path = write_agreement(tmp_path, _parties(feeds), agreement={"title": TITLE})
    assert cli("launch", str(path), "--at", "2026-12-01 09:00").exit_code == 0
    for party in ("hattula", "riihimaki"):
        ran = cli("record", "test-agreement/1", party, "submit", "--at", "2026-12-02 09:00")
        assert ran.exit_code == 0, ran.stderr
    polled = cli("proposal", "poll", "--at", "2026-12-16 10:00")
    assert polled.exit_code == 0, polled.stderr
    assert "hattula (dynasty): 3 items read, 1 decision proposed" in polled.stdout
    listed = cli("proposals", "test-agreement/1")
    assert "Kunnanhallitus 14.12.2026 § 5 approved? (pending)" in listed.stdout
    data = cli("proposals", "test-agreement/1", "--json").json()
    assert [p["party"] for p in data] == ["hattula", "riihimaki"]
    first, second = data[0]["id"], data[1]["id"]
    done = cli("proposal", "confirm", str(first), "--at", "2026-12-16 11:00", "--by", "Kim Test")
    assert done.exit_code == 0, done.stderr
    assert "hattula: board_review → legal_force_wait" in done.stdout
    again = cli("proposal", "confirm", str(first), "--at", "2026-12-16 11:00")
    assert again.exit_code == 1
    assert "already confirmed" in again.stderr
    gone = cli("proposal", "dismiss", str(second), "--json")
    assert gone.json()["state"] == "dismissed"
    assert cli("proposals", "test-agreement/1", "--pending", "--json").json() == []
    assert cli("audit", "verify", "test-agreement/1").exit_code == 0
    shown = cli("proposal", "sources", "test-agreement/1")
    assert shown.exit_code == 0, shown.stderr
    assert "Hattulan kunta (hattula): dynasty" in shown.stdout
    assert "read 16.12.2026 08:00 UTC" in shown.stdout
    assert "Lopen kunta (loppi): manual" in shown.stdout
    assert "not read yet" in shown.stdout
    exported = cli("audit", "export", "test-agreement/1")
    assert exported.exit_code == 0, exported.stderr
    assert "fetched_sha256" in exported.stdout
