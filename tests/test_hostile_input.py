"""What a hostile tester tried: look-alike signatories, documents from outside the agreement's
folder, line breaks smuggled into names, inputs that used to end in a traceback, and odd --at
values. Each gets a clear error (exit 2, nothing written) or the right refusal."""

from __future__ import annotations

import copy
import os
import shutil
import sys
import tempfile
import unicodedata
from collections.abc import Callable
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from engine.agreement import (
    MAX_DOCUMENT_BYTES,
    MAX_FILE_BYTES,
    Agreement,
    load_agreement,
    read_document,
)
from engine.core.evidence import Evidence, mixed_scripts, same_person
from engine.core.text import check_evidence_text, check_line, line_problem
from engine.errors import PLAIN, AgreementFileError, InvalidInput
from engine.interfaces.common import CLI_WORDS, clock_at, parse_at
from tests.conftest import CLI, Ran, cli_on
from tests.test_rules import NO_WAIT, launch, ok, rec, refused, sign_args

MakeAgreement = Callable[..., Path]

# --- 1. the identity of a signatory -------------------------------------------------------------

SAME_AS_AINO = [
    pytest.param("AINO  ESIMERKKI", id="case-and-double-space"),
    pytest.param("Aino\u200bEsimerkki", id="zero-width-space"),
    pytest.param("Ai\u00adno Esimerkki", id="soft-hyphen"),
    pytest.param("Aino\u200d Esimerkki", id="zero-width-joiner"),
    pytest.param("\u200fAino Esimerkki\u200e", id="bidi-marks"),
    pytest.param("\ufeffAino Esimerkki", id="bom"),
    pytest.param("Aino\u00a0Esimerkki", id="no-break-space"),
    pytest.param("Aino\u3000Esimerkki", id="ideographic-space"),
    pytest.param(
        "\uff21\uff49\uff4e\uff4f \uff25\uff53\uff49\uff4d\uff45\uff52\uff4b\uff4b\uff49",
        id="fullwidth",
    ),
    pytest.param("Aino Esimerk\ufe0fki", id="variation-selector"),
]


@pytest.mark.parametrize("variant", SAME_AS_AINO)
def test_one_signatory_however_the_name_is_written(variant: str) -> None:
    assert variant != "Aino Esimerkki"
    assert same_person("Aino Esimerkki", variant)
    assert same_person(variant, "aino esimerkki")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Aino Esimerkki", "Aino Esimerkk"),
        ("Aino Esimerkki", "Aïno Esimerkki"),  # a diaeresis makes another letter
        ("Aino Esimerkki", "\u0410ino Esimerkki"),  # so does a Cyrillic A
        ("Sari Mäkinen", "Sari Makinen"),
    ],
)
def test_different_names_stay_different(a: str, b: str) -> None:
    assert not same_person(a, b)


def test_dashes_and_apostrophes_are_written_many_ways() -> None:
    assert same_person("Anna-Maija O'Brien", "Anna\u2010Maija O\u2019Brien")
    assert same_person("Anna-Maija O'Brien", "ANNA\u2013MAIJA O\u02bcBRIEN")


@pytest.mark.parametrize(
    "name",
    [
        "Aino Esimerkki",
        "Åsa Öberg-Ärlig",
        "Jean-Éric O'Brien Jr.",
        "Žaneta Čermáková",
        "Ηλίας Παπαδόπουλος",  # Greek alone
        "Наталья Иванова",  # Cyrillic alone
        "山田 はなこ",  # kanji and hiragana: one (CJK) script
        "\uff21\uff49\uff4e\uff4f",  # fullwidth Latin is Latin
    ],
)
def test_a_name_in_one_script_is_fine(name: str) -> None:
    assert mixed_scripts(name) == []


@pytest.mark.parametrize(
    ("name", "odd"),
    [
        ("\u0410ino Esimerkki", ("CYRILLIC", "\u0410")),
        ("Aino Esim\u0435rkki", ("CYRILLIC", "\u0435")),
        ("Ai\u03bfno Esimerkki", ("GREEK", "\u03bf")),
    ],
)
def test_a_name_mixing_scripts_is_found(name: str, odd: tuple[str, str]) -> None:
    scripts = mixed_scripts(name)
    assert [s for s, _ in scripts] == ["LATIN", odd[0]]
    assert scripts[1][1] == odd[1]


def _signed_once(cli: CLI, db: Engine, agreement_file: MakeAgreement) -> str:
    """A round whose party 'alpha' needs two signatures and has one, by Aino Esimerkki."""
    party = {"id": "alpha", "name": "Alpha", "signatures_required": 2, **NO_WAIT}
    round_id = launch(cli, agreement_file([party]))
    rec(db, "record", round_id, "alpha", "submit", "--at", "2026-12-02T09:00")
    rec(
        db, "record", round_id, "alpha", "approve",
        "--ref", "Kunnanhallitus 07.12.2026 § 3", "--at", "2026-12-07T18:00",
    )  # fmt: skip
    rec(db, *sign_args(round_id, "alpha", "Aino Esimerkki", "2026-12-08T10:00"))
    return round_id


def test_a_look_alike_second_signature_is_refused(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = _signed_once(cli, db, agreement_file)
    for param in SAME_AS_AINO:
        (variant,) = param.values
        assert isinstance(variant, str)
        sign = sign_args(round_id, "alpha", variant, "2026-12-08T11:00")
        message = refused(cli, db, round_id, 1, *sign)
        assert "has already signed" in message, (variant, message)
    # Someone else may still sign.
    ok(cli, *sign_args(round_id, "alpha", "Bertta Koskinen", "2026-12-08T12:00"))


def test_a_signatory_name_mixing_scripts_is_refused_outright(
    cli: CLI, db: Engine, agreement_file: MakeAgreement
) -> None:
    round_id = _signed_once(cli, db, agreement_file)
    sign = sign_args(round_id, "alpha", "\u0410ino Virtanen", "2026-12-08T11:00")
    message = " ".join(refused(cli, db, round_id, 2, *sign).split())
    assert "--signatory mixes Latin letters with letters of another script" in message
    assert "U+0410 CYRILLIC CAPITAL LETTER A" in message
    assert "write every letter of the name in one script" in message


def test_a_listed_signatory_is_checked_the_same_way(tmp_path: Path) -> None:
    from tests.conftest import write_agreement

    twice = [
        {"name": "Aino Esimerkki", "title": "kunnanjohtaja"},
        {"name": "AINO\u200bESIMERKKI", "title": "puheenjohtaja"},
    ]
    path = write_agreement(tmp_path, [{"id": "alpha", "name": "Alpha", "signatories": twice}])
    with pytest.raises(AgreementFileError) as caught:
        load_agreement(path)
    (problem,) = caught.value.problems
    assert problem.startswith(
        "parties[0] (id 'alpha').signatories[1]: 'AINO\\u200bESIMERKKI' is listed twice"
    )  # the invisible character shown as its escape
    mixed = [{"name": "Bertta Kosk\u0456nen", "title": "puheenjohtaja"}]  # a Ukrainian i
    path = write_agreement(tmp_path, [{"id": "alpha", "name": "Alpha", "signatories": mixed}])
    with pytest.raises(AgreementFileError) as caught:
        load_agreement(path)
    (problem,) = caught.value.problems
    assert problem.startswith("parties[0] (id 'alpha').signatories[0].name: mixes Latin letters")
    assert "U+0456" in problem


# --- 3. text fields: one line, bounded ---------------------------------------------------------

# Every code point a line may not hold: controls (Cc), line and paragraph separators (Zl, Zp).
NOT_IN_A_LINE = [
    chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in ("Cc", "Zl", "Zp")
]


def test_every_control_and_separator_is_refused_in_a_line() -> None:
    assert {"\n", "\r", "\x00", "\x85", "\u2028", "\u2029", "\x1c", "\x0b"} <= set(NOT_IN_A_LINE)
    for ch in NOT_IN_A_LINE:
        assert line_problem(f"Sopimus{ch}Bcc: x@example.invalid") is not None, hex(ord(ch))
    # A reason may hold plain line breaks, and nothing else of the kind.
    for ch in NOT_IN_A_LINE:
        assert (line_problem(f"a{ch}b", lines=True) is None) == (ch == "\n"), hex(ord(ch))
    assert line_problem("Hämeenlinnan kaupunki \u2013 Tavastehus stad") is None


def test_a_line_check_names_its_input_with_a_marker() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_line("Kim\u2028Bcc: x@example.invalid", "by", limit=200)
    assert caught.value.template.startswith("{opt.by} ")
    assert "--" not in caught.value.template
    assert caught.value.worded(CLI_WORDS).startswith("--by contains a Unicode line")
    assert str(caught.value).startswith(PLAIN.option("by"))
    assert check_line("  Kim Test ", "by", limit=200) == "Kim Test"
    with pytest.raises(InvalidInput, match="201 characters long; keep it to 200"):
        check_line("k" * 201, "by", limit=200)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ref", "Kunnanhallitus 07.12.2026 § 3\u2028Bcc: x"),
        ("diary", "11026/00.01.00/2025\x85"),
        ("signatory", "Aino\u2029Esimerkki"),
        ("title", "kunnanjohtaja\x1c"),
        ("reason", "first line\u2028second"),
        ("reason", "bell\x07"),
    ],
)
def test_evidence_refuses_separators_and_controls(key: str, value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_evidence_text(Evidence(**{key: value}))
    assert caught.value.template.startswith(f"{{opt.{key}}} ")
    assert caught.value.field == key


def test_a_reason_keeps_its_line_breaks() -> None:
    checked = check_evidence_text(Evidence(reason="first\r\nsecond\nthird"))
    assert checked.reason == "first\nsecond\nthird"


def test_the_actor_is_one_bounded_line(cli: CLI, agreement_file: MakeAgreement) -> None:
    path = str(agreement_file())
    for by, complaint in (
        ("Kim\u2028Bcc: x@example.invalid", "--by contains a Unicode line or paragraph separator"),
        ("Kim\x85Test", "--by contains a line break or another control character (U+0085)"),
        ("K" * 201, "--by is 201 characters long; keep it to 200"),
        ("Kim\udcffTest", "--by contains bytes that are not valid UTF-8"),
    ):
        ran = cli("launch", path, "--by", by, "--at", "2026-12-01")
        assert ran.exit_code == 2, (by, ran.stderr)
        assert complaint in " ".join(ran.stderr.split()), ran.stderr
    ran = cli("launch", path, "--at", "2026-12-01", env={"RATIFY_ACTOR": "Kim\u2029Test"})
    assert ran.exit_code == 2
    assert "RATIFY_ACTOR: contains a Unicode line or paragraph separator" in ran.stderr
    assert cli("status", "--json").json() == []
    ran = cli("launch", path, "--at", "2026-12-01", "--by", "K" * 200, "--json")
    assert ran.exit_code == 0, ran.stderr
    entries = cli("audit", "log", ran.json()["round"], "--json").json()
    assert entries[0]["actor"] == "K" * 200


def test_a_mail_setting_with_a_line_break_is_refused(cli: CLI) -> None:
    ran = cli("status", env={"RATIFY_MAIL_FROM": "ratify <r@example.invalid>\u2028Bcc: x"})
    assert ran.exit_code == 2
    assert "RATIFY_MAIL_FROM" in ran.stderr


FILE_TEXT = [
    pytest.param("title", "agreement.title", id="agreement-title"),
    pytest.param("party", "parties[0] (id 'alpha').name", id="party-name"),
    pytest.param("contact", "parties[0] (id 'alpha').contacts[0].name", id="contact-name"),
    pytest.param("signatory", "parties[0] (id 'alpha').signatories[0].name", id="signatory"),
    pytest.param("signatory-title", "parties[0] (id 'alpha').signatories[0].title", id="title"),
    pytest.param("body", "parties[0] (id 'alpha').bodies[0].name", id="body"),
]


def _file_with(tmp_path: Path, where: str, value: str) -> Path:
    from tests.conftest import write_agreement

    party: dict[str, object] = {"id": "alpha", "name": "Alpha"}
    agreement: dict[str, object] = {}
    if where == "title":
        agreement["title"] = value
    elif where == "party":
        party["name"] = value
    elif where == "contact":
        party["contacts"] = [{"name": value, "email": "kim@example.invalid"}]
    elif where == "signatory":
        party["signatories"] = [{"name": value, "title": "kunnanjohtaja"}]
    elif where == "signatory-title":
        party["signatories"] = [{"name": "Aino Esimerkki", "title": value}]
    else:
        party["bodies"] = [{"name": value, "appeal_days": 14}]
    return write_agreement(tmp_path, [party], agreement=agreement)


BREAK = "@BREAK@"


def _with_break(path: Path, breaker: str) -> Path:
    """The file with each BREAK written as the TOML escape of ``breaker``: the value read holds
    the real character (written raw, a control character would be invalid TOML)."""
    text = path.read_text("utf-8")
    assert BREAK in text
    path.write_text(text.replace(BREAK, f"\\u{ord(breaker):04X}"), "utf-8")
    return path


@pytest.mark.parametrize(("where", "key"), FILE_TEXT)
@pytest.mark.parametrize("breaker", ["\u2028", "\u2029", "\x85", "\r", "\x1e", "\x0b"])
def test_a_line_break_in_any_name_or_title_of_the_file_is_refused(
    tmp_path: Path, where: str, key: str, breaker: str
) -> None:
    path = _with_break(_file_with(tmp_path, where, f"Alku{BREAK}Bcc: x@example.invalid"), breaker)
    with pytest.raises(AgreementFileError) as caught:
        load_agreement(path)
    text = "\n".join(caught.value.problems)
    assert f"{key}: contains a " in text, text
    assert f"U+{ord(breaker):04X}" in text
    assert "write it on one line" in text


@pytest.mark.parametrize(("where", "key"), FILE_TEXT)
def test_names_and_titles_of_the_file_are_bounded(tmp_path: Path, where: str, key: str) -> None:
    limit = 100 if where == "body" else 200
    with pytest.raises(AgreementFileError) as caught:
        load_agreement(_file_with(tmp_path, where, "N" * (limit + 1)))
    text = "\n".join(caught.value.problems)
    assert f"{key}: is longer than {limit} characters ({limit + 1}); shorten it" in text
    # At the limit it is fine (a body unknown to the workflow is described with a table).
    load_agreement(_file_with(tmp_path, where, "N" * limit))


# --- 5. --at: empty, or out of range -----------------------------------------------------------


@pytest.mark.parametrize("blank", ["", " ", "\t  "])
def test_an_empty_at_is_an_error_not_the_system_time(
    cli: CLI, agreement_file: MakeAgreement, blank: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        clock_at(blank)
    assert caught.value.field == "at"
    ran = cli("launch", str(agreement_file()), "--at", blank)
    assert ran.exit_code == 2
    message = " ".join(ran.stderr.split())
    assert "--at is empty; give a date or a date-time" in message
    assert "or leave --at out" in message
    assert cli("status", "--json").json() == []


@pytest.mark.parametrize("moment", ["0001-01-01", "9999-12-31", "1969-12-31T23:59", "9001-01-01"])
def test_an_at_beyond_the_supported_years_says_so(
    cli: CLI, agreement_file: MakeAgreement, moment: str
) -> None:
    with pytest.raises(
        InvalidInput, match=r"year is outside the supported range \(1970\u20139000\)"
    ):
        parse_at(moment)
    ran = cli("launch", str(agreement_file()), "--at", moment)
    assert ran.exit_code == 2
    assert "not an ISO date" not in ran.stderr
    assert (
        f"--at '{moment}': the year is outside the supported range (1970\u20139000)" in ran.stderr
    )
    assert cli("status", "--json").json() == []


def test_the_ends_of_the_supported_years_are_fine() -> None:
    assert parse_at("1970-01-01").year == 1970
    assert parse_at("9000-12-31T23:59").year == 9000
    with pytest.raises(InvalidInput, match="not an ISO date"):
        parse_at("2026-13-01")


# --- 2. the document: a regular UTF-8 file, inside the agreement's folder, bounded --------------

LIMIT = MAX_DOCUMENT_BYTES


def _agreement_in(folder: Path, document: str) -> Path:
    from tests.conftest import write_agreement

    folder.mkdir(parents=True, exist_ok=True)
    path = write_agreement(folder, [{"id": "alpha", "name": "Alpha"}])
    (folder / "agreement.md").unlink()  # only the document under test is there
    text = path.read_text("utf-8").replace('document = "agreement.md"', f"document = {document!r}")
    assert f"document = {document!r}" in text
    path.write_text(text, "utf-8")
    return path


def _escaping_with_dots(tmp_path: Path) -> Path:
    path = _agreement_in(tmp_path / "inner", "../outside.md")
    (tmp_path / "outside.md").write_text("Another text.\n", "utf-8")
    return path


def _absolute(tmp_path: Path) -> Path:
    text = tmp_path / "inner" / "agreement.md"
    path = _agreement_in(tmp_path / "inner", str(text))
    text.write_text("The text.\n", "utf-8")
    return path


def _symlink_out(tmp_path: Path) -> Path:
    path = _agreement_in(tmp_path / "inner", "agreement.md")
    (tmp_path / "secret.md").write_text("Not for the round.\n", "utf-8")
    (tmp_path / "inner" / "agreement.md").symlink_to(tmp_path / "secret.md")
    return path


def _a_directory(tmp_path: Path) -> Path:
    path = _agreement_in(tmp_path, "texts")
    (tmp_path / "texts").mkdir()
    return path


def _a_fifo(tmp_path: Path) -> Path:
    path = _agreement_in(tmp_path, "agreement.md")
    os.mkfifo(tmp_path / "agreement.md")  # reading it would wait for a writer forever
    return path


def _not_utf8(tmp_path: Path) -> Path:
    path = _agreement_in(tmp_path, "agreement.md")
    (tmp_path / "agreement.md").write_bytes("Sopimus Hämeenlinnan kanssa.\n".encode("latin-1"))
    return path


def _too_large(tmp_path: Path) -> Path:
    path = _agreement_in(tmp_path, "agreement.md")
    (tmp_path / "agreement.md").write_bytes(b"x" * (LIMIT + 1))
    return path


def _with_nul(tmp_path: Path) -> Path:
    path = _agreement_in(tmp_path, "agreement.md")
    (tmp_path / "agreement.md").write_bytes(b"The text.\x00\n")  # UTF-8; PostgreSQL refuses it
    return path


BAD_DOCUMENTS = [
    pytest.param(_escaping_with_dots, "is outside the agreement file's folder", id="dot-dot"),
    pytest.param(_absolute, "is an absolute path", id="absolute"),
    pytest.param(_symlink_out, "is outside the agreement file's folder", id="symlink-out"),
    pytest.param(_a_directory, "is a directory", id="directory"),
    pytest.param(_a_fifo, "is not a regular file", id="fifo"),
    pytest.param(_not_utf8, "is not UTF-8", id="not-utf8"),
    pytest.param(_too_large, f"{LIMIT + 1} bytes, more than the limit of 2 MiB", id="too-large"),
    pytest.param(_with_nul, "contains a NUL character", id="nul"),
]


@pytest.mark.parametrize(("build", "complaint"), BAD_DOCUMENTS)
def test_a_document_that_is_not_a_text_in_the_folder_is_refused(
    cli: CLI, tmp_path: Path, build: Callable[[Path], Path], complaint: str
) -> None:
    path = build(tmp_path)
    ran = cli("launch", str(path), "--json")
    assert ran.exit_code == 2, ran.stdout + ran.stderr
    message = " ".join(ran.stderr.split())
    assert "agreement.document: " in message
    assert complaint in message, message
    assert "a UTF-8 file of at most 2 MiB in this file's folder" in message
    assert cli("status", "--json").json() == []


def test_a_document_below_the_folder_or_linked_within_it_is_fine(tmp_path: Path) -> None:
    path = _agreement_in(tmp_path, "texts/v1.md")
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "v1.md").write_text("The text.\r\n", "utf-8")
    agreement = load_agreement(path)
    assert agreement.document == "The text.\n"
    linked = _agreement_in(tmp_path, "./texts/../agreement.md")
    (tmp_path / "agreement.md").symlink_to(tmp_path / "texts" / "v1.md")
    assert load_agreement(linked).document_sha256 == agreement.document_sha256
    (tmp_path / "texts" / "max.md").write_bytes(b"y" * LIMIT)
    assert len(load_agreement(_agreement_in(tmp_path, "texts/max.md")).document) == LIMIT


def test_read_document_names_the_text_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "outside.md").write_text("x\n", "utf-8")
    (tmp_path / "inner").mkdir()
    with pytest.raises(InvalidInput) as caught:
        read_document(Path("../outside.md"), folder=tmp_path / "inner")
    assert caught.value.field == "document"
    assert "outside the agreement file's folder" in str(caught.value)
    # Without a folder (a text given to amend) only the file itself is checked.
    assert read_document(tmp_path / "outside.md") == "x\n"
    with pytest.raises(InvalidInput, match="is a directory"):
        read_document(tmp_path)


AMEND_BAD = [
    p for p in BAD_DOCUMENTS if p.id in ("directory", "fifo", "not-utf8", "too-large", "nul")
]


@pytest.mark.parametrize(("build", "complaint"), AMEND_BAD)
def test_amend_refuses_a_text_that_is_not_one(
    cli: CLI,
    db: Engine,
    agreement_file: MakeAgreement,
    tmp_path: Path,
    build: Callable[[Path], Path],
    complaint: str,
) -> None:
    round_id = launch(cli, agreement_file())
    build(tmp_path / "new")
    document = tmp_path / "new" / ("texts" if complaint == "is a directory" else "agreement.md")
    amend = ("amend", round_id, str(document), "--reason", "v2", "--at", "2026-12-02")
    message = " ".join(refused(cli, db, round_id, 2, *amend).split())
    assert complaint in message, message
    assert str(document) in message


def test_amend_takes_a_text_from_anywhere(
    cli: CLI, db: Engine, agreement_file: MakeAgreement, tmp_path: Path
) -> None:
    round_id = launch(cli, agreement_file())
    elsewhere = tmp_path / "elsewhere" / "v2.md"
    elsewhere.parent.mkdir()
    elsewhere.write_text("The amended text.\n", "utf-8")
    ok(cli, "amend", round_id, str(elsewhere), "--reason", "v2", "--at", "2026-12-02")
    assert cli("status", round_id, "--json").json()["document_version"] == 2


# --- 4. no traceback, whatever the input ------------------------------------------------------


def _one_problem(ran: Ran, path: str) -> str:
    """The message of a refused launch: a heading and one line, and no traceback."""
    assert ran.exit_code == 2, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr
    heading, problem, *rest = ran.stderr.strip().splitlines()
    assert heading == f"error: {path}: invalid agreement file"
    assert rest == []
    return problem


def test_deeply_nested_toml_is_refused_not_a_recursion_error(cli: CLI, tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n", "utf-8")
    problem = _one_problem(cli("launch", str(path)), str(path))
    assert "nest too deeply; flatten them" in problem
    with pytest.raises(AgreementFileError):
        load_agreement(path)


def test_a_huge_file_is_refused_by_its_size_before_it_is_parsed(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tomllib

    def never(_: str) -> object:
        raise AssertionError("a file over the limit was parsed")

    monkeypatch.setattr(tomllib, "loads", never)
    path = tmp_path / "huge.toml"
    with path.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: 50 MB without writing them
    problem = _one_problem(cli("launch", str(path)), str(path))
    assert f"{50 * 1024 * 1024} bytes, more than the limit of 1 MiB" in problem
    assert MAX_FILE_BYTES == 1024 * 1024


def test_a_path_with_a_nul_byte_is_invalid_input(cli: CLI) -> None:
    with pytest.raises(AgreementFileError) as caught:
        load_agreement("a\x00b")
    assert "NUL" in caught.value.problems[0]
    ran = cli("launch", "a\x00b")
    assert ran.exit_code == 2
    assert "null byte" in ran.stderr
    with pytest.raises(InvalidInput, match="NUL"):
        read_document(Path("a\x00b"))


def test_undecodable_arguments_are_invalid_input(
    cli: CLI, tmp_path: Path, agreement_file: MakeAgreement
) -> None:
    # A UTF-8 locale hands Python the bytes of an argument that are not UTF-8 as lone surrogates.
    good_path = agreement_file()
    raw = os.fsencode(tmp_path) + b"/agreement-\xff.toml"
    shutil.copy(os.fsencode(good_path), raw)
    undecodable = os.fsdecode(raw)
    assert "\udcff" in undecodable
    ran = cli("launch", undecodable)
    assert ran.exit_code == 2
    assert "not valid UTF-8" in ran.stderr
    good = str(good_path)
    for args in (
        ("--by", "Kim\udcffTest"),
        ("--at", "2026-12-01\udcff"),
    ):
        ran = cli("launch", good, *args)
        assert ran.exit_code == 2, (args, ran.stderr)
        assert "Traceback" not in ran.stderr
    round_id = launch(cli, good_path)
    text = os.fsencode(tmp_path) + b"/v2-\xff.md"
    with open(text, "wb") as handle:  # it exists; its name is what cannot be recorded
        handle.write(b"The amended text.\n")
    ran = cli("amend", round_id, os.fsdecode(text), "--at", "2026-12-02")
    assert (ran.exit_code, "not valid UTF-8" in ran.stderr) == (2, True)
    ran = cli("record", round_id, "alpha", "submit", "--diary", "1/\udcff", "--at", "2026-12-02")
    assert (ran.exit_code, "--diary contains bytes that are not valid UTF-8" in ran.stderr) == (
        2,
        True,
    )


# Random agreement files: a valid one, its structure mutated and serialised to TOML, or its text
# mutated. The loader returns an Agreement or raises AgreementFileError, nothing else.

TRICKY = "\u2028\u2029\x85\x00\r\n\t\u200b\u00ad\ufeff\u0410\"\\[]={}.#'é"
texts = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(TRICKY), max_size=40)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    texts,
    st.sampled_from(["", "alpha", "municipality", "Kunnanhallitus", "kim@example.invalid"]),
    st.dates(),
    st.datetimes(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)

BASE: dict[str, Any] = {
    "agreement": {
        "id": "fuzz-agreement",
        "title": "Fuzz agreement",
        "document": "agreement.md",
        "language": "fi",
        "deadline": date(2027, 3, 31),
    },
    "coordinator": {"name": "Cora Coordinator", "email": "cora@example.invalid"},
    "parties": [
        {
            "id": "alpha",
            "name": "Alpha",
            "workflow": "municipality",
            "bodies": ["Kunnanhallitus", {"name": "Kunnanvaltuusto", "appeal_days": 30}],
            "signatures_required": 2,
            "signatories": [
                {"name": "Aino Esimerkki", "title": "kunnanjohtaja"},
                {"name": "Bertta Koskinen", "title": "puheenjohtaja"},
            ],
            "contacts": [{"name": "Kim Test", "email": "kim@example.invalid", "language": "sv"}],
        }
    ],
    "reminders": {"first_after_days": 10, "quiet_periods": [["07-01", "07-31"]]},
}


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml(value: Any) -> str:
    """``value`` as a TOML value (tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if value != value else repr(value)  # inf, -inf: TOML's words too
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (date, time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{_string(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def dumps(document: dict[str, Any]) -> str:
    return "".join(f"{_string(k)} = {_toml(v)}\n" for k, v in document.items())


@st.composite
def mutated_structures(draw: st.DrawFn) -> str:
    document = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        node: Any = document
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            key = draw(st.sampled_from(keys))
            if not isinstance(node[key], (dict, list)) or draw(st.integers(0, 3)) == 0:
                action = draw(st.sampled_from(["replace", "delete"]))
                if action == "delete":
                    del node[key]
                else:
                    node[key] = draw(values)
                break
            node = node[key]
        else:
            if isinstance(node, dict):
                node[draw(texts)] = draw(values)
            elif isinstance(node, list):
                node.append(draw(values))
    return dumps(document)


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    text = dumps(BASE)
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 20)))
    return text[:start] + draw(texts) + text[end:]


agreement_texts = st.one_of(mutated_structures(), mutated_texts(), texts)


def test_the_fuzz_base_is_a_valid_agreement(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(dumps(BASE), "utf-8")
    (tmp_path / "agreement.md").write_text("The text.\n", "utf-8")
    agreement = load_agreement(path)
    assert agreement.parties[0].signatories[1].name == "Bertta Koskinen"


@settings(max_examples=300, deadline=None)
@given(source=agreement_texts)
def test_any_agreement_file_loads_or_is_an_agreement_file_error(source: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.toml"
        path.write_text(source, "utf-8")
        (Path(folder) / "agreement.md").write_text("The text.\n", "utf-8")
        result = _load(path)
    if isinstance(result, AgreementFileError):
        assert result.problems
        assert all(p and "\n" not in p for p in result.problems), result.problems
    else:
        assert isinstance(result, Agreement)


def _load(path: Path) -> Agreement | AgreementFileError:
    try:
        return load_agreement(path)
    except AgreementFileError as exc:
        return exc


@settings(max_examples=60, deadline=None)
@given(source=agreement_texts, raw=st.binary(max_size=64))
def test_launching_any_file_exits_0_or_2_without_a_traceback(source: str, raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.toml"
        # Now and then bytes that are not UTF-8 at all.
        path.write_bytes(source.encode() if raw[:1] != b"\xff" else raw)
        (Path(folder) / "agreement.md").write_text("The text.\n", "utf-8")
        run = cli_on(f"sqlite:///{folder}/ratify.db")  # raises whatever is not an exit
        ran = run("launch", str(path), "--at", "2026-12-01T09:00")
        assert ran.exit_code in (0, 2), ran.stderr
        assert "Traceback" not in ran.stderr + ran.stdout
        if ran.exit_code == 2:
            assert ran.stderr.startswith("error: ")
