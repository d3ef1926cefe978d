"""PostgreSQL: what differs from the shared SQL endpoint.

- Sessions run with ``TimeZone = UTC``; json/jsonb arrive as their text, uuid as text.
- Bulk path: ``COPY ... FROM STDIN`` (text format) fed from a tab-separated spool.
- Index names are unique per schema, so indexes from engines with per-table names are
  prefixed with their table's name.
- After a load, identity columns' sequences are moved past the largest key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from connectors.sql.base import (
    TEXT_FORMATTERS,
    SQLEndpoint,
    TextSpool,
    as_text,
    column_fixer,
    escape_text,
)
from migrate.backup import OP_COLUMN, UNDO_COLUMN
from migrate.endpoints import Capabilities, Row
from migrate.errors import ConnectorError
from migrate.schema import Column, PType, TableSchema
from validators.canonical import PostgresRender

NATIVE_KINDS: dict[str, str] = {
    "REAL": "float32",
    "DOUBLE_PRECISION": "float64",
    "BYTEA": "blob",
    "JSONB": "json",
    "JSON": "json",
    "UUID": "uuid",
    "CITEXT": "text",
    "INET": "varchar",
    "CIDR": "varchar",
    "MACADDR": "varchar",
}

TYPES: dict[str, Callable[[PType], Any]] = {
    "boolean": lambda p: pg.BOOLEAN(),
    "int8": lambda p: pg.SMALLINT(),
    "int16": lambda p: pg.INTEGER() if p.unsigned else pg.SMALLINT(),
    "int32": lambda p: pg.BIGINT() if p.unsigned else pg.INTEGER(),
    "int64": lambda p: pg.NUMERIC(20, 0) if p.unsigned else pg.BIGINT(),
    "decimal": lambda p: pg.NUMERIC(p.precision, p.scale) if p.precision else pg.NUMERIC(),
    "float32": lambda p: pg.REAL(),
    "float64": lambda p: pg.DOUBLE_PRECISION(),
    "char": lambda p: pg.CHAR(p.length),
    "varchar": lambda p: pg.VARCHAR(p.length),
    "text": lambda p: pg.TEXT(),
    "binary": lambda p: pg.BYTEA(),
    "varbinary": lambda p: pg.BYTEA(),
    "blob": lambda p: pg.BYTEA(),
    "date": lambda p: pg.DATE(),
    "time": lambda p: pg.TIME(precision=p.precision),
    "datetime": lambda p: pg.TIMESTAMP(precision=p.precision),
    "timestamptz": lambda p: pg.TIMESTAMP(timezone=True, precision=p.precision),
    "json": lambda p: pg.JSONB(),
    "uuid": lambda p: pg.UUID(),
    "enum": lambda p: pg.VARCHAR(max((len(v) for v in p.values), default=1)),
}


def _fmt_text(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        v = bytes(v).decode("utf-8")
    s = v if isinstance(v, str) else str(v)
    if "\0" in s:
        raise ConnectorError("PostgreSQL text cannot hold the NUL character (\\0)")
    return escape_text(s)


def _fmt_time(v: Any) -> str:
    if isinstance(v, dt.timedelta):
        total = v.days * 86400 + v.seconds
        return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}.{v.microseconds:06d}"
    return v.isoformat() if isinstance(v, dt.time) else as_text(v)


FORMATTERS: dict[str, Callable[[Any], str]] = {
    **TEXT_FORMATTERS,
    "boolean": lambda v: "t" if v else "f",
    "float32": lambda v: {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}.get(
        repr(v), repr(v)
    ),
    "time": _fmt_time,
    "datetime": lambda v: v.isoformat(" ") if isinstance(v, dt.datetime) else as_text(v),
    "timestamptz": lambda v: (
        (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).isoformat(" ")
        if isinstance(v, dt.datetime)
        else as_text(v)
    ),
    "binary": lambda v: "\\\\x" + bytes(v).hex(),
    "varbinary": lambda v: "\\\\x" + bytes(v).hex(),
    "blob": lambda v: "\\\\x" + bytes(v).hex(),
}
FORMATTERS["float64"] = FORMATTERS["float32"]

_TRANSIENT_STATES = {"40001", "40P01", "57P01", "08000", "08003", "08006"}
_HINTS = {
    "28P01": "password authentication failed: check the user name and password",
    "28000": "the server rejected this user: check pg_hba.conf and the user name",
    "3D000": "unknown database: check the database name at the end of the URL",
}


class PostgreSQLEndpoint(SQLEndpoint):
    engine_label = "PostgreSQL"
    driver_module = "psycopg"
    default_driver = "psycopg"
    extra = "postgresql"
    capabilities: ClassVar[Capabilities] = Capabilities(
        engine="postgresql",
        bulk_load="copy",
        max_identifier_length=63,
        max_bind_params=65535,
        index_namespace="schema",
        hash_kinds=("md5", "sha256"),
        cdc=None,  # logical decoding is not used yet
    )

    render_class = PostgresRender

    def int_div(self, expr: Any, width: int) -> Any:
        """A NUMERIC key (BIGINT UNSIGNED copied as NUMERIC(20, 0)) divides to a fraction:
        its floor is the group."""
        return sa.func.floor(expr / sa.literal(width, sa.BigInteger))

    def connect_args(self) -> dict[str, Any]:
        # extra_float_digits = 1: floats as their shortest round-trip text (checksums)
        options = "-c TimeZone=UTC -c extra_float_digits=1"
        if self.dry_run:  # dry runs and validation only read: the server holds us to it
            options += " -c default_transaction_read_only=on"
        return {"options": options}

    def on_connect(self, dbapi_conn: Any) -> None:
        from psycopg.types.string import TextLoader

        for name in ("json", "jsonb", "uuid", "inet", "cidr", "macaddr"):
            dbapi_conn.adapters.register_loader(name, TextLoader)

    @contextlib.contextmanager
    def inspector(self) -> Iterator[Any]:
        """On a connection that reads json as JSON while it reflects: SQLAlchemy reads a
        column's collation as a ``json_build_object`` (text there would fail it)."""
        from psycopg.types.json import JsonbLoader, JsonLoader
        from psycopg.types.string import TextLoader

        with self.engine.connect() as conn:
            adapters = conn.connection.driver_connection.adapters
            adapters.register_loader("json", JsonLoader)
            adapters.register_loader("jsonb", JsonbLoader)
            try:
                yield sa.inspect(conn)
            finally:
                adapters.register_loader("json", TextLoader)
                adapters.register_loader("jsonb", TextLoader)

    def server_cursor(self, conn: Any) -> Any:
        import uuid

        return conn.cursor(name=f"migrate_{uuid.uuid4().hex}")

    def explain(self, orig: BaseException, text: str) -> str:
        state = getattr(orig, "sqlstate", None)
        if state in _HINTS:
            return f"{_HINTS[state]} ({text})"
        if "Connection refused" in text or "connection failed" in text:
            return f"cannot connect: check host and port, and that the server is running ({text})"
        return text

    def is_transient(self, orig: BaseException) -> bool:
        return getattr(orig, "sqlstate", None) in _TRANSIENT_STATES

    def is_autoincrement(self, raw: dict[str, Any], pk: tuple[str, ...]) -> bool:
        default = str(raw.get("default") or "")
        return pk == (raw["name"],) and (
            bool(raw.get("identity")) or default.startswith("nextval(")
        )

    def portable_type(self, t: Any) -> tuple[PType, str | None]:
        name = type(t).__name__
        if name in NATIVE_KINDS:
            return PType(NATIVE_KINDS[name]), None
        if name in ("INTERVAL", "ARRAY", "TSVECTOR", "HSTORE", "MONEY", "BIT"):
            return PType("text"), f"{name} copied as its text form"
        return super().portable_type(t)

    def loads_text(self) -> bool:
        return True

    def row_converter(self, schema: TableSchema) -> Callable[[Row], Row] | None:
        """Types copied as text (arrays, intervals, ...) arrive as Python objects: str them."""
        return column_fixer(
            [
                (i, str)
                for i, c in enumerate(schema.columns)
                if c.type.kind == "text" and any("copied as its text form" in n for n in c.notes)
            ]
        )

    def adapt_type(self, p: PType) -> tuple[PType, str | None]:
        if p.kind in ("time", "datetime", "timestamptz") and (p.precision or 0) > 6:
            return PType(
                p.kind, precision=6
            ), f"fractional seconds cut from {p.precision} to 6 digits"
        if p.kind == "enum":
            return p, "ENUM stored as VARCHAR"
        return p, None

    def native_type(self, p: PType) -> Any:
        try:
            return TYPES[p.kind](p)
        except KeyError:
            raise ConnectorError(f"{self.name}: no PostgreSQL type for {p}") from None

    def column_extras(self, col: Column) -> list[Any]:
        return [sa.Identity(always=False)] if col.autoincrement else []

    def render_default(self, col: Column) -> Any:
        d = col.default
        if (
            d is not None
            and d.kind == "literal"
            and col.type.kind == "boolean"
            and not isinstance(d.value, bool)
        ):
            return sa.true() if str(d.value) not in ("0", "0.0") else sa.false()
        return super().render_default(col)

    def new_spool(self, schema: TableSchema, workdir: Path) -> Any:
        return TextSpool(workdir, [FORMATTERS.get(c.type.kind, _fmt_text) for c in schema.columns])

    def write_spool(self, conn: Any, schema: TableSchema, spool: Any, table: str) -> int:
        """COPY ... FROM STDIN of the spooled text."""
        cols = ", ".join(self.q(c) for c in schema.column_names)
        sql = f"COPY {self.q(table)} ({cols}) FROM STDIN"
        with conn.cursor() as cur:
            with cur.copy(sql) as copy, open(spool.path, "rb") as f:
                while data := f.read(1 << 20):
                    copy.write(data)
            return int(cur.rowcount)

    # -- upsert by key -------------------------------------------------------------------
    def is_unique_violation(self, exc: BaseException) -> bool:
        return getattr(exc, "sqlstate", None) == "23505"

    def unique_violation_detail(self, exc: BaseException) -> str:
        diag = getattr(exc, "diag", None)
        name = getattr(diag, "constraint_name", None)
        return f"unique index {name}" if name else super().unique_violation_detail(exc)

    def stage_ddl(self, schema: TableSchema) -> list[str]:
        return [
            f"CREATE TEMP TABLE {self.q(self.STAGE)} (LIKE {self.q(schema.name)}) ON COMMIT DROP"
        ]

    def unstage_ddl(self) -> list[str]:
        return []  # dropped by the commit

    def same_value(self, a: str, b: str, col: Column) -> str:
        """``IS NOT DISTINCT FROM``; JSON (which has no equality) compared as text."""
        if col.type.kind == "json":
            return f"{a}::text IS NOT DISTINCT FROM {b}::text"
        return f"{a} IS NOT DISTINCT FROM {b}"

    # -- backup tables (migrate/backup.py) ------------------------------------------------
    #: each column's type as ``format_type`` writes it (a domain: its base type, which
    #: holds NULL) and its collation when not its type's own, in column order
    NATIVE_COLUMNS_SQL: ClassVar[str] = (
        "SELECT a.attname, format_type(b.oid, CASE WHEN t.typtype = 'd' THEN t.typtypmod"
        " ELSE a.atttypmod END), CASE WHEN a.attcollation <> 0 AND a.attcollation <>"
        " b.typcollation THEN quote_ident(n.nspname) || '.' || quote_ident(c.collname) END"
        " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_type b ON b.oid ="
        " CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END LEFT JOIN pg_collation c"
        " ON c.oid = a.attcollation LEFT JOIN pg_namespace n ON n.oid = c.collnamespace"
        " WHERE a.attrelid = to_regclass(:t) AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum"
    )

    def _native_ddl(self, table: str) -> dict[str, str]:
        """Column name -> its native type (and collation) as DDL."""
        with self.errors(f"reading the column types of {table}"), self.engine.connect() as c:
            rows = c.execute(sa.text(self.NATIVE_COLUMNS_SQL), {"t": self.q(table)}).fetchall()
        return {name: f"{ddl} COLLATE {coll}" if coll else ddl for name, ddl, coll in rows}

    def _backup_column(self, native: dict[str, str], col: Column) -> str:
        ddl = native.get(col.name) or str(self.native_type_for(col).compile(dialect=self.dialect))
        return f"{self.q(col.name)} {ddl}"

    def create_backup_table(self, name: str, table: TableSchema) -> None:
        """Every column of its native type (json stays json, timetz keeps its offset, an
        interval or an array is not turned into text), NULL-able, no default."""
        native = self._native_ddl(table.name)
        cols = ", ".join(
            [
                f"{self.q(UNDO_COLUMN)} BIGINT NOT NULL",
                f"{self.q(OP_COLUMN)} CHAR(1) NOT NULL",
                *[self._backup_column(native, c) for c in table.columns],
            ]
        )
        with self.errors(f"creating table {name}"), self.engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE {self.q(name)} ({cols})"))

    def add_backup_columns(self, name: str, table: str, columns: list[Column]) -> None:
        native = self._native_ddl(table)
        for col in columns:
            with self.errors(f"adding column {col.name} to {name}"), self.engine.begin() as c:
                c.execute(
                    sa.text(f"ALTER TABLE {self.q(name)} ADD {self._backup_column(native, col)}")
                )

    #: a GENERATED ALWAYS identity takes the ids put back only when told to (10+)
    EXPLICIT_IDENTITY = " OVERRIDING SYSTEM VALUE"

    #: an emptied table's rows put back move its sequences: its schema says which
    finish_reads = True

    def finish_sql(self, schema: TableSchema) -> list[str]:
        """``setval`` of each identity column's sequence past the largest value."""
        out = []
        for col in schema.columns:
            if col.autoincrement:
                t, c = self.q(schema.name), self.q(col.name)
                out.append(
                    f"SELECT setval(pg_get_serial_sequence('{t}', '{col.name}'),"
                    f" COALESCE(MAX({c}), 0) + 1, false) FROM {t}"
                )
        return out

    def finish_table(self, schema: TableSchema) -> None:
        for sql in self.finish_sql(schema):
            with (
                self.errors(f"moving the sequences of {schema.name}"),
                self.engine.begin() as conn,
            ):
                conn.execute(sa.text(sql))
