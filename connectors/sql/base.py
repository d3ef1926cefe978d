"""One table-endpoint implementation for every SQL engine, on SQLAlchemy Core.

An engine module (``mysql.py``, ``postgresql.py``, ``sqlite.py``) subclasses
:class:`SQLEndpoint` and adds only what truly differs: its type map (plain dicts), its
bulk load path (a :class:`Spool` and ``load_spool``), its session settings and the error
messages it translates. Statements are built with SQLAlchemy Core so that quoting is the
engine's own, and run on the DBAPI cursor for speed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib
import os
import pickle
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import types as st

from migrate.backup import (
    MARK_OP,
    OP_COLUMN,
    UNDO_COLUMN,
    RowBackup,
    backup_schema,
    schema_from_json,
)
from migrate.endpoints import Capabilities, Key, Row
from migrate.errors import ConnectorError, MissingDriverError, TransientError
from migrate.plan import redact
from migrate.schema import Column, Default, ForeignKey, Index, PType, TableSchema
from migrate.state import decode_key
from validators.canonical import ColumnSpec, Render

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_CURRENT_TS = re.compile(
    r"^(current_timestamp|now|localtimestamp|datetime\('now'\))\s*(\(\s*\d*\s*\))?$", re.I
)


#: key sums in delete detection add each key modulo this prime
KEY_SUM_MODULUS = 1_000_000_007


class PickleSpool:
    """A chunk staged as pickled row batches in a temporary file (engines that bind rows)."""

    def __init__(self, workdir: Path) -> None:
        fd, name = tempfile.mkstemp(prefix="chunk-", suffix=".pkl", dir=workdir)
        self.path = Path(name)
        self._f = os.fdopen(fd, "wb")
        self.rows = 0

    def add(self, rows: list[Row]) -> None:
        pickle.dump(rows, self._f, protocol=pickle.HIGHEST_PROTOCOL)
        self.rows += len(rows)

    def close(self) -> None:
        self._f.close()

    def batches(self) -> Iterator[list[Row]]:
        with open(self.path, "rb") as f:
            while True:
                try:
                    yield pickle.load(f)
                except EOFError:
                    return

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._f.close()
        self.path.unlink(missing_ok=True)


class TextSpool:
    """A chunk staged as tab-separated lines (``\\N`` for NULL) for LOAD DATA / COPY.

    ``formatters[i]`` turns a non-NULL value of column ``i`` into its escaped text.
    """

    def __init__(self, workdir: Path, formatters: list[Callable[[Any], str]]) -> None:
        fd, name = tempfile.mkstemp(prefix="chunk-", suffix=".tsv", dir=workdir)
        self.path = Path(name)
        self._f = os.fdopen(fd, "w", encoding="utf-8", newline="\n", buffering=1 << 20)
        self._fmt = formatters
        self.rows = 0

    def add(self, rows: list[Row]) -> None:
        fmt = self._fmt
        null = "\\N"
        self._f.write(
            "".join(
                "\t".join([null if v is None else f(v) for f, v in zip(fmt, row, strict=True)])
                + "\n"
                for row in rows
            )
        )
        self.rows += len(rows)

    def close(self) -> None:
        self._f.close()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._f.close()
        self.path.unlink(missing_ok=True)


def escape_text(value: str) -> str:
    """Escape a string for the tab-separated text format shared by LOAD DATA and COPY.

    Chained ``str.replace`` (each a C scan that returns the string itself when there is
    nothing to replace) measured several times faster than ``str.translate`` here.
    """
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def format_decimal(value: Decimal) -> str:
    """A decimal without exponent (``1E+3`` -> ``1000``), as every engine parses it."""
    return format(value, "f")


def as_text(v: Any) -> str:
    """A value already in text form (a source's text fast path gives bytes or str)."""
    return v.decode() if isinstance(v, (bytes, bytearray)) else str(v)


#: Tab-separated text for the kinds LOAD DATA and COPY read alike; each engine adds or
#: overrides the kinds it writes differently (booleans, binary, times, text escaping).
TEXT_FORMATTERS: dict[str, Callable[[Any], str]] = {
    "int8": str,
    "int16": str,
    "int32": str,
    "int64": str,
    "float32": repr,
    "float64": repr,
    "decimal": lambda v: format_decimal(v) if isinstance(v, Decimal) else as_text(v),
    "date": lambda v: v.isoformat() if isinstance(v, dt.date) else as_text(v),
}


def _typed(col: sa.ColumnClause, values: list[Any]) -> sa.ColumnClause:
    """``col`` typed for binding ``values``: an untyped column takes its bind type from the
    first value, so an IN list of integers starting below 2**31 would bind a larger one as
    INTEGER (PostgreSQL: out of range)."""
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        wide = any(not -(2**63) <= v < 2**63 for v in values)
        return sa.column(col.name, sa.Numeric(precision=20, scale=0) if wide else sa.BigInteger)
    return col


def column_fixer(fixes: list[tuple[int, Callable[[Any], Any]]]) -> Callable[[Row], Row] | None:
    """A row converter applying ``fix`` to the non-NULL value of each listed column."""
    if not fixes:
        return None

    def convert(row: Row) -> Row:
        out = list(row)
        for i, fix in fixes:
            if out[i] is not None:
                out[i] = fix(out[i])
        return tuple(out)

    return convert


class SQLEndpoint:
    """Table endpoint for a SQLAlchemy URL. See :class:`migrate.endpoints.TableEndpoint`."""

    kind: ClassVar[str] = "table"
    engine_label: ClassVar[str] = "SQL"
    driver_module: ClassVar[str] = ""
    default_driver: ClassVar[str] = ""
    extra: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities]

    def __init__(
        self,
        name: str,
        url: str,
        options: dict[str, Any],
        *,
        base_dir: Path,
        workers: int = 4,
        secrets: frozenset[str] = frozenset(),
        dry_run: bool = False,
    ) -> None:
        self.name = name
        self.options = dict(options)
        self.base_dir = base_dir
        self.workers = workers
        self.secrets = secrets
        self.dry_run = dry_run
        self._url = self.resolve_url(sa.make_url(url))
        self._engine: sa.Engine | None = None
        self._guard = threading.Lock()
        self._pinned = threading.local()  # a snapshot's connection, for this thread's reads
        #: a dialect to compile with instead of the live engine's (compile tests set it)
        self.offline_dialect: sa.Dialect | None = None
        self.check_options()

    # -- connection ----------------------------------------------------------------------
    def check_options(self) -> None:
        """Reject options this engine does not know (the plan checker cannot know them)."""
        allowed = self.known_options()
        for key in self.options:
            if key not in allowed:
                raise ConnectorError(
                    f"connections.{self.name}.options: unknown option {key!r}"
                    f" for {self.engine_label} (allowed: {', '.join(sorted(allowed)) or 'none'})"
                )

    def known_options(self) -> set[str]:
        return set()

    def resolve_url(self, url: sa.URL) -> sa.URL:
        if "+" not in url.drivername and self.default_driver:
            url = url.set(drivername=f"{url.get_backend_name()}+{self.default_driver}")
        return url

    def connect_args(self) -> dict[str, Any]:
        return {}

    def on_connect(self, dbapi_conn: Any) -> None:
        """Session settings run on every new connection."""

    def configure_engine(self, engine: sa.Engine) -> None:
        """Adjust a new engine (e.g. its dialect's reflection) before first use."""

    @property
    def engine(self) -> sa.Engine:
        with self._guard:
            if self._engine is None:
                if self.driver_module:
                    try:
                        importlib.import_module(self.driver_module)
                    except ImportError:
                        raise MissingDriverError(self.driver_module, self.extra) from None
                engine = sa.create_engine(
                    self._url, connect_args=self.connect_args(), **self.engine_kwargs()
                )
                sa.event.listen(engine, "connect", lambda c, _r: self.on_connect(c))
                self.configure_engine(engine)
                try:
                    with engine.connect():
                        pass
                except sa.exc.DBAPIError as exc:
                    engine.dispose()
                    raise self.translate(exc, "connecting") from None
                self._engine = engine
            return self._engine

    @classmethod
    def make_dialect(cls, url: str, version: tuple[int, ...]) -> sa.Dialect:
        """A dialect that compiles as if connected to a server of ``version``, without
        one (compile tests; engines override to set what connecting would set)."""
        dialect = sa.make_url(url).get_dialect()()
        dialect.server_version_info = version
        return dialect

    @property
    def dialect(self) -> sa.Dialect:
        """The SQLAlchemy dialect statements are compiled with: the live engine's (which
        knows the server's version), or :attr:`offline_dialect` when one is set."""
        if self.offline_dialect is not None:
            return self.offline_dialect
        return self.engine.dialect

    def server_version(self) -> tuple[int, ...]:
        """The server's version as numbers, ``()`` when unknown."""
        return tuple(int(p) for p in (self.dialect.server_version_info or ()) if isinstance(p, int))

    def engine_kwargs(self) -> dict[str, Any]:
        return {"pool_size": self.workers * 2 + 2, "max_overflow": 4, "pool_pre_ping": True}

    def describe(self) -> str:
        engine = self.engine
        version = ".".join(str(p) for p in (engine.dialect.server_version_info or ()))
        host = self._url.host or self._url.database or ""
        port = f":{self._url.port}" if self._url.port else ""
        db = f"/{self._url.database}" if self._url.host and self._url.database else ""
        return f"{self.engine_label} {version} at {host}{port}{db}".strip()

    def close(self) -> None:
        with self._guard:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # -- errors --------------------------------------------------------------------------
    def translate(self, exc: BaseException, doing: str) -> ConnectorError:
        """Turn a driver error into one line: connection, what we were doing, the cause."""
        orig = getattr(exc, "orig", None) or exc
        text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        text = redact(text, self.secrets | self._url_secrets())
        message = f"{self.name}: {doing}: {self.explain(orig, text)}"
        if self.is_transient(orig):
            return TransientError(message)
        return ConnectorError(message)

    def _url_secrets(self) -> frozenset[str]:
        return frozenset({self._url.password}) if self._url.password else frozenset()

    def explain(self, orig: BaseException, text: str) -> str:
        return text

    def is_transient(self, orig: BaseException) -> bool:
        return False

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except ConnectorError:
            raise
        except (sa.exc.DBAPIError, sa.exc.NoSuchTableError, *self._dbapi_errors()) as exc:
            raise self.translate(exc, doing) from None

    def _dbapi_errors(self) -> tuple[type[BaseException], ...]:
        """The driver's error classes (the text fast path may use a second driver).

        Looks only at an engine that exists: it runs while an error is being handled.
        """
        engine = self._engine
        if engine is None:
            return (sa.exc.DBAPIError,)
        return (engine.dialect.loaded_dbapi.Error,)

    @contextlib.contextmanager
    def raw(self) -> Iterator[Any]:
        """A pooled DBAPI connection; rolled back unless the block committed."""
        conn = self.engine.raw_connection()
        try:
            yield conn.driver_connection
        except BaseException:
            with contextlib.suppress(Exception):
                conn.driver_connection.rollback()
            raise
        finally:
            conn.close()

    def server_cursor(self, conn: Any) -> Any:
        return conn.cursor()

    # -- SQL helpers ---------------------------------------------------------------------
    def q(self, name: str) -> str:
        """An identifier quoted for SQL text (run as is, or through ``sa.text`` or
        ``literal_column``, which escape percent signs themselves): a ``%`` in a name is
        not doubled here."""
        preparer = self.dialect.identifier_preparer
        quoted = preparer.quote(name)
        if getattr(preparer, "_double_percents", False):
            quoted = quoted.replace("%%", "%")
        return quoted

    def sa_table(self, name: str, columns: Iterable[str]) -> sa.TableClause:
        return sa.table(name, *[sa.column(c) for c in columns])

    def compile(self, stmt: sa.ClauseElement) -> tuple[str, Any]:
        compiled = stmt.compile(dialect=self.dialect, compile_kwargs={"render_postcompile": True})
        params = compiled.construct_params()
        params = {k: self.adapt_param(v) for k, v in params.items()}
        if compiled.positional:
            return str(compiled), tuple(params[n] for n in compiled.positiontup or ())
        return str(compiled), params

    def adapt_param(self, value: Any) -> Any:
        """A key value as this driver must bind it to compare equal to the stored value."""
        return value

    @staticmethod
    def key_after(cols: list[sa.ColumnClause], vals: Key) -> sa.ColumnElement[bool]:
        """``(c1, c2, ...) > (v1, v2, ...)`` expanded, as not every engine has row values."""
        if len(cols) == 1:
            return cols[0] > vals[0]
        ors = []
        for i in range(len(cols)):
            ands = [cols[j] == vals[j] for j in range(i)]
            ands.append(cols[i] > vals[i])
            ors.append(sa.and_(*ands))
        return sa.or_(*ors)

    @staticmethod
    def key_upto(cols: list[sa.ColumnClause], vals: Key) -> sa.ColumnElement[bool]:
        """``(c1, c2, ...) <= (v1, v2, ...)`` expanded."""
        if len(cols) == 1:  # the plain form every range optimizer reads best
            return cols[0] <= vals[0]
        ors = []
        for i in range(len(cols)):
            ands = [cols[j] == vals[j] for j in range(i)]
            ands.append(cols[i] < vals[i])
            ors.append(sa.and_(*ands))
        ors.append(sa.and_(*[cols[j] == vals[j] for j in range(len(cols))]))
        return sa.or_(*ors)

    def _range(
        self, t: sa.TableClause, key: tuple[str, ...], lo: Key | None, hi: Key | None
    ) -> list[sa.ColumnElement[bool]]:
        cols = [t.c[k] for k in key]
        where = []
        if lo is not None:
            where.append(self.key_after(cols, lo))
        if hi is not None:
            where.append(self.key_upto(cols, hi))
        return where

    # -- reading -------------------------------------------------------------------------
    def list_tables(self) -> list[str]:
        with self.errors("listing tables"):
            return sorted(sa.inspect(self.engine).get_table_names())

    def table_exists(self, table: str) -> bool:
        with self.errors(f"looking up table {table}"):
            return bool(sa.inspect(self.engine).has_table(table))

    def count(
        self, table: str, key: tuple[str, ...] = (), lo: Key | None = None, hi: Key | None = None
    ) -> int:
        t = self.sa_table(table, key)
        stmt = sa.select(sa.func.count()).select_from(t).where(*self._range(t, key, lo, hi))
        (n,) = self._one_row(stmt, f"counting rows of {table}")
        return int(n)

    def _one_row(self, stmt: sa.ClauseElement, doing: str) -> Any:
        """The first row of a read-only statement (None if there is none)."""
        sql, params = self.compile(stmt)
        with self.errors(doing), self.raw() as conn:
            cur = conn.cursor()
            cur.execute(sql, params)
            row = cur.fetchone()
            cur.close()
            conn.rollback()
        return row

    def select_list(self, t: sa.TableClause, schema: TableSchema) -> list[Any]:
        """What a row read selects for ``schema``'s columns, in order: the columns
        themselves, or (engines that override this) expressions labelled with the column's
        name that read as its portable value (SQL Server's rowversion as BIGINT, Oracle's
        TIMESTAMP WITH TIME ZONE in UTC)."""
        return [t.c[c] for c in schema.column_names]

    def read_range(
        self,
        schema: TableSchema,
        key: tuple[str, ...],
        after: Key | None,
        limit: int | None,
        batch_rows: int,
        text: bool = False,
    ) -> Iterator[list[Row]]:
        t = self.sa_table(schema.name, schema.column_names)
        stmt = sa.select(*self.select_list(t, schema))
        if key:
            stmt = stmt.where(*self._range(t, key, after, None)).order_by(*[t.c[k] for k in key])
            if limit:
                stmt = stmt.limit(limit)
        yield from self._stream(stmt, batch_rows, f"reading {schema.name}", text)

    def read_keys(
        self, table: str, key: tuple[str, ...], lo: Key | None, hi: Key | None, batch_rows: int
    ) -> Iterator[list[Key]]:
        t = self.sa_table(table, key)
        stmt = sa.select(*[t.c[k] for k in key]).where(*self._range(t, key, lo, hi))
        yield from self._stream(
            stmt.order_by(*[t.c[k] for k in key]), batch_rows, f"reading keys of {table}"
        )

    def read_key_ranges(
        self, table: str, key: tuple[str, ...], ranges: list[tuple[Key | None, Key | None]]
    ) -> list[Key]:
        """The keys in any of the ``(lo, hi]`` ranges, a hundred ranges per statement."""
        t = self.sa_table(table, key)
        out: list[Key] = []
        for i in range(0, len(ranges), 100):
            part = ranges[i : i + 100]
            cond = sa.or_(*[sa.and_(sa.true(), *self._range(t, key, lo, hi)) for lo, hi in part])
            stmt = sa.select(*[t.c[k] for k in key]).where(cond)
            for batch in self._stream(stmt, 5000, f"reading keys of {table}"):
                out.extend(tuple(r) for r in batch)
        return out

    def _stream(
        self, stmt: sa.Select, batch_rows: int, doing: str, text: bool = False
    ) -> Iterator[list[Row]]:
        sql, params = self.compile(stmt)
        pinned = getattr(self._pinned, "conn", None)
        if pinned is not None:  # inside snapshot(): every read of this thread uses it
            source: Any = contextlib.nullcontext(pinned)
        else:
            source = self.text_connection() if text else self.raw()
        with self.errors(doing), source as conn:
            cur = self.server_cursor(conn)
            try:
                cur.execute(sql, params)
                while True:
                    rows = cur.fetchmany(batch_rows)
                    if not rows:
                        break
                    yield rows if isinstance(rows, list) else list(rows)
            finally:
                with contextlib.suppress(Exception):
                    cur.close()
                if pinned is None:
                    with contextlib.suppress(Exception):
                        conn.rollback()

    # -- catch-up reads ------------------------------------------------------------------
    def cursor_value(self, schema: TableSchema, column: str, value: Any) -> Any:
        """A watermark in the form this engine compares ``column`` with: date-times with a
        time zone for ``timestamptz`` columns, naive (UTC) ones otherwise."""
        if isinstance(value, dt.datetime):
            aware = schema.column(column).type.kind == "timestamptz"
            if aware and value.tzinfo is None:
                return value.replace(tzinfo=dt.UTC)
            if not aware and value.tzinfo is not None:
                return value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def max_value(self, schema: TableSchema, column: str) -> Any:
        """``MAX(column)`` as a portable value (None for an empty table)."""
        t = self.sa_table(schema.name, [column])
        (value,) = self._one_row(
            sa.select(sa.func.max(t.c[column])), f"reading the highest {column} of {schema.name}"
        )
        one = replace(schema, columns=[schema.column(column)])
        conv = self.row_converter(one)
        return conv((value,))[0] if conv is not None and value is not None else value

    def read_changed(
        self, schema: TableSchema, cursor: str, lo: Any, batch_rows: int, text: bool = False
    ) -> Iterator[list[Row]]:
        """Stream the rows whose ``cursor`` is above ``lo`` (every non-NULL one if None).

        Rows come in ``schema.columns`` order in no particular row order, raw as from
        :meth:`read_range` (``text`` the same way).
        """
        t = self.sa_table(schema.name, schema.column_names)
        c = t.c[cursor]
        where = c.is_not(None) if lo is None else c > self.adapt_param(lo)
        stmt = sa.select(*self.select_list(t, schema)).where(where)
        yield from self._stream(stmt, batch_rows, f"reading changes of {schema.name}", text)

    def key_summary(
        self, table: str, key: tuple[str, ...], lo: Key | None, hi: Key | None, with_sum: bool
    ) -> tuple[int, int | None]:
        """Rows in ``lo < key <= hi`` and, with ``with_sum`` (one integer key), their key sum.

        Both are computed inside the database; the pair is the range's fingerprint.
        """
        t = self.sa_table(table, key)
        cols = [sa.func.count()]
        if with_sum:
            # the key modulo a prime: the same on every engine, and a sum that cannot
            # overflow (SQLite's SUM stops at 2**63)
            cols.append(sa.func.coalesce(sa.func.sum(t.c[key[0]] % KEY_SUM_MODULUS), 0))
        stmt = sa.select(*cols).select_from(t).where(*self._range(t, key, lo, hi))
        row = self._one_row(stmt, f"summarising keys of {table}")
        return int(row[0]), (int(row[1]) if with_sum else None)

    def key_span(self, table: str, column: str) -> tuple[int | None, int | None]:
        """``MIN`` and ``MAX`` of an integer key column (None, None for an empty table)."""
        t = self.sa_table(table, [column])
        lo, hi = self._one_row(
            sa.select(sa.func.min(t.c[column]), sa.func.max(t.c[column])),
            f"reading the key span of {table}",
        )
        return (None if lo is None else int(lo)), (None if hi is None else int(hi))

    def key_buckets(
        self, table: str, column: str, origin: int, width: int
    ) -> dict[int, tuple[int, int]]:
        """Per bucket ``(key - origin) // width`` of an integer key: its row count and key
        sum (modulo :data:`KEY_SUM_MODULUS`), in one grouped scan inside the database.

        ``origin`` is at most the smallest key, so every bucket number is the same integer
        on every engine. The origin is written into the SQL (some engines refuse to group
        by an expression holding a bind variable) and divided by :meth:`int_div`.
        """
        t = self.sa_table(table, [column])
        c = t.c[column]
        origin_sql = sa.literal(int(origin), sa.BigInteger, literal_execute=True)
        bucket = self.int_div(c - origin_sql, width)
        stmt = sa.select(
            bucket.label("b"), sa.func.count(), sa.func.sum(c % KEY_SUM_MODULUS)
        ).group_by(bucket)
        sql, params = self.compile(stmt)
        with self.errors(f"summarising keys of {table}"), self.raw() as conn:
            cur = conn.cursor()
            cur.execute(sql, params)
            out = {int(b): (int(n), int(total)) for b, n, total in cur.fetchall()}
            cur.close()
            conn.rollback()
        return out

    def key_at(
        self, table: str, key: tuple[str, ...], lo: Key | None, hi: Key | None, offset: int
    ) -> Key | None:
        """The key ``offset`` rows into ``(lo, hi]`` in key order (None past the end)."""
        t = self.sa_table(table, key)
        stmt = (
            sa.select(*[t.c[k] for k in key])
            .where(*self._range(t, key, lo, hi))
            .order_by(*[t.c[k] for k in key])
            .limit(1)
            .offset(offset)
        )
        row = self._one_row(stmt, f"reading keys of {table}")
        return tuple(row) if row is not None else None

    def read_rows(self, schema: TableSchema, key: tuple[str, ...], keys: list[Key]) -> list[Row]:
        """The rows (portable values, ``schema.columns`` order) whose key is in ``keys``."""
        t = self.sa_table(schema.name, schema.column_names)
        conv = self.row_converter(schema)
        out: list[Row] = []
        step = 500 if len(key) == 1 else 100
        with self.errors(f"reading rows of {schema.name}"), self.raw() as conn:
            cur = conn.cursor()
            for i in range(0, len(keys), step):
                part = keys[i : i + step]
                if len(key) == 1:
                    values = [self.adapt_param(k[0]) for k in part]
                    where = _typed(t.c[key[0]], values).in_(values)
                else:
                    where = sa.or_(
                        *[
                            sa.and_(
                                *[
                                    t.c[c] == self.adapt_param(v)
                                    for c, v in zip(key, k, strict=True)
                                ]
                            )
                            for k in part
                        ]
                    )
                stmt = sa.select(*self.select_list(t, schema)).where(where)
                sql, params = self.compile(stmt)
                cur.execute(sql, params)
                out.extend(tuple(r) for r in cur.fetchall())
            cur.close()
            conn.rollback()
        return [conv(r) for r in out] if conv is not None else out

    def row_converter(self, schema: TableSchema) -> Callable[[Row], Row] | None:
        return None

    # -- validation reads (validators/checksum.py) ---------------------------------------
    #: how this engine writes the canonical row text (validators/canonical.py)
    render_class: ClassVar[type[Render] | None] = None

    def render(self) -> Render:
        if self.render_class is None:
            raise ConnectorError(f"{self.name}: {self.engine_label} cannot compute checksums")
        return self.render_class(self.q, self.capabilities.engine)

    def checksum_sql(self, specs: list[ColumnSpec], plain: list[ColumnSpec] | None = None) -> str:
        """The select list of a chunk checksum: rows, then the sum of the row hashes (and
        of the hashes of ``plain``'s columns)."""
        return self.render().select(specs, plain)

    def fast_hash(self) -> str | None:
        """A hash cheaper than the canonical MD5 for comparing with this same engine."""
        return None

    def fast_checksum_sql(self, schema: TableSchema, specs: list[ColumnSpec], kind: str) -> str:
        raise NotImplementedError

    def checksum(
        self, table: str, key: tuple[str, ...], lo: Key | None, hi: Key | None, select: str
    ) -> tuple[int, ...]:
        """The checksum row of ``lo < key <= hi`` (every row when ``key`` is empty): the
        row count, then the hash sums of ``select``; an empty range gives zeros."""
        t = self.sa_table(table, key)
        stmt = sa.select(sa.literal_column(select)).select_from(t)
        stmt = stmt.where(*self._range(t, key, lo, hi))
        row = self._one_row(stmt, f"computing a checksum of {table}")
        return tuple(int(v) if v is not None else 0 for v in row)

    def checksum_groups(
        self,
        table: str,
        column: str,
        lo: Key | None,
        hi: Key | None,
        origin: int,
        width: int,
        select: str,
    ) -> dict[int, tuple[int, ...]]:
        """Checksum rows of ``lo < column <= hi`` (an integer key) per group ``(column -
        origin) // width``, in one scan: a differing range's parts at once."""
        t = sa.table(table, sa.column(column, sa.BigInteger))
        c = t.c[column]
        group = self.int_div(c - sa.literal(origin, sa.BigInteger), width)
        stmt = (
            sa.select(group.label("g"), sa.literal_column(select))
            .where(*self._range(t, (column,), lo, hi))
            .group_by(group)
        )
        return self._grouped_checksums(stmt, f"computing checksums of {table}")

    def int_div(self, expr: sa.ColumnElement[Any], width: int) -> sa.ColumnElement[Any]:
        """``expr // width`` as a whole number (``expr`` is never negative)."""
        return expr // sa.literal(width, sa.BigInteger)

    def _grouped_checksums(self, stmt: sa.Select, doing: str) -> dict[int, tuple[int, ...]]:
        """``{group: (rows, sums...)}`` from a grouped checksum statement (group first)."""
        sql, params = self.compile(stmt)
        with self.errors(doing), self.raw() as conn:
            cur = conn.cursor()
            cur.execute(sql, params)
            out = {
                int(r[0]): tuple(int(v) if v is not None else 0 for v in r[1:])
                for r in cur.fetchall()
            }
            cur.close()
            conn.rollback()
        return out

    def _bucket(self, key_specs: list[ColumnSpec], parts: int) -> sa.ColumnElement[Any]:
        return sa.literal_column(self.render().bucket(key_specs, parts))

    def checksum_buckets(
        self, table: str, key_specs: list[ColumnSpec], parts: int, select: str
    ) -> dict[int, tuple[int, ...]]:
        """Checksum rows grouped by a hash of the key into ``parts`` groups, in one scan."""
        t = self.sa_table(table, [s.name for s in key_specs])
        b = self._bucket(key_specs, parts).label("migrate_bucket")
        stmt = sa.select(b, sa.literal_column(select)).select_from(t).group_by(sa.text("1"))
        return self._grouped_checksums(stmt, f"computing checksums of {table}")

    def read_buckets(
        self, schema: TableSchema, key_specs: list[ColumnSpec], parts: int, buckets: list[int]
    ) -> list[Row]:
        """The rows (portable values) whose key hashes into one of the groups ``buckets``."""
        t = self.sa_table(schema.name, schema.column_names)
        stmt = sa.select(*self.select_list(t, schema)).where(
            self._bucket(key_specs, parts).in_(buckets)
        )
        return self._portable(schema, stmt, f"reading rows of {schema.name}")

    def read_between(
        self,
        schema: TableSchema,
        key: tuple[str, ...],
        lo: Key | None,
        hi: Key | None,
        batch_rows: int,
    ) -> list[Row]:
        """The rows (portable values) with ``lo < key <= hi``."""
        t = self.sa_table(schema.name, schema.column_names)
        stmt = sa.select(*self.select_list(t, schema)).where(*self._range(t, key, lo, hi))
        return self._portable(schema, stmt, f"reading rows of {schema.name}", batch_rows)

    def _portable(
        self, schema: TableSchema, stmt: sa.Select, doing: str, batch_rows: int = 5000
    ) -> list[Row]:
        conv = self.row_converter(schema)
        out: list[Row] = []
        for batch in self._stream(stmt, batch_rows, doing):
            out.extend(conv(tuple(r)) if conv is not None else tuple(r) for r in batch)
        return out

    def count_null(self, table: str, columns: tuple[str, ...]) -> int:
        """Rows with a NULL in any of ``columns``."""
        t = self.sa_table(table, columns)
        stmt = sa.select(sa.func.count()).select_from(t)
        stmt = stmt.where(sa.or_(*[t.c[c].is_(None) for c in columns]))
        (n,) = self._one_row(stmt, f"counting NULL keys of {table}")
        return int(n)

    def key_span_in(
        self, table: str, column: str, lo: Key | None, hi: Key | None
    ) -> tuple[int | None, int | None]:
        """``MIN`` and ``MAX`` of an integer key inside ``(lo, hi]``."""
        t = self.sa_table(table, [column])
        stmt = sa.select(sa.func.min(t.c[column]), sa.func.max(t.c[column])).where(
            *self._range(t, (column,), lo, hi)
        )
        a, b = self._one_row(stmt, f"reading the key span of {table}")
        return (None if a is None else int(a)), (None if b is None else int(b))

    def row_texts(self, table: str, key: tuple[str, ...], specs: list[ColumnSpec]) -> list[Row]:
        """``(key..., canonical row text)`` of every row, in key order (for tests and
        for looking at how a row is written)."""
        t = self.sa_table(table, key)
        stmt = sa.select(
            *[t.c[k] for k in key], sa.literal_column(self.render().row(specs))
        ).order_by(*[t.c[k] for k in key])
        sql, params = self.compile(stmt)
        with self.errors(f"reading row texts of {table}"), self.raw() as conn:
            cur = conn.cursor()
            cur.execute(sql, params)
            rows = [tuple(r) for r in cur.fetchall()]
            cur.close()
            conn.rollback()
        return rows

    # -- the text fast path --------------------------------------------------------------
    # A source that ``reads_text`` can return rows in its own text form (numbers as
    # numbers, dates, times and decimals as text, binary as bytes) when the target
    # ``loads_text`` (its spool is text anyway): no per-value Python objects are built.
    def reads_text(self) -> bool:
        return False

    def loads_text(self) -> bool:
        return False

    def text_connection(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def key_converter(
        self, schema: TableSchema, key: tuple[str, ...]
    ) -> Callable[[Key], Key] | None:
        """Turns key values read in text form into the typed values a bound parameter needs."""
        return None

    # -- schema --------------------------------------------------------------------------
    @contextlib.contextmanager
    def inspector(self) -> Iterator[Any]:
        """The SQLAlchemy inspector :meth:`read_schema` reflects a table with."""
        yield sa.inspect(self.engine)

    def read_schema(self, table: str) -> TableSchema:
        with self.errors(f"reading the schema of {table}"), self.inspector() as insp:
            raw_cols = insp.get_columns(table)
            pk = tuple(insp.get_pk_constraint(table).get("constrained_columns") or ())
            raw_indexes = insp.get_indexes(table)
            try:
                uniques = insp.get_unique_constraints(table)
            except NotImplementedError:
                uniques = []
            raw_fks = insp.get_foreign_keys(table)
            collation = self.table_collation(insp, table)
        columns = []
        for rc in raw_cols:
            ptype, note = self.portable_type(rc["type"])
            col = Column(name=rc["name"], type=ptype, nullable=bool(rc.get("nullable", True)))
            if note:
                col.notes.append(note)
            col.autoincrement = self.is_autoincrement(rc, pk)
            if not col.autoincrement:
                col.default = self.parse_default(rc.get("default"), col)
            col.collation = getattr(rc["type"], "collation", None)
            columns.append(col)
        indexes: list[Index] = []
        seen: set[tuple[str, ...]] = set()
        for ix in raw_indexes:
            cols = tuple(c for c in ix.get("column_names") or () if c)
            if not cols or len(cols) != len(ix.get("column_names") or ()):
                continue  # expression indexes are not carried
            if cols == pk or (cols, ix.get("unique")) in seen:
                continue
            seen.add(cols)
            indexes.append(
                Index(ix["name"] or f"ix_{table}_{'_'.join(cols)}", cols, bool(ix.get("unique")))
            )
        for uc in uniques:
            cols = tuple(uc.get("column_names") or ())
            if cols and cols not in seen and cols != pk:
                seen.add(cols)
                indexes.append(Index(uc.get("name") or f"uq_{table}_{'_'.join(cols)}", cols, True))
        fks = [
            ForeignKey(
                fk.get("name"),
                tuple(fk["constrained_columns"]),
                fk["referred_table"],
                tuple(fk["referred_columns"]),
                (fk.get("options") or {}).get("ondelete"),
                (fk.get("options") or {}).get("onupdate"),
            )
            for fk in raw_fks
        ]
        return TableSchema(table, columns, pk, indexes, fks, collation)

    def table_collation(self, insp: Any, table: str) -> str | None:
        return None

    def is_autoincrement(self, raw: dict[str, Any], pk: tuple[str, ...]) -> bool:
        return raw.get("autoincrement") is True and pk == (raw["name"],)

    def portable_type(self, t: Any) -> tuple[PType, str | None]:
        """Map a reflected SQLAlchemy type to a PType; engines override what differs."""
        if isinstance(t, st.Boolean):
            return PType("boolean"), None
        if isinstance(t, st.Enum):
            return PType("enum", values=tuple(t.enums)), None
        if isinstance(t, st.SmallInteger):
            return PType("int16"), None
        if isinstance(t, st.BigInteger):
            return PType("int64"), None
        if isinstance(t, st.Integer):
            return PType("int32"), None
        if isinstance(t, st.Float):
            return PType("float64"), None
        if isinstance(t, st.Numeric):
            return PType("decimal", precision=t.precision, scale=t.scale), None
        if isinstance(t, st.JSON):
            return PType("json"), None
        if isinstance(t, st.Uuid):
            return PType("uuid"), None
        if isinstance(t, (st.CHAR, st.NCHAR)) and t.length:
            return PType("char", length=t.length), None
        if isinstance(t, st.Text):
            return PType("text", length=t.length), None
        if isinstance(t, st.String):
            return (PType("varchar", length=t.length), None) if t.length else (PType("text"), None)
        if isinstance(t, st.BINARY) and getattr(t, "length", None):
            return PType("binary", length=t.length), None
        if isinstance(t, st.VARBINARY) and getattr(t, "length", None):
            return PType("varbinary", length=t.length), None
        if isinstance(t, st._Binary):
            return PType("blob", length=getattr(t, "length", None)), None
        if isinstance(t, st.DateTime):
            fsp = getattr(t, "fsp", None) or getattr(t, "precision", None)
            kind = "timestamptz" if t.timezone else "datetime"
            return PType(kind, precision=6 if fsp is None else fsp), None
        if isinstance(t, st.Date):
            return PType("date"), None
        if isinstance(t, st.Time):
            fsp = getattr(t, "fsp", None) or getattr(t, "precision", None)
            return PType("time", precision=6 if fsp is None else fsp), None
        return PType("text"), f"type {t} is not known to migrate: copied as text"

    def parse_default(self, text: str | None, col: Column) -> Default | None:
        """Read a reflected default; one that cannot be carried is noted and dropped."""
        if text is None:
            return None
        raw = str(text).strip()
        raw = re.sub(r"::[\w\s\"\[\]().]+$", "", raw).strip()  # PostgreSQL casts
        while raw.startswith("(") and raw.endswith(")"):
            raw = raw[1:-1].strip()
        if raw.upper() == "NULL":
            return None
        if len(raw) >= 2 and raw[0] == raw[-1] == "'":
            return Default("literal", raw[1:-1].replace("''", "'"))
        if _NUMBER.match(raw):
            return Default("literal", Decimal(raw))
        if raw.lower() in ("true", "false"):
            return Default("literal", raw.lower() == "true")
        on_update = re.match(
            r"^(.*?)\s+on\s+update\s+(current_timestamp|now)\s*(\(\s*\d*\s*\))?$", raw, re.I
        )
        if on_update and _CURRENT_TS.match(on_update.group(1).strip()):
            return Default("current_timestamp", "on update")
        if _CURRENT_TS.match(raw):
            return Default("current_timestamp")
        col.notes.append(f"default {raw} is an expression migrate does not carry: dropped")
        return None

    # -- identifiers ---------------------------------------------------------------------
    #: how the engine stores an unquoted name (``"upper"``: Oracle); a name that must be
    #: quoted to keep its case is then noted
    folds_unquoted: ClassVar[str | None] = None

    def fit_identifier(self, name: str) -> tuple[str, str | None]:
        """The name this engine creates for ``name``, and why it differs (None: kept).

        Contract: deterministic (every run, validation and rollback finds the same
        object); the result fits ``capabilities.max_identifier_length`` (UTF-8 bytes
        where ``identifier_bytes``, else characters); two different names over the limit
        get different results: the name is cut and ends in ``_`` and eight hex digits of
        the MD5 of the whole name.
        """
        caps = self.capabilities
        limit = caps.max_identifier_length
        unit = "bytes" if caps.identifier_bytes else "characters"

        def size(text: str) -> int:
            return len(text.encode("utf-8")) if caps.identifier_bytes else len(text)

        if size(name) <= limit:
            return name, None
        digest = hashlib.md5(name.encode("utf-8")).hexdigest()[:8]
        cut = name
        while cut and size(cut) + 9 > limit:
            cut = cut[:-1]
        fitted = f"{cut}_{digest}"
        return fitted, f"name longer than {limit} {unit}: created as {fitted}"

    def identifier_note(self, name: str) -> str | None:
        """What a user of this engine must know about ``name`` coming from another
        engine: a reserved word here (created quoted), or a case this engine keeps only
        in quotes. None when the name needs no care."""
        preparer = self.dialect.identifier_preparer
        if name.lower() in preparer.reserved_words:
            return (
                f"{name} is a reserved word in {self.engine_label}: created quoted, as"
                f" {self.q(name)}"
            )
        if self.folds_unquoted == "upper" and name != name.lower() and name != name.upper():
            return (
                f"{name} is created quoted, as {self.q(name)}: {self.engine_label} keeps"
                " the case of a mixed-case name only in quotes"
            )
        return None

    def _fit_all(self, names: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.fit_identifier(n)[0] for n in names)

    # -- writing -------------------------------------------------------------------------
    def target_schema(
        self, source: TableSchema, source_caps: Capabilities, name: str | None = None
    ) -> TableSchema:
        """Adapt ``source`` to this engine: each column's PType through :meth:`adapt_type`,
        and every column, key, index and foreign-key name through :meth:`fit_identifier`
        (columns keep their order, so the n-th target column holds the n-th source
        column). ``name`` is the table name to create (already fitted by the caller)."""
        same = source_caps.engine == self.capabilities.engine
        columns = []
        for col in source.columns:
            ptype, note = self.adapt_type(col.type)
            fitted, why = self.fit_identifier(col.name)
            new = replace(
                col,
                name=fitted,
                type=ptype,
                notes=list(col.notes),
                collation=col.collation if same else None,
            )
            if why:
                new.notes.append(why)
            elif not same and (care := self.identifier_note(col.name)):
                new.notes.append(care)
            if note:
                new.notes.append(note)
            if col.default and col.default.value == "on update" and not self.keeps_on_update:
                new.notes.append(
                    "ON UPDATE CURRENT_TIMESTAMP is not carried to"
                    f" {self.engine_label} (the default is)"
                )
            columns.append(new)
        indexes = source.indexes
        tname = name or source.name
        if self.capabilities.index_namespace == "schema" and source_caps.index_namespace == "table":
            indexes = [
                replace(ix, name=ix.name if ix.name.startswith(tname) else f"{tname}_{ix.name}")
                for ix in indexes
            ]
        indexes = [
            replace(ix, name=self.fit_identifier(ix.name)[0], columns=self._fit_all(ix.columns))
            for ix in indexes
        ]
        fks = [
            replace(
                fk,
                name=self.fit_identifier(fk.name)[0] if fk.name else None,
                columns=self._fit_all(fk.columns),
                ref_table=self.fit_identifier(fk.ref_table)[0],
                ref_columns=self._fit_all(fk.ref_columns),
            )
            for fk in source.foreign_keys
        ]
        return replace(
            source,
            name=tname,
            columns=columns,
            primary_key=self._fit_all(source.primary_key),
            indexes=indexes,
            foreign_keys=fks,
            collation=source.collation if same else None,
        )

    def adapt_type(self, ptype: PType) -> tuple[PType, str | None]:
        return ptype, None

    def native_type(self, ptype: PType) -> Any:
        raise NotImplementedError

    def render_default(self, col: Column) -> Any:
        d = col.default
        if d is None:
            return None
        if d.kind == "current_timestamp":
            return sa.text("CURRENT_TIMESTAMP")
        value = d.value
        if isinstance(value, bool):
            return (
                sa.text("1" if value else "0")
                if col.type.kind != "boolean"
                else sa.true()
                if value
                else sa.false()
            )
        if isinstance(value, Decimal):
            if col.type.kind in ("char", "varchar", "text", "enum"):
                return str(value)
            return sa.text(format_decimal(value))
        return str(value)

    def sa_schema(
        self, schema: TableSchema, metadata: sa.MetaData, with_fks: bool = False
    ) -> sa.Table:
        cols = []
        for col in schema.columns:
            kwargs: dict[str, Any] = {
                "nullable": col.nullable,
                "autoincrement": bool(col.autoincrement),
            }
            default = self.render_default(col)
            if default is not None:
                kwargs["server_default"] = default
            cols.append(
                sa.Column(col.name, self.native_type_for(col), *self.column_extras(col), **kwargs)
            )
        args: list[Any] = list(cols)
        if schema.primary_key:
            args.append(sa.PrimaryKeyConstraint(*schema.primary_key))
        if with_fks:
            for fk in schema.foreign_keys:
                args.append(
                    sa.ForeignKeyConstraint(
                        list(fk.columns),
                        [f"{fk.ref_table}.{c}" for c in fk.ref_columns],
                        name=fk.name,
                        ondelete=fk.on_delete,
                        onupdate=fk.on_update,
                        use_alter=False,
                    )
                )
        return sa.Table(schema.name, metadata, *args, **self.table_kwargs(schema))

    def native_type_for(self, col: Column) -> Any:
        return self.native_type(col.type)

    def column_extras(self, col: Column) -> list[Any]:
        return []

    def table_kwargs(self, schema: TableSchema) -> dict[str, Any]:
        return {}

    def create_table_ddl(self, schema: TableSchema) -> sa.schema.CreateTable:
        """The ``CREATE TABLE`` statement :meth:`create_table` runs (without secondary
        indexes; foreign keys only where :attr:`fks_inline`)."""
        metadata = sa.MetaData()
        table = self.sa_schema(schema, metadata, with_fks=self.fks_inline)
        if self.fks_inline:  # referenced tables must exist in the metadata to compile
            for fk in schema.foreign_keys:
                if fk.ref_table not in metadata.tables:
                    sa.Table(
                        fk.ref_table, metadata, *[sa.Column(c, sa.Integer) for c in fk.ref_columns]
                    )
        return sa.schema.CreateTable(table)

    def create_table_sql(self, schema: TableSchema) -> str:
        """:meth:`create_table_ddl` as this engine's SQL text (dry runs, compile tests)."""
        return str(self.create_table_ddl(schema).compile(dialect=self.dialect)).strip()

    def create_table(self, schema: TableSchema) -> None:
        ddl = self.create_table_ddl(schema)
        with self.errors(f"creating table {schema.name}"), self.engine.begin() as conn:
            conn.execute(ddl)

    fks_inline: ClassVar[bool] = False
    keeps_on_update: ClassVar[bool] = False

    def drop_table_sql(self, table: str) -> str:
        return f"DROP TABLE IF EXISTS {self.q(table)}"

    def drop_fk_sql(self, table: str, name: str) -> str:
        """Drop the foreign key ``name`` of ``table`` (the undo of creating it)."""
        return f"ALTER TABLE {self.q(table)} DROP CONSTRAINT {self.q(name)}"

    def drop_table(self, table: str, backup: RowBackup | None = None) -> None:
        """Drop ``table``; with ``backup``, its rows are copied to the backup table first,
        in the same transaction. An engine whose DDL commits (MySQL, Oracle) commits the
        copy before the DROP: when the DROP then fails, the copy and its mark are deleted
        again, so the record's undo leaves the table (still there) alone."""
        try:
            with self.errors(f"dropping table {table}"), self.engine.begin() as conn:
                for sql in self.backup_all_sql(table, backup) if backup is not None else []:
                    conn.execute(sa.text(sql))
                conn.execute(sa.text(self.drop_table_sql(table)))
        except ConnectorError:
            if backup is not None and backup.recorded is not None:
                with contextlib.suppress(Exception), self.engine.begin() as conn:
                    conn.execute(sa.text(self._forget(backup.table, backup.recorded)))
            raise

    def truncate_table(self, table: str, backup: RowBackup | None = None) -> None:
        """Delete every row of ``table`` (``DELETE``, never ``TRUNCATE``, which commits on
        some engines); with ``backup``, they are copied to the backup table first, in the
        same transaction."""
        with self.errors(f"emptying table {table}"), self.engine.begin() as conn:
            for sql in self.backup_all_sql(table, backup) if backup is not None else []:
                conn.execute(sa.text(sql))
            conn.execute(sa.text(f"DELETE FROM {self.q(table)}"))

    def existing_indexes(self, table: str) -> list[str]:
        with self.errors(f"reading the indexes of {table}"):
            insp = sa.inspect(self.engine)
            names = [ix["name"] for ix in insp.get_indexes(table) if ix.get("name")]
            try:
                names += [u["name"] for u in insp.get_unique_constraints(table) if u.get("name")]
            except NotImplementedError:
                pass
            return names

    def existing_foreign_keys(self, table: str) -> list[str]:
        """The names of the table's foreign keys, and for each its signature
        ``(col, ...)->ref_table`` (so an unnamed one is recognised too)."""
        with self.errors(f"reading the foreign keys of {table}"):
            out = []
            for fk in sa.inspect(self.engine).get_foreign_keys(table):
                if fk.get("name"):
                    out.append(fk["name"])
                cols = ",".join(fk.get("constrained_columns") or ())
                out.append(f"({cols})->{fk.get('referred_table')}")
            return out

    def create_indexes(self, schema: TableSchema) -> list[str]:
        done = []
        for ix in schema.indexes:
            sql = self.index_ddl(schema, ix)
            with (
                self.errors(f"creating index {ix.name} on {schema.name}"),
                self.engine.begin() as conn,
            ):
                conn.execute(sa.text(sql))
            done.append(sql)
        return done

    def index_ddl(self, schema: TableSchema, ix: Index) -> str:
        cols = ", ".join(self.q(c) for c in ix.columns)
        unique = "UNIQUE " if ix.unique else ""
        return f"CREATE {unique}INDEX {self.q(ix.name)} ON {self.q(schema.name)} ({cols})"

    def create_foreign_keys(self, schema: TableSchema) -> list[str]:
        if self.fks_inline:
            return []
        done = []
        for fk in schema.foreign_keys:
            sql = self.fk_ddl(schema, fk)
            with self.errors(f"creating foreign key on {schema.name}"), self.engine.begin() as conn:
                conn.execute(sa.text(sql))
            done.append(sql)
        return done

    def fk_ddl(self, schema: TableSchema, fk: ForeignKey) -> str:
        name = f"CONSTRAINT {self.q(fk.name)} " if fk.name else ""
        sql = (
            f"ALTER TABLE {self.q(schema.name)} ADD {name}FOREIGN KEY"
            f" ({', '.join(self.q(c) for c in fk.columns)}) REFERENCES {self.q(fk.ref_table)}"
            f" ({', '.join(self.q(c) for c in fk.ref_columns)})"
        )
        if fk.on_delete:
            sql += f" ON DELETE {fk.on_delete}"
        if fk.on_update:
            sql += f" ON UPDATE {fk.on_update}"
        return sql

    def finish_table(self, schema: TableSchema) -> None:
        return None

    def delete_range(self, table: str, key: tuple[str, ...], lo: Key | None, hi: Key | None) -> int:
        """Delete the rows with ``lo < key <= hi``; returns how many."""
        t = self.sa_table(table, key)
        sql, params = self.compile(sa.delete(t).where(*self._range(t, key, lo, hi)))
        with self.errors(f"deleting rows of {table}"), self.raw() as conn:
            cur = conn.cursor()
            cur.execute(sql, params)
            deleted = cur.rowcount
            conn.commit()
        return int(deleted)

    def delete_keys(
        self,
        table: str,
        key: tuple[str, ...],
        keys: Iterable[Key],
        backup: RowBackup | None = None,
    ) -> int:
        """Delete the rows with these keys in one transaction; with ``backup``, each
        statement's rows are copied to the backup table first (:meth:`kept_before_delete`)."""
        if len(key) == 1:  # one statement per 500 keys
            return self._delete_in(table, key[0], keys, backup)
        t = self.sa_table(table, key)
        stmt = sa.delete(t).where(*[t.c[k] == sa.bindparam(f"k{i}") for i, k in enumerate(key)])
        compiled = stmt.compile(dialect=self.dialect)
        sql = str(compiled)
        order = list(compiled.positiontup or ()) if compiled.positional else None
        deleted = 0
        with self.errors(f"deleting rows of {table}"), self.raw() as conn:
            cur = conn.cursor()
            batch: list[Any] = []
            for k in [*keys, None]:
                if k is not None:
                    named = {f"k{i}": self.adapt_param(v) for i, v in enumerate(k)}
                    batch.append(tuple(named[n] for n in order) if order is not None else named)
                if batch and (len(batch) >= 1000 or k is None):
                    if backup is not None:
                        cur.executemany(self.kept_before_delete(sql, table, backup), batch)
                    cur.executemany(sql, batch)
                    deleted += max(cur.rowcount, 0)
                    batch = []
            conn.commit()
        return deleted

    def _delete_in(
        self, table: str, column: str, keys: Iterable[Key], backup: RowBackup | None = None
    ) -> int:
        t = self.sa_table(table, [column])
        deleted = 0
        with self.errors(f"deleting rows of {table}"), self.raw() as conn:
            cur = conn.cursor()
            batch: list[Any] = []
            for k in [*keys, None]:
                if k is not None:
                    batch.append(self.adapt_param(k[0]))
                if batch and (len(batch) >= 500 or k is None):
                    where = _typed(t.c[column], batch).in_(batch)
                    sql, params = self.compile(sa.delete(t).where(where))
                    if backup is not None:
                        cur.execute(self.kept_before_delete(sql, table, backup), params)
                    cur.execute(sql, params)
                    deleted += max(cur.rowcount, 0)
                    batch = []
            conn.commit()
        return deleted

    def new_spool(self, schema: TableSchema, workdir: Path) -> Any:
        return PickleSpool(workdir)

    def load_spool(self, schema: TableSchema, spool: Any) -> int:
        """Write a closed spool in one transaction (see :meth:`write_spool`)."""
        with self.errors(f"writing rows to {schema.name}"), self.raw() as conn:
            written = self.write_spool(conn, schema, spool, schema.name)
            conn.commit()
        return written

    def write_spool(self, conn: Any, schema: TableSchema, spool: Any, table: str) -> int:
        """The engine's bulk path into ``table`` on ``conn``, without committing.

        Default: ``executemany`` INSERT of the spooled batches.
        """
        t = self.sa_table(table, schema.column_names)
        compiled = sa.insert(t).compile(dialect=self.dialect)
        sql = str(compiled)
        names = list(compiled.positiontup or ()) if compiled.positional else None
        to_db = self.value_adapters(schema)
        written = 0
        cur = conn.cursor()
        for batch in spool.batches():
            rows = [
                tuple(None if v is None else f(v) for f, v in zip(to_db, r, strict=True))
                for r in batch
            ]
            if names is None:
                cols = schema.column_names
                cur.executemany(sql, [dict(zip(cols, r, strict=True)) for r in rows])
            else:
                cur.executemany(sql, rows)
            written += len(rows)
        cur.close()
        return written

    # -- upsert by key -------------------------------------------------------------------
    #: the staging table a merge loads first (temporary: private to its connection)
    STAGE = "migrate_stage"
    #: savepoint statements (``{}`` is the name); an engine without RELEASE sets ""
    SAVEPOINT: ClassVar[str] = "SAVEPOINT {}"
    ROLLBACK_TO: ClassVar[str] = "ROLLBACK TO SAVEPOINT {}"
    RELEASE: ClassVar[str] = "RELEASE SAVEPOINT {}"

    def merge_spool(
        self,
        schema: TableSchema,
        key: tuple[str, ...],
        spool: Any,
        backup: RowBackup | None = None,
    ) -> tuple[int, int]:
        """Upsert a closed spool by ``key`` in one transaction; returns (applied, changed).

        The rows are bulk-loaded into a temporary staging table, compared with the
        table (``changed`` = new rows plus rows whose values differ), then upserted with
        the engine's own statement (:meth:`upsert_from_stage`). Applying the same spool
        twice leaves the same table and reports 0 changed the second time. With
        ``backup`` and rows that change, the rows about to change and the keys about to
        be added are copied to the backup table first (:meth:`backup_changes_sql`).
        """
        if not key:
            raise ConnectorError(f"{self.name}: {schema.name} has no key to upsert by")
        stage = replace(schema, name=self.STAGE)
        with self.errors(f"merging rows into {schema.name}"), self.raw() as conn:
            cur = conn.cursor()
            for sql in self.stage_ddl(schema):
                cur.execute(sql)
            applied = self.write_spool(conn, stage, spool, self.STAGE)
            cur.execute(self.changed_sql(schema, key))
            (changed,) = cur.fetchone()
            if backup is not None and changed:
                for sql in self.backup_changes_sql(schema, key, backup):
                    cur.execute(sql)
            self.run_upsert(cur, schema, key)
            for sql in self.unstage_ddl():
                cur.execute(sql)
            conn.commit()
            cur.close()
        return applied, int(changed)

    def run_upsert(self, cur: Any, schema: TableSchema, key: tuple[str, ...]) -> None:
        """Upsert the staged rows into the table (inside the merge's transaction).

        When a unique index other than the key conflicts (a unique value moved from one
        staged row to another), the statement is undone to a savepoint and the staged
        rows replace their old versions: delete by key, then insert. If that conflicts
        too, the error names the index and what to do.
        """
        cur.execute(self.SAVEPOINT.format("migrate_upsert"))
        try:
            for sql in self.upsert_statements(schema, key):
                cur.execute(sql)
        except Exception as exc:
            if not self.is_unique_violation(exc):
                raise
            cur.execute(self.ROLLBACK_TO.format("migrate_upsert"))
            t, s = self.q(schema.name), self.q(self.STAGE)
            same = " AND ".join(f"{s}.{self.q(k)} = {t}.{self.q(k)}" for k in key)
            cols = ", ".join(self.q(c) for c in schema.column_names)
            try:
                cur.execute(f"DELETE FROM {t} WHERE EXISTS (SELECT 1 FROM {s} WHERE {same})")
                cur.execute(f"INSERT INTO {t} ({cols}) SELECT {cols} FROM {s}")
            except Exception as again:
                if not self.is_unique_violation(again):
                    raise
                raise ConnectorError(
                    f"{self.name}: upserting changed rows into {schema.name}: a row that"
                    " did not change holds a value of a unique index another row now has"
                    f" ({self.unique_violation_detail(again)}); drop that index on the"
                    " target while catching up and create it again after the cut-over"
                ) from None
        if self.RELEASE:
            cur.execute(self.RELEASE.format("migrate_upsert"))

    def upsert_statements(self, schema: TableSchema, key: tuple[str, ...]) -> list[str]:
        """The statements that upsert the staged rows (one, by default)."""
        return [self.upsert_from_stage(schema, key)]

    def is_unique_violation(self, exc: BaseException) -> bool:
        return False

    def unique_violation_detail(self, exc: BaseException) -> str:
        text = str(getattr(exc, "orig", exc)).strip().splitlines()
        return redact(text[0], self.secrets) if text else "a unique index"

    def stage_ddl(self, schema: TableSchema) -> list[str]:
        """Statements creating the empty staging table shaped like ``schema``'s table."""
        return [
            f"DROP TABLE IF EXISTS temp.{self.q(self.STAGE)}",
            f"CREATE TEMP TABLE {self.q(self.STAGE)} AS SELECT * FROM"
            f" {self.q(schema.name)} WHERE 1 = 0",
        ]

    def unstage_ddl(self) -> list[str]:
        return [f"DROP TABLE temp.{self.q(self.STAGE)}"]

    def same_value(self, a: str, b: str, col: Column) -> str:
        """SQL true when two column expressions hold the same value, NULLs included."""
        return f"{a} IS NOT DISTINCT FROM {b}"

    def differs_sql(self, schema: TableSchema, key: tuple[str, ...]) -> str | None:
        """SQL true when the staged row ``s`` differs from the table's row ``t`` in a
        column outside the key, NULLs compared as equal (None: no such column)."""
        same = [
            self.same_value(f"s.{self.q(c.name)}", f"t.{self.q(c.name)}", c)
            for c in schema.columns
            if c.name not in key
        ]
        return f"NOT ({' AND '.join(same)})" if same else None

    def changed_sql(self, schema: TableSchema, key: tuple[str, ...]) -> str:
        """Count the staged rows that are new or differ from the table's row."""
        s, t = self.q(self.STAGE), self.q(schema.name)
        on = " AND ".join(f"s.{self.q(k)} = t.{self.q(k)}" for k in key)
        differs = self.differs_sql(schema, key)
        return (
            f"SELECT COUNT(*) FROM {s} s LEFT JOIN {t} t ON {on}"
            f" WHERE t.{self.q(key[0])} IS NULL{f' OR {differs}' if differs else ''}"
        )

    def upsert_from_stage(self, schema: TableSchema, key: tuple[str, ...]) -> str:
        """``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE`` (PostgreSQL, SQLite)."""
        cols = ", ".join(self.q(c) for c in schema.column_names)
        keys = ", ".join(self.q(k) for k in key)
        rest = [c for c in schema.column_names if c not in key]
        action = (
            "DO UPDATE SET " + ", ".join(f"{self.q(c)} = excluded.{self.q(c)}" for c in rest)
            if rest
            else "DO NOTHING"
        )
        return (
            f"INSERT INTO {self.q(schema.name)} ({cols}) SELECT {cols} FROM"
            f" {self.q(self.STAGE)} WHERE true ON CONFLICT ({keys}) {action}"
        )

    def value_adapters(self, schema: TableSchema) -> list[Callable[[Any], Any]]:
        return [lambda v: v for _ in schema.columns]

    # -- row backups and undo (migrate/backup.py, migrate/rollback.py) --------------------
    # A backup table holds ``migrate_undo`` (the undo record's id), ``migrate_op`` (u: a
    # row before it changed, i: the key of a row added, d: a row before it was deleted)
    # and the table's columns. The statements below are plain SQL with every identifier
    # quoted by :meth:`q` and the record's id written in: what the tool runs is what the
    # rollback script shows.
    #: run first by :meth:`run_statements` (an engine that must be told to begin)
    UNDO_BEGIN: ClassVar[str | None] = None

    def _kept_columns(self, columns: list[str]) -> str:
        return ", ".join(self.q(c) for c in [UNDO_COLUMN, OP_COLUMN, *columns])

    def backup_changes_sql(
        self, schema: TableSchema, key: tuple[str, ...], backup: RowBackup
    ) -> list[str]:
        """Inside a merge, before the upsert: copy the table's rows that the staged rows
        will change (op ``u``, whole rows) and the staged keys the table lacks (op ``i``,
        the key alone) to the backup table, tagged with the undo record's id."""
        b, t, s = self.q(backup.table), self.q(schema.name), self.q(self.STAGE)
        uid = backup.undo_id()
        on = " AND ".join(f"s.{self.q(k)} = t.{self.q(k)}" for k in key)
        out = []
        differs = self.differs_sql(schema, key)
        if differs:
            picked = ", ".join(f"t.{self.q(c)}" for c in backup.columns)
            out.append(
                f"INSERT INTO {b} ({self._kept_columns(backup.columns)}) SELECT {uid}, 'u',"
                f" {picked} FROM {s} s JOIN {t} t ON {on} WHERE {differs}"
            )
        keys = ", ".join(f"s.{self.q(k)}" for k in key)
        out.append(
            f"INSERT INTO {b} ({self._kept_columns(list(key))}) SELECT {uid}, 'i', {keys}"
            f" FROM {s} s LEFT JOIN {t} t ON {on} WHERE t.{self.q(key[0])} IS NULL"
        )
        return out

    def backup_all_sql(self, table: str, backup: RowBackup) -> list[str]:
        """Mark the change in the backup table (op ``m``: :meth:`change_made`), then copy
        every row of ``table`` to it (op ``d``); run in the change's transaction."""
        cols = ", ".join(self.q(c) for c in backup.columns)
        uid, b = backup.undo_id(), self.q(backup.table)
        return [
            f"INSERT INTO {b} ({self._kept_columns([])}) VALUES ({uid}, '{MARK_OP}')",
            f"INSERT INTO {b} ({self._kept_columns(backup.columns)})"
            f" SELECT {uid}, 'd', {cols} FROM {self.q(table)}",
        ]

    def change_made(self, bak: str, uid: int) -> bool:
        """Whether the whole-table change of record ``uid`` committed: its mark (op
        ``m``) is in backup table ``bak``."""
        if not self.table_exists(bak):
            return False
        with self.errors(f"reading backup table {bak}"), self.engine.connect() as conn:
            found = conn.execute(
                sa.text(
                    f"SELECT COUNT(*) FROM {self.q(bak)} WHERE {UNDO_COLUMN} = {int(uid)}"
                    f" AND {OP_COLUMN} = '{MARK_OP}'"
                )
            ).scalar()
        return bool(found)

    def kept_before_delete(self, delete_sql: str, table: str, backup: RowBackup) -> str:
        """The statement copying to the backup table (op ``d``) the rows that
        ``delete_sql`` (``DELETE FROM <table> WHERE ...``) deletes: the same condition
        and the same parameters, run just before it."""
        head, sep, cond = delete_sql.partition(" WHERE ")
        assert head.startswith("DELETE FROM ") and sep, delete_sql
        doubled = getattr(self.dialect.identifier_preparer, "_double_percents", False)

        def name(n: str) -> str:  # as in the compiled DELETE: % written twice where bound
            return self.q(n).replace("%", "%%") if doubled else self.q(n)

        into = ", ".join(name(c) for c in [UNDO_COLUMN, OP_COLUMN, *backup.columns])
        cols = ", ".join(name(c) for c in backup.columns)
        return (
            f"INSERT INTO {name(backup.table)} ({into}) SELECT {backup.undo_id()}, 'd', {cols}"
            f" FROM {head[len('DELETE FROM ') :]} WHERE {cond}"
        )

    def create_backup_table(self, name: str, table: TableSchema) -> None:
        """Create backup table ``name`` for ``table`` (its schema as read): the columns of
        :func:`migrate.backup.backup_schema`, each of a type that holds every value of the
        table's column exactly (an engine whose portable types do not round-trip all of
        its own types writes the column's native type instead)."""
        self.create_table(backup_schema(name, table))

    def add_backup_columns(self, name: str, table: str, columns: list[Column]) -> None:
        """Add to backup table ``name`` the ``columns`` (of ``backup_schema``) that
        ``table`` gained since it was created, typed as :meth:`create_backup_table`."""
        self.add_columns(name, columns)

    def add_columns(self, table: str, columns: list[Column]) -> None:
        """Add NULL-able ``columns`` to ``table`` (a backup table the table outgrew)."""
        for col in columns:
            ddl = self.native_type_for(col).compile(dialect=self.dialect)
            with self.errors(f"adding column {col.name} to {table}"), self.engine.begin() as c:
                c.execute(sa.text(f"ALTER TABLE {self.q(table)} ADD {self.q(col.name)} {ddl}"))

    def finish_sql(self, schema: TableSchema) -> list[str]:
        """Statements moving the table's identity counters past its rows (after rows
        were inserted with explicit values); none where the engine does it itself."""
        return []

    def identity_insert(self, table: str, schema: TableSchema | None, insert: str) -> list[str]:
        """``insert`` with what the engine needs around it to write explicit values into
        an identity column (``schema``: the table's, when it is not created yet)."""
        return [insert]

    @staticmethod
    def alias(name: str, table: str) -> str:
        """``name`` as an alias in a statement on ``table``, unless the table has that
        name: the alias would then hide the table inside a subquery (``b.id = b.id``
        is true for every row), so it is doubled."""
        return name if name.lower() != table.lower() else f"{name}_{name}"

    def delete_kept_keys_sql(self, table: str, bak: str, uid: int, key: list[str]) -> str:
        """Delete from ``table`` every key the backup table holds for record ``uid``."""
        cols = ", ".join(self.q(k) for k in key)
        left = cols if len(key) == 1 else f"({cols})"
        return (
            f"DELETE FROM {self.q(table)} WHERE {left} IN (SELECT {cols} FROM {self.q(bak)}"
            f" WHERE {UNDO_COLUMN} = {uid})"
        )

    def _put_back(
        self,
        table: str,
        d: dict[str, Any],
        uid: int,
        ops: str = "",
        schema: TableSchema | None = None,
    ) -> list[str]:
        cols = ", ".join(self.q(c) for c in d["table_columns"])
        insert = (
            f"INSERT INTO {self.q(table)} ({cols}){self.EXPLICIT_IDENTITY} SELECT {cols}"
            f" FROM {self.q(d['backup'])} WHERE {UNDO_COLUMN} = {uid}{ops}"
        )
        return self.identity_insert(table, schema, insert)

    #: written between the column list and the SELECT of a put-back INSERT, where the
    #: engine must be told that identity columns get the values given
    EXPLICIT_IDENTITY: ClassVar[str] = ""

    def _forget(self, bak: str, uid: int) -> str:
        return f"DELETE FROM {self.q(bak)} WHERE {UNDO_COLUMN} = {uid}"

    def undo_statements(self, record: dict[str, Any]) -> list[str]:
        """The statements, in this engine's SQL, that undo one undo record (a dict with
        ``id``, ``action``, ``object`` and ``detail`` parsed); ``migrate rollback`` runs
        exactly these (:meth:`run_statements`) and writes them to the ``.sql`` script.

        - ``drop_table``, ``drop_backup_table``: drop the table if it exists;
        - ``drop_foreign_key``: drop the foreign key ``detail.name`` of the table;
        - ``restore_rows``: delete every key kept for the record, insert the kept
          ``u``/``d`` rows back, forget the record's backup rows; a record of state
          schema 5 or before (rows kept in the state) gives a comment only: see
          :meth:`apply_undo`;
        - ``emptied_table``: delete every row, insert the kept rows back, forget them;
        - ``replaced_table``: drop the table, create it again from the recorded schema,
          insert the kept rows back, then its indexes and foreign keys, forget the rows;
        - ``emptied_table`` / ``replaced_table`` whose change never committed (a run
          killed or failed between the record and the change: no mark, op ``m``, in the
          backup table): a comment only, so the table as it is is left alone.
        Records that touch no table (``restore_watermark``, ...) give none.
        """
        action, table = record["action"], record["object"]
        d, uid = record.get("detail") or {}, int(record["id"])
        if action in ("drop_table", "drop_backup_table"):
            return [self.drop_table_sql(table)]
        if action == "drop_foreign_key":
            return [self.drop_fk_sql(table, d["name"])]
        if action == "restore_rows" and "backup" not in d:
            return [
                f"-- the {len(d.get('rows') or ())} row(s) of {table} are kept in the state"
                " file (a record of an earlier version of migrate): migrate rollback deletes"
                " their keys and inserts them again"
            ]
        if action == "restore_rows":
            return [
                self.delete_kept_keys_sql(table, d["backup"], uid, d["key"]),
                *self._put_back(table, d, uid, f" AND {OP_COLUMN} IN ('u', 'd')"),
                self._forget(d["backup"], uid),
            ]
        if action in ("emptied_table", "replaced_table") and not self._happened(d, uid):
            what = "emptying" if action == "emptied_table" else "replacement"
            return [
                f"-- nothing to undo: the {what} of {table} (#{uid}) never committed (no"
                f" mark in {d['backup']}): the table is as it was"
            ]
        kept = f" AND {OP_COLUMN} = 'd'"  # not the mark
        if action == "emptied_table":
            return [
                f"DELETE FROM {self.q(table)}",
                *self._put_back(table, d, uid, kept),
                *(self.finish_sql(self.read_schema(table)) if self.finish_reads else []),
                self._forget(d["backup"], uid),
            ]
        if action == "replaced_table":
            schema = schema_from_json(d["schema"])
            fks = [] if self.fks_inline else schema.foreign_keys  # SQLite: in CREATE TABLE
            return [
                self.drop_table_sql(table),
                self.create_table_sql(schema),
                *self._put_back(table, d, uid, kept, schema=schema),
                *[self.index_ddl(schema, ix) for ix in schema.indexes],
                *[self.fk_ddl(schema, fk) for fk in fks],
                *self.finish_sql(schema),
                self._forget(d["backup"], uid),
            ]
        return []

    def _happened(self, d: dict[str, Any], uid: int) -> bool:
        """Whether a whole-table record's change committed (a record without a mark, of
        an earlier version, is taken as done)."""
        return not d.get("marked") or self.change_made(d["backup"], uid)

    #: whether :meth:`finish_sql` needs the table's schema (an emptied table's is read)
    finish_reads: ClassVar[bool] = False

    def cleanup_statements(self, record: dict[str, Any]) -> list[str]:
        """What ``migrate cleanup`` runs for one record: drop a backup table; nothing for
        the others (their kept rows go with it)."""
        if record["action"] == "drop_backup_table":
            return [self.drop_table_sql(record["object"])]
        return []

    def run_statements(self, statements: list[str]) -> None:
        """Run ``statements`` in order in one transaction (where the engine's DDL
        commits, as MySQL's and Oracle's does, each DDL statement commits what ran
        before it); a statement of comment lines only is skipped. Any failure rolls back
        and raises :class:`ConnectorError` naming the statement's start."""
        with self.raw() as conn:
            cur = conn.cursor()
            if self.UNDO_BEGIN:
                cur.execute(self.UNDO_BEGIN)
            for sql in statements:
                if all(not ln.strip() or ln.lstrip().startswith("--") for ln in sql.splitlines()):
                    continue
                with self.errors(f"running {_head(sql)}"):
                    cur.execute(sql)
            conn.commit()
            cur.close()

    def apply_undo(self, record: dict[str, Any]) -> None:
        """Undo one record: :meth:`run_statements` of :meth:`undo_statements`, except a
        ``restore_rows`` record that kept its rows in the state (state schema 5 or
        before): their keys are deleted and the rows inserted again with bound values."""
        d = record.get("detail") or {}
        if record["action"] != "restore_rows" or "backup" in d:
            self.run_statements(self.undo_statements(record))
            return
        table, columns, key = record["object"], list(d["columns"]), tuple(d["key"])
        rows = [decode_key(r) for r in d.get("rows") or ()]
        live = self.read_schema(table)
        schema = replace(live, columns=[live.column(c) for c in columns])
        at = [columns.index(k) for k in key]
        self.delete_keys(table, key, [tuple(r[i] for i in at) for r in rows if r])
        with tempfile.TemporaryDirectory(prefix="migrate-undo-") as tmp:
            spool = self.new_spool(schema, Path(tmp))
            try:
                spool.add([tuple(r) for r in rows if r])
                spool.close()
                self.load_spool(schema, spool)
            finally:
                spool.discard()


def _head(sql: str) -> str:
    """The start of a statement, for an error message."""
    text = " ".join(sql.split())
    return text if len(text) <= 60 else text[:57] + "..."
