"""SQL Server (2016 and later) through pyodbc: what differs from the shared SQL endpoint.

URLs: ``mssql+pyodbc://user:pass@host:1433/db?driver=ODBC+Driver+18+for+SQL+Server``
(plain ``mssql://`` means pyodbc). SQLAlchemy's pyodbc dialect builds the ODBC connection
string from the URL; every other query key is passed on to the driver as is, e.g.
``TrustServerCertificate=yes`` for a server whose certificate is self-signed (Microsoft's
Driver 18 encrypts by default and checks the certificate: that default is kept). A URL
without ``driver=`` uses the first installed of :data:`ODBC_DRIVERS`.

- Options: ``login_timeout`` (seconds, default 15: a closed port or a silent host fails
  fast), ``lock_timeout`` (seconds a statement waits for a lock before failing with a
  retryable error; default: wait), ``fast_executemany`` (default true; false falls back
  to one round trip per row for drivers whose parameter arrays misbehave).
- Sessions run with the ANSI settings filtered indexes and bulk loads need (ANSI_NULLS,
  ANSI_PADDING, ANSI_WARNINGS, ARITHABORT, CONCAT_NULL_YIELDS_NULL, QUOTED_IDENTIFIER on,
  NUMERIC_ROUNDABORT off), ``DATEFORMAT ymd`` (date-time strings are parsed year first),
  XACT_ABORT off (a failed statement leaves its transaction open: upserts roll back to a
  savepoint) and NOCOUNT off (row counts are read).
- Bulk path: INSERT with pyodbc's ``fast_executemany`` (parameter arrays) and
  ``setinputsizes`` computed per column from the target schema (:func:`input_size`), so
  no value is guessed from the first row. ``(n)varchar(max)`` / ``varbinary(max)`` are
  bound with size 0: pyodbc then streams each value (data at execution), which keeps
  memory bounded; they are bound as ``SQL_WVARCHAR``/``SQL_VARBINARY``, not the legacy
  ``SQL_WLONGVARCHAR`` (ntext), which fails on ``_SC``/``_UTF8`` collations (pyodbc#835).
  A table with an IDENTITY column is loaded with ``SET IDENTITY_INSERT ... ON``.
- Upserts: the rows are staged in ``#migrate_stage`` (``SELECT TOP 0 ... INTO`` with a
  ``UNION ALL``: the target's types and collations without IDENTITY), then one
  ``MERGE ... WITH (HOLDLOCK)`` updates the rows that differ (compared NULL-safe and
  exactly: text as its UTF-16 bytes, so case and trailing blanks count) and inserts the
  new ones; its row count is the number changed.
- rowversion columns read as their BIGINT value (``CAST(col AS BIGINT)`` in every select,
  checksums included); as a watermark they compare index-friendly
  (``col > CAST(? AS BINARY(8))``) and the highest safe value is
  ``MIN_ACTIVE_ROWVERSION() - 1`` (a transaction still open cannot commit below it).
- Checksums (the canonical MD5 of :mod:`validators.canonical`) hash the row text as
  UTF-8 through a ``_UTF8`` collation, which needs SQL Server 2019; on 2016 and 2017 they
  stop with a clear error, except between two SQL Server endpoints, which compare the
  same text hashed as UTF-16 (:meth:`MSSQLEndpoint.fast_hash`).
- Fractions of 100 ns: pyodbc reads DATETIME2, TIME and DATETIMEOFFSET at microseconds.
  Output converters (:func:`decode_timestamp`, :func:`decode_time`,
  :func:`decode_datetimeoffset`) decode the driver's structs whole: a seventh digit is
  kept on the value (:class:`DateTime7`, :class:`Time7`, attribute ``nanos``), which
  compares, hashes and prints as its microsecond value everywhere else; key parameters
  and DATETIME2(7) / TIME / DATETIMEOFFSET columns are bound as text with all seven
  digits, so keys compare equal and SQL Server to SQL Server copies keep every digit.
- Text from another engine: NVARCHAR(n) and NCHAR(n) count UTF-16 code units (a
  character outside the BMP takes two), other engines count characters: VARCHAR(n) from
  another engine is created as NVARCHAR(2n) (NVARCHAR(max) beyond 4000), an ENUM as
  NVARCHAR of twice its longest value; CHAR(n) stays NCHAR(n) (padding would change),
  with a note.
- Azure SQL Database and Managed Instance report version 12 and are always current:
  ``SERVERPROPERTY('EngineEdition')`` 5 or 8 counts as the newest version.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import struct
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from connectors.sql.base import KEY_SUM_MODULUS, SQLEndpoint, _typed, column_fixer
from migrate.backup import UNDO_COLUMN, RowBackup
from migrate.endpoints import Capabilities, Key, Row
from migrate.errors import ConnectorError
from migrate.plan import redact
from migrate.schema import BINARY_KINDS, Column, ForeignKey, Index, PType, TableSchema
from migrate.values import nanos_of, with_nanos
from validators.canonical import ColumnSpec, MSSQLRender

#: ODBC drivers tried, in order, when the URL names none
ODBC_DRIVERS = ("ODBC Driver 18 for SQL Server", "ODBC Driver 17 for SQL Server", "FreeTDS")
DRIVER_PACKAGES = (
    "install Debian's tdsodbc (FreeTDS: ?driver=FreeTDS) or Microsoft's msodbcsql18"
    " (?driver=ODBC+Driver+18+for+SQL+Server)"
)
#: the oldest version supported (DROP TABLE IF EXISTS, HASHBYTES without a length limit)
OLDEST = (13,)
#: the version Azure SQL Database / Managed Instance count as (they report 12.x)
CURRENT = (16, 0)
#: SERVERPROPERTY('EngineEdition') of Azure SQL Database and Azure SQL Managed Instance
AZURE_EDITIONS = frozenset({5, 8})
#: checksums hash the row text as UTF-8 through a _UTF8 collation (SQL Server 2019)
UTF8_FROM = (15,)
#: most parameters one statement may carry (SQL Server's limit is 2100)
MAX_PARAMS = 2000

DTO_NOTE = "offset dropped: values read in UTC"
ROWVERSION_NOTE = "rowversion copied as its BIGINT value"
FRACTION_7 = "fractional seconds cut from {} to 7 digits"
ENUM_NOTE = "allowed values not enforced"
NCHAR_NOTE = "NCHAR counts UTF-16 units: n characters outside the BMP do not fit"
#: NVARCHAR(n) holds at most this many UTF-16 units (beyond: NVARCHAR(max))
NVARCHAR_MAX_N = 4000
#: text columns created from another engine compare exactly, as MySQL's utf8mb4_bin
BINARY_COLLATION = "Latin1_General_100_BIN2"

# ODBC SQL type codes (ODBC's own numbers, so this module imports without pyodbc)
SQL_BIT, SQL_TINYINT, SQL_SMALLINT, SQL_INTEGER, SQL_BIGINT = -7, -6, 5, 4, -5
SQL_DECIMAL, SQL_REAL, SQL_DOUBLE = 3, 7, 8
SQL_WCHAR, SQL_WVARCHAR, SQL_BINARY, SQL_VARBINARY = -8, -9, -2, -3
SQL_TYPE_DATE, SQL_TYPE_TIMESTAMP = 91, 93
#: SQL Server's TIME and DATETIMEOFFSET as the driver reports them
SQL_SS_TIME2, SQL_SS_TIMESTAMPOFFSET = -154, -155

# reflected type class name -> portable type, where the generic mapping is wrong
NATIVE_TYPES: dict[str, tuple[PType, str | None]] = {
    "TINYINT": (PType("int8", unsigned=True), None),
    "REAL": (PType("float32"), None),
    "MONEY": (PType("decimal", precision=19, scale=4), None),
    "SMALLMONEY": (PType("decimal", precision=10, scale=4), None),
    "SMALLDATETIME": (PType("datetime", precision=0), None),
    "DATETIME": (PType("datetime", precision=3), None),
    "TIMESTAMP": (PType("int64"), ROWVERSION_NOTE),  # rowversion
    "XML": (PType("text"), "XML copied as its text form"),
    "SQL_VARIANT": (PType("text"), "SQL_VARIANT copied as its text form"),
}
# types reflection does not know (SQLAlchemy reads them as NullType), by sys.types name
CLR_TYPES: dict[str, str] = {
    "hierarchyid": "HIERARCHYID copied as its text form",
    "geometry": "GEOMETRY copied as its WKT text",
    "geography": "GEOGRAPHY copied as its WKT text",
}
# how a column of a sys.types type is selected so that it reads as its portable value
READ_AS: dict[str, str] = {
    "timestamp": "CAST({c} AS BIGINT)",
    "xml": "CAST({c} AS NVARCHAR(MAX))",
    "sql_variant": "CAST({c} AS NVARCHAR(4000))",
    "hierarchyid": "{c}.ToString()",
    "geometry": "{c}.ToString()",
    "geography": "{c}.ToString()",
}
# and how it is selected for a checksum: as the values reads give (a DATETIME reads at
# milliseconds, see decode_timestamp; the render cuts the seventh fractional digit of the
# others, as reads do)
CHECKSUM_AS: dict[str, str] = {
    **READ_AS,
    "datetime": "CAST({c} AS DATETIME2(3))",
    "image": "CAST({c} AS VARBINARY(MAX))",
}
FRACTION_TYPES = frozenset({"datetime2", "datetimeoffset", "time"})
#: key columns compared with a parameter cast to their own type: pyodbc binds text as
#: NVARCHAR, which would convert every row of a VARCHAR column (a scan, not a seek)
NARROW_TEXT = frozenset({"char", "varchar"})

_INT_TYPES: dict[tuple[str, bool], Any] = {
    ("int8", False): mssql.SMALLINT,
    ("int8", True): mssql.TINYINT,
    ("int16", False): mssql.SMALLINT,
    ("int16", True): mssql.INTEGER,
    ("int32", False): mssql.INTEGER,
    ("int32", True): mssql.BIGINT,
    ("int64", False): mssql.BIGINT,
}
_INT_SIZES: dict[str, tuple[int, int, int]] = {
    "SMALLINT": (SQL_SMALLINT, 5, 0),
    "TINYINT": (SQL_TINYINT, 3, 0),
    "INTEGER": (SQL_INTEGER, 10, 0),
    "BIGINT": (SQL_BIGINT, 19, 0),
}

_CURRENT = re.compile(
    r"^(getdate|getutcdate|sysdatetime|sysutcdatetime|sysdatetimeoffset|current_timestamp)"
    r"\s*(\(\s*\))?$",
    re.I,
)
_NATIVE_CODE = re.compile(r"\((-?\d+)\)\s*(?:\(SQL\w+\))?\s*$")
#: SQL Server errors a retry can cure: deadlock victim, lock timeout, Azure SQL's
#: throttling and failovers, connections reset
_TRANSIENT = {1205, 1222, 233, 4221, 10053, 10054, 10928, 10929, 40197, 40501, 40613, 49918}
_UNIQUE = {2601, 2627}
_CONNECT_TEXTS = (
    "Unable to connect",
    "TCP Provider",
    "Login timeout expired",
    "A network-related",
    "Adaptive Server is unavailable",
    "Server is not found",
    "Connection refused",
)


@dataclass(frozen=True)
class NativeColumn:
    """A column as ``sys.columns`` describes it: its type's name (``timestamp`` for a
    rowversion, ``hierarchyid`` for a CLR type), fractional digits, IDENTITY or not, its
    length in bytes (-1 for ``(max)``) and collation."""

    type: str
    scale: int = 0
    identity: bool = False
    length: int = 0
    collation: str | None = None


# -- values ------------------------------------------------------------------------------
def decode_timestamp(raw: bytes | None) -> dt.datetime | None:
    """A datetime from what the ODBC driver sends for ``SQL_TYPE_TIMESTAMP`` as binary:
    for DATETIME2 the ``SQL_TIMESTAMP_STRUCT`` (year, month, day, hour, minute, second as
    16-bit integers, the fraction in nanoseconds as an unsigned 32-bit one), kept to
    100 ns; for DATETIME its TDS form (days since 1900 and 1/300 seconds, read at
    milliseconds as SQL Server shows it); for SMALLDATETIME days and minutes."""
    if raw is None:
        return None
    if len(raw) == 16:
        year, month, day, hour, minute, second, ns = struct.unpack("<6hI", raw)
        v = dt.datetime(year, month, day, hour, minute, second, ns // 1000)
        return with_nanos(v, ns % 1000)
    if len(raw) == 8:
        days, ticks = struct.unpack("<iI", raw)
        millis = (ticks * 10 + 1) // 3  # ticks of 1/300 s, rounded: .000, .003, .007
        return _SQL_EPOCH + dt.timedelta(days=days, milliseconds=millis)
    if len(raw) == 4:
        days, minutes = struct.unpack("<HH", raw)
        return _SQL_EPOCH + dt.timedelta(days=days, minutes=minutes)
    raise ValueError(f"unexpected SQL_TYPE_TIMESTAMP data of {len(raw)} bytes")


def decode_time(raw: bytes | None) -> dt.time | None:
    """A time from the ``SQL_SS_TIME2_STRUCT`` the driver sends for a TIME (hour, minute,
    second as 16-bit integers, two bytes of padding, the fraction in nanoseconds as an
    unsigned 32-bit integer), kept to 100 ns."""
    if raw is None:
        return None
    hour, minute, second, ns = struct.unpack("<3H2xI", raw)
    return with_nanos(dt.time(hour, minute, second, ns // 1000), ns % 1000)


def decode_datetimeoffset(raw: bytes | None) -> dt.datetime | None:
    """An aware datetime from the ``SQL_SS_TIMESTAMPOFFSET_STRUCT`` the ODBC driver sends
    for a DATETIMEOFFSET (year, month, day, hour, minute, second as 16-bit integers, the
    fraction in nanoseconds as an unsigned 32-bit one, then the offset's hours and
    minutes, both signed and of the same sign), kept to 100 ns."""
    if raw is None:
        return None
    year, month, day, hour, minute, second, ns, tz_h, tz_m = struct.unpack("<6hI2h", raw)
    tz = dt.timezone(dt.timedelta(hours=tz_h, minutes=tz_m))
    v = dt.datetime(year, month, day, hour, minute, second, ns // 1000, tzinfo=tz)
    return with_nanos(v, ns % 1000)


_SQL_EPOCH = dt.datetime(1900, 1, 1)
#: pyodbc output converters: ODBC SQL type -> decoder (see MSSQLEndpoint.on_connect)
OUTPUT_CONVERTERS: dict[int, Callable[[bytes | None], Any]] = {
    SQL_TYPE_TIMESTAMP: decode_timestamp,
    SQL_SS_TIME2: decode_time,
    SQL_SS_TIMESTAMPOFFSET: decode_datetimeoffset,
}


_DTO_TEXT = re.compile(
    r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:\.(\d+))?\s*(?:([+-]\d{2}):?(\d{2})|Z)?$"
)


def _fraction7(digits: str | None) -> tuple[int, int]:
    """Microseconds and the nanoseconds beyond them of up to 7 fractional digits (more
    are cut)."""
    ticks = int((digits or "0")[:7].ljust(7, "0"))
    return ticks // 10, ticks % 10 * 100


def _parse_datetime(text: str) -> dt.datetime:
    """A date-time in SQL Server's text form (up to 7 fractional digits, maybe an offset)."""
    m = _DTO_TEXT.match(text.strip())
    if m is None:
        raise ValueError(f"not a date-time: {text!r}")
    base = dt.datetime.fromisoformat(m.group(1).replace("T", " "))
    micros, nanos = _fraction7(m.group(2))
    value = base.replace(microsecond=micros)
    if m.group(3):
        hours = int(m.group(3))
        minutes = int(m.group(4)) * (-1 if m.group(3).startswith("-") else 1)
        value = value.replace(tzinfo=dt.timezone(dt.timedelta(hours=hours, minutes=minutes)))
    elif text.strip().endswith("Z"):
        value = value.replace(tzinfo=dt.UTC)
    return with_nanos(value, nanos)


def _to_utc(v: Any) -> Any:
    """A DATETIMEOFFSET value as an aware datetime in UTC (its seventh digit kept)."""
    if isinstance(v, (bytes, bytearray)):
        v = decode_datetimeoffset(bytes(v))
    elif isinstance(v, str):
        v = _parse_datetime(v)
    if isinstance(v, dt.datetime):
        try:
            utc = v.astimezone(dt.UTC) if v.tzinfo else v.replace(tzinfo=dt.UTC)
        except OverflowError:  # 0001-01-01 00:00 +01:00 is before the year 1 in UTC
            raise ConnectorError(
                f"DATETIMEOFFSET value {v.isoformat()} is outside the years 1-9999 in UTC"
            ) from None
        return with_nanos(utc, nanos_of(v))
    return v


def _timedelta_text(v: dt.timedelta) -> str:
    """A MySQL-style TIME text of ``v`` (``-01:00:00``, ``838:59:59.000001``)."""
    micros = v // dt.timedelta(microseconds=1)
    sign, micros = ("-" if micros < 0 else ""), abs(micros)
    secs, us = divmod(micros, 1_000_000)
    text = f"{sign}{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
    return text + (f".{us:06d}" if us else "")


def time_of_day(v: dt.timedelta) -> dt.time:
    """A duration (MySQL's TIME: -838:59:59 to 838:59:59) as the time of day it is, or a
    :class:`ConnectorError` naming it when it is not one: SQL Server's TIME holds
    00:00:00 to 23:59:59.9999999, and no value is changed silently."""
    if not dt.timedelta(0) <= v < dt.timedelta(days=1):
        raise ConnectorError(
            f"TIME value {_timedelta_text(v)} does not fit SQL Server's TIME, which holds"
            " 00:00:00–23:59:59.9999999 (the value is not changed silently)"
        )
    return (dt.datetime.min + v).time()


def _to_time(v: Any) -> Any:
    if isinstance(v, str):
        head, _, frac = v.strip().partition(".")
        micros, nanos = _fraction7(frac)
        return with_nanos(dt.time.fromisoformat(head).replace(microsecond=micros), nanos)
    if isinstance(v, dt.timedelta):
        return time_of_day(v)
    return v


def _to_datetime(v: Any) -> Any:
    return _parse_datetime(v) if isinstance(v, str) else v


def _fraction(micros: int, nanos: int = 0) -> str:
    """``.fffffff`` without trailing zeros (``""`` for whole seconds): a DATETIME accepts
    at most three fractional digits in text, and values read from one have no more."""
    ticks = micros * 10 + nanos // 100
    return f".{ticks:07d}".rstrip("0").rstrip(".") if ticks else ""


def datetime_text(v: dt.datetime) -> str:
    """A date-time as text SQL Server converts to any date-time type exactly (an aware
    one with its offset), with a seventh fractional digit when ``v`` has one."""
    text = (  # %Y would write the year 1 as "1", which SQL Server reads as 2001
        f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}"
        f"{_fraction(v.microsecond, nanos_of(v))}"
    )
    if v.tzinfo is not None:
        off = v.utcoffset() or dt.timedelta(0)
        sign = "-" if off < dt.timedelta(0) else "+"
        minutes = abs(off) // dt.timedelta(minutes=1)
        text += f" {sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return text


def time_text(v: Any) -> str:
    """A time as text SQL Server converts to TIME exactly (seven digits when ``v`` has a
    seventh); a duration must be a time of day (:func:`time_of_day`)."""
    if isinstance(v, dt.timedelta):
        v = time_of_day(v)
    if isinstance(v, dt.time):
        nanos = nanos_of(v)
        if nanos:
            return f"{v:%H:%M:%S}.{v.microsecond:06d}{nanos // 100}"
        return f"{v:%H:%M:%S}.{v.microsecond:06d}"
    return v.decode() if isinstance(v, (bytes, bytearray)) else str(v)


def round_datetime(v: dt.datetime, digits: int) -> dt.datetime:
    """``v`` rounded (half up, as SQL Server rounds) to ``digits`` fractional digits: the
    driver refuses a fraction longer than the bound scale."""
    if digits >= 6:
        return v
    step = 10 ** (6 - digits)
    rest = v.microsecond % step
    if not rest:
        return v
    v = v - dt.timedelta(microseconds=rest)
    if rest * 2 >= step:
        try:
            v += dt.timedelta(microseconds=step)
        except OverflowError:  # 9999-12-31 23:59:59.9...: keep the cut value
            pass
    return v


_WIDE = Context(prec=80)


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode("utf-8")
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    return str(v)


# -- the endpoint ------------------------------------------------------------------------
class MSSQLEndpoint(SQLEndpoint):
    """SQL Server 2016 or later through pyodbc (see the module docstring).

    ``dry_run`` (read-only validation and dry runs): connections ask for
    ``ApplicationIntent=ReadOnly``, which routes them to a readable secondary behind an
    availability-group listener and makes such a secondary refuse writes. On a standalone
    server SQL Server enforces nothing for it: there, read-only means this endpoint
    never sends a writing statement in a dry run (the core calls no write method).
    """

    engine_label = "SQL Server"
    driver_module = "pyodbc"
    default_driver = "pyodbc"
    extra = "mssql"
    capabilities: ClassVar[Capabilities] = Capabilities(
        engine="mssql",
        bulk_load="executemany",
        max_identifier_length=128,
        max_bind_params=2100,
        index_namespace="table",
        hash_kinds=("md5", "sha2_256"),
        cdc=None,
    )
    render_class = MSSQLRender
    STAGE = "#migrate_stage"
    SAVEPOINT: ClassVar[str] = "SAVE TRANSACTION {}"
    ROLLBACK_TO: ClassVar[str] = "ROLLBACK TRANSACTION {}"
    RELEASE: ClassVar[str] = ""
    #: bytes of parameter array per ``executemany`` (pyodbc allocates the whole array at
    #: once: row length x rows), and the fewest rows per call
    EXECUTEMANY_BYTES = 64 << 20
    EXECUTEMANY_MIN_ROWS = 100

    # -- connection ----------------------------------------------------------------------
    def known_options(self) -> set[str]:
        return {"login_timeout", "lock_timeout", "fast_executemany"}

    def check_options(self) -> None:
        self._natives: dict[str, dict[str, NativeColumn]] = {}
        #: SERVERPROPERTY('EngineEdition'), read on connect (5, 8: Azure, see engine)
        self.engine_edition: int | None = None
        super().check_options()
        where = f"connections.{self.name}.options"
        login = self.options.get("login_timeout", 15)
        lock = self.options.get("lock_timeout")
        fast = self.options.get("fast_executemany", True)
        if isinstance(login, bool) or not isinstance(login, int) or login < 1:
            raise ConnectorError(f"{where}.login_timeout: {login!r} is not a number of seconds")
        if lock is not None and (isinstance(lock, bool) or not isinstance(lock, (int, float))):
            raise ConnectorError(f"{where}.lock_timeout: {lock!r} is not a number of seconds")
        if not isinstance(fast, bool):
            raise ConnectorError(f"{where}.fast_executemany: {fast!r} is not true or false")
        self.login_timeout = login
        self.lock_timeout = lock
        self.fast_executemany = fast

    def resolve_url(self, url: sa.URL) -> sa.URL:
        url = super().resolve_url(url)
        if url.get_driver_name() != "pyodbc":
            raise ConnectorError(
                f"connections.{self.name}: SQL Server is reached through pyodbc:"
                f" use mssql+pyodbc:// (not {url.drivername}://)"
            )
        if self.dry_run and "odbc_connect" not in url.query:
            url = url.update_query_dict({"ApplicationIntent": "ReadOnly"})
        return url

    def with_odbc_driver(self, url: sa.URL) -> sa.URL:
        """``url`` naming an ODBC driver: the first installed of :data:`ODBC_DRIVERS` when
        it names none (nor a DSN or a whole connection string)."""
        if {"driver", "odbc_connect", "dsn"} & {k.lower() for k in url.query}:
            return url
        try:
            import pyodbc
        except ImportError:
            return url  # the engine says which package to install
        installed = pyodbc.drivers()
        for name in ODBC_DRIVERS:
            if name in installed:
                return url.update_query_dict({"driver": name})
        raise ConnectorError(
            f"{self.name}: connecting: no SQL Server ODBC driver is installed"
            f" (installed: {', '.join(installed) or 'none'}): {DRIVER_PACKAGES}"
        )

    @property
    def engine(self) -> sa.Engine:
        """As the base, after naming an ODBC driver; a server older than 2016 is refused
        (Azure SQL Database and Managed Instance count as current: :meth:`check_version`)."""
        if self._engine is None:
            self._url = self.with_odbc_driver(self._url)
        engine: sa.Engine = SQLEndpoint.engine.fget(self)  # type: ignore[attr-defined]
        self.check_version(engine.dialect)
        return engine

    def check_version(self, dialect: sa.Dialect) -> None:
        """Azure SQL Database (EngineEdition 5) and Managed Instance (8) report version
        12.x but run the current engine: their dialect is set to :data:`CURRENT`. Any
        other server older than 2016 is refused."""
        version = tuple(dialect.server_version_info or ())
        if self.engine_edition in AZURE_EDITIONS and version < CURRENT:
            dialect.server_version_info = CURRENT
            dialect._setup_version_attributes()  # type: ignore[attr-defined]
            return
        if version and version < OLDEST:
            raise ConnectorError(
                f"{self.name}: SQL Server {'.'.join(map(str, version))} is older than"
                " 2016 (13.0), the oldest this tool supports"
            )

    def connect_args(self) -> dict[str, Any]:
        return {"timeout": self.login_timeout}  # pyodbc: the login timeout, in seconds

    def session_sql(self) -> str:
        """The settings every connection runs with (see the module docstring)."""
        sql = (
            "SET ANSI_NULLS ON; SET ANSI_PADDING ON; SET ANSI_WARNINGS ON; SET ARITHABORT ON;"
            " SET CONCAT_NULL_YIELDS_NULL ON; SET QUOTED_IDENTIFIER ON;"
            " SET NUMERIC_ROUNDABORT OFF; SET DATEFORMAT ymd; SET XACT_ABORT OFF;"
            " SET NOCOUNT OFF"
        )
        if self.lock_timeout is not None:
            sql += f"; SET LOCK_TIMEOUT {int(self.lock_timeout * 1000)}"
        return sql

    def on_connect(self, dbapi_conn: Any) -> None:
        """Output converters that keep 100 ns (:data:`OUTPUT_CONVERTERS`), the session
        settings, and the server's EngineEdition (:meth:`check_version`)."""
        for sqltype, decode in OUTPUT_CONVERTERS.items():
            dbapi_conn.add_output_converter(sqltype, decode)
        cur = dbapi_conn.cursor()
        cur.execute(self.session_sql())
        cur.execute(EDITION_SQL)
        row = cur.fetchone()
        cur.close()
        if row is not None and row[0] is not None:
            self.engine_edition = int(row[0])

    @classmethod
    def make_dialect(cls, url: str, version: tuple[int, ...]) -> sa.Dialect:
        """The pyodbc dialect (``?`` parameters) as connecting to ``version`` sets it:
        ``(13, 0)`` is SQL Server 2016, ``(15, 0)`` 2019, ``(16, 0)`` 2022."""
        u = sa.make_url(url)
        if "+" not in u.drivername:
            u = u.set(drivername="mssql+pyodbc")
        dialect = u.get_dialect()(paramstyle="qmark")
        dialect.server_version_info = version
        dialect._setup_version_attributes()
        dialect._supports_nvarchar_max = True
        dialect.default_schema_name = "dbo"
        return dialect

    # -- errors --------------------------------------------------------------------------
    def _diagnostics(self, orig: BaseException) -> tuple[str, set[int], str]:
        """SQLSTATE, SQL Server's native error numbers, and the driver's first message
        without its ``[state] [vendor][driver]`` prefixes (secrets redacted)."""
        args = getattr(orig, "args", ())
        state = str(args[0]) if len(args) >= 2 else ""
        message = str(args[1] if len(args) >= 2 else (args[0] if args else orig))
        # each diagnostic record ends with its native error number (then the ODBC call)
        codes = {int(m.group(1)) for rec in message.split("; [") if (m := _NATIVE_CODE.search(rec))}
        first = message.split("; [", 1)[0]
        first = re.sub(r"^\[[0-9A-Z]{5}\]\s*", "", first)
        first = re.sub(r"^(\[[^\]]*\])+", "", first)
        first = re.sub(r"\s*\(SQL\w+\)\s*$", "", first)
        first = re.sub(r"\s*\(0\)$", "", first).strip()  # no native error number
        return state, codes, redact(first, self.secrets | self._url_secrets())

    def explain(self, orig: BaseException, text: str) -> str:
        """One line per kind of failure: what happened, what to check, the driver's words."""
        state, codes, detail = self._diagnostics(orig)
        message = str(orig)
        host = self._url.host or "localhost"
        where = f"{host}:{self._url.port or 1433}"
        hint = None
        if state == "IM002":
            hint = (
                "no ODBC driver or data source of that name: name the driver in the URL"
                f" (?driver=...) and {DRIVER_PACKAGES}"
            )
        elif "Can't open lib" in message or ("file not found" in message and state == "01000"):
            m = re.search(r"Can't open lib '([^']*)'", message)
            name = m.group(1) if m else "the one in the URL"
            hint = f"ODBC driver {name!r} is not installed: {DRIVER_PACKAGES}"
        elif 4060 in codes:
            hint = (
                f"cannot open the database {self._url.database!r}: check the database name"
                " at the end of the URL and that this login may use it"
            )
        elif 18456 in codes or state == "28000" or "Login failed" in message:
            hint = (
                f"login failed for user {self._url.username!r}: check the user name and"
                " password in the URL, and that the server allows SQL Server logins"
            )
        elif "certificate" in message.lower():
            hint = (
                "the server's TLS certificate is not trusted: install its CA, or add"
                " TrustServerCertificate=yes to the URL query (e.g. a self-signed test server)"
            )
        elif self._connect_failed(state, message):
            hint = (
                f"cannot connect to SQL Server at {where}: check the host and port (a named"
                " instance listens on its own port), that the server is running and accepts"
                " TCP/IP connections, and any firewall between"
            )
        elif state == "08S01":
            hint = "the connection to SQL Server was lost (running again can succeed)"
        elif 1222 in codes:
            hint = "a lock was held longer than options.lock_timeout (running again can succeed)"
        elif 1205 in codes:
            hint = "chosen as a deadlock victim (running again can succeed)"
        out = f"{hint} ({detail})" if hint else detail
        return redact(out, self.secrets | self._url_secrets())

    @staticmethod
    def _connect_failed(state: str, message: str) -> bool:
        """Whether the error is a failure to reach the server at all (not a connection
        lost later, whose driver text can be the same "TCP Provider" one)."""
        connecting = "SQLDriverConnect" in message or state == "08001"
        return connecting and any(t in message for t in _CONNECT_TEXTS)

    def is_transient(self, orig: BaseException) -> bool:
        state, codes, _ = self._diagnostics(orig)
        if self._connect_failed(state, str(orig)):
            return False  # a server that cannot be reached now will not be in a moment
        return bool(codes & _TRANSIENT) or state in ("40001", "08S01", "HYT00")

    def is_unique_violation(self, exc: BaseException) -> bool:
        return bool(self._diagnostics(getattr(exc, "orig", exc))[1] & _UNIQUE)

    def unique_violation_detail(self, exc: BaseException) -> str:
        text = str(getattr(exc, "orig", exc))
        m = re.search(r"(?:unique index|constraint) '([^']+)'", text)
        return f"unique index {m.group(1)}" if m else super().unique_violation_detail(exc)

    # -- the columns a table really has --------------------------------------------------
    NATIVES_SQL: ClassVar[str] = (
        "SELECT c.name, CASE WHEN c.system_type_id = 240 THEN TYPE_NAME(c.user_type_id)"
        " ELSE TYPE_NAME(c.system_type_id) END, c.scale, c.is_identity, c.max_length,"
        " c.collation_name FROM sys.columns AS c WHERE c.object_id = OBJECT_ID(?)"
        " ORDER BY c.column_id"
    )

    def native_columns(self, table: str, refresh: bool = False) -> dict[str, NativeColumn]:
        """The table's columns as ``sys.columns`` has them, in order (cached per table;
        empty for a table that does not exist)."""
        got = None if refresh else self._natives.get(table)
        if got is None:
            with self.errors(f"reading the columns of {table}"), self.raw() as conn:
                cur = conn.cursor()
                cur.execute(self.NATIVES_SQL, (self.q(table),))
                rows = cur.fetchall()
                cur.close()
                conn.rollback()
            got = {
                str(r[0]): NativeColumn(
                    str(r[1]).lower(), int(r[2] or 0), bool(r[3]), int(r[4] or 0), r[5]
                )
                for r in rows
            }
            self._natives[table] = got
        return got

    def _read_expr(self, table: str, column: str, for_checksum: bool) -> str | None:
        """The select expression of ``column`` (None: the column itself)."""
        native = self.native_columns(table).get(column)
        if native is None:
            return None
        pattern = (CHECKSUM_AS if for_checksum else READ_AS).get(native.type)
        return pattern.format(c=f"{self.q(table)}.{self.q(column)}") if pattern else None

    def select_list(self, t: Any, schema: TableSchema) -> list[Any]:
        """The select list reading ``schema``'s columns as portable values."""
        out = []
        for name in schema.column_names:
            expr = self._read_expr(schema.name, name, False)
            out.append(sa.literal_column(expr).label(name) if expr else t.c[name])
        return out

    def _checksum_source(
        self, table: str, key: tuple[str, ...], lo: Key | None = None, hi: Key | None = None
    ) -> tuple[Any, list[Any]]:
        """What a checksum of ``lo < key <= hi`` selects from, and the conditions to add:
        the table and the range, or (when some columns must be converted first) a derived
        table of the same name selecting every column as a checksum reads it, with the
        range inside on the raw key columns (index-friendly)."""
        names = list(self.native_columns(table))
        exprs = {n: self._read_expr(table, n, True) for n in names}
        raw = self.sa_table(table, list(dict.fromkeys([*key, *names])))
        where = self._range(raw, key, lo, hi)
        if not any(exprs.values()):
            return raw, where
        cols = [sa.literal_column(exprs[n]).label(n) if exprs[n] else sa.column(n) for n in names]
        return sa.select(*cols).select_from(raw).where(*where).subquery(table), []

    # -- key parameters ------------------------------------------------------------------
    def key_param(self, table: str, column: str, value: Any) -> Any:
        """``value`` as a parameter compared with ``column``: cast to the column's own
        type when it is CHAR/VARCHAR (pyodbc binds text as NVARCHAR, which would convert
        the column on every row: a scan instead of a seek), in the column's collation (its
        code page); a rowversion's number as BINARY(8) (its order is the number's)."""
        native = self.native_columns(table).get(column)
        if native is not None and native.type == "timestamp" and isinstance(value, int):
            return sa.cast(sa.literal(value, sa.BigInteger()), mssql.BINARY(8))  # rowversion
        if native is None or native.type not in NARROW_TEXT or not isinstance(value, str):
            return value
        bound: Any = sa.literal(value, sa.String())
        if native.collation:
            bound = bound.collate(native.collation)
        return sa.cast(bound, _narrow_type(native))

    def key_marker(self, table: str, column: str) -> str:
        """The parameter marker of :meth:`key_param` in SQL text: ``?`` or its CAST."""
        native = self.native_columns(table).get(column)
        if native is not None and native.type == "timestamp":
            return "CAST(? AS BINARY(8))"
        if native is None or native.type not in NARROW_TEXT:
            return "?"
        collate = f" COLLATE {native.collation}" if native.collation else ""
        ddl = _narrow_type(native).compile(dialect=self.dialect)
        return f"CAST(?{collate} AS {ddl})"

    def _key_values(self, table: str, key: tuple[str, ...], values: Key) -> tuple[Any, ...]:
        return tuple(self.key_param(table, c, v) for c, v in zip(key, values, strict=True))

    def _range(
        self, t: sa.TableClause, key: tuple[str, ...], lo: Key | None, hi: Key | None
    ) -> list[sa.ColumnElement[bool]]:
        """As the base, with each key value a :meth:`key_param`."""
        cols = [t.c[k] for k in key]
        where = []
        if lo is not None:
            where.append(self.key_after(cols, self._key_values(t.name, key, lo)))
        if hi is not None:
            where.append(self.key_upto(cols, self._key_values(t.name, key, hi)))
        return where

    def create_table(self, schema: TableSchema) -> None:
        self._natives.pop(schema.name, None)
        super().create_table(schema)

    def drop_table(self, table: str, backup: RowBackup | None = None) -> None:
        self._natives.pop(table, None)
        super().drop_table(table, backup)

    def _is_rowversion(self, table: str, column: str) -> bool:
        native = self.native_columns(table).get(column)
        return native is not None and native.type == "timestamp"

    # -- schema --------------------------------------------------------------------------
    def read_schema(self, table: str) -> TableSchema:
        """As the base, plus what reflection reads wrong: fractional digits of DATETIME2,
        TIME and DATETIMEOFFSET, and the CLR types (hierarchyid, geometry, geography)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.exc.SAWarning)  # "Did not recognize type"
            schema = super().read_schema(table)
        natives = self.native_columns(table, refresh=True)
        for col in schema.columns:
            native = natives.get(col.name)
            if native is None:
                continue
            if native.type in CLR_TYPES:
                col.type, col.notes = PType("text"), [CLR_TYPES[native.type]]
            elif native.type in FRACTION_TYPES:
                col.type = replace(col.type, precision=min(native.scale, 7))
        return schema

    def parse_default(self, text: str | None, col: Column) -> Any:
        """T-SQL defaults: ``((0))``, ``(N'text')``, ``(getdate())``, ``(sysutcdatetime())``."""
        if text is None:
            return None
        raw = str(text).strip()
        while raw.startswith("(") and raw.endswith(")"):
            raw = raw[1:-1].strip()
        if len(raw) >= 3 and raw[:2] in ("N'", "n'") and raw.endswith("'"):
            raw = raw[1:]
        if _CURRENT.match(raw):
            raw = "CURRENT_TIMESTAMP"
        return super().parse_default(raw, col)

    # -- types ---------------------------------------------------------------------------
    def portable_type(self, t: Any) -> tuple[PType, str | None]:
        name = type(t).__name__
        if name in NATIVE_TYPES:
            return NATIVE_TYPES[name]
        if name in ("DATETIME2", "DATETIMEOFFSET", "TIME"):
            # SQL Server's default is 7 digits (reflection does not read them: see
            # read_schema)
            p = getattr(t, "precision", None)
            p = 7 if p is None else p
            if name == "DATETIMEOFFSET":
                return PType("timestamptz", precision=p), DTO_NOTE
            return PType("datetime" if name == "DATETIME2" else "time", precision=p), None
        if name == "FLOAT" and (getattr(t, "precision", None) or 53) <= 24:
            return PType("float32"), None
        return super().portable_type(t)

    def adapt_type(self, p: PType) -> tuple[PType, str | None]:
        k = p.kind
        if k == "decimal":
            if p.precision is None:
                return PType(
                    "decimal", precision=38, scale=10
                ), "NUMERIC without precision stored as DECIMAL(38,10)"
            if p.precision > 38:
                scale = min(p.scale or 0, 38)
                return PType(
                    "decimal", precision=38, scale=scale
                ), f"DECIMAL({p.precision},{p.scale or 0}) narrowed to DECIMAL(38,{scale})"
        if k in ("time", "datetime", "timestamptz") and (p.precision or 0) > 7:
            return replace(p, precision=7), FRACTION_7.format(p.precision)
        if k in ("char", "varchar") and (p.length or 0) > 4000:
            return PType("text"), f"{k.upper()}({p.length}) stored as NVARCHAR(max)"
        if k in ("binary", "varbinary") and (p.length or 0) > 8000:
            return PType("blob"), f"{k.upper()}({p.length}) stored as VARBINARY(max)"
        if k == "enum":
            return p, ENUM_NOTE
        return p, None

    def target_schema(
        self, source: TableSchema, source_caps: Capabilities, name: str | None = None
    ) -> TableSchema:
        """As the base; text from another engine counts characters, NVARCHAR counts UTF-16
        units: VARCHAR(n) is created as NVARCHAR(:func:`wide_length`) and CHAR(n) stays
        NCHAR(n) (padding to 2n would change its values) with :data:`NCHAR_NOTE`. From
        SQL Server, n is kept (the source column held n units)."""
        out = super().target_schema(source, source_caps, name)
        if source_caps.engine == self.capabilities.engine:
            return out
        for col in out.columns:
            t = col.type
            if t.kind == "varchar" and t.length is not None:
                wide = wide_length(t.length)
                col.type = replace(t, length=wide)
                if wide is not None and wide < 2 * t.length:
                    col.notes.append(
                        f"NVARCHAR({wide}) counts UTF-16 units: {t.length} characters fit"
                        f" with at most {wide - t.length} of them outside the BMP"
                    )
            elif t.kind == "char":
                col.notes.append(NCHAR_NOTE)
        return out

    def native_type(self, p: PType) -> Any:
        k = p.kind
        if (k, p.unsigned) in _INT_TYPES:
            return _INT_TYPES[(k, p.unsigned)]()
        if k == "int64":  # unsigned
            return mssql.DECIMAL(20, 0)
        if k == "boolean":
            return mssql.BIT()
        if k == "decimal":
            return mssql.DECIMAL(p.precision or 38, (p.scale or 0) if p.precision else 10)
        if k == "float32":
            return mssql.REAL()
        if k == "float64":
            return mssql.FLOAT(53)
        if k == "char":
            return mssql.NCHAR(p.length or 1)
        if k == "varchar":
            return mssql.NVARCHAR(p.length)
        if k in ("text", "json"):
            return mssql.NVARCHAR(None)
        if k == "enum":
            return mssql.NVARCHAR(enum_length(p))
        if k == "uuid":
            return mssql.UNIQUEIDENTIFIER()
        if k == "binary":
            return mssql.BINARY(p.length or 1)
        if k == "varbinary":
            return mssql.VARBINARY(p.length)
        if k == "blob":
            return mssql.VARBINARY(None)
        if k == "date":
            return mssql.DATE()
        if k == "time":
            return mssql.TIME(precision=_digits(p))
        if k == "datetime":
            return mssql.DATETIME2(precision=_digits(p))
        if k == "timestamptz":
            return mssql.DATETIMEOFFSET(precision=_digits(p))
        raise ConnectorError(f"{self.name}: no SQL Server type for {p}")

    def column_extras(self, col: Column) -> list[Any]:
        return [sa.Identity()] if col.autoincrement else []

    def sa_schema(self, schema: TableSchema, metadata: sa.MetaData, with_fks: bool = False) -> Any:
        """As the base; text columns without a collation of their own (from another
        engine) compare exactly: :data:`BINARY_COLLATION`, like MySQL's utf8mb4_bin."""
        table = super().sa_schema(schema, metadata, with_fks)
        for col in schema.columns:
            t = table.c[col.name].type
            if isinstance(t, (mssql.NVARCHAR, mssql.NCHAR)) and not getattr(t, "collation", None):
                t.collation = col.collation or BINARY_COLLATION
        return table

    def native_type_for(self, col: Column) -> Any:
        t = self.native_type(col.type)
        if col.collation and isinstance(t, (mssql.NVARCHAR, mssql.NCHAR)):
            t.collation = col.collation
        return t

    def render_default(self, col: Column) -> Any:
        """T-SQL defaults: the current time as UTC (every other engine's sessions run in
        UTC) and text literals as N'...' (Unicode)."""
        d = col.default
        if d is not None and d.kind == "current_timestamp":
            if col.type.kind == "timestamptz":
                return sa.text("SYSDATETIMEOFFSET()")
            return sa.text("SYSUTCDATETIME()")
        if d is not None and isinstance(d.value, str) and col.type.kind in _TEXTUAL:
            return sa.text("N'" + d.value.replace("'", "''") + "'")
        if d is not None and col.type.kind == "boolean" and isinstance(d.value, Decimal):
            return sa.text("0" if d.value == 0 else "1")
        return super().render_default(col)

    def index_ddl(self, schema: TableSchema, ix: Index) -> str:
        """A unique index on nullable columns is filtered to the rows without NULLs: SQL
        Server would otherwise allow one NULL only, where the other engines allow many."""
        wide = [c for c in ix.columns if _is_max(self.adapt_type(schema.column(c).type)[0])]
        if wide:  # (max) columns cannot be index keys (MySQL indexes a TEXT's prefix)
            keys = [c for c in ix.columns if c not in wide]
            if ix.unique or not keys:
                raise ConnectorError(
                    f"{self.name}: index {ix.name} on {schema.name}: SQL Server cannot index"
                    f" {', '.join(wide)} (stored as NVARCHAR(max)/VARBINARY(max)); drop the"
                    " index from the plan's tables or index a shorter column"
                )
            return (
                f"{super().index_ddl(schema, replace(ix, columns=tuple(keys)))}"
                f" INCLUDE ({', '.join(self.q(c) for c in wide)})"
            )
        sql = super().index_ddl(schema, ix)
        nullable = [c for c in ix.columns if schema.column(c).nullable]
        if ix.unique and nullable:
            sql += " WHERE " + " AND ".join(f"{self.q(c)} IS NOT NULL" for c in nullable)
        return sql

    def fk_ddl(self, schema: TableSchema, fk: ForeignKey) -> str:
        """As the base; T-SQL has no RESTRICT (its NO ACTION is the same check)."""

        def action(a: str | None) -> str | None:
            return None if a is None or a.upper() in ("RESTRICT", "NO ACTION") else a

        return super().fk_ddl(
            schema, replace(fk, on_delete=action(fk.on_delete), on_update=action(fk.on_update))
        )

    # -- reading -------------------------------------------------------------------------
    def adapt_param(self, value: Any) -> Any:
        """Key and watermark values as SQL Server compares them exactly: date-times and
        times as text with all seven fractional digits (pyodbc would bind a datetime at
        the driver's DATETIME precision and a time without its fraction; text converts
        to the column's own type, so the comparison stays index-friendly), UUIDs as
        text, integers beyond BIGINT as decimals."""
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = with_nanos(value.astimezone(dt.UTC), nanos_of(value))
            return datetime_text(value)
        if isinstance(value, (dt.time, dt.timedelta)):
            try:
                return time_text(value)
            except ConnectorError as exc:
                raise ConnectorError(f"{self.name}: {exc}") from None
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            return Decimal(value)
        return value

    def count(
        self, table: str, key: tuple[str, ...] = (), lo: Key | None = None, hi: Key | None = None
    ) -> int:
        """COUNT_BIG: COUNT is an INT and fails beyond 2**31 - 1 rows."""
        t = self.sa_table(table, key)
        stmt = sa.select(_COUNT).select_from(t).where(*self._range(t, key, lo, hi))
        (n,) = self._one_row(stmt, f"counting rows of {table}")
        return int(n)

    def count_null(self, table: str, columns: tuple[str, ...]) -> int:
        t = self.sa_table(table, columns)
        stmt = sa.select(_COUNT).select_from(t).where(sa.or_(*[t.c[c].is_(None) for c in columns]))
        (n,) = self._one_row(stmt, f"counting NULL keys of {table}")
        return int(n)

    def read_key_ranges(
        self, table: str, key: tuple[str, ...], ranges: list[tuple[Key | None, Key | None]]
    ) -> list[Key]:
        """As the base, with as many ranges per statement as 2000 parameters allow."""
        k = len(key)
        per_range = k * (k + 1) + k  # the parameters of one (lo, hi] condition, at most
        step = max(1, min(100, MAX_PARAMS // per_range))
        t = self.sa_table(table, key)
        out: list[Key] = []
        for i in range(0, len(ranges), step):
            part = ranges[i : i + step]
            cond = sa.or_(*[sa.and_(sa.true(), *self._range(t, key, lo, hi)) for lo, hi in part])
            stmt = sa.select(*[t.c[c] for c in key]).where(cond)
            for batch in self._stream(stmt, 5000, f"reading keys of {table}"):
                out.extend(tuple(r) for r in batch)
        return out

    def read_rows(self, schema: TableSchema, key: tuple[str, ...], keys: list[Key]) -> list[Row]:
        """As the base, with at most 2000 parameters per statement."""
        t = self.sa_table(schema.name, schema.column_names)
        step = 500 if len(key) == 1 else max(1, min(100, MAX_PARAMS // len(key)))
        out: list[Row] = []
        for i in range(0, len(keys), step):
            part = keys[i : i + step]
            if len(key) == 1:
                values = [self.key_param(schema.name, key[0], self.adapt_param(k[0])) for k in part]
                where = t.c[key[0]].in_(values)
            else:
                where = sa.or_(
                    *[
                        sa.and_(
                            *[
                                t.c[c] == v
                                for c, v in zip(
                                    key, self._key_values(schema.name, key, k), strict=True
                                )
                            ]
                        )
                        for k in part
                    ]
                )
            stmt = sa.select(*self.select_list(t, schema)).where(where)
            out.extend(self._portable(schema, stmt, f"reading rows of {schema.name}"))
        return out

    def read_buckets(
        self, schema: TableSchema, key_specs: list[ColumnSpec], parts: int, buckets: list[int]
    ) -> list[Row]:
        """As the base; the key is hashed as :meth:`checksum_buckets` hashes it (a key
        column a checksum reads converted, e.g. a DATETIME, through a derived table that
        has it converted beside the columns as reads give them)."""
        t = self.sa_table(schema.name, schema.column_names)
        bucket = self._bucket(key_specs, parts)
        keys = [s.name for s in key_specs]
        converted = {k: self._read_expr(schema.name, k, True) for k in keys}
        if not any(converted.values()):
            stmt = sa.select(*self.select_list(t, schema)).where(bucket.in_(buckets))
            return self._portable(schema, stmt, f"reading rows of {schema.name}")
        read = []
        for i, n in enumerate(schema.column_names):
            expr = self._read_expr(schema.name, n, False)
            read.append((sa.literal_column(expr) if expr else t.c[n]).label(f"migrate_r{i}"))
        hashed = [
            sa.literal_column(converted[k]).label(k) if converted[k] else t.c[k].label(k)
            for k in keys
        ]
        sub = sa.select(*read, *hashed).select_from(t).subquery(schema.name)
        stmt = sa.select(
            *[sub.c[f"migrate_r{i}"].label(n) for i, n in enumerate(schema.column_names)]
        ).where(bucket.in_(buckets))
        return self._portable(schema, stmt, f"reading rows of {schema.name}")

    def row_converter(self, schema: TableSchema) -> Callable[[Row], Row] | None:
        """Driver values as portable values: uniqueidentifier in lower case,
        DATETIMEOFFSET in UTC, and (older TDS versions of FreeTDS send them as text)
        times and date-times parsed; a rowversion read raw becomes its number."""
        fixes: list[tuple[int, Callable[[Any], Any]]] = []
        for i, col in enumerate(schema.columns):
            k = col.type.kind
            if k == "uuid":
                fixes.append((i, lambda v: str(v).lower()))
            elif k == "timestamptz":
                fixes.append((i, _to_utc))
            elif k == "time":
                fixes.append((i, _to_time))
            elif k == "datetime":
                fixes.append((i, _to_datetime))
            elif k == "date":
                fixes.append((i, lambda v: dt.date.fromisoformat(v) if isinstance(v, str) else v))
            elif ROWVERSION_NOTE in col.notes:
                fixes.append((i, lambda v: int.from_bytes(v, "big") if isinstance(v, bytes) else v))
        return column_fixer(fixes)

    # -- catch-up reads ------------------------------------------------------------------
    def cursor_value(self, schema: TableSchema, column: str, value: Any) -> Any:
        """As the base, keeping a seventh fractional digit."""
        return with_nanos(super().cursor_value(schema, column, value), nanos_of(value))

    def max_value(self, schema: TableSchema, column: str) -> Any:
        """As the base; for a rowversion, ``MIN_ACTIVE_ROWVERSION() - 1`` (None for an
        empty table): every row below it is committed, so no row a transaction still
        open writes can fall below the next pass's watermark."""
        if not self._is_rowversion(schema.name, column):
            return super().max_value(schema, column)
        sql = (
            f"SELECT CASE WHEN MAX({self.q(column)}) IS NULL THEN NULL ELSE"
            f" CAST(MIN_ACTIVE_ROWVERSION() AS BIGINT) - 1 END FROM {self.q(schema.name)}"
        )
        (value,) = self._one_row(
            sa.text(sql), f"reading the highest {column} of {schema.name}"
        ) or (None,)
        return None if value is None else int(value)

    def read_changed(
        self, schema: TableSchema, cursor: str, lo: Any, batch_rows: int, text: bool = False
    ) -> Iterator[list[Row]]:
        """As the base; a rowversion cursor compares as the column's own BINARY(8), so
        that its index is used."""
        t = self.sa_table(schema.name, schema.column_names)
        c = t.c[cursor]
        if lo is None:
            where = c.is_not(None)
        elif self._is_rowversion(schema.name, cursor):
            where = c > sa.cast(sa.literal(max(0, int(lo))), mssql.BINARY(8))
        else:
            where = c > self.key_param(schema.name, cursor, self.adapt_param(lo))
        stmt = sa.select(*self.select_list(t, schema)).where(where)
        yield from self._stream(stmt, batch_rows, f"reading changes of {schema.name}")

    def key_summary(
        self, table: str, key: tuple[str, ...], lo: Key | None, hi: Key | None, with_sum: bool
    ) -> tuple[int, int | None]:
        """As the base: each key modulo the prime as a BIGINT (a SUM of INT is an INT),
        and COUNT_BIG."""
        t = self.sa_table(table, key)
        cols: list[Any] = [_COUNT]
        if with_sum:
            cols.append(sa.literal_column(f"COALESCE(SUM({self._key_mod(key[0])}), 0)"))
        stmt = sa.select(*cols).select_from(t).where(*self._range(t, key, lo, hi))
        row = self._one_row(stmt, f"summarising keys of {table}")
        return int(row[0]), (int(row[1]) if with_sum else None)

    def _key_mod(self, column: str) -> str:
        return f"CAST({self.q(column)} % {KEY_SUM_MODULUS} AS BIGINT)"

    def _group(self, column: str, origin: int, width: int) -> str:
        """``(column - origin) // width`` written with literals: SQL Server matches a
        GROUP BY expression with the select list's only when no parameter is in it."""
        return (
            f"FLOOR(({self.q(column)} - CAST({int(origin)} AS BIGINT))"
            f" / CAST({int(width)} AS BIGINT))"
        )

    def int_div(self, expr: Any, width: int) -> Any:
        """``FLOOR(expr / width)``: integer division of integers (FLOOR keeps a
        DECIMAL(20, 0) key whole), the width written as a literal (see :meth:`_group`)."""
        return sa.func.floor(
            sa.Grouping(expr).op("/")(sa.literal_column(f"CAST({int(width)} AS BIGINT)"))
        )

    def key_buckets(
        self, table: str, column: str, origin: int, width: int
    ) -> dict[int, tuple[int, int]]:
        group = self._group(column, origin, width)
        sql = (
            f"SELECT {group}, COUNT_BIG(*), SUM({self._key_mod(column)}) FROM"
            f" {self.q(table)} GROUP BY {group}"
        )
        with self.errors(f"summarising keys of {table}"), self.raw() as conn:
            cur = conn.cursor()
            cur.execute(sql)
            out = {int(b): (int(n), int(total)) for b, n, total in cur.fetchall()}
            cur.close()
            conn.rollback()
        return out

    # -- validation reads ----------------------------------------------------------------
    def _require_utf8(self, what: str) -> None:
        version = self.server_version()
        if version and version < UTF8_FROM:
            raise ConnectorError(
                f"{self.name}: {what} need SQL Server 2019 or later (the row text is hashed as"
                f" UTF-8 through a _UTF8 collation); this server is"
                f" {'.'.join(map(str, version))}; between two SQL Server endpoints with the"
                " same column types, validate --hash auto (the default) compares without it"
            )

    def checksum_sql(self, specs: list[ColumnSpec], plain: list[ColumnSpec] | None = None) -> str:
        self._require_utf8("checksums against other engines")
        return super().checksum_sql(specs, plain)

    def fast_hash(self) -> str | None:
        """Between two SQL Server endpoints: the canonical row text with all seven
        fractional digits of date-times and times, hashed as the UTF-16 SQL Server holds
        it (no UTF-8 collation needed: any supported version)."""
        return "md5-utf16"

    def fast_checksum_sql(self, schema: TableSchema, specs: list[ColumnSpec], kind: str) -> str:
        r = self.render()
        assert isinstance(r, MSSQLRender)
        r.full_fraction = True
        return f"COUNT_BIG(*), {r.md5_sum(f'CAST({r.row(specs)} AS NVARCHAR(MAX))')}"

    def checksum(
        self, table: str, key: tuple[str, ...], lo: Key | None, hi: Key | None, select: str
    ) -> tuple[int, ...]:
        t, where = self._checksum_source(table, key, lo, hi)
        stmt = sa.select(sa.literal_column(select)).select_from(t).where(*where)
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
        t, where = self._checksum_source(table, (column,), lo, hi)
        group = sa.literal_column(self._group(column, origin, width))
        stmt = (
            sa.select(group, sa.literal_column(select)).select_from(t).where(*where).group_by(group)
        )
        return self._grouped_checksums(stmt, f"computing checksums of {table}")

    def _bucket(self, key_specs: list[ColumnSpec], parts: int) -> Any:
        """The key's canonical text hashed: MD5's first four bytes as an unsigned number,
        modulo ``parts`` (what :class:`validators.checksum` computes in Python)."""
        r = self.render()
        assert isinstance(r, MSSQLRender)
        text = r.row(key_specs)
        if self.server_version() >= UTF8_FROM:
            text = r.utf8(text)
        else:  # same-engine comparisons only (checksum_sql refuses the others)
            text = f"CAST({text} AS NVARCHAR(MAX))"
        return sa.literal_column(
            f"CONVERT(BIGINT, SUBSTRING(HASHBYTES('MD5', {text}), 1, 4)) % {int(parts)}"
        )

    def checksum_buckets(
        self, table: str, key_specs: list[ColumnSpec], parts: int, select: str
    ) -> dict[int, tuple[int, ...]]:
        """As the base, grouped by the bucket expression itself (T-SQL has no GROUP BY 1)."""
        t, _ = self._checksum_source(table, tuple(s.name for s in key_specs))
        b = self._bucket(key_specs, parts)
        stmt = sa.select(b, sa.literal_column(select)).select_from(t).group_by(b)
        return self._grouped_checksums(stmt, f"computing checksums of {table}")

    def row_texts(self, table: str, key: tuple[str, ...], specs: list[ColumnSpec]) -> list[Row]:
        t, _ = self._checksum_source(table, key)
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

    # -- writing -------------------------------------------------------------------------
    def input_sizes(self, schema: TableSchema) -> list[tuple[int, int, int]]:
        """``cursor.setinputsizes`` per column of a table created from ``schema``:
        ``(ODBC SQL type, column size, decimal digits)``; see :func:`input_size`."""
        return [input_size(self.adapt_type(c.type)[0]) for c in schema.columns]

    def value_adapters(self, schema: TableSchema) -> list[Callable[[Any], Any]]:
        """Portable values as the bound types of :meth:`input_sizes` take them (a value
        that does not fit fails with the table and column named)."""
        out = []
        for c in schema.columns:
            adapt = value_adapter(self.adapt_type(c.type)[0])
            if c.type.kind == "time":
                adapt = _naming(adapt, f"{self.name}: {schema.name}.{c.name}")
            out.append(adapt)
        return out

    def rows_per_call(self, sizes: list[tuple[int, int, int]]) -> int:
        """Rows per ``executemany``: :attr:`EXECUTEMANY_BYTES` over the bound row's
        length (2 bytes a character, 8 for the length indicator; a streamed ``(max)``
        value counts 8), at least :attr:`EXECUTEMANY_MIN_ROWS`."""
        row = sum(2 * size + 8 for _, size, _ in sizes) or 1
        return max(self.EXECUTEMANY_MIN_ROWS, self.EXECUTEMANY_BYTES // row)

    def _has_identity(self, schema: TableSchema) -> bool:
        if any(c.autoincrement for c in schema.columns):
            return True
        natives = self._natives.get(schema.name) or {}
        return any(n.identity for n in natives.values())

    @contextlib.contextmanager
    def _identity_insert(self, cur: Any, schema: TableSchema) -> Iterator[None]:
        """Explicit values into an IDENTITY column: ``SET IDENTITY_INSERT`` around the
        block (the setting outlives a rollback, so it is always switched off again)."""
        if not self._has_identity(schema):
            yield
            return
        t = self.q(schema.name)
        cur.execute(f"SET IDENTITY_INSERT {t} ON")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                cur.execute(f"SET IDENTITY_INSERT {t} OFF")

    def write_spool(self, conn: Any, schema: TableSchema, spool: Any, table: str) -> int:
        """INSERT with ``fast_executemany`` and explicit input sizes, :meth:`rows_per_call`
        rows per call; IDENTITY_INSERT on for the table itself."""
        cols = ", ".join(self.q(c) for c in schema.column_names)
        marks = ", ".join(["?"] * len(schema.columns))
        sql = f"INSERT INTO {self.q(table)} ({cols}) VALUES ({marks})"
        sizes = self.input_sizes(schema)
        step = self.rows_per_call(sizes)
        to_db = self.value_adapters(schema)
        target = replace(schema, name=table)
        written = 0
        cur = conn.cursor()
        cur.fast_executemany = self.fast_executemany
        identity = (
            self._identity_insert(cur, target) if table != self.STAGE else contextlib.nullcontext()
        )
        try:
            with identity:
                for batch in spool.batches():
                    rows = [
                        tuple(None if v is None else f(v) for f, v in zip(to_db, r, strict=True))
                        for r in batch
                    ]
                    for i in range(0, len(rows), step):
                        part = rows[i : i + step]
                        cur.setinputsizes(sizes)
                        cur.executemany(sql, part)
                        written += len(part)
        finally:
            cur.close()
        return written

    def _delete_in(
        self, table: str, column: str, keys: Iterable[Key], backup: RowBackup | None = None
    ) -> int:
        """``DELETE ... WHERE column IN (...)``, 500 keys a statement, each a
        :meth:`key_param`; with ``backup`` the rows are kept first (as the base)."""
        t = self.sa_table(table, [column])
        deleted = 0
        with self.errors(f"deleting rows of {table}"), self.raw() as conn:
            cur = conn.cursor()
            batch: list[Any] = []
            for k in [*keys, None]:
                if k is not None:
                    batch.append(self.adapt_param(k[0]))
                if batch and (len(batch) >= 500 or k is None):
                    values = [self.key_param(table, column, v) for v in batch]
                    where = _typed(t.c[column], batch).in_(values)
                    sql, params = self.compile(sa.delete(t).where(where))
                    if backup is not None:
                        cur.execute(self.kept_before_delete(sql, table, backup), params)
                    cur.execute(sql, params)
                    deleted += max(cur.rowcount, 0)
                    batch = []
            conn.commit()
        return deleted

    def delete_keys(
        self,
        table: str,
        key: tuple[str, ...],
        keys: Iterable[Key],
        backup: RowBackup | None = None,
    ) -> int:
        """One key column: IN lists of 500. Several: ``EXISTS`` against a ``VALUES`` list
        of as many keys as 2000 parameters allow (at most 500); CHAR/VARCHAR key values
        cast to the column's type (:meth:`key_marker`). With ``backup`` each statement's
        rows are kept first (as the base)."""
        if len(key) == 1:
            return self._delete_in(table, key[0], keys, backup)
        step = max(1, min(500, MAX_PARAMS // len(key)))
        t, cols, a = self.q(table), [self.q(k) for k in key], self.alias("k", table)
        same = " AND ".join(f"{a}.{c} = {t}.{c}" for c in cols)
        row = "(" + ", ".join(self.key_marker(table, k) for k in key) + ")"
        deleted = 0
        with self.errors(f"deleting rows of {table}"), self.raw() as conn:
            cur = conn.cursor()
            batch: list[Key] = []
            for k in [*keys, None]:
                if k is not None:
                    batch.append(k)
                if batch and (len(batch) >= step or k is None):
                    rows = ", ".join([row] * len(batch))
                    sql = (
                        f"DELETE FROM {t} WHERE EXISTS (SELECT 1 FROM (VALUES {rows}) AS {a}"
                        f" ({', '.join(cols)}) WHERE {same})"
                    )
                    params = tuple(self.adapt_param(v) for b in batch for v in b)
                    if backup is not None:
                        cur.execute(self.kept_before_delete(sql, table, backup), params)
                    cur.execute(sql, params)
                    deleted += max(cur.rowcount, 0)
                    batch = []
            conn.commit()
        return deleted

    # -- upsert by key -------------------------------------------------------------------
    def stage_ddl(self, schema: TableSchema) -> list[str]:
        """``#migrate_stage`` shaped like the table: ``SELECT TOP 0 ... INTO`` copies the
        columns' types and collations, and the ``UNION ALL`` leaves IDENTITY out."""
        s, t = self.q(self.STAGE), self.q(schema.name)
        cols = ", ".join(self.q(c) for c in schema.column_names)
        return [
            f"DROP TABLE IF EXISTS {s}",
            f"SELECT TOP 0 {cols} INTO {s} FROM {t} UNION ALL SELECT TOP 0 {cols} FROM {t}",
        ]

    def unstage_ddl(self) -> list[str]:
        return [f"DROP TABLE {self.q(self.STAGE)}"]

    def _compared(self, alias: str, col: Column) -> list[str]:
        """What of a column two rows must share to be the same: text by its UTF-16 bytes
        and binary by its bytes, each with its length (a varbinary comparison ignores
        trailing zero bytes); other kinds by value."""
        c = f"{alias}.{self.q(col.name)}"
        if col.type.kind in _TEXTUAL:
            return [f"DATALENGTH({c})", f"CAST({c} AS VARBINARY(MAX))"]
        if col.type.kind in BINARY_KINDS:
            return [f"DATALENGTH({c})", c]
        return [c]

    def _differs(self, schema: TableSchema, columns: list[str]) -> str:
        """SQL true when the staged row ``s`` differs from the table's row ``t`` in any
        of ``columns``, NULLs compared as equal (INTERSECT treats two NULLs as the same)."""
        cols = [schema.column(c) for c in columns]
        a = ", ".join(x for c in cols for x in self._compared("s", c))
        b = ", ".join(x for c in cols for x in self._compared("t", c))
        return f"NOT EXISTS (SELECT {a} INTERSECT SELECT {b})"

    def same_value(self, a: str, b: str, col: Column) -> str:
        return f"EXISTS (SELECT {a} INTERSECT SELECT {b})"

    def differs_sql(self, schema: TableSchema, key: tuple[str, ...]) -> str | None:
        rest = [c for c in schema.column_names if c not in key]
        return self._differs(schema, rest) if rest else None

    def changed_sql(self, schema: TableSchema, key: tuple[str, ...]) -> str:
        s, t = self.q(self.STAGE), self.q(schema.name)
        on = " AND ".join(f"s.{self.q(k)} = t.{self.q(k)}" for k in key)
        rest = [c for c in schema.column_names if c not in key]
        differs = f" OR {self._differs(schema, rest)}" if rest else ""
        return (
            f"SELECT COUNT_BIG(*) FROM {s} AS s LEFT JOIN {t} AS t ON {on}"
            f" WHERE t.{self.q(key[0])} IS NULL{differs}"
        )

    def upsert_from_stage(self, schema: TableSchema, key: tuple[str, ...]) -> str:
        """``MERGE ... WITH (HOLDLOCK)``: rows that differ are updated (an IDENTITY column
        never is), new ones inserted; the statement's row count is the rows changed."""
        t, s = self.q(schema.name), self.q(self.STAGE)
        on = " AND ".join(f"t.{self.q(k)} = s.{self.q(k)}" for k in key)
        natives = self._natives.get(schema.name) or {}
        rest = [
            c.name
            for c in schema.columns
            if c.name not in key
            and not c.autoincrement
            and not (natives.get(c.name) and natives[c.name].identity)
        ]
        cols = ", ".join(self.q(c) for c in schema.column_names)
        values = ", ".join(f"s.{self.q(c)}" for c in schema.column_names)
        sql = f"MERGE INTO {t} WITH (HOLDLOCK) AS t USING {s} AS s ON {on}"
        if rest:
            sets = ", ".join(f"t.{self.q(c)} = s.{self.q(c)}" for c in rest)
            sql += f" WHEN MATCHED AND {self._differs(schema, rest)} THEN UPDATE SET {sets}"
        return sql + f" WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values});"

    def merge_spool(
        self,
        schema: TableSchema,
        key: tuple[str, ...],
        spool: Any,
        backup: RowBackup | None = None,
    ) -> tuple[int, int]:
        """Upsert a closed spool by ``key`` in one transaction; returns (applied, changed).

        Normally one MERGE, whose row count is ``changed``. When a unique index other
        than the key conflicts, the base's fallback runs (:meth:`run_upsert`: back to the
        savepoint, replace the staged rows by key) and ``changed`` is counted first.
        With ``backup``, the changes are counted first, and when there are any the rows
        about to change are kept (:meth:`backup_changes_sql`) before the MERGE.
        """
        if not key:
            raise ConnectorError(f"{self.name}: {schema.name} has no key to upsert by")
        stage = replace(schema, name=self.STAGE)
        with self.errors(f"merging rows into {schema.name}"), self.raw() as conn:
            cur = conn.cursor()
            for sql in self.stage_ddl(schema):
                cur.execute(sql)
            applied = self.write_spool(conn, stage, spool, self.STAGE)
            if backup is not None:
                cur.execute(self.changed_sql(schema, key))
                if cur.fetchone()[0]:
                    for sql in self.backup_changes_sql(schema, key, backup):
                        cur.execute(sql)
            with self._identity_insert(cur, schema):
                cur.execute(self.SAVEPOINT.format("migrate_merge"))
                try:
                    cur.execute(self.upsert_from_stage(schema, key))
                    changed = max(cur.rowcount, 0)
                except Exception as exc:
                    if not self.is_unique_violation(exc):
                        raise
                    cur.execute(self.ROLLBACK_TO.format("migrate_merge"))
                    cur.execute(self.changed_sql(schema, key))
                    (changed,) = cur.fetchone()
                    self.run_upsert(cur, schema, key)
            for sql in self.unstage_ddl():
                cur.execute(sql)
            conn.commit()
            cur.close()
        return applied, int(changed)

    # -- undo (see the base) -------------------------------------------------------------
    def delete_kept_keys_sql(self, table: str, bak: str, uid: int, key: list[str]) -> str:
        """``EXISTS`` (T-SQL has no row-value ``IN``)."""
        t, b, a = self.q(table), self.q(bak), self.alias("b", table)
        same = " AND ".join(f"{a}.{self.q(k)} = {t}.{self.q(k)}" for k in key)
        return (
            f"DELETE FROM {t} WHERE EXISTS (SELECT 1 FROM {b} AS {a} WHERE"
            f" {a}.{UNDO_COLUMN} = {uid} AND {same})"
        )

    def identity_insert(self, table: str, schema: TableSchema | None, insert: str) -> list[str]:
        """``SET IDENTITY_INSERT ... ON`` / ``OFF`` around ``insert`` when the table has
        an IDENTITY column (``schema``'s, else as ``sys.columns`` has it now)."""
        if schema is not None:
            identity = any(c.autoincrement for c in schema.columns)
        else:
            identity = any(n.identity for n in self.native_columns(table).values())
        if not identity:
            return [insert]
        t = self.q(table)
        return [f"SET IDENTITY_INSERT {t} ON", insert, f"SET IDENTITY_INSERT {t} OFF"]


def _naming(adapt: Callable[[Any], Any], where: str) -> Callable[[Any], Any]:
    """``adapt`` with its :class:`ConnectorError` prefixed by ``where``."""

    def named(v: Any) -> Any:
        try:
            return adapt(v)
        except ConnectorError as exc:
            raise ConnectorError(f"{where}: {exc}") from None

    return named


_COUNT = sa.literal_column("COUNT_BIG(*)")
EDITION_SQL = "SELECT CAST(SERVERPROPERTY('EngineEdition') AS INT)"
_TEXTUAL = frozenset({"char", "varchar", "text", "enum", "json"})


def _narrow_type(native: NativeColumn) -> Any:
    """The type a key parameter is cast to for a CHAR/VARCHAR column: VARCHAR(8000) (or
    max), the column's own family, so the comparison uses its index, and wide enough that
    a longer value is never cut to the column's length and matched by its prefix."""
    return mssql.VARCHAR(None if native.length < 0 else 8000)


def _is_max(p: PType) -> bool:
    """Whether a column of (adapted) PType ``p`` is created as an ``(max)`` type."""
    return (
        p.kind in ("text", "json", "blob")
        or (p.kind == "varchar" and p.length is None)
        or (p.kind == "varbinary" and p.length is None)
    )


def _digits(p: PType) -> int:
    return 7 if p.precision is None else min(p.precision, 7)


def wide_length(n: int) -> int | None:
    """The NVARCHAR length for ``n`` characters of another engine: ``2n`` UTF-16 units (a
    character outside the BMP takes two), at most 4000; None (``max``) beyond 4000."""
    return min(2 * n, NVARCHAR_MAX_N) if n <= NVARCHAR_MAX_N else None


def enum_length(p: PType) -> int | None:
    """The NVARCHAR length of an ENUM: :func:`wide_length` of its longest value."""
    return wide_length(max((len(v) for v in p.values), default=1) or 1)


def input_size(p: PType) -> tuple[int, int, int]:
    """The ``setinputsizes`` entry for a column created from the (adapted) PType ``p``.

    Text is bound as wide characters of the column's length (NVARCHAR counts UTF-16
    units); ``(max)`` types with size 0. DATETIME2(p) up to 6 digits is a timestamp of
    ``p`` digits (column size ``20 + p``); DATETIME2(7), TIME, DATETIMEOFFSET and
    UNIQUEIDENTIFIER travel as text, which SQL Server converts exactly with any driver
    (pyodbc binds a datetime at microseconds, a time without its fraction and has no
    binding for an offset).
    """
    k = p.kind
    if k in ("int8", "int16", "int32", "int64"):
        if k == "int64" and p.unsigned:
            return (SQL_DECIMAL, 20, 0)
        name = type(_INT_TYPES[(k, p.unsigned)]()).__name__
        return _INT_SIZES[name]
    if k == "boolean":
        return (SQL_BIT, 1, 0)
    if k == "decimal":
        return (SQL_DECIMAL, p.precision or 38, (p.scale or 0) if p.precision else 10)
    if k == "float32":
        return (SQL_REAL, 7, 0)
    if k == "float64":
        return (SQL_DOUBLE, 15, 0)
    if k == "char":
        return (SQL_WCHAR, p.length or 1, 0)
    if k == "varchar":
        return (SQL_WVARCHAR, p.length or 0, 0)
    if k in ("text", "json"):
        return (SQL_WVARCHAR, 0, 0)
    if k == "enum":
        return (SQL_WVARCHAR, enum_length(p) or 0, 0)
    if k == "uuid":
        return (SQL_WVARCHAR, 36, 0)
    if k == "binary":
        return (SQL_BINARY, p.length or 1, 0)
    if k == "varbinary":
        return (SQL_VARBINARY, p.length or 0, 0)
    if k == "blob":
        return (SQL_VARBINARY, 0, 0)
    if k == "date":
        return (SQL_TYPE_DATE, 10, 0)
    if k == "time":
        return (SQL_WVARCHAR, 16, 0)
    if k == "datetime":
        d = _digits(p)
        if d == 7:
            return (SQL_WVARCHAR, 27, 0)
        return (SQL_TYPE_TIMESTAMP, 20 + d if d else 19, d)
    if k == "timestamptz":
        return (SQL_WVARCHAR, 34, 0)
    raise ConnectorError(f"no SQL Server parameter type for {p}")


def value_adapter(p: PType) -> Callable[[Any], Any]:
    """A non-NULL portable value as the parameter :func:`input_size` declares takes it."""
    k = p.kind
    if k == "boolean":
        return bool
    if k in ("int8", "int16", "int32", "int64"):
        return int
    if k == "decimal":
        quantum = Decimal(1).scaleb(-((p.scale or 0) if p.precision else 10))

        def dec(v: Any) -> Decimal:
            d = v if isinstance(v, Decimal) else Decimal(_text(v).strip())
            return d.quantize(quantum, ROUND_HALF_UP, _WIDE)  # SQL Server rounds half up

        return dec
    if k in ("float32", "float64"):
        return float
    if k in ("char", "varchar", "text", "json", "enum", "uuid"):
        return _text
    if k in BINARY_KINDS:
        return lambda v: bytes(v) if not isinstance(v, str) else v.encode("utf-8")
    if k == "date":
        return lambda v: v.date() if isinstance(v, dt.datetime) else v
    if k == "time":
        return time_text
    if k == "datetime":
        digits = _digits(p)

        def stamp(v: Any) -> Any:
            if isinstance(v, dt.datetime):
                if v.tzinfo is not None:
                    v = with_nanos(v.astimezone(dt.UTC).replace(tzinfo=None), nanos_of(v))
                return round_datetime(v, digits)
            if isinstance(v, dt.date):
                return dt.datetime.combine(v, dt.time())
            return _text(v)

        if digits < 7:
            return stamp

        def stamp7(v: Any) -> str:  # bound as text: all seven digits
            if isinstance(v, str):
                try:
                    v = _parse_datetime(v)
                except ValueError:
                    return v  # SQL Server says what is wrong with it
            v = stamp(v)
            return datetime_text(v) if isinstance(v, dt.datetime) else _text(v)

        return stamp7
    if k == "timestamptz":

        def offset(v: Any) -> Any:
            if isinstance(v, dt.datetime):
                aware = v if v.tzinfo else with_nanos(v.replace(tzinfo=dt.UTC), nanos_of(v))
                return datetime_text(aware)
            return _text(v)

        return offset
    return lambda v: v
