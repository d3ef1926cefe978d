"""MySQL and MariaDB: what differs from the shared SQL endpoint.

- Sessions run with ``time_zone = '+00:00'`` (TIMESTAMP values travel in UTC), a strict
  ``sql_mode`` with ``NO_AUTO_VALUE_ON_ZERO`` (a key of 0 stays 0) and
  ``foreign_key_checks = 0`` (foreign keys are created after the load).
- Bulk path: ``LOAD DATA LOCAL INFILE`` from a tab-separated spool (``bulk = "load_data"``,
  the default), or multi-row ``INSERT`` (``bulk = "insert"``) where the server refuses
  ``local_infile``. bench/ measures both. Any warning LOAD DATA raises (a truncated or
  converted value) fails the chunk: MySQL would otherwise keep the altered value silently.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from connectors.sql.base import (
    TEXT_FORMATTERS,
    PickleSpool,
    SQLEndpoint,
    TextSpool,
    as_text,
    column_fixer,
    escape_text,
)
from migrate.backup import UNDO_COLUMN
from migrate.endpoints import Capabilities, Key, Row
from migrate.errors import ConnectorError
from migrate.schema import BINARY_KINDS, TEXT_KINDS, Column, PType, TableSchema
from validators.canonical import ColumnSpec, MySQLRender

BIT_NOTE = "BIT copied as its integer value"
_INT_FIELDS = ("TINY", "SHORT", "LONG", "INT24", "LONGLONG", "YEAR")
SQL_MODE = "STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"
#: every session's settings: TIMESTAMPs in UTC, an explicit 0 kept in an AUTO_INCREMENT
#: column, foreign keys checked by the run's own validation, not row by row
SESSION_SQL = f"SET time_zone = '+00:00', sql_mode = '{SQL_MODE}', foreign_key_checks = 0"

# Text and blob kinds by the largest length (bytes, as MySQL counts) each can hold.
TEXT_TYPES = ((255, mysql.TINYTEXT), (65535, mysql.TEXT), (16777215, mysql.MEDIUMTEXT))
BLOB_TYPES = ((255, mysql.TINYBLOB), (65535, mysql.BLOB), (16777215, mysql.MEDIUMBLOB))

INT_TYPES: dict[str, Any] = {
    "int8": mysql.TINYINT,
    "int16": mysql.SMALLINT,
    "int32": mysql.INTEGER,
    "int64": mysql.BIGINT,
}

# Reflected MySQL type class name -> portable kind, where the generic mapping is wrong.
NATIVE_KINDS: dict[str, str] = {
    "TINYINT": "int8",
    "MEDIUMINT": "int32",
    "YEAR": "int16",
    "FLOAT": "float32",
    "DOUBLE": "float64",
    "REAL": "float64",
}

_ERRORS = {
    1045: "access denied: check the user name and password (user and host are in the URL)",
    1049: "unknown database: check the database name at the end of the URL",
    2003: "cannot connect: check host and port, and that the server is running",
    2005: "unknown host: check the host name in the URL",
    1148: "the server refuses LOAD DATA LOCAL: set local_infile=ON on the server, or"
    ' options.bulk = "insert" on this connection',
    3948: "the server refuses LOAD DATA LOCAL: set local_infile=ON on the server, or"
    ' options.bulk = "insert" on this connection',
}
_TRANSIENT = {1205, 1213, 2006, 2013, 2055}
_ER_DUP_ENTRY = 1062


def _fmt_time(v: Any) -> str:
    if isinstance(v, dt.timedelta):
        total = v.days * 86400 + v.seconds
        sign = "-" if total < 0 else ""
        total = abs(total)
        frac = f".{v.microseconds:06d}" if v.microseconds else ""
        return f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}{frac}"
    return v.isoformat() if isinstance(v, dt.time) else as_text(v)


def _fmt_datetime(v: Any) -> str:
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        v = v.astimezone(dt.UTC).replace(tzinfo=None)
    return v.isoformat(" ") if isinstance(v, dt.datetime) else as_text(v)


FORMATTERS: dict[str, Callable[[Any], str]] = {
    **TEXT_FORMATTERS,
    "boolean": lambda v: "1" if v else "0",
    "time": _fmt_time,
    "datetime": _fmt_datetime,
    "timestamptz": _fmt_datetime,
    "binary": lambda v: bytes(v).hex(),
    "varbinary": lambda v: bytes(v).hex(),
    "blob": lambda v: bytes(v).hex(),
}


def _fmt_text(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        v = bytes(v).decode("utf-8")
    s = v if isinstance(v, str) else str(v)
    return escape_text(s).replace("\0", "\\0")


class MySQLEndpoint(SQLEndpoint):
    engine_label = "MySQL"
    driver_module = "pymysql"
    default_driver = "pymysql"
    extra = "mysql"
    keeps_on_update = True
    capabilities: ClassVar[Capabilities] = Capabilities(
        engine="mysql",
        bulk_load="load data",
        max_identifier_length=64,
        max_bind_params=65535,
        index_namespace="table",
        hash_kinds=("md5", "sha2", "crc32"),
        cdc="binlog",
    )

    def known_options(self) -> set[str]:
        return {"bulk"}

    def check_options(self) -> None:
        self._text_pool: list[Any] = []
        super().check_options()
        bulk = self.options.get("bulk", "load_data")
        if bulk not in ("load_data", "insert"):
            raise ConnectorError(
                f"connections.{self.name}.options.bulk: {bulk!r} is not one of: load_data, insert"
            )
        self.bulk = bulk

    def connect_args(self) -> dict[str, Any]:
        return {"local_infile": True, "charset": "utf8mb4"}

    def on_connect(self, dbapi_conn: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(SESSION_SQL)
        if self.dry_run:  # dry runs and validation only read: the server holds us to it
            cur.execute("SET SESSION TRANSACTION READ ONLY")
        cur.close()

    render_class = MySQLRender

    def fast_hash(self) -> str | None:
        """Between two MySQL-family servers the raw values are hashed as the server writes
        them: CRC32 and CRC32C of the row (64 bits, MariaDB 10.8 and later), else the
        last 64 bits of its MD5. Both are computed per row like the canonical hash."""
        version = tuple(self.engine.dialect.server_version_info or ())
        if getattr(self.engine.dialect, "is_mariadb", False) and version >= (10, 8):
            return "crc32+crc32c"
        return "md5-64"

    def fast_checksum_sql(self, schema: TableSchema, specs: list[ColumnSpec], kind: str) -> str:
        """``COUNT(*)`` and the hash sums of ``CONCAT_WS('|', …)`` over the raw columns:
        text and binary values are preceded by their length in bytes and NULLs are
        flagged, so that no two different rows give the same string."""
        items: list[str] = []
        flags: list[str] = []
        for spec in specs:
            c = self.q(spec.name)
            if spec.kind in TEXT_KINDS or spec.kind in BINARY_KINDS:
                items.append(f"LENGTH({c})")
            items.append(c)
            if schema.column(spec.name).nullable:
                flags.append(f"ISNULL({c})")
        if flags:
            items.append(f"CONCAT({', '.join(flags)})")
        row = f"CONCAT_WS('|', {', '.join(items)})"
        if kind == "crc32+crc32c":
            # the row string is built once: MariaDB evaluates the sums left to right
            return f"COUNT(*), SUM(CRC32(@migrate_row := {row})), SUM(CRC32C(@migrate_row))"
        return f"COUNT(*), SUM(CAST(CONV(SUBSTRING(MD5({row}), 17), 16, 10) AS UNSIGNED))"

    def describe(self) -> str:
        text = super().describe()
        if getattr(self.engine.dialect, "is_mariadb", False):
            text = text.replace("MySQL", "MariaDB", 1)
        return text

    def server_cursor(self, conn: Any) -> Any:
        if type(conn).__module__.startswith("MySQLdb"):
            import MySQLdb.cursors

            return conn.cursor(MySQLdb.cursors.SSCursor)
        import pymysql.cursors

        return conn.cursor(pymysql.cursors.SSCursor)

    # -- the text fast path --------------------------------------------------------------
    def reads_text(self) -> bool:
        return True

    def loads_text(self) -> bool:
        return self.bulk == "load_data"

    @contextlib.contextmanager
    def text_connection(self) -> Iterator[Any]:
        """A connection whose rows keep MySQL's text form; mysqlclient when installed.

        Only integers, floats and BIT become numbers; text arrives as str, every other
        type as the bytes of its text (``2024-01-01 00:00:00.000001``, ``12.50``), and
        binary as bytes. Pooled per endpoint.
        """
        with self._guard:
            conn = self._text_pool.pop() if self._text_pool else None
        if conn is None:
            conn = self._connect_text()
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(Exception):
                conn.close()
            raise
        with self._guard:
            self._text_pool.append(conn)

    def _connect_text(self) -> Any:
        u = self._url
        kwargs: dict[str, Any] = {
            "host": u.host or "localhost",
            "port": u.port or 3306,
            "user": u.username or "",
            "password": u.password or "",
            "database": u.database or "",
            "charset": "utf8mb4",
        }
        if "unix_socket" in u.query:
            kwargs["unix_socket"] = u.query["unix_socket"]
        try:
            import MySQLdb
            from MySQLdb.constants import FIELD_TYPE
            from MySQLdb.converters import conversions

            # parameter encoders (keyed by Python type) stay; result decoders are ours
            module = MySQLdb
            conv = {k: v for k, v in conversions.items() if not isinstance(k, int)}
            conv.update({getattr(FIELD_TYPE, t): int for t in _INT_FIELDS})
            conv.update(
                {FIELD_TYPE.FLOAT: float, FIELD_TYPE.DOUBLE: float, FIELD_TYPE.BIT: _bits_to_int}
            )
        except ImportError:
            import pymysql
            from pymysql.constants import FIELD_TYPE
            from pymysql.converters import encoders

            module, conv = pymysql, dict(encoders)
            conv.update({getattr(FIELD_TYPE, t): int for t in _INT_FIELDS})
            conv.update(
                {FIELD_TYPE.FLOAT: float, FIELD_TYPE.DOUBLE: float, FIELD_TYPE.BIT: _bits_to_int}
            )
        try:
            conn = module.connect(conv=conv, **kwargs)
        except module.Error as exc:
            raise self.translate(exc, "connecting") from None
        self.on_connect(conn)
        return conn

    def _dbapi_errors(self) -> tuple[type[BaseException], ...]:
        errors = super()._dbapi_errors()
        with contextlib.suppress(ImportError):
            import MySQLdb

            errors += (MySQLdb.Error,)
        return errors

    def key_converter(
        self, schema: TableSchema, key: tuple[str, ...]
    ) -> Callable[[Key], Key] | None:
        from pymysql import converters as c

        typed: dict[str, Callable[[Any], Any]] = {
            "decimal": lambda v: Decimal(as_text(v)),
            "datetime": c.convert_datetime,
            "timestamptz": c.convert_datetime,
            "date": c.convert_date,
            "time": c.convert_timedelta,
        }
        fns = [typed.get(schema.column(k).type.kind) for k in key]
        if not any(fns):
            return None

        def convert(values: Key) -> Key:
            return tuple(
                v if f is None or v is None else f(as_text(v))
                for f, v in zip(fns, values, strict=True)
            )

        return convert

    def close(self) -> None:
        with self._guard:
            pool, self._text_pool = self._text_pool, []
        for conn in pool:
            with contextlib.suppress(Exception):
                conn.close()
        super().close()

    def explain(self, orig: BaseException, text: str) -> str:
        code = orig.args[0] if orig.args and isinstance(orig.args[0], int) else None
        hint = _ERRORS.get(code) if code is not None else None
        return f"{hint} ({text})" if hint else text

    def is_transient(self, orig: BaseException) -> bool:
        return bool(orig.args) and orig.args[0] in _TRANSIENT

    def read_schema(self, table: str) -> TableSchema:
        """As the base, plus MariaDB's JSON columns (LONGTEXT with a json_valid check) and
        ENUM members exactly as stored (the reflected ones keep doubled backslashes)."""
        schema = super().read_schema(table)
        if any(c.type.kind == "enum" for c in schema.columns):
            sql = (
                "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE"
                " TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND DATA_TYPE = 'enum'"
            )
            with self.errors(f"reading the columns of {table}"), self.raw() as conn:
                cur = conn.cursor()
                cur.execute(sql, (table,))
                members = {r[0]: enum_members(r[1]) for r in cur.fetchall()}
                conn.rollback()
            for col in schema.columns:
                if col.name in members and col.type.kind == "enum":
                    col.type = replace(col.type, values=tuple(members[col.name]))
        if getattr(self.engine.dialect, "is_mariadb", False):
            sql = (
                "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS"
                " WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = %s"
            )
            with self.errors(f"reading the checks of {table}"), self.raw() as conn:
                cur = conn.cursor()
                cur.execute(sql, (table,))
                clauses = [r[0] for r in cur.fetchall()]
                conn.rollback()
            json_cols = {
                m.group(1)
                for c in clauses
                if (m := re.fullmatch(r"json_valid\(`(.+)`\)", c.strip()))
            }
            for col in schema.columns:
                if col.name in json_cols and col.type.kind == "text":
                    col.type = PType("json")
        return schema

    def table_collation(self, insp: Any, table: str) -> str | None:
        opts = insp.get_table_options(table)
        return opts.get("mysql_collate") or opts.get("mariadb_collate")

    # -- types ---------------------------------------------------------------------------
    def portable_type(self, t: Any) -> tuple[PType, str | None]:
        name = type(t).__name__
        unsigned = bool(getattr(t, "unsigned", False))
        if name == "TINYINT" and getattr(t, "display_width", None) == 1 and not unsigned:
            return PType("int8"), None  # BOOLEAN is TINYINT(1): kept as a number, exactly
        if name in NATIVE_KINDS:
            return PType(NATIVE_KINDS[name], unsigned=unsigned), None
        if name == "BIT":
            return PType("int64", unsigned=True), BIT_NOTE
        if name == "SET":
            values = tuple(t.values)
            return PType(
                "varchar", length=max(1, len(",".join(values)))
            ), "SET copied as its text value"
        if name in ("TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT"):
            lengths = {"TINYTEXT": 255, "TEXT": 65535, "MEDIUMTEXT": 16777215, "LONGTEXT": None}
            return PType("text", length=lengths[name]), None
        if name in ("TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB"):
            lengths = {"TINYBLOB": 255, "BLOB": 65535, "MEDIUMBLOB": 16777215, "LONGBLOB": None}
            return PType("blob", length=lengths[name]), None
        if name == "TIMESTAMP":
            fsp = getattr(t, "fsp", None)
            return PType("timestamptz", precision=fsp or 0), None
        if name == "DATETIME":
            return PType("datetime", precision=getattr(t, "fsp", None) or 0), None
        if name == "TIME":
            return PType("time", precision=getattr(t, "fsp", None) or 0), None
        ptype, note = super().portable_type(t)
        if unsigned and ptype.kind in ("int16", "int32", "int64"):
            ptype = PType(ptype.kind, unsigned=True)
        return ptype, note

    def adapt_type(self, p: PType) -> tuple[PType, str | None]:
        if p.kind == "decimal":
            if p.precision is None:
                return PType(
                    "decimal", precision=65, scale=30
                ), "NUMERIC without precision stored as DECIMAL(65,30)"
            if p.precision > 65 or (p.scale or 0) > 30:
                return PType(
                    "decimal", precision=min(p.precision, 65), scale=min(p.scale or 0, 30)
                ), f"DECIMAL({p.precision},{p.scale}) narrowed to MySQL's limits (65,30)"
        if p.kind in ("time", "datetime", "timestamptz") and (p.precision or 0) > 6:
            return PType(
                p.kind, precision=6
            ), f"fractional seconds cut from {p.precision} to 6 digits"
        if p.kind == "varchar" and (p.length or 0) > 16383:
            return PType("text", length=None), f"VARCHAR({p.length}) stored as LONGTEXT"
        return p, None

    def native_type(self, p: PType) -> Any:
        k = p.kind
        if k in INT_TYPES:
            return INT_TYPES[k](unsigned=p.unsigned) if p.unsigned else INT_TYPES[k]()
        if k == "boolean":
            return mysql.BOOLEAN()
        if k == "decimal":
            return mysql.DECIMAL(precision=p.precision, scale=p.scale or 0, unsigned=p.unsigned)
        if k == "float32":
            return mysql.FLOAT()
        if k == "float64":
            return mysql.DOUBLE()
        if k == "char":
            return mysql.CHAR(p.length)
        if k == "varchar":
            return mysql.VARCHAR(p.length)
        if k == "text":
            for limit, cls in TEXT_TYPES:
                if p.length is not None and p.length <= limit:
                    return cls()
            return mysql.LONGTEXT()
        if k == "json":
            return mysql.JSON()
        if k == "binary":
            return mysql.BINARY(p.length)
        if k == "varbinary":
            return mysql.VARBINARY(p.length)
        if k == "blob":
            for limit, cls in BLOB_TYPES:
                if p.length is not None and p.length <= limit:
                    return cls()
            return mysql.LONGBLOB()
        if k == "date":
            return mysql.DATE()
        if k == "time":
            return mysql.TIME(fsp=p.precision or None)
        if k == "datetime":
            return mysql.DATETIME(fsp=p.precision or None)
        if k == "timestamptz":
            return mysql.TIMESTAMP(fsp=p.precision or None)
        if k == "uuid":
            return mysql.CHAR(36)
        if k == "enum":
            return mysql.ENUM(*p.values)
        raise ConnectorError(f"{self.name}: no MySQL type for {p}")

    def target_schema(
        self, source: TableSchema, source_caps: Capabilities, name: str | None = None
    ) -> TableSchema:
        schema = super().target_schema(source, source_caps, name)
        if source_caps.engine != "mysql":
            for col in schema.columns:
                if col.type.kind == "timestamptz":
                    col.type = PType("datetime", precision=col.type.precision)
                    col.notes.append("time zone dropped: values are stored as UTC DATETIME")
        return schema

    def render_default(self, col: Column) -> Any:
        d = col.default
        if d is not None and d.kind == "current_timestamp":
            fsp = col.type.precision or 0
            now = f"CURRENT_TIMESTAMP({fsp})" if fsp else "CURRENT_TIMESTAMP"
            return sa.text(f"{now} ON UPDATE {now}" if d.value == "on update" else now)
        return super().render_default(col)

    def native_type_for(self, col: Column) -> Any:
        t = self.native_type(col.type)
        if col.collation and col.type.kind in ("char", "varchar", "text", "enum"):
            t.collation = col.collation
        return t

    def table_kwargs(self, schema: TableSchema) -> dict[str, Any]:
        kw = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
        kw["mysql_collate"] = (
            schema.collation
            if schema.collation and schema.collation.startswith("utf8mb4")
            else "utf8mb4_bin"
        )
        return kw

    def drop_fk_sql(self, table: str, name: str) -> str:
        """MySQL and MariaDB drop a foreign key by ``DROP FOREIGN KEY``."""
        return f"ALTER TABLE {self.q(table)} DROP FOREIGN KEY {self.q(name)}"

    def index_ddl(self, schema: TableSchema, ix: Any) -> str:
        cols = []
        for c in ix.columns:
            kind = schema.column(c).type.kind
            cols.append(f"{self.q(c)}(255)" if kind in ("text", "blob", "json") else self.q(c))
        unique = "UNIQUE " if ix.unique else ""
        return (
            f"CREATE {unique}INDEX {self.q(ix.name)} ON {self.q(schema.name)} ({', '.join(cols)})"
        )

    # -- reading -------------------------------------------------------------------------
    def row_converter(self, schema: TableSchema) -> Callable[[Row], Row] | None:
        """TIME arrives as timedelta and BIT as bytes: make them portable values."""
        fixes: list[tuple[int, Callable[[Any], Any]]] = []
        for i, col in enumerate(schema.columns):
            if col.type.kind == "time":
                fixes.append((i, _timedelta_to_time))
            elif BIT_NOTE in col.notes:
                fixes.append((i, _bits_to_int))
        return column_fixer(fixes)

    # -- writing -------------------------------------------------------------------------
    def new_spool(self, schema: TableSchema, workdir: Path) -> Any:
        if self.bulk == "insert":
            return PickleSpool(workdir)
        return TextSpool(workdir, [FORMATTERS.get(c.type.kind, _fmt_text) for c in schema.columns])

    def write_spool(self, conn: Any, schema: TableSchema, spool: Any, table: str) -> int:
        """LOAD DATA LOCAL INFILE (``bulk = "insert"``: multi-row INSERTs); any warning
        (a value the server changed or refused) fails the load."""
        if self.bulk == "insert":
            return self._insert_spool(conn, schema, spool, table)
        targets, sets = [], []
        for i, col in enumerate(schema.columns):
            if col.type.kind in ("binary", "varbinary", "blob"):
                targets.append(f"@v{i}")
                sets.append(f"{self.q(col.name)} = UNHEX(@v{i})")
            else:
                targets.append(self.q(col.name))
        path = str(spool.path).replace("\\", "\\\\").replace("'", "\\'")
        sql = (
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {self.q(table)}"
            " CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\'"
            f" LINES TERMINATED BY '\\n' ({', '.join(targets)})"
        )
        if sets:
            sql += " SET " + ", ".join(sets)
        cur = conn.cursor()
        cur.execute(sql)
        written = cur.rowcount
        cur.execute("SHOW WARNINGS LIMIT 3")
        warnings = cur.fetchall()
        cur.close()
        if warnings:
            conn.rollback()
            detail = "; ".join(f"{w[2]}" for w in warnings)
            raise ConnectorError(
                f"{self.name}: loading rows into {schema.name}: the"
                f" server changed or refused values: {detail}"
            )
        return int(written)

    def _insert_spool(self, conn: Any, schema: TableSchema, spool: Any, table: str) -> int:
        def name(n: str) -> str:  # the driver formats this statement: % written twice
            return self.q(n).replace("%", "%%")

        cols = ", ".join(name(c) for c in schema.column_names)
        marks = ", ".join(["%s"] * len(schema.columns))
        sql = f"INSERT INTO {name(table)} ({cols}) VALUES ({marks})"
        written = 0
        cur = conn.cursor()
        for batch in spool.batches():
            cur.executemany(sql, batch)
            written += len(batch)
        cur.close()
        return written

    # -- change capture (mode = "cdc") ---------------------------------------------------
    def cdc_check(self) -> None:
        """Fail with what to change when the server's binlog cannot feed ``cdc``."""
        from connectors.sql import mysql_binlog

        where = f"{self.name} ({self.describe()})"
        with self.errors("checking the binary log settings"), self.raw() as conn:
            mysql_binlog.check_binlog(conn, where)

    @contextlib.contextmanager
    def snapshot(self, text: bool) -> Iterator[str]:
        """Pin this thread's reads to one ``START TRANSACTION WITH CONSISTENT SNAPSHOT``.

        Yields the binlog position the snapshot corresponds to (MariaDB reports it
        exactly; elsewhere the position read just before the snapshot began, which is
        safe because replaying events is idempotent).
        """
        from connectors.sql import mysql_binlog

        cm = self.text_connection() if text else self.raw()
        with self.errors("starting a consistent snapshot"), cm as conn:
            before = mysql_binlog.current_position(conn)
            cur = conn.cursor()
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            cur.close()
            position = mysql_binlog.snapshot_position(conn) or before
            self._pinned.conn = conn
            try:
                yield position.encode()
            finally:
                self._pinned.conn = None
                with contextlib.suppress(Exception):
                    conn.rollback()

    def read_changes(
        self,
        position: str,
        schemas: dict[str, TableSchema],
        keys: dict[str, tuple[str, ...]],
        *,
        server_id_seed: str,
    ) -> Iterator[Any]:
        """Row-event batches since ``position`` (see :mod:`connectors.sql.mysql_binlog`)."""
        import zlib

        from connectors.sql import mysql_binlog

        # a replica id of our own, stable per state file and step, away from small ids
        server_id = 0x40000000 | (zlib.crc32(server_id_seed.encode()) & 0x3FFFFFFF)
        with self.errors("reading the binary log"):
            yield from mysql_binlog.read_changes(
                mysql_binlog.settings_from_url(self._url),
                server_id,
                mysql_binlog.BinlogPosition.decode(position),
                self._url.database or "",
                schemas,
                keys,
            )

    # -- upsert by key -------------------------------------------------------------------
    def stage_ddl(self, schema: TableSchema) -> list[str]:
        stage = self.q(self.STAGE)
        return [
            f"DROP TEMPORARY TABLE IF EXISTS {stage}",
            f"CREATE TEMPORARY TABLE {stage} LIKE {self.q(schema.name)}",
        ]

    def unstage_ddl(self) -> list[str]:
        return [f"DROP TEMPORARY TABLE {self.q(self.STAGE)}"]

    def same_value(self, a: str, b: str, col: Column) -> str:
        """``<=>``; text compared as bytes, so a change of case counts as a change."""
        if col.type.kind in TEXT_KINDS:
            return f"CAST({a} AS BINARY) <=> CAST({b} AS BINARY)"
        return f"{a} <=> {b}"

    def cursor_value(self, schema: TableSchema, column: str, value: Any) -> Any:
        """Every date-time compares naive here: TIMESTAMP reads as UTC in this session."""
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def is_unique_violation(self, exc: BaseException) -> bool:
        return bool(exc.args) and exc.args[0] == _ER_DUP_ENTRY

    def upsert_statements(self, schema: TableSchema, key: tuple[str, ...]) -> list[str]:
        """``INSERT ... ON DUPLICATE KEY UPDATE``, unless the table has a unique index
        besides the key: that statement would then update whichever row holds a staged
        row's unique value, so rows are updated by key and the new ones inserted."""
        if not any(ix.unique and set(ix.columns) != set(key) for ix in schema.indexes):
            return [self.upsert_from_stage(schema, key)]
        t, s = self.q(schema.name), self.q(self.STAGE)
        on = " AND ".join(f"{t}.{self.q(k)} = {s}.{self.q(k)}" for k in key)
        rest = [c for c in schema.column_names if c not in key]
        cols = ", ".join(self.q(c) for c in schema.column_names)
        picked = ", ".join(f"{s}.{self.q(c)}" for c in schema.column_names)
        out = []
        if rest:
            sets = ", ".join(f"{t}.{self.q(c)} = {s}.{self.q(c)}" for c in rest)
            out.append(f"UPDATE {t} JOIN {s} ON {on} SET {sets}")
        out.append(
            f"INSERT INTO {t} ({cols}) SELECT {picked} FROM {s} LEFT JOIN {t} ON {on}"
            f" WHERE {t}.{self.q(key[0])} IS NULL"
        )
        return out

    def undo_statements(self, record: dict[str, Any]) -> list[str]:
        """As the base, after this tool's session settings (:data:`SESSION_SQL`) when
        rows are put back: a script run by hand then restores a row whose AUTO_INCREMENT
        id is 0 with that id and TIMESTAMPs to the same instants, and is not stopped by
        foreign keys between tables restored one after the other."""
        out = super().undo_statements(record)
        writes = record["action"] in ("restore_rows", "emptied_table", "replaced_table")
        if writes and any(not s.lstrip().startswith("--") for s in out):
            return [SESSION_SQL, *out]
        return out

    def delete_kept_keys_sql(self, table: str, bak: str, uid: int, key: list[str]) -> str:
        """A multi-table ``DELETE ... JOIN``: MariaDB plans it from the backup rows,
        where ``IN (SELECT ...)`` in a single-table DELETE may scan the table."""
        t, b, a = self.q(table), self.q(bak), self.alias("b", table)
        on = " AND ".join(f"{a}.{self.q(k)} = {t}.{self.q(k)}" for k in key)
        return f"DELETE {t} FROM {t} JOIN {b} {a} ON {on} WHERE {a}.{UNDO_COLUMN} = {uid}"

    def upsert_from_stage(self, schema: TableSchema, key: tuple[str, ...]) -> str:
        """``INSERT ... SELECT ... ON DUPLICATE KEY UPDATE`` from the staging table."""
        cols = ", ".join(self.q(c) for c in schema.column_names)
        rest = [c for c in schema.column_names if c not in key] or [key[0]]
        updates = ", ".join(f"{self.q(c)} = VALUES({self.q(c)})" for c in rest)
        return (
            f"INSERT INTO {self.q(schema.name)} ({cols}) SELECT {cols} FROM"
            f" {self.q(self.STAGE)} ON DUPLICATE KEY UPDATE {updates}"
        )


def enum_members(column_type: str) -> list[str]:
    """``enum('a','b''c','d\\\\e')`` -> ``['a', "b'c", 'd\\e']`` (information_schema's
    COLUMN_TYPE doubles quotes and backslashes)."""
    inner = column_type[column_type.index("(") + 1 : column_type.rindex(")")]
    quoted = re.findall(r"'((?:''|\\.|[^'\\])*)'", inner, re.S)
    return [re.sub(r"''|\\(.)", lambda m: m.group(1) or "'", q, flags=re.S) for q in quoted]


def _timedelta_to_time(v: Any) -> Any:
    if isinstance(v, dt.timedelta) and dt.timedelta(0) <= v < dt.timedelta(days=1):
        return (dt.datetime.min + v).time()
    return v


def _bits_to_int(v: Any) -> Any:
    return int.from_bytes(v, "big") if isinstance(v, (bytes, bytearray)) else v
