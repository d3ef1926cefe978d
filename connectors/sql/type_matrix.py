"""The type mapping between MySQL, SQL Server, Oracle and PostgreSQL, kept as data.

A column travels in two steps: the source engine reads its native type as a portable
type (:class:`migrate.schema.PType`), and the target engine stores that portable type as
one of its own. :data:`SOURCES` is the first step and :data:`TARGETS` the second, one row
per case; each engine module implements them (``portable_type``, ``adapt_type``,
``native_type``) and ``tests/test_type_matrix.py`` checks every row against the modules.
The README's matrix is :func:`markdown` of these tables (the same test keeps it current).

A ``loss`` text names what a mapping cannot keep (precision, range, time zone, length,
allowed values); the dry run and the run log repeat it with the table and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ENGINES = ("mysql", "mssql", "oracle", "postgresql")
LABELS = {"mysql": "MySQL", "mssql": "SQL Server", "oracle": "Oracle", "postgresql": "PostgreSQL"}


@dataclass(frozen=True)
class Source:
    """A source column type (``native``, as the engine writes it) and the portable type
    it is read as (``ptype``, as ``str(PType)`` prints it)."""

    engine: str
    native: str
    ptype: str
    loss: str = ""


@dataclass(frozen=True)
class Target:
    """How each engine stores a portable type: ``{engine: (DDL type, loss)}``."""

    ptype: str
    stored: dict[str, tuple[str, str]]


def _same(ddl: str) -> tuple[str, str]:
    return ddl, ""


SOURCES: list[Source] = [
    # -- MySQL / MariaDB -------------------------------------------------------------------
    Source("mysql", "TINYINT(1)", "int8"),  # BOOLEAN: kept as the number it is
    Source("mysql", "TINYINT", "int8"),
    Source("mysql", "TINYINT UNSIGNED", "int8 unsigned"),
    Source("mysql", "SMALLINT", "int16"),
    Source("mysql", "SMALLINT UNSIGNED", "int16 unsigned"),
    Source("mysql", "INTEGER", "int32"),
    Source("mysql", "INTEGER UNSIGNED", "int32 unsigned"),
    Source("mysql", "BIGINT", "int64"),
    Source("mysql", "BIGINT UNSIGNED", "int64 unsigned"),
    Source("mysql", "BIT(1)", "int64 unsigned", "BIT copied as its integer value"),
    Source("mysql", "YEAR", "int16"),
    Source("mysql", "DECIMAL(10, 2)", "decimal(10, 2)"),
    Source("mysql", "DECIMAL(65, 30)", "decimal(65, 30)"),
    Source("mysql", "FLOAT", "float32"),
    Source("mysql", "DOUBLE", "float64"),
    Source("mysql", "CHAR(10)", "char(10)"),
    Source("mysql", "VARCHAR(255)", "varchar(255)"),
    Source("mysql", "VARCHAR(16000)", "varchar(16000)"),
    Source("mysql", "TEXT", "text(65535)"),
    Source("mysql", "LONGTEXT", "text"),
    Source("mysql", "BINARY(16)", "binary(16)"),
    Source("mysql", "VARBINARY(255)", "varbinary(255)"),
    Source("mysql", "BLOB", "blob(65535)"),
    Source("mysql", "LONGBLOB", "blob"),
    Source("mysql", "DATE", "date"),
    Source("mysql", "TIME", "time(0)"),
    Source("mysql", "DATETIME", "datetime(0)"),
    Source("mysql", "DATETIME(6)", "datetime(6)"),
    Source("mysql", "TIMESTAMP(6)", "timestamptz(6)"),
    Source("mysql", "ENUM('a', 'b')", "enum('a', 'b')"),
    Source("mysql", "SET('a', 'b')", "varchar(3)", "SET copied as its text value"),
    Source("mysql", "JSON", "json"),
    # -- SQL Server ------------------------------------------------------------------------
    Source("mssql", "BIT", "boolean"),
    Source("mssql", "TINYINT", "int8 unsigned"),
    Source("mssql", "SMALLINT", "int16"),
    Source("mssql", "INTEGER", "int32"),
    Source("mssql", "BIGINT", "int64"),
    Source("mssql", "DECIMAL(38, 10)", "decimal(38, 10)"),
    Source("mssql", "MONEY", "decimal(19, 4)"),
    Source("mssql", "REAL", "float32"),
    Source("mssql", "FLOAT", "float64"),
    Source("mssql", "CHAR(10)", "char(10)"),
    Source("mssql", "NCHAR(10)", "char(10)"),
    Source("mssql", "VARCHAR(100)", "varchar(100)"),
    Source("mssql", "NVARCHAR(100)", "varchar(100)"),
    Source("mssql", "VARCHAR(max)", "text"),
    Source("mssql", "NVARCHAR(max)", "text"),
    Source("mssql", "NTEXT", "text"),
    Source("mssql", "BINARY(16)", "binary(16)"),
    Source("mssql", "VARBINARY(100)", "varbinary(100)"),
    Source("mssql", "VARBINARY(max)", "blob"),
    Source("mssql", "IMAGE", "blob"),
    Source("mssql", "DATE", "date"),
    Source("mssql", "TIME(7)", "time(7)"),
    Source("mssql", "SMALLDATETIME", "datetime(0)"),
    Source("mssql", "DATETIME", "datetime(3)"),
    Source("mssql", "DATETIME2(7)", "datetime(7)"),
    Source("mssql", "DATETIMEOFFSET(7)", "timestamptz(7)", "offset dropped: values read in UTC"),
    Source("mssql", "UNIQUEIDENTIFIER", "uuid"),
    Source("mssql", "ROWVERSION", "int64", "rowversion copied as its BIGINT value"),
    Source("mssql", "XML", "text", "XML copied as its text form"),
    # -- Oracle ----------------------------------------------------------------------------
    Source("oracle", "NUMBER(1)", "int16"),
    Source("oracle", "NUMBER(5)", "int32"),
    Source("oracle", "NUMBER(10)", "int64"),
    Source("oracle", "NUMBER(19)", "decimal(19, 0)"),
    Source("oracle", "NUMBER(38)", "decimal(38, 0)"),
    Source("oracle", "NUMBER(10, 2)", "decimal(10, 2)"),
    Source("oracle", "NUMBER", "decimal"),
    Source("oracle", "FLOAT(126)", "float64", "FLOAT(126) read as a double (about 15 digits)"),
    Source("oracle", "BINARY_FLOAT", "float32"),
    Source("oracle", "BINARY_DOUBLE", "float64"),
    Source("oracle", "CHAR(10 CHAR)", "char(10)"),
    Source("oracle", "NCHAR(10)", "char(10)"),
    Source("oracle", "VARCHAR2(100 CHAR)", "varchar(100)"),
    Source("oracle", "NVARCHAR2(100)", "varchar(100)"),
    Source("oracle", "CLOB", "text"),
    Source("oracle", "NCLOB", "text"),
    Source("oracle", "RAW(16)", "varbinary(16)"),
    Source("oracle", "BLOB", "blob"),
    Source("oracle", "DATE", "datetime(0)"),  # Oracle's DATE carries the time of day
    Source("oracle", "TIMESTAMP", "datetime(6)"),
    Source("oracle", "TIMESTAMP(9)", "datetime(9)"),
    Source(
        "oracle",
        "TIMESTAMP(6) WITH TIME ZONE",
        "timestamptz(6)",
        "zone dropped: values read in UTC",
    ),
    Source("oracle", "TIMESTAMP WITH LOCAL TIME ZONE", "timestamptz(6)"),
    Source(
        "oracle",
        "INTERVAL DAY TO SECOND",
        "text",
        "INTERVAL DAY TO SECOND copied as its text form",
    ),
    # -- PostgreSQL ------------------------------------------------------------------------
    Source("postgresql", "BOOLEAN", "boolean"),
    Source("postgresql", "SMALLINT", "int16"),
    Source("postgresql", "INTEGER", "int32"),
    Source("postgresql", "BIGINT", "int64"),
    Source("postgresql", "NUMERIC(10, 2)", "decimal(10, 2)"),
    Source("postgresql", "NUMERIC", "decimal"),
    Source("postgresql", "REAL", "float32"),
    Source("postgresql", "DOUBLE PRECISION", "float64"),
    Source("postgresql", "CHAR(10)", "char(10)"),
    Source("postgresql", "VARCHAR(100)", "varchar(100)"),
    Source("postgresql", "TEXT", "text"),
    Source("postgresql", "BYTEA", "blob"),
    Source("postgresql", "DATE", "date"),
    Source("postgresql", "TIME", "time(6)"),
    Source("postgresql", "TIMESTAMP", "datetime(6)"),
    Source("postgresql", "TIMESTAMP WITH TIME ZONE", "timestamptz(6)"),
    Source("postgresql", "UUID", "uuid"),
    Source("postgresql", "JSONB", "json"),
]

#: shared loss texts
_FRACTION_6 = "fractional seconds cut from {} to 6 digits"
_ENUM = "allowed values not enforced"
#: Oracle compares CHAR blank-padded only with another CHAR: a key read from another
#: engine ('ab') would never equal a stored 'ab ', so CHAR(n) from elsewhere is VARCHAR2
_ORACLE_CHAR = "CHAR(10) stored as VARCHAR2(10 CHAR): values kept as read, without blank padding"
#: SQL Server's NCHAR(n)/NVARCHAR(n) count UTF-16 units, other engines characters: text
#: from another engine is created as NVARCHAR(2n) (at most 4000); NCHAR(n) keeps n
_NCHAR = "NCHAR counts UTF-16 units: n characters outside the BMP do not fit"

TARGETS: list[Target] = [
    Target(
        "boolean",
        {
            "mysql": _same("BOOL"),
            "mssql": _same("BIT"),
            "oracle": _same("NUMBER(1)"),
            "postgresql": _same("BOOLEAN"),
        },
    ),
    Target(
        "int8",
        {
            "mysql": _same("TINYINT"),
            "mssql": _same("SMALLINT"),
            "oracle": _same("NUMBER(3)"),
            "postgresql": _same("SMALLINT"),
        },
    ),
    Target(
        "int8 unsigned",
        {
            "mysql": _same("TINYINT UNSIGNED"),
            "mssql": _same("TINYINT"),
            "oracle": _same("NUMBER(3)"),
            "postgresql": _same("SMALLINT"),
        },
    ),
    Target(
        "int16",
        {
            "mysql": _same("SMALLINT"),
            "mssql": _same("SMALLINT"),
            "oracle": _same("NUMBER(5)"),
            "postgresql": _same("SMALLINT"),
        },
    ),
    Target(
        "int16 unsigned",
        {
            "mysql": _same("SMALLINT UNSIGNED"),
            "mssql": _same("INTEGER"),
            "oracle": _same("NUMBER(5)"),
            "postgresql": _same("INTEGER"),
        },
    ),
    Target(
        "int32",
        {
            "mysql": _same("INTEGER"),
            "mssql": _same("INTEGER"),
            "oracle": _same("NUMBER(10)"),
            "postgresql": _same("INTEGER"),
        },
    ),
    Target(
        "int32 unsigned",
        {
            "mysql": _same("INTEGER UNSIGNED"),
            "mssql": _same("BIGINT"),
            "oracle": _same("NUMBER(10)"),
            "postgresql": _same("BIGINT"),
        },
    ),
    Target(
        "int64",
        {
            "mysql": _same("BIGINT"),
            "mssql": _same("BIGINT"),
            "oracle": _same("NUMBER(19)"),
            "postgresql": _same("BIGINT"),
        },
    ),
    Target(
        "int64 unsigned",
        {
            "mysql": _same("BIGINT UNSIGNED"),
            "mssql": _same("DECIMAL(20, 0)"),
            "oracle": _same("NUMBER(20)"),
            "postgresql": _same("NUMERIC(20, 0)"),
        },
    ),
    Target(
        "decimal(10, 2)",
        {
            "mysql": _same("DECIMAL(10, 2)"),
            "mssql": _same("DECIMAL(10, 2)"),
            "oracle": _same("NUMBER(10, 2)"),
            "postgresql": _same("NUMERIC(10, 2)"),
        },
    ),
    Target(
        "decimal(19, 0)",
        {
            "mysql": _same("DECIMAL(19, 0)"),
            "mssql": _same("DECIMAL(19, 0)"),
            "oracle": _same("NUMBER(19)"),
            "postgresql": _same("NUMERIC(19, 0)"),
        },
    ),
    Target(
        "decimal(19, 4)",
        {
            "mysql": _same("DECIMAL(19, 4)"),
            "mssql": _same("DECIMAL(19, 4)"),
            "oracle": _same("NUMBER(19, 4)"),
            "postgresql": _same("NUMERIC(19, 4)"),
        },
    ),
    Target(
        "decimal(38, 0)",
        {
            "mysql": _same("DECIMAL(38, 0)"),
            "mssql": _same("DECIMAL(38, 0)"),
            "oracle": _same("NUMBER(38)"),
            "postgresql": _same("NUMERIC(38, 0)"),
        },
    ),
    Target(
        "decimal(38, 10)",
        {
            "mysql": _same("DECIMAL(38, 10)"),
            "mssql": _same("DECIMAL(38, 10)"),
            "oracle": _same("NUMBER(38, 10)"),
            "postgresql": _same("NUMERIC(38, 10)"),
        },
    ),
    Target(
        "decimal(65, 30)",
        {
            "mysql": _same("DECIMAL(65, 30)"),
            "mssql": ("DECIMAL(38, 30)", "DECIMAL(65,30) narrowed to DECIMAL(38,30)"),
            "oracle": ("NUMBER(38, 30)", "DECIMAL(65,30) narrowed to NUMBER(38,30)"),
            "postgresql": _same("NUMERIC(65, 30)"),
        },
    ),
    Target(
        "decimal",
        {
            "mysql": (
                "DECIMAL(65, 30)",
                "NUMERIC without precision stored as DECIMAL(65,30)",
            ),
            "mssql": (
                "DECIMAL(38, 10)",
                "NUMERIC without precision stored as DECIMAL(38,10)",
            ),
            "oracle": _same("NUMBER"),
            "postgresql": _same("NUMERIC"),
        },
    ),
    Target(
        "float32",
        {
            "mysql": _same("FLOAT"),
            "mssql": _same("REAL"),
            "oracle": _same("BINARY_FLOAT"),
            "postgresql": _same("REAL"),
        },
    ),
    Target(
        "float64",
        {
            "mysql": _same("DOUBLE"),
            "mssql": _same("FLOAT(53)"),
            "oracle": _same("BINARY_DOUBLE"),
            "postgresql": _same("DOUBLE PRECISION"),
        },
    ),
    Target(
        "char(10)",
        {
            "mysql": _same("CHAR(10)"),
            "mssql": ("NCHAR(10)", _NCHAR),
            "oracle": ("VARCHAR2(10 CHAR)", _ORACLE_CHAR),
            "postgresql": _same("CHAR(10)"),
        },
    ),
    Target(
        "varchar(3)",
        {
            "mysql": _same("VARCHAR(3)"),
            "mssql": _same("NVARCHAR(6)"),
            "oracle": _same("VARCHAR2(3 CHAR)"),
            "postgresql": _same("VARCHAR(3)"),
        },
    ),
    Target(
        "varchar(100)",
        {
            "mysql": _same("VARCHAR(100)"),
            "mssql": _same("NVARCHAR(200)"),
            "oracle": _same("VARCHAR2(100 CHAR)"),
            "postgresql": _same("VARCHAR(100)"),
        },
    ),
    Target(
        "varchar(255)",
        {
            "mysql": _same("VARCHAR(255)"),
            "mssql": _same("NVARCHAR(510)"),
            "oracle": _same("VARCHAR2(255 CHAR)"),
            "postgresql": _same("VARCHAR(255)"),
        },
    ),
    Target(
        "varchar(16000)",
        {
            "mysql": _same("VARCHAR(16000)"),
            "mssql": ("NVARCHAR(max)", "VARCHAR(16000) stored as NVARCHAR(max)"),
            "oracle": ("CLOB", "VARCHAR(16000) stored as CLOB"),
            "postgresql": _same("VARCHAR(16000)"),
        },
    ),
    Target(
        "text(65535)",
        {
            "mysql": _same("TEXT"),
            "mssql": _same("NVARCHAR(max)"),
            "oracle": _same("CLOB"),
            "postgresql": _same("TEXT"),
        },
    ),
    Target(
        "text",
        {
            "mysql": _same("LONGTEXT"),
            "mssql": _same("NVARCHAR(max)"),
            "oracle": _same("CLOB"),
            "postgresql": _same("TEXT"),
        },
    ),
    Target(
        "binary(16)",
        {
            "mysql": _same("BINARY(16)"),
            "mssql": _same("BINARY(16)"),
            "oracle": _same("RAW(16)"),
            "postgresql": _same("BYTEA"),
        },
    ),
    Target(
        "varbinary(16)",
        {
            "mysql": _same("VARBINARY(16)"),
            "mssql": _same("VARBINARY(16)"),
            "oracle": _same("RAW(16)"),
            "postgresql": _same("BYTEA"),
        },
    ),
    Target(
        "varbinary(100)",
        {
            "mysql": _same("VARBINARY(100)"),
            "mssql": _same("VARBINARY(100)"),
            "oracle": _same("RAW(100)"),
            "postgresql": _same("BYTEA"),
        },
    ),
    Target(
        "varbinary(255)",
        {
            "mysql": _same("VARBINARY(255)"),
            "mssql": _same("VARBINARY(255)"),
            "oracle": _same("RAW(255)"),
            "postgresql": _same("BYTEA"),
        },
    ),
    Target(
        "blob(65535)",
        {
            "mysql": _same("BLOB"),
            "mssql": _same("VARBINARY(max)"),
            "oracle": _same("BLOB"),
            "postgresql": _same("BYTEA"),
        },
    ),
    Target(
        "blob",
        {
            "mysql": _same("LONGBLOB"),
            "mssql": _same("VARBINARY(max)"),
            "oracle": _same("BLOB"),
            "postgresql": _same("BYTEA"),
        },
    ),
    Target(
        "date",
        {
            "mysql": _same("DATE"),
            "mssql": _same("DATE"),
            "oracle": _same("DATE"),
            "postgresql": _same("DATE"),
        },
    ),
    Target(
        "time(0)",
        {
            "mysql": _same("TIME"),
            "mssql": _same("TIME(0)"),
            "oracle": _same("INTERVAL DAY(0) TO SECOND(0)"),
            "postgresql": _same("TIME(0) WITHOUT TIME ZONE"),
        },
    ),
    Target(
        "time(6)",
        {
            "mysql": _same("TIME(6)"),
            "mssql": _same("TIME(6)"),
            "oracle": _same("INTERVAL DAY(0) TO SECOND(6)"),
            "postgresql": _same("TIME(6) WITHOUT TIME ZONE"),
        },
    ),
    Target(
        "time(7)",
        {
            "mysql": ("TIME(6)", _FRACTION_6.format(7)),
            "mssql": _same("TIME(7)"),
            "oracle": _same("INTERVAL DAY(0) TO SECOND(7)"),
            "postgresql": ("TIME(6) WITHOUT TIME ZONE", _FRACTION_6.format(7)),
        },
    ),
    Target(
        "datetime(0)",
        {
            "mysql": _same("DATETIME"),
            "mssql": _same("DATETIME2(0)"),
            "oracle": _same("DATE"),
            "postgresql": _same("TIMESTAMP(0) WITHOUT TIME ZONE"),
        },
    ),
    Target(
        "datetime(3)",
        {
            "mysql": _same("DATETIME(3)"),
            "mssql": _same("DATETIME2(3)"),
            "oracle": _same("TIMESTAMP(3)"),
            "postgresql": _same("TIMESTAMP(3) WITHOUT TIME ZONE"),
        },
    ),
    Target(
        "datetime(6)",
        {
            "mysql": _same("DATETIME(6)"),
            "mssql": _same("DATETIME2(6)"),
            "oracle": _same("TIMESTAMP(6)"),
            "postgresql": _same("TIMESTAMP(6) WITHOUT TIME ZONE"),
        },
    ),
    Target(
        "datetime(7)",
        {
            "mysql": ("DATETIME(6)", _FRACTION_6.format(7)),
            "mssql": _same("DATETIME2(7)"),
            "oracle": _same("TIMESTAMP(7)"),
            "postgresql": ("TIMESTAMP(6) WITHOUT TIME ZONE", _FRACTION_6.format(7)),
        },
    ),
    Target(
        "datetime(9)",
        {
            "mysql": ("DATETIME(6)", _FRACTION_6.format(9)),
            "mssql": ("DATETIME2(7)", "fractional seconds cut from 9 to 7 digits"),
            "oracle": _same("TIMESTAMP(9)"),
            "postgresql": ("TIMESTAMP(6) WITHOUT TIME ZONE", _FRACTION_6.format(9)),
        },
    ),
    Target(
        "timestamptz(6)",
        {
            "mysql": ("DATETIME(6)", "time zone dropped: values are stored as UTC DATETIME"),
            "mssql": _same("DATETIMEOFFSET(6)"),
            "oracle": _same("TIMESTAMP(6) WITH TIME ZONE"),
            "postgresql": _same("TIMESTAMP(6) WITH TIME ZONE"),
        },
    ),
    Target(
        "timestamptz(7)",
        {
            "mysql": (
                "DATETIME(6)",
                "fractional seconds cut from 7 to 6 digits; time zone dropped: values are"
                " stored as UTC DATETIME",
            ),
            "mssql": _same("DATETIMEOFFSET(7)"),
            "oracle": _same("TIMESTAMP(7) WITH TIME ZONE"),
            "postgresql": ("TIMESTAMP(6) WITH TIME ZONE", _FRACTION_6.format(7)),
        },
    ),
    Target(
        "json",
        {
            "mysql": _same("JSON"),
            "mssql": _same("NVARCHAR(max)"),
            "oracle": _same("CLOB"),
            "postgresql": _same("JSONB"),
        },
    ),
    Target(
        "uuid",
        {
            "mysql": _same("CHAR(36)"),
            "mssql": _same("UNIQUEIDENTIFIER"),
            "oracle": _same("CHAR(36)"),
            "postgresql": _same("UUID"),
        },
    ),
    Target(
        "enum('a', 'b')",
        {
            "mysql": _same("ENUM('a','b')"),
            "mssql": ("NVARCHAR(2)", _ENUM),
            "oracle": ("VARCHAR2(1 CHAR)", _ENUM),
            "postgresql": ("VARCHAR(1)", "ENUM stored as VARCHAR"),
        },
    ),
]

# Exceptions to "source reads, target stores" that depend on the pair: the source's
# portable type is the same, but the pair keeps more (e.g. MySQL to MySQL keeps TIMESTAMP).
PAIR_OVERRIDES: dict[tuple[str, str, str], tuple[str, str]] = {
    ("mysql", "TIMESTAMP(6)", "mysql"): _same("TIMESTAMP(6)"),
    # Oracle to Oracle: CHAR keys come back blank-padded, as the target stores them
    ("oracle", "CHAR(10 CHAR)", "oracle"): _same("CHAR(10 CHAR)"),
    ("oracle", "NCHAR(10)", "oracle"): _same("CHAR(10 CHAR)"),
    # SQL Server to SQL Server: the source's length already counts UTF-16 units
    ("mssql", "CHAR(10)", "mssql"): _same("NCHAR(10)"),
    ("mssql", "NCHAR(10)", "mssql"): _same("NCHAR(10)"),
    ("mssql", "VARCHAR(100)", "mssql"): _same("NVARCHAR(100)"),
    ("mssql", "NVARCHAR(100)", "mssql"): _same("NVARCHAR(100)"),
}


def target_for(ptype: str) -> Target:
    for t in TARGETS:
        if t.ptype == ptype:
            return t
    raise KeyError(ptype)


def cell(source: Source, engine: str) -> tuple[str, str]:
    """What ``engine`` creates for ``source``'s column, and every loss on the way."""
    ddl, loss = PAIR_OVERRIDES.get(
        (source.engine, source.native, engine), target_for(source.ptype).stored[engine]
    )
    losses = [x for x in (source.loss, loss) if x]
    return ddl, "; ".join(losses)


def markdown() -> str:
    """The README's matrix: one row per source type, one column per target engine; a
    conversion that loses something is marked ⚠ and its loss listed under the table."""
    lines: list[str] = []
    for engine in ENGINES:
        rows = [s for s in SOURCES if s.engine == engine]
        lines.append(f"**From {LABELS[engine]}**")
        lines.append("")
        head = ["source type", "portable", *(f"→ {LABELS[e]}" for e in ENGINES)]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + " --- |" * len(head))
        notes: list[str] = []
        for s in rows:
            cells = [f"`{s.native}`", f"`{s.ptype}`"]
            for target in ENGINES:
                ddl, loss = cell(s, target)
                mark = ""
                if loss:
                    notes.append(f"{s.native} → {LABELS[target]}: {loss}")
                    mark = f" ⚠{len(notes)}"
                cells.append(f"`{ddl}`{mark}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines.extend(f"{i}. {n}" for i, n in enumerate(notes, 1))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_TYPE_TEXT = re.compile(r"^(?P<head>[^(]+)\s*(?:\((?P<args>[^)]*)\))?(?P<tail>[^()]*)$")
_ALIASES = {
    "postgresql": {"CHAR": "CHARACTER", "VARCHAR": "CHARACTER VARYING"},
    "mssql": {"INTEGER": "INT", "ROWVERSION": "TIMESTAMP"},
}


def parse_native(engine: str, text: str) -> Any:
    """A SQLAlchemy type object for ``text`` as ``engine`` reflection would build it
    (the tests feed it to the engine's ``portable_type``)."""
    import sqlalchemy as sa

    dialect = sa.dialects.registry.load(engine)()
    names = {k.upper(): v for k, v in dialect.ischema_names.items()}
    m = _TYPE_TEXT.match(text)
    if m is None:
        raise ValueError(f"cannot read type {text!r}")
    words = (m.group("head") + " " + m.group("tail")).upper().split()
    name, rest = "", words
    for i in range(len(words), 0, -1):  # the longest known name
        candidate = " ".join(words[:i])
        candidate = _ALIASES.get(engine, {}).get(candidate, candidate)
        if candidate in names:
            name, rest = candidate, words[i:]
            break
    if not name:
        raise ValueError(f"{engine} has no type {text!r}")
    cls = names[name]
    raw_args = [a.strip() for a in (m.group("args") or "").split(",") if a.strip()]
    if name in ("ENUM", "SET"):
        return cls(*[a.strip("'") for a in raw_args])
    args = [None if a.upper() == "MAX" else int(a.upper().replace(" CHAR", "")) for a in raw_args]
    first = args[0] if args else None
    if engine == "mysql":
        if name == "TINYINT" and args == [1]:
            return cls(display_width=1)
        if name in ("DATETIME", "TIMESTAMP", "TIME"):
            return cls(fsp=first)
        return cls(*args, unsigned=True) if "UNSIGNED" in rest else cls(*args)
    if engine == "mssql" and name in ("DATETIME2", "DATETIMEOFFSET", "TIME"):
        return cls(precision=first)
    if engine == "oracle":
        if name.startswith("TIMESTAMP"):
            local = "LOCAL" in name
            t = names["TIMESTAMP"](timezone="TIME ZONE" in name and not local, local_timezone=local)
            t.fsp = 6 if first is None else first  # what Oracle reports for TIMESTAMP
            return t
        if name == "FLOAT":
            return cls(binary_precision=first)
    if engine == "postgresql" and name.startswith(("TIME", "TIMESTAMP")):
        return cls(precision=first, timezone="WITH TIME ZONE" in name)
    return cls(*args)


if __name__ == "__main__":  # python -m connectors.sql.type_matrix: print the README matrix
    print(markdown(), end="")
