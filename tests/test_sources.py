"""The decision sources' adapters, pure: each reads its saved fixture (tests/fixtures/sources) to
the exact fields; hostile input (malformed XML, an entity bomb, a huge answer, deep nesting,
look-alike letters) is a clear SourceError or an item left out, never a match; the matching rule
(diary number or title, and the body, and the date); and a party's `source` in the agreement
file, each bad one named by its key."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from engine.errors import AgreementFileError
from engine.runtime import load_agreement
from engine.sources import MAX_BYTES, Item, SourceError, Wanted, item_key, matches, parse
from tests.conftest import write_agreement
from tests.feeds import FIXTURES

TITLE = "Kanta-Hämeen strateginen yhteistyösopimus"


def _read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_dynasty_rss_gives_its_meeting_items() -> None:
    items = parse("dynasty", _read("dynasty-hattula-kh.xml"))
    assert items[0] == Item(
        body="Kunnanhallitus",
        meeting=date(2026, 12, 14),
        section=5,
        title=TITLE,
        diary="HAT/412/00.04.01/2026",
        url="https://hattula.example.invalid/dynasty/kokous/20261235-5.HTM",
    )
    assert [(i.body, i.section, i.diary) for i in items[1:]] == [
        ("Kunnanhallitus", 6, "HAT/398/02.08.00/2026"),
        ("Tekninen lautakunta", 14, None),
    ]  # the invitation to a meeting (no §) is no item of minutes
    assert items[2].meeting == date(2026, 12, 10)


def test_cloudnc_odata_gives_each_meetings_contents() -> None:
    items = parse("cloudnc", _read("cloudnc-riihimaki-kh.json"), "https://r.example.invalid/od")
    assert items[0] == Item(
        body="Kaupunginhallitus",
        meeting=date(2026, 12, 14),
        section=7,
        title="Kanta-Hämeen strateginen yhteistyösopimus, hyväksyminen",
        diary="RMKI/1873/00.04.01/2026",
        url="https://riihimaki.example.invalid/cloudnc/Meeting/c1d0a3c5/Content/b8e1f9a0",
    )
    assert [(i.body, i.section) for i in items[1:]] == [
        ("Kaupunginhallitus", 8),
        ("Sivistyslautakunta", 3),
    ]


def test_6aika_decisions_give_section_subject_case_and_decision_maker() -> None:
    items = parse("6aika", _read("6aika-hameenlinna-kh.json"))
    assert items[0] == Item(
        body="Kaupunginhallitus",
        meeting=date(2026, 12, 14),
        section=212,
        title=TITLE,
        diary="HML 2026-004127",
        url="https://hameenlinna.example.invalid/paatokset/asia/hml-2026-004127/5e2b1c7a",
    )
    assert [(i.body, i.section, i.diary) for i in items[1:]] == [
        ("Kasvatus- ja opetuslautakunta", 41, "HML 2026-004127"),
        ("Kaupunginhallitus", 213, "HML 2026-003300"),
    ]


def test_a_manual_source_is_what_the_party_pasted() -> None:
    (item,) = parse("manual", _read("manual-loppi-kh.txt"))
    assert item == Item(
        body="Kunnanhallitus",
        meeting=date(2026, 12, 14),
        section=9,
        title=TITLE,
        diary="LOP/233/00.04.01/2026",
        url="https://loppi.example.invalid/ktweb/pk_asil_tmp.htm?bid=5123",
    )
    with pytest.raises(SourceError, match="the decision's reference"):
        parse("manual", b"https://loppi.example.invalid/pk.htm\n")
    with pytest.raises(SourceError, match="minutes' address"):
        parse("manual", b"Kunnanhallitus 14.12.2026 \xc2\xa7 9\n")
    with pytest.raises(SourceError, match="not of the form"):
        parse("manual", "https://l.example.invalid/\nKunnanhallitus § 9\n".encode())


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (_read("dynasty-malformed.xml"), "is not well-formed XML"),
        (_read("dynasty-billion-laughs.xml"), "declares entities or a DTD"),
        (b"<feed><entry/></feed>", "no RSS 2.0 feed"),
        (b"<rss><channel>" + b"x" * (MAX_BYTES + 1) + b"</channel></rss>", "more than the"),
    ],
    ids=["malformed", "billion-laughs", "atom", "huge"],
)
def test_hostile_xml_is_a_clear_error(data: bytes, said: str) -> None:
    with pytest.raises(SourceError, match=said):
        parse("dynasty", data)


@pytest.mark.parametrize(
    ("kind", "data", "said"),
    [
        ("cloudnc", b"[" * 50_000 + b"]" * 50_000, "nests more than 32 levels"),
        ("6aika", b'{"decisions": ' + b'{"a": ' * 40 + b"1" + b"}" * 41, "nests more than 32"),
        ("cloudnc", b'{"value": [', "is not JSON"),
        ("6aika", b'{"count": 1}', r"no list of items \(`decisions`, `value`, `objects`\)"),
        ("cloudnc", b'"' + b"a" * (MAX_BYTES + 1) + b'"', "more than the"),
        ("6aika", b"\xff\xfe not utf-8", "is not JSON"),
    ],
    ids=["deep-list", "deep-object", "cut-off", "no-list", "huge", "not-utf8"],
)
def test_hostile_json_is_a_clear_error(kind: str, data: bytes, said: str) -> None:
    with pytest.raises(SourceError, match=said):
        parse(kind, data)


def test_a_huge_body_name_is_cut_to_a_line_and_matches_nothing() -> None:
    decision = {
        "Section": "5",
        "Subject": TITLE,
        "MeetingDate": "2026-12-14",
        "DecisionMaker": "Kunnanhallitus" + " x" * 100_000,
    }
    import json

    (item,) = parse("6aika", json.dumps({"decisions": [decision]}).encode())
    assert len(item.body) == 200
    assert not matches(item, Wanted(TITLE, None, "Kunnanhallitus", date(2026, 12, 1)))


def test_look_alike_letters_in_the_body_are_named_and_never_match() -> None:
    (item,) = parse("dynasty", _read("dynasty-lookalike.xml"))
    assert item.body == "\u041aunnanhallitus"  # a Cyrillic Ka
    assert item.problem() is not None
    assert "mixes scripts: LATIN (unahlits), CYRILLIC (\u041a)" in str(item.problem())
    # The same diary number, title and date: still no match.
    assert not matches(
        item, Wanted(TITLE, "HAT/412/00.04.01/2026", "Kunnanhallitus", date(2026, 12, 1))
    )


def test_an_item_matches_by_diary_or_title_and_body_and_date() -> None:
    hattula = parse("dynasty", _read("dynasty-hattula-kh.xml"))
    wanted = Wanted(TITLE, None, "Kunnanhallitus", date(2026, 12, 2))
    assert [i.section for i in hattula if matches(i, wanted)] == [5]  # not § 6, not § 14
    later = Wanted(TITLE, None, "Kunnanhallitus", date(2026, 12, 15))
    assert not any(matches(i, later) for i in hattula)  # met before the step began
    riihimaki = parse("cloudnc", _read("cloudnc-riihimaki-kh.json"))
    by_diary = Wanted(
        "Toinen nimi", "RMKI/1873/00.04.01/2026", "Kaupunginhallitus", date(2026, 12, 1)
    )
    assert [i.section for i in riihimaki if matches(i, by_diary)] == [7]  # not the board of ed.
    hml = parse("6aika", _read("6aika-hameenlinna-kh.json"))
    wanted = Wanted(TITLE, None, "kaupunginhallitus", date(2026, 12, 1))
    assert [i.section for i in hml if matches(i, wanted)] == [212]
    # "Hattulan kunnanhallitus" is the board's name with the organisation's before it.
    named = Item("Hattulan kunnanhallitus", date(2026, 12, 14), 5, TITLE, None, "https://h/")
    assert matches(named, Wanted(TITLE, None, "Kunnanhallitus", date(2026, 12, 1)))
    assert item_key(named) == "hattulan kunnanhallitus|2026-12-14|5"


def _party(source: Any) -> dict[str, Any]:
    return {"id": "hattula", "name": "Hattulan kunta", "source": source}


def test_a_party_names_its_source_in_the_agreement_file(tmp_path: Path) -> None:
    url = "https://hattula.example.invalid/dynasty/rss"
    path = write_agreement(
        tmp_path,
        [_party({"kind": "dynasty", "url": url, "diary": "HAT/412/00.04.01/2026"})],
    )
    (plan,) = load_agreement(path).parties
    assert plan.source is not None
    assert (plan.source.kind, plan.source.url, plan.source.diary) == (
        "dynasty",
        url,
        "HAT/412/00.04.01/2026",
    )


def test_a_bad_source_is_named_by_its_key(tmp_path: Path) -> None:
    parties = [
        {**_party({"kind": "ktweb", "url": "https://x.example.invalid/"}), "id": "a"},
        {**_party({"kind": "dynasty", "url": "file:///etc/passwd"}), "id": "b"},
        {**_party({"kind": "cloudnc"}), "id": "c"},
        {**_party({"kind": "6aika", "url": "https://x.example.invalid/", "extra": 1}), "id": "d"},
        {**_party({"kind": "dynasty", "url": "https://a b.example.invalid/"}), "id": "e"},
        {**_party({"kind": "manual"}), "id": "f"},  # fine: a manual source needs no address
    ]
    with pytest.raises(AgreementFileError) as refused:
        load_agreement(write_agreement(tmp_path, parties))
    keys = refused.value.keys
    text = "\n".join(refused.value.problems)
    assert "parties[0] (id 'a').source.kind" in keys
    assert "unknown kind 'ktweb'; use one of dynasty, cloudnc, 6aika, manual" in text
    assert "parties[1] (id 'b').source.url" in keys
    assert "has 'file'; only http and https are fetched" in text
    assert "parties[2] (id 'c').source.url" in keys
    assert "a cloudnc source needs its address" in text
    assert any(k.startswith("parties[3]") and "extra" in k for k in keys)
    assert "parties[4] (id 'e').source.url" in keys
    assert not any(k.startswith("parties[5]") for k in keys)


def test_an_items_link_that_is_no_web_address_is_not_kept() -> None:
    feed = (FIXTURES / "dynasty-hattula-kh.xml").read_text("utf-8")
    hostile = feed.replace(
        "https://hattula.example.invalid/dynasty/kokous/20261235-5.HTM",
        "javascript:alert(document.cookie)",
        1,
    )
    sections = [i.section for i in parse("dynasty", hostile.encode())]
    assert 5 not in sections  # an item without a web address is no item
    import json

    decision = {
        "Section": "5",
        "Subject": TITLE,
        "MeetingDate": "2026-12-14",
        "DecisionMaker": "Kaupunginhallitus",
        "Url": "javascript:alert(1)",
    }
    (item,) = parse("6aika", json.dumps([decision]).encode(), "https://h.example.invalid/api")
    assert item.url == "https://h.example.invalid/api#5"


def test_the_title_is_found_as_minutes_inflect_it() -> None:
    from engine.sources.match import same_title

    title = "Kanta-Hämeen strateginen yhteistyösopimus"
    assert same_title("Kanta-Hämeen strategisen yhteistyösopimuksen hyväksyminen", title)
    assert same_title("KANTA-HÄMEEN STRATEGINEN YHTEISTYÖSOPIMUS", title)
    assert same_title("Kanta\u2013Hämeen strateginen yhteistyösopimus", title)  # an en dash
    assert not same_title("Kanta-Hämeen strategia 2027", title)
    assert not same_title("Yhteistyösopimus, strateginen, Kanta-Hämeen", title)  # another order
    assert not same_title("Hämeen strateginen yhteistyösopimus", title)  # another region
    assert not same_title("Kanta-Hämeen strateginen yhteistyösopimus", "")


def test_a_bad_calendar_url_and_a_bad_source_are_reported_together(tmp_path: Path) -> None:
    party = {
        **_party({"kind": "dinasty", "url": "https://x.example.invalid/rss"}),
        "calendars": {"Kunnanhallitus": {"url": "ftp://x.example.invalid/kh.ics"}},
    }
    with pytest.raises(AgreementFileError) as refused:
        load_agreement(write_agreement(tmp_path, [party]))
    keys = refused.value.keys
    assert any(k.endswith(".calendars.Kunnanhallitus.url") for k in keys), keys
    assert any(k.endswith(".source.kind") for k in keys), keys


def test_a_sources_address_follows_the_calendars_rules_but_may_point_into_a_page() -> None:
    from engine.sources import web_address_problem

    assert web_address_problem("https://x.example.invalid/pk/2026-12-14#pykala5") is None
    assert "user name or password" in str(web_address_problem("https://a:b@x.example.invalid/"))
    assert "only http and https" in str(web_address_problem("javascript:alert(1)"))
