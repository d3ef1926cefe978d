"""SQLite: what differs from the shared SQL endpoint.

- A relative path in ``sqlite:///rel/path.db`` is relative to the plan file, so cron runs
  find the same file whatever their working directory.
- SQLite has no decimal or time types: decimals are stored through NUMERIC affinity (which
  keeps a value as text unless it converts to a number losslessly) and read back at the
  column's scale; timestamps are stored as ``YYYY-MM-DD HH:MM:SS.ffffff`` text, fixed
  width, so text order is time order.
- Bulk path: ``executemany`` in one transaction per chunk. Foreign keys are written inside
  ``CREATE TABLE`` (SQLite cannot add them later) and are not enforced during the load.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from connectors.sql.base import SQLEndpoint, format_decimal
from migrate.endpoints import Capabilities, Row
from migrate.schema import PType, TableSchema

TYPES: dict[str, Callable[[PType], Any]] = {
    "boolean": lambda p: sqlite.BOOLEAN(),
    "int8": lambda p: sa.types.SMALLINT(),
    "int16": lambda p: sa.types.SMALLINT(),
    "int32": lambda p: sqlite.INTEGER(),
    "int64": lambda p: sqlite.INTEGER(),
    "decimal": lambda p: sqlite.DECIMAL(p.precision, p.scale) if p.precision else sqlite.NUMERIC(),
    "float32": lambda p: sqlite.REAL(),
    "float64": lambda p: sqlite.FLOAT(),
    "char": lambda p: sqlite.CHAR(p.length),
    "varchar": lambda p: sqlite.VARCHAR(p.length),
    "text": lambda p: sqlite.TEXT(),
    "binary": lambda p: sqlite.BLOB(),
    "varbinary": lambda p: sqlite.BLOB(),
    "blob": lambda p: sqlite.BLOB(),
    "date": lambda p: sqlite.DATE(),
    "time": lambda p: sqlite.TIME(),
    "datetime": lambda p: sqlite.DATETIME(),
    "timestamptz": lambda p: sqlite.DATETIME(),
    "json": lambda p: sqlite.JSON(),
    "uuid": lambda p: sqlite.CHAR(36),
    "enum": lambda p: sqlite.VARCHAR(max((len(v) for v in p.values), default=1)),
}


def format_datetime(v: dt.datetime) -> str:
    """Fixed-width UTC-naive text: ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if v.tzinfo is not None:
        v = v.astimezone(dt.UTC).replace(tzinfo=None)
    return v.strftime("%Y-%m-%d %H:%M:%S.%f")


def _to_db(value: Any) -> Any:
    """A portable Python value as SQLite stores it (see the module docstring)."""
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


def _decimal(scale: int | None) -> Callable[[Any], Any]:
    quantum = Decimal(1).scaleb(-scale) if scale is not None else None

    def conv(v: Any) -> Any:
        try:
            d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
        except (InvalidOperation, TypeError, ValueError):
            return v
        return d.quantize(quantum) if quantum is not None and d.is_finite() else d

    return conv


def _datetime(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return dt.datetime.fromisoformat(v)
        except ValueError:
            return v
    return v


def _date(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v[:10])
        except ValueError:
            return v
    return v


def _time(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return dt.time.fromisoformat(v)
        except ValueError:
            return v
    return v


class SQLiteEndpoint(SQLEndpoint):
    engine_label = "SQLite"
    capabilities: ClassVar[Capabilities] = Capabilities(
        engine="sqlite",
        bulk_load="executemany",
        max_identifier_length=1024,
        max_bind_params=32766,
        index_namespace="schema",
    )
    fks_inline = True

    def resolve_url(self, url: sa.URL) -> sa.URL:
        db = url.database
        if db and db != ":memory:" and not Path(db).is_absolute():
            url = url.set(database=str(self.base_dir / db))
        self._path = Path(url.database) if url.database and url.database != ":memory:" else None
        if self.dry_run and self._path is not None:  # never create or change a file
            if self._path.exists():
                url = url.set(database=f"file:{self._path}?mode=ro", query={"uri": "true"})
            else:
                url = url.set(database=":memory:")
        return super().resolve_url(url)

    @property
    def path(self) -> Path | None:
        return self._path

    def connect_args(self) -> dict[str, Any]:
        return {"check_same_thread": False, "timeout": 120}

    def engine_kwargs(self) -> dict[str, Any]:
        return {
            "poolclass": sa.pool.QueuePool,
            "pool_size": self.workers * 2 + 2,
            "max_overflow": 4,
        }

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None and self.path is not None and not self.dry_run:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        return super().engine

    def on_connect(self, dbapi_conn: Any) -> None:
        if not self.dry_run:
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        dbapi_conn.execute("PRAGMA foreign_keys=OFF")

    def describe(self) -> str:
        import sqlite3

        missing = " (does not exist yet)" if self.path and not self.path.exists() else ""
        return f"{self.engine_label} {sqlite3.sqlite_version} at {self.path or ':memory:'}{missing}"

    def explain(self, orig: BaseException, text: str) -> str:
        if "unable to open database file" in text:
            return f"cannot open {self.path}: check that the folder exists and is writable"
        return text

    def is_transient(self, orig: BaseException) -> bool:
        return "database is locked" in str(orig)

    def adapt_param(self, value: Any) -> Any:
        return _to_db(value)

    def portable_type(self, t: Any) -> tuple[PType, str | None]:
        name = type(t).__name__
        if name in ("INTEGER",):
            return PType("int64"), None
        if name in ("REAL", "FLOAT", "DOUBLE", "DOUBLE_PRECISION"):
            return PType("float64"), None
        if name == "NullType":
            return PType("text"), "column without a declared type copied as text"
        return super().portable_type(t)

    def row_converter(self, schema: TableSchema) -> Callable[[Row], Row] | None:
        fixes: list[tuple[int, Callable[[Any], Any]]] = []
        for i, col in enumerate(schema.columns):
            k = col.type.kind
            if k == "decimal":
                fixes.append((i, _decimal(col.type.scale)))
            elif k in ("datetime", "timestamptz"):
                fixes.append((i, _datetime))
            elif k == "date":
                fixes.append((i, _date))
            elif k == "time":
                fixes.append((i, _time))
            elif k == "boolean":
                fixes.append((i, lambda v: bool(v) if isinstance(v, int) else v))
        if not fixes:
            return None

        def convert(row: Row) -> Row:
            out = list(row)
            for i, f in fixes:
                if out[i] is not None:
                    out[i] = f(out[i])
            return tuple(out)

        return convert

    def native_type(self, p: PType) -> Any:
        return TYPES[p.kind](p)

    def value_adapters(self, schema: TableSchema) -> list[Callable[[Any], Any]]:
        return [_to_db for _ in schema.columns]
