"""verify's short cuts, each held to what it stands in for: the JSON scanner called at once to
json.loads through the column's processor, SQLite's rows read from the driver to SQLAlchemy's rows
of the same statement, a decision read back without parsing it again to parsing it again, and a
signatory's name keyed once to same_person.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, Engine

from engine.core import transitions_table
from engine.core.evidence import parse_decision_ref, same_person
from engine.persistence.database import transaction
from engine.runtime import audit
from tests.tampering import tamper
from tests.test_audit import ROUND, build_round
from tests.test_verify_stream import outcome

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


def json_text() -> st.SearchStrategy[Any]:
    """Texts of JSON values as ratify or a forger might store them, spaced or cut short, and
    values that are no text at all (SQLite keeps what it is given)."""
    dumped = st.builds(
        lambda value, separators, before, after: (
            before + json.dumps(value, separators=separators) + after
        ),
        JSON_VALUES,
        st.sampled_from([(",", ":"), (", ", ": ")]),
        st.sampled_from(["", " ", "\n"]),
        st.sampled_from(["", " ", "x", "]", "}"]),
    )
    cut = dumped.flatmap(lambda t: st.integers(0, len(t)).map(lambda n: t[:n]))
    return dumped | cut | st.text(max_size=12) | st.none() | st.integers() | st.floats()


@pytest.fixture(scope="module")
def json_processor(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from engine.runtime import connect

    engine = connect(f"sqlite:///{tmp_path_factory.mktemp('json') / 'x.db'}")
    dialect = engine.dialect
    processor = JSON().dialect_impl(dialect).result_processor(dialect, None)
    return processor, audit._processor(JSON(), dialect)


@settings(max_examples=1000, deadline=None)
@given(value=json_text())
def test_json_is_read_as_the_column_reads_it(json_processor: Any, value: Any) -> None:
    processor, fast = json_processor
    assert fast is not processor  # the short cut is taken on SQLite
    expected = outcome(lambda: processor(value))
    got = outcome(lambda: fast(value))
    if expected[0] == "ok" and isinstance(expected[1], float) and expected[1] != expected[1]:
        assert got[0] == "ok"
        assert got[1] != got[1]  # NaN
    else:
        assert got == expected


def test_deep_json_is_read_as_the_column_reads_it(json_processor: Any) -> None:
    processor, fast = json_processor
    for text_ in ('{"a":' * 5000 + "1" + "}" * 5000, "[" * 5000 + "]" * 5000):
        assert outcome(lambda: fast(text_)) == outcome(lambda: processor(text_))  # noqa: B023


def sqlalchemy_rows(engine: Engine, query: Any, round_id: str) -> Any:
    with transaction(engine) as session:
        return outcome(
            lambda: [tuple(r) for r in session.connection().execute(query, {"round_id": round_id})]
        )


def driver_rows(engine: Engine, rows: Any, round_id: str) -> Any:
    with transaction(engine) as session:
        return outcome(lambda: [tuple(r) for r in rows.all(session.connection(), round_id)])


TAMPERED_PARTIES = [
    "UPDATE parties SET bodies = '[{' WHERE party_id = 'delta'",
    "UPDATE parties SET signatures = 7 WHERE party_id = 'delta'",
    "UPDATE parties SET signatures = ' [ ] ' WHERE party_id = 'delta'",
    "UPDATE parties SET legal_force_from = 'soon' WHERE party_id = 'delta'",
    "UPDATE parties SET legal_force_from = '2026-12-31' WHERE party_id = 'delta'",
    "UPDATE parties SET await_legal_force = 'no' WHERE party_id = 'delta'",
    "UPDATE parties SET step = 'two' WHERE party_id = 'delta'",
    "UPDATE documents SET text = 5",
    "UPDATE documents SET version = 'one'",
]


@pytest.mark.parametrize("statement", ["", *TAMPERED_PARTIES])
def test_a_rounds_rows_read_from_the_driver_are_sqlalchemys(
    db: Engine, tmp_path: Path, statement: str
) -> None:
    """On SQLite the parties and texts are read from the driver, each value processed by its
    column's processor: the same rows, or the same error, as SQLAlchemy's. Elsewhere SQLAlchemy
    reads them."""
    build_round(db, tmp_path)
    if statement and db.dialect.name != "sqlite":
        pytest.skip("a value only SQLite's dynamic types let in")
    if statement:
        tamper(db, statement)
    for rows in (audit._PARTIES_OF, audit._DOCUMENTS_OF):
        expected = sqlalchemy_rows(db, rows.statement, ROUND)
        assert driver_rows(db, rows, ROUND) == expected
        assert expected[0] != "ok" or len(expected[1]) >= 1
        assert driver_rows(db, rows, "no such round") == ("ok", [])
    if db.dialect.name == "sqlite":
        assert audit._PARTIES_OF._plan(db.dialect) is not None  # the driver's, there


def test_the_log_read_from_the_driver_is_sqlalchemys(db: Engine, tmp_path: Path) -> None:
    build_round(db, tmp_path)
    query = audit._log_query(db.dialect)
    with transaction(db) as session:
        streamed = list(audit._stream(session, ROUND))
        through = [
            audit._entry(row, query.recorded_at)
            for row in session.connection().execute(query.statement, {"round_id": ROUND})
        ]
    assert streamed == through
    assert len(streamed) == 15
    assert (query.sql is not None) == (db.dialect.name == "sqlite")


def test_the_drivers_errors_are_sqlalchemys(db: Engine, tmp_path: Path) -> None:
    """An error of the driver reading the rows is raised as SQLAlchemy raises it (so that
    transaction() words it as a database error)."""
    if db.dialect.name != "sqlite":
        pytest.skip("the driver's cursor is read on SQLite only")
    from sqlalchemy.exc import OperationalError

    with transaction(db) as session, pytest.raises(OperationalError, match="no such table"):
        list(audit._driver_rows(session.connection(), "SELECT * FROM nowhere WHERE 1 = ?", "x"))


@settings(max_examples=1000, deadline=None)
@given(
    body=st.text(min_size=1, max_size=12),
    day=st.integers(0, 32),
    month=st.integers(0, 13),
    year=st.integers(0, 9999),
    section=st.integers(0, 2000),
    spaces=st.sampled_from([" ", "  ", "\t", "\u00a0"]),
)
def test_a_decision_read_back_is_the_decision_parsed_again(
    body: str, day: int, month: int, year: int, section: int, spaces: str
) -> None:
    text_ = f"{body}{spaces}{day:02d}.{month:02d}.{year:04d}{spaces}§ {section}"
    try:
        cited = parse_decision_ref(text_)
    except Exception:  # not a reference: nothing to read back
        return
    expected = outcome(lambda: parse_decision_ref(str(cited)).decided)
    got = outcome(lambda: transitions_table._read_back(cited))
    assert got == expected if cited.decided.year >= 1000 else got[0] == expected[0] != "ok"


NAMES = st.text(alphabet=st.sampled_from("aAäÄ -\u2010'\u2019\u200b\uff41 \u00a0"), max_size=6)


@settings(max_examples=1000, deadline=None)
@given(a=NAMES, b=NAMES)
def test_a_name_keyed_once_is_same_person(a: str, b: str) -> None:
    keyed = transitions_table._person
    assert (keyed(a) == keyed(b)) == same_person(a, b)
