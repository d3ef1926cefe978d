"""Change capture for MySQL and MariaDB sources: the binary log, read as a replica reads it.

``mode = "cdc"`` copies a consistent snapshot first and records the binlog position of that
snapshot (:func:`snapshot_position`, or :func:`current_position` read just before it); each
later pass calls :func:`read_changes` from the recorded position, applies the changes of each
batch it yields, and records ``batch.position`` once they are applied. Replaying a change
twice is harmless (upserts and deletes by key), so resuming from an older position is safe.

Values are the portable values of the full copy: exactly what
``MySQLEndpoint.row_converter(schema)`` makes of a ``SELECT`` through PyMySQL (TIME as
``datetime.time`` when it lies within one day, BIT as an integer, ENUM and SET as text,
invalid dates such as ``0000-00-00`` as the text PyMySQL returns for them, ...).
mysql-replication decodes the row images; what it cannot know without
``binlog_row_metadata = FULL`` (column names, signedness, character sets, ENUM and SET
members) is taken from the schema and ``information_schema`` when reading starts, and
DATE, DATETIME and TIME values are decoded here (the library turns invalid dates into None
and misreads negative TIME values with fractional seconds).

The source needs ``log_bin`` with a ``server_id``, ``binlog_format = ROW``,
``binlog_row_image = FULL`` and a user with REPLICATION SLAVE and REPLICATION CLIENT
(MariaDB >= 10.5.2: BINLOG MONITOR); :func:`check_binlog` says what is missing.
``binlog_row_metadata = FULL`` is not needed; where it is on, the column names in the
binlog are checked against the schema. XA transactions are not supported.
Drivers are imported inside the functions that need them.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from connectors.sql.mysql import BIT_NOTE, enum_members
from migrate.errors import ConnectorError, MissingDriverError, TransientError
from migrate.plan import redact
from migrate.schema import TableSchema

if TYPE_CHECKING:
    import sqlalchemy

# Server error codes this module tells apart.
_ER_PARSE = 1064
_ER_ACCESS_DENIED = 1045
_ER_NEED_PRIVILEGE = 1227
_ER_MASTER_FATAL_READING_BINLOG = 1236
_TRANSIENT = {1205, 1213, 2003, 2006, 2013, 2055}

_RESTART = "a full copy is needed: migrate run --restart"
_EPOCH = dt.datetime(1970, 1, 1)
_TIMESTAMP_WRAP = dt.timedelta(seconds=1 << 32)
_ONE_DAY = dt.timedelta(days=1)

# MySQL character set -> Python codec, where PyMySQL's own table is missing or wrong.
_CODECS = {
    "utf8mb4": "utf-8",
    "utf8mb3": "utf-8",
    "utf8": "utf-8",
    "latin1": "cp1252",
    "ascii": "ascii",
    "ucs2": "utf-16-be",
    "utf16": "utf-16-be",
    "utf16le": "utf-16-le",
    "utf32": "utf-32-be",
}
_TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext"}
_BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
# The library's private decoders replaced per row event (see _use_own_temporal_readers).
_READERS = ("_RowsEvent__read_date", "_RowsEvent__read_datetime2", "_RowsEvent__read_time2")


def _file_number(name: str) -> int:
    m = re.search(r"\.(\d+)$", name)
    return int(m.group(1)) if m else -1


@dataclass(frozen=True, order=True)
class BinlogPosition:
    """A place in the source's binary log: a file name and a byte offset in that file.

    Positions compare in binlog order: by the file's sequence number (so ``binlog.1000000``
    follows ``binlog.999999``), then by offset. :meth:`encode` gives the text kept in the
    state store and :meth:`decode` reads it back.
    """

    file: str = field(compare=False)
    pos: int = field(compare=False)
    _order: tuple[int, str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_order", (_file_number(self.file), self.file, self.pos))

    def encode(self) -> str:
        """``binlog.000003:1234``."""
        return f"{self.file}:{self.pos}"

    @classmethod
    def decode(cls, text: str) -> BinlogPosition:
        """The position :meth:`encode` wrote; ValueError if ``text`` is not ``FILE:POS``."""
        file, sep, pos = text.rpartition(":")
        if not sep or not file or not (pos.isascii() and pos.isdigit()):
            raise ValueError(f"not a binlog position: {text!r} (expected FILE:POS)")
        return cls(file, int(pos))


@dataclass
class Change:
    """One row change. ``op`` is ``"upsert"`` (``values``: the full row in the schema's
    column order, portable values) or ``"delete"`` (``values``: the key in key order)."""

    table: str
    op: str
    values: tuple[Any, ...]


@dataclass
class ChangeBatch:
    """Whole transactions, in binlog order.

    ``position`` is where the next read starts (just after the last commit of the batch);
    ``event_time`` is the commit time (UTC) of the last transaction read, None if unknown.
    """

    changes: list[Change]
    position: BinlogPosition
    event_time: dt.datetime | None


# -- server checks and positions ---------------------------------------------------------------


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, (bytes, bytearray)) else str(v)


def _driver_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = []
    try:
        import pymysql

        errors.append(pymysql.err.MySQLError)
    except ImportError:
        pass
    try:
        import MySQLdb

        errors.append(MySQLdb.MySQLError)
    except ImportError:
        pass
    return tuple(errors)


def _code(exc: BaseException) -> int | None:
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None


def _message(exc: BaseException, secrets: frozenset[str] = frozenset()) -> str:
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    lines = text.strip().splitlines()
    return redact(lines[0] if lines else type(exc).__name__, secrets)


def _error(exc: BaseException, doing: str, secrets: frozenset[str] = frozenset()) -> ConnectorError:
    code = _code(exc)
    text = _message(exc, secrets)
    if code == _ER_ACCESS_DENIED:
        text = f"access denied: check the user name and password ({text})"
    cls = TransientError if code in _TRANSIENT else ConnectorError
    return cls(f"{doing}: {text}")


def _show_binlog_status(cur: Any) -> Any:
    """The first row of SHOW MASTER STATUS (SHOW BINARY LOG STATUS on MySQL >= 8.4)."""
    try:
        cur.execute("SHOW MASTER STATUS")
    except _driver_errors() as exc:
        if _code(exc) != _ER_PARSE:
            raise
        cur.execute("SHOW BINARY LOG STATUS")
    return cur.fetchone()


def _version(text: str) -> tuple[int, ...]:
    text = text.removeprefix("5.5.5-")  # old MariaDB's replication-compatible prefix
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(g) for g in m.groups()) if m else (0, 0, 0)


def _quote_user(current_user: str) -> str:
    name, _, host = current_user.rpartition("@")
    return "'{}'@'{}'".format(name.replace("'", "''"), host.replace("'", "''"))


def _global_privileges(grant_lines: list[str]) -> set[str]:
    privileges: set[str] = set()
    for line in grant_lines:
        m = re.match(r"GRANT (.+?) ON \*\.\* TO ", line)
        if m:
            privileges.update(p.strip().upper() for p in m.group(1).split(","))
    return privileges


def check_binlog(conn: Any, where: str) -> None:
    """Check that change capture can read the source's binary log.

    ``conn``: an open DBAPI connection (PyMySQL or mysqlclient) to the source; ``where``
    names it in the message (``erp (MariaDB 10.11 at 127.0.0.1:33306)``). Raises
    :class:`ConnectorError` with one line that says what is wrong and what to change, for
    every problem found: the binary log is off (or ``server_id`` is 0), ``binlog_format`` is
    not ROW, ``binlog_row_image`` is not FULL, MySQL's ``binlog_row_value_options`` is
    PARTIAL_JSON, or the user (as the server reports ``CURRENT_USER()``) lacks REPLICATION
    SLAVE or REPLICATION CLIENT (MariaDB >= 10.5.2: BINLOG MONITOR); the message then holds
    the GRANT statement to run. Never includes a password.
    """
    problems: list[str] = []
    try:
        cur = conn.cursor()
        try:
            cur.execute(
                "SELECT VERSION(), CURRENT_USER(), @@GLOBAL.log_bin, @@GLOBAL.server_id,"
                " @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image"
            )
            version, user, log_bin, server_id, fmt, image = (
                _text(v) if isinstance(v, (bytes, bytearray)) else v for v in cur.fetchone()
            )
            cur.execute("SHOW GLOBAL VARIABLES LIKE 'binlog_row_value_options'")
            row = cur.fetchone()
            value_options = _text(row[1]) if row else ""
            try:
                _show_binlog_status(cur)
                can_monitor = True
            except _driver_errors() as exc:
                if _code(exc) not in (_ER_NEED_PRIVILEGE, _ER_ACCESS_DENIED):
                    raise
                can_monitor = False
            try:
                cur.execute("SHOW GRANTS")
                grants: list[str] | None = [_text(r[0]) for r in cur.fetchall()]
            except _driver_errors():
                grants = None  # cannot tell: the binlog reader will say if it is refused
        finally:
            cur.close()
    except _driver_errors() as exc:
        raise _error(exc, f"{where}: checking the binary log settings") from None

    if str(log_bin).upper() not in ("1", "ON"):
        problems.append(
            "the binary log is off: start the server with log_bin and a server_id"
            " (my.cnf [mysqld]: log_bin = binlog, server_id = 1)"
        )
    elif not int(server_id or 0):
        problems.append(
            "server_id is 0: set a unique non-zero server_id in my.cnf and restart the server"
        )
    if str(fmt).upper() != "ROW":
        problems.append(
            f"binlog_format is {fmt}, change capture needs ROW: run SET GLOBAL binlog_format"
            " = ROW and set binlog_format = ROW in my.cnf"
        )
    if str(image).upper() != "FULL":
        problems.append(
            f"binlog_row_image is {image}, change capture needs FULL: run SET GLOBAL"
            " binlog_row_image = FULL and set binlog_row_image = FULL in my.cnf"
        )
    if "PARTIAL_JSON" in value_options.upper():
        problems.append(
            "binlog_row_value_options is PARTIAL_JSON, change capture needs whole JSON values:"
            " run SET GLOBAL binlog_row_value_options = '' and remove it from my.cnf"
        )
    mariadb = "mariadb" in str(version).lower()
    monitor = (
        "BINLOG MONITOR"
        if mariadb and _version(str(version)) >= (10, 5, 2)
        else "REPLICATION CLIENT"
    )
    missing = []
    if grants is not None:
        held = _global_privileges(grants)
        if not held & {"REPLICATION SLAVE", "ALL PRIVILEGES", "ALL"}:
            missing.append("REPLICATION SLAVE")
    if not can_monitor:
        missing.append(monitor)
    if missing:
        who = _quote_user(str(user))
        problems.append(
            f"the user {who} lacks {' and '.join(missing)}: run"
            f" GRANT {', '.join(missing)} ON *.* TO {who}"
        )
    if problems:
        raise ConnectorError(
            f"{where}: change capture cannot read the binlog: {'; '.join(problems)}"
        )


def current_position(conn: Any) -> BinlogPosition:
    """The end of the source's binary log now (SHOW MASTER STATUS; SHOW BINARY LOG STATUS on
    MySQL >= 8.4). ConnectorError if the binary log is off or the user may not ask."""
    try:
        cur = conn.cursor()
        try:
            row = _show_binlog_status(cur)
        finally:
            cur.close()
    except _driver_errors() as exc:
        if _code(exc) == _ER_NEED_PRIVILEGE:
            raise ConnectorError(
                f"reading the binlog position: {_message(exc)} (grant REPLICATION CLIENT,"
                " on MariaDB >= 10.5.2 BINLOG MONITOR)"
            ) from None
        raise _error(exc, "reading the binlog position") from None
    if not row or not row[0]:
        raise ConnectorError(
            "reading the binlog position: the binary log is off: start the server with"
            " log_bin and a server_id"
        )
    return BinlogPosition(_text(row[0]), int(row[1]))


def snapshot_position(conn: Any) -> BinlogPosition | None:
    """The binlog position of the snapshot of the transaction open on ``conn``.

    Call it right after ``START TRANSACTION WITH CONSISTENT SNAPSHOT``: MariaDB reports the
    exact coordinates of that snapshot (``SHOW STATUS LIKE 'binlog_snapshot_%'``). Returns
    None on servers that do not (MySQL); the caller then uses :func:`current_position` read
    just before starting the transaction (replay is idempotent, so an earlier position is
    safe).
    """
    try:
        cur = conn.cursor()
        try:
            cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
            status = {_text(k).lower(): _text(v) for k, v in cur.fetchall()}
        finally:
            cur.close()
    except _driver_errors() as exc:
        raise _error(exc, "reading the binlog position of the snapshot") from None
    file = status.get("binlog_snapshot_file")
    pos = status.get("binlog_snapshot_position")
    if not file or not pos or not pos.isdigit():
        return None
    return BinlogPosition(file, int(pos))


def settings_from_url(url: sqlalchemy.engine.URL | str) -> dict[str, Any]:
    """``connection_settings`` for mysql-replication's BinLogStreamReader (PyMySQL's
    ``connect()`` arguments): host, port, user, password, charset utf8mb4, and
    ``unix_socket`` when the URL's query names one."""
    if isinstance(url, str):
        import sqlalchemy as sa

        url = sa.make_url(url)
    settings: dict[str, Any] = {
        "host": url.host or "localhost",
        "port": int(url.port or 3306),
        "user": url.username or "",
        "password": url.password or "",
        "charset": "utf8mb4",
    }
    if "unix_socket" in url.query:
        settings["unix_socket"] = url.query["unix_socket"]
    return settings


# -- decoding row images -----------------------------------------------------------------------


def _read_date(packet: Any) -> dt.date | str:
    v = int.from_bytes(packet.read(3), "little")
    year, month, day = v >> 9, (v >> 5) & 15, v & 31
    try:
        return dt.date(year, month, day)
    except ValueError:  # 0000-00-00 and other invalid dates: PyMySQL gives their text
        return f"{year:04d}-{month:02d}-{day:02d}"


def _read_fraction(packet: Any, fsp: int) -> int:
    size = (fsp + 1) // 2  # 1, 2 or 3 bytes for 1-2, 3-4, 5-6 digits
    return int.from_bytes(packet.read(size), "big") * 100 ** (3 - size) if size else 0


def _read_datetime2(packet: Any, fsp: int) -> dt.datetime | str:
    v = int.from_bytes(packet.read(5), "big") - 0x8000000000
    micro = _read_fraction(packet, fsp)
    ymd, hms = v >> 17, v & 0x1FFFF
    year, month, day = (ymd >> 5) // 13, (ymd >> 5) % 13, ymd & 31
    hour, minute, second = hms >> 12, (hms >> 6) & 63, hms & 63
    try:
        return dt.datetime(year, month, day, hour, minute, second, micro)
    except ValueError:
        text = f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}"
        return text + f".{micro:06d}"[: fsp + 1] if fsp else text


def _read_time2(packet: Any, fsp: int) -> dt.timedelta:
    """MySQL's TIME2 (sql-common/my_time.cc, my_time_packed_from_binary)."""
    intpart = int.from_bytes(packet.read(3), "big") - 0x800000
    size = (fsp + 1) // 2
    if size == 3:
        packed = (intpart << 24) + int.from_bytes(packet.read(3), "big")
    elif size:
        frac = int.from_bytes(packet.read(size), "big")
        if intpart < 0 and frac:  # negative values keep the fraction reversed
            intpart += 1
            frac -= 1 << (8 * size)
        packed = (intpart << 24) + frac * 100 ** (3 - size)
    else:
        packed = intpart << 24
    sign = -1 if packed < 0 else 1
    packed = abs(packed)
    hms, micro = packed >> 24, packed & 0xFFFFFF
    return sign * dt.timedelta(
        hours=(hms >> 12) & 0x3FF, minutes=(hms >> 6) & 63, seconds=hms & 63, microseconds=micro
    )


def _use_own_temporal_readers(event: Any) -> None:
    """Replace the library's DATE, DATETIME2 and TIME2 decoders on one row event (before its
    rows are read). Name-mangled private methods of mysql-replication 1.0.x: the module
    checks they exist before reading (see :func:`_load_driver`)."""
    packet = event.packet
    event._RowsEvent__read_date = lambda: _read_date(packet)
    event._RowsEvent__read_datetime2 = lambda column: _read_datetime2(packet, column.fsp)
    event._RowsEvent__read_time2 = lambda column: _read_time2(packet, column.fsp)


def _python_codec(charset: str) -> str:
    """The codec mysql-replication should decode a column with: it passes a name PyMySQL
    does not know straight to ``bytes.decode``."""
    if charset in _CODECS:
        return _CODECS[charset]
    from pymysql.charset import charset_by_name

    known = charset_by_name(charset)
    return known.encoding if known else charset


def _timedelta_to_time(v: Any) -> Any:
    if isinstance(v, dt.timedelta) and dt.timedelta(0) <= v < _ONE_DAY:
        return (dt.datetime.min + v).time()
    return v


def _plain_json(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8")
    if isinstance(v, dict):
        return {_plain_json(k): _plain_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain_json(x) for x in v]
    return v


@dataclass
class _Column:
    name: str
    data_type: str  # information_schema DATA_TYPE, lower case
    unsigned: bool = False
    codec: str | None = None  # text and binary columns: what the library decodes with
    members: list[str] | None = None  # ENUM and SET
    convert: Callable[[Any], Any] | None = None  # for non-NULL values


class _Table:
    """How to turn one table's row images into portable rows."""

    def __init__(self, database: str, schema: TableSchema, key: tuple[str, ...], info: list):
        self.database = database
        self.name = schema.name
        names = [c.name for c in schema.columns]
        if [r["COLUMN_NAME"] for r in info] != names:
            now = ", ".join(r["COLUMN_NAME"] for r in info) or "none: the table is gone"
            raise self.changed_shape(f"its columns now: {now}; in the schema: {', '.join(names)}")
        self.columns = [self._column(col, r) for col, r in zip(schema.columns, info, strict=True)]
        self.key_index = tuple(names.index(k) for k in key)

    def changed_shape(self, detail: str) -> ConnectorError:
        return ConnectorError(
            f"table {self.database}.{self.name} changed shape during the migration ({detail}):"
            f" {_RESTART}"
        )

    def _column(self, col: Any, info: dict[str, Any]) -> _Column:
        data_type = _text(info["DATA_TYPE"]).lower()
        column_type = _text(info["COLUMN_TYPE"]).lower()
        c = _Column(col.name, data_type, unsigned="unsigned" in column_type)
        if data_type in _TEXT_TYPES:
            charset = _text(info["CHARACTER_SET_NAME"] or "utf8mb4")
            c.codec = _python_codec(charset)
            try:
                codecs.lookup(c.codec)
            except LookupError:
                raise ConnectorError(
                    f"table {self.database}.{self.name} column {col.name}: character set"
                    f" {charset} cannot be decoded by Python"
                ) from None
            if data_type == "char":
                c.convert = lambda v: v.rstrip(" ")  # as SELECT returns CHAR values
        elif data_type in _BINARY_TYPES:
            c.codec = "binary"  # not a Python codec: the library keeps the bytes
            width = int(info["CHARACTER_OCTET_LENGTH"] or 0) if data_type == "binary" else 0
            c.convert = _binary_converter(width)
        elif data_type in ("enum", "set"):
            c.members = enum_members(_text(info["COLUMN_TYPE"]))
            if data_type == "set":
                members = c.members
                c.convert = lambda v: ",".join(m for m in members if m in v)
        elif data_type == "bit":
            nbytes = (int(info["NUMERIC_PRECISION"] or 1) + 7) // 8
            as_int = BIT_NOTE in col.notes
            c.convert = lambda v: int(v, 2) if as_int else int(v, 2).to_bytes(nbytes, "big")
        elif data_type in ("float", "double", "real"):
            c.convert = _float_converter(data_type, info["NUMERIC_SCALE"])
        elif data_type == "year":
            c.convert = lambda v: 0 if v == 1900 else v  # YEAR 0000 arrives as 1900
        elif data_type == "timestamp":
            c.convert = _timestamp_converter(col.type.precision or 0)
        elif data_type == "time" and col.type.kind == "time":
            c.convert = _timedelta_to_time
        elif data_type == "json":  # MySQL's binary JSON; MariaDB's JSON is LONGTEXT
            c.convert = lambda v: json.dumps(_plain_json(v), ensure_ascii=False)
        return c

    def fix_columns(self, columns: list[Any]) -> None:
        """Give a TableMapEvent's columns what the binlog may lack; check the shape."""
        if len(columns) != len(self.columns):
            raise self.changed_shape(
                f"the binlog has {len(columns)} columns, the schema {len(self.columns)}"
            )
        for mapped, col in zip(columns, self.columns, strict=True):
            if mapped.name and mapped.name != col.name:
                raise self.changed_shape(f"column {mapped.name} in the binlog is {col.name}")
            mapped.name = col.name
            mapped.unsigned = col.unsigned
            if col.codec:
                mapped.character_set_name = col.codec
            if col.data_type == "enum":
                mapped.enum_values = ["", *(col.members or [])]
            elif col.data_type == "set":
                mapped.set_values = col.members

    def values(
        self, image: dict[str, Any], none_sources: dict[str, str], only: tuple[int, ...] = ()
    ) -> tuple[Any, ...]:
        """The portable values of a row image (of the columns ``only``, if given)."""
        raw = list(image.values())
        if len(raw) != len(self.columns):
            raise self.changed_shape(
                f"a row in the binlog has {len(raw)} columns, the schema {len(self.columns)}"
            )
        out = []
        for i in only or range(len(raw)):
            col, v = self.columns[i], raw[i]
            if v is None:
                source = none_sources.get(col.name, "null")
                if source == "empty set":
                    v = ""
                elif source == "cols bitmap":
                    raise ConnectorError(
                        f"table {self.database}.{self.name}: the binlog holds partial rows"
                        " (binlog_row_image is not FULL): set binlog_row_image = FULL, then"
                        f" {_RESTART}"
                    )
            elif col.convert is not None:
                v = col.convert(v)
            out.append(v)
        return tuple(out)

    def changes(self, event: Any, kind: str) -> list[Change]:
        out: list[Change] = []
        for row in event.rows:
            if kind == "write":
                out.append(
                    Change(self.name, "upsert", self.values(row["values"], row["none_sources"]))
                )
            elif kind == "delete":
                key = self.values(row["values"], row["none_sources"], self.key_index)
                out.append(Change(self.name, "delete", key))
            else:
                old = self.values(row["before_values"], row["before_none_sources"], self.key_index)
                new = self.values(row["after_values"], row["after_none_sources"])
                if old != tuple(new[i] for i in self.key_index):
                    out.append(Change(self.name, "delete", old))
                out.append(Change(self.name, "upsert", new))
        return out


def _binary_converter(width: int) -> Callable[[Any], Any]:
    def convert(v: Any) -> Any:
        if isinstance(v, str):  # the library returns '' for an empty value
            v = v.encode()
        if width and len(v) < width:  # BINARY(n) travels without its trailing zero bytes
            v = v + b"\0" * (width - len(v))
        return v

    return convert


def _float_converter(data_type: str, scale: Any) -> Callable[[Any], Any] | None:
    """The float PyMySQL parses from the server's text for the stored value."""
    if scale is not None:  # FLOAT(M,D) / DOUBLE(M,D): printed with D decimals
        digits = int(scale)
        return lambda v: float(f"{v:.{digits}f}")
    if data_type == "float":  # printed with FLT_DIG (6) significant digits
        return lambda v: float(f"{v:.6g}")
    return None  # DOUBLE: printed exactly


def _timestamp_converter(fsp: int) -> Callable[[Any], Any]:
    zero = "0000-00-00 00:00:00" + ("." + "0" * fsp if fsp else "")

    def convert(v: Any) -> Any:
        if v == _EPOCH:  # 1970-01-01 00:00:00 UTC is outside TIMESTAMP's range: the zero value
            return zero
        if v < _EPOCH:  # read as signed 32 bits: MariaDB >= 11.5 stores up to 2106
            return v + _TIMESTAMP_WRAP
        return v

    return convert


# -- reading -----------------------------------------------------------------------------------


def _load_driver() -> SimpleNamespace:
    """PyMySQL and the mysql-replication classes read_changes uses."""
    try:
        import pymysql
        from pymysqlreplication import BinLogStreamReader, event, row_event
    except ImportError as exc:
        raise MissingDriverError(exc.name or "pymysqlreplication", "mysql") from None
    library_log = logging.getLogger("pymysqlreplication")
    if not any(isinstance(h, logging.NullHandler) for h in library_log.handlers):
        # its advice to set binlog_row_metadata = FULL does not apply here (see the module
        # docstring): keep it off the console unless the application configures logging
        library_log.addHandler(logging.NullHandler())
    if not all(hasattr(row_event.RowsEvent, name) for name in _READERS):
        raise ConnectorError(
            "this version of mysql-replication is not supported:"
            " pip install 'mysql-replication>=1.0.9,<2'"
        )
    return SimpleNamespace(
        pymysql=pymysql,
        BinLogStreamReader=BinLogStreamReader,
        event=event,
        row_event=row_event,
    )


def _describe_tables(
    conn: Any,
    database: str,
    schemas: dict[str, TableSchema],
    keys: dict[str, tuple[str, ...]],
) -> dict[str, _Table]:
    import pymysql.cursors

    names = sorted(schemas)
    marks = ", ".join(["%s"] * len(names))
    cur = conn.cursor(pymysql.cursors.DictCursor)
    try:
        cur.execute(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME,"
            " CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE"
            " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s"
            f" AND TABLE_NAME IN ({marks}) ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (database, *names),
        )
        rows = cur.fetchall()
    finally:
        cur.close()
    info: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for r in rows:
        if _text(r["TABLE_NAME"]) in info:  # (names compare without case on some servers)
            info[_text(r["TABLE_NAME"])].append(dict(r))
    tables = {}
    for name in names:
        key = tuple(keys.get(name) or ())
        if not key:
            raise ConnectorError(
                f"table {database}.{name} has no primary key or NOT NULL unique key:"
                " change capture cannot apply its updates and deletes"
            )
        tables[name] = _Table(database, schemas[name], key, info[name])
    return tables


_DDL = re.compile(
    r"^\s*(?:(TRUNCATE)(?:\s+TABLE)?|(DROP|ALTER|RENAME|CREATE\s+OR\s+REPLACE)"
    r"(?:\s+(?:TEMPORARY|ONLINE|IGNORE))*\s+TABLE)(?:\s+IF\s+(?:NOT\s+)?EXISTS)?\s+(.*)$",
    re.IGNORECASE | re.DOTALL,
)
_RENAME_TO = re.compile(r"\bRENAME\s+(?:TO\s+|AS\s+)?(.*)$", re.IGNORECASE | re.DOTALL)


def _strip_comments(query: str) -> str:
    """The statement without comments; ``/*!...*/`` keeps its contents (the server runs them)."""
    text = re.sub(r"/\*!\d*\s?(.*?)\*/", r" \1 ", query, flags=re.DOTALL)
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    return re.sub(r"(?m)(?:--\s|#).*$", " ", text)


_NAME = re.compile(
    r"(?:`((?:[^`]|``)+)`|([A-Za-z0-9_$]+))(?:\s*\.\s*(?:`((?:[^`]|``)+)`|([A-Za-z0-9_$]+)))?"
)


def _ddl_on(
    query: str, default_db: str, database: str, tables: dict[str, str]
) -> tuple[str, str] | None:
    """``(verb, table)`` when ``query`` truncates, drops, alters or renames a tracked table."""
    m = _DDL.match(_strip_comments(query))
    if m is None:
        return None
    verb = re.sub(r"\s+", " ", m.group(1) or m.group(2)).upper()
    names = []
    for part in re.split(r",|\bTO\b", m.group(3), flags=re.IGNORECASE):
        n = _NAME.match(part.strip())
        if n is not None:
            names.append(n)
        if verb in ("TRUNCATE", "ALTER", "CREATE OR REPLACE"):
            break  # one table; the rest of the statement is its definition
    if verb == "ALTER" and (r := _RENAME_TO.search(m.group(3))):  # another table renamed in
        n = _NAME.match(r.group(1).strip())
        if n is not None:
            names.append(n)
    for n in names:
        first, second = n.group(1) or n.group(2), n.group(3) or n.group(4)
        db, table = (first, second) if second else (default_db, first)
        if db == database and table.lower() in tables:
            return verb, tables[table.lower()]
    return None


def read_changes(
    settings: dict[str, Any],
    server_id: int,
    start: BinlogPosition,
    database: str,
    schemas: dict[str, TableSchema],
    keys: dict[str, tuple[str, ...]],
    max_changes: int = 5000,
) -> Iterator[ChangeBatch]:
    """The row changes of the tables in ``schemas`` (of ``database``) since ``start``.

    ``settings``: from :func:`settings_from_url`; ``server_id``: the id this reader registers
    with, which must differ from the source's and every replica's; ``keys``: the key columns
    of each table (primary key or NOT NULL unique key), required.

    Reads from ``start`` to the end of the binlog as it is when reading begins (read with
    :func:`current_position` first), then stops, however fast writers keep writing. Yields
    batches of whole transactions in binlog order: a batch ends only at a commit, and holds
    about ``max_changes`` changes (a single larger transaction is never split). Inserts are
    upserts of the full row; an update is an upsert of the new row, preceded by a delete of
    the old key when the key changed; a delete carries the old key. Values are those of
    ``MySQLEndpoint.row_converter`` on a SELECT (see the module docstring). Rows of other
    tables are skipped, but when transactions were read past the last batch, a last batch
    with no changes carries the position reached, so that a quiet table's position keeps up
    with the binlog (and is not purged from under it). Nothing is yielded when ``start`` is
    already the end.

    Raises ConnectorError (TransientError where a retry may help) for a refused connection
    or privilege, a position the server no longer has (purged binlog: a full copy is
    needed), a table whose shape changed during the migration, or a row image that is not
    FULL.
    """
    drv = _load_driver()
    pymysql, ev, rows = drv.pymysql, drv.event, drv.row_event
    RotateEvent, QueryEvent, XidEvent = ev.RotateEvent, ev.QueryEvent, ev.XidEvent
    MariadbGtidEvent, TableMapEvent = ev.MariadbGtidEvent, rows.TableMapEvent
    row_kinds = {
        rows.WriteRowsEvent: "write",
        rows.UpdateRowsEvent: "update",
        rows.DeleteRowsEvent: "delete",
    }
    secrets = frozenset({settings["password"]} if settings.get("password") else ())
    source = f"{settings.get('host', 'localhost')}:{settings.get('port', 3306)}"
    doing = f"reading the binlog of {source}"
    if not schemas:
        return
    try:
        conn = pymysql.connect(**{**settings, "autocommit": True})
        try:
            end = current_position(conn)
            cur = conn.cursor()
            cur.execute("SELECT CURRENT_USER()")
            user = _quote_user(_text(cur.fetchone()[0]))
            cur.close()
            tables = _describe_tables(conn, database, schemas, keys)
            tables_by_name = {name.lower(): name for name in schemas}
        finally:
            conn.close()
    except pymysql.err.MySQLError as exc:
        raise _error(exc, doing, secrets) from None
    except ConnectorError as exc:
        raise type(exc)(f"{doing}: {exc}") from None
    if start > end:
        raise ConnectorError(
            f"{doing}: the recorded binlog position {start.encode()} is past the end of the"
            f" server's binlog ({end.encode()}): the binlog was reset (RESET MASTER) or this is"
            f" another server: {_RESTART}"
        )
    if start == end:
        return

    reader = drv.BinLogStreamReader(
        connection_settings=dict(settings),
        server_id=server_id,
        resume_stream=True,
        blocking=False,
        log_file=start.file,
        log_pos=start.pos,
        only_schemas=[database],
        only_tables=list(tables),
        only_events=[
            RotateEvent,
            TableMapEvent,
            *row_kinds,
            XidEvent,
            QueryEvent,
            MariadbGtidEvent,
        ],
        freeze_schema=False,
        enable_logging=False,
    )
    batch: list[Change] = []
    pending: list[Change] = []  # changes of the transaction being read
    in_transaction = False
    committed = yielded = start
    event_time: dt.datetime | None = None
    table = ""
    try:
        for event in reader:
            commit = False
            if isinstance(event, RotateEvent):
                continue  # the reader keeps the current file name
            if isinstance(event, TableMapEvent):
                t = tables.get(event.table) if event.schema == database else None
                if t is not None:
                    t.fix_columns(event.columns)
            elif type(event) in row_kinds:
                in_transaction = True
                t = tables.get(event.table) if event.schema == database else None
                if t is not None:
                    table = t.name
                    _use_own_temporal_readers(event)
                    pending.extend(t.changes(event, row_kinds[type(event)]))
            elif isinstance(event, MariadbGtidEvent):
                in_transaction = not event.flags & 1  # FL_STANDALONE: no BEGIN follows
            elif isinstance(event, XidEvent):
                commit = True
            elif isinstance(event, QueryEvent):
                query = event.query.strip().upper()
                if query == "BEGIN":
                    in_transaction = True
                elif query.startswith(("ROLLBACK TO", "SAVEPOINT")):
                    pass  # inside a transaction
                else:  # COMMIT or ROLLBACK; outside a transaction, DDL (its own transaction)
                    commit = query.startswith(("COMMIT", "ROLLBACK")) or not in_transaction
                    ddl = _ddl_on(event.query, _text(event.schema), database, tables_by_name)
                    if ddl is not None:
                        raise ConnectorError(
                            f"table {ddl[1]} was changed at the source by {ddl[0]} (binlog"
                            f" {reader.log_file}:{event.packet.log_pos}): row events cannot"
                            f" follow that; {_RESTART}"
                        )
            log_pos = event.packet.log_pos
            if commit and log_pos:
                in_transaction = False
                batch.extend(pending)
                pending = []
                committed = BinlogPosition(reader.log_file, log_pos)
                event_time = dt.datetime.fromtimestamp(event.timestamp, dt.UTC)
                if len(batch) >= max_changes:
                    yield ChangeBatch(batch, committed, event_time)
                    batch, yielded = [], committed
            if log_pos and not in_transaction and BinlogPosition(reader.log_file, log_pos) >= end:
                break
    except pymysql.err.MySQLError as exc:
        if _code(exc) == _ER_MASTER_FATAL_READING_BINLOG:
            text = _message(exc, secrets)
            gone = "could not find first log file" in text.lower()
            what = "its binlog file was purged" if gone else text
            raise ConnectorError(
                f"{doing}: the recorded binlog position {start.encode()} is gone from the server"
                f" ({what}): {_RESTART}"
            ) from None
        if _code(exc) == _ER_NEED_PRIVILEGE:
            raise ConnectorError(
                f"{doing}: {_message(exc, secrets)}: run GRANT REPLICATION SLAVE ON *.* TO {user}"
            ) from None
        raise _error(exc, doing, secrets) from None
    except UnicodeDecodeError as exc:
        raise ConnectorError(
            f"{doing}: a text value of table {database}.{table} is not valid in its"
            f" character set ({exc.reason})"
        ) from None
    finally:
        reader.close()
    if batch or committed != yielded:
        yield ChangeBatch(batch, committed, event_time)
