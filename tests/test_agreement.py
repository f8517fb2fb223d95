"""The agreement file: the loader on good and bad files, and `ratify launch` refusing bad ones."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from engine.agreement import load_agreement
from engine.errors import AgreementFileError
from tests.conftest import CLI, write_agreement
from workflows import Body, load_definition

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kanta-hame" / "agreement.toml"
COORDINATOR = '[coordinator]\nname = "Cora Coordinator"\nemail = "cora@example.invalid"\n'

Builder = Callable[[Path], Path]


def _alpha_and(party: dict[str, Any], **kwargs: Any) -> Builder:
    """A file with a good party 'alpha' first, then ``party`` (the one with the problem)."""

    def build(folder: Path) -> Path:
        return write_agreement(folder, [{"id": "alpha", "name": "Alpha"}, party], **kwargs)

    return build


def _one_party(**kwargs: Any) -> Builder:
    def build(folder: Path) -> Path:
        return write_agreement(folder, [{"id": "alpha", "name": "Alpha"}], **kwargs)

    return build


def _without_coordinator(folder: Path) -> Path:
    path = write_agreement(folder, [{"id": "alpha", "name": "Alpha"}])
    text = path.read_text("utf-8")
    assert COORDINATOR in text  # the helper's layout changed: this case would test nothing
    path.write_text(text.replace(COORDINATOR, ""), "utf-8")
    return path


def _without_document(folder: Path) -> Path:
    path = write_agreement(folder, [{"id": "alpha", "name": "Alpha"}])
    (folder / "agreement.md").unlink()
    return path


def _invalid_toml(folder: Path) -> Path:
    path = write_agreement(folder, [{"id": "alpha", "name": "Alpha"}])
    path.write_text('[agreement\nid = "test-agreement"\n', "utf-8")
    return path


def _no_such_file(folder: Path) -> Path:
    return folder / "no-such-agreement.toml"


# Each case: how to write the bad file, and what the message must say besides the file's path:
# the key (with the party's id where the key is in a party) and the fix.
BAD_FILES = [
    pytest.param(
        _alpha_and({"id": "beta", "name": "Beta", "colour": "red"}),
        ["parties[1] (id 'beta').colour", "not a known key", "remove it or check its spelling"],
        id="unknown-party-key",
    ),
    pytest.param(
        _one_party(agreement={"owner": "Somebody"}),
        ["agreement.owner", "not a known key", "remove it or check its spelling"],
        id="unknown-agreement-key",
    ),
    pytest.param(
        _one_party(extra="\n[signing]\norder = 'parallel'\n"),
        ["signing", "not a known key", "[agreement], [coordinator], [[parties]] and [reminders]"],
        id="unknown-table",
    ),
    pytest.param(
        _one_party(extra="\n[reminders]\nevery_days = 0\nsend_at = '25:00'\n"),
        ["reminders.every_days", "reminders.send_at"],
        id="bad-reminders",
    ),
    pytest.param(
        _one_party(extra="\n[reminders]\nevry_days = 7\n"),
        ["reminders.evry_days", "not a known key"],
        id="unknown-reminders-key",
    ),
    pytest.param(
        _one_party(agreement={"title": None}),
        ["agreement.title", "is required", "add it"],
        id="missing-agreement-title",
    ),
    pytest.param(
        _without_coordinator,
        ["coordinator", "is required", "add it"],
        id="missing-coordinator",
    ),
    pytest.param(
        _alpha_and({"id": "beta"}),
        ["parties[1] (id 'beta').name", "is required", "add it"],
        id="missing-party-name",
    ),
    pytest.param(
        _alpha_and(
            {
                "id": "beta",
                "name": "Beta",
                "contacts": [{"name": "Bo Beta", "email": "bo.beta.example.fi"}],
            }
        ),
        [
            "parties[1] (id 'beta').contacts[0].email",
            "'bo.beta.example.fi' is not valid",
            "write an address like name@example.fi",
        ],
        id="bad-email",
    ),
    pytest.param(
        _alpha_and({"id": "alpha", "name": "Alpha again"}),
        ["parties[1] (id 'alpha').id", "used by an earlier party", "give each a unique id"],
        id="duplicate-party-id",
    ),
    pytest.param(
        _alpha_and({"id": "beta", "name": "Beta", "workflow": "parish"}),
        [
            "parties[1] (id 'beta').workflow",
            "unknown workflow 'parish'",
            "municipality, regional-council, wellbeing-county",
        ],
        id="unknown-workflow",
    ),
    pytest.param(
        _alpha_and({"id": "beta", "name": "Beta", "bodies": ["Yhtymähallitus"]}),
        [
            "parties[1] (id 'beta').bodies[0]",
            "does not know body 'Yhtymähallitus'",
            '{ name = "Yhtymähallitus", appeal_days = 14 }',
        ],
        id="unknown-body",
    ),
    pytest.param(
        _alpha_and(
            {
                "id": "beta",
                "name": "Beta",
                "bodies": ["Kunnanhallitus", "Kunnanvaltuusto", "Kaupunginvaltuusto"],
            }
        ),
        ["parties[1] (id 'beta').bodies", "give one body, or two", "got 3"],
        id="three-bodies",
    ),
    pytest.param(
        _alpha_and({"id": "beta", "name": "Beta", "bodies": ["Kunnanvaltuusto", "Kunnanhallitus"]}),
        [
            "parties[1] (id 'beta').bodies",
            "Kunnanvaltuusto (council) then Kunnanhallitus (board)",
            "list the board first",
        ],
        id="council-before-board",
    ),
    pytest.param(
        _alpha_and({"id": "beta", "name": "Beta", "bodies": [{"name": "Yhtymähallitus"}]}),
        [
            "parties[1] (id 'beta').bodies[0]",
            "does not know body 'Yhtymähallitus'",
            '{ name = "Yhtymähallitus", appeal_days = 14 }',
        ],
        id="unknown-body-without-appeal-days",
    ),
    pytest.param(
        _without_document,
        ["agreement.document", "agreement.md does not exist", "relative to this file"],
        id="missing-document",
    ),
    pytest.param(
        _one_party(agreement={"id": "Bad_ID"}),
        ["agreement.id", "use lowercase letters, digits and single hyphens"],
        id="bad-agreement-id",
    ),
    pytest.param(
        _invalid_toml,
        ["is not valid TOML", "line 1"],
        id="invalid-toml",
    ),
    pytest.param(
        _no_such_file,
        ["does not exist", "check the path"],
        id="no-such-file",
    ),
    pytest.param(
        _one_party(agreement={"timezone": "Mars/Olympus_Mons"}),
        ["agreement.timezone", "'Mars/Olympus_Mons'", "use one like 'Europe/Helsinki'"],
        id="bad-timezone",
    ),
    pytest.param(
        _alpha_and({"id": "beta", "name": "Beta", "signatures_required": 0}),
        ["parties[1] (id 'beta').signatures_required", "greater than or equal to 1"],
        id="zero-signatures",
    ),
    pytest.param(
        _alpha_and(
            {
                "id": "beta",
                "name": "Beta",
                "signatures_required": 2,
                "signatories": [{"name": "Bo Beta", "title": "Mayor"}],
            }
        ),
        [
            "parties[1] (id 'beta').signatories",
            "1 listed, but signatures_required is 2",
            "list at least 2 or lower signatures_required",
        ],
        id="fewer-signatories-than-required",
    ),
    pytest.param(
        _alpha_and(
            {
                "id": "beta",
                "name": "Beta",
                "signatories": [
                    {"name": "Bo Beta", "title": "Mayor"},
                    {"name": "bo  BETA", "title": "Chair"},
                ],
            }
        ),
        ["parties[1] (id 'beta').signatories[1]", "'bo BETA' is listed twice", "once"],
        id="signatory-listed-twice",
    ),
    pytest.param(
        _alpha_and({"id": "beta", "name": "Beta", "signatories": [{"name": "Bo Beta"}]}),
        ["parties[1] (id 'beta').signatories[0].title", "is required", "add it"],
        id="signatory-without-title",
    ),
    pytest.param(
        _alpha_and(
            {"id": "beta", "name": "Beta", "signatories": [{"name": "Bo Beta", "title": "T" * 201}]}
        ),
        ["parties[1] (id 'beta').signatories[0].title", "longer than 200 characters"],
        id="signatory-title-too-long-to-sign-with",
    ),
    pytest.param(
        _alpha_and(
            {
                "id": "beta",
                "name": "Beta",
                "contacts": [
                    {"name": "Bo Beta", "email": "bo@beta.example.invalid"},
                    {"name": "Bo B.", "email": "BO@beta.example.invalid"},
                ],
            }
        ),
        ["parties[1] (id 'beta').contacts[1].email", "listed twice", "list each address once"],
        id="contact-listed-twice",
    ),
]


@pytest.mark.parametrize(("build", "expected"), BAD_FILES)
def test_bad_file_is_named_with_key_and_fix_and_writes_nothing(
    cli: CLI, tmp_path: Path, build: Builder, expected: list[str]
) -> None:
    path = build(tmp_path)
    ran = cli("launch", str(path), "--json")
    assert ran.exit_code == 2, ran.stdout + ran.stderr
    assert ran.stdout == ""
    assert str(path) in ran.stderr
    for fragment in expected:
        assert fragment in ran.stderr, f"{fragment!r} not in {ran.stderr!r}"
    after = cli("status", "--json")
    assert after.exit_code == 0, after.stderr
    assert after.json() == []


@pytest.mark.parametrize(("build", "expected"), BAD_FILES)
def test_loader_lists_the_problem(tmp_path: Path, build: Builder, expected: list[str]) -> None:
    """The same table at the loader: the problem is found there, whatever the CLI prints."""
    path = build(tmp_path)
    with pytest.raises(AgreementFileError) as caught:
        load_agreement(path)
    assert caught.value.path == str(path)
    assert caught.value.problems
    text = "\n".join(caught.value.problems)
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in {text!r}"


def test_every_problem_of_a_file_is_listed_at_once(tmp_path: Path) -> None:
    path = write_agreement(
        tmp_path,
        [
            {"id": "alpha", "name": "Alpha", "workflow": "parish"},
            {"id": "alpha", "name": "Alpha again", "bodies": ["Yhtymähallitus"]},
        ],
        agreement={"timezone": "Mars/Olympus_Mons"},
    )
    with pytest.raises(AgreementFileError) as caught:
        load_agreement(path)
    text = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 4, text
    assert "agreement.timezone" in text
    assert "parties[0] (id 'alpha').workflow" in text
    assert "parties[1] (id 'alpha').id" in text
    assert "parties[1] (id 'alpha').bodies[0]" in text


def test_a_shape_error_in_one_part_does_not_hide_the_checks_of_the_others(
    tmp_path: Path,
) -> None:
    path = write_agreement(
        tmp_path,
        [
            {
                "id": "alpha",
                "name": "Alpha",
                "contacts": [{"name": "Al", "email": "not-an-address"}],
            },
            {"id": "beta", "name": "Beta", "workflow": "municipalty"},
            {"id": "beta", "name": "Beta again", "bodies": ["Hallitus"]},
        ],
        agreement={"timezone": "Europe/Helsnki", "language": "de"},
    )
    with pytest.raises(AgreementFileError) as caught:
        load_agreement(path)
    problems = caught.value.problems
    text = "\n".join(problems)
    assert "parties[0] (id 'alpha').contacts[0].email" in text
    assert "agreement.language" in text
    assert "parties[1] (id 'beta').workflow: unknown workflow 'municipalty'" in text
    assert "parties[2] (id 'beta').id" in text
    assert "parties[2] (id 'beta').bodies[0]" in text
    assert "agreement.timezone: unknown time zone 'Europe/Helsnki'" in text
    assert len(problems) == 6, text


# --- the Kanta-Häme example ------------------------------------------------------------------


def test_kanta_hame_example_loads_with_its_parties_and_bodies() -> None:
    agreement = load_agreement(EXAMPLE)
    assert agreement.id == "kanta-hame-strategic-2026"
    assert agreement.language == "fi"
    assert agreement.timezone == "Europe/Helsinki"
    assert len(agreement.parties) == 13
    parties = {p.id: p for p in agreement.parties}
    assert len(parties) == 13

    hameenlinna = parties["hameenlinna"]
    assert hameenlinna.workflow == "municipality"
    assert hameenlinna.bodies == (
        Body("Kaupunginhallitus", "board", 14),
        Body("Kaupunginvaltuusto", "council", 30),
    )
    assert hameenlinna.signatures_required == 2
    assert hameenlinna.await_legal_force is True

    assert parties["riihimaki"].bodies == (Body("Kaupunginhallitus", "board", 14),)
    assert parties["hattula"].bodies == (Body("Kunnanhallitus", "board", 14),)
    assert parties["hattula"].signatures_required == 1

    county = parties["kanta-hame-hyvinvointialue"]
    assert county.workflow == "wellbeing-county"
    assert county.bodies == (Body("Aluehallitus", "board", 14),)

    liitto = parties["hameen-liitto"]
    assert liitto.workflow == "regional-council"
    assert liitto.bodies == (Body("Maakuntahallitus", "board", 14),)
    assert liitto.signatures_required == 2
    assert [c.language for c in liitto.contacts] == ["fi", "en"]


def test_kanta_hame_document_hash_is_sha256_of_its_text() -> None:
    agreement = load_agreement(EXAMPLE)
    text = (EXAMPLE.parent / "agreement.md").read_text("utf-8")
    assert agreement.document == text
    assert agreement.document_sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert len(agreement.document_sha256) == 64


def test_kanta_hame_example_launches_with_every_party_in_draft(cli: CLI) -> None:
    ran = cli("launch", str(EXAMPLE), "--at", "2026-12-01T09:00", "--json")
    assert ran.exit_code == 0, ran.stderr
    assert ran.json() == {"round": "kanta-hame-strategic-2026/1"}
    status = cli("status", "kanta-hame-strategic-2026/1", "--json").json()
    assert len(status["parties"]) == 13
    assert {p["state"] for p in status["parties"]} == {"draft"}
    text = (EXAMPLE.parent / "agreement.md").read_text("utf-8")
    assert status["document_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()


SMALL_EXAMPLE = EXAMPLE.parent.parent / "vastra-nyland" / "agreement.toml"


def test_the_bilingual_example_runs_in_swedish_to_the_end(cli: CLI, db: Engine) -> None:
    agreement = load_agreement(SMALL_EXAMPLE)
    assert agreement.language == "sv"
    assert [p.id for p in agreement.parties] == ["raseborg", "hango", "vastra-nyland"]
    round_id = cli("launch", str(SMALL_EXAMPLE), "--at", "2027-01-04T09:00", "--json").json()[
        "round"
    ]
    with db.connect() as conn:
        invitations = conn.execute(
            text("SELECT language, subject FROM outbox WHERE kind = 'invitation' ORDER BY id")
        ).all()
    assert sorted(language for language, _ in invitations) == ["fi", "sv", "sv", "sv"]
    assert all(
        subject.startswith("Begäran om godkännande") == (language == "sv")
        for language, subject in invitations
    )
    steps = [
        ("raseborg", "submit"), ("hango", "submit"), ("vastra-nyland", "submit"),
        ("raseborg", "approve", "--ref", "Stadsstyrelsen 11.01.2027 § 4"),
        ("raseborg", "approve", "--ref", "Stadsfullmäktige 25.01.2027 § 12"),
        ("hango", "approve", "--ref", "Stadsstyrelsen 18.01.2027 § 7"),
        ("vastra-nyland", "approve", "--ref", "Områdesstyrelsen 19.01.2027 § 3"),
    ]  # fmt: skip
    for party_id, event, *evidence in steps:
        ran = cli("record", round_id, party_id, event, *evidence, "--at", "2027-01-26T12:00")
        assert ran.exit_code == 0, ran.stderr
    assert cli("tick", "--at", "2027-03-15").exit_code == 0
    for party_id, name in (
        ("raseborg", "Mikael Exempel"),
        ("raseborg", "sofia påhittad"),
        ("hango", "Hangö Exempel"),
    ):
        ran = cli("record", round_id, party_id, "sign", "--signatory", name,
                  *(() if party_id == "raseborg" else ("--title", "stadsdirektör")),
                  "--at", "2027-03-16T10:00")  # fmt: skip
        assert ran.exit_code == 0, ran.stderr
    ran = cli("record", round_id, "vastra-nyland", "sign", "--signatory", "Karin Exempel",
              "--title", "välfärdsdirektör", "--at", "2027-03-17T10:00")  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    status = cli("status", round_id, "--json").json()
    assert (status["state"], status["effective_date"]) == ("active", "2027-03-17")
    assert cli("audit", "verify", round_id).exit_code == 0


def test_document_hash_does_not_depend_on_line_endings(tmp_path: Path) -> None:
    unix = tmp_path / "unix"
    windows = tmp_path / "windows"
    unix.mkdir()
    windows.mkdir()
    text = "§ 1 Osapuolet\nSopimus.\n"
    a = load_agreement(write_agreement(unix, [{"id": "alpha", "name": "Alpha"}], text=text))
    path = write_agreement(windows, [{"id": "alpha", "name": "Alpha"}])
    (windows / "agreement.md").write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    b = load_agreement(path)
    assert a.document_sha256 == b.document_sha256
    assert a.document_sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- what a good file may say ----------------------------------------------------------------


def test_body_the_workflow_does_not_know_is_accepted_with_its_appeal_days(tmp_path: Path) -> None:
    path = write_agreement(
        tmp_path,
        [
            {
                "id": "yhtyma",
                "name": "Kuntayhtymä",
                "bodies": [{"name": "Yhtymähallitus", "appeal_days": 21}],
            }
        ],
    )
    (party,) = load_agreement(path).parties
    assert party.bodies == (Body("Yhtymähallitus", "board", 21),)


def test_a_known_body_written_as_a_table_keeps_its_kind_and_appeal_period(
    tmp_path: Path,
) -> None:
    path = write_agreement(
        tmp_path,
        [
            {
                "id": "alpha",
                "name": "Alpha",
                "bodies": [
                    {"name": "kunnanhallitus"},
                    {"name": "Kunnanvaltuusto", "appeal_days": 45},
                ],
            }
        ],
    )
    (party,) = load_agreement(path).parties
    assert party.bodies == (
        Body("Kunnanhallitus", "board", 14),
        Body("Kunnanvaltuusto", "council", 45),
    )


def test_example_invalid_and_test_addresses_are_accepted(tmp_path: Path) -> None:
    path = write_agreement(
        tmp_path,
        [
            {
                "id": "alpha",
                "name": "Alpha",
                "contacts": [
                    {"name": "Kim", "email": "kim@example.invalid"},
                    {"name": "Sam", "email": "sam.sample@kirjaamo.alpha.example.invalid"},
                    {"name": "Tea", "email": "tea@alpha.test"},
                ],
            }
        ],
    )
    agreement = load_agreement(path)
    assert agreement.coordinator.email == "cora@example.invalid"
    assert [c.email for c in agreement.parties[0].contacts] == [
        "kim@example.invalid",
        "sam.sample@kirjaamo.alpha.example.invalid",
        "tea@alpha.test",
    ]


def test_contact_language_defaults_to_the_agreements(tmp_path: Path) -> None:
    path = write_agreement(
        tmp_path,
        [
            {
                "id": "alpha",
                "name": "Alpha",
                "contacts": [
                    {"name": "Kim", "email": "kim@example.invalid"},
                    {"name": "Eve", "email": "eve@example.invalid", "language": "en"},
                ],
            }
        ],
        agreement={"language": "sv"},
    )
    agreement = load_agreement(path)
    assert agreement.language == "sv"
    assert [c.language for c in agreement.parties[0].contacts] == ["sv", "en"]
    assert agreement.coordinator.language == "sv"


def test_agreement_language_defaults_to_finnish(tmp_path: Path) -> None:
    agreement = load_agreement(write_agreement(tmp_path, [{"id": "alpha", "name": "Alpha"}]))
    assert agreement.language == "fi"
    assert agreement.timezone == "Europe/Helsinki"
    assert agreement.parties[0].contacts[0].language == "fi"


def test_await_legal_force_defaults_from_the_workflow_and_can_be_overridden(
    tmp_path: Path,
) -> None:
    path = write_agreement(
        tmp_path,
        [
            {"id": "alpha", "name": "Alpha"},
            {"id": "beta", "name": "Beta", "await_legal_force": False},
            {"id": "gamma", "name": "Gamma", "workflow": "wellbeing-county"},
        ],
    )
    parties = {p.id: p for p in load_agreement(path).parties}
    assert load_definition("municipality").await_legal_force is True
    assert parties["alpha"].await_legal_force is True
    assert parties["beta"].await_legal_force is False
    assert (
        parties["gamma"].await_legal_force is load_definition("wellbeing-county").await_legal_force
    )


def test_body_given_as_table_launches(cli: CLI, agreement_file: Callable[..., Path]) -> None:
    path = agreement_file(
        [
            {
                "id": "yhtyma",
                "name": "Kuntayhtymä",
                "bodies": [{"name": "Yhtymähallitus", "appeal_days": 21}],
            }
        ]
    )
    ran = cli("launch", str(path), "--json")
    assert ran.exit_code == 0, ran.stderr
    status = cli("status", ran.json()["round"], "--json").json()
    assert status["parties"][0]["bodies"] == ["Yhtymähallitus"]


# --- one open round per agreement ------------------------------------------------------------


def test_a_deadline_already_passed_at_launch_is_refused(
    cli: CLI, agreement_file: Callable[..., Path]
) -> None:
    path = agreement_file(agreement={"deadline": date(2020, 3, 31)})
    ran = cli("launch", str(path), "--at", "2026-12-01T09:00")
    assert ran.exit_code == 2
    assert "agreement.deadline: 31.03.2020 has passed at launch (01.12.2026)" in ran.stderr
    assert "give a later date" in ran.stderr
    assert cli("status", "--json").json() == []
    # The day itself is still in time.
    assert cli("launch", str(path), "--at", "2020-03-31T23:00").exit_code == 0


def test_a_passed_deadline_is_reported_with_the_files_other_problems(
    cli: CLI, agreement_file: Callable[..., Path]
) -> None:
    path = agreement_file(agreement={"id": "Bad_ID", "deadline": date(2020, 3, 31)})
    ran = cli("launch", str(path), "--at", "2026-12-01T09:00")
    assert ran.exit_code == 2
    assert "agreement.deadline: 31.03.2020 has passed at launch" in ran.stderr
    assert "agreement.id: 'Bad_ID' is not a valid id" in ran.stderr  # in the same pass
    assert cli("status", "--json").json() == []


def test_a_repeated_id_is_reported_even_beside_another_problem_of_that_party(
    agreement_file: Callable[..., Path],
) -> None:
    path = agreement_file(
        [{"id": "alpha", "name": "Alpha"}, {"id": "alpha", "name": "Beta", "workflow": 7}]
    )
    with pytest.raises(AgreementFileError) as caught:
        load_agreement(path)
    text = "\n".join(caught.value.problems)
    assert "parties[1] (id 'alpha').id: 'alpha' is used by an earlier party" in text
    assert "parties[1] (id 'alpha').workflow" in text  # and its own problem, in the same pass


def test_second_launch_while_open_is_refused_until_cancelled(
    cli: CLI, agreement_file: Callable[..., Path]
) -> None:
    path = str(agreement_file())
    first = cli("launch", path, "--json")
    assert first.exit_code == 0, first.stderr
    assert first.json()["round"] == "test-agreement/1"

    again = cli("launch", path, "--json")
    assert again.exit_code == 1
    assert "test-agreement/1" in again.stderr
    assert [r["round"] for r in cli("status", "--json").json()] == ["test-agreement/1"]

    cancelled = cli("cancel", "test-agreement/1", "--reason", "x")
    assert cancelled.exit_code == 0, cancelled.stderr

    second = cli("launch", path, "--json")
    assert second.exit_code == 0, second.stderr
    assert second.json()["round"] == "test-agreement/2"
    states = {r["round"]: r["state"] for r in cli("status", "--json").json()}
    assert states == {"test-agreement/1": "cancelled", "test-agreement/2": "open"}
