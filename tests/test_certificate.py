"""The certificate of completion and the evidence pack, from the Kanta-Häme round played through
the service layer on a real SQLite file: a text amended after one party approved it, a return,
an appeal, a minutes extract uploaded from a contact's link, a note on an entry, legal force by
tick, and every signature until the round is active."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import Engine

from engine.clock import FakeClock
from engine.errors import InvalidInput, VerificationFailed
from engine.runtime import Evidence, amend, connect, heads, init_schema, launch, record, tick
from engine.runtime.certificate import Certificate, certificate
from engine.runtime.corrections import annotate
from engine.runtime.events import Via
from engine.runtime.files import Upload
from engine.runtime.pack import (
    PROGRAM_BEGINS,
    PROGRAM_ENDS,
    certificate_pdf,
    evidence_pack,
    render_certificate_html,
)
from tests.tampering import tamper

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kanta-hame" / "agreement.toml"
ROUND = "kanta-hame-strategic-2026/1"
MINUTES = b"%PDF-1.4\n% Hattulan kunnanhallituksen poytakirjanote 3.12.2026 (invented)\n%%EOF\n"
# Who signs for each party: the listed signatories where the agreement lists them.
SIGNERS = {
    "hameenlinna": [("Kaisa Kuvitteellinen", None), ("Jussi Esimerkki", None)],
    "hameen-liitto": [("Mikko Esimerkinen", None), ("Tarja Mallinen", None)],
    "kanta-hame-hyvinvointialue": [("Antti Kuvitelma", None)],
}


@dataclass
class Played:
    engine: Engine
    v1: str
    v2: str
    refs: dict[str, list[str]] = field(default_factory=dict)  # party → its refs on the last text
    first_approval: int = 0  # the seq of Hattula's approval of the first text


@dataclass(frozen=True)
class InMemory:
    sha256: str
    filename: str
    content_type: str
    data: bytes


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute)  # noqa: DTZ001  (naive: local to the round)


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    folder = tmp_path_factory.mktemp("certificate")
    engine = connect(f"sqlite:///{folder / 'ratify.db'}")
    init_schema(engine)
    clock = FakeClock(at(2026, 12, 1, 9, 0))
    coordinator = "Liisa Koskinen"
    launched = launch(engine, EXAMPLE, clock, coordinator)
    assert launched.round == ROUND
    game = Played(engine, launched.document_sha256, "")
    parties = {p: b for p, b in _bodies(engine).items()}

    def rec(
        party: str,
        event: str,
        actor: str = coordinator,
        *,
        via: Via | None = None,
        minutes: Upload | None = None,
        **evidence: str | None,
    ) -> int:
        done = record(
            engine,
            ROUND,
            party,
            event,
            Evidence(**evidence),
            clock,
            actor,
            via=via,
            minutes=minutes,
        )
        return done.seq

    clock.set(at(2026, 12, 2, 10, 0))
    for party in parties:
        rec(party, "submit", diary=f"{party.upper()}/00.01.00/2026")
    clock.set(at(2026, 12, 3, 18, 0))
    upload = Upload("Pöytäkirjanote KH 3.12.2026 § 10.pdf", "application/pdf", MINUTES)
    game.first_approval = rec(
        "hattula",
        "approve",
        actor="Timo Heikkinen",  # Hattula's contact, from the link in his email
        ref="Kunnanhallitus 03.12.2026 § 10",
        via="link",
        minutes=upload,
    )
    rec("janakkala", "return", ref="Kunnanhallitus 03.12.2026 § 11", reason="Lisäselvitys")
    clock.set(at(2026, 12, 4, 9, 0))
    text = (EXAMPLE.parent / "agreement.md").read_text("utf-8") + "\n12 § Lisäys kyselyn jälkeen.\n"
    amended = folder / "agreement-v2.md"
    amended.write_text(text, "utf-8")
    game.v2 = amend(engine, ROUND, amended, "Kyselyn palaute", clock, coordinator).document_sha256
    clock.set(at(2026, 12, 7, 9, 0))
    rec("hattula", "submit")
    rec("janakkala", "submit")
    clock.set(at(2026, 12, 7, 18, 0))
    for section, (party, bodies) in enumerate(parties.items(), start=101):
        body = "Hattulan kunnanhallitus" if party == "hattula" else bodies[0]
        ref = f"{body} 07.12.2026 § {section}"
        rec(party, "approve", ref=ref)
        game.refs[party] = [ref]
    clock.set(at(2026, 12, 8, 19, 0))
    council = "Kaupunginvaltuusto 08.12.2026 § 70"
    rec("hameenlinna", "approve", ref=council, diary="HML/123/2026")
    game.refs["hameenlinna"].append(council)
    clock.set(at(2026, 12, 9, 9, 0))
    rec("loppi", "appeal", reason="Oikaisuvaatimus 8.12.2026", via="web")
    clock.set(at(2026, 12, 21, 9, 0))
    rec("loppi", "appeal-resolved", reason="Oikaisuvaatimus hylätty")
    annotate(engine, ROUND, game.first_approval, "Pöytäkirjanote tarkistettu", clock, coordinator)
    # The boards' decisions of 7.12 are final from 29.12, the council's of 8.12 from 15.1.
    clock.set(at(2027, 1, 15, 9, 0))
    assert len(tick(engine, clock)) == 12  # every party but Loppi, whose appeal was resolved
    clock.set(at(2027, 1, 18, 10, 0))
    for party in parties:
        for name, title in SIGNERS.get(party, [("Aino Esimerkki", "kunnanjohtaja")]):
            rec(party, "sign", signatory=name, title=title)
    yield game
    engine.dispose()


def _bodies(engine: Engine) -> dict[str, tuple[str, ...]]:
    from engine.runtime import status

    return {p.id: p.bodies for p in status(engine, ROUND)[0].parties}


@pytest.fixture(scope="module")
def cert(played: Played) -> Certificate:
    return certificate(played.engine, ROUND)


@pytest.fixture(scope="module")
def pack(played: Played) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(evidence_pack(played.engine, ROUND, "fi")))


# --- the certificate ---------------------------------------------------------------------------


def test_every_party_approved_the_last_text_with_the_reference_recorded(
    played: Played, cert: Certificate
) -> None:
    assert cert.complete
    assert (cert.round, cert.state, cert.document_version) == (ROUND, "active", 2)
    assert cert.effective_date == date(2027, 1, 18)
    assert len(cert.parties) == 13
    for party in cert.parties:
        current = [a for a in party.approvals if a.current_text]
        assert [a.decision for a in current] == played.refs[party.id]
        assert {a.text_sha256 for a in current} == {played.v2}
        assert party.role == "done"
        assert [s.signatory for s in party.signatures] == [
            name for name, _ in SIGNERS.get(party.id, [("Aino Esimerkki", "")])
        ]
        assert {s.text_sha256 for s in party.signatures} == {played.v2}
    hattula = next(p for p in cert.parties if p.id == "hattula")
    last = hattula.approvals[-1]
    assert (last.body, last.decided, last.section) == (
        "Hattulan kunnanhallitus",
        date(2026, 12, 7),
        104,
    )
    city = next(p for p in cert.parties if p.id == "hameenlinna")
    assert city.approvals[-1].diary == "HML/123/2026"
    assert city.signatures[0].title == "kaupunginjohtaja"  # the listed title, not typed
    assert (city.signatures[1].signature, city.signatures[1].signatures_required) == (2, 2)


def test_an_approval_before_the_amendment_names_the_old_text(
    played: Played, cert: Certificate
) -> None:
    assert [(d.version, d.sha256) for d in cert.documents] == [(1, played.v1), (2, played.v2)]
    assert cert.documents[1].reason == "Kyselyn palaute"
    hattula = next(p for p in cert.parties if p.id == "hattula")
    kinds = [s.kind for s in hattula.steps]
    assert kinds[:4] == ["submission", "approval", "reopened", "submission"]
    first = hattula.approvals[0]
    assert first.recorded.seq == played.first_approval
    assert (first.text_sha256, first.text_version, first.current_text) == (played.v1, 1, False)
    assert first.decision == "Kunnanhallitus 03.12.2026 § 10"
    # Recorded from the contact's link, with the minutes extract, and a note added later.
    assert (first.recorded.actor, first.recorded.via) == ("Timo Heikkinen", "link")
    assert first.minutes is not None
    assert first.minutes.sha256 == hashlib.sha256(MINUTES).hexdigest()
    assert first.minutes.filename == "Pöytäkirjanote KH 3.12.2026 § 10.pdf"
    assert [n.note for n in first.recorded.notes] == ["Pöytäkirjanote tarkistettu"]
    assert cert.notes == ()  # every note is shown with its entry


def test_each_step_says_who_recorded_it_and_how(cert: Certificate) -> None:
    loppi = next(p for p in cert.parties if p.id == "loppi")
    assert [s.kind for s in loppi.setbacks] == ["appeal", "appeal_resolved"]
    appeal = loppi.setbacks[0]
    assert (appeal.reason, appeal.recorded.via) == ("Oikaisuvaatimus 8.12.2026", "web")
    janakkala = next(p for p in cert.parties if p.id == "janakkala")
    (returned,) = janakkala.setbacks
    assert (returned.kind, returned.reason, returned.recorded.via) == (
        "return",
        "Lisäselvitys",
        "cli",
    )
    forced = [s for p in cert.parties for s in p.steps if s.kind == "legal_force"]
    assert len(forced) == 12
    assert {(s.recorded.actor, s.recorded.via) for s in forced} == {("ratify", "automatic")}
    assert all(s.recorded.at.tzinfo is not None for s in forced)
    assert str(forced[0].recorded.at.tzinfo) == "Europe/Helsinki"
    assert cert.activation is not None
    assert cert.activation.last_party == "kanta-hame-hyvinvointialue"
    assert cert.activation.recorded.via == "automatic"


def test_the_chain_is_the_verified_head(played: Played, cert: Certificate) -> None:
    (head,) = heads(played.engine, ROUND)
    assert cert.chain.verified
    assert (cert.chain.entries, cert.chain.head) == (head.entries, head.head)
    assert cert.chain.later_entries == 0


def test_an_open_round_and_a_broken_log_are_no_certificate(
    sqlite_url: str, clock: FakeClock, agreement_file: Callable[..., Path]
) -> None:
    engine = connect(sqlite_url)
    init_schema(engine)
    round_id = launch(engine, agreement_file(), clock, "Cora Coordinator").round
    record(engine, round_id, "alpha", "submit", Evidence(), clock, "Cora Coordinator")
    on_launch = annotate(engine, round_id, 1, "Launched after the board's meeting", clock, "Cora")
    annotate(engine, round_id, on_launch, "(the meeting of 30.11)", clock, "Cora")
    opened = certificate(engine, round_id)
    assert [n.note for n in opened.documents[0].recorded.notes] == [  # type: ignore[union-attr]
        "Launched after the board's meeting"
    ]
    assert [(n.refers_to, n.note) for n in opened.notes] == [(on_launch, "(the meeting of 30.11)")]
    assert (opened.state, opened.complete, opened.chain.verified) == ("open", False, True)
    html = render_certificate_html(opened, "en")
    assert "Not a certificate of completion: the round is open" in html
    assert "Certificate of completion</h1>" not in html
    assert "ei ole todistus voimaantulosta" in render_certificate_html(opened, "fi")
    tamper(engine, "UPDATE log_entries SET actor = 'someone else' WHERE seq = 2")
    broken = certificate(engine, round_id)
    assert not broken.chain.verified
    assert not broken.complete
    assert broken.chain.problem is not None
    assert "entry #2" in broken.chain.problem
    assert "the round&#39;s log does not verify" in render_certificate_html(broken, "en")
    tamper(engine, "UPDATE log_entries SET evidence = '[1]' WHERE seq = 2")  # no object
    with pytest.raises(VerificationFailed, match="entry #2"):
        certificate(engine, round_id)
    engine.dispose()


# --- the HTML and the PDF ----------------------------------------------------------------------


class _Outline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.title = ""
        self.headings: list[int] = []
        self.header_cells: list[str | None] = []
        self.mains = 0
        self.urls: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang")
        if tag == "title":
            self._in_title = True
        if tag == "main":
            self.mains += 1
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "th":
            self.header_cells.append(values.get("scope"))
        self.urls += [v for k, v in attrs if k in ("href", "src") and v]

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


@pytest.mark.parametrize(
    ("language", "heading"),
    [
        ("fi", "Todistus sopimuksen voimaantulosta"),
        ("sv", "Intyg om avtalets ikraftträdande"),
        ("en", "Certificate of completion"),
    ],
)
def test_the_html_is_one_accessible_self_contained_document(
    cert: Certificate, language: str, heading: str
) -> None:
    html = render_certificate_html(cert, language)
    outline = _Outline()
    outline.feed(html)
    assert html.startswith("<!doctype html>")
    assert outline.lang == language
    assert outline.title.startswith(heading)
    assert ROUND in outline.title
    assert outline.mains == 1
    levels = outline.headings
    assert levels[0] == 1
    assert levels.count(1) == 1
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels))
    assert outline.header_cells
    assert all(s in ("col", "row") for s in outline.header_cells)
    assert "http://" not in html
    assert "https://" not in html
    assert outline.urls == []
    assert cert.chain.head in html
    assert "Kunnanhallitus 03.12.2026 § 10" in html
    assert "Pöytäkirjanote tarkistettu" in html


def test_the_pdf_names_the_round_the_head_and_the_parties(
    cert: Certificate, pack: zipfile.ZipFile
) -> None:
    pdf = pack.read("certificate.pdf")
    assert pdf.startswith(b"%PDF")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) > 1
    first = reader.pages[0].extract_text()
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert ROUND in first
    assert cert.chain.head in first
    assert f"sivu 1 / {len(reader.pages)}" in first
    assert "Hämeenlinnan kaupunki" in text
    assert "Kanta-Hämeen hyvinvointialue" in text
    assert "Kaupunginvaltuusto 08.12.2026 § 70" in text


def test_unknown_language_is_refused(cert: Certificate) -> None:
    with pytest.raises(InvalidInput, match="use one of fi, sv, en"):
        render_certificate_html(cert, "de")
    with pytest.raises(InvalidInput):
        certificate_pdf(cert, "de")


# --- the evidence pack -------------------------------------------------------------------------


def test_the_pack_holds_every_text_the_extracts_and_the_log(
    played: Played, cert: Certificate, pack: zipfile.ZipFile
) -> None:
    sha = hashlib.sha256(MINUTES).hexdigest()
    names = pack.namelist()
    assert names == [
        "README.txt",
        "certificate.pdf",
        "certificate.html",
        "log.jsonl",
        "documents/v1-agreement.md",
        "documents/v2-agreement-v2.md",
        f"minutes/{sha[:12]}-Pöytäkirjanote KH 3.12.2026 § 10.pdf",
        "SHA256SUMS",
    ]
    assert hashlib.sha256(pack.read(names[4])).hexdigest() == played.v1
    assert hashlib.sha256(pack.read(names[5])).hexdigest() == played.v2
    assert pack.read(names[6]) == MINUTES
    sums = {}
    for line in pack.read("SHA256SUMS").decode().splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    assert sums.keys() == set(names[:-1])
    assert all(hashlib.sha256(pack.read(n)).hexdigest() == h for n, h in sums.items())
    lines = pack.read("log.jsonl").decode().splitlines()
    assert len(lines) == cert.chain.entries
    assert json.loads(lines[-1])["hash"] == cert.chain.head
    assert {i.date_time for i in pack.infolist()} == {(2027, 1, 18, 10, 0, 0)}
    html = pack.read("certificate.html").decode()
    assert '<html lang="fi">' in html


def test_the_pack_is_the_same_bytes_each_time(
    played: Played, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The zip's own order, dates and compression; the PDF is stood in for (WeasyPrint's output
    # depends on its input alone, but rendering it twice more would double this file's time).
    monkeypatch.setattr("engine.runtime.pack.certificate_pdf", lambda cert, language: b"%PDF-")
    first = evidence_pack(played.engine, ROUND, "sv")
    assert evidence_pack(played.engine, ROUND, "sv") == first


def test_the_readme_program_verifies_the_export_with_no_ratify(
    cert: Certificate, pack: zipfile.ZipFile, tmp_path: Path
) -> None:
    readme = pack.read("README.txt").decode()
    assert cert.chain.head in readme
    program = readme.split(PROGRAM_BEGINS + "\n", 1)[1].split(PROGRAM_ENDS, 1)[0]
    (tmp_path / "verify_log.py").write_text(program, "utf-8")
    export = pack.read("log.jsonl")

    def run(data: bytes) -> subprocess.CompletedProcess[str]:
        (tmp_path / "log.jsonl").write_bytes(data)
        # -I -S: no site-packages, no environment: the standard library alone.
        command = [sys.executable, "-I", "-S", "verify_log.py", "log.jsonl"]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)

    ran = run(export)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == f"INTACT: {cert.chain.entries} entries; head {cert.chain.head}"

    lines = export.decode().splitlines(keepends=True)
    entry = json.loads(lines[14])
    entry["evidence"]["decision"] = "Kunnanhallitus 03.12.2026 § 11"
    changed = [*lines[:14], json.dumps(entry, ensure_ascii=False) + "\n", *lines[15:]]
    ran = run("".join(changed).encode())
    assert ran.returncode != 0
    assert "BROKEN at entry #15" in ran.stderr
    ran = run("".join([*lines[:20], *lines[21:]]).encode())  # one entry left out
    assert ran.returncode != 0
    assert "BROKEN at entry #21" in ran.stderr
    twice = lines[3].replace('{"seq": 4,', '{"seq": 4, "actor": "x",', 1)
    ran = run("".join([*lines[:3], twice, *lines[4:]]).encode())
    assert ran.returncode != 0
    assert "names a key twice" in ran.stderr


def test_a_pack_refuses_an_extract_missing_or_changed(played: Played) -> None:
    sha = hashlib.sha256(MINUTES).hexdigest()
    with pytest.raises(VerificationFailed, match="not kept: Pöytäkirjanote"):
        evidence_pack(played.engine, ROUND, "en", files=lambda engine, round_id: [])
    changed = [InMemory(sha, "x.pdf", "application/pdf", MINUTES + b" ")]
    with pytest.raises(VerificationFailed, match="does not match its SHA-256"):
        evidence_pack(played.engine, ROUND, "en", files=lambda engine, round_id: changed)
