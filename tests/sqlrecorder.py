"""Compile tests for engines whose servers cannot run here (SQL Server, Oracle).

:func:`offline` builds a real endpoint whose dialect is set as if connected to a server of
a given version, and whose :meth:`raw` connections are :class:`Recorder` objects: every
statement the endpoint's own code runs is recorded with its parameters, and fetches are
answered from results the test queues. So the tests drive the endpoint's real methods
(count, read_range, checksum, merge_spool, delete_keys, ...) and assert the exact SQL the
server would receive; :func:`parse` checks that it is valid in sqlglot's dialect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlglot

SQLGLOT_DIALECT = {"mssql": "tsql", "oracle": "oracle"}


class RecordingCursor:
    def __init__(self, conn: Recorder) -> None:
        self.conn = conn
        self.rowcount = -1
        self._rows: list[tuple[Any, ...]] = []
        self.fast_executemany = False
        self.arraysize = 100
        self.inputsizes: Any = None

    def execute(self, sql: str, params: Any = None) -> RecordingCursor:
        self.conn.statements.append((sql, params))
        self._answer()
        return self

    def executemany(self, sql: str, rows: Any, **kwargs: Any) -> None:
        rows = list(rows)
        self.conn.statements.append((sql, rows))
        self.conn.executemany_kwargs.append(kwargs)
        self.conn.fast_executemany.append(self.fast_executemany)
        self._answer(default_rowcount=len(rows))

    def setinputsizes(self, *sizes: Any) -> None:
        self.inputsizes = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], list) else sizes
        self.conn.inputsizes.append(self.inputsizes)

    def _answer(self, default_rowcount: int = -1) -> None:
        result = self.conn.results.pop(0) if self.conn.results else None
        if isinstance(result, BaseException):  # the statement fails (after being recorded)
            raise result
        if isinstance(result, int):
            self.rowcount, self._rows = result, []
        else:
            self._rows = list(result or [])
            self.rowcount = len(self._rows) if result is not None else default_rowcount

    def getbatcherrors(self) -> list[Any]:
        return list(self.conn.batch_errors)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, n: int = 1) -> list[tuple[Any, ...]]:
        out, self._rows = self._rows[:n], self._rows[n:]
        return out

    def fetchall(self) -> list[tuple[Any, ...]]:
        out, self._rows = self._rows, []
        return out

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while self._rows:
            yield self._rows.pop(0)

    def __enter__(self) -> RecordingCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class Recorder:
    """A DBAPI connection that records statements instead of sending them.

    ``results`` is a queue: each ``execute`` takes the next entry, a list of rows (for
    fetches) or an int (the rowcount), or an exception the statement raises; an empty
    queue answers no rows.
    """

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.results: list[Any] = []
        self.inputsizes: list[Any] = []
        self.executemany_kwargs: list[dict[str, Any]] = []
        self.fast_executemany: list[bool] = []
        self.batch_errors: list[Any] = []
        self.commits = 0
        self.rollbacks = 0

    def cursor(self, *args: Any, **kwargs: Any) -> RecordingCursor:
        return RecordingCursor(self)

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1

    def close(self) -> None:
        pass

    @property
    def sql(self) -> list[str]:
        """The statements run, in order."""
        return [s for s, _ in self.statements]


def offline(cls: type, url: str, version: tuple[int, ...], **options: Any) -> tuple[Any, Recorder]:
    """An endpoint of ``cls`` for ``url`` that compiles for ``version`` and records SQL."""
    ep = cls("t", url, options, base_dir=Path("."))
    ep.offline_dialect = cls.make_dialect(url, version)
    rec = Recorder()

    @contextlib.contextmanager
    def raw() -> Iterator[Recorder]:
        yield rec

    ep.raw = raw
    ep.text_connection = raw
    return ep, rec


def parse(sql: str, engine: str) -> sqlglot.exp.Expression:
    """``sql`` parsed by sqlglot in the engine's dialect (raises on a syntax error)."""
    return sqlglot.parse_one(sql, read=SQLGLOT_DIALECT[engine])
