"""The type matrix (connectors/sql/type_matrix.py) is the contract of every engine module.

For each source row: the source engine reads the native type as the listed portable type,
with the listed loss. For each row and each target engine: the DDL type the target
creates is the matrix's cell, and its loss notes are the cell's, exactly. No server is
needed: types are built as reflection builds them and compiled with each dialect. The
README's matrix must be the generated one. For each row, a sample value also goes through
PostgreSQL's and MySQL's bulk-load text and back through psycopg's and PyMySQL's own
converters.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlrecorder import offline

from connectors.sql import type_matrix as tm
from migrate.registry import endpoint_class
from migrate.schema import Column, PType, TableSchema

URLS = {
    "mysql": "mysql+pymysql://u@127.0.0.1/db",
    "mssql": "mssql+pyodbc://u@127.0.0.1:1433/db?driver=FreeTDS",
    "oracle": "oracle+oracledb://u@127.0.0.1:1521/?service_name=FREEPDB1",
    "postgresql": "postgresql+psycopg://u@127.0.0.1/db",
}
VERSIONS = {"mysql": (10, 11, 9), "mssql": (16, 0), "oracle": (23, 0), "postgresql": (15, 0)}
CAPS_ENGINE = {"mysql": "mysql", "mssql": "mssql", "oracle": "oracle", "postgresql": "postgresql"}


def endpoint(engine: str):
    ep, _ = offline(endpoint_class(URLS[engine]), URLS[engine], VERSIONS[engine])
    return ep


def _id(s: tm.Source) -> str:
    return f"{s.engine}:{s.native}"


@pytest.mark.parametrize("source", tm.SOURCES, ids=_id)
def test_source_type_reads_as_its_portable_type(source: tm.Source) -> None:
    ep = endpoint(source.engine)
    ptype, note = ep.portable_type(tm.parse_native(source.engine, source.native))
    assert str(ptype) == source.ptype
    assert (note or "") == source.loss


def _portable(source: tm.Source):
    ep = endpoint(source.engine)
    ptype, note = ep.portable_type(tm.parse_native(source.engine, source.native))
    col = Column("c", ptype, nullable=True)
    if note:
        col.notes.append(note)
    return TableSchema("t", [col]), ep.capabilities


@pytest.mark.parametrize("target", tm.ENGINES)
@pytest.mark.parametrize("source", tm.SOURCES, ids=_id)
def test_target_creates_the_matrix_type(source: tm.Source, target: str) -> None:
    schema, caps = _portable(source)
    ep = endpoint(target)
    tschema = ep.target_schema(schema, caps, "t")
    col = tschema.columns[0]
    ddl = str(ep.native_type_for(col).compile(dialect=ep.dialect))
    want_ddl, want_loss = tm.cell(source, target)
    assert (ddl, "; ".join(col.notes)) == (want_ddl, want_loss)


def test_every_portable_type_a_source_gives_has_a_target_row() -> None:
    for s in tm.SOURCES:
        assert tm.target_for(s.ptype).stored.keys() == set(tm.ENGINES), s


def test_readme_matrix_is_the_generated_one() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- type-matrix:begin -->\n(.*?)<!-- type-matrix:end -->", readme, re.S)
    assert m, "README.md has no type-matrix section"
    assert m.group(1) == tm.markdown(), (
        "README.md's type matrix is stale: paste `python -m connectors.sql.type_matrix`"
    )


# -- values through the target driver's own converters ------------------------------------
# Where a target's driver can convert without a server (psycopg's text loaders, PyMySQL's
# decoders), a sample value of every mapping goes through the target's bulk-load text
# (COPY / LOAD DATA) and back through the driver, and must arrive as it left (after the
# cell's documented loss). SQL Server's and Oracle's drivers need a connection for that;
# their adapters and decoders are tested in tests/test_mssql.py and tests/test_oracle.py.


def sample(p: PType) -> Any:
    """A demanding value of portable type ``p`` (the kind's edges where they matter)."""
    k = p.kind
    ints = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
    if k in ints:
        return 2 ** ints[k] - 1 if p.unsigned else -(2 ** (ints[k] - 1))
    if k == "boolean":
        return True
    if k == "decimal":
        if p.precision is None:
            return Decimal("-12345678901234567890.123456789")
        digits = "9" * (p.precision - (p.scale or 0))
        return -Decimal(f"{digits}.{'9' * (p.scale or 0)}" if p.scale else digits)
    if k == "float32":
        return 1.5
    if k == "float64":
        return 0.1
    if k in ("char", "varchar", "text", "enum"):
        text = "中文😀 tab\t nl\n bs\\ q' \\N"
        if k == "enum":
            return p.values[-1]
        return text[: p.length] if p.length else text
    if k in ("binary", "varbinary", "blob"):
        return bytes(range(256))[: p.length or 256]
    if k == "date":
        return dt.date(1000, 1, 1)
    if k == "time":
        return dt.time(23, 59, 59, 123456 if (p.precision or 0) >= 6 else 0)
    if k in ("datetime", "timestamptz"):
        micro = {0: 0, 3: 123000}.get(p.precision or 0, 123456)
        value = dt.datetime(2024, 2, 29, 12, 34, 56, micro)
        return value.replace(tzinfo=dt.UTC) if k == "timestamptz" else value
    if k == "json":
        return '{"k": [1, 2.5, null, "中文"]}'
    if k == "uuid":
        return "0f8fad5b-d9cb-469f-a165-70867728950e"
    raise AssertionError(k)


def _copy_unescape(text: str) -> str:
    """COPY / LOAD DATA text escapes undone (what the server parses)."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"t": "\t", "n": "\n", "r": "\r", "0": "\0"}.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


PG_OIDS = {
    "BOOLEAN": "bool",
    "SMALLINT": "int2",
    "INTEGER": "int4",
    "BIGINT": "int8",
    "NUMERIC": "numeric",
    "REAL": "float4",
    "DOUBLE PRECISION": "float8",
    "CHAR": "bpchar",
    "VARCHAR": "varchar",
    "TEXT": "text",
    "BYTEA": "bytea",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "JSONB": "jsonb",
    "UUID": "uuid",
}


def _pg_loader(ddl: str) -> Any:
    import psycopg
    from psycopg.adapt import Transformer
    from psycopg.pq import Format

    head = ddl.split("(")[0].strip()
    name = "timestamptz" if "WITH TIME ZONE" in ddl else PG_OIDS[head]
    oid = psycopg.adapters.types[name].oid
    return Transformer().get_loader(oid, Format.TEXT)


def _expected(value: Any, ddl: str) -> Any:
    """``value`` as the target keeps it: text padded by CHAR, time zones as UTC."""
    if ddl.startswith("CHAR(") and isinstance(value, str):
        return value.ljust(int(ddl[5:].split(")")[0]))
    return value


@pytest.mark.parametrize("source", tm.SOURCES, ids=_id)
def test_values_round_trip_through_psycopg(source: tm.Source) -> None:
    from connectors.sql.postgresql import FORMATTERS, _fmt_text

    schema, caps = _portable(source)
    ep = endpoint("postgresql")
    col = ep.target_schema(schema, caps, "t").columns[0]
    ddl = str(ep.native_type_for(col).compile(dialect=ep.dialect))
    value = sample(col.type)
    text = _copy_unescape(FORMATTERS.get(col.type.kind, _fmt_text)(value))
    got = _pg_loader(ddl).load(text.encode("utf-8"))
    if col.type.kind == "json":
        assert got == json.loads(value)
    elif col.type.kind == "uuid":
        assert str(got) == value
    else:
        assert got == _expected(value, ddl), (ddl, text)


MYSQL_FIELDS = {
    "TINYINT": "TINY",
    "SMALLINT": "SHORT",
    "INTEGER": "LONG",
    "BIGINT": "LONGLONG",
    "DECIMAL": "NEWDECIMAL",
    "FLOAT": "FLOAT",
    "DOUBLE": "DOUBLE",
    "DATE": "DATE",
    "DATETIME": "DATETIME",
    "TIMESTAMP": "TIMESTAMP",
}


def _mysql_formatted() -> list[tm.Source]:
    """The rows a MySQL target loads through a formatter into a number or date-time type
    (text and binary are loaded as they are)."""
    from connectors.sql.mysql import FORMATTERS

    out = []
    for source in tm.SOURCES:
        head = tm.cell(source, "mysql")[0].split("(")[0].split()[0]
        kind = _portable(source)[0].columns[0].type.kind
        if head in MYSQL_FIELDS and kind in FORMATTERS:
            out.append(source)
    return out


@pytest.mark.parametrize("source", _mysql_formatted(), ids=_id)
def test_values_round_trip_through_pymysql(source: tm.Source) -> None:
    """Numbers, decimals and date-times (the kinds whose LOAD DATA text is formatted)."""
    from pymysql import converters
    from pymysql.constants import FIELD_TYPE

    from connectors.sql.mysql import FORMATTERS

    schema, caps = _portable(source)
    ep = endpoint("mysql")
    col = ep.target_schema(schema, caps, "t").columns[0]
    ddl = str(ep.native_type_for(col).compile(dialect=ep.dialect))
    head = ddl.split("(")[0].split()[0]
    value = sample(col.type)
    text = _copy_unescape(FORMATTERS[col.type.kind](value))
    decode = converters.decoders.get(getattr(FIELD_TYPE, MYSQL_FIELDS[head]))
    got = decode(text) if decode is not None else text
    if col.type.kind == "timestamptz":
        value = value.replace(tzinfo=None)  # sessions run in UTC
    if col.type.kind == "boolean":
        got = bool(got)
    assert got == value, (ddl, text)
