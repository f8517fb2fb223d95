"""The statements of a recorded event, run on the driver's cursor of the transaction's connection.

Each is a Core statement, compiled once per dialect: its SQL text, the order of its parameters
and its columns' type conversions (JSON, aware UTC times, dates) are SQLAlchemy's own, taken from
the compilation. What is left out is SQLAlchemy's work per execution (an execution context, its
parameters processed generically, a result object), which cost several times the driver's own
work for the one-row statements of every event. The driver's errors come out as SQLAlchemy's, as
they would from ``Connection.execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["Direct"]

Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters in the order the SQL takes them
    positional: bool
    binds: tuple[tuple[str, Convert], ...]  # the parameters that are converted, and how
    columns: tuple[str, ...]  # for a SELECT: its columns' names
    results: tuple[Convert | None, ...]  # and each one's conversion


class Direct:
    """A Core statement run on the driver's cursor (:mod:`engine.runtime.direct`)."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver)  # the driver decides the parameters' style
        made = self._compiled.get(key)
        if made is None:
            compiled = self.statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)
            binds = []
            for name, bind in compiled.binds.items():
                convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if convert is not None:
                    binds.append((name, convert))
            columns = list(getattr(self.statement, "exported_columns", ()))
            impls = [c.type.dialect_impl(dialect) for c in columns]
            results = [impl.result_processor(dialect, None) for impl in impls]
            made = _Compiled(
                compiled.string,
                tuple(compiled.positiontup or ()),
                dialect.positional,
                tuple(binds),
                tuple(column.key for column in columns),
                tuple(results),
            )
            self._compiled[key] = made
        return made

    def _parameters(self, compiled: _Compiled, values: Mapping[str, Any]) -> Any:
        converted = dict(values)
        for name, convert in compiled.binds:
            if name in converted:
                converted[name] = convert(converted[name])
        if compiled.positional:
            return tuple(converted[name] for name in compiled.names)
        return converted

    def _run(self, connection: Connection, values: Sequence[Mapping[str, Any]], many: bool) -> Any:
        compiled = self._for(connection.dialect)
        parameters = [self._parameters(compiled, v) for v in values]
        dbapi = connection.dialect.loaded_dbapi
        cursor = connection.connection.cursor()
        try:
            if many:
                cursor.executemany(compiled.sql, parameters)
            else:
                cursor.execute(compiled.sql, parameters[0])
        except dbapi.Error as exc:
            # As Connection.execute would: a lost connection is not handed back to the pool.
            lost = connection.dialect.is_disconnect(exc, connection.connection, cursor)
            with suppress(dbapi.Error):
                cursor.close()
            if lost:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                compiled.sql,
                parameters,
                exc,
                dbapi.Error,
                connection_invalidated=lost,
                dialect=connection.dialect,
            ) from exc
        return cursor

    def rowcount(self, connection: Connection, values: Mapping[str, Any]) -> int:
        """Execute (an UPDATE); the number of rows it matched."""
        cursor = self._run(connection, [values], many=False)
        count: int = cursor.rowcount
        cursor.close()
        return count

    def many(self, connection: Connection, values: Sequence[Mapping[str, Any]]) -> None:
        """Execute once for each of ``values`` (an INSERT)."""
        if values:
            self._run(connection, values, many=len(values) > 1).close()

    def values(self, connection: Connection, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Execute (a SELECT, or a statement with RETURNING); its first row's values in the order
        of its columns, converted, or None."""
        compiled = self._for(connection.dialect)
        cursor = self._run(connection, [values], many=False)
        try:
            found = cursor.fetchone()
        finally:
            cursor.close()
        if found is None:
            return None
        return tuple(
            value if convert is None or value is None else convert(value)
            for value, convert in zip(found, compiled.results, strict=True)
        )

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute (a SELECT); every row's values in the order of its columns, converted."""
        compiled = self._for(connection.dialect)
        cursor = self._run(connection, [values], many=False)
        try:
            found = cursor.fetchall()
        finally:
            cursor.close()
        return [
            tuple(
                value if convert is None or value is None else convert(value)
                for value, convert in zip(row, compiled.results, strict=True)
            )
            for row in found
        ]

    def first(self, connection: Connection, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """Execute; its first row by column name, converted, or None."""
        found = self.values(connection, values)
        if found is None:
            return None
        return dict(zip(self._for(connection.dialect).columns, found, strict=True))
