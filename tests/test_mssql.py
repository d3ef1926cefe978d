"""SQL Server connector without a server: the exact SQL of every statement kind (each
parsed by sqlglot's tsql dialect), the parameter sizes of the bulk path, value adapters
and converters, error translation (for real through pyodbc, unixODBC and FreeTDS against
a closed port, and from pyodbc errors shaped as SQL Server sends them).

Live tests against a server are elsewhere (MIGRATE_TEST_MSSQL_URL).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import re
import socket
import struct
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyodbc
import pytest
from sqlrecorder import offline, parse

from connectors.sql import type_matrix as tm
from connectors.sql.base import PickleSpool
from connectors.sql.mssql import (
    MSSQLEndpoint,
    NativeColumn,
    datetime_text,
    decode_datetimeoffset,
    decode_time,
    decode_timestamp,
    input_size,
    round_datetime,
    time_text,
    value_adapter,
)
from migrate.endpoints import Capabilities
from migrate.errors import ConnectorError, MissingDriverError, TransientError
from migrate.registry import endpoint_class
from migrate.schema import Column, Default, ForeignKey, Index, PType, TableSchema
from migrate.values import DateTime7, Time7, with_nanos
from validators.canonical import ColumnSpec, hash60, row_text

URL = "mssql+pyodbc://u:pw@127.0.0.1:1433/db?driver=FreeTDS"
MYSQL = Capabilities("mysql", "load data", 64, 65535)
NATIVES = (
    "SELECT c.name, CASE WHEN c.system_type_id = 240 THEN TYPE_NAME(c.user_type_id)"
    " ELSE TYPE_NAME(c.system_type_id) END, c.scale, c.is_identity, c.max_length,"
    " c.collation_name FROM sys.columns AS c WHERE c.object_id = OBJECT_ID(?)"
    " ORDER BY c.column_id"
)


def endpoint(version: tuple[int, ...] = (16, 0), **options: Any) -> tuple[MSSQLEndpoint, Any]:
    return offline(MSSQLEndpoint, URL, version, **options)


def plain(ep: MSSQLEndpoint, *tables: str) -> None:
    """The tables hold no column that reads converted (no natives lookup is recorded)."""
    for table in tables:
        ep._natives[table] = {}


def parses(sql: str) -> None:
    """Every statement is valid T-SQL for sqlglot, which has no SAVE TRANSACTION."""
    if sql.startswith("SAVE TRANSACTION "):
        assert re.fullmatch(r"SAVE TRANSACTION \w+", sql)
        return
    parse(sql, "mssql")


def sql_of(rec: Any) -> list[str]:
    for s in rec.sql:
        parses(s)
    return rec.sql


ORDERS = TableSchema(
    "orders",
    [
        Column("id", PType("int64"), nullable=False),
        Column("name", PType("varchar", length=50)),
        Column("amount", PType("decimal", precision=10, scale=2)),
    ],
    ("id",),
)


def ptype_of(text: str) -> PType:
    """The PType a type matrix row names (``decimal(10, 2)``, ``int8 unsigned``, ...)."""
    m = re.fullmatch(r"(\w+)(?:\((.*)\))?( unsigned)?", text)
    assert m, text
    kind, args, unsigned = m.group(1), m.group(2), bool(m.group(3))
    if kind == "enum":
        return PType("enum", values=tuple(a.strip().strip("'") for a in args.split(",")))
    nums = [int(a) for a in args.split(",")] if args else []
    if kind == "decimal":
        return PType("decimal", precision=nums[0], scale=nums[1]) if nums else PType("decimal")
    if kind in ("time", "datetime", "timestamptz"):
        return PType(kind, precision=nums[0] if nums else None)
    return PType(kind, length=nums[0] if nums else None, unsigned=unsigned)


# -- registry, URL, connection string -------------------------------------------------------
def test_registry_resolves_both_schemes() -> None:
    assert endpoint_class("mssql+pyodbc://u@h/db") is MSSQLEndpoint
    assert endpoint_class("mssql://u@h/db") is MSSQLEndpoint


def test_plain_scheme_means_pyodbc_and_other_dbapis_are_refused() -> None:
    ep = MSSQLEndpoint("src", "mssql://u@h/db", {}, base_dir=Path("."))
    assert ep._url.drivername == "mssql+pyodbc"
    with pytest.raises(ConnectorError, match=r"use mssql\+pyodbc://"):
        MSSQLEndpoint("src", "mssql+pymssql://u@h/db", {}, base_dir=Path("."))


def test_capabilities() -> None:
    caps = MSSQLEndpoint.capabilities
    assert (caps.engine, caps.max_identifier_length, caps.max_bind_params) == ("mssql", 128, 2100)
    assert caps.index_namespace == "table" and caps.bulk_load == "executemany"


def test_missing_pyodbc_names_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyodbc", None)  # import pyodbc raises ImportError
    ep = MSSQLEndpoint("src", URL, {}, base_dir=Path("."))
    with pytest.raises(MissingDriverError, match=r"pip install 'migrate\[mssql\]'"):
        ep.engine  # noqa: B018


@pytest.mark.parametrize(
    ("installed", "chosen"),
    [
        (["FreeTDS", "ODBC Driver 17 for SQL Server"], "ODBC Driver 17 for SQL Server"),
        (
            ["ODBC Driver 17 for SQL Server", "ODBC Driver 18 for SQL Server"],
            "ODBC Driver 18 for SQL Server",
        ),
        (["PostgreSQL Unicode", "FreeTDS"], "FreeTDS"),
    ],
)
def test_default_odbc_driver_is_the_first_installed(
    monkeypatch: pytest.MonkeyPatch, installed: list[str], chosen: str
) -> None:
    monkeypatch.setattr(pyodbc, "drivers", lambda: installed)
    ep = MSSQLEndpoint("src", "mssql://u@h/db", {}, base_dir=Path("."))
    assert ep.with_odbc_driver(ep._url).query["driver"] == chosen
    named = MSSQLEndpoint("src", "mssql://u@h/db?driver=Mine", {}, base_dir=Path("."))
    assert named.with_odbc_driver(named._url).query["driver"] == "Mine"


def test_no_odbc_driver_installed_names_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyodbc, "drivers", lambda: ["PostgreSQL Unicode"])
    ep = MSSQLEndpoint("src", "mssql://u:pw@h/db", {}, base_dir=Path("."))
    with pytest.raises(ConnectorError) as err:
        ep.engine  # noqa: B018
    text = str(err.value)
    assert "\n" not in text
    assert "no SQL Server ODBC driver is installed (installed: PostgreSQL Unicode)" in text
    assert "tdsodbc" in text and "msodbcsql18" in text and "?driver=FreeTDS" in text


def test_connection_string_from_the_url() -> None:
    """SQLAlchemy's pyodbc dialect builds it; query keys pass through (Driver 18's
    Encrypt=yes default is kept; TrustServerCertificate=yes accepts a self-signed
    certificate); dry runs ask for ApplicationIntent=ReadOnly; the login timeout is
    pyodbc's ``timeout``."""
    url = (
        "mssql+pyodbc://app:p%3Bw@db.example:1433/sales"
        "?driver=ODBC+Driver+18+for+SQL+Server&TrustServerCertificate=yes"
    )
    ep = MSSQLEndpoint("src", url, {"login_timeout": 3}, base_dir=Path("."), dry_run=True)
    dialect = MSSQLEndpoint.make_dialect(url, (16, 0))
    (conn_str,), kwargs = dialect.create_connect_args(ep._url)
    assert conn_str == (
        "DRIVER={ODBC Driver 18 for SQL Server};Server=db.example,1433;Database=sales;"
        "UID=app;PWD={p;w};TrustServerCertificate=yes;ApplicationIntent=ReadOnly"
    )
    assert kwargs == {}
    assert ep.connect_args() == {"timeout": 3}
    assert MSSQLEndpoint("s", url, {}, base_dir=Path(".")).connect_args() == {"timeout": 15}


def test_options_are_checked() -> None:
    with pytest.raises(ConnectorError, match=r"unknown option 'bulk'.*fast_executemany"):
        MSSQLEndpoint("src", URL, {"bulk": "x"}, base_dir=Path("."))
    with pytest.raises(ConnectorError, match="login_timeout: 0 is not a number of seconds"):
        MSSQLEndpoint("src", URL, {"login_timeout": 0}, base_dir=Path("."))
    with pytest.raises(ConnectorError, match="fast_executemany: 'no' is not true or false"):
        MSSQLEndpoint("src", URL, {"fast_executemany": "no"}, base_dir=Path("."))


class FakeConnection:
    """A pyodbc connection as on_connect sees it: converters and executed SQL kept, the
    EngineEdition query answered with ``edition``."""

    def __init__(self, edition: int | None = 3) -> None:
        self.converters: dict[int, Any] = {}
        self.sql: list[str] = []
        self.edition = edition

    def add_output_converter(self, sqltype: int, fn: Any) -> None:
        self.converters[sqltype] = fn

    def cursor(self) -> Any:
        conn = self

        class Cur:
            def execute(self, sql: str) -> None:
                conn.sql.append(sql)

            def fetchone(self) -> tuple[Any, ...]:
                return (conn.edition,)

            def close(self) -> None:
                pass

        return Cur()


def test_session_settings_and_the_output_converters() -> None:
    """DATETIME2/DATETIME/SMALLDATETIME (93), TIME (-154) and DATETIMEOFFSET (-155) are
    decoded from the driver's structs, keeping 100 ns; the edition is read."""
    conn = FakeConnection()
    ep = MSSQLEndpoint("src", URL, {"lock_timeout": 5}, base_dir=Path("."))
    ep.on_connect(conn)
    assert conn.converters == {
        93: decode_timestamp,
        -154: decode_time,
        -155: decode_datetimeoffset,
    }
    assert {name: getattr(pyodbc, name) for name in ("SQL_TYPE_TIMESTAMP", "SQL_SS_TIME2")} == {
        "SQL_TYPE_TIMESTAMP": 93,
        "SQL_SS_TIME2": -154,
    }
    assert conn.sql == [
        "SET ANSI_NULLS ON; SET ANSI_PADDING ON; SET ANSI_WARNINGS ON; SET ARITHABORT ON;"
        " SET CONCAT_NULL_YIELDS_NULL ON; SET QUOTED_IDENTIFIER ON; SET NUMERIC_ROUNDABORT OFF;"
        " SET DATEFORMAT ymd; SET XACT_ABORT OFF; SET NOCOUNT OFF; SET LOCK_TIMEOUT 5000",
        "SELECT CAST(SERVERPROPERTY('EngineEdition') AS INT)",
    ]
    for statement in [*conn.sql[0].split("; "), conn.sql[1]]:
        parses(statement)
    assert ep.engine_edition == 3
    assert "LOCK_TIMEOUT" not in MSSQLEndpoint("s", URL, {}, base_dir=Path(".")).session_sql()


@pytest.mark.parametrize(
    ("edition", "reported", "version"),
    [
        (5, (12, 0, 2000, 8), (16, 0)),  # Azure SQL Database
        (8, (12, 0, 2000, 8), (16, 0)),  # Azure SQL Managed Instance
        (3, (13, 0, 6300, 2), (13, 0, 6300, 2)),  # Enterprise 2016: as it is
    ],
)
def test_azure_sql_counts_as_the_current_version(
    edition: int, reported: tuple[int, ...], version: tuple[int, ...]
) -> None:
    """Azure SQL Database and Managed Instance report ProductVersion 12.x; their
    EngineEdition (5, 8) says they run the current engine: not "older than 2016", and
    checksums need no older-version fallback."""
    ep = MSSQLEndpoint("src", URL, {}, base_dir=Path("."))
    ep.on_connect(FakeConnection(edition))
    dialect = MSSQLEndpoint.make_dialect(URL, reported)
    ep.check_version(dialect)
    assert dialect.server_version_info == version
    assert dialect._supports_offset_fetch
    ep.offline_dialect = dialect
    if edition in (5, 8):
        ep.checksum_sql(SPECS)  # as 2019 or later: UTF-8 collations, no error
    else:
        with pytest.raises(ConnectorError, match="need SQL Server 2019 or later"):
            ep.checksum_sql(SPECS)


def test_sql_server_2014_is_refused_and_so_is_an_unknown_edition_on_12() -> None:
    ep = MSSQLEndpoint("src", URL, {}, base_dir=Path("."))
    ep.on_connect(FakeConnection(None))
    with pytest.raises(ConnectorError, match=r"SQL Server 12\.0\.2000\.8 is older than 2016"):
        ep.check_version(MSSQLEndpoint.make_dialect(URL, (12, 0, 2000, 8)))


def test_offline_dialect_is_the_servers() -> None:
    """2016 is (13, 0), the oldest supported; the dialect binds ``?`` as pyodbc does."""
    ep, _ = endpoint((13, 0))
    assert ep.server_version() == (13, 0)
    assert ep.dialect.positional and ep.dialect.paramstyle == "qmark"
    assert ep.dialect._supports_offset_fetch


# -- errors, for real through unixODBC + FreeTDS --------------------------------------------
def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def test_closed_port_fails_fast_in_one_line() -> None:
    assert "FreeTDS" in pyodbc.drivers()
    port = _closed_port()
    url = f"mssql+pyodbc://sa:S3cret_pw@127.0.0.1:{port}/sales?driver=FreeTDS"
    ep = MSSQLEndpoint("src", url, {"login_timeout": 2}, base_dir=Path("."))
    started = time.monotonic()
    with pytest.raises(ConnectorError) as err:
        ep.engine  # noqa: B018
    assert time.monotonic() - started < 5
    assert not isinstance(err.value, TransientError)
    text = str(err.value)
    assert "\n" not in text and "S3cret_pw" not in text
    assert text.startswith(
        f"src: connecting: cannot connect to SQL Server at 127.0.0.1:{port}: check the host"
        " and port"
    )
    assert "Adaptive Server is unavailable or does not exist (20009)" in text


def test_connect_passes_the_login_timeout_to_pyodbc(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, ...]] = []
    real = pyodbc.connect

    def connect(*args: Any, **kwargs: Any) -> Any:
        seen.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(pyodbc, "connect", connect)
    port = _closed_port()
    url = f"mssql://sa:pw@127.0.0.1:{port}/sales?driver=FreeTDS"
    with pytest.raises(ConnectorError):
        MSSQLEndpoint("src", url, {"login_timeout": 4}, base_dir=Path(".")).engine  # noqa: B018
    (args, kwargs) = seen[0]
    assert args == (f"DRIVER={{FreeTDS}};Server=127.0.0.1,{port};Database=sales;UID=sa;PWD=pw",)
    assert kwargs["timeout"] == 4


def test_driver_not_installed_names_the_packages() -> None:
    url = f"mssql+pyodbc://sa:S3cret_pw@127.0.0.1:{_closed_port()}/db?driver=NoSuchDriver"
    ep = MSSQLEndpoint("src", url, {}, base_dir=Path("."))
    with pytest.raises(ConnectorError) as err:
        ep.engine  # noqa: B018
    assert str(err.value) == (
        "src: connecting: ODBC driver 'NoSuchDriver' is not installed: install Debian's"
        " tdsodbc (FreeTDS: ?driver=FreeTDS) or Microsoft's msodbcsql18"
        " (?driver=ODBC+Driver+18+for+SQL+Server) (Can't open lib 'NoSuchDriver' : file not"
        " found)"
    )


# -- errors, as SQL Server and the drivers word them -----------------------------------------
MS = "[Microsoft][ODBC Driver 18 for SQL Server]"
ERRORS = [
    pytest.param(
        pyodbc.InterfaceError(
            "28000",
            f"[28000] {MS}[SQL Server]Login failed for user 'app'. (18456) (SQLDriverConnect);"
            f" [28000] {MS}[SQL Server]Login failed for user 'app'. (18456)",
        ),
        "login failed for user 'app': check the user name and password in the URL, and that"
        " the server allows SQL Server logins (Login failed for user 'app'. (18456))",
        False,
        id="login-failed",
    ),
    pytest.param(
        pyodbc.ProgrammingError(
            "42000",
            "[42000] [FreeTDS][SQL Server]Login failed for user 'app'. (18456) (SQLDriverConnect)",
        ),
        "login failed for user 'app'",
        False,
        id="login-failed-freetds",
    ),
    pytest.param(
        pyodbc.ProgrammingError(
            "42000",
            f'[42000] {MS}[SQL Server]Cannot open database "sales" requested by the login.'
            " The login failed. (4060) (SQLDriverConnect); [28000]"
            f" {MS}[SQL Server]Login failed for user 'app'. (18456)",
        ),
        "cannot open the database 'sales': check the database name at the end of the URL and"
        ' that this login may use it (Cannot open database "sales" requested by the login.'
        " The login failed. (4060))",
        False,
        id="unknown-database",
    ),
    pytest.param(
        pyodbc.OperationalError(
            "08001",
            f"[08001] {MS}TCP Provider: Error code 0x2749 (10057) (SQLDriverConnect); [08001]"
            f" {MS}Login timeout expired (0); [08001] {MS}A network-related or"
            " instance-specific error has occurred while establishing a connection to SQL"
            " Server. Server is not found or not accessible. (10057)",
        ),
        "cannot connect to SQL Server at db.example:1433: check the host and port (a named"
        " instance listens on its own port), that the server is running and accepts TCP/IP"
        " connections, and any firewall between (TCP Provider: Error code 0x2749 (10057))",
        False,
        id="unreachable",
    ),
    pytest.param(
        pyodbc.OperationalError(
            "HYT00", f"[HYT00] {MS}Login timeout expired (0) (SQLDriverConnect)"
        ),
        "cannot connect to SQL Server at db.example:1433",
        False,
        id="login-timeout",
    ),
    pytest.param(
        pyodbc.InterfaceError(
            "IM002",
            "[IM002] [unixODBC][Driver Manager]Data source name not found and no default"
            " driver specified (0) (SQLDriverConnect)",
        ),
        "no ODBC driver or data source of that name: name the driver in the URL (?driver=...)"
        " and install Debian's tdsodbc",
        False,
        id="no-driver-named",
    ),
    pytest.param(
        pyodbc.Error(
            "01000",
            "[01000] [unixODBC][Driver Manager]Can't open lib 'ODBC Driver 18 for SQL Server' :"
            " file not found (0) (SQLDriverConnect)",
        ),
        "ODBC driver 'ODBC Driver 18 for SQL Server' is not installed: install Debian's"
        " tdsodbc (FreeTDS: ?driver=FreeTDS) or Microsoft's msodbcsql18",
        False,
        id="driver-not-installed",
    ),
    pytest.param(
        pyodbc.OperationalError(
            "08001",
            f"[08001] {MS}SSL Provider: [error:0A000086:SSL routines::certificate verify"
            " failed:self-signed certificate] (-1) (SQLDriverConnect); [08001] "
            f"{MS}Client unable to establish connection. (-1)",
        ),
        "the server's TLS certificate is not trusted: install its CA, or add"
        " TrustServerCertificate=yes to the URL query",
        False,
        id="certificate",
    ),
    pytest.param(
        pyodbc.ProgrammingError(
            "40001",
            f"[40001] {MS}[SQL Server]Transaction (Process ID 57) was deadlocked on lock"
            " resources with another process and has been chosen as the deadlock victim."
            " Rerun the transaction. (1205) (SQLExecDirectW)",
        ),
        "chosen as a deadlock victim (running again can succeed) (Transaction (Process ID 57)",
        True,
        id="deadlock",
    ),
    pytest.param(
        pyodbc.OperationalError("HYT00", f"[HYT00] {MS}Query timeout expired (0) (SQLExecDirectW)"),
        "Query timeout expired",
        True,
        id="query-timeout",
    ),
    pytest.param(
        pyodbc.OperationalError(
            "08S01",
            f"[08S01] {MS}TCP Provider: Error code 0x68 (104) (SQLExecDirectW); [08S01]"
            f" {MS}Communication link failure (104)",
        ),
        "the connection to SQL Server was lost (running again can succeed) (TCP Provider: Error"
        " code 0x68 (104))",
        True,
        id="link-lost",
    ),
    pytest.param(
        pyodbc.IntegrityError(
            "23000",
            f"[23000] {MS}[SQL Server]Violation of PRIMARY KEY constraint 'PK_t'. Cannot insert"
            " duplicate key in object 'dbo.t'. The duplicate key value is (1205). (2627)"
            f" (SQLExecDirectW); [01000] {MS}[SQL Server]The statement has been terminated."
            " (3621)",
        ),
        "Violation of PRIMARY KEY constraint 'PK_t'.",
        False,
        id="unique",
    ),
]


@pytest.mark.parametrize(("exc", "expected", "transient"), ERRORS)
def test_errors_are_one_line_with_what_to_check(
    exc: BaseException, expected: str, transient: bool
) -> None:
    url = "mssql+pyodbc://app:S3cret_pw@db.example:1433/sales?driver=FreeTDS"
    ep = MSSQLEndpoint("src", url, {}, base_dir=Path("."))
    err = ep.translate(exc, "connecting")
    assert isinstance(err, TransientError) is transient
    text = str(err)
    assert "\n" not in text and "S3cret_pw" not in text
    assert text.startswith("src: connecting: ")
    assert expected in text


def test_a_localized_login_failure_is_known_by_its_number() -> None:
    """A server in another language words its messages differently; 18456 is 18456."""
    ep = MSSQLEndpoint("src", "mssql://app:pw@h/sales?driver=FreeTDS", {}, base_dir=Path("."))
    exc = pyodbc.ProgrammingError(
        "42000",
        "[42000] [FreeTDS][SQL Server]Fehler bei der Anmeldung für den Benutzer 'app'. (18456)"
        " (SQLDriverConnect)",
    )
    assert "login failed for user 'app'" in str(ep.translate(exc, "connecting"))


def test_connect_messages_never_hold_the_password() -> None:
    url = "mssql+pyodbc://app:S3cret_pw@db.example/sales?driver=FreeTDS"
    ep = MSSQLEndpoint("src", url, {}, base_dir=Path("."))
    exc = pyodbc.Error("01000", "[01000] [unixODBC]Can't open lib 'x;PWD=S3cret_pw' (0)")
    assert "S3cret_pw" not in str(ep.translate(exc, "connecting"))


def test_unique_violations_are_recognised_with_their_index() -> None:
    ep, _ = endpoint()
    pk = pyodbc.IntegrityError(
        "23000",
        f"[23000] {MS}[SQL Server]Violation of UNIQUE KEY constraint 'uq_email'. Cannot insert"
        " duplicate key in object 'dbo.t'. The duplicate key value is (a@b). (2627)",
    )
    ix = pyodbc.IntegrityError(
        "23000",
        f"[23000] {MS}[SQL Server]Cannot insert duplicate key row in object 'dbo.t' with unique"
        " index 'ix_t_email'. The duplicate key value is (a@b). (2601) (SQLExecDirectW)",
    )
    other = pyodbc.IntegrityError(
        "23000",
        f"[23000] {MS}[SQL Server]Cannot insert the value NULL into column 'x'. (515)",
    )
    assert ep.is_unique_violation(pk) and ep.is_unique_violation(ix)
    assert not ep.is_unique_violation(other)
    assert ep.unique_violation_detail(pk) == "unique index uq_email"
    assert ep.unique_violation_detail(ix) == "unique index ix_t_email"


# -- types ----------------------------------------------------------------------------------
def test_create_table_with_a_column_of_every_target_type() -> None:
    ep, _ = endpoint()
    cols = [Column(f"c{i}", ptype_of(t.ptype)) for i, t in enumerate(tm.TARGETS)]
    for col, t in zip(cols, tm.TARGETS, strict=True):
        assert str(col.type) == t.ptype
    id_col = Column("id", PType("int64"), nullable=False, autoincrement=True)
    source = TableSchema("every_type", [id_col, *cols], ("id",))
    target = ep.target_schema(source, MYSQL, "every_type")
    lines = ["\tid BIGINT NOT NULL IDENTITY, "]
    for col, t in zip(cols, tm.TARGETS, strict=True):
        ddl = t.stored["mssql"][0]
        collate = " COLLATE Latin1_General_100_BIN2" if ddl.startswith("N") else ""
        lines.append(f"\t{col.name} {ddl}{collate} NULL, ")
    want = "CREATE TABLE every_type (\n" + "\n".join(lines) + "\n\tPRIMARY KEY (id)\n)"
    sql = ep.create_table_sql(target)
    assert sql == want
    parses(sql)
    assert "\tc18 NCHAR(10) COLLATE Latin1_General_100_BIN2 NULL, " in sql
    assert "\tc14 DECIMAL(38, 30) NULL, " in sql and "\tc41 DATETIMEOFFSET(7) NULL, " in sql
    assert "\tc19 NVARCHAR(6) COLLATE Latin1_General_100_BIN2 NULL, " in sql
    notes = {c.name: c.notes for c in target.columns if c.notes}
    assert notes == {
        "c14": ["DECIMAL(65,30) narrowed to DECIMAL(38,30)"],
        "c15": ["NUMERIC without precision stored as DECIMAL(38,10)"],
        "c18": ["NCHAR counts UTF-16 units: n characters outside the BMP do not fit"],
        "c22": ["VARCHAR(16000) stored as NVARCHAR(max)"],
        "c39": ["fractional seconds cut from 9 to 7 digits"],
        "c44": ["allowed values not enforced"],
    }


def test_same_engine_keeps_collations_and_defaults_are_t_sql() -> None:
    ep, _ = endpoint()
    source = TableSchema(
        "t",
        [
            Column("id", PType("int32"), nullable=False),
            Column(
                "name",
                PType("varchar", length=20),
                collation="Latin1_General_CI_AS",
                default=Default("literal", "naïve 'x'"),
            ),
            Column("on", PType("boolean"), nullable=False, default=Default("literal", True)),
            Column("flag", PType("boolean"), default=Default("literal", Decimal(0))),
            Column("at", PType("datetime", precision=3), default=Default("current_timestamp")),
            Column("tz", PType("timestamptz", precision=7), default=Default("current_timestamp")),
            Column(
                "n",
                PType("decimal", precision=5, scale=2),
                default=Default("literal", Decimal("1.50")),
            ),
        ],
        ("id",),
    )
    sql = ep.create_table_sql(ep.target_schema(source, ep.capabilities))
    assert sql == (
        "CREATE TABLE t (\n"
        "\tid INTEGER NOT NULL, \n"
        "\tname NVARCHAR(20) COLLATE Latin1_General_CI_AS NULL DEFAULT N'naïve ''x''', \n"
        "\t[on] BIT NOT NULL DEFAULT 1, \n"
        "\tflag BIT NULL DEFAULT 0, \n"
        "\tat DATETIME2(3) NULL DEFAULT SYSUTCDATETIME(), \n"
        "\ttz DATETIMEOFFSET(7) NULL DEFAULT SYSDATETIMEOFFSET(), \n"
        "\tn DECIMAL(5, 2) NULL DEFAULT 1.50, \n"
        "\tPRIMARY KEY (id)\n"
        ")"
    )
    parses(sql)


@pytest.mark.parametrize(
    ("raw", "kind", "value"),
    [
        ("((0))", "literal", Decimal(0)),
        ("((-1.5))", "literal", Decimal("-1.5")),
        ("(N'it''s')", "literal", "it's"),
        ("('2020-01-01')", "literal", "2020-01-01"),
        ("(getdate())", "current_timestamp", None),
        ("(sysutcdatetime())", "current_timestamp", None),
        ("(sysdatetimeoffset())", "current_timestamp", None),
    ],
)
def test_t_sql_defaults_are_read(raw: str, kind: str, value: Any) -> None:
    ep, _ = endpoint()
    col = Column("c", PType("varchar", length=10))
    d = ep.parse_default(raw, col)
    assert d is not None and (d.kind, d.value) == (kind, value)
    assert not col.notes


def test_an_expression_default_is_dropped_with_a_note() -> None:
    ep, _ = endpoint()
    col = Column("c", PType("uuid"))
    assert ep.parse_default("(newid())", col) is None
    assert col.notes == ["default newid() is an expression migrate does not carry: dropped"]


@pytest.mark.parametrize(
    ("native", "ptype", "note"),
    [
        ("MONEY", "decimal(19, 4)", ""),
        ("SMALLMONEY", "decimal(10, 4)", ""),
        ("SMALLDATETIME", "datetime(0)", ""),
        ("DATETIME2(0)", "datetime(0)", ""),
        ("DATETIME2(3)", "datetime(3)", ""),
        ("TIME(0)", "time(0)", ""),
        ("DATETIMEOFFSET(3)", "timestamptz(3)", "offset dropped: values read in UTC"),
        ("SQL_VARIANT", "text", "SQL_VARIANT copied as its text form"),
        ("NTEXT", "text", ""),
        ("TEXT", "text", ""),
        ("IMAGE", "blob", ""),
        ("FLOAT(24)", "float32", ""),
        ("FLOAT(53)", "float64", ""),
        ("NUMERIC(20, 0)", "decimal(20, 0)", ""),
        ("BIT", "boolean", ""),
        ("VARCHAR(max)", "text", ""),
    ],
)
def test_source_types_beyond_the_matrix(native: str, ptype: str, note: str) -> None:
    ep, _ = endpoint()
    got, got_note = ep.portable_type(tm.parse_native("mssql", native))
    assert (str(got), got_note or "") == (ptype, note)


@pytest.mark.parametrize(
    ("ptype", "ddl", "note"),
    [
        (PType("char", length=5000), "NVARCHAR(max)", "CHAR(5000) stored as NVARCHAR(max)"),
        (PType("varchar", length=4000), "NVARCHAR(4000)", ""),
        (PType("varchar", length=4001), "NVARCHAR(max)", "VARCHAR(4001) stored as NVARCHAR(max)"),
        (PType("binary", length=9000), "VARBINARY(max)", "BINARY(9000) stored as VARBINARY(max)"),
        (PType("varbinary", length=8000), "VARBINARY(8000)", ""),
        (
            PType("varbinary", length=8001),
            "VARBINARY(max)",
            "VARBINARY(8001) stored as VARBINARY(max)",
        ),
        (
            PType("decimal", precision=40, scale=5),
            "DECIMAL(38, 5)",
            "DECIMAL(40,5) narrowed to DECIMAL(38,5)",
        ),
        (PType("time", precision=9), "TIME(7)", "fractional seconds cut from 9 to 7 digits"),
        (
            PType("timestamptz", precision=9),
            "DATETIMEOFFSET(7)",
            "fractional seconds cut from 9 to 7 digits",
        ),
        (PType("datetime"), "DATETIME2(7)", ""),
        (PType("enum", values=("small", "medium")), "NVARCHAR(12)", "allowed values not enforced"),
        (PType("int16", unsigned=True), "INTEGER", ""),
        (PType("int64", unsigned=True), "DECIMAL(20, 0)", ""),
    ],
)
def test_target_types_at_the_limits(ptype: PType, ddl: str, note: str) -> None:
    ep, _ = endpoint()
    adapted, got_note = ep.adapt_type(ptype)
    assert str(ep.native_type(adapted).compile(dialect=ep.dialect)) == ddl
    assert (got_note or "") == note


def test_index_and_foreign_key_ddl() -> None:
    ep, _ = endpoint()
    schema = TableSchema(
        "Order Lines",
        [
            Column("id", PType("int64"), nullable=False),
            Column("email", PType("varchar", length=100)),
            Column("sku", PType("varchar", length=20), nullable=False),
        ],
        ("id",),
    )
    ddl = [
        ep.index_ddl(schema, Index("ix_sku", ("sku",))),
        ep.index_ddl(schema, Index("uq_sku", ("sku",), unique=True)),
        ep.index_ddl(schema, Index("uq_email_sku", ("email", "sku"), unique=True)),
        ep.fk_ddl(
            schema, ForeignKey("fk_order", ("id",), "orders", ("id",), "CASCADE", "RESTRICT")
        ),
        ep.fk_ddl(schema, ForeignKey(None, ("sku",), "skus", ("sku",), "SET NULL")),
        ep.drop_table_sql("Order Lines"),
    ]
    assert ddl == [
        "CREATE INDEX ix_sku ON [Order Lines] (sku)",
        "CREATE UNIQUE INDEX uq_sku ON [Order Lines] (sku)",
        # SQL Server's unique index allows one NULL; the other engines many
        "CREATE UNIQUE INDEX uq_email_sku ON [Order Lines] (email, sku) WHERE email IS NOT NULL",
        "ALTER TABLE [Order Lines] ADD CONSTRAINT fk_order FOREIGN KEY (id) REFERENCES orders"
        " (id) ON DELETE CASCADE",
        "ALTER TABLE [Order Lines] ADD FOREIGN KEY (sku) REFERENCES skus (sku) ON DELETE SET NULL",
        "DROP TABLE IF EXISTS [Order Lines]",
    ]
    for sql in ddl:
        parses(sql)


def test_max_columns_are_included_not_indexed() -> None:
    """A MySQL index on a TEXT (its prefix) cannot be an index key in SQL Server."""
    ep, _ = endpoint()
    schema = TableSchema(
        "pages",
        [
            Column("id", PType("int64"), nullable=False),
            Column("site", PType("int32"), nullable=False),
            Column("url", PType("text", length=65535)),
        ],
        ("id",),
    )
    sql = ep.index_ddl(schema, Index("ix_url", ("site", "url")))
    assert sql == "CREATE INDEX ix_url ON pages (site) INCLUDE (url)"
    parses(sql)
    with pytest.raises(ConnectorError, match="SQL Server cannot index url"):
        ep.index_ddl(schema, Index("uq_url", ("site", "url"), unique=True))
    with pytest.raises(ConnectorError, match="index ix_only_url on pages"):
        ep.index_ddl(schema, Index("ix_only_url", ("url",)))


# -- reads ----------------------------------------------------------------------------------
def test_chunk_reads_with_and_without_bounds() -> None:
    ep, rec = endpoint()
    plain(ep, "orders")
    rec.results = [[(6, "a", Decimal("1.00"))], []]
    assert list(ep.read_range(ORDERS, ("id",), (5,), 1000, 500)) == [[(6, "a", Decimal("1.00"))]]
    assert list(ep.read_range(ORDERS, ("id",), None, None, 500)) == []
    two = TableSchema("lines", ORDERS.columns, ("id", "name"))
    plain(ep, "lines")
    list(ep.read_range(two, ("id", "name"), (5, "x"), 10, 500))
    assert sql_of(rec) == [
        "SELECT TOP 1000 orders.id, orders.name, orders.amount \nFROM orders \n"
        "WHERE orders.id > ? ORDER BY orders.id",
        "SELECT orders.id, orders.name, orders.amount \nFROM orders ORDER BY orders.id",
        "SELECT TOP 10 lines.id, lines.name, lines.amount \nFROM lines \n"
        "WHERE lines.id > ? OR lines.id = ? AND lines.name > ? ORDER BY lines.id, lines.name",
    ]
    assert [p for _, p in rec.statements] == [(5,), (), (5, 5, "x")]


def test_key_at_uses_offset_fetch() -> None:
    ep, rec = endpoint()
    plain(ep, "orders")
    rec.results = [[(42,)]]
    assert ep.key_at("orders", ("id",), (1,), (100,), 7) == (42,)
    assert sql_of(rec) == [
        "SELECT orders.id \nFROM orders \nWHERE orders.id > ? AND orders.id <= ? ORDER BY"
        " orders.id\n OFFSET ? ROWS\n FETCH FIRST ? ROWS ONLY"
    ]
    assert rec.statements[0][1] == (1, 100, 7, 1)


def test_counts_are_count_big() -> None:
    ep, rec = endpoint()
    plain(ep, "orders")
    rec.results = [[(3,)], [(0,)]]
    assert ep.count("orders", ("id",), (1,), (9,)) == 3
    assert ep.count_null("orders", ("name", "amount")) == 0
    assert sql_of(rec) == [
        "SELECT COUNT_BIG(*) \nFROM orders \nWHERE orders.id > ? AND orders.id <= ?",
        "SELECT COUNT_BIG(*) \nFROM orders \nWHERE orders.name IS NULL OR orders.amount IS NULL",
    ]


SPECIAL = [
    ("id", "bigint", 0, True, 8, None),
    ("rv", "timestamp", 0, False, 8, None),
    ("node", "hierarchyid", 0, False, 892, None),
    ("doc", "xml", 0, False, -1, None),
    ("at", "datetime2", 7, False, 8, None),
    ("old", "datetime", 3, False, 8, None),
]
SPECIAL_SCHEMA = TableSchema(
    "t2",
    [
        Column("id", PType("int64"), nullable=False),
        Column("rv", PType("int64"), notes=["rowversion copied as its BIGINT value"]),
        Column("node", PType("text"), notes=["HIERARCHYID copied as its text form"]),
        Column("doc", PType("text"), notes=["XML copied as its text form"]),
        Column("at", PType("datetime", precision=7)),
        Column("old", PType("datetime", precision=3)),
    ],
    ("id",),
)
SPECIAL_SELECT = (
    "SELECT t2.id, CAST(t2.rv AS BIGINT) AS rv, t2.node.ToString() AS node,"
    " CAST(t2.doc AS NVARCHAR(MAX)) AS doc, t2.at, t2.old \nFROM t2"
)


def test_rowversion_and_clr_columns_read_as_portable_values() -> None:
    """The table's real types come from sys.columns, once; rowversion reads as BIGINT,
    hierarchyid as its text, XML as NVARCHAR(MAX)."""
    ep, rec = endpoint()
    rec.results = [SPECIAL, []]
    list(ep.read_range(SPECIAL_SCHEMA, ("id",), (5,), 100, 10))
    list(ep.read_range(SPECIAL_SCHEMA, ("id",), (105,), 100, 10))
    assert sql_of(rec) == [
        NATIVES,
        f"SELECT TOP 100 {SPECIAL_SELECT[7:]} \nWHERE t2.id > ? ORDER BY t2.id",
        f"SELECT TOP 100 {SPECIAL_SELECT[7:]} \nWHERE t2.id > ? ORDER BY t2.id",
    ]
    assert rec.statements[0][1] == ("t2",)
    assert ep.native_columns("t2")["at"] == NativeColumn("datetime2", 7, False, 8)


def test_rowversion_watermark_stays_index_friendly() -> None:
    ep, rec = endpoint()
    rec.results = [SPECIAL]
    list(ep.read_changed(SPECIAL_SCHEMA, "rv", 41, 10))
    list(ep.read_changed(SPECIAL_SCHEMA, "rv", -3, 10))  # the overlap went below zero
    list(ep.read_changed(SPECIAL_SCHEMA, "rv", None, 10))
    rec.results = [[(7,)], [(None,)]]
    assert ep.max_value(SPECIAL_SCHEMA, "rv") == 7
    assert ep.max_value(SPECIAL_SCHEMA, "rv") is None
    high = (
        "SELECT CASE WHEN MAX(rv) IS NULL THEN NULL ELSE CAST(MIN_ACTIVE_ROWVERSION() AS"
        " BIGINT) - 1 END FROM t2"
    )
    assert sql_of(rec)[1:] == [
        f"{SPECIAL_SELECT} \nWHERE t2.rv > CAST(? AS BINARY(8))",
        f"{SPECIAL_SELECT} \nWHERE t2.rv > CAST(? AS BINARY(8))",
        f"{SPECIAL_SELECT} \nWHERE t2.rv IS NOT NULL",
        high,
        high,
    ]
    assert [p for _, p in rec.statements[1:3]] == [(41,), (0,)]


def test_datetimeoffset_watermark_compares_as_an_instant() -> None:
    ep, rec = endpoint()
    schema = TableSchema(
        "ev",
        [Column("id", PType("int64")), Column("at", PType("timestamptz", precision=7))],
        ("id",),
    )
    plain(ep, "ev")
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    mark = ep.cursor_value(schema, "at", dt.datetime(2024, 1, 2, 8, 34, 5, 600000, tzinfo=ist))
    list(ep.read_changed(schema, "at", mark, 10))
    list(ep.read_changed(schema, "at", dt.datetime(2024, 1, 2, 3, 4, 5), 10))  # naive: UTC
    assert sql_of(rec) == ["SELECT ev.id, ev.at \nFROM ev \nWHERE ev.at > ?"] * 2
    assert [p for _, p in rec.statements] == [
        ("2024-01-02 03:04:05.6 +00:00",),
        ("2024-01-02 03:04:05",),
    ]
    rec.results = [[(decode_datetimeoffset(struct.pack("<6hI2h", 2024, 5, 1, 1, 0, 0, 0, 2, 0)),)]]
    assert ep.max_value(schema, "at") == dt.datetime(2024, 4, 30, 23, 0, tzinfo=dt.UTC)
    assert rec.sql[-1] == "SELECT max(ev.at) AS max_1 \nFROM ev"


def test_key_parameters_compare_exactly() -> None:
    ep, _ = endpoint()
    assert ep.adapt_param(dt.datetime(2024, 1, 2, 3, 4, 5, 3000)) == "2024-01-02 03:04:05.003"
    assert ep.adapt_param(dt.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02 03:04:05"
    assert ep.adapt_param(dt.time(1, 2, 3, 45)) == "01:02:03.000045"
    assert ep.adapt_param(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert ep.adapt_param(2**64 - 1) == Decimal(2**64 - 1)
    assert ep.adapt_param(5) == 5 and ep.adapt_param(dt.date(2024, 1, 2)) == dt.date(2024, 1, 2)


def test_rows_by_key_respect_the_parameter_limit() -> None:
    ep, rec = endpoint()
    plain(ep, "orders")
    ep.read_rows(ORDERS, ("id",), [(i,) for i in range(1200)])
    assert len(rec.statements) == 3
    assert [len(p) for _, p in rec.statements] == [500, 500, 200]
    assert rec.sql[2].startswith(
        "SELECT orders.id, orders.name, orders.amount \nFROM orders \nWHERE orders.id IN (?, ?,"
    )
    wide_key = tuple(f"k{i}" for i in range(30))
    wide = TableSchema("wide", [Column(k, PType("int32")) for k in wide_key], wide_key)
    plain(ep, "wide")
    rec.statements.clear()
    ep.read_rows(wide, wide_key, [tuple(range(i, i + 30)) for i in range(150)])
    assert all(len(p) <= 2000 for _, p in rec.statements)
    assert sum(len(p) for _, p in rec.statements) == 150 * 30
    rec.statements.clear()
    ranges = [((i,) * 30, (i + 1,) * 30) for i in range(20)]
    ep.read_key_ranges("wide", wide_key, ranges)
    assert len(rec.statements) > 1 and all(len(p) <= 2000 for _, p in rec.statements)
    for sql in rec.sql[:1]:
        parses(sql)


# -- checksums ------------------------------------------------------------------------------
SPECS = [ColumnSpec("id", "int64"), ColumnSpec("name", "varchar")]
ROW = (
    "CONCAT(COALESCE(CAST(id AS VARCHAR(20)), 'N'), '|', COALESCE(CASE WHEN CAST(name AS"
    " NVARCHAR(MAX)) IS NULL THEN NULL ELSE CONCAT(LEN((CAST(name AS NVARCHAR(MAX))) COLLATE"
    " Latin1_General_100_CI_AS_SC + N'.') - 1, ':', CAST(name AS NVARCHAR(MAX))) END, 'N'))"
)
UTF8 = f"CAST(CAST({ROW} AS NVARCHAR(MAX)) COLLATE Latin1_General_100_BIN2_UTF8 AS VARCHAR(MAX))"


def _md5_sum(data: str) -> str:
    return (
        f"SUM(CAST(CONVERT(BIGINT, SUBSTRING(HASHBYTES('MD5', {data}), 9, 8)) &"
        " CAST(1152921504606846975 AS BIGINT) AS DECIMAL(38, 0)))"
    )


def test_chunk_checksum() -> None:
    ep, rec = endpoint((15, 0))
    plain(ep, "orders")
    select = ep.checksum_sql(SPECS)
    assert select == f"COUNT_BIG(*), {_md5_sum(UTF8)}"
    rec.results = [[(2, Decimal(12345))], [(0, None)]]
    assert ep.checksum("orders", ("id",), (1,), (9,), select) == (2, 12345)
    assert ep.checksum("orders", (), None, None, select) == (0, 0)
    assert sql_of(rec) == [
        f"SELECT {select} \nFROM orders \nWHERE orders.id > ? AND orders.id <= ?",
        f"SELECT {select} \nFROM orders",
    ]


def test_checksums_need_2019_except_between_sql_servers() -> None:
    """2016 and 2017 have no UTF-8 collation: the canonical hash (UTF-8) cannot be
    computed there; two SQL Server endpoints hash the same text as UTF-16 instead."""
    ep, _ = endpoint((14, 0))
    with pytest.raises(
        ConnectorError, match=r"need SQL Server 2019 or later.*this server is 14\.0"
    ):
        ep.checksum_sql(SPECS)
    assert ep.fast_hash() == "md5-utf16"
    fast = ep.fast_checksum_sql(ORDERS, SPECS, "md5-utf16")
    assert fast == f"COUNT_BIG(*), {_md5_sum(f'CAST({ROW} AS NVARCHAR(MAX))')}"
    parses(f"SELECT {fast} FROM orders")
    ep, rec = endpoint((14, 0))
    plain(ep, "orders")
    ep.checksum_buckets("orders", [ColumnSpec("id", "int64")], 4, "COUNT_BIG(*)")
    bucket = (
        "CONVERT(BIGINT, SUBSTRING(HASHBYTES('MD5', CAST(COALESCE(CAST(id AS VARCHAR(20)), 'N')"
        " AS NVARCHAR(MAX))), 1, 4)) % 4"
    )
    assert sql_of(rec) == [f"SELECT {bucket}, COUNT_BIG(*) \nFROM orders GROUP BY {bucket}"]


def test_checksums_read_columns_as_reads_give_them() -> None:
    """rowversion as BIGINT, DATETIME at milliseconds (as reads give them); the range
    is inside the derived table, on the raw key columns (index-friendly: a DATETIME key
    is not compared through its CAST)."""
    ep, rec = endpoint()
    rec.results = [SPECIAL, [(1, 2)]]
    ep.checksum("t2", ("id",), (1,), (9,), "COUNT_BIG(*), 2")
    derived = (
        "(SELECT id, CAST(t2.rv AS BIGINT) AS rv, t2.node.ToString() AS node, CAST(t2.doc AS"
        " NVARCHAR(MAX)) AS doc, at, CAST(t2.old AS DATETIME2(3)) AS old \nFROM t2 \nWHERE"
        " {where}) AS t2"
    )
    assert sql_of(rec)[1] == (
        "SELECT COUNT_BIG(*), 2 \nFROM " + derived.format(where="t2.id > ? AND t2.id <= ?")
    )
    rec.statements.clear()
    rec.results = [[(1, 2)]]
    old = (dt.datetime(2024, 1, 2, 3, 4, 5, 3000),)
    ep.checksum("t2", ("old",), old, None, "COUNT_BIG(*)")
    assert sql_of(rec) == ["SELECT COUNT_BIG(*) \nFROM " + derived.format(where="t2.old > ?")]
    assert rec.statements[0][1] == ("2024-01-02 03:04:05.003",)
    rec.statements.clear()
    rec.results = [[(0, 2, 10)]]
    ep.checksum_groups("t2", "id", (1,), (900,), 1, 100, "COUNT_BIG(*), 2")
    group = "FLOOR((id - CAST(1 AS BIGINT)) / CAST(100 AS BIGINT))"
    assert sql_of(rec) == [
        f"SELECT {group}, COUNT_BIG(*), 2 \nFROM "
        + derived.format(where="t2.id > ? AND t2.id <= ?")
        + f" GROUP BY {group}"
    ]


def test_grouped_and_bucket_checksums() -> None:
    ep, rec = endpoint()
    plain(ep, "orders")
    select = ep.checksum_sql(SPECS)
    rec.results = [[(0, 2, 10), (3, 1, 5)], [(1, 4, 7)]]
    assert ep.checksum_groups("orders", "id", (1,), (900,), 2, 100, select) == {
        0: (2, 10),
        3: (1, 5),
    }
    assert ep.checksum_buckets("orders", [ColumnSpec("id", "int64")], 8, select) == {1: (4, 7)}
    group = "FLOOR((id - CAST(2 AS BIGINT)) / CAST(100 AS BIGINT))"
    key_text = "COALESCE(CAST(id AS VARCHAR(20)), 'N')"
    bucket = (
        "CONVERT(BIGINT, SUBSTRING(HASHBYTES('MD5', CAST(CAST("
        f"{key_text} AS NVARCHAR(MAX)) COLLATE Latin1_General_100_BIN2_UTF8 AS VARCHAR(MAX))),"
        " 1, 4)) % 8"
    )
    assert sql_of(rec) == [
        # literals, not parameters: SQL Server matches the GROUP BY with the select list
        f"SELECT {group}, {select} \nFROM orders \nWHERE orders.id > ? AND orders.id <= ?"
        f" GROUP BY {group}",
        f"SELECT {bucket}, {select} \nFROM orders GROUP BY {bucket}",
    ]


def test_bucket_arithmetic_is_the_validators() -> None:
    """CONVERT(BIGINT, first four MD5 bytes) % parts is the hex-digit bucket in Python."""
    for key in [(1,), (123456789,)]:
        text = row_text([ColumnSpec("id", "int64")], key)
        digest = hashlib.md5(text.encode()).digest()
        assert int.from_bytes(digest[:4], "big") % 8 == int(digest.hex()[:8], 16) % 8
        assert hash60(text) == int.from_bytes(digest[8:], "big", signed=True) & (2**60 - 1)


def test_key_summaries_sum_as_bigint() -> None:
    """SUM of an INT is an INT in T-SQL: each key modulo the prime is cast to BIGINT."""
    ep, rec = endpoint()
    plain(ep, "orders")
    rec.results = [[(3, 4)], [(0, 2, 10), (1, 1, 5)]]
    assert ep.key_summary("orders", ("id",), (1,), (9,), True) == (3, 4)
    assert ep.key_buckets("orders", "id", 1, 100) == {0: (2, 10), 1: (1, 5)}
    group = "FLOOR((id - CAST(1 AS BIGINT)) / CAST(100 AS BIGINT))"
    assert sql_of(rec) == [
        "SELECT COUNT_BIG(*), COALESCE(SUM(CAST(id % 1000000007 AS BIGINT)), 0) \nFROM orders"
        " \nWHERE orders.id > ? AND orders.id <= ?",
        f"SELECT {group}, COUNT_BIG(*), SUM(CAST(id % 1000000007 AS BIGINT)) FROM orders"
        f" GROUP BY {group}",
    ]
    assert (2**63 - 1) // (1_000_000_007 - 1) > 9 * 10**9  # rows before a BIGINT sum overflows


def test_row_texts_and_int_div() -> None:
    ep, rec = endpoint()
    plain(ep, "orders")
    rec.results = [[(1, "1|N")]]
    assert ep.row_texts("orders", ("id",), SPECS) == [(1, "1|N")]
    assert sql_of(rec) == [f"SELECT orders.id, {ROW} \nFROM orders ORDER BY orders.id"]
    import sqlalchemy as sa

    t = sa.table("t", sa.column("id"))
    expr = ep.int_div(t.c.id - sa.literal_column("CAST(3 AS BIGINT)"), 10)
    assert str(sa.select(expr).compile(dialect=ep.dialect)) == (
        "SELECT floor((t.id - CAST(3 AS BIGINT)) / CAST(10 AS BIGINT)) AS floor_1 \nFROM t"
    )


# -- writes ---------------------------------------------------------------------------------
SIZES = {
    "boolean": (-7, 1, 0),
    "int8": (5, 5, 0),
    "int8 unsigned": (-6, 3, 0),
    "int16": (5, 5, 0),
    "int16 unsigned": (4, 10, 0),
    "int32": (4, 10, 0),
    "int32 unsigned": (-5, 19, 0),
    "int64": (-5, 19, 0),
    "int64 unsigned": (3, 20, 0),
    "decimal(10, 2)": (3, 10, 2),
    "decimal(19, 0)": (3, 19, 0),
    "decimal(19, 4)": (3, 19, 4),
    "decimal(38, 0)": (3, 38, 0),
    "decimal(38, 10)": (3, 38, 10),
    "decimal(65, 30)": (3, 38, 30),
    "decimal": (3, 38, 10),
    "float32": (7, 7, 0),
    "float64": (8, 15, 0),
    "char(10)": (-8, 10, 0),
    "varchar(3)": (-9, 3, 0),  # from another engine the column is NVARCHAR(6): see below
    "varchar(100)": (-9, 100, 0),
    "varchar(255)": (-9, 255, 0),
    "varchar(16000)": (-9, 0, 0),  # NVARCHAR(max): size 0, streamed
    "text(65535)": (-9, 0, 0),
    "text": (-9, 0, 0),
    "binary(16)": (-2, 16, 0),
    "varbinary(16)": (-3, 16, 0),
    "varbinary(100)": (-3, 100, 0),
    "varbinary(255)": (-3, 255, 0),
    "blob(65535)": (-3, 0, 0),
    "blob": (-3, 0, 0),
    "date": (91, 10, 0),
    "time(0)": (-9, 16, 0),
    "time(6)": (-9, 16, 0),
    "time(7)": (-9, 16, 0),
    "datetime(0)": (93, 19, 0),
    "datetime(3)": (93, 23, 3),
    "datetime(6)": (93, 26, 6),
    "datetime(7)": (-9, 27, 0),  # as text: a datetime binds at microseconds
    "datetime(9)": (-9, 27, 0),
    "timestamptz(6)": (-9, 34, 0),
    "timestamptz(7)": (-9, 34, 0),
    "json": (-9, 0, 0),
    "uuid": (-9, 36, 0),
    "enum('a', 'b')": (-9, 2, 0),
}


def test_input_sizes_cover_every_target_type() -> None:
    ep, _ = endpoint()
    assert [t.ptype for t in tm.TARGETS] == list(SIZES)
    for t in tm.TARGETS:
        assert input_size(ep.adapt_type(ptype_of(t.ptype))[0]) == SIZES[t.ptype], t.ptype
    codes = {
        "SQL_BIT": -7, "SQL_TINYINT": -6, "SQL_SMALLINT": 5, "SQL_INTEGER": 4, "SQL_BIGINT": -5,
        "SQL_DECIMAL": 3, "SQL_REAL": 7, "SQL_DOUBLE": 8, "SQL_WCHAR": -8, "SQL_WVARCHAR": -9,
        "SQL_BINARY": -2, "SQL_VARBINARY": -3, "SQL_TYPE_DATE": 91, "SQL_TYPE_TIMESTAMP": 93,
    }  # fmt: skip
    assert {name: getattr(pyodbc, name) for name in codes} == codes


def _spool(rows: list[tuple[Any, ...]]) -> PickleSpool:
    spool = PickleSpool(Path("/tmp"))
    spool.add(rows)
    spool.close()
    return spool


def test_bulk_load_binds_sizes_and_identity_insert(tmp_path: Path) -> None:
    ep, rec = endpoint()
    schema = TableSchema(
        "orders",
        [
            Column("id", PType("int64"), nullable=False, autoincrement=True),
            Column("name", PType("varchar", length=50)),
            Column("amount", PType("decimal", precision=10, scale=2)),
            Column("at", PType("datetime", precision=3)),
            Column("body", PType("text")),
        ],
        ("id",),
    )
    at = dt.datetime(2024, 1, 2, 3, 4, 5, 123500)
    spool = _spool([(1, "a", Decimal("1.5"), at, "x" * 5000), (2, None, None, None, None)])
    try:
        assert ep.load_spool(schema, spool) == 2
    finally:
        spool.discard()
    assert sql_of(rec) == [
        "SET IDENTITY_INSERT orders ON",
        "INSERT INTO orders (id, name, amount, at, body) VALUES (?, ?, ?, ?, ?)",
        "SET IDENTITY_INSERT orders OFF",
    ]
    assert rec.statements[1][1] == [
        (1, "a", Decimal("1.50"), dt.datetime(2024, 1, 2, 3, 4, 5, 124000), "x" * 5000),
        (2, None, None, None, None),
    ]
    assert rec.inputsizes == [[(-5, 19, 0), (-9, 50, 0), (3, 10, 2), (93, 23, 3), (-9, 0, 0)]]
    assert rec.fast_executemany == [True] and rec.commits == 1


def test_bulk_load_in_bounded_batches_and_without_fast_executemany() -> None:
    ep, rec = endpoint(fast_executemany=False)
    ep.EXECUTEMANY_MIN_ROWS = 1
    ep.EXECUTEMANY_BYTES = 2 * (2 * 19 + 8 + 2 * 50 + 8 + 2 * 10 + 8)  # two rows of ORDERS
    spool = _spool([(i, "n", None) for i in range(5)])
    try:
        assert ep.load_spool(ORDERS, spool) == 5
    finally:
        spool.discard()
    assert [len(p) for _, p in rec.statements] == [2, 2, 1]
    assert rec.fast_executemany == [False, False, False]
    assert len(rec.inputsizes) == 3


def test_value_adapters_round_trip() -> None:
    dec = value_adapter(PType("decimal", precision=38, scale=12))
    assert dec(Decimal("12345678901234567890123456.123456789012")) == Decimal(
        "12345678901234567890123456.123456789012"
    )
    assert dec("1.5") == Decimal("1.500000000000") and dec(2) == Decimal("2.000000000000")
    assert value_adapter(PType("decimal", precision=10, scale=2))(Decimal("0.005")) == Decimal(
        "0.01"
    )  # half up, as SQL Server rounds
    assert value_adapter(PType("decimal"))(Decimal("1.23456789012345")) == Decimal("1.2345678901")
    assert value_adapter(PType("boolean"))(1) is True
    assert value_adapter(PType("int64", unsigned=True))(2**64 - 1) == 2**64 - 1
    text = value_adapter(PType("varchar", length=10))
    assert text("naïve 😀") == "naïve 😀" and text(b"\xf0\x9f\x98\x80") == "😀"
    assert len("😀".encode("utf-16-le")) // 2 == 2  # NVARCHAR(n) counts UTF-16 units
    assert value_adapter(PType("json"))({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert (
        value_adapter(PType("uuid"))(uuid.UUID(int=255)) == "00000000-0000-0000-0000-0000000000ff"
    )
    assert value_adapter(PType("blob"))(bytearray(b"\x00\xff")) == b"\x00\xff"
    assert value_adapter(PType("time", precision=7))(dt.time(1, 2, 3, 4)) == "01:02:03.000004"
    assert value_adapter(PType("date"))(dt.datetime(2024, 1, 2, 3, 4)) == dt.date(2024, 1, 2)
    tz = value_adapter(PType("timestamptz", precision=7))
    minus = dt.timezone(-dt.timedelta(hours=3, minutes=30))
    assert (
        tz(dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=minus)) == "2024-01-02 03:04:05.000006 -03:30"
    )
    assert tz(dt.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02 03:04:05 +00:00"
    stamp7 = value_adapter(PType("datetime", precision=7))  # DATETIME2(7): bound as text
    v = dt.datetime(2024, 1, 2, 3, 4, 5, 999999)
    assert stamp7(v) == "2024-01-02 03:04:05.999999"
    assert stamp7(with_nanos(v, 700)) == "2024-01-02 03:04:05.9999997"
    one = dt.timezone(dt.timedelta(hours=1))
    assert stamp7(with_nanos(v.replace(tzinfo=one), 300)) == "2024-01-02 02:04:05.9999993"
    assert stamp7("2024-01-02T03:04:05.12345678") == "2024-01-02 03:04:05.1234567"
    assert stamp7(dt.date(2024, 1, 2)) == "2024-01-02 00:00:00"
    assert value_adapter(PType("datetime", precision=6))(v) == v  # a timestamp parameter
    assert value_adapter(PType("datetime", precision=0))(v) == dt.datetime(2024, 1, 2, 3, 4, 6)


@pytest.mark.parametrize(
    ("micros", "digits", "want"),
    [
        (123456, 7, 123456),
        (123456, 6, 123456),
        (123456, 3, 123000),
        (123500, 3, 124000),
        (123449, 4, 123400),
        (123450, 4, 123500),
        (500000, 0, 1000000),
        (499999, 0, 0),
    ],
)
def test_datetimes_round_to_the_columns_digits(micros: int, digits: int, want: int) -> None:
    base = dt.datetime(2024, 1, 2, 3, 4, 5)
    got = round_datetime(base.replace(microsecond=micros), digits)
    assert got == base + dt.timedelta(microseconds=want)
    top = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    assert round_datetime(top, 0) == top.replace(microsecond=0)


def test_datetimeoffset_decodes_as_the_driver_sends_it() -> None:
    """SQL_SS_TIMESTAMPOFFSET_STRUCT: six 16-bit fields, the fraction in nanoseconds
    (32-bit unsigned), the offset's hours and minutes (same sign)."""
    raw = struct.pack("<6hI2h", 2024, 3, 16, 10, 35, 18, 123456700, -5, -30)
    assert len(raw) == 20
    value = decode_datetimeoffset(raw)
    assert value == dt.datetime(
        2024, 3, 16, 10, 35, 18, 123456, tzinfo=dt.timezone(-dt.timedelta(hours=5, minutes=30))
    )
    assert value.utcoffset() == -dt.timedelta(hours=5, minutes=30)
    ep, _ = endpoint()
    schema = TableSchema(
        "t",
        [
            Column(
                "at",
                PType("timestamptz", precision=7),
                notes=["offset dropped: values read in UTC"],
            ),
            Column("u", PType("uuid")),
            Column("tod", PType("time", precision=7)),
            Column("ts", PType("datetime", precision=7)),
            Column("flag", PType("boolean")),
            Column("m", PType("decimal", precision=19, scale=4)),
        ],
    )
    convert = ep.row_converter(schema)
    assert convert is not None
    row = convert(
        (raw, "6F9619FF-8B86-D011-B42D-00C04FC964FF", "10:11:12.1234567",
         "2024-01-02 03:04:05.1234567", True, Decimal("1.2300"))
    )  # fmt: skip
    assert row == (
        dt.datetime(2024, 3, 16, 16, 5, 18, 123456, tzinfo=dt.UTC),
        "6f9619ff-8b86-d011-b42d-00c04fc964ff",
        dt.time(10, 11, 12, 123456),
        dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
        True,
        Decimal("1.2300"),
    )  # equal as microseconds; the seventh digit rides along:
    assert [getattr(v, "nanos", None) for v in row[:4]] == [700, None, 700, 700]
    assert convert((None, None, None, None, None, None)) == (None,) * 6
    assert convert(("2024-03-16 10:35:18.1234567 -05:30",) + (None,) * 5)[0] == row[0]
    assert datetime_text(row[0]) == "2024-03-16 16:05:18.1234567 +00:00"
    assert time_text(row[2]) == "10:11:12.1234567" and datetime_text(row[3]).endswith(".1234567")


# -- upserts and deletes --------------------------------------------------------------------
STAGE = [
    "DROP TABLE IF EXISTS [#migrate_stage]",
    "SELECT TOP 0 id, name, amount INTO [#migrate_stage] FROM orders UNION ALL SELECT TOP 0 id,"
    " name, amount FROM orders",
    "INSERT INTO [#migrate_stage] (id, name, amount) VALUES (?, ?, ?)",
]
DIFFERS = (
    "NOT EXISTS (SELECT DATALENGTH(s.name), CAST(s.name AS VARBINARY(MAX)), s.amount INTERSECT"
    " SELECT DATALENGTH(t.name), CAST(t.name AS VARBINARY(MAX)), t.amount)"
)
MERGE = (
    "MERGE INTO orders WITH (HOLDLOCK) AS t USING [#migrate_stage] AS s ON t.id = s.id WHEN"
    f" MATCHED AND {DIFFERS} THEN UPDATE SET t.name = s.name, t.amount = s.amount WHEN NOT"
    " MATCHED THEN INSERT (id, name, amount) VALUES (s.id, s.name, s.amount);"
)


def test_merge_through_a_staging_table() -> None:
    """Stage without IDENTITY, bulk-load it, one MERGE whose row count is the rows changed
    (an unchanged row is not matched by the differs condition)."""
    ep, rec = endpoint()
    spool = _spool([(1, "a", Decimal("1")), (2, "b", None)])
    rec.results = [None, None, None, None, 1]  # the MERGE changed one row
    try:
        assert ep.merge_spool(ORDERS, ("id",), spool) == (2, 1)
    finally:
        spool.discard()
    assert sql_of(rec) == [
        *STAGE,
        "SAVE TRANSACTION migrate_merge",
        MERGE,
        "DROP TABLE [#migrate_stage]",
    ]
    assert rec.inputsizes == [[(-5, 19, 0), (-9, 50, 0), (3, 10, 2)]]
    assert rec.commits == 1


def test_merge_into_an_identity_table_and_without_other_columns() -> None:
    ep, rec = endpoint()
    schema = TableSchema(
        "tags",
        [Column("id", PType("int32"), nullable=False, autoincrement=True)],
        ("id",),
    )
    spool = _spool([(7,)])
    try:
        ep.merge_spool(schema, ("id",), spool)
    finally:
        spool.discard()
    assert sql_of(rec)[3:] == [
        "SET IDENTITY_INSERT tags ON",
        "SAVE TRANSACTION migrate_merge",
        "MERGE INTO tags WITH (HOLDLOCK) AS t USING [#migrate_stage] AS s ON t.id = s.id WHEN"
        " NOT MATCHED THEN INSERT (id) VALUES (s.id);",
        "SET IDENTITY_INSERT tags OFF",
        "DROP TABLE [#migrate_stage]",
    ]


def test_an_identity_column_outside_the_key_is_never_updated() -> None:
    ep, _ = endpoint()
    schema = TableSchema(
        "skus",
        [
            Column("id", PType("int64", unsigned=True), nullable=False, autoincrement=True),
            Column("code", PType("varchar", length=10), nullable=False),
            Column("n", PType("int32")),
        ],
        ("code",),
    )
    merge = ep.upsert_from_stage(schema, ("code",))
    assert merge == (
        "MERGE INTO skus WITH (HOLDLOCK) AS t USING [#migrate_stage] AS s ON t.code = s.code"
        " WHEN MATCHED AND NOT EXISTS (SELECT s.n INTERSECT SELECT t.n) THEN UPDATE SET t.n ="
        " s.n WHEN NOT MATCHED THEN INSERT (id, code, n) VALUES (s.id, s.code, s.n);"
    )
    parses(merge)
    ep._natives["skus"] = {"n": NativeColumn("int", 0, True)}  # an IDENTITY the schema missed
    assert "UPDATE SET" not in ep.upsert_from_stage(schema, ("code",))
    assert ep.create_table_sql(schema).startswith(
        "CREATE TABLE skus (\n\tid DECIMAL(20, 0) NOT NULL IDENTITY, \n"
    )


def test_a_conflicting_unique_index_replaces_the_rows_by_key() -> None:
    ep, rec = endpoint()
    dup = pyodbc.IntegrityError(
        "23000",
        f"[23000] {MS}[SQL Server]Cannot insert duplicate key row in object 'dbo.orders' with"
        " unique index 'uq_name'. The duplicate key value is (a). (2601) (SQLExecDirectW)",
    )
    spool = _spool([(1, "a", None)])
    rec.results = [None, None, None, None, dup, None, [(1,)], None, dup, None, None, None]
    try:
        assert ep.merge_spool(ORDERS, ("id",), spool) == (1, 1)
    finally:
        spool.discard()
    assert sql_of(rec) == [
        *STAGE,
        "SAVE TRANSACTION migrate_merge",
        MERGE,
        "ROLLBACK TRANSACTION migrate_merge",
        "SELECT COUNT_BIG(*) FROM [#migrate_stage] AS s LEFT JOIN orders AS t ON s.id = t.id"
        f" WHERE t.id IS NULL OR {DIFFERS}",
        "SAVE TRANSACTION migrate_upsert",
        MERGE,
        "ROLLBACK TRANSACTION migrate_upsert",
        "DELETE FROM orders WHERE EXISTS (SELECT 1 FROM [#migrate_stage] WHERE"
        " [#migrate_stage].id = orders.id)",
        "INSERT INTO orders (id, name, amount) SELECT id, name, amount FROM [#migrate_stage]",
        "DROP TABLE [#migrate_stage]",
    ]


def test_merge_compares_binary_and_text_exactly() -> None:
    ep, _ = endpoint()
    schema = TableSchema(
        "t",
        [
            Column("id", PType("int32")),
            Column("b", PType("varbinary", length=4)),
            Column("u", PType("uuid")),
            Column("x", PType("float64")),
        ],
        ("id",),
    )
    assert ep.changed_sql(schema, ("id",)) == (
        "SELECT COUNT_BIG(*) FROM [#migrate_stage] AS s LEFT JOIN t AS t ON s.id = t.id WHERE"
        " t.id IS NULL OR NOT EXISTS (SELECT DATALENGTH(s.b), s.b, s.u, s.x INTERSECT SELECT"
        " DATALENGTH(t.b), t.b, t.u, t.x)"
    )
    assert ep.same_value("s.x", "t.x", schema.column("x")) == (
        "EXISTS (SELECT s.x INTERSECT SELECT t.x)"
    )
    parses(ep.changed_sql(schema, ("id",)))


def test_deletes_by_key_and_range() -> None:
    ep, rec = endpoint()
    plain(ep, "orders", "lines")
    rec.results = [500, 2, 3]
    assert ep.delete_keys("orders", ("id",), [(i,) for i in range(502)]) == 502
    rec.results = [2]
    assert ep.delete_keys("lines", ("order_id", "line"), [(1, "a"), (2, "b")]) == 2
    rec.results = [4]
    assert ep.delete_range("orders", ("id",), (10,), (20,)) == 4
    sql = sql_of(rec)
    assert sql[0] == "DELETE FROM orders WHERE id IN (" + ", ".join(["?"] * 500) + ")"
    assert sql[1:] == [
        "DELETE FROM orders WHERE id IN (?, ?)",
        "DELETE FROM lines WHERE EXISTS (SELECT 1 FROM (VALUES (?, ?), (?, ?)) AS k (order_id,"
        " line) WHERE k.order_id = lines.order_id AND k.line = lines.line)",
        "DELETE FROM orders WHERE orders.id > ? AND orders.id <= ?",
    ]
    assert [p for _, p in rec.statements[1:]] == [(500, 501), (1, "a", 2, "b"), (10, 20)]


def test_composite_deletes_are_batched_within_the_parameter_limit() -> None:
    ep, rec = endpoint()
    plain(ep, "t")
    key = ("a", "b", "c", "d", "e")
    ep.delete_keys("t", key, [(i, i, i, i, i) for i in range(1001)])
    assert [len(p) for _, p in rec.statements] == [2000, 2000, 1005]  # 400 keys of 5 columns


# -- row backups and undo (migrate/backup.py) -----------------------------------------------
BACKUP = "migrate_bak_orders"
KEPT = "(migrate_undo, migrate_op, id, name, amount)"


def _undo(action: str, obj: str = "orders", uid: int = 12, **detail: Any) -> dict[str, Any]:
    d = {"backup": BACKUP, "table_columns": ["id", "name", "amount"], "source_table": "orders"}
    return {"id": uid, "action": action, "object": obj, "detail": {**d, **detail}}


def test_a_merge_keeps_the_rows_it_changes_first() -> None:
    """Counted first; then the rows that will change (whole) and the new keys go to the
    backup table tagged with the record's id, in the merge's transaction, before MERGE."""
    from migrate.backup import RowBackup

    ep, rec = endpoint()
    ids: list[int] = []
    backup = RowBackup(BACKUP, ["id", "name", "amount"], ["id"], lambda: ids.append(7) or 7)
    spool = _spool([(1, "a", Decimal("1")), (2, "b", None)])
    rec.results = [None, None, None, [(2,)], None, None, None, 2]
    try:
        assert ep.merge_spool(ORDERS, ("id",), spool, backup=backup) == (2, 2)
    finally:
        spool.discard()
    assert sql_of(rec) == [
        *STAGE,
        "SELECT COUNT_BIG(*) FROM [#migrate_stage] AS s LEFT JOIN orders AS t ON s.id = t.id"
        f" WHERE t.id IS NULL OR {DIFFERS}",
        f"INSERT INTO {BACKUP} {KEPT} SELECT 7, 'u', t.id, t.name, t.amount FROM"
        f" [#migrate_stage] s JOIN orders t ON s.id = t.id WHERE {DIFFERS}",
        f"INSERT INTO {BACKUP} (migrate_undo, migrate_op, id) SELECT 7, 'i', s.id FROM"
        " [#migrate_stage] s LEFT JOIN orders t ON s.id = t.id WHERE t.id IS NULL",
        "SAVE TRANSACTION migrate_merge",
        MERGE,
        "DROP TABLE [#migrate_stage]",
    ]
    assert ids == [7] and rec.commits == 1
    # nothing changes: nothing is kept and no record is written
    ep, rec = endpoint()
    spool = _spool([(1, "a", Decimal("1"))])
    rec.results = [None, None, None, [(0,)], None, 0]
    try:
        assert ep.merge_spool(ORDERS, ("id",), spool, backup=backup) == (1, 0)
    finally:
        spool.discard()
    assert not any(BACKUP in s for s in sql_of(rec)) and ids == [7]


def test_deletes_keep_each_statements_rows_first() -> None:
    from migrate.backup import RowBackup

    ep, rec = endpoint()
    plain(ep, "orders", "lines")
    orders = RowBackup(BACKUP, ["id", "name", "amount"], ["id"], lambda: 8)
    ep.delete_keys("orders", ("id",), [(1,), (2,)], backup=orders)
    lines = RowBackup(
        "migrate_bak_lines", ["order_id", "line", "qty"], ["order_id", "line"], lambda: 9
    )
    ep.delete_keys("lines", ("order_id", "line"), [(1, "a")], backup=lines)
    exists = (
        "EXISTS (SELECT 1 FROM (VALUES (?, ?)) AS k (order_id, line) WHERE k.order_id ="
        " lines.order_id AND k.line = lines.line)"
    )
    assert sql_of(rec) == [
        f"INSERT INTO {BACKUP} {KEPT} SELECT 8, 'd', id, name, amount FROM orders WHERE id IN"
        " (?, ?)",
        "DELETE FROM orders WHERE id IN (?, ?)",
        "INSERT INTO migrate_bak_lines (migrate_undo, migrate_op, order_id, line, qty) SELECT 9,"
        f" 'd', order_id, line, qty FROM lines WHERE {exists}",
        f"DELETE FROM lines WHERE {exists}",
    ]
    assert [p for _, p in rec.statements] == [(1, 2), (1, 2), (1, "a"), (1, "a")]
    assert rec.commits == 2


def test_undo_statements_restore_rows_into_an_identity_table() -> None:
    """IDENTITY_INSERT around the insert, as sys.columns says the table has IDENTITY."""
    ep, _ = endpoint()
    ep._natives["orders"] = {"id": NativeColumn("int", 0, True)}
    put_back = "INSERT INTO orders (id, name, amount) SELECT id, name, amount FROM"
    rows = ep.undo_statements(_undo("restore_rows", key=["id"]))
    assert rows == [
        f"DELETE FROM orders WHERE EXISTS (SELECT 1 FROM {BACKUP} AS b WHERE b.migrate_undo ="
        " 12 AND b.id = orders.id)",
        "SET IDENTITY_INSERT orders ON",
        f"{put_back} {BACKUP} WHERE migrate_undo = 12 AND migrate_op IN ('u', 'd')",
        "SET IDENTITY_INSERT orders OFF",
        f"DELETE FROM {BACKUP} WHERE migrate_undo = 12",
    ]
    emptied = ep.undo_statements(_undo("emptied_table"))
    assert emptied == [
        "DELETE FROM orders",
        "SET IDENTITY_INSERT orders ON",
        f"{put_back} {BACKUP} WHERE migrate_undo = 12 AND migrate_op = 'd'",
        "SET IDENTITY_INSERT orders OFF",
        f"DELETE FROM {BACKUP} WHERE migrate_undo = 12",
    ]
    ep._natives["orders"] = {"id": NativeColumn("int", 0, False)}
    assert "SET IDENTITY_INSERT orders ON" not in ep.undo_statements(_undo("emptied_table"))
    two = ep.undo_statements(_undo("restore_rows", obj="lines", key=["order_id", "line"]))
    assert two[0] == (
        f"DELETE FROM lines WHERE EXISTS (SELECT 1 FROM {BACKUP} AS b WHERE b.migrate_undo = 12"
        " AND b.order_id = lines.order_id AND b.line = lines.line)"
    )
    for sql in [*rows, *emptied, *two]:
        parses(sql)


def test_undo_statements_create_a_replaced_table_again() -> None:
    from migrate.backup import schema_to_json

    ep, _ = endpoint()
    schema = TableSchema(
        "orders",
        [
            Column("id", PType("int32"), nullable=False, autoincrement=True),
            Column("name", PType("varchar", length=50)),
            Column("amount", PType("decimal", precision=10, scale=2)),
        ],
        ("id",),
        [Index("ix_name", ("name",), unique=True)],
        [ForeignKey("fk_amount", ("amount",), "rates", ("v",))],
    )
    sql = ep.undo_statements(_undo("replaced_table", uid=13, schema=schema_to_json(schema)))
    assert sql == [
        "DROP TABLE IF EXISTS orders",
        "CREATE TABLE orders (\n\tid INTEGER NOT NULL IDENTITY, \n\tname NVARCHAR(50) COLLATE"
        " Latin1_General_100_BIN2 NULL, \n\tamount DECIMAL(10, 2) NULL, \n\tPRIMARY KEY (id)\n)",
        "SET IDENTITY_INSERT orders ON",
        f"INSERT INTO orders (id, name, amount) SELECT id, name, amount FROM {BACKUP} WHERE"
        " migrate_undo = 13 AND migrate_op = 'd'",
        "SET IDENTITY_INSERT orders OFF",
        "CREATE UNIQUE INDEX ix_name ON orders (name) WHERE name IS NOT NULL",
        "ALTER TABLE orders ADD CONSTRAINT fk_amount FOREIGN KEY (amount) REFERENCES rates (v)",
        f"DELETE FROM {BACKUP} WHERE migrate_undo = 13",
    ]
    for s in sql:
        parses(s)
    assert ep.undo_statements(_undo("drop_table")) == ["DROP TABLE IF EXISTS orders"]
    dropped = _undo("drop_backup_table", obj=BACKUP, table="orders")
    assert ep.undo_statements(dropped) == ep.cleanup_statements(dropped)
    assert ep.cleanup_statements(dropped) == [f"DROP TABLE IF EXISTS {BACKUP}"]
    assert ep.cleanup_statements(_undo("restore_rows", key=["id"])) == []
    assert (
        ep.undo_statements({"id": 1, "action": "restore_watermark", "object": "o", "detail": {}})
        == []
    )


def test_a_table_named_like_an_alias_is_not_hidden_by_it() -> None:
    """Inside ``EXISTS (SELECT ... AS b ...)`` the alias ``b`` hides a table named b:
    ``b.id = b.id`` would match, and delete, every row. Such a table gets another alias."""
    ep, rec = endpoint()
    plain(ep, "b", "k")
    for name in ("b", "k"):
        ep.delete_keys(name, ("id", "n"), [(1, 2)])
    two = ep.undo_statements(_undo("restore_rows", obj="b", key=["id", "n"]))
    assert sql_of(rec) == [
        "DELETE FROM b WHERE EXISTS (SELECT 1 FROM (VALUES (?, ?)) AS k (id, n) WHERE"
        " k.id = b.id AND k.n = b.n)",
        "DELETE FROM k WHERE EXISTS (SELECT 1 FROM (VALUES (?, ?)) AS k_k (id, n) WHERE"
        " k_k.id = k.id AND k_k.n = k.n)",
    ]
    assert two[0] == (
        f"DELETE FROM b WHERE EXISTS (SELECT 1 FROM {BACKUP} AS b_b WHERE b_b.migrate_undo"
        " = 12 AND b_b.id = b.id AND b_b.n = b.n)"
    )
    parses(two[0])


# -- TIME values that are not a time of day -------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (dt.timedelta(hours=25), "25:00:00"),
        (dt.timedelta(hours=838, minutes=59, seconds=59), "838:59:59"),
        (dt.timedelta(days=1), "24:00:00"),
        (-dt.timedelta(hours=1), "-01:00:00"),
        (-dt.timedelta(hours=838, minutes=59, seconds=59), "-838:59:59"),
        (-dt.timedelta(microseconds=1), "-00:00:00.000001"),
    ],
)
def test_a_time_outside_a_day_fails_naming_the_value(value: dt.timedelta, text: str) -> None:
    """MySQL's TIME (-838:59:59 to 838:59:59, read as a timedelta) does not fit SQL
    Server's TIME: one line naming the value, never a wrapped time or an OverflowError."""
    expected = (
        f"TIME value {text} does not fit SQL Server's TIME, which holds"
        " 00:00:00–23:59:59.9999999 (the value is not changed silently)"
    )
    for adapt in (value_adapter(PType("time", precision=0)), time_text):
        with pytest.raises(ConnectorError) as err:
            adapt(value)
        assert str(err.value) == expected
    ep, _ = endpoint()
    with pytest.raises(ConnectorError, match=r"^t: TIME value "):
        ep.adapt_param(value)
    convert = ep.row_converter(TableSchema("t", [Column("tod", PType("time", precision=0))]))
    assert convert is not None
    with pytest.raises(ConnectorError, match=r"^TIME value "):
        convert((value,))


def test_times_of_a_day_from_mysql_load_exactly() -> None:
    adapt = value_adapter(PType("time", precision=6))
    assert adapt(dt.timedelta(0)) == "00:00:00.000000"
    assert adapt(dt.timedelta(hours=23, minutes=59, seconds=59, microseconds=999999)) == (
        "23:59:59.999999"
    )
    ep, _ = endpoint()
    assert ep.adapt_param(dt.timedelta(hours=1, microseconds=5)) == "01:00:00.000005"


def test_a_bulk_load_stops_at_a_time_outside_a_day_naming_the_column() -> None:
    ep, rec = endpoint()
    schema = TableSchema(
        "shifts",
        [Column("id", PType("int32")), Column("length", PType("time", precision=0))],
        ("id",),
    )
    spool = _spool([(1, dt.timedelta(hours=8)), (2, dt.timedelta(hours=30))])
    try:
        with pytest.raises(ConnectorError) as err:
            ep.load_spool(schema, spool)
    finally:
        spool.discard()
    assert str(err.value) == (
        "t: shifts.length: TIME value 30:00:00 does not fit SQL Server's TIME, which holds"
        " 00:00:00–23:59:59.9999999 (the value is not changed silently)"
    )
    assert not [s for s in rec.sql if s.startswith("INSERT")] and rec.commits == 0


# -- the seventh fractional digit ------------------------------------------------------------
def test_datetime2_decodes_with_its_seventh_digit() -> None:
    """SQL_TIMESTAMP_STRUCT as the driver sends DATETIME2 as binary: six 16-bit fields and
    the fraction in nanoseconds (unsigned 32-bit)."""
    raw = struct.pack("<6hI", 2024, 1, 2, 3, 4, 5, 123456700)
    assert len(raw) == 16
    value = decode_timestamp(raw)
    assert isinstance(value, DateTime7) and value.nanos == 700
    assert value == dt.datetime(2024, 1, 2, 3, 4, 5, 123456)  # the microsecond value
    assert hash(value) == hash(dt.datetime(2024, 1, 2, 3, 4, 5, 123456))
    assert value.isoformat() == "2024-01-02T03:04:05.123456"
    assert datetime_text(value) == "2024-01-02 03:04:05.1234567"
    whole = decode_timestamp(struct.pack("<6hI", 9999, 12, 31, 23, 59, 59, 999999000))
    assert type(whole) is dt.datetime and whole == dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    assert decode_timestamp(None) is None


def test_datetime_and_smalldatetime_decode_from_their_tds_form() -> None:
    """A DATETIME reaches the converter as TDS sends it (days since 1900, 1/300 s ticks;
    pyodbc#448 shows these bytes for 2018-08-22 15:45:32.123); SMALLDATETIME as days and
    minutes. Milliseconds as SQL Server shows them (and CAST AS DATETIME2(3) gives)."""
    assert decode_timestamp(b"D\xa9\x00\x00\xf5\xb2\x03\x01") == dt.datetime(
        2018, 8, 22, 15, 45, 32, 123000
    )
    last = struct.pack("<iI", 2958463, 300 * 86400 - 1)  # 9999-12-31 23:59:59.997
    assert decode_timestamp(last) == dt.datetime(9999, 12, 31, 23, 59, 59, 997000)
    assert decode_timestamp(struct.pack("<iI", -53690, 2)) == dt.datetime(1753, 1, 1, 0, 0, 0, 7000)
    assert decode_timestamp(struct.pack("<HH", 45000, 61)) == dt.datetime(2023, 3, 17, 1, 1)
    with pytest.raises(ValueError, match="12 bytes"):
        decode_timestamp(bytes(12))


def test_time_decodes_with_its_seventh_digit() -> None:
    """SQL_SS_TIME2_STRUCT: hour, minute, second (16-bit), two bytes of padding, the
    fraction in nanoseconds (unsigned 32-bit)."""
    raw = struct.pack("<3H2xI", 23, 59, 59, 999999900)
    assert len(raw) == 12
    value = decode_time(raw)
    assert isinstance(value, Time7) and value.nanos == 900
    assert value == dt.time(23, 59, 59, 999999)
    assert time_text(value) == "23:59:59.9999999"
    assert decode_time(struct.pack("<3H2xI", 1, 2, 3, 0)) == dt.time(1, 2, 3)
    assert decode_time(None) is None
    raw = struct.pack("<6hI2h", 2024, 3, 16, 10, 35, 18, 100, 5, 30)
    dto = decode_datetimeoffset(raw)
    assert dto is not None and dto.microsecond == 0 and nanos(dto) == 100
    assert datetime_text(dto) == "2024-03-16 10:35:18.0000001 +05:30"


def nanos(v: Any) -> int:
    return getattr(v, "nanos", 0)


def test_seven_digit_values_survive_a_spool_and_utc() -> None:
    """Spools pickle rows; a DATETIMEOFFSET is read in UTC: the digit is kept through both."""
    import pickle

    stamp = decode_timestamp(struct.pack("<6hI", 2024, 1, 2, 3, 4, 5, 123456700))
    tod = decode_time(struct.pack("<3H2xI", 1, 2, 3, 400))
    back = pickle.loads(pickle.dumps((stamp, tod)))
    assert back == (stamp, tod) and [nanos(v) for v in back] == [700, 400]
    ep, _ = endpoint()
    convert = ep.row_converter(TableSchema("t", [Column("at", PType("timestamptz", precision=7))]))
    assert convert is not None
    raw = struct.pack("<6hI2h", 2024, 3, 16, 10, 35, 18, 123456700, -5, -30)
    (utc,) = convert((decode_datetimeoffset(raw),))
    assert utc.tzinfo == dt.UTC and datetime_text(utc) == "2024-03-16 16:05:18.1234567 +00:00"
    mark = ep.cursor_value(
        TableSchema("t", [Column("at", PType("datetime", precision=7))]), "at", utc
    )
    assert mark.tzinfo is None and nanos(mark) == 700


SEVEN = decode_timestamp(struct.pack("<6hI", 2024, 1, 2, 3, 4, 5, 123456700))
EVENTS = TableSchema(
    "events",
    [
        Column("at", PType("datetime", precision=7), nullable=False),
        Column("id", PType("int32"), nullable=False),
        Column("tod", PType("time", precision=7)),
    ],
    ("at", "id"),
)


def test_chunk_boundaries_and_key_parameters_keep_the_seventh_digit() -> None:
    """A key read back equals the stored one: the chunk boundary (key > v) does not
    re-read the last row, the composite prefix (at = v AND id > w) matches, and
    deletes by key find the row."""
    ep, rec = endpoint()
    plain(ep, "events")
    list(ep.read_range(EVENTS, ("at", "id"), (SEVEN, 5), 100, 10))
    rec.results = [1]
    ep.delete_keys("events", ("at", "id"), [(SEVEN, 5)])
    ep.read_rows(EVENTS, ("at", "id"), [(SEVEN, 5)])
    text = "2024-01-02 03:04:05.1234567"
    assert sql_of(rec) == [
        "SELECT TOP 100 events.at, events.id, events.tod \nFROM events \nWHERE events.at > ?"
        " OR events.at = ? AND events.id > ? ORDER BY events.at, events.id",
        "DELETE FROM events WHERE EXISTS (SELECT 1 FROM (VALUES (?, ?)) AS k (at, id) WHERE"
        " k.at = events.at AND k.id = events.id)",
        "SELECT events.at, events.id, events.tod \nFROM events \nWHERE events.at = ? AND"
        " events.id = ?",
    ]
    assert [p for _, p in rec.statements] == [(text, text, 5), (text, 5), (text, 5)]
    assert ep.adapt_param(decode_time(struct.pack("<3H2xI", 1, 2, 3, 400))) == ("01:02:03.0000004")


def test_sql_server_to_sql_server_copies_keep_every_digit() -> None:
    """DATETIME2(7), TIME(7) and DATETIMEOFFSET(7) are bound as text with all seven
    digits (a datetime parameter would carry microseconds only)."""
    ep, rec = endpoint()
    tod = decode_time(struct.pack("<3H2xI", 10, 11, 12, 123456700))
    spool = _spool([(SEVEN, 1, tod)])
    try:
        ep.load_spool(EVENTS, spool)
    finally:
        spool.discard()
    assert rec.inputsizes == [[(-9, 27, 0), (4, 10, 0), (-9, 16, 0)]]
    assert rec.statements[0][1] == [("2024-01-02 03:04:05.1234567", 1, "10:11:12.1234567")]
    tz = value_adapter(PType("timestamptz", precision=7))
    dto = decode_datetimeoffset(struct.pack("<6hI2h", 2024, 3, 16, 10, 35, 18, 100, 0, 0))
    assert tz(dto) == "2024-03-16 10:35:18.0000001 +00:00"


def test_checksums_cut_the_seventh_digit_and_the_fast_hash_keeps_it() -> None:
    """The canonical text has microseconds (other engines): DATETIME2(7) is written
    through style 121 and cut (not rounded) to 26 characters, as reads cut it, key or
    not. Between two SQL Servers the fast hash writes all seven digits."""
    ep, _ = endpoint()
    specs = [
        ColumnSpec("at", "datetime"),
        ColumnSpec("tz", "timestamptz"),
        ColumnSpec("tod", "time", time_unit="ms"),
    ]
    canonical = ep.checksum_sql(specs)
    assert "LEFT(CONVERT(CHAR(27), CAST(at AS DATETIME2(7)), 121), 26)" in canonical
    assert (
        "LEFT(CONVERT(CHAR(27), CAST(SWITCHOFFSET(tz, '+00:00') AS DATETIME2(7)), 121), 26)"
        in canonical
    )
    tod6 = "LEFT(CONVERT(VARCHAR(16), CAST(tod AS TIME(7))), 15)"
    assert f"LEFT({tod6}, LEN({tod6}) - 3)" in canonical
    fast = ep.fast_checksum_sql(EVENTS, specs, "md5-utf16")
    assert "COALESCE(CONVERT(CHAR(27), CAST(at AS DATETIME2(7)), 121), 'N')" in fast
    tod7 = "CONVERT(VARCHAR(16), CAST(tod AS TIME(7)))"
    assert f"LEFT({tod7}, LEN({tod7}) - 4)" in fast and "26)" not in fast
    parses(f"SELECT {canonical} FROM t")
    parses(f"SELECT {fast} FROM t")
    assert ep.checksum_sql(specs) == canonical  # the fast hash changed its own render only


# -- text lengths from other engines -----------------------------------------------------------
def test_text_from_another_engine_gets_room_for_utf16() -> None:
    """NVARCHAR(n) counts UTF-16 units: n characters of another engine (emoji included)
    need 2n. SQL Server to SQL Server keeps n (the source held n units)."""
    ep, _ = endpoint()
    source = TableSchema(
        "t",
        [
            Column("id", PType("int32"), nullable=False),
            Column("name", PType("varchar", length=10)),
            Column("code", PType("char", length=3)),
            Column("size", PType("enum", values=("s", "xl"))),
            Column("note", PType("varchar", length=2500)),
            Column("body", PType("varchar", length=5000)),
        ],
        ("id",),
    )
    target = ep.target_schema(source, MYSQL)
    assert ep.create_table_sql(target) == (
        "CREATE TABLE t (\n"
        "\tid INTEGER NOT NULL, \n"
        "\tname NVARCHAR(20) COLLATE Latin1_General_100_BIN2 NULL, \n"
        "\tcode NCHAR(3) COLLATE Latin1_General_100_BIN2 NULL, \n"
        "\tsize NVARCHAR(4) COLLATE Latin1_General_100_BIN2 NULL, \n"
        "\tnote NVARCHAR(4000) COLLATE Latin1_General_100_BIN2 NULL, \n"
        "\tbody NVARCHAR(max) COLLATE Latin1_General_100_BIN2 NULL, \n"
        "\tPRIMARY KEY (id)\n"
        ")"
    )
    assert {c.name: c.notes for c in target.columns if c.notes} == {
        "code": ["NCHAR counts UTF-16 units: n characters outside the BMP do not fit"],
        "size": ["allowed values not enforced"],
        "note": [
            "NVARCHAR(4000) counts UTF-16 units: 2500 characters fit with at most 1500 of them"
            " outside the BMP"
        ],
        "body": ["VARCHAR(5000) stored as NVARCHAR(max)"],
    }
    assert [s[1] for s in ep.input_sizes(target)] == [10, 20, 3, 4, 4000, 0]
    assert len("😀" * 10) == 10 and len(("😀" * 10).encode("utf-16-le")) // 2 == 20
    same = ep.target_schema(source, ep.capabilities)
    assert [str(c.type) for c in same.columns[1:3]] == ["varchar(10)", "char(3)"]
    assert not any(c.notes for c in same.columns[1:3])


# -- float text ------------------------------------------------------------------------------
def _sci(text: str) -> tuple[int, int]:
    """REPLACE(LEFT(s, PATINDEX('%[Ee]%', s) - 1), '.', '') AS BIGINT, and the exponent."""
    p = text.upper().index("E")
    return int(text[:p].replace(".", "")), int(text[p + 1 :])


def _round_away(m: int, places: int) -> int:
    """T-SQL ROUND(bigint, -places): half away from zero (m is never negative here)."""
    unit = 10**places
    q, r = divmod(m, unit)
    return (q + (1 if 2 * r >= unit else 0)) * unit


def _place(d: str, pp: int) -> str:
    """MSSQLRender.place: REPLICATE and CONCAT, STUFF at pp + 1."""
    if pp <= 0:
        return "0." + "0" * -pp + d
    if pp < len(d):
        return d[:pp] + "." + d[pp:]
    return d + "0" * (pp - len(d))


def emulated_float_text(x: float, kind: str) -> str:
    """MSSQLRender.float step by step, with SQL Server's style 2 and style 3 taken as
    correctly rounded 16 and 17 significant digits (``%.15e``, ``%.16e``) and its
    text-to-float conversion as exact (Python's float())."""
    if x == 0:
        return "0"
    a = abs(x)
    m17, e17 = _sci(f"{a:.16e}")  # CONVERT(VARCHAR(32), a, 3)
    if kind == "float32":
        q, r = divmod(m17, 10**11)
        digits = q + (1 if r > 5 * 10**10 or (r == 5 * 10**10 and q % 2 == 1) else 0)
        shift = e17 - 5
    else:
        s16 = f"{a:.15e}"  # CONVERT(VARCHAR(32), a, 2)
        r15 = _round_away(m17, 2)
        if float(f"{r15}E{e17 - 16}") == a:
            digits = r15
        elif float(s16) == a:
            digits = _sci(s16)[0] * 10
        else:
            digits = m17
        shift = e17 - 16
    text = str(digits)  # CAST(... AS VARCHAR(20))
    d = text.rstrip("0")  # REPLACE(RTRIM(REPLACE(text, '0', ' ')), ' ', '0')
    return ("-" if x < 0 else "") + _place(d, len(text) + shift)


def _float32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


FLOAT_EDGES = [
    0.1, 0.2, 0.3, 0.1 + 0.2, 1 / 3, 2 / 3, 1.0, 100.0, 123.0, 1.5, -0.5, 1e-7, 1.5e-7,
    1e15, 1e16, 1e17, 1e22, 1e23, 9.999999999999999e22, 1234567890123455.0,
    1234567890123456.5, 9007199254740993.0, 2.2250738585072014e-308, 1.7976931348623157e308,
    -1.7976931348623157e308, 5e-308, 0.30000000000000004, 123456.789, 99999999999999.99,
    9.9999999999999995, 9.999999999999998, 1e-300, 4.35, 2.675, 1e300 * 1.7,
]  # fmt: skip


def test_float_text_algorithm_is_the_canonical_text() -> None:
    """The steps of MSSQLRender.float, emulated, give canonical.float_text for random
    doubles (any normal bit pattern), round decimals, and edge values; float32 values
    (six digits, half to even) likewise. SQL Server has no subnormals, NaN or infinity."""
    from validators.canonical import float_text

    rng = random.Random(6)
    values = list(FLOAT_EDGES)
    while len(values) < 600:
        v = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isfinite(v) and abs(v) >= 2.2250738585072014e-308:
            values.append(v)
        values.append(round(rng.uniform(-1e6, 1e6), rng.randint(0, 10)))
    for v in values:
        assert emulated_float_text(v, "float64") == float_text(v, "float64"), repr(v)
        assert emulated_float_text(-v, "float64") == float_text(-v, "float64"), repr(v)
    singles = [_float32(v) for v in values if 1.2e-38 < abs(v) < 3.4e38]
    singles += [123456.5, 1234565.0, 1234575.0, 0.5, 16777215.0, 3.4028234663852886e38]
    for v in singles:
        assert emulated_float_text(v, "float32") == float_text(v, "float32"), repr(v)
    assert emulated_float_text(0.0, "float64") == "0"


@pytest.mark.parametrize("kind", ["float64", "float32"])
def test_float_text_sql_parses_and_is_null_for_null(kind: str) -> None:
    """The float expression (alone and under both float rules) is valid T-SQL; a NULL
    gives NULL (no CONCAT of NULLs into ''), which the part turns into N."""
    ep, _ = endpoint()
    r = ep.render()
    sql = r.float("[x]", kind)
    assert sql.startswith("CASE WHEN [x] = 0 THEN '0' WHEN [x] <> 0 THEN CONCAT(") and sql.endswith(
        " END"
    )
    assert "CAST(100000000000 AS BIGINT)" in sql or kind == "float64"
    parses(f"SELECT {sql} FROM t")
    for spec in (
        ColumnSpec("x", kind, float_abs=0.01),
        ColumnSpec("x", kind, float_rel=1e-6),
    ):
        parses(f"SELECT {r.part(spec)} FROM t")
    positional = r.positional("'1.5e-07'")
    parses(f"SELECT {positional}")


# -- VARCHAR keys compared without converting the column --------------------------------------
CODES = [
    ("code", "varchar", 0, False, 20, "SQL_Latin1_General_CP1_CI_AS"),
    ("part", "char", 0, False, 4, "Greek_CI_AS"),
    ("name", "nvarchar", 0, False, 100, "Latin1_General_100_BIN2"),
    ("n", "int", 0, False, 4, None),
]
CODES_SCHEMA = TableSchema(
    "codes",
    [
        Column("code", PType("varchar", length=20), nullable=False),
        Column("part", PType("char", length=4), nullable=False),
        Column("name", PType("varchar", length=50)),
        Column("n", PType("int32")),
    ],
    ("code", "part"),
)
CODE = "CAST(? COLLATE SQL_Latin1_General_CP1_CI_AS AS VARCHAR(8000))"
PART = "CAST(? COLLATE Greek_CI_AS AS VARCHAR(8000))"


def test_varchar_key_parameters_are_cast_to_the_columns_type() -> None:
    """pyodbc binds text as NVARCHAR; against a VARCHAR column with a SQL_ collation that
    converts the column on every row (CONVERT_IMPLICIT: a scan per chunk). Range
    predicates, IN lists and delete VALUES cast the parameter to the column's own type,
    in its collation (its code page); NVARCHAR and other keys stay plain."""
    ep, rec = endpoint()
    rec.results = [CODES, [], [(0,)], [], []]
    list(ep.read_range(CODES_SCHEMA, ("code", "part"), ("a", "b"), 10, 10))
    ep.count("codes", ("code", "part"), ("a", "b"), ("c", "d"))
    ep.read_rows(CODES_SCHEMA, ("code", "part"), [("a", "b")])
    one = TableSchema("codes", CODES_SCHEMA.columns, ("code",))
    ep.read_rows(one, ("code",), [("a",), ("b",)])
    rec.results = [2, 1, 1]
    ep.delete_keys("codes", ("code",), [("a",), ("b",)])
    ep.delete_keys("codes", ("code", "part"), [("a", "b")])
    ep.delete_keys("codes", ("name",), [("x",)])
    select = "SELECT codes.code, codes.part, codes.name, codes.n \nFROM codes \nWHERE "
    assert sql_of(rec)[1:] == [
        f"SELECT TOP 10 codes.code, codes.part, codes.name, codes.n \nFROM codes \nWHERE"
        f" codes.code > {CODE} OR codes.code = {CODE} AND codes.part > {PART} ORDER BY"
        " codes.code, codes.part",
        f"SELECT COUNT_BIG(*) \nFROM codes \nWHERE (codes.code > {CODE} OR codes.code = {CODE}"
        f" AND codes.part > {PART}) AND (codes.code < {CODE} OR codes.code = {CODE} AND"
        f" codes.part < {PART} OR codes.code = {CODE} AND codes.part = {PART})",
        f"{select}codes.code = {CODE} AND codes.part = {PART}",
        f"{select}codes.code IN ({CODE}, {CODE})",
        f"DELETE FROM codes WHERE codes.code IN ({CODE}, {CODE})",
        f"DELETE FROM codes WHERE EXISTS (SELECT 1 FROM (VALUES ({CODE}, {PART})) AS k (code,"
        " part) WHERE k.code = codes.code AND k.part = codes.part)",
        "DELETE FROM codes WHERE codes.name IN (?)",
    ]
    assert rec.statements[1][1] == ("a", "a", "b")
    assert rec.statements[6][1] == ("a", "b")


def test_a_varchar_max_key_and_a_varchar_watermark_are_cast_too() -> None:
    ep, rec = endpoint()
    rec.results = [
        [("k", "varchar", 0, False, -1, None), ("at", "varchar", 0, False, 30, None)],
        [(0,)],
    ]
    schema = TableSchema(
        "docs", [Column("k", PType("text")), Column("at", PType("varchar", length=30))], ("k",)
    )
    ep.count("docs", ("k",), ("a",), None)
    list(ep.read_changed(schema, "at", "2024-01-01", 10))
    assert sql_of(rec)[1:] == [
        "SELECT COUNT_BIG(*) \nFROM docs \nWHERE docs.k > CAST(? AS VARCHAR(max))",
        "SELECT docs.k, docs.at \nFROM docs \nWHERE docs.at > CAST(? AS VARCHAR(8000))",
    ]


def test_a_rowversion_key_compares_as_binary_8_inside_checksums() -> None:
    """A checksum's range is on the raw key column (inside the derived table that reads a
    rowversion as BIGINT): its number is compared as BINARY(8), in order and seekable."""
    ep, rec = endpoint()
    rec.results = [SPECIAL, [(1, 2)], 1]
    ep.checksum("t2", ("rv",), (41,), (99,), "COUNT_BIG(*)")
    ep.delete_keys("t2", ("rv", "id"), [(41, 1)])
    rv = "CAST(? AS BINARY(8))"
    assert sql_of(rec)[1:] == [
        "SELECT COUNT_BIG(*) \nFROM (SELECT id, CAST(t2.rv AS BIGINT) AS rv, t2.node.ToString()"
        " AS node, CAST(t2.doc AS NVARCHAR(MAX)) AS doc, at, CAST(t2.old AS DATETIME2(3)) AS old"
        f" \nFROM t2 \nWHERE t2.rv > {rv} AND t2.rv <= {rv}) AS t2",
        f"DELETE FROM t2 WHERE EXISTS (SELECT 1 FROM (VALUES ({rv}, ?)) AS k (rv, id) WHERE"
        " k.rv = t2.rv AND k.id = t2.id)",
    ]
    assert [p for _, p in rec.statements[1:]] == [(41, 99), (41, 1)]


# -- bucket reads hash what bucket checksums hash ----------------------------------------------
def test_read_buckets_hash_a_datetime_key_as_checksum_buckets_do() -> None:
    """checksum_buckets reads a legacy DATETIME through CAST(... AS DATETIME2(3)) (what
    reads give); read_buckets must hash the same value, or a differing bucket's rows are
    looked for in the wrong bucket. The rows themselves are read as reads give them."""
    ep, rec = endpoint()
    rec.results = [SPECIAL, [(1, 2, 3)]]
    key = [ColumnSpec("old", "datetime"), ColumnSpec("id", "int64")]
    ep.checksum_buckets("t2", key, 8, "COUNT_BIG(*), 2")
    ep.read_buckets(SPECIAL_SCHEMA, key, 8, [1, 5])
    bucket = ep._bucket(key, 8).name
    assert "CONVERT(CHAR(27), CAST(old AS DATETIME2(7)), 121)" in bucket
    checksum_source = (
        "(SELECT id, CAST(t2.rv AS BIGINT) AS rv, t2.node.ToString() AS node, CAST(t2.doc AS"
        " NVARCHAR(MAX)) AS doc, at, CAST(t2.old AS DATETIME2(3)) AS old \nFROM t2) AS t2"
    )
    assert sql_of(rec)[1:] == [
        f"SELECT {bucket}, COUNT_BIG(*), 2 \nFROM {checksum_source} GROUP BY {bucket}",
        "SELECT t2.migrate_r0 AS id, t2.migrate_r1 AS rv, t2.migrate_r2 AS node,"
        " t2.migrate_r3 AS doc, t2.migrate_r4 AS at, t2.migrate_r5 AS old \nFROM (SELECT"
        " t2.id AS migrate_r0, CAST(t2.rv AS BIGINT) AS migrate_r1, t2.node.ToString() AS"
        " migrate_r2, CAST(t2.doc AS NVARCHAR(MAX)) AS migrate_r3, t2.at AS migrate_r4,"
        " t2.old AS migrate_r5, CAST(t2.old AS DATETIME2(3)) AS old, t2.id AS id \nFROM t2)"
        f" AS t2 \nWHERE {bucket} IN (?, ?)",
    ]
    plain(ep, "orders")
    rec.statements.clear()
    ep.read_buckets(ORDERS, [ColumnSpec("id", "int64")], 4, [0])
    assert rec.sql[0].startswith(
        "SELECT orders.id, orders.name, orders.amount \nFROM orders \nWHERE CONVERT(BIGINT,"
    )


# -- parameter arrays sized by the row -----------------------------------------------------------
def test_rows_per_executemany_follow_the_row_length() -> None:
    """pyodbc's fast_executemany allocates row length x rows at once: 64 MiB of
    parameters a call (2 bytes a character plus an 8-byte indicator a column), at least
    100 rows."""
    ep, _ = endpoint()
    narrow = ep.input_sizes(ORDERS)  # BIGINT, NVARCHAR(50), DECIMAL(10, 2)
    assert ep.rows_per_call(narrow) == (64 << 20) // ((2 * 19 + 8) + (2 * 50 + 8) + (2 * 10 + 8))
    wide = TableSchema("w", [Column(f"c{i}", PType("varchar", length=4000)) for i in range(100)])
    assert ep.rows_per_call(ep.input_sizes(wide)) == 100
    blobs = TableSchema("b", [Column("b", PType("blob")), Column("t", PType("text"))])
    assert ep.rows_per_call(ep.input_sizes(blobs)) == (64 << 20) // 16  # streamed values


# -- text length of the canonical row -----------------------------------------------------------
def test_text_length_counts_a_surrogate_pair_once() -> None:
    """LEN counts a surrogate pair as two characters unless the collation is
    supplementary-character aware (_SC); the BIN2 collation this connector creates is
    not: the length is taken under Latin1_General_100_CI_AS_SC."""
    ep, _ = endpoint()
    part = ep.render().part(ColumnSpec("name", "varchar", rtrim=True))
    assert (
        "CONCAT(LEN((RTRIM(CAST(name AS NVARCHAR(MAX)))) COLLATE Latin1_General_100_CI_AS_SC"
        " + N'.') - 1, ':', RTRIM(CAST(name AS NVARCHAR(MAX))))" in part
    )
    parses(f"SELECT {part} FROM t")


def test_years_before_1000_are_written_with_four_digits() -> None:
    """``%Y`` writes the year 1 as "1", which SQL Server would read as 2001."""
    assert datetime_text(dt.datetime(1, 1, 1)) == "0001-01-01 00:00:00"
    assert datetime_text(with_nanos(dt.datetime(999, 12, 31, 23, 59, 59, 9), 700)) == (
        "0999-12-31 23:59:59.0000097"
    )


def test_an_offset_outside_the_years_in_utc_is_one_line() -> None:
    from connectors.sql.mssql import _to_utc

    early = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    with pytest.raises(ConnectorError, match="outside the years 1-9999 in UTC"):
        _to_utc(early)


def test_undo_of_a_foreign_key_the_cutover_created() -> None:
    ep, _ = endpoint()
    sql = ep.undo_statements(_undo("drop_foreign_key", obj="lines", name="lines_order"))
    assert sql == ["ALTER TABLE lines DROP CONSTRAINT lines_order"]
    parses(sql[0])
