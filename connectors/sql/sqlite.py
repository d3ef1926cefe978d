"""SQLite: what differs from the shared SQL endpoint.

- A relative path in ``sqlite:///rel/path.db`` is relative to the plan file, so cron runs
  find the same file whatever their working directory.
- SQLite has no decimal or time types. Decimals go into ``DECIMAL_TEXT(p,s)`` columns:
  the name gives TEXT affinity, so every digit is kept (NUMERIC affinity would keep only
  15 significant digits), and it reflects back as DECIMAL(p,s); plain DECIMAL/NUMERIC
  columns of other SQLite files are read as decimals too. Unsigned 64-bit integers are
  stored the same way (DECIMAL_TEXT(20,0)): SQLite integers are signed.
  Timestamps are stored as ``YYYY-MM-DD HH:MM:SS.ffffff`` text, fixed width, so text order
  is time order.
- Bulk path: ``executemany`` in one transaction per chunk. Foreign keys are written inside
  ``CREATE TABLE`` (SQLite cannot add them later) and are not enforced during the load.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from connectors.sql.base import SQLEndpoint, column_fixer, format_decimal
from migrate.endpoints import Capabilities, Row
from migrate.schema import Column, PType, TableSchema
from validators.canonical import ColumnSpec, PyHasher, SQLiteRender


class DecimalText(sa.types.UserDefinedType):  # type: ignore[type-arg]
    """An exact decimal kept as text in SQLite: ``DECIMAL_TEXT(precision, scale)``."""

    cache_ok = True

    def __init__(self, precision: int | None = None, scale: int | None = None) -> None:
        self.precision, self.scale = precision, scale

    def get_col_spec(self, **kw: Any) -> str:
        if self.precision is None:
            return "DECIMAL_TEXT"
        return f"DECIMAL_TEXT({self.precision},{self.scale or 0})"


TYPES: dict[str, Callable[[PType], Any]] = {
    "boolean": lambda p: sqlite.BOOLEAN(),
    "int8": lambda p: sa.types.SMALLINT(),
    "int16": lambda p: sa.types.SMALLINT(),
    "int32": lambda p: sqlite.INTEGER(),
    "int64": lambda p: sqlite.INTEGER(),
    "decimal": lambda p: DecimalText(p.precision, p.scale),
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
    return v.isoformat(sep=" ", timespec="microseconds")  # years below 1000 zero-padded


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


_WIDE = Context(prec=200)


def _decimal(scale: int | None) -> Callable[[Any], Any]:
    quantum = Decimal(1).scaleb(-scale) if scale is not None else None

    def conv(v: Any) -> Any:
        try:
            d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
        except (InvalidOperation, TypeError, ValueError):
            return v
        if quantum is None or not d.is_finite():
            return d
        return d.quantize(quantum, ROUND_HALF_UP, _WIDE)  # as the other engines round

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
    render_class = SQLiteRender
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
                # a read-only open of a WAL-mode file makes -wal/-shm files unless they
                # exist (a writer has it open); with none, immutable=1 reads without them
                flags = "mode=ro"
                if _wal_mode(self._path) and not Path(f"{self._path}-wal").exists():
                    flags += "&immutable=1"
                url = url.set(database=f"file:{self._path}?{flags}", query={"uri": "true"})
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
        # The file's journal mode is left as it is: it belongs to the user.
        if not self.dry_run:
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        dbapi_conn.execute("PRAGMA foreign_keys=OFF")
        # checksums: SQLite has no MD5, so the canonical row hash is computed in Python
        hasher = PyHasher(self._spec_converter)
        dbapi_conn.create_function("migrate_row_text", -1, hasher.row_text, deterministic=True)
        dbapi_conn.create_function("migrate_key_bucket", -1, hasher.key_bucket, deterministic=True)
        dbapi_conn.create_aggregate("migrate_hash_sum", -1, hasher.aggregate())

    def _spec_converter(self, specs: list[ColumnSpec]) -> Callable[[Row], Row] | None:
        """The row converter for the compared columns as SQLite stores them."""
        columns = [Column(s.name, PType(s.kind, scale=s.scale)) for s in specs]
        return self.row_converter(TableSchema("compared", columns))

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

    def configure_engine(self, engine: sa.Engine) -> None:
        """Teach this engine's reflection the DECIMAL_TEXT type name."""
        engine.dialect.ischema_names = {**engine.dialect.ischema_names, "DECIMAL_TEXT": DecimalText}

    def adapt_type(self, p: PType) -> tuple[PType, str | None]:
        if p.kind == "int64" and p.unsigned:
            return PType(
                "decimal", precision=20, scale=0
            ), "BIGINT UNSIGNED stored as DECIMAL_TEXT(20,0): SQLite integers are signed"
        return p, None

    def portable_type(self, t: Any) -> tuple[PType, str | None]:
        name = type(t).__name__
        if isinstance(t, DecimalText):
            return PType("decimal", precision=t.precision, scale=t.scale), None
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
        return column_fixer(fixes)

    def native_type(self, p: PType) -> Any:
        return TYPES[p.kind](p)

    def stage_ddl(self, schema: TableSchema) -> list[str]:
        """Take the write lock first: a merge reads before it writes, and SQLite refuses
        to turn a read into a write while another connection writes (it waits here)."""
        return ["BEGIN IMMEDIATE", *super().stage_ddl(schema)]

    #: undo runs in one transaction, DDL included (the driver begins only before DML)
    UNDO_BEGIN = "BEGIN IMMEDIATE"

    def is_unique_violation(self, exc: BaseException) -> bool:
        return "UNIQUE constraint failed" in str(exc)

    def same_value(self, a: str, b: str, col: Column) -> str:
        return f"{a} IS {b}"

    def value_adapters(self, schema: TableSchema) -> list[Callable[[Any], Any]]:
        return [_to_db for _ in schema.columns]


def _wal_mode(path: Path) -> bool:
    """Whether the SQLite file is in WAL mode (header bytes 18 and 19 are 2)."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return len(head) == 20 and head[18] == 2 and head[19] == 2
