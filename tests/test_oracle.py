"""The Oracle endpoint without a server (connectors/sql/oracle.py).

No Oracle server can run where this project is built, so:

- compile tests drive the endpoint's real methods through :func:`sqlrecorder.offline`
  (a dialect set up as connecting to a given version would set it, and connections that
  record statements) and assert the exact SQL Oracle would receive, each statement
  parsed by sqlglot's Oracle dialect;
- values go through the driver's own types and the endpoint's converters (the output type
  handler with python-oracledb's type objects, intervals, LOB fetch types);
- connection errors are produced for real by python-oracledb in thin mode against a
  closed port and against listeners that are not Oracle's, and built from
  python-oracledb's error objects with the messages Oracle sends.

Live tests (``MIGRATE_TEST_ORACLE_URL``) run the shared conformance suite elsewhere.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import oracledb
import pytest
import sqlglot
from oracledb import errors as ora_errors
from sqlglot import exp
from sqlrecorder import Recorder, offline, parse

from connectors.sql import oracle as ora
from connectors.sql.base import PickleSpool
from connectors.sql.oracle import OracleEndpoint, output_type_handler
from migrate.endpoints import Capabilities
from migrate.errors import ConnectorError, MissingDriverError, TransientError
from migrate.registry import endpoint_class
from migrate.schema import Column, Default, ForeignKey, Index, PType, TableSchema
from validators.canonical import ColumnSpec

URL = "oracle+oracledb://scott:s3cretpw@db.example:1521/?service_name=FREEPDB1"
MYSQL_CAPS = Capabilities(
    engine="mysql", bulk_load="load data", max_identifier_length=64, max_bind_params=65535
)


def endpoint(version: tuple[int, ...] = (23, 0), url: str = URL) -> tuple[Any, Recorder]:
    return offline(OracleEndpoint, url, version)


def oracle_sql(sql: str) -> exp.Expression:
    """``sql`` parsed by sqlglot's Oracle dialect. Its grammar has neither numbered binds
    (``:1``, Oracle's positional placeholders) nor the ``INTERVAL DAY(p) TO SECOND(s)``
    column type: for the parse only, ``:1`` reads as ``:b1`` and the precisions go."""
    sql = re.sub(r":(\d+)\b", r":b\1", sql)
    return parse(
        re.sub(r"INTERVAL DAY\(\d\) TO SECOND\(\d\)", "INTERVAL DAY TO SECOND", sql), "oracle"
    )


def assert_parses(rec: Recorder) -> None:
    assert rec.statements
    for sql, _ in rec.statements:
        tree = oracle_sql(sql)
        assert not isinstance(tree, exp.Command), sql


def ora_error(code: int, message: str) -> Exception:
    """An exception as python-oracledb raises it for an error the server sent."""
    err = ora_errors._Error(message, code=code)
    return err.exc_type(err)


def dpy_error(num: int, **args: Any) -> Exception:
    """An exception as python-oracledb's thin mode raises it (DPY-nnnn)."""
    return ora_errors._create_exception(num, **args)


ORDERS = TableSchema(
    "orders",
    [
        Column("id", PType("int64"), nullable=False),
        Column("note", PType("text")),
        Column("at", PType("timestamptz", precision=6)),
        Column("tod", PType("time", precision=6)),
    ],
    primary_key=("id",),
)
LINES = TableSchema(
    "lines",
    [
        Column("order_id", PType("int64"), nullable=False),
        Column("line", PType("int32"), nullable=False),
        Column("qty", PType("decimal", precision=10, scale=2)),
    ],
    primary_key=("order_id", "line"),
)
ROW_SELECT = (
    "SELECT orders.id, orders.note, SYS_EXTRACT_UTC(orders.at) AS at, orders.tod \nFROM orders"
)


# == registry, driver, options ===============================================================
@pytest.mark.parametrize(
    "url",
    [
        "oracle+oracledb://u:p@h:1521/?service_name=FREEPDB1",
        "oracle://u:p@h:1521/ORCL",
        "oracle+oracledb://u:p@mydb_alias",
    ],
)
def test_registry_resolves_oracle_urls(url: str) -> None:
    assert endpoint_class(url) is OracleEndpoint
    ep = OracleEndpoint("t", url, {}, base_dir=Path("."))
    assert ep._url.drivername == "oracle+oracledb"  # thin python-oracledb by default


def test_missing_driver_names_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "oracledb", None)  # import oracledb -> ImportError
    ep = OracleEndpoint("t", URL, {}, base_dir=Path("."))
    with pytest.raises(MissingDriverError) as err:
        ep.engine  # noqa: B018
    assert "pip install 'migrate[oracle]'" in str(err.value)


def test_module_imports_without_the_driver() -> None:
    source = Path(ora.__file__).read_text(encoding="utf-8")
    assert not re.search(r"^(import|from) oracledb", source, re.M)


def test_options() -> None:
    ep = OracleEndpoint("t", URL, {"connect_timeout": 3}, base_dir=Path("."))
    assert ep.connect_args() == {"tcp_connect_timeout": 3.0}
    assert OracleEndpoint("t", URL, {}, base_dir=Path(".")).connect_timeout == 15.0
    with pytest.raises(ConnectorError, match="unknown option 'bulk' for Oracle"):
        OracleEndpoint("t", URL, {"bulk": "x"}, base_dir=Path("."))
    with pytest.raises(ConnectorError, match="connect_timeout: 'soon' is not a number"):
        OracleEndpoint("t", URL, {"connect_timeout": "soon"}, base_dir=Path("."))


# == dialect, capabilities ===================================================================
@pytest.mark.parametrize(
    ("version", "identity", "fetch_first", "length", "hashes"),
    [
        ((23, 0), True, True, 128, ("standard_hash",)),
        ((19, 0), True, True, 128, ("standard_hash",)),
        ((12, 2), True, True, 128, ("standard_hash",)),
        ((12, 1), True, True, 30, ("standard_hash",)),
        ((11, 2), False, False, 30, ()),
    ],
)
def test_version_dependent_dialect_and_capabilities(
    version: tuple[int, ...], identity: bool, fetch_first: bool, length: int, hashes: tuple
) -> None:
    ep, _ = endpoint(version)
    d: Any = ep.dialect
    assert (d.supports_identity_columns, d._supports_offset_fetch) == (identity, fetch_first)
    assert ep.capabilities == Capabilities(
        engine="oracle",
        bulk_load="array dml",
        max_identifier_length=length,
        max_bind_params=65535,
        index_namespace="schema",
        hash_kinds=hashes,
        snapshot_reads="scn",
        empty_string_is_null=True,
        identifier_bytes=True,
    )


def test_identifiers_fit_bytes_on_old_servers() -> None:
    ep, _ = endpoint((12, 1))
    name, why = ep.fit_identifier("é" * 20)  # 40 bytes
    assert len(name.encode()) <= 30 and why and "30 bytes" in why
    assert ep.q("orders") == "orders" and ep.q("Mixed") == '"Mixed"' and ep.q("date") == '"date"'


def test_describe_names_service_or_sid() -> None:
    assert endpoint()[0].describe() == "Oracle 23.0 at db.example:1521/FREEPDB1"
    sid, _ = endpoint((19, 0), "oracle://u:p@h:1522/ORCL")
    assert sid.describe() == "Oracle 19.0 at h:1522/ORCL"
    alias, _ = endpoint((19, 0), "oracle://u:p@mydb")
    assert alias.describe() == "Oracle 19.0 at mydb"


# == types ====================================================================================
def _ptype(text: str) -> PType:
    """A portable type from its ``str`` (as the type matrix writes it)."""
    m = re.fullmatch(r"(\w+)(?:\((.*)\))?( unsigned)?", text)
    assert m, text
    kind, args, unsigned = m.group(1), m.group(2), bool(m.group(3))
    if kind == "enum":
        return PType("enum", values=tuple(a.strip().strip("'") for a in args.split(",")))
    nums = [int(a) for a in args.split(",")] if args else []
    first = nums[0] if nums else None
    if kind == "decimal":
        return PType("decimal", precision=first, scale=nums[1] if nums else None)
    if kind in ("time", "datetime", "timestamptz"):
        return PType(kind, precision=first)
    return PType(kind, length=first, unsigned=unsigned)


def all_types() -> TableSchema:
    from connectors.sql import type_matrix as tm

    cols = [Column("id", PType("int64"), nullable=False, autoincrement=True)]
    cols += [Column(f"c{i:02d}", _ptype(t.ptype)) for i, t in enumerate(tm.TARGETS)]
    return TableSchema("all_types", cols, primary_key=("id",))


# one line per TARGETS row, in its order (the cells of connectors/sql/type_matrix.py)
TARGET_LINES = [
    "NUMBER(1)",  # boolean
    "NUMBER(3)",
    "NUMBER(3)",
    "NUMBER(5)",
    "NUMBER(5)",
    "NUMBER(10)",
    "NUMBER(10)",
    "NUMBER(19)",
    "NUMBER(20)",  # int64 unsigned
    "NUMBER(10, 2)",
    "NUMBER(19)",
    "NUMBER(19, 4)",
    "NUMBER(38)",
    "NUMBER(38, 10)",
    "NUMBER(38, 30)",  # decimal(65, 30), narrowed
    "NUMBER",
    "BINARY_FLOAT",
    "BINARY_DOUBLE",
    "VARCHAR2(10 CHAR)",  # char(10) from MySQL: VARCHAR2 (no blank padding)
    "VARCHAR2(3 CHAR)",
    "VARCHAR2(100 CHAR)",
    "VARCHAR2(255 CHAR)",
    "CLOB",  # varchar(16000)
    "CLOB",
    "CLOB",
    "RAW(16)",
    "RAW(16)",
    "RAW(100)",
    "RAW(255)",
    "BLOB",
    "BLOB",
    "DATE",
    "INTERVAL DAY(0) TO SECOND(0)",
    "INTERVAL DAY(0) TO SECOND(6)",
    "INTERVAL DAY(0) TO SECOND(7)",
    "DATE",  # datetime(0)
    "TIMESTAMP(3)",
    "TIMESTAMP(6)",
    "TIMESTAMP(7)",
    "TIMESTAMP(9)",
    "TIMESTAMP(6) WITH TIME ZONE",
    "TIMESTAMP(7) WITH TIME ZONE",
    "CLOB{json}",
    "CHAR(36)",  # uuid
    "VARCHAR2(1 CHAR)",  # enum('a', 'b')
]


@pytest.mark.parametrize(
    ("version", "identity", "json_check"),
    [
        ((23, 0), " GENERATED BY DEFAULT ON NULL AS IDENTITY", " CHECK (c42 IS JSON)"),
        ((12, 1), " GENERATED BY DEFAULT ON NULL AS IDENTITY", ""),  # IS JSON: 12.2
        ((11, 2), " NOT NULL", ""),  # no identity columns before 12c
    ],
)
def test_create_table_of_every_target_type(
    version: tuple[int, ...], identity: str, json_check: str
) -> None:
    ep, _ = endpoint(version)
    target = ep.target_schema(all_types(), MYSQL_CAPS)
    lines = [f"\tid NUMBER(19){identity}, "]
    lines += [f"\tc{i:02d} {ddl.format(json=json_check)}, " for i, ddl in enumerate(TARGET_LINES)]
    want = "CREATE TABLE all_types (\n" + "\n".join(lines) + "\n\tPRIMARY KEY (id)\n)"
    sql = ep.create_table_sql(target)
    assert sql == want
    assert isinstance(oracle_sql(sql), exp.Create)
    notes = {c.name: c.notes for c in target.columns if c.notes}
    assert notes.pop("c14") == ["DECIMAL(65,30) narrowed to NUMBER(38,30)"]
    assert notes.pop("c18") == [
        "CHAR(10) stored as VARCHAR2(10 CHAR): values kept as read, without blank padding"
    ]
    assert notes.pop("c22") == ["VARCHAR(16000) stored as CLOB"]
    assert notes.pop("c44") == ["allowed values not enforced"]
    if version < (12,):
        assert notes.pop("id") == [ora.NO_IDENTITY_NOTE]
    assert notes == {}


#: TARGET_LINES where the database character set is not Unicode: text is national
NATIONAL_LINES = {
    18: "NVARCHAR2(10)",
    19: "NVARCHAR2(3)",
    20: "NVARCHAR2(100)",
    21: "NVARCHAR2(255)",
    22: "NCLOB",
    23: "NCLOB",
    24: "NCLOB",
    42: "NCLOB",  # json: no IS JSON check (Oracle checks no NCLOB)
    44: "NVARCHAR2(1)",
}


def test_create_table_in_a_non_unicode_database() -> None:
    """WE8MSWIN1252 would store what it lacks as '?': every text column is national
    (NVARCHAR2 / NCLOB), noted per column; UUIDs stay CHAR(36) (ASCII)."""
    ep, rec = endpoint()
    ep.charset = "WE8MSWIN1252"
    target = ep.target_schema(all_types(), MYSQL_CAPS)
    lines = ["\tid NUMBER(19) GENERATED BY DEFAULT ON NULL AS IDENTITY, "]
    for i, ddl in enumerate(TARGET_LINES):
        lines.append(f"\tc{i:02d} {NATIONAL_LINES.get(i, ddl.format(json=''))}, ")
    want = "CREATE TABLE all_types (\n" + "\n".join(lines) + "\n\tPRIMARY KEY (id)\n)"
    sql = ep.create_table_sql(target)
    assert sql == want
    assert isinstance(oracle_sql(sql), exp.Create)
    by_name = {c.name: c.notes for c in target.columns}

    def national(ddl: str) -> str:
        return (
            f"stored as {ddl} (national character set): the database character set"
            " WE8MSWIN1252 is not Unicode and would store the characters it lacks as '?'"
        )

    assert by_name["c18"] == [
        "CHAR(10) stored as VARCHAR2(10 CHAR): values kept as read, without blank padding",
        national("NVARCHAR2(10)"),
    ]
    assert by_name["c21"] == [national("NVARCHAR2(255)")]
    assert by_name["c22"] == ["VARCHAR(16000) stored as NCLOB", national("NCLOB")]
    assert by_name["c42"] == [national("NCLOB"), ora.NCLOB_JSON_NOTE]
    assert by_name["c43"] == []  # uuid: CHAR(36)
    assert rec.statements == []  # compile tests set the charset: nothing is asked


def test_charset_is_read_once_from_the_database() -> None:
    ep, rec = endpoint()
    ep.offline_dialect = None  # as connected: the recorder answers the query
    rec.results = [[("NLS_CHARACTERSET", "WE8ISO8859P1"), ("NLS_NCHAR_CHARACTERSET", "UTF8")]]
    assert ep.database_charset() == "WE8ISO8859P1"
    assert ep.national() and ep.database_charset() == "WE8ISO8859P1"
    assert rec.sql == [ora.OracleEndpoint.CHARSET_SQL]  # once
    assert isinstance(oracle_sql(rec.sql[0]), exp.Select)
    # NVARCHAR2 holds 4000 bytes: 1333 characters of UTF8 (3 bytes each), else NCLOB
    assert ep.adapt_type(PType("varchar", length=1333)) == (PType("varchar", length=1333), None)
    assert ep.adapt_type(PType("varchar", length=1334)) == (
        PType("text"),
        "VARCHAR(1334) stored as NCLOB",
    )
    assert ep.adapt_type(PType("char", length=666))[0] == PType("char", length=666)
    assert ep.adapt_type(PType("char", length=667))[0] == PType("varchar", length=667)


def test_national_character_set_thin_mode_cannot_write_is_refused(tmp_path: Path) -> None:
    """Thin mode binds and fetches N-types only in AL16UTF16: with a non-Unicode database
    character set (text would be NVARCHAR2) and national UTF8, one error before any DDL."""
    ep, rec = endpoint()
    ep.charset, ep.nchar_charset = "WE8ISO8859P1", "UTF8"
    want = r"WE8ISO8859P1.*UTF8: python-oracledb's thin mode .* without loss"
    with pytest.raises(ConnectorError, match=want):
        ep.target_schema(CODES, MYSQL_CAPS)
    with pytest.raises(ConnectorError, match=want):
        ep.create_table_ddl(CODES)
    with pytest.raises(ConnectorError, match=want):
        ep.write_spool(Recorder(), CODES, spool_of(tmp_path, [("ab", "x", "n")]), "codes")
    assert rec.statements == []
    # a Unicode database character set creates no N-types: its national one does not matter
    unicode, _ = endpoint()
    unicode.charset, unicode.nchar_charset = "AL32UTF8", "UTF8"
    assert "VARCHAR2(4 CHAR)" in unicode.create_table_sql(unicode.target_schema(CODES, MYSQL_CAPS))
    national, _ = endpoint()
    national.charset, national.nchar_charset = "WE8ISO8859P1", "AL16UTF16"
    assert "NVARCHAR2(4)" in national.create_table_sql(national.target_schema(CODES, MYSQL_CAPS))


@pytest.mark.parametrize(
    ("ptype", "stored", "note"),
    [
        (PType("varchar", length=1000), "VARCHAR2(1000 CHAR)", None),
        (
            PType("varchar", length=1001),
            "VARCHAR2(1001 CHAR)",
            "VARCHAR2(1001 CHAR) holds at most 4000 bytes: a longer value in UTF-8 is refused",
        ),
        (PType("varchar", length=4001), "CLOB", "VARCHAR(4001) stored as CLOB"),
        (PType("varbinary", length=2000), "RAW(2000)", None),
        (PType("varbinary", length=2001), "BLOB", "VARBINARY(2001) stored as BLOB"),
        (PType("binary", length=4000), "BLOB", "BINARY(4000) stored as BLOB"),
        (
            PType("char", length=3000),  # CHAR holds 2000 bytes
            "VARCHAR2(3000 CHAR)",
            "VARCHAR2(3000 CHAR) holds at most 4000 bytes: a longer value in UTF-8 is refused",
        ),
        (
            PType("decimal", precision=40, scale=2),
            "NUMBER(38, 2)",
            "DECIMAL(40,2) narrowed to NUMBER(38,2)",
        ),
        (PType("int8", unsigned=True), "NUMBER(3)", None),
        (
            PType("datetime", precision=12),
            "TIMESTAMP(9)",
            "fractional seconds cut from 12 to 9 digits",
        ),
    ],
)
def test_adapt_and_native_type(ptype: PType, stored: str, note: str | None) -> None:
    ep, _ = endpoint()
    adapted, why = ep.adapt_type(ptype)
    assert str(ep.native_type(adapted).compile(dialect=ep.dialect)) == stored
    assert why == note


@pytest.mark.parametrize(
    ("native", "ptype", "note"),
    [
        (("NUMBER", 4, 0), "int16", None),
        (("NUMBER", 9, 0), "int32", None),
        (("NUMBER", 18, 0), "int64", None),
        (("NUMBER", 19, 0), "decimal(19, 0)", None),
        (("NUMBER", 5, -2), "decimal(7, 0)", None),
        (("NUMBER", None, -2), "decimal(40, 0)", None),  # NUMBER(*, -2): 38 + 2 digits
        (("NUMBER", 38, -5), "decimal(43, 0)", None),  # 43-digit values: not capped
        (("NUMBER", None, 2), "decimal(38, 2)", None),
        (("NUMBER", None, None), "decimal", None),
        (("FLOAT", 49), "float64", None),  # 15 decimal digits: a double keeps them
        (("FLOAT", 126), "float64", "FLOAT(126) read as a double (about 15 digits)"),
    ],
)
def test_numbers_read_exactly(native: tuple, ptype: str, note: str | None) -> None:
    from sqlalchemy.dialects import oracle as sa_oracle

    ep, _ = endpoint()
    name, *args = native
    t = sa_oracle.NUMBER(*args) if name == "NUMBER" else sa_oracle.FLOAT(binary_precision=args[0])
    got, why = ep.portable_type(t)
    assert (str(got), why) == (ptype, note)


def test_reflected_types_beyond_the_matrix() -> None:
    import sqlalchemy as sa
    from sqlalchemy.dialects import oracle as sa_oracle

    ep, _ = endpoint()
    cases = {
        "INTEGER": (sa.INTEGER(), "decimal(38, 0)", None),  # NUMBER(*, 0)
        "DOUBLE": (
            sa_oracle.DOUBLE_PRECISION(),
            "float64",
            "FLOAT(126) read as a double (about 15 digits)",
        ),
        "INTERVAL DAY(0)": (sa_oracle.INTERVAL(0, 6), "time(6)", None),  # made from a time
        "ROWID": (sa_oracle.ROWID(), "text", "ROWID copied as its text form"),
        "JSON": (sa_oracle.JSON(), "json", None),
        "BOOLEAN": (sa_oracle.BOOLEAN(), "boolean", None),
        "LONG": (sa_oracle.LONG(), "text", None),
    }
    for label, (t, ptype, note) in cases.items():
        got, why = ep.portable_type(t)
        assert (str(got), why) == (ptype, note), label
    # what reflection loses, read from USER_TAB_COLUMNS
    native = ora._portable_native
    assert native("TIMESTAMP(9)", None, 9) == (PType("datetime", precision=9), None)
    assert native("TIMESTAMP(3) WITH TIME ZONE", None, 3) == (
        PType("timestamptz", precision=3),
        ora.TSTZ_NOTE,
    )
    assert native("TIMESTAMP(6) WITH LOCAL TIME ZONE", None, 6)[0] == PType(
        "timestamptz", precision=6
    )
    assert native("INTERVAL DAY(0) TO SECOND(3)", 0, 3) == (PType("time", precision=3), None)
    assert native("INTERVAL DAY(2) TO SECOND(6)", 2, 6) == (
        PType("text"),
        "INTERVAL DAY TO SECOND copied as its text form",
    )
    assert (
        native("INTERVAL YEAR(2) TO MONTH", 2, None)[1]
        == "INTERVAL YEAR TO MONTH copied as its text form"
    )
    assert native("XMLTYPE", None, None) == (PType("text"), "XMLTYPE copied as its text form")
    assert native("LONG RAW", None, None) == (PType("blob"), None)
    assert native("VARCHAR2", None, None) is None


def test_empty_string_rule_in_target_schema() -> None:
    ep, _ = endpoint()
    source = TableSchema(
        "people",
        [
            Column("code", PType("varchar", length=10), nullable=False),
            Column("name", PType("varchar", length=50), nullable=False),
            Column("bio", PType("text"), nullable=False),
            Column("age", PType("int32"), nullable=False),
        ],
        primary_key=("code",),
    )
    target = ep.target_schema(source, MYSQL_CAPS)
    got = {c.name: (c.nullable, c.notes) for c in target.columns}
    assert got == {
        "code": (False, [ora.EMPTY_KEY_NOTE]),
        "name": (True, [ora.EMPTY_NOTE]),
        "bio": (True, [ora.EMPTY_NOTE]),
        "age": (False, []),
    }
    # from Oracle itself, '' is already NULL: NOT NULL is kept
    same = ep.target_schema(source, ep.capabilities)
    assert [c.nullable for c in same.columns] == [False, False, False, False]


def test_lob_indexes_and_on_update_are_noted() -> None:
    ep, _ = endpoint()
    source = TableSchema(
        "docs",
        [
            Column("id", PType("int64"), nullable=False),
            Column("body", PType("text")),
            Column("title", PType("varchar", length=100)),
        ],
        primary_key=("id",),
        indexes=[Index("ix_body", ("body",)), Index("ix_title", ("title",))],
        foreign_keys=[ForeignKey("fk_x", ("id",), "other", ("id",), "CASCADE", "CASCADE")],
    )
    target = ep.target_schema(source, MYSQL_CAPS)
    assert [ix.name for ix in target.indexes] == ["docs_ix_title"]
    assert target.column("body").notes == [
        "index docs_ix_body not created: Oracle cannot index a CLOB or BLOB column"
    ]
    assert target.column("id").notes == [
        "foreign key ON UPDATE CASCADE not carried: Oracle has none"
    ]


def test_defaults_in_oracle_sql() -> None:
    ep, _ = endpoint()
    cols = [
        Column("id", PType("int64"), nullable=False),
        Column("flag", PType("boolean"), default=Default("literal", True)),
        Column("created", PType("datetime", precision=6), default=Default("current_timestamp")),
        Column("day", PType("date"), default=Default("current_timestamp")),
        Column("seen", PType("timestamptz", precision=6), default=Default("current_timestamp")),
        Column(
            "since",
            PType("datetime", precision=0),
            default=Default("literal", "2020-01-02 03:04:05"),
        ),
        Column("born", PType("date"), default=Default("literal", "2001-02-03")),
        Column("opens", PType("time", precision=0), default=Default("literal", "09:30:00")),
        Column(
            "bad", PType("datetime", precision=0), default=Default("literal", "0000-00-00 00:00:00")
        ),
        Column("name", PType("varchar", length=10), default=Default("literal", "it's")),
        Column(
            "qty",
            PType("decimal", precision=5, scale=2),
            default=Default("literal", Decimal("1.50")),
        ),
    ]
    schema = TableSchema("d", cols, primary_key=("id",))
    sql = ep.create_table_sql(schema)
    assert sql == (
        "CREATE TABLE d (\n"
        "\tid NUMBER(19) NOT NULL, \n"
        "\tflag NUMBER(1) DEFAULT 1, \n"
        "\tcreated TIMESTAMP(6) DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP), \n"
        "\tday DATE DEFAULT TRUNC(SYS_EXTRACT_UTC(SYSTIMESTAMP)), \n"
        "\tseen TIMESTAMP(6) WITH TIME ZONE DEFAULT SYSTIMESTAMP, \n"
        "\tsince DATE DEFAULT TIMESTAMP '2020-01-02 03:04:05', \n"
        "\tborn DATE DEFAULT DATE '2001-02-03', \n"
        "\topens INTERVAL DAY(0) TO SECOND(0)"
        " DEFAULT INTERVAL '0 09:30:00.000000' DAY TO SECOND, \n"
        "\tbad DATE, \n"
        "\tname VARCHAR2(10 CHAR) DEFAULT 'it''s', \n"
        "\tqty NUMBER(5, 2) DEFAULT 1.50, \n"
        "\tPRIMARY KEY (id)\n"
        ")"
    )
    assert schema.column("bad").notes == [
        "default '0000-00-00 00:00:00' is not a datetime Oracle reads: dropped"
    ]
    oracle_sql(sql)


def test_reflected_defaults() -> None:
    ep, _ = endpoint()
    col = Column("c", PType("datetime", precision=0))
    assert ep.parse_default("SYSDATE ", col) == Default("current_timestamp")
    assert ep.parse_default("systimestamp\n", col) == Default("current_timestamp")
    assert ep.parse_default("'abc' ", col) == Default("literal", "abc")
    assert ep.parse_default("0 ", col) == Default("literal", Decimal(0))
    assert ep.parse_default('"ISEQ$$_1".nextval', col) is None and col.notes


# == reads ====================================================================================
def test_chunk_reads() -> None:
    ep, rec = endpoint()
    list(ep.read_range(ORDERS, ("id",), None, None, 10))
    list(ep.read_range(ORDERS, ("id",), (5,), 1000, 10))
    list(ep.read_range(LINES, ("order_id", "line"), (5, 2), 1000, 10))
    list(ep.read_range(ORDERS, (), None, None, 10))
    assert rec.statements == [
        (f"{ROW_SELECT} ORDER BY orders.id", {}),
        (
            f"{ROW_SELECT} \nWHERE orders.id > :id_1 ORDER BY orders.id"
            "\n FETCH FIRST 1000 ROWS ONLY",
            {"id_1": 5},
        ),
        (
            "SELECT lines.order_id, lines.line, lines.qty \nFROM lines \nWHERE lines.order_id >"
            " :order_id_1 OR lines.order_id = :order_id_2 AND lines.line > :line_1 ORDER BY"
            " lines.order_id, lines.line\n FETCH FIRST 1000 ROWS ONLY",
            {"order_id_1": 5, "order_id_2": 5, "line_1": 2},
        ),
        (ROW_SELECT, {}),
    ]
    assert_parses(rec)


def test_chunk_read_before_12c_uses_rownum() -> None:
    ep, rec = endpoint((11, 2))
    list(ep.read_range(ORDERS, ("id",), (5,), 1000, 10))
    assert rec.sql == [
        "SELECT anon_1.id, anon_1.note, anon_1.at, anon_1.tod \nFROM (SELECT orders.id AS id,"
        " orders.note AS note, SYS_EXTRACT_UTC(orders.at) AS at, orders.tod AS tod \nFROM"
        " orders \nWHERE orders.id > :id_1 ORDER BY orders.id) anon_1 \nWHERE ROWNUM <= 1000"
    ]
    assert_parses(rec)


def test_key_reads() -> None:
    ep, rec = endpoint()
    rec.results = [[(5,)], [(42,)], [(1, 99)], [(3, 17)], []]
    assert ep.count("orders", ("id",), (1,), (100,)) == 5
    assert ep.key_at("orders", ("id",), (1,), (100,), 499) == (42,)
    assert ep.key_span_in("orders", "id", None, (100,)) == (1, 99)
    assert ep.key_summary("orders", ("id",), (1,), None, True) == (3, 17)
    list(ep.read_keys("orders", ("id",), (1,), (100,), 10))
    assert rec.statements == [
        (
            "SELECT count(*) AS count_1 \nFROM orders \nWHERE orders.id > :id_1 AND"
            " orders.id <= :id_2",
            {"id_1": 1, "id_2": 100},
        ),
        (
            "SELECT orders.id \nFROM orders \nWHERE orders.id > :id_1 AND orders.id <= :id_2"
            " ORDER BY orders.id\n OFFSET 499 ROWS\n FETCH FIRST 1 ROWS ONLY",
            {"id_1": 1, "id_2": 100},
        ),
        (
            "SELECT min(orders.id) AS min_1, max(orders.id) AS max_1 \nFROM orders \nWHERE"
            " orders.id <= :id_1",
            {"id_1": 100},
        ),
        (
            "SELECT count(*) AS count_1, coalesce(sum(mod(orders.id, :id_1)), :coalesce_2) AS"
            " coalesce_1 \nFROM orders \nWHERE orders.id > :id_2",
            {"id_1": 1000000007, "coalesce_2": 0, "id_2": 1},
        ),
        (
            "SELECT orders.id \nFROM orders \nWHERE orders.id > :id_1 AND orders.id <= :id_2"
            " ORDER BY orders.id",
            {"id_1": 1, "id_2": 100},
        ),
    ]
    assert_parses(rec)


def test_key_buckets_write_their_numbers() -> None:
    """Oracle cannot GROUP BY an expression with bind variables (ORA-00979)."""
    ep, rec = endpoint()
    rec.results = [[(Decimal(0), 2, 3), (Decimal(1), 1, 1000)]]
    assert ep.key_buckets("orders", "id", 1, 1000) == {0: (2, 3), 1: (1, 1000)}
    assert rec.statements == [
        (
            "SELECT TRUNC((orders.id - 1) / 1000) AS b, count(*) AS count_1, sum(mod(orders.id,"
            " :id_1)) AS sum_1 \nFROM orders GROUP BY TRUNC((orders.id - 1) / 1000)",
            {"id_1": 1000000007},
        )
    ]
    assert_parses(rec)


def test_watermark_reads() -> None:
    ep, rec = endpoint()
    at = dt.datetime(2024, 1, 2, 3, 4, 5, 600000)
    rec.results = [[(at,)], [], []]
    assert ep.max_value(ORDERS, "at") == at.replace(tzinfo=dt.UTC)
    lo = ep.cursor_value(ORDERS, "at", at)  # aware: the column has a zone
    list(ep.read_changed(ORDERS, "at", lo, 10))
    list(ep.read_changed(LINES, "qty", None, 10))
    assert rec.statements == [
        ("SELECT max(SYS_EXTRACT_UTC(orders.at)) AS max_1 \nFROM orders", {}),
        (
            f"{ROW_SELECT} \nWHERE orders.at > :at_1",
            {"at_1": "2024-01-02 03:04:05.600000 +00:00"},
        ),
        (
            "SELECT lines.order_id, lines.line, lines.qty \nFROM lines \nWHERE lines.qty IS NOT"
            " NULL",
            {},
        ),
    ]
    assert_parses(rec)


def test_rows_by_key_and_between() -> None:
    ep, rec = endpoint()
    ep.read_rows(ORDERS, ("id",), [(1,), (2,)])
    ep.read_rows(LINES, ("order_id", "line"), [(1, 1), (1, 2)])
    ep.read_between(ORDERS, ("id",), (1,), (9,), 10)
    assert rec.statements == [
        (f"{ROW_SELECT} \nWHERE orders.id IN (:id_1_1, :id_1_2)", {"id_1_1": 1, "id_1_2": 2}),
        (
            "SELECT lines.order_id, lines.line, lines.qty \nFROM lines \nWHERE lines.order_id ="
            " :order_id_1 AND lines.line = :line_1 OR lines.order_id = :order_id_2 AND"
            " lines.line = :line_2",
            {"order_id_1": 1, "line_1": 1, "order_id_2": 1, "line_2": 2},
        ),
        (f"{ROW_SELECT} \nWHERE orders.id > :id_1 AND orders.id <= :id_2", {"id_1": 1, "id_2": 9}),
    ]
    assert_parses(rec)


def test_params_bind_as_oracle_compares_them() -> None:
    ep, _ = endpoint()
    assert ep.adapt_param(True) == 1
    assert ep.adapt_param(dt.datetime(2024, 5, 6, 7, 8, 9)) == "2024-05-06 07:08:09"
    assert ep.adapt_param(dt.datetime(2024, 5, 6, 7, 8, 9, 10)) == "2024-05-06 07:08:09.000010"
    aware = dt.datetime(2024, 5, 6, 9, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    # NLS_TIMESTAMP_TZ_FORMAT reads FF before TZH: an aware value always has a fraction
    assert ep.adapt_param(aware) == "2024-05-06 07:08:09.000000 +00:00"
    assert ep.adapt_param(aware.replace(microsecond=5)) == "2024-05-06 07:08:09.000005 +00:00"
    assert ep.adapt_param(dt.date(2024, 5, 6)) == dt.date(2024, 5, 6)
    u = uuid.uuid4()
    assert ep.adapt_param(u) == str(u)
    assert ep.adapt_param(dt.time(1, 2, 3, 4)) == dt.timedelta(
        hours=1, minutes=2, seconds=3, microseconds=4
    )


# == snapshots ================================================================================
def _every_read(ep: Any) -> None:
    specs = [ColumnSpec("id", "int64")]
    select = ep.checksum_sql(specs)
    list(ep.read_range(ORDERS, ("id",), (5,), 100, 10))
    list(ep.read_keys("orders", ("id",), (1,), (9,), 10))
    ep.count("orders", ("id",), (1,), None)
    ep.key_at("orders", ("id",), None, None, 3)
    ep.max_value(ORDERS, "at")
    list(ep.read_changed(ORDERS, "at", None, 10))
    ep.read_rows(ORDERS, ("id",), [(1,)])
    ep.read_between(ORDERS, ("id",), (1,), (9,), 10)
    ep.read_key_ranges("orders", ("id",), [((1,), (9,))])
    ep.key_summary("orders", ("id",), None, None, True)
    ep.key_span("orders", "id")
    ep.key_span_in("orders", "id", (1,), None)
    ep.key_buckets("orders", "id", 0, 10)
    ep.count_null("orders", ("id",))
    ep.checksum("orders", ("id",), (1,), (9,), select)
    ep.checksum_groups("orders", "id", None, None, 0, 10, select)
    ep.checksum_buckets("orders", specs, 4, select)
    ep.read_buckets(ORDERS, specs, 4, [1])


#: what each of those reads is answered, in order
READ_RESULTS: list[Any] = [
    [], [], [(0,)], [], [(None,)], [], [], [], [], [(0, 0)], [(None, None)], [(None, None)],
    [], [(0,)], [(0, 0)], [], [], [],
]  # fmt: skip
READS = len(READ_RESULTS)


def test_every_read_is_as_of_the_snapshot_scn() -> None:
    ep, rec = endpoint()
    rec.results = list(READ_RESULTS)
    with ep.snapshot(False, at="123456789") as scn:
        assert scn == "123456789"
        _every_read(ep)
    inside = list(rec.statements)
    assert len(inside) == READS
    for sql, params in inside:
        assert re.search(r"\bFROM (orders) AS OF SCN :migrate_scn\b", sql), sql
        assert params["migrate_scn"] == 123456789
        assert sql.count("AS OF SCN") == 1
        tree = oracle_sql(sql)
        assert isinstance(tree, exp.Select) and not isinstance(tree, exp.Command)
    rec.statements.clear()
    rec.results = list(READ_RESULTS)
    _every_read(ep)  # after the block: no snapshot
    assert len(rec.statements) == READS
    assert not any("AS OF" in sql for sql in rec.sql)
    assert not any("migrate_scn" in (p or {}) for _, p in rec.statements)


def test_snapshot_is_per_thread_and_never_on_writes() -> None:
    ep, rec = endpoint()
    seen: list[str] = []
    with ep.snapshot(False, at="77"):
        worker = threading.Thread(
            target=lambda: seen.append(ep.compile(ep.sa_table("t", ["a"]).select())[0])
        )
        worker.start()
        worker.join()
        ep.delete_range("orders", ("id",), (1,), (9,))
        ep.delete_keys("orders", ("id",), [(1,)])
        rec.results = [[(0,)]]
        ep.count("orders")
    assert "AS OF" not in seen[0]
    assert rec.sql[:2] == [
        "DELETE FROM orders WHERE orders.id > :id_1 AND orders.id <= :id_2",
        "DELETE FROM orders WHERE id IN (:id_1_1)",
    ]
    assert rec.sql[2] == "SELECT count(*) AS count_1 \nFROM orders AS OF SCN :migrate_scn"


def test_current_scn_falls_back_to_what_the_user_may_read() -> None:
    ep, rec = endpoint()
    rec.results = [
        ora_error(942, "ORA-00942: table or view does not exist"),
        ora_error(
            904, 'ORA-00904: "DBMS_FLASHBACK"."GET_SYSTEM_CHANGE_NUMBER": invalid identifier'
        ),
        [(Decimal(4242),)],
    ]
    with ep.snapshot(False) as scn:
        assert scn == "4242"
    assert rec.sql == list(OracleEndpoint.SCN_QUERIES)
    for sql in rec.sql:
        oracle_sql(sql)
    rec.statements.clear()
    rec.results = [ora_error(942, "ORA-00942: table or view does not exist")] * 3
    with pytest.raises(
        ConnectorError, match="grant SELECT ON V_\\$DATABASE or EXECUTE ON DBMS_FLASHBACK"
    ):
        ep.current_scn()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            1555,
            "ORA-01555: snapshot too old: rollback segment number 10 with name"
            ' "_SYSSMU10_1$" too small',
        ),
        (8181, "ORA-08181: specified number is not a valid system change number"),
        (1466, "ORA-01466: unable to read data - table definition has changed"),
        (22924, "ORA-22924: snapshot too old"),  # a LOB's old version is gone
    ],
)
def test_snapshot_too_old_is_one_line(code: int, message: str) -> None:
    ep, rec = endpoint()
    rec.results = [ora_error(code, message)]
    with ep.snapshot(False, at="1000"), pytest.raises(ConnectorError) as err:
        list(ep.read_range(ORDERS, ("id",), None, 100, 10))
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(
        "t: reading orders: the snapshot (SCN 1000) is too old: the undo data to read it is"
        " gone (undo retention); rerun that table with `migrate run --restart` ("
    )
    assert message in text
    assert not isinstance(err.value, TransientError)


def test_flashback_privilege_is_named_inside_a_snapshot() -> None:
    ep, rec = endpoint()
    rec.results = [ora_error(1031, "ORA-01031: insufficient privileges")]
    with ep.snapshot(False, at="5"), pytest.raises(ConnectorError, match="FLASHBACK privilege"):
        ep.count("hr_emp")


# == checksums ================================================================================
SPECS = [ColumnSpec("id", "int64"), ColumnSpec("note", "text")]
ROW = (
    "(NVL(TO_CHAR(id), 'N') || '|' || NVL(NVL2(note, TO_CHAR(LENGTH(note)) || ':' || note,"
    " NULL), 'N'))"
)
SUM = (
    f"SUM(TO_NUMBER(SUBSTR(RAWTOHEX(STANDARD_HASH(TO_CHAR({ROW}), 'MD5')), 18), 'XXXXXXXXXXXXXXX'))"
)
LOB_ROW = (
    "(TO_CLOB(NVL(TO_CHAR(id), 'N')) || '|' || NVL(NVL2(note, TO_CLOB(TO_CHAR(LENGTH(note)))"
    " || ':' || note, NULL), 'N'))"
)
LOB_SUM = f"SUM(TO_NUMBER(SUBSTR(RAWTOHEX(DBMS_CRYPTO.HASH({LOB_ROW}, 2)), 18), 'XXXXXXXXXXXXXXX'))"
BUCKET = (
    "MOD(TO_NUMBER(SUBSTR(RAWTOHEX(STANDARD_HASH(TO_CHAR(NVL(TO_CHAR(id), 'N')), 'MD5')), 1, 8),"
    " 'XXXXXXXX'), 8)"
)


def test_checksum_statements() -> None:
    ep, rec = endpoint()
    select = ep.checksum_sql(SPECS)
    assert select == f"COUNT(*), {SUM}"
    rec.results = [[(2, Decimal(12345))], [(Decimal(0), 1, 5)], [(Decimal(3), 1, 7)]]
    assert ep.checksum("orders", ("id",), (1,), (100,), select) == (2, 12345)
    assert ep.checksum_groups("orders", "id", (1,), None, 0, 10, select) == {0: (1, 5)}
    assert ep.checksum_buckets("orders", SPECS[:1], 8, select) == {3: (1, 7)}
    ep.read_buckets(ORDERS, SPECS[:1], 8, [1, 3])
    assert rec.statements == [
        (
            f"SELECT COUNT(*), {SUM} \nFROM orders \nWHERE orders.id > :id_1 AND"
            " orders.id <= :id_2",
            {"id_1": 1, "id_2": 100},
        ),
        (
            f"SELECT TRUNC((orders.id - 0) / 10) AS g, COUNT(*), {SUM} \nFROM orders \nWHERE"
            " orders.id > :id_1 GROUP BY TRUNC((orders.id - 0) / 10)",
            {"id_1": 1},
        ),
        (
            f"SELECT {BUCKET} AS migrate_bucket, COUNT(*), {SUM} \nFROM orders GROUP BY {BUCKET}",
            {},
        ),
        (
            f"{ROW_SELECT} \nWHERE {BUCKET} IN (:migrate_bucket_1, :migrate_bucket_2)",
            {"migrate_bucket_1": 1, "migrate_bucket_2": 3},
        ),
    ]
    assert_parses(rec)


def test_long_rows_are_hashed_again_as_a_clob() -> None:
    """ORA-01489 / ORA-22835: the row text passes VARCHAR2's 4000 bytes; the same chunk is
    summed with the row built as a CLOB and hashed by DBMS_CRYPTO (the same MD5)."""
    ep, rec = endpoint()
    select = ep.checksum_sql(SPECS)
    too_long = ora_error(1489, "ORA-01489: result of string concatenation is too long")
    rec.results = [too_long, [(2, Decimal(99))]]
    assert ep.checksum("orders", ("id",), None, None, select) == (2, 99)
    assert rec.sql == [
        f"SELECT COUNT(*), {SUM} \nFROM orders",
        f"SELECT COUNT(*), {LOB_SUM} \nFROM orders",
    ]
    rec.statements.clear()
    clob = ora_error(
        22835,
        "ORA-22835: Buffer too small for CLOB to CHAR or BLOB to RAW conversion (actual: 9000,"
        " maximum: 4000)",
    )
    rec.results = [clob, []]
    assert ep.checksum_groups("orders", "id", None, None, 0, 10, select) == {}
    assert LOB_SUM in rec.sql[1]
    assert_parses(rec)


def test_long_rows_without_dbms_crypto_fail_in_one_line() -> None:
    ep, rec = endpoint()
    select = ep.checksum_sql(SPECS)
    rec.results = [
        ora_error(1489, "ORA-01489: result of string concatenation is too long"),
        ora_error(904, 'ORA-00904: "DBMS_CRYPTO"."HASH": invalid identifier'),
    ]
    with pytest.raises(ConnectorError) as err:
        ep.checksum("orders", ("id",), None, None, select)
    assert str(err.value) == (
        "t: computing a checksum of orders: a row's canonical text is longer than VARCHAR2's"
        " 4000 bytes (long values in note); hashing it as a CLOB needs EXECUTE on"
        " SYS.DBMS_CRYPTO (GRANT EXECUTE ON SYS.DBMS_CRYPTO TO scott), or leave those columns"
        " out with ignore_columns"
    )


def test_render_of_oracle_specific_kinds() -> None:
    """The expressions the canonical render writes for Oracle's LOBs, intervals and
    NUMBER without scale (each one parsed)."""
    ep, _ = endpoint()
    r = ep.render()
    blob = ColumnSpec("b", "blob")
    assert r.part(blob) == (
        "NVL(CASE WHEN b IS NULL THEN NULL WHEN DBMS_LOB.GETLENGTH(b) <= 2000 THEN"
        " LOWER(RAWTOHEX(DBMS_LOB.SUBSTR(b, 2000, 1))) ELSE 'L' || RAWTOHEX(SYS_GUID()) END, 'N')"
    )
    assert r.part(ColumnSpec("t", "time")) == (
        "NVL(SUBSTR(TO_CHAR(TIMESTAMP '2000-01-01 00:00:00' + t, 'HH24:MI:SS.FF9'), 1, 15), 'N')"
    )
    assert r.part(ColumnSpec("n", "decimal")) == (
        "NVL(REGEXP_REPLACE(TO_CHAR(n), '^(-?)\\.', '\\10.'), 'N')"
    )
    lob = ep.render()
    lob.lob = True
    assert "RAWTOHEX(DBMS_CRYPTO.HASH(b, 2))" in lob.part(blob)
    for render in (r, lob):
        for spec in [blob, ColumnSpec("t", "time"), ColumnSpec("n", "decimal"), *SPECS]:
            tree = oracle_sql(f"SELECT {render.select([ColumnSpec('id', 'int64'), spec])} FROM t")
            assert isinstance(tree, exp.Select)
    old, _ = endpoint((11, 2))
    assert old.render().lob  # no STANDARD_HASH before 12.1: DBMS_CRYPTO from the start


def test_float_and_fraction_texts_are_the_canonical_ones() -> None:
    """What Oracle's TO_CHAR writes, put through the render's expression (emulated from
    the SQL itself), is the canonical text: a NUMBER-based float's '.5' gets its 0,
    BINARY_DOUBLE's Inf / Nan are lowered; nine fractional digits are cut to six (the
    driver cuts too; CAST AS TIMESTAMP(6) would round 0.9999995 up to the next second)."""
    from validators.canonical import canonical_value

    r = endpoint()[0].render()
    part = r.part(ColumnSpec("f", "float64"))
    m = re.search(r"REGEXP_REPLACE\(TO_CHAR\(f\), '(.*?)', '(.*?)'\)", part)
    assert m and part.startswith("NVL(CASE WHEN f = 0 THEN '0' ELSE LOWER(")
    pattern, repl = m.group(1), m.group(2).replace("\\1", "\\g<1>")

    def oracle_text(to_char: str) -> str:
        return re.sub(pattern, repl, to_char, count=1).lower()

    spec = ColumnSpec("f", "float64")
    for to_char, value in [(".5", 0.5), ("-.5", -0.5), ("-.00000015", -1.5e-7),
                           ("12.25", 12.25), ("Inf", float("inf")), ("-Inf", float("-inf")),
                           ("Nan", float("nan")), ("100000000000000000000", 1e20)]:  # fmt: skip
        assert oracle_text(to_char) == canonical_value(spec, value), to_char
    # date-times: TO_CHAR(..., '...FF9') cut by SUBSTR
    at = r.part(ColumnSpec("at", "datetime"))
    cut = re.search(r"'YYYY-MM-DD HH24:MI:SS\.FF9'\), 1, (\d+)\)", at)
    assert cut and "CAST(at AS TIMESTAMP(9))" in at
    nine = "2024-12-31 23:59:59.999999999"  # TIMESTAMP(9) as Oracle holds it
    read = dt.datetime(2024, 12, 31, 23, 59, 59, 999999)  # as the driver fetches it
    assert nine[: int(cut.group(1))] == canonical_value(ColumnSpec("at", "datetime"), read)
    tod = r.part(ColumnSpec("t", "time"))
    cut = re.search(r"'HH24:MI:SS\.FF9'\), 1, (\d+)\)", tod)
    assert cut and "23:59:59.999999999"[: int(cut.group(1))] == canonical_value(
        ColumnSpec("t", "time"), dt.time(23, 59, 59, 999999)
    )
    assert "SUBSTR(TO_CHAR(SYS_EXTRACT_UTC(z), 'YYYY-MM-DD HH24:MI:SS.FF9'), 1, 26)" in r.part(
        ColumnSpec("z", "timestamptz")
    )


def test_checksums_hash_utf8_in_a_non_unicode_database() -> None:
    """TO_CHAR gives the database character set's bytes (and '?' for an NVARCHAR2's
    characters it lacks): a non-Unicode database hashes the row's UTF-8 bytes
    (UTL_I18N.STRING_TO_RAW; RAW holds 2000 bytes, ORA-06502 past them: retried as a
    national CLOB, which DBMS_CRYPTO.HASH takes as CLOB CHARACTER SET ANY_CS)."""
    ep, rec = endpoint()
    ep.charset = "WE8MSWIN1252"
    select = ep.checksum_sql(SPECS)
    row_hash = f"STANDARD_HASH(UTL_I18N.STRING_TO_RAW({ROW}, 'AL32UTF8'), 'MD5')"
    assert select == (
        f"COUNT(*), SUM(TO_NUMBER(SUBSTR(RAWTOHEX({row_hash}), 18), 'XXXXXXXXXXXXXXX'))"
    )
    rec.results = [ora_error(6502, "ORA-06502: PL/SQL: numeric or value error"), [(1, 5)]]
    assert ep.checksum("orders", ("id",), None, None, select) == (1, 5)
    national_lob = LOB_ROW.replace("(TO_CLOB(NVL(TO_CHAR(id)", "(TO_NCLOB(NVL(TO_CHAR(id)")
    assert f"DBMS_CRYPTO.HASH({national_lob}, 2)" in rec.sql[1]
    bucket = ep.render().bucket([ColumnSpec("id", "int64")], 8)
    assert "UTL_I18N.STRING_TO_RAW(NVL(TO_CHAR(id), 'N'), 'AL32UTF8')" in bucket
    assert_parses(rec)
    unicode, _ = endpoint()
    assert unicode.checksum_sql(SPECS) == f"COUNT(*), {SUM}"  # AL32UTF8: TO_CHAR is UTF-8


def test_long_columns_are_compared_row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """A LONG / LONG RAW column cannot be read by any SQL function (ORA-00997): read_schema
    notes it, and the table's checksums render it as a random marker that never matches
    (its chunks are compared row by row, where the value is fetched as it is)."""
    from connectors.sql import base

    legacy = TableSchema(
        "legacy",
        [Column("id", PType("int64")), Column("note", PType("text")), Column("raw", PType("blob"))],
        primary_key=("id",),
    )
    ep, rec = endpoint()
    monkeypatch.setattr(base.SQLEndpoint, "read_schema", lambda self, table: legacy)
    rec.results = [[("ID", "NUMBER", 19, 0), ("NOTE", "LONG", None, None)]]
    schema = ep.read_schema("legacy")
    assert schema.column("note").notes == [
        "LONG cannot be read by SQL functions: checksums compare its table row by row"
    ]
    specs = [ColumnSpec("id", "int64"), ColumnSpec("note", "text")]
    select = ep.checksum_sql(specs)
    rec.statements.clear()
    rec.results = [[(2, 9)], [(2, 9)]]
    ep.checksum("legacy", ("id",), None, None, select)
    ep.checksum("orders", ("id",), None, None, select)  # another table: as rendered
    marker = "NVL('L' || RAWTOHEX(SYS_GUID()), 'N')"
    assert marker in rec.sql[0] and "LENGTH(note)" not in rec.sql[0]
    assert marker not in rec.sql[1] and "LENGTH(note)" in rec.sql[1]
    # the CLOB retry keeps the marker
    rec.statements.clear()
    rec.results = [ora_error(1489, "ORA-01489: result of string concatenation is too long"), []]
    ep.checksum_groups("legacy", "id", None, None, 0, 10, select)
    assert "DBMS_CRYPTO.HASH(" in rec.sql[1] and marker in rec.sql[1]
    assert "LENGTH(note)" not in rec.sql[1]
    assert_parses(rec)
    raw = ora._portable_native("LONG RAW", None, None)
    assert raw == (PType("blob"), None)


def test_json_and_xmltype_columns_are_compared_row_by_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Native JSON (21c) and XMLTYPE refuse LENGTH and || (ORA-00932): read_schema notes
    them and checksums render them as the LONG marker (their chunks go row by row)."""
    from connectors.sql import base

    docs = TableSchema(
        "docs",
        [Column("id", PType("int64")), Column("doc", PType("json")), Column("x", PType("text"))],
        primary_key=("id",),
    )
    ep, rec = endpoint()
    monkeypatch.setattr(base.SQLEndpoint, "read_schema", lambda self, table: docs)
    rec.results = [
        [("ID", "NUMBER", 19, 0), ("DOC", "JSON", None, None), ("X", "XMLTYPE", None, None)]
    ]
    schema = ep.read_schema("docs")
    assert schema.column("doc").notes == [ora.opaque_note("JSON")]
    assert schema.column("x").notes == [
        "XMLTYPE copied as its text form",
        ora.opaque_note("XMLTYPE"),
    ]
    specs = [ColumnSpec("id", "int64"), ColumnSpec("doc", "json"), ColumnSpec("x", "text")]
    select = ep.checksum_sql(specs)
    rec.statements.clear()
    rec.results = [[(2, 9)], ora_error(1489, "ORA-01489: result of string concatenation"), []]
    ep.checksum("docs", ("id",), None, None, select)
    ep.checksum_groups("docs", "id", None, None, 0, 10, select)
    marker = "NVL('L' || RAWTOHEX(SYS_GUID()), 'N')"
    for sql in rec.sql:
        assert sql.count(marker) == 2 and "(doc)" not in sql and "(x)" not in sql, sql
    assert "DBMS_CRYPTO.HASH(" in rec.sql[2]  # the CLOB form keeps the markers
    assert_parses(rec)
    assert ora.long_note("LONG RAW").startswith("LONG RAW cannot be read by SQL functions")


# == writes ===================================================================================
WIDE = TableSchema(
    "wide",
    [
        Column("id", PType("int64"), nullable=False),
        Column("flag", PType("boolean")),
        Column("price", PType("decimal", precision=10, scale=2)),
        Column("ratio", PType("float64")),
        Column("name", PType("varchar", length=20)),
        Column("body", PType("text")),
        Column("raw", PType("varbinary", length=16)),
        Column("img", PType("blob")),
        Column("day", PType("date")),
        Column("stamp", PType("datetime", precision=0)),
        Column("at", PType("datetime", precision=6)),
        Column("at_tz", PType("timestamptz", precision=6)),
        Column("tod", PType("time", precision=6)),
        Column("uid", PType("uuid")),
        Column("doc", PType("json")),
    ],
    primary_key=("id",),
)
# RAW and UID are reserved words in Oracle: quoted, as CREATE TABLE quotes them
INSERT_WIDE = (
    'INSERT INTO wide (id, flag, price, ratio, name, body, "raw", img, day, stamp, at, at_tz,'
    ' tod, "uid", doc) VALUES (:1, :2, :3, :4, :5, :6, :7, :8, :9, :10, :11, :12, :13, :14, :15)'
)


def spool_of(tmp_path: Path, *batches: list[tuple]) -> PickleSpool:
    spool = PickleSpool(tmp_path)
    for batch in batches:
        spool.add(batch)
    spool.close()
    return spool


def wide_row(i: int) -> tuple:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    return (
        i,
        True,
        Decimal("12.50"),
        1.5,
        "näme",
        "x" * 40000,
        bytearray(b"\x00\xff"),
        bytearray(b"\x01" * 3),
        dt.date(2024, 2, 29),
        dt.datetime(2024, 2, 29, 1, 2, 3),
        dt.datetime(2024, 2, 29, 1, 2, 3, 456789),
        dt.datetime(2024, 2, 29, 3, 2, 3, 456789, tzinfo=plus2),
        dt.time(23, 59, 59, 999999),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        {"a": [1, 2]},
    )


def test_array_dml_with_input_sizes(tmp_path: Path) -> None:
    ep, rec = endpoint()
    spool = spool_of(tmp_path, [wide_row(1), (2, *[None] * 14)], [wide_row(3)])
    assert ep.load_spool(WIDE, spool) == 3
    assert rec.sql == [INSERT_WIDE, INSERT_WIDE]
    assert rec.executemany_kwargs == [{"batcherrors": True}] * 2
    sizes = (
        oracledb.DB_TYPE_NUMBER,
        oracledb.DB_TYPE_NUMBER,
        oracledb.DB_TYPE_NUMBER,
        oracledb.DB_TYPE_BINARY_DOUBLE,
        80,  # VARCHAR2(20 CHAR): up to 80 bytes
        oracledb.DB_TYPE_LONG,  # CLOB: long strings, no temporary LOB per value
        oracledb.DB_TYPE_RAW,
        oracledb.DB_TYPE_LONG_RAW,
        oracledb.DB_TYPE_DATE,
        oracledb.DB_TYPE_DATE,  # datetime(0) is a DATE column
        oracledb.DB_TYPE_TIMESTAMP,  # keeps the microseconds (a datetime binds as DATE)
        oracledb.DB_TYPE_TIMESTAMP_TZ,
        oracledb.DB_TYPE_INTERVAL_DS,
        36,
        oracledb.DB_TYPE_LONG,
    )
    assert rec.inputsizes == [sizes, sizes]
    first = rec.statements[0][1][0]
    assert first == (
        1,
        1,
        Decimal("12.50"),
        1.5,
        "näme",
        "x" * 40000,
        b"\x00\xff",
        b"\x01\x01\x01",
        dt.date(2024, 2, 29),
        dt.datetime(2024, 2, 29, 1, 2, 3),
        dt.datetime(2024, 2, 29, 1, 2, 3, 456789),
        dt.datetime(2024, 2, 29, 1, 2, 3, 456789),  # in UTC: the driver ignores tzinfo
        dt.timedelta(hours=23, minutes=59, seconds=59, microseconds=999999),
        "12345678-1234-5678-1234-567812345678",
        '{"a": [1, 2]}',
    )
    assert rec.statements[0][1][1] == (2, *[None] * 14)
    assert rec.commits == 1 and rec.rollbacks == 0
    assert_parses(rec)


def test_text_binds_national_in_a_non_unicode_database(tmp_path: Path) -> None:
    """NVARCHAR2 / NCLOB columns are bound as NVARCHAR / LONG NVARCHAR: a VARCHAR2 bind
    would pass through the database character set and lose what it lacks."""
    ep, rec = endpoint()
    ep.charset = "WE8MSWIN1252"
    ep.load_spool(WIDE, spool_of(tmp_path, [wide_row(1)]))
    (sizes,) = rec.inputsizes
    assert sizes[4] is oracledb.DB_TYPE_NVARCHAR  # varchar(20)
    assert sizes[5] is oracledb.DB_TYPE_LONG_NVARCHAR  # text
    assert sizes[13] == 36  # uuid: CHAR(36), ASCII
    assert sizes[14] is oracledb.DB_TYPE_LONG_NVARCHAR  # json
    assert rec.statements[0][1][0][4] == "näme"


def test_refused_rows_are_named_by_offset_key_and_message(tmp_path: Path) -> None:
    ep, rec = endpoint()
    rows = [(1000 + i, "n") for i in range(30)]
    schema = TableSchema(
        "people",
        [Column("id", PType("int64"), nullable=False), Column("name", PType("varchar", length=1))],
        primary_key=("id",),
    )
    spool = spool_of(tmp_path, rows[:10], rows[10:])
    too_large = (
        'ORA-12899: value too large for column "SCOTT"."PEOPLE"."NAME" (actual: 3, maximum: 1)'
    )
    rec.batch_errors = [
        ora_errors._Error(
            f"{too_large}\nHelp: https://docs.oracle.com/error-help/db/ora-12899/",
            code=12899,
            offset=7,
        ),
        ora_errors._Error(
            'ORA-01400: cannot insert NULL into ("SCOTT"."PEOPLE"."ID")', code=1400, offset=9
        ),
    ]
    with pytest.raises(ConnectorError) as err:
        ep.load_spool(schema, spool)
    assert str(err.value) == (
        f"t: writing rows to people: 2 rows refused; first: row 7 (id=1007): {too_large};"
        ' row 9 (id=1009): ORA-01400: cannot insert NULL into ("SCOTT"."PEOPLE"."ID")'
    )
    assert rec.rollbacks >= 1 and rec.commits == 0
    assert len(rec.statements) == 1  # the first batch failed: nothing more was sent


# == upserts, deletes =========================================================================
MERGE = (
    "MERGE INTO orders t USING ora$ptt_migrate_stage s ON (t.id = s.id) WHEN MATCHED THEN"
    " UPDATE SET t.note = s.note, t.at = s.at, t.tod = s.tod WHERE NOT (((t.note IS NULL AND"
    " s.note IS NULL) OR (t.note IS NOT NULL AND s.note IS NOT NULL AND"
    " DBMS_LOB.COMPARE(t.note, s.note) = 0)) AND DECODE(t.at, s.at, 1, 0) = 1 AND"
    " DECODE(t.tod, s.tod, 1, 0) = 1) WHEN NOT MATCHED THEN INSERT (id, note, at, tod)"
    " VALUES (s.id, s.note, s.at, s.tod)"
)
STAGE = (
    "CREATE PRIVATE TEMPORARY TABLE ora$ptt_migrate_stage ON COMMIT DROP DEFINITION AS SELECT *"
    " FROM orders WHERE 1 = 0"
)
CHANGED = (
    "SELECT COUNT(*) FROM ora$ptt_migrate_stage s LEFT JOIN orders t ON s.id = t.id WHERE t.id"
    " IS NULL OR NOT (((s.note IS NULL AND t.note IS NULL) OR (s.note IS NOT NULL AND t.note"
    " IS NOT NULL AND DBMS_LOB.COMPARE(s.note, t.note) = 0)) AND DECODE(s.at, t.at, 1, 0) = 1"
    " AND DECODE(s.tod, t.tod, 1, 0) = 1)"
)
STAGE_INSERT = "INSERT INTO ora$ptt_migrate_stage (id, note, at, tod) VALUES (:1, :2, :3, :4)"


def test_merge_through_a_private_temporary_table(tmp_path: Path) -> None:
    ep, rec = endpoint((19, 0))
    spool = spool_of(tmp_path, [(1, "a", None, None), (2, None, None, dt.time(1, 2))])
    rec.results = [None, None, [(1,)], None, 2]
    assert ep.merge_spool(ORDERS, ("id",), spool) == (2, 1)
    assert rec.sql == [STAGE, STAGE_INSERT, CHANGED, "SAVEPOINT migrate_upsert", MERGE]
    assert rec.commits == 1  # no RELEASE SAVEPOINT in Oracle; the stage goes with the commit
    for sql in (STAGE_INSERT, CHANGED, MERGE, "ROLLBACK TO SAVEPOINT migrate_upsert"):
        assert not isinstance(oracle_sql(sql), exp.Command), sql
    # sqlglot has no grammar for private temporary tables: checked as a plain CTAS
    oracle_sql(
        STAGE.replace("PRIVATE TEMPORARY TABLE", "TABLE").replace(" ON COMMIT DROP DEFINITION", "")
    )


def test_merge_without_other_columns_only_inserts() -> None:
    ep, _ = endpoint()
    keys_only = TableSchema(
        "tags", [Column("id", PType("int64"), nullable=False)], primary_key=("id",)
    )
    assert ep.upsert_from_stage(keys_only, ("id",)) == (
        "MERGE INTO tags t USING ora$ptt_migrate_stage s ON (t.id = s.id) WHEN NOT MATCHED THEN"
        " INSERT (id) VALUES (s.id)"
    )


def test_merge_falls_back_on_a_unique_violation(tmp_path: Path) -> None:
    ep, rec = endpoint()
    spool = spool_of(tmp_path, [(1, "a", None, None)])
    dup = ora_error(1, "ORA-00001: unique constraint (SCOTT.UQ_ORDERS_NOTE) violated")
    rec.results = [None, None, [(1,)], None, dup, None, 1, 1]
    assert ep.merge_spool(ORDERS, ("id",), spool) == (1, 1)
    assert rec.sql[4:] == [
        MERGE,
        "ROLLBACK TO SAVEPOINT migrate_upsert",
        "DELETE FROM orders WHERE EXISTS (SELECT 1 FROM ora$ptt_migrate_stage WHERE"
        " ora$ptt_migrate_stage.id = orders.id)",
        "INSERT INTO orders (id, note, at, tod) SELECT id, note, at, tod FROM"
        " ora$ptt_migrate_stage",
    ]
    for sql in rec.sql[6:]:
        oracle_sql(sql)
    rec.statements.clear()
    rec.results = [None, None, [(1,)], None, dup, None, None, dup]
    with pytest.raises(ConnectorError, match=r"unique index SCOTT\.UQ_ORDERS_NOTE"):
        ep.merge_spool(ORDERS, ("id",), spool_of(tmp_path, [(1, "a", None, None)]))


def test_merge_needs_18c(tmp_path: Path) -> None:
    ep, rec = endpoint((12, 2))
    with pytest.raises(ConnectorError, match=r"needs Oracle 18c or later .* this server is 12\.2"):
        ep.merge_spool(ORDERS, ("id",), spool_of(tmp_path, [(1, "a", None, None)]))
    assert rec.commits == 0


def _sql_value(node: exp.Expression, env: dict[str, Any]) -> Any:
    """A condition of the generated SQL evaluated with SQL's three-valued logic (None is
    NULL / UNKNOWN), for the operators :meth:`OracleEndpoint.same_value` writes:
    ``DBMS_LOB.COMPARE`` as Oracle documents it (NULL when either LOB is NULL, 0 when
    they are equal) and ``DECODE`` (which finds two NULLs equal)."""
    if isinstance(node, (exp.Paren, exp.Where)):
        return _sql_value(node.this, env)
    if isinstance(node, exp.Column):
        return env[node.sql()]
    if isinstance(node, exp.Literal):
        return int(node.this)
    if isinstance(node, exp.Is):
        assert isinstance(node.expression, exp.Null)
        return _sql_value(node.this, env) is None
    if isinstance(node, exp.Not):
        v = _sql_value(node.this, env)
        return None if v is None else not v
    if isinstance(node, (exp.And, exp.Or)):
        a, b = _sql_value(node.this, env), _sql_value(node.expression, env)
        decisive = isinstance(node, exp.Or)  # TRUE decides an OR, FALSE an AND
        if decisive in (a, b):
            return decisive
        return None if None in (a, b) else not decisive
    if isinstance(node, exp.EQ):
        a, b = _sql_value(node.this, env), _sql_value(node.expression, env)
        return None if a is None or b is None else a == b
    if isinstance(node, exp.Dot) and node.this.name.upper() == "DBMS_LOB":
        assert node.expression.name.upper() == "COMPARE"
        a, b = (_sql_value(x, env) for x in node.expression.expressions)
        return None if a is None or b is None else int(a != b)
    if isinstance(node, exp.DecodeCase):
        a, b, same, differ = (_sql_value(x, env) for x in node.expressions)
        return same if a == b else differ
    raise AssertionError(f"not evaluated: {node.sql('oracle')}")


@pytest.mark.parametrize("kind", ["text", "json", "blob", "varchar", "int64"])
def test_same_value_is_true_or_false_for_every_null_combination(kind: str) -> None:
    """The MERGE updates ``WHERE NOT (same)`` and changed_sql counts ``OR NOT (same)``: a
    NULL ``same`` (DBMS_LOB.COMPARE of a NULL) would skip a LOB changing between NULL and
    a value. Evaluated on the parsed SQL, ``same`` is TRUE or FALSE in every case."""
    ep, _ = endpoint()
    same = ep.same_value("t.v", "s.v", Column("v", PType(kind)))
    cond = oracle_sql(f"SELECT 1 FROM dual WHERE {same}").args["where"]
    cases = {
        (None, None): True,
        (None, "x"): False,
        ("x", None): False,
        ("x", "x"): True,
        ("x", "y"): False,
    }
    for (a, b), want in cases.items():
        assert _sql_value(cond, {"t.v": a, "s.v": b}) is want, (a, b)
    schema = TableSchema("d", [Column("id", PType("int64")), Column("v", PType(kind))])
    assert f"WHERE NOT ({same})" in ep.upsert_from_stage(schema, ("id",))
    assert f"OR NOT ({ep.same_value('s.v', 't.v', schema.columns[1])})" in ep.changed_sql(
        schema, ("id",)
    )


def test_deletes() -> None:
    ep, rec = endpoint()
    rec.results = [500, 2, 1, 1, 4]
    assert ep.delete_keys("orders", ("id",), [(i,) for i in range(1, 503)]) == 502
    assert ep.delete_keys("lines", ("order_id", "line"), [(1, 1), (1, 2)]) >= 0
    assert ep.delete_range("orders", ("id",), (1,), (9,)) == 1
    first, second = rec.statements[:2]
    assert (
        first[0]
        == "DELETE FROM orders WHERE id IN (" + ", ".join(f":id_1_{i}" for i in range(1, 501)) + ")"
    )
    assert list(first[1].values()) == list(range(1, 501))  # at most 500: Oracle allows 1000
    assert second == (
        "DELETE FROM orders WHERE id IN (:id_1_1, :id_1_2)",
        {"id_1_1": 501, "id_1_2": 502},
    )
    assert rec.statements[2] == (
        "DELETE FROM lines WHERE lines.order_id = :k0 AND lines.line = :k1",
        [{"k0": 1, "k1": 1}, {"k0": 1, "k1": 2}],
    )
    assert rec.statements[3] == (
        "DELETE FROM orders WHERE orders.id > :id_1 AND orders.id <= :id_2",
        {"id_1": 1, "id_2": 9},
    )
    assert_parses(rec)


BACKUP = "migrate_bak_orders"


def _undo(action: str, obj: str = "orders", uid: int = 12, **detail: Any) -> dict[str, Any]:
    d = {"backup": BACKUP, "table_columns": ORDERS.column_names, "source_table": "orders"}
    return {"id": uid, "action": action, "object": obj, "detail": {**d, **detail}}


def test_a_merge_and_deletes_keep_the_rows_they_change_first(tmp_path: Path) -> None:
    """In the merge's transaction, before the MERGE: the rows that will change (whole)
    and the new keys; before each DELETE, the rows it deletes, with the same binds."""
    from migrate.backup import RowBackup

    ep, rec = endpoint((19, 0))
    backup = RowBackup(BACKUP, ORDERS.column_names, ["id"], lambda: 7)
    spool = spool_of(tmp_path, [(1, "a", None, None)])
    rec.results = [None, None, [(1,)], None, None, None, 1]
    assert ep.merge_spool(ORDERS, ("id",), spool, backup=backup) == (1, 1)
    differs = CHANGED.split(" WHERE t.id IS NULL OR ")[1]
    assert rec.sql == [
        STAGE,
        STAGE_INSERT,
        CHANGED,
        f"INSERT INTO {BACKUP} (migrate_undo, migrate_op, id, note, at, tod) SELECT 7, 'u',"
        " t.id, t.note, t.at, t.tod FROM ora$ptt_migrate_stage s JOIN orders t ON s.id = t.id"
        f" WHERE {differs}",
        f"INSERT INTO {BACKUP} (migrate_undo, migrate_op, id) SELECT 7, 'i', s.id FROM"
        " ora$ptt_migrate_stage s LEFT JOIN orders t ON s.id = t.id WHERE t.id IS NULL",
        "SAVEPOINT migrate_upsert",
        MERGE,
    ]
    ep, rec = endpoint()
    lines = RowBackup("migrate_bak_lines", LINES.column_names, ["order_id", "line"], lambda: 9)
    ep.delete_keys("lines", ("order_id", "line"), [(1, 1), (1, 2)], backup=lines)
    ep.delete_keys("orders", ("id",), [(1,), (2,)], backup=backup)
    by_key = "WHERE lines.order_id = :k0 AND lines.line = :k1"
    assert rec.statements == [
        (
            "INSERT INTO migrate_bak_lines (migrate_undo, migrate_op, order_id, line, qty)"
            f" SELECT 9, 'd', order_id, line, qty FROM lines {by_key}",
            [{"k0": 1, "k1": 1}, {"k0": 1, "k1": 2}],
        ),
        (f"DELETE FROM lines {by_key}", [{"k0": 1, "k1": 1}, {"k0": 1, "k1": 2}]),
        (
            f"INSERT INTO {BACKUP} (migrate_undo, migrate_op, id, note, at, tod) SELECT 7, 'd',"
            " id, note, at, tod FROM orders WHERE id IN (:id_1_1, :id_1_2)",
            {"id_1_1": 1, "id_1_2": 2},
        ),
        ("DELETE FROM orders WHERE id IN (:id_1_1, :id_1_2)", {"id_1_1": 1, "id_1_2": 2}),
    ]
    assert_parses(rec)


def test_undo_statements_in_oracle_sql() -> None:
    """Plain statements without a trailing semicolon; an identity column is moved past
    the rows put back (its schema: recorded for a replaced table, read for an emptied
    one); the drop of a backup table before 23ai ignores a table already gone."""
    from dataclasses import replace

    from migrate.backup import schema_to_json

    ep, _ = endpoint()
    table = replace(
        replace_column(ORDERS, "id", autoincrement=True),
        indexes=[Index("orders_at", ("at",))],
        foreign_keys=[ForeignKey("fk_l", ("id",), "lines", ("order_id",), "CASCADE")],
    )
    ep.read_schema = lambda name: table  # what the emptied table has now
    cols = "id, note, at, tod"
    restart = (
        "ALTER TABLE orders MODIFY (id GENERATED BY DEFAULT ON NULL AS IDENTITY (START WITH"
        " LIMIT VALUE))"
    )
    forget = f"DELETE FROM {BACKUP} WHERE migrate_undo = 12"
    put_back = f"INSERT INTO orders ({cols}) SELECT {cols} FROM {BACKUP} WHERE migrate_undo = 12"
    rows = ep.undo_statements(_undo("restore_rows", key=["id"]))
    assert rows == [
        f"DELETE FROM orders WHERE id IN (SELECT id FROM {BACKUP} WHERE migrate_undo = 12)",
        f"{put_back} AND migrate_op IN ('u', 'd')",
        forget,
    ]
    two = ep.undo_statements(_undo("restore_rows", obj="lines", key=["order_id", "line"]))
    assert two[0] == (
        f"DELETE FROM lines WHERE (order_id, line) IN (SELECT order_id, line FROM {BACKUP} WHERE"
        " migrate_undo = 12)"
    )
    emptied = ep.undo_statements(_undo("emptied_table"))
    whole = f"{put_back} AND migrate_op = 'd'"  # not the mark (op m)
    assert emptied == ["DELETE FROM orders", whole, restart, forget]
    replaced = ep.undo_statements(_undo("replaced_table", schema=schema_to_json(table)))
    assert replaced == [
        "DROP TABLE IF EXISTS orders",
        "CREATE TABLE orders (\n\tid NUMBER(19) GENERATED BY DEFAULT ON NULL AS IDENTITY,"
        " \n\tnote CLOB, \n\tat TIMESTAMP(6) WITH TIME ZONE, \n\ttod INTERVAL DAY(0) TO"
        " SECOND(6), \n\tPRIMARY KEY (id)\n)",
        whole,
        "CREATE INDEX orders_at ON orders (at)",
        "ALTER TABLE orders ADD CONSTRAINT fk_l FOREIGN KEY (id) REFERENCES lines (order_id)"
        " ON DELETE CASCADE",
        restart,
        forget,
    ]
    for sql in [*rows, *two, *emptied, *replaced]:
        assert not sql.rstrip().endswith(";"), sql
        tree = oracle_sql(sql)
        assert isinstance(tree, exp.Command) == (sql == restart), sql
    ep19, _ = endpoint((19, 0))
    gone = _undo("drop_backup_table", obj=BACKUP, table="orders")
    assert (
        ep19.undo_statements(gone)
        == ep19.cleanup_statements(gone)
        == [
            f"BEGIN EXECUTE IMMEDIATE 'DROP TABLE {BACKUP}'; EXCEPTION WHEN OTHERS THEN IF SQLCODE"
            " != -942 THEN RAISE; END IF; END;"
        ]
    )


CODES = TableSchema(
    "codes",
    [
        Column("code", PType("char", length=4), nullable=False),
        Column("region", PType("char", length=3), nullable=False),
        Column("name", PType("varchar", length=20)),
    ],
    primary_key=("code", "region"),
)
ORACLE_CAPS = Capabilities(
    engine="oracle", bulk_load="array dml", max_identifier_length=128, max_bind_params=65535
)


def test_char_from_oracle_stays_char_and_from_elsewhere_is_varchar2() -> None:
    ep, _ = endpoint()
    kept = ep.target_schema(CODES, ORACLE_CAPS)
    assert "code CHAR(4 CHAR) NOT NULL" in ep.create_table_sql(kept)
    assert kept.columns[0].notes == []
    moved = ep.target_schema(CODES, MYSQL_CAPS)
    sql = ep.create_table_sql(moved)
    assert "code VARCHAR2(4 CHAR) NOT NULL, \n\tregion VARCHAR2(3 CHAR) NOT NULL" in sql
    assert moved.columns[0].notes == [
        ora.char_note(4),
        "'' values are refused: Oracle stores '' as NULL and the column is in the key",
    ]


def _char_keys_endpoint(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Recorder]:
    """An endpoint that has read ``codes`` (CHAR(4), CHAR(3) key; VARCHAR2 name) from
    the data dictionary."""
    from connectors.sql import base

    ep, rec = endpoint()
    monkeypatch.setattr(base.SQLEndpoint, "read_schema", lambda self, table: CODES)
    rec.results = [[("CODE", "CHAR", None, None), ("REGION", "NCHAR", None, None),
                    ("NAME", "VARCHAR2", None, None)]]  # fmt: skip
    ep.read_schema("codes")
    rec.statements.clear()
    return ep, rec


def test_char_keys_bind_as_char(monkeypatch: pytest.MonkeyPatch) -> None:
    """Oracle compares blank-padded only when both sides are CHAR: a key read from another
    engine ('ab') must bind as CHAR to find the stored 'ab  ' (deletes, row reads, range
    bounds); the input type handler makes the variable of that type."""
    ep, rec = _char_keys_endpoint(monkeypatch)
    rec.results = [2, [], [(0,)], 0]
    ep.delete_keys("codes", ("code", "region"), [("ab", "x"), ("cd", "y")])
    ep.read_rows(CODES, ("code", "region"), [("ab", "x")])
    ep.count("codes", ("code", "region"), ("ab", "x"), ("cd", "y"))
    ep.delete_range("codes", ("code", "region"), None, ("cd", "y"))
    bound = []
    for _, params in rec.statements:
        rows = params if isinstance(params, list) else [params]
        for row in rows:
            bound += [v for v in row.values() if isinstance(v, str)]
    assert bound and all(isinstance(v, ora.KeyBind) for v in bound), bound
    types = {(str(v), v.dbtype) for v in bound}
    assert ("ab", "DB_TYPE_CHAR") in types and ("x", "DB_TYPE_NCHAR") in types
    assert_parses(rec)
    # one key column: the IN list binds the same way
    rec.statements.clear()
    ep.delete_keys("codes", ("code",), [("ab",)])
    (value,) = rec.statements[0][1].values()
    assert isinstance(value, ora.KeyBind) and value.dbtype == "DB_TYPE_CHAR"
    # the handler: a KeyBind as its type (the variable grows with longer values),
    # anything else as the driver decides
    var = ora.input_type_handler(FakeCursor(), value, 3)
    assert (var.typ, var.arraysize) == (oracledb.DB_TYPE_CHAR, 3)
    nchar = ora.input_type_handler(FakeCursor(), ora.KeyBind("x", "DB_TYPE_NCHAR"), 1)
    assert nchar.typ is oracledb.DB_TYPE_NCHAR
    assert ora.input_type_handler(FakeCursor(), "ab", 1) is None
    assert ora.input_type_handler(FakeCursor(), 7, 1) is None
    # other tables and non-text values are left alone
    assert ep._bind_key("orders", ("id",), (1,)) == (1,)
    assert ep._bind_key("codes", ("code", "region"), (None, "x"))[0] is None
    import pickle

    assert pickle.loads(pickle.dumps(value)).dbtype == "DB_TYPE_CHAR"


def test_created_char_and_national_columns_bind_as_their_type() -> None:
    ep, rec = endpoint()
    ep.create_table_sql(ep.target_schema(CODES, ORACLE_CAPS))  # CHAR kept
    rec.results = [[(0,)]]
    ep.count("codes", ("code",), ("ab",), None)
    (value,) = rec.statements[-1][1].values()
    assert isinstance(value, ora.KeyBind) and value.dbtype == "DB_TYPE_CHAR"
    national, rec = endpoint()
    national.charset = "WE8MSWIN1252"
    national.create_table_sql(national.target_schema(CODES, MYSQL_CAPS))  # NVARCHAR2
    rec.results = [[(0,)]]
    national.count("codes", ("code",), ("ab",), None)
    (value,) = rec.statements[-1][1].values()
    assert isinstance(value, ora.KeyBind) and value.dbtype == "DB_TYPE_NVARCHAR"


def test_key_types_are_read_on_first_use() -> None:
    """A resumed copy or a later catch-up deletes and reads by key without read_schema or
    create_table_ddl: the column types are read once from USER_TAB_COLUMNS (with the name
    as Oracle stores it) and CHAR / NCHAR / NVARCHAR2 key values bind as their type."""
    ep, rec = endpoint()
    rec.results = [
        [("CODE", "CHAR"), ("REGION", "NCHAR"), ("NAME", "VARCHAR2"), ("DOC", "JSON")],
        2,
        [],
        0,
        [(0,)],
    ]
    ep.delete_keys("codes", ("code", "region"), [("ab", "x"), ("cd", "y")])
    ep.read_rows(CODES, ("code", "region"), [("ab", "x")])
    ep.delete_range("codes", ("code", "region"), ("ab", "x"), None)
    ep.count("codes", ("code",), ("ab",), None)
    lookup = "SELECT COLUMN_NAME, DATA_TYPE FROM USER_TAB_COLUMNS WHERE TABLE_NAME = :1"
    assert rec.statements[0] == (lookup, ("CODES",))
    assert [s for s in rec.sql if "USER_TAB_COLUMNS" in s] == [lookup]  # once
    bound = []
    for _, params in rec.statements[1:]:
        for row in params if isinstance(params, list) else [params]:
            bound += [v for v in row.values() if isinstance(v, str)]
    assert bound and all(isinstance(v, ora.KeyBind) for v in bound), bound
    assert {(str(v), v.dbtype) for v in bound} == {
        ("ab", "DB_TYPE_CHAR"),
        ("cd", "DB_TYPE_CHAR"),
        ("x", "DB_TYPE_NCHAR"),
        ("y", "DB_TYPE_NCHAR"),
    }
    assert ep._long_columns["codes"] == frozenset({"doc"})  # its checksums: row by row
    assert_parses(rec)
    # a quoted mixed-case name is looked up as spelled; whole-number keys need no lookup
    ep, rec = endpoint()
    rec.results = [2, [("Code", "NVARCHAR2")], 1]
    ep.delete_keys("orders", ("id",), [(1,), (2,)])
    ep.delete_keys("Codes", ("Code",), [("ab",)])
    assert rec.statements[1] == (lookup, ("Codes",))
    (value,) = rec.statements[2][1].values()
    assert isinstance(value, ora.KeyBind) and value.dbtype == "DB_TYPE_NVARCHAR"
    # a failed lookup is one line naming what was done
    ep, rec = endpoint()
    rec.results = [ora_error(942, "ORA-00942: table or view does not exist")]
    with pytest.raises(ConnectorError, match="reading the column types of codes"):
        ep.delete_keys("codes", ("code",), [("ab",)])


def test_index_fk_drop_and_identity_ddl() -> None:
    ep, rec = endpoint()
    assert ep.index_ddl(ORDERS, Index("orders_ix_at", ("at", "id"), unique=True)) == (
        "CREATE UNIQUE INDEX orders_ix_at ON orders (at, id)"
    )
    fk = ForeignKey("fk_lines_orders", ("order_id",), "orders", ("id",), "CASCADE", "CASCADE")
    assert ep.fk_ddl(LINES, fk) == (
        "ALTER TABLE lines ADD CONSTRAINT fk_lines_orders FOREIGN KEY (order_id) REFERENCES"
        " orders (id) ON DELETE CASCADE"
    )
    plain = ForeignKey(None, ("order_id",), "orders", ("id",), "NO ACTION", None)
    assert ep.fk_ddl(LINES, plain) == (
        "ALTER TABLE lines ADD FOREIGN KEY (order_id) REFERENCES orders (id)"
    )
    assert ep.drop_table_sql("orders") == "DROP TABLE IF EXISTS orders"
    ep19, _ = endpoint((19, 0))
    block = ep19.drop_table_sql("Order's")
    assert block == (
        "BEGIN EXECUTE IMMEDIATE 'DROP TABLE \"Order''s\"'; EXCEPTION WHEN OTHERS THEN"
        " IF SQLCODE != -942 THEN RAISE; END IF; END;"
    )
    ep.finish_table(replace_column(ORDERS, "id", autoincrement=True))
    assert rec.sql == [
        "ALTER TABLE orders MODIFY (id GENERATED BY DEFAULT ON NULL AS IDENTITY (START WITH"
        " LIMIT VALUE))"
    ]
    for sql in (
        ep.index_ddl(ORDERS, Index("orders_ix_at", ("at",))),
        ep.fk_ddl(LINES, fk),
        ep.drop_table_sql("orders"),
        'DROP TABLE "Order\'s"',  # the statement inside the PL/SQL block
    ):
        assert not isinstance(oracle_sql(sql), exp.Command), sql
    # sqlglot has no grammar for MODIFY ... IDENTITY: it must at least read as one command
    assert isinstance(oracle_sql(rec.sql[0]), exp.Command)


def test_identity_on_null_with_sqlalchemy_2_0_and_2_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLAlchemy 2.1 spells ON NULL ``oracle_on_null`` (``on_null`` is deprecated); 2.0's
    Identity takes no dialect keyword (TypeError) and only ``on_null``: the same DDL."""
    import warnings

    import sqlalchemy as sa

    ep, _ = endpoint()
    schema = replace_column(ORDERS, "id", autoincrement=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 2.1: no deprecated keyword is used
        want = ep.create_table_sql(schema)
    assert "id NUMBER(19) GENERATED BY DEFAULT ON NULL AS IDENTITY" in want

    real = sa.Identity

    class Identity20(real):  # type: ignore[misc, valid-type]
        def __init__(self, always: bool = False, on_null: bool | None = None) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # 2.1 maps it to oracle_on_null
                super().__init__(always=always, on_null=on_null)

    monkeypatch.setattr(sa, "Identity", Identity20)
    assert isinstance(ora.identity_on_null(), Identity20)
    assert ep.create_table_sql(schema) == want


def replace_column(schema: TableSchema, name: str, **changes: Any) -> TableSchema:
    from dataclasses import replace

    return replace(
        schema,
        columns=[replace(c, **changes) if c.name == name else c for c in schema.columns],
    )


# == sessions and values ======================================================================
def test_session_settings_and_read_only_dry_runs() -> None:
    ep, _ = endpoint()
    conn = Recorder()
    ep.on_connect(conn)
    assert conn.sql == [
        "ALTER SESSION SET TIME_ZONE = 'UTC' NLS_DATE_FORMAT = 'YYYY-MM-DD HH24:MI:SS'"
        " NLS_TIMESTAMP_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF'"
        " NLS_TIMESTAMP_TZ_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF TZH:TZM'"
        " NLS_NUMERIC_CHARACTERS = '.,'"
    ]
    assert conn.outputtypehandler is output_type_handler  # type: ignore[attr-defined]
    assert conn.inputtypehandler is ora.input_type_handler  # type: ignore[attr-defined]
    ep.on_checkout(conn)
    assert len(conn.sql) == 1  # not a dry run: nothing more
    dry = OracleEndpoint("t", URL, {}, base_dir=Path("."), dry_run=True)
    checked_out = Recorder()
    dry.on_checkout(checked_out)
    assert checked_out.sql == ["SET TRANSACTION READ ONLY"]
    assert isinstance(oracle_sql(checked_out.sql[0]), exp.Set)
    # sqlglot reads ALTER SESSION only as a command: it must at least be one statement
    assert len(sqlglot.parse(conn.sql[0], read="oracle")) == 1


class FakeCursor:
    """What ``output_type_handler`` receives: python-oracledb's ``cursor.var`` records."""

    arraysize = 2000

    def var(self, typ: Any, size: Any = None, arraysize: int = 0, outconverter: Any = None) -> Any:
        return SimpleNamespace(typ=typ, size=size, arraysize=arraysize, outconverter=outconverter)


def fetch_info(code: Any, precision: int = 0, scale: int = 0) -> Any:
    return SimpleNamespace(type_code=code, precision=precision, scale=scale)


def test_output_type_handler_fetches_exactly() -> None:
    cur = FakeCursor()
    handle = output_type_handler
    # NUMBER(p): the driver's int; FLOAT(b): its float; BINARY_DOUBLE: float
    assert handle(cur, fetch_info(oracledb.DB_TYPE_NUMBER, 10, 0)) is None
    assert handle(cur, fetch_info(oracledb.DB_TYPE_NUMBER, 126, -127)) is None
    assert handle(cur, fetch_info(oracledb.DB_TYPE_BINARY_DOUBLE)) is None
    # NUMBER(p, s): Decimal
    var = handle(cur, fetch_info(oracledb.DB_TYPE_NUMBER, 10, 2))
    assert (var.typ, var.arraysize) == (Decimal, 2000)
    # NUMBER (no precision), COUNT(*), SUM(...): through the text, int or Decimal
    var = handle(cur, fetch_info(oracledb.DB_TYPE_NUMBER, 0, -127))
    assert (var.typ, var.size) == (oracledb.DB_TYPE_VARCHAR, 255)
    convert = var.outconverter
    assert convert("42") == 42 and type(convert("42")) is int
    assert (
        convert("12345678901234567890123456789012345678") == 12345678901234567890123456789012345678
    )
    assert convert("-.5") == Decimal("-0.5") and convert("1.0E-130") == Decimal("1E-130")
    # NUMBER(p, -n) (whole numbers rounded to 10**n): the driver would fetch a float
    var = handle(cur, fetch_info(oracledb.DB_TYPE_NUMBER, 5, -2))
    assert (var.typ, var.size) == (oracledb.DB_TYPE_VARCHAR, 255)
    big = var.outconverter("123456789012345678900")
    assert big == 123456789012345678900 and type(big) is int
    # NUMBER(*, -n): no declared precision (0 in the metadata), same
    var = handle(cur, fetch_info(oracledb.DB_TYPE_NUMBER, 0, -2))
    assert (var.typ, var.size) == (oracledb.DB_TYPE_VARCHAR, 255)
    assert var.outconverter(str(2**60 + 100)) == 2**60 + 100
    # LOBs whole, as str and bytes
    assert handle(cur, fetch_info(oracledb.DB_TYPE_CLOB)).typ is oracledb.DB_TYPE_LONG
    assert handle(cur, fetch_info(oracledb.DB_TYPE_NCLOB)).typ is oracledb.DB_TYPE_LONG_NVARCHAR
    assert handle(cur, fetch_info(oracledb.DB_TYPE_BLOB)).typ is oracledb.DB_TYPE_LONG_RAW
    # native JSON (21c) as its text, numbers exact
    to_text = handle(cur, fetch_info(oracledb.DB_TYPE_JSON)).outconverter
    doc = {"a": Decimal("1.10"), "b": [True, None, 'é"'], "c": oracledb.Date(2024, 1, 2)}
    assert to_text(doc) == '{"a": 1.10, "b": [true, null, "é\\""], "c": "2024-01-02"}'
    # everything else as the driver fetches it
    assert handle(cur, fetch_info(oracledb.DB_TYPE_TIMESTAMP)) is None


def test_values_round_trip_through_the_driver_types() -> None:
    ep, _ = endpoint()
    schema = TableSchema(
        "v",
        [
            Column("at_tz", PType("timestamptz", precision=6)),
            Column("tod", PType("time", precision=6)),
            Column("day", PType("date")),
            Column("at", PType("datetime", precision=0)),
            Column("span", PType("text"), notes=["INTERVAL DAY TO SECOND copied as its text form"]),
            Column("doc", PType("json")),
        ],
    )
    convert = ep.row_converter(schema)
    assert convert is not None
    # as python-oracledb returns them: SYS_EXTRACT_UTC as a naive Timestamp, INTERVAL DAY
    # TO SECOND as a timedelta, DATE as a Timestamp
    fetched = (
        oracledb.Timestamp(2024, 2, 29, 23, 59, 59).replace(microsecond=999999),
        dt.timedelta(hours=13, minutes=5, seconds=7, microseconds=250),
        oracledb.Timestamp(2024, 2, 29, 0, 0, 0),
        oracledb.Timestamp(2024, 2, 29, 1, 2, 3),
        "+01 02:03:04.000000",
        '{"a": 1}',
    )
    assert convert(fetched) == (
        dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.time(13, 5, 7, 250),
        dt.date(2024, 2, 29),
        dt.datetime(2024, 2, 29, 1, 2, 3),
        "+01 02:03:04.000000",
        '{"a": 1}',
    )
    # and back: the values bound for the same columns
    to_db = ep.value_adapters(schema)
    back = tuple(f(v) for f, v in zip(to_db, convert(fetched), strict=True))
    assert back[0] == dt.datetime(2024, 2, 29, 23, 59, 59, 999999)  # UTC, naive
    assert back[1] == fetched[1]
    assert convert(back[:1] + fetched[1:])[0] == convert(fetched)[0]
    # a NULL stays NULL; an interval of a day or more is not a time
    assert convert((None,) * 6) == (None,) * 6
    assert ora._interval_to_time(dt.timedelta(days=1)) == dt.timedelta(days=1)


# == connection errors ========================================================================
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connect(url: str, **options: Any) -> ConnectorError:
    ep = OracleEndpoint("t", url, options, base_dir=Path("."))
    started = time.monotonic()
    with pytest.raises(ConnectorError) as err:
        ep.engine  # noqa: B018
    err.value.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
    return err.value


def assert_one_line(error: ConnectorError) -> str:
    text = str(error)
    assert "\n" not in text and "s3cretpw" not in text, text
    return text


def test_closed_port_fails_fast_in_one_line() -> None:
    port = free_port()
    error = connect(f"oracle+oracledb://scott:s3cretpw@127.0.0.1:{port}/?service_name=FREEPDB1")
    text = assert_one_line(error)
    assert text.startswith(
        f"t: connecting: nothing listens at 127.0.0.1:{port}: check the host and port (the"
        " listener is usually on 1521) and that the listener runs (lsnrctl status) (DPY-6005:"
    )
    assert "Connection refused" in text
    assert error.elapsed < 5  # type: ignore[attr-defined]


@pytest.fixture
def listener() -> Iterator[Any]:
    """A TCP server on 127.0.0.1 that is not an Oracle listener: ``mode`` ``"close"``
    accepts and closes; ``"silent"`` accepts and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    state = SimpleNamespace(port=server.getsockname()[1], mode="close", accepted=[])

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            if state.mode == "close":
                conn.close()
            else:
                state.accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield state
    server.close()
    for conn in state.accepted:
        conn.close()  # the driver's connect thread then ends


def test_a_port_that_closes_is_not_an_oracle_listener(listener: Any) -> None:
    error = connect(f"oracle+oracledb://scott:s3cretpw@127.0.0.1:{listener.port}/ORCL")
    text = assert_one_line(error)
    assert text.startswith(
        f"t: connecting: the server at 127.0.0.1:{listener.port} closed the connection without"
        " answering as an Oracle listener: check that this port is the listener's (lsnrctl"
        " status) (DPY-6005:"
    )
    assert "DPY-4011" in text


def test_a_port_that_never_answers_times_out(listener: Any) -> None:
    listener.mode = "silent"
    url = f"oracle+oracledb://scott:s3cretpw@127.0.0.1:{listener.port}/?service_name=X"
    error = connect(url, connect_timeout=1)
    assert assert_one_line(error) == (
        f"t: connecting: no answer from an Oracle listener at 127.0.0.1:{listener.port} within"
        " 1 s: check that this host and port are an Oracle listener's (lsnrctl status), and"
        " firewalls"
    )
    assert error.elapsed < 5  # type: ignore[attr-defined]


def test_unknown_host() -> None:
    ep = OracleEndpoint(
        "t", "oracle://scott:s3cretpw@nohost.invalid:1521/?service_name=X", {}, base_dir=Path(".")
    )
    dbapi = SimpleNamespace(
        connect=lambda *a, **k: (_ for _ in ()).throw(
            socket.gaierror(-2, "Name or service not known")
        )
    )
    with pytest.raises(ConnectorError) as err:
        ep.connect_dbapi(dbapi, (), {})
    assert assert_one_line(err.value) == (
        "t: connecting: unknown host or network error for nohost.invalid:1521: check the host"
        " name in the URL ([Errno -2] Name or service not known)"
    )


ERRORS = [
    (
        ora_error(1017, "ORA-01017: invalid credential or not authorized; logon denied"),
        "t: connecting: wrong user name or password (or no CREATE SESSION privilege): check the"
        " user 'scott' and the password in the URL (ORA-01017: invalid credential or not"
        " authorized; logon denied)",
    ),
    (
        ora_error(28000, "ORA-28000: The account is locked."),
        "t: connecting: the account 'scott' is locked: a DBA can run ALTER USER scott ACCOUNT"
        " UNLOCK (ORA-28000: The account is locked.)",
    ),
    (
        dpy_error(
            ora_errors.ERR_INVALID_SERVICE_NAME,
            service_name="FREEPDB1",
            host="db.example",
            port=1521,
        ),
        "t: connecting: the listener at db.example:1521 does not know service 'FREEPDB1': check"
        " ?service_name= in the URL (lsnrctl services lists the registered ones) (DPY-6001:"
        ' Service "FREEPDB1" is not registered with the listener at host "db.example" port'
        " 1521. (Similar to ORA-12514))",
    ),
    (
        ora_error(
            12514,
            "ORA-12514: Cannot connect to database. Service FREEPDB1 is not registered with the"
            " listener at host db.example port 1521.",
        ),
        "the listener at db.example:1521 does not know service 'FREEPDB1'",
    ),
    (
        dpy_error(ora_errors.ERR_NO_CONFIG_DIR),
        "t: connecting: 'db.example' is read as a TNS alias but no tnsnames.ora directory is"
        " set: set TNS_ADMIN (or ?config_dir=) to the directory of tnsnames.ora, or give"
        " host:port/?service_name= in the URL (DPY-4027: no configuration directory specified)",
    ),
    (
        dpy_error(
            ora_errors.ERR_TNS_ENTRY_NOT_FOUND, name="db.example", file_name="/etc/tns/tnsnames.ora"
        ),
        "t: connecting: TNS alias 'db.example' is not in tnsnames.ora: check the alias and"
        ' TNS_ADMIN (or ?config_dir=) (DPY-4000: unable to find "db.example" in'
        " /etc/tns/tnsnames.ora)",
    ),
    (
        ora_error(12154, "ORA-12154: TNS:could not resolve the connect identifier specified"),
        "TNS alias 'db.example' is not in tnsnames.ora",
    ),
]


@pytest.mark.parametrize(("error", "want"), ERRORS)
def test_connection_errors_are_one_line(error: Exception, want: str) -> None:
    ep, _ = endpoint()
    text = assert_one_line(ep.translate(error, "connecting"))
    assert text == want if want.startswith("t: ") else want in text


def test_sid_errors_name_the_sid() -> None:
    ep, _ = endpoint((19, 0), "oracle+oracledb://scott:s3cretpw@db.example:1521/ORCL")
    error = dpy_error(ora_errors.ERR_INVALID_SID, sid="ORCL", host="db.example", port=1521)
    assert assert_one_line(ep.translate(error, "connecting")) == (
        "t: connecting: the listener at db.example:1521 does not know SID 'ORCL': check the SID"
        " at the end of the URL, or give ?service_name= instead (lsnrctl services) (DPY-6003:"
        ' SID "ORCL" is not registered with the listener at host "db.example" port 1521.'
        " (Similar to ORA-12505))"
    )
    server = ora_error(
        12505, "ORA-12505: TNS:listener does not currently know of SID given in connect descriptor"
    )
    assert "does not know SID 'ORCL'" in ep.translate(server, "connecting").args[0]


def test_passwords_never_appear() -> None:
    ep, _ = endpoint()
    error = ora_error(
        1017, "ORA-01017: invalid credential or not authorized; logon denied (s3cretpw)"
    )
    assert "s3cretpw" not in str(ep.translate(error, "connecting"))


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ora_error(60, "ORA-00060: deadlock detected while waiting for resource"), True),
        (ora_error(3113, "ORA-03113: end-of-file on communication channel"), True),
        (dpy_error(ora_errors.ERR_CONNECTION_CLOSED), True),
        (ora_error(8177, "ORA-08177: can't serialize access for this transaction"), True),
        (ora_error(1017, "ORA-01017: invalid credential or not authorized; logon denied"), False),
        (ora_error(1555, "ORA-01555: snapshot too old"), False),
        (ora_error(942, "ORA-00942: table or view does not exist"), False),
    ],
)
def test_transient_errors(error: Exception, transient: bool) -> None:
    ep, _ = endpoint()
    assert ep.is_transient(error) is transient
    assert isinstance(ep.translate(error, "reading orders"), TransientError) is transient


def test_undo_of_a_foreign_key_the_cutover_created() -> None:
    ep, _ = endpoint()
    sql = ep.undo_statements(_undo("drop_foreign_key", obj="lines", name="lines_order"))
    assert sql == ["ALTER TABLE lines DROP CONSTRAINT lines_order"]
    assert len(sqlglot.parse(sql[0], read="oracle")) == 1
