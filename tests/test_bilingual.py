"""An agreement in Finnish and Swedish: each contact reads its own language's title and text (at a
real SMTP server and on the party's page), the texts are hashed together, a bad text path is named
by its key, the log still verifies; Swedish body names are known bodies; and the Finnish texts keep
one formal register, with "klo" in their times."""

from __future__ import annotations

import hashlib
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.clock import FakeClock
from engine.core.chain import combined_sha256, sha256_text
from engine.errors import AgreementFileError, InvalidInput, TransitionRefused
from engine.interfaces.web.app import create_app
from engine.interfaces.web.common import WebConfig
from engine.persistence.database import transaction
from engine.persistence.tables import RoundRow
from engine.runtime import (
    Engine,
    Evidence,
    amend,
    certificate,
    documents,
    launch,
    load_agreement,
    log_entries,
    record,
    verify,
)
from tests.conftest import CLI
from tests.smtp import SmtpServer
from tests.webkit import Site

TITLE_FI = "Kanta-Hämeen strateginen yhteistyösopimus"
TITLE_SV = "Strategiskt samarbetsavtal för Egentliga Tavastland"
TEXT_FI = "# Strateginen yhteistyösopimus\n\nOsapuolet sitoutuvat yhteistyöhön.\n"
TEXT_SV = "# Strategiskt samarbetsavtal\n\nParterna förbinder sig till samarbete.\n"
SWEDE = "karin.lund@omahame.example.invalid"
FINN = "liisa.koskinen@omahame.example.invalid"
ENGLISH = "ella.smith@hameenlinna.example.invalid"

AGREEMENT = f"""\
[agreement]
id = "kanta-hame-kaksikielinen"
title = {{ fi = "{TITLE_FI}", sv = "{TITLE_SV}" }}
document = {{ fi = "sopimus.md", sv = "avtal.md" }}
language = "fi"

[coordinator]
name = "Cora Koordinaattori"
email = "cora@example.invalid"

[[parties]]
id = "kanta-hame"
name = "Kanta-Hämeen hyvinvointialue"
workflow = "wellbeing-county"
await_legal_force = false
contacts = [
  {{ name = "Karin Lund", email = "{SWEDE}", language = "sv" }},
  {{ name = "Liisa Koskinen", email = "{FINN}", language = "fi" }},
]

[[parties]]
id = "hameenlinna"
name = "Hämeenlinnan kaupunki"
workflow = "municipality"
bodies = ["Kaupunginhallitus"]
contacts = [{{ name = "Ella Smith", email = "{ENGLISH}", language = "en" }}]
"""


def _folder(tmp_path: Path, agreement: str = AGREEMENT) -> Path:
    folder = tmp_path / "bilingual"
    folder.mkdir(exist_ok=True)
    (folder / "sopimus.md").write_text(TEXT_FI, "utf-8")
    (folder / "avtal.md").write_text(TEXT_SV, "utf-8")
    path = folder / "agreement.toml"
    path.write_text(agreement, "utf-8")
    return path


def _site(db: Engine, clock: FakeClock, smtp: SmtpServer, tmp_path: Path) -> Site:
    from tests.webkit import KEYS

    round_id = launch(db, load_agreement(_folder(tmp_path)), clock, "cora").round
    site = Site(db, clock, smtp, create_app(WebConfig(db, clock, KEYS)), round_id)
    site.tick()
    return site


def _to(smtp: SmtpServer, address: str, kind: str = "invitation") -> EmailMessage:
    (found,) = [
        m for m in smtp.messages() if address in str(m["To"]) and m["X-Ratify-Kind"] == kind
    ]
    return found


def _parts(message: EmailMessage) -> tuple[str, str, str, dict[str, str]]:
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None
    assert html is not None
    attached = {}
    for part in message.iter_attachments():
        content = part.get_content()
        attached[str(part.get_filename())] = (
            content.decode() if isinstance(content, bytes) else content
        )
    return str(message["Subject"]), plain.get_content(), html.get_content(), attached


def test_a_swedish_contact_receives_only_swedish_and_a_finnish_one_only_finnish(
    db: Engine, clock: FakeClock, smtp: SmtpServer, tmp_path: Path
) -> None:
    _site(db, clock, smtp, tmp_path)

    subject, text, html, attached = _parts(_to(smtp, SWEDE))
    assert TITLE_SV in subject
    assert "Begäran om godkännande" in subject
    for part in (subject, text, html):
        assert TITLE_FI not in part
    assert TITLE_SV in text
    assert "Vi ber att" in text  # the Swedish template
    assert attached == {"avtal.md": TEXT_SV}  # the Swedish text, and no other
    # The hash approvals bind to, and the hash of the text attached.
    combined = combined_sha256({"fi": sha256_text(TEXT_FI), "sv": sha256_text(TEXT_SV)})
    label = "Avtalstexternas SHA-256 (språkversionerna tillsammans; godkännandet gäller den)"
    assert f"{label}: {combined}" in " ".join(text.split())
    assert f"Den här språkversionens SHA-256: {sha256_text(TEXT_SV)}" in " ".join(text.split())
    assert sha256_text(TEXT_FI) not in text

    subject, text, html, attached = _parts(_to(smtp, FINN))
    assert TITLE_FI in subject
    assert "Hyväksymispyyntö" in subject
    for part in (subject, text, html):
        assert TITLE_SV not in part
    assert attached == {"sopimus.md": TEXT_FI}


def test_a_contact_whose_language_the_agreement_lacks_reads_its_main_language(
    db: Engine, clock: FakeClock, smtp: SmtpServer, tmp_path: Path
) -> None:
    _site(db, clock, smtp, tmp_path)
    subject, text, _, attached = _parts(_to(smtp, ENGLISH))
    assert subject.startswith("Request for approval")  # the contact's own language's template
    assert TITLE_FI in subject  # the agreement's main language's title and text
    assert TITLE_SV not in text
    assert attached == {"sopimus.md": TEXT_FI}


def test_the_party_page_and_its_link_page_show_the_contacts_language(
    db: Engine, clock: FakeClock, smtp: SmtpServer, tmp_path: Path
) -> None:
    from tests.webkit import BASE

    site = _site(db, clock, smtp, tmp_path)
    landing = site.client().get(site.link_of(SWEDE).removeprefix(BASE))
    assert landing.status_code == 200
    assert TITLE_SV in landing.text
    assert TITLE_FI not in landing.text

    swede = site.party_client(SWEDE)
    page = swede.get("/party")
    assert page.status_code == 200
    assert TITLE_SV in page.text
    assert "Parterna förbinder sig" in page.text
    assert TITLE_FI not in page.text
    assert "Osapuolet sitoutuvat" not in page.text
    download = swede.get("/party/document")
    assert download.text == TEXT_SV
    assert 'filename="avtal.md"' in download.headers["content-disposition"]

    finn = site.party_client(FINN)
    assert finn.get("/party/document").text == TEXT_FI
    assert TITLE_FI in finn.get("/party").text


def test_the_texts_are_hashed_together_in_a_stated_order_independent_way(tmp_path: Path) -> None:
    fi, sv = sha256_text(TEXT_FI), sha256_text(TEXT_SV)
    stated = hashlib.sha256(f"fi {fi}\nsv {sv}\n".encode()).hexdigest()
    assert combined_sha256({"fi": fi, "sv": sv}) == stated
    assert combined_sha256({"sv": sv, "fi": fi}) == stated
    assert combined_sha256({"fi": fi}) == fi  # one language: its text's own hash

    path = _folder(tmp_path)
    first = load_agreement(path)
    assert first.document_sha256 == stated
    assert [(t.language, t.sha256) for t in first.texts] == [("fi", fi), ("sv", sv)]
    (path.parent / "avtal.md").write_text(TEXT_SV + "Ändrad.\n", "utf-8")
    swedish_changed = load_agreement(path).document_sha256
    (path.parent / "avtal.md").write_text(TEXT_SV, "utf-8")
    (path.parent / "sopimus.md").write_text(TEXT_FI + "Muutettu.\n", "utf-8")
    finnish_changed = load_agreement(path).document_sha256
    assert len({stated, swedish_changed, finnish_changed}) == 3


def test_launch_and_amend_log_each_texts_hash_and_the_log_verifies(
    db: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    path = _folder(tmp_path)
    round_id = launch(db, load_agreement(path), clock, "cora").round
    record(db, round_id, "kanta-hame", "submit", Evidence(), clock, "cora")
    clock.advance(days=1)
    record(
        db,
        round_id,
        "kanta-hame",
        "approve",
        Evidence(ref="Aluehallitus 02.12.2026 § 7"),
        clock,
        "c",
    )
    launched = log_entries(db, round_id)[0]
    fi, sv = sha256_text(TEXT_FI), sha256_text(TEXT_SV)
    assert launched["evidence"]["titles"] == {"fi": TITLE_FI, "sv": TITLE_SV}
    assert launched["evidence"]["texts"] == [
        {"language": "fi", "document": "sopimus.md", "sha256": fi},
        {"language": "sv", "document": "avtal.md", "sha256": sv},
    ]
    assert launched["document_sha256"] == combined_sha256({"fi": fi, "sv": sv})

    new_sv = tmp_path / "avtal-v2.md"
    new_sv.write_text(TEXT_SV + "Ändrad paragraf.\n", "utf-8")
    with pytest.raises(InvalidInput, match=r"its text in sv is missing.*text sv=FILE"):
        amend(db, round_id, path.parent / "sopimus.md", "ny text", clock, "cora")
    done = amend(
        db, round_id, path.parent / "sopimus.md", "ny text", clock, "cora", texts={"sv": new_sv}
    )
    assert done.reopened == ("kanta-hame",)  # its approval was of the old texts
    sv2 = sha256_text(new_sv.read_text("utf-8"))
    assert done.document_sha256 == combined_sha256({"fi": fi, "sv": sv2})
    amended = [e for e in log_entries(db, round_id) if e["event"] == "amend" and not e["party"]]
    from engine.persistence import outbox

    with transaction(db) as session:
        notices = [r for r in outbox.messages(session) if r.kind == "amended"]
        swedish = [r.text_body for r in notices if r.recipients == [SWEDE]]
    assert len(swedish) == 1
    assert sv2 in swedish[0]  # the new Swedish text's own hash
    assert done.document_sha256 in swedish[0]
    assert amended[0]["evidence"]["texts"][1] == {
        "language": "sv",
        "document": "avtal-v2.md",
        "sha256": sv2,
    }
    versions = documents(db, round_id)
    assert versions[-1].in_language("sv").text == new_sv.read_text("utf-8")
    assert versions[-1].in_language("fi").text == TEXT_FI
    assert versions[-1].in_language("en").text == TEXT_FI  # the round's language

    report = verify(db, round_id)
    assert report.chains[0].entries == len(log_entries(db, round_id))
    cert = certificate(db, round_id)
    assert cert.titles == {"fi": TITLE_FI, "sv": TITLE_SV}
    assert [(t.language, t.sha256) for t in cert.documents[-1].texts] == [("fi", fi), ("sv", sv2)]
    assert cert.document_sha256 == done.document_sha256


def test_the_certificate_page_shows_each_languages_hash(
    db: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    from engine.runtime import render_certificate_html

    round_id = launch(db, load_agreement(_folder(tmp_path)), clock, "cora").round
    page = render_certificate_html(certificate(db, round_id), "fi")
    for sha in (sha256_text(TEXT_FI), sha256_text(TEXT_SV)):
        assert sha[:16] in re.sub(r"<[^>]+>|\s", "", page)
    assert "kieliversiot yhdessä" in page
    assert TITLE_SV in page


def test_the_evidence_pack_holds_each_languages_text(
    db: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    import io
    import zipfile

    from engine.runtime import evidence_pack

    round_id = launch(db, load_agreement(_folder(tmp_path)), clock, "cora").round
    with zipfile.ZipFile(io.BytesIO(evidence_pack(db, round_id, "sv"))) as pack:
        assert pack.read("documents/v1-fi-sopimus.md").decode() == TEXT_FI
        assert pack.read("documents/v1-sv-avtal.md").decode() == TEXT_SV
        readme = pack.read("README.txt").decode()
    assert sha256_text(TEXT_SV) in readme
    assert '"<language> <sha256>\\n"' in readme


def test_amend_on_the_command_line_takes_each_language(
    cli: CLI, database_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    path = _folder(tmp_path)
    launched = cli("launch", str(path), "--at", "2026-12-01T09:00", "--json")
    assert launched.exit_code == 0, launched.stderr
    round_id = launched.json()["round"]
    new_sv = tmp_path / "avtal-v2.md"
    new_sv.write_text(TEXT_SV + "Ändrad.\n", "utf-8")
    missing = cli("amend", round_id, str(path.parent / "sopimus.md"), "--at", "2026-12-02T09:00")
    assert missing.exit_code == 2
    assert "--text sv=FILE" in missing.stderr
    done = cli(
        "amend", round_id, str(path.parent / "sopimus.md"), "--text", f"sv={new_sv}",
        "--at", "2026-12-02T09:00", "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert done.json()["version"] == 2
    assert cli("audit", "verify", round_id).exit_code == 0
    export = tmp_path / "log.jsonl"
    exported = cli("audit", "export", round_id, "--output", str(export))
    assert exported.exit_code == 0, exported.stderr
    assert sha256_text(new_sv.read_text("utf-8")) in export.read_text("utf-8")
    alone = cli("audit", "verify", "--file", str(export))
    assert alone.exit_code == 0, alone.stderr


def test_a_language_text_changed_in_the_database_fails_verification(
    db: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    from sqlalchemy import JSON, bindparam, text

    from engine.errors import VerificationFailed
    from tests.tampering import tamper

    round_id = launch(db, load_agreement(_folder(tmp_path)), clock, "cora").round
    (stored,) = documents(db, round_id)
    changed = [
        {"language": t.language, "source": t.source, "sha256": t.sha256, "text": t.text}
        for t in stored.texts
    ]
    changed[1]["text"] = TEXT_SV.replace("samarbete", "ingenting")  # its hash left as it was
    statement = text("UPDATE documents SET texts = :texts WHERE round_id = :round").bindparams(
        bindparam("texts", type_=JSON)
    )
    tamper(db, statement, texts=changed, round=round_id)
    with pytest.raises(VerificationFailed, match="the sv text of document version 1"):
        verify(db, round_id)
    changed[1] |= {"sha256": sha256_text(changed[1]["text"])}  # rehashed: the combined one fails
    tamper(db, statement, texts=changed, round=round_id)
    with pytest.raises(VerificationFailed, match="combined SHA-256"):
        verify(db, round_id)


@pytest.mark.parametrize(
    ("head", "key", "fix"),
    [
        (
            'title = "Sopimus"\ndocument = { fi = "../outside.md" }',
            "agreement.document.fi",
            "outside the agreement file's folder",
        ),
        (
            f'title = {{ fi = "{TITLE_FI}", sv = "{TITLE_SV}" }}\n'
            'document = { fi = "sopimus.md" }',
            "agreement.title",
            "give a title and a document in each language",
        ),
        (
            f'title = {{ sv = "{TITLE_SV}" }}\ndocument = {{ sv = "avtal.md" }}',
            "agreement.language",
            "set language to one of them",
        ),
        ('title = "Sopimus"\ndocument = { fr = "sopimus.md" }', "agreement.document.fr", "fi"),
        ('title = {}\ndocument = "sopimus.md"', "agreement.title", "give at least one"),
    ],
)
def test_a_bad_bilingual_agreement_is_refused_with_its_key_and_changes_nothing(
    db: Engine, clock: FakeClock, tmp_path: Path, head: str, key: str, fix: str
) -> None:
    (tmp_path / "outside.md").write_text("outside\n", "utf-8")
    written = re.sub(r"title = \{ fi = .*\}\ndocument = \{ fi = .*\}\n", head + "\n", AGREEMENT)
    assert written != AGREEMENT
    path = _folder(tmp_path, written)
    with pytest.raises(AgreementFileError) as caught:
        launch(db, path, clock, "cora")
    problems = "\n".join(caught.value.problems)
    assert any(p.startswith(key) for p in caught.value.problems), problems
    assert fix in problems
    with transaction(db) as session:
        assert session.scalar(select(func.count()).select_from(RoundRow)) == 0


def test_a_language_text_over_the_size_limit_or_missing_is_named_by_its_key(
    db: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    from engine.runtime import MAX_DOCUMENT_BYTES

    path = _folder(tmp_path)
    (path.parent / "avtal.md").write_bytes(b"a" * (MAX_DOCUMENT_BYTES + 1))
    with pytest.raises(AgreementFileError) as caught:
        launch(db, path, clock, "cora")
    (problem,) = caught.value.problems
    assert problem.startswith("agreement.document.sv: ")
    assert "more than the limit of 2 MiB" in problem
    (path.parent / "avtal.md").unlink()
    with pytest.raises(AgreementFileError) as caught:
        load_agreement(path)
    (problem,) = caught.value.problems
    assert problem.startswith("agreement.document.sv: ")
    assert "does not exist" in problem
    # A look-alike key (U+0456, a Cyrillic i, for the i of "fi") is no language.
    (path.parent / "avtal.md").write_text(TEXT_SV, "utf-8")
    path.write_text(AGREEMENT.replace('fi = "sopimus.md"', '"f\u0456" = "sopimus.md"'), "utf-8")
    with pytest.raises(AgreementFileError) as caught:
        load_agreement(path)
    assert any("'fi', 'sv' or 'en'" in p for p in caught.value.problems)
    with transaction(db) as session:
        assert session.scalar(select(func.count()).select_from(RoundRow)) == 0


def test_swedish_and_english_body_names_are_known_bodies(
    db: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    from workflows import load_definition

    municipality = load_definition("municipality")
    for name, kind, days in [
        ("Kommunstyrelse", "board", 14),
        ("kommunfullmäktige", "council", 30),
        ("Stadsstyrelsen", "board", 14),
        ("Stadsfullmäktige", "council", 30),
        ("Municipal board", "board", 14),
        ("City council", "council", 30),
    ]:
        known = municipality.known_body(name)
        assert known is not None, name
        assert (known.kind, known.appeal_days) == (kind, days)
    county = load_definition("wellbeing-county")
    for name in ("Områdesstyrelsen", "Välfärdsområdets styrelse", "Regional board"):
        found = county.known_body(name)
        assert found is not None
        assert found.kind == "board"
    assert county.known_body("Wellbeing services county council") is not None
    regional = load_definition("regional-council")
    assert regional.known_body("Landskapsstyrelsen") is not None
    assert regional.known_body("Regionfullmäktige") is not None


def test_a_swedish_decision_reference_is_recorded_for_a_swedish_body(
    db: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    agreement = AGREEMENT.replace(
        'bodies = ["Kaupunginhallitus"]', 'bodies = ["Kommunstyrelse", "Kommunfullmäktige"]'
    )
    round_id = launch(db, load_agreement(_folder(tmp_path, agreement)), clock, "cora").round
    record(db, round_id, "hameenlinna", "submit", Evidence(), clock, "cora")
    clock.advance(days=13)  # 14.12.2026
    with pytest.raises(TransitionRefused):  # the council's reference, while the board decides
        record(
            db, round_id, "hameenlinna", "approve",
            Evidence(ref="Kommunfullmäktige 14.12.2026 § 5"), clock, "cora",
        )  # fmt: skip
    record(
        db, round_id, "hameenlinna", "approve",
        Evidence(ref="Kommunstyrelsen 14.12.2026 § 5"), clock, "cora",
    )  # fmt: skip
    approved = [e for e in log_entries(db, round_id) if e["event"] == "approve"]
    assert approved[-1]["evidence"]["decision"] == "Kommunstyrelsen 14.12.2026 § 5"
    assert approved[-1]["to_state"] == "council_review"
    assert verify(db, round_id).chains[0].entries == len(log_entries(db, round_id))


FINNISH = sorted(
    path
    for path in (Path(__file__).parent.parent / "templates" / "email").glob("*.j2")
    if ".fi." in path.name
)
FINNISH_WEB = Path(__file__).parent.parent / "templates" / "web" / "strings"


def test_the_finnish_texts_keep_one_formal_register_and_name_the_signatory_rightly() -> None:
    import tomllib

    assert len(FINNISH) == 25  # twelve kinds of message, text and HTML, and the shared strings
    texts = {path.name: path.read_text("utf-8") for path in FINNISH}
    for table in FINNISH_WEB.glob("*.toml"):
        texts[table.name] = "\n".join(
            tomllib.loads(table.read_text("utf-8")).get("fi", {}).values()
        )
    for name, text in texts.items():
        assert "Älä " not in text, name
        assert "valtuutettu" not in text.casefold(), name
        assert "Säilytä " not in text, name
    assert "allekirjoitusoikeuden omaava henkilö" in texts["_lang.fi.j2"]


def test_a_finnish_email_writes_its_times_with_klo_and_a_swedish_one_with_kl(
    db: Engine, clock: FakeClock, smtp: SmtpServer, tmp_path: Path
) -> None:
    from notifications.render import write_moment

    site = _site(db, clock, smtp, tmp_path)
    record(db, site.round_id, "kanta-hame", "submit", Evidence(), clock, "cora")
    site.tick()
    _, finnish, html, _ = _parts(_to(smtp, FINN, "receipt"))
    assert "1.12.2026 klo 9.00" in finnish  # the round's local time of the launch clock
    assert "1.12.2026 klo 9.00" in html
    _, swedish, _, _ = _parts(_to(smtp, SWEDE, "receipt"))
    assert "1.12.2026 kl. 9.00" in swedish
    assert TITLE_FI not in swedish
    from datetime import datetime

    moment = datetime(2026, 12, 8, 9, 0)  # noqa: DTZ001  (a wall-clock time, written as it is)
    assert write_moment(moment, "fi") == "8.12.2026 klo 9.00"
    assert write_moment(moment, "sv", "short") == "8.12.2026 kl. 9.00"
    assert write_moment(moment, "en") == "8 December 2026, 09:00"


def test_the_readme_example_is_the_bilingual_example_file() -> None:
    import tomllib

    root = Path(__file__).parent.parent
    readme = (root / "README.md").read_text("utf-8")
    start = readme.index("### Bilingual agreements")
    block = re.search(r"```toml\n(.*?)```", readme[start:], re.S)
    assert block is not None
    shown = tomllib.loads(block.group(1))["agreement"]
    example = root / "examples" / "vastra-nyland" / "agreement.toml"
    written = tomllib.loads(example.read_text("utf-8"))["agreement"]
    assert shown == {k: written[k] for k in shown}
    agreement = load_agreement(example)
    assert agreement.languages == ("sv", "fi")
    assert agreement.text_in("fi") is not None
    assert agreement.document_sha256 == combined_sha256(
        {t.language: t.sha256 for t in agreement.texts}
    )
