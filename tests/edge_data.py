"""Shared data and helpers for the cross-engine copy tests (tests/test_copy_engines.py).

* :data:`EDGE_COLUMNS` / :func:`edge_rows`: the "edge" table, one logical definition built
  natively on MariaDB, PostgreSQL and SQLite by :func:`create_edge_table`.
* :func:`read_rows` reads a table with SQLAlchemy Core *without* column types (so every
  value arrives as the driver gives it) and :func:`normalise` turns each value into a
  canonical form per logical column kind; :func:`assert_same_rows` compares two sides value
  by value and reports every difference (without dumping megabyte values).
* :func:`write_plan`, :func:`run_plan` and :func:`assert_counts_ok` run the tool and check
  its JSON result.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from migrate.cli import main

# -- the edge table --------------------------------------------------------------------------

EDGE_TABLE = "edge"
EDGE_INDEX = "edge_s_idx"  # starts with the table's name, so no engine renames it
SCALE = 10
DEC_MAX = Decimal("9999999999999999999999999999.9999999999")
DEC_MIN = DEC_MAX.copy_negate()  # unary minus would round to 28 digits
DEC_TINY = Decimal("0.0000000001")
# SQLite has no exact decimal storage: a DECIMAL column has NUMERIC affinity, which keeps
# only 15 significant digits (SQLite 3.40 turns '9999999999999999999999999999.9999999999'
# into the REAL 1e+28). The SQLite source therefore holds the largest value with every
# digit of the scale that SQLite *can* store exactly; the other engines hold DEC_MAX.
SQLITE_DEC_MAX = Decimal("99999.9999999999")

#: (name, logical kind, nullable) in table order. ``n`` is INT NOT NULL DEFAULT 0.
EDGE_COLUMNS: list[tuple[str, str, bool]] = [
    ("id", "int", False),
    ("s", "text", True),
    ("d", "decimal", True),
    ("f", "float", True),
    ("ts", "datetime", True),
    ("dd", "date", True),
    ("big", "text", True),
    ("b", "blob", True),
    ("j", "json", True),
    ("n", "int", False),
]
EDGE_KINDS = {name: kind for name, kind, _ in EDGE_COLUMNS}
EDGE_NAMES = [name for name, _, _ in EDGE_COLUMNS]

NATIVE_EDGE_DDL = {
    "mysql": [
        """CREATE TABLE edge (
            id INT NOT NULL PRIMARY KEY,
            s VARCHAR(200) NULL,
            d DECIMAL(38,10) NULL,
            f DOUBLE NULL,
            ts DATETIME(6) NULL,
            dd DATE NULL,
            big LONGTEXT NULL,
            b LONGBLOB NULL,
            j JSON NULL,
            n INT NOT NULL DEFAULT 0
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
        f"CREATE INDEX {EDGE_INDEX} ON edge (s)",
    ],
    "postgresql": [
        """CREATE TABLE edge (
            id integer NOT NULL PRIMARY KEY,
            s varchar(200),
            d numeric(38,10),
            f double precision,
            ts timestamp(6),
            dd date,
            big text,
            b bytea,
            j jsonb,
            n integer NOT NULL DEFAULT 0
        )""",
        f"CREATE INDEX {EDGE_INDEX} ON edge (s)",
    ],
    "mssql": [
        """CREATE TABLE edge (
            id INT NOT NULL PRIMARY KEY,
            s NVARCHAR(200) NULL,
            d DECIMAL(38,10) NULL,
            f FLOAT(53) NULL,
            ts DATETIME2(6) NULL,
            dd DATE NULL,
            big NVARCHAR(MAX) NULL,
            b VARBINARY(MAX) NULL,
            j NVARCHAR(MAX) NULL,
            n INT NOT NULL DEFAULT 0
        )""",
        f"CREATE INDEX {EDGE_INDEX} ON edge (s)",
    ],
    "oracle": [
        """CREATE TABLE edge (
            id NUMBER(10) NOT NULL PRIMARY KEY,
            s VARCHAR2(200 CHAR),
            d NUMBER(38,10),
            f BINARY_DOUBLE,
            ts TIMESTAMP(6),
            dd DATE,
            big CLOB,
            b BLOB,
            j CLOB,
            n NUMBER(10) DEFAULT 0 NOT NULL
        )""",
        f"CREATE INDEX {EDGE_INDEX} ON edge (s)",
    ],
    "sqlite": [
        """CREATE TABLE edge (
            id INTEGER NOT NULL PRIMARY KEY,
            s VARCHAR(200),
            d DECIMAL(38,10),
            f DOUBLE,
            ts DATETIME,
            dd DATE,
            big TEXT,
            b BLOB,
            j JSON,
            n INTEGER NOT NULL DEFAULT 0
        )""",
        f"CREATE INDEX {EDGE_INDEX} ON edge (s)",
    ],
}

SPECIAL = "single ' double \" backslash \\ tab \t newline \n carriage return \r end"


def long_text(chars: int = 100_000) -> str:
    """About 100 KB of text mixing ASCII, CJK, emoji and every escape-worthy character."""
    unit = "Lorem ipsum 中文字符 😀🎉 tab\t nl\n cr\r bs\\ q' dq\" \\N NULL, "
    return (unit * (chars // len(unit) + 1))[:chars]


def random_blob(size: int = 1 << 20, seed: int = 20240229) -> bytes:
    return random.Random(seed).randbytes(size)


def edge_rows(engine: str) -> list[dict[str, Any]]:
    """The edge rows (keys in key order). Row 1 is NULL in every nullable column and leaves
    ``n`` to its DEFAULT 0 (see :func:`create_edge_table`)."""
    big_max = SQLITE_DEC_MAX if engine == "sqlite" else DEC_MAX
    rows: list[dict[str, Any]] = [
        dict(
            id=-7,
            s="negative key",
            d=Decimal("-1.5"),
            f=-0.5,
            ts=dt.datetime(1999, 12, 31, 23, 59, 59, 999999),
            dd=dt.date(1999, 12, 31),
            big="short",
            b=b"\x01",
            j='{"neg": -1}',
            n=-1,
        ),
        dict(
            id=0,
            s="zero key",
            d=Decimal("0"),
            f=0.0,
            ts=dt.datetime(2000, 1, 1),
            dd=dt.date(2000, 1, 1),
            big="0",
            b=b"0",
            j="0",
            n=0,
        ),
        dict(id=1, s=None, d=None, f=None, ts=None, dd=None, big=None, b=None, j=None, n=0),
        dict(
            id=2,
            s="",
            d=Decimal("0"),
            f=0.1,
            ts=dt.datetime(1000, 1, 1, 0, 0, 0),
            dd=dt.date(1000, 1, 1),
            big="",
            b=b"",
            j="[]",
            n=1,
        ),
        dict(
            id=3,
            s="emoji 😀🎉👍🏽🇨🇳 and Chinese 中文字符，混合文本",
            d=big_max,
            f=1.7976931348623157e308,
            ts=dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
            dd=dt.date(9999, 12, 31),
            big=long_text(),
            b=random_blob(),
            j='{"k": "中文😀", "a": [1, 2.5, null, true]}',
            n=2147483647,
        ),
        dict(
            id=4,
            s=SPECIAL,
            d=big_max.copy_negate(),
            f=-2.5,
            ts=dt.datetime(2024, 2, 29, 12, 34, 56, 123456),
            dd=dt.date(2024, 2, 29),
            big=SPECIAL * 1000,
            b=bytes(range(256)) * 4,
            j=json.dumps({"q": SPECIAL}),
            n=-2147483648,
        ),
        dict(
            id=5,
            s="\\N",
            d=DEC_TINY,
            f=1 / 3,
            ts=dt.datetime(1970, 1, 1, 0, 0, 0, 1),
            dd=dt.date(1970, 1, 1),
            big="NULL",
            b=b"\\N",
            j='"\\\\N"',
            n=5,
        ),
        dict(
            id=6,
            s="  trailing and leading blanks  ",
            d=DEC_TINY.copy_negate(),
            f=1e-300,
            ts=dt.datetime(2038, 1, 19, 3, 14, 8, 500000),
            dd=dt.date(2038, 1, 19),
            big="\r\n",
            b=b"\x00\t\n\r\\'\"",
            j='{"nested": {"x": [1, 2, 3]}}',
            n=6,
        ),
        dict(
            id=7,
            s='O\'Reilly "quoted" C:\\path\\ \r\n crlf',
            d=Decimal("1234.5678901234"),
            f=123456789.123456789,
            ts=dt.datetime(2020, 6, 15, 8, 0, 0, 10),
            dd=dt.date(2020, 6, 15),
            big="tab\tonly",
            b=b"\xff" * 3,
            j="true",
            n=7,
        ),
        dict(
            id=100,
            s="last",
            d=Decimal("-0.0000000100"),
            f=-1e100,
            ts=dt.datetime(2100, 12, 31, 0, 0, 0, 999999),
            dd=dt.date(2100, 12, 31),
            big="end",
            b=b"end",
            j='{"end": "结束"}',
            n=100,
        ),
    ]
    return rows


def _sqlite_value(kind: str, v: Any) -> Any:
    """A value as a SQLite application would store it (SQLAlchemy's own conventions)."""
    if v is None:
        return None
    if kind == "decimal":
        return format(v, "f")
    if kind == "datetime":
        return v.isoformat(sep=" ", timespec="microseconds")
    if kind == "date":
        return v.isoformat()
    return v


#: bind types for engines whose drivers must be told a value is a LOB
BIND_TYPES = {"text": sa.UnicodeText(), "json": sa.UnicodeText(), "blob": sa.LargeBinary()}


def create_edge_table(engine: str, url: str) -> list[dict[str, Any]]:
    """Create and fill the edge table natively; returns the rows written."""
    rows = edge_rows(engine)
    if engine == "sqlite":
        path = sa.make_url(url).database
        db = sqlite3.connect(path)
        for ddl in NATIVE_EDGE_DDL["sqlite"]:
            db.execute(ddl)
        for r in rows:
            cols = [c for c in EDGE_NAMES if not (r["id"] == 1 and c == "n")]
            db.execute(
                f"INSERT INTO edge ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [_sqlite_value(EDGE_KINDS[c], r[c]) for c in cols],
            )
        db.commit()
        db.close()
        return rows
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.begin() as conn:
            for ddl in NATIVE_EDGE_DDL[engine]:
                conn.exec_driver_sql(ddl)
            for r in rows:
                cols = [c for c in EDGE_NAMES if not (r["id"] == 1 and c == "n")]
                marks = [
                    f"CAST(:{c} AS jsonb)" if c == "j" and engine == "postgresql" else f":{c}"
                    for c in cols
                ]
                stmt = sa.text(f"INSERT INTO edge ({', '.join(cols)}) VALUES ({', '.join(marks)})")
                if engine in ("oracle", "mssql"):  # long text and bytes bound as LOBs
                    stmt = stmt.bindparams(
                        *[
                            sa.bindparam(c, type_=BIND_TYPES[EDGE_KINDS[c]])
                            for c in cols
                            if EDGE_KINDS[c] in BIND_TYPES
                        ]
                    )
                conn.execute(stmt, {c: r[c] for c in cols})
    finally:
        eng.dispose()
    return rows


# -- reading and normalising --------------------------------------------------------------------


def read_rows(url: str, table: str, columns: Sequence[str], order_by: Sequence[str] = ()) -> list:
    """Every row of ``table`` through SQLAlchemy Core, values exactly as the driver gives them."""
    eng = sa.create_engine(url, poolclass=NullPool)
    if eng.dialect.name == "postgresql":  # json/jsonb as their text, like the other engines
        sa.event.listen(eng, "connect", _json_as_text)
    try:
        t = sa.table(table, *[sa.column(c) for c in columns])
        stmt = sa.select(*[t.c[c] for c in columns])
        if order_by:
            stmt = stmt.order_by(*[t.c[c] for c in order_by])
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(stmt)]
    finally:
        eng.dispose()


def _json_as_text(dbapi_conn: Any, _record: Any) -> None:
    from psycopg.types.string import TextLoader

    for name in ("json", "jsonb"):
        dbapi_conn.adapters.register_loader(name, TextLoader)


class Odd:
    """A value of an unexpected Python type: never equal to a normal canonical value."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Odd)
            and type(other.value) is type(self.value)
            and (other.value == self.value)
        )

    def __hash__(self) -> int:
        return hash(repr(self.value))

    def __repr__(self) -> str:
        return f"Odd({type(self.value).__name__}: {_short(self.value)})"


def normalise(kind: str, v: Any, *, loose: bool = False) -> Any:
    """A canonical, exactly comparable form of a value of the given logical kind.

    ``kind`` is int, decimal (scale 10) or ``decimal:S`` (scale S), float, datetime, date,
    text, blob or json. Values must arrive as the matching Python type (Decimal, datetime,
    ...); with ``loose`` (a side that is SQLite, which has no decimal, time or JSON storage)
    decimals may also be int/float/str, times ISO text and JSON documents plain numbers.
    Anything else becomes an :class:`Odd`, which equals no canonical value, so the
    comparison fails.
    """
    if v is None:
        return None
    if kind == "int":
        return v if type(v) is int else Odd(v)
    if kind.startswith("decimal"):
        scale = int(kind.split(":", 1)[1]) if ":" in kind else SCALE
        if isinstance(v, Decimal):
            d = v
        elif loose and isinstance(v, float):
            d = Decimal(repr(v))
        elif loose and (type(v) is int or isinstance(v, str)):
            try:
                d = Decimal(v)
            except decimal.InvalidOperation:
                return Odd(v)
        else:
            return Odd(v)
        with decimal.localcontext() as ctx:
            ctx.prec = 200
            q = d.quantize(Decimal(1).scaleb(-scale))
            if q != d:  # more digits than the scale: not exactly the value at that scale
                return Odd(d)
            return "decimal:" + format(q, "f")
    if kind == "float":
        if isinstance(v, float) or (loose and type(v) is int):
            return "float:" + repr(float(v))
        return Odd(v)
    if kind == "datetime":
        if loose and isinstance(v, str):
            try:
                v = dt.datetime.fromisoformat(v)
            except ValueError:
                return Odd(v)
        if not isinstance(v, dt.datetime) or v.tzinfo is not None:
            return Odd(v)
        return "datetime:" + v.isoformat(" ", timespec="microseconds")
    if kind == "date":
        if loose and isinstance(v, str):
            try:
                v = dt.date.fromisoformat(v)
            except ValueError:
                return Odd(v)
        if type(v) is not dt.date:
            return Odd(v)
        return "date:" + v.isoformat()
    if kind == "text":
        return v if isinstance(v, str) else Odd(v)
    if kind == "blob":
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v)
        return Odd(v)
    if kind == "json":  # every engine gives JSON as text here (see read_rows) ...
        if loose and type(v) in (int, float):  # ... but a SQLite JSON column has NUMERIC
            v = json.dumps(v)  # affinity: the document '0' is stored as the integer 0
        if isinstance(v, str):
            try:
                return ("json", json.dumps(json.loads(v), sort_keys=True, ensure_ascii=False))
            except ValueError:
                return Odd(v)
        return Odd(v)
    raise AssertionError(f"unknown kind {kind}")


def normalise_rows(
    rows: Iterable[Sequence[Any]], kinds: Sequence[str], *, loose: bool = False
) -> list[tuple]:
    return [
        tuple(normalise(k, v, loose=loose) for k, v in zip(kinds, row, strict=True)) for row in rows
    ]


def _short(v: Any, limit: int = 120) -> str:
    text = repr(v)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(v) if hasattr(v, '__len__') else '?'} long)"


def _first_diff(a: Any, b: Any) -> str:
    if isinstance(a, (str, bytes)) and isinstance(b, type(a)):
        n = next(
            (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
        )
        return (
            f" (lengths {len(a)} vs {len(b)}, first difference at {n}:"
            f" {a[max(0, n - 10) : n + 10]!r} vs {b[max(0, n - 10) : n + 10]!r})"
        )
    return ""


def assert_same_rows(
    source: list[tuple],
    target: list[tuple],
    columns: Sequence[str],
    kinds: Sequence[str],
    key_len: int = 1,
    *,
    source_loose: bool = False,
    target_loose: bool = False,
) -> None:
    """Both sides hold the same rows (keyed by the first ``key_len`` columns), value by value.

    ``*_loose``: that side is SQLite (see :func:`normalise`)."""
    src = normalise_rows(source, kinds, loose=source_loose)
    dst = normalise_rows(target, kinds, loose=target_loose)
    src_by_key = {r[:key_len]: r for r in src}
    dst_by_key = {r[:key_len]: r for r in dst}
    assert len(src_by_key) == len(src), "source keys are not unique"
    problems: list[str] = []
    if len(dst) != len(dst_by_key):
        problems.append(f"target holds {len(dst) - len(dst_by_key)} duplicate key(s)")
    missing = sorted(set(src_by_key) - set(dst_by_key), key=repr)
    extra = sorted(set(dst_by_key) - set(src_by_key), key=repr)
    if missing:
        problems.append(f"keys missing on the target: {missing}")
    if extra:
        problems.append(f"keys only on the target: {extra}")
    for key, srow in src_by_key.items():
        drow = dst_by_key.get(key)
        if drow is None:
            continue
        for col, s, d in zip(columns, srow, drow, strict=True):
            if s != d:
                problems.append(
                    f"key {key} column {col}: source {_short(s)} != target {_short(d)}"
                    + _first_diff(s, d)
                )
    assert not problems, "values differ after the copy:\n  " + "\n  ".join(problems)


# -- running the tool ---------------------------------------------------------------------------


def write_plan(
    tmp_path: Path,
    src_url: str,
    dst_url: str,
    *,
    chunk_rows: int = 3,
    name: str = "plan",
    workers: int = 4,
    **step: str,
) -> Path:
    """A one-step plan copying every table of ``src_url`` to ``dst_url``; its state file is
    ``<tmp_path>/<name>-state.db``; ``step`` adds string keys to the step (if_exists=...)."""
    extra = "".join(f'{k} = "{v}"\n' for k, v in step.items())
    plan = tmp_path / f"{name}.toml"
    plan.write_text(
        f"""version = 1
name = "{name}"
state = "{name}-state.db"
[defaults]
chunk_rows = {chunk_rows}
workers = {workers}
[connections]
src = {{ url = "{src_url}" }}
dst = {{ url = "{dst_url}" }}
[[steps]]
name = "copy"
source = "src"
target = "dst"
tables = ["*"]
{extra}""",
        encoding="utf-8",
    )
    return plan


def run_plan(plan: Path, capsys: Any) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["run", str(plan), "--json", "--quiet"])
    captured = capsys.readouterr()
    try:
        result = json.loads(captured.out)
    except ValueError:
        raise AssertionError(
            f"exit {code}, no JSON result:\n{captured.out}\n{captured.err}"
        ) from None
    return code, result


def table_results(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for s in result["steps"] for t in s["tables"]}


def assert_counts_ok(
    code: int, result: dict[str, Any], expected_rows: dict[str, int], *, chunk_rows: int | None
) -> dict[str, dict[str, Any]]:
    """Exit 0, every table done, counts equal per table and per chunk (and add up).

    With ``chunk_rows`` the table must have been copied in ``ceil(rows / chunk_rows)`` key
    chunks; with None it is one whole-table chunk.
    """
    detail = json.dumps(result, indent=1, default=str)[:4000]
    assert code == 0, f"exit {code}: {detail}"
    assert result["status"] == "done", detail
    tables = table_results(result)
    assert set(tables) == set(expected_rows), detail
    for name, rows in expected_rows.items():
        t = tables[name]
        assert t["status"] == "done", (name, detail)
        assert t["error"] is None, (name, t["error"])
        assert t["counts_match"] is True, (name, detail)
        assert (t["source_rows"], t["target_rows"]) == (rows, rows), (name, detail)
        chunks = t["chunks"]
        assert chunks, (name, "no chunk counts in the result")
        assert all(c["match"] for c in chunks), (name, chunks)
        assert all(c["source_rows"] == c["target_rows"] for c in chunks), (name, chunks)
        assert sum(c["source_rows"] for c in chunks) == rows, (name, chunks)
        assert [c["seq"] for c in chunks] == list(range(1, len(chunks) + 1)), (name, chunks)
        if chunk_rows is None:
            assert len(chunks) == 1 and chunks[0]["lo"] is None and chunks[0]["hi"] is None
        else:
            assert len(chunks) == math.ceil(rows / chunk_rows), (name, chunks)
            assert chunks[0]["lo"] is None, (name, chunks)
            for prev, nxt in itertools.pairwise(chunks):  # contiguous key ranges
                assert nxt["lo"] == prev["hi"], (name, chunks)
            assert all(c["source_rows"] == chunk_rows for c in chunks[:-1]), (name, chunks)
    return tables


# -- running migrate on a plan written by write_plan ----------------------------------------
REPO = Path(__file__).resolve().parent.parent


def state_file(plan: Path) -> Path:
    """The state file of a plan written by :func:`write_plan` (``<name>-state.db``)."""
    return plan.with_name(f"{plan.stem}-state.db")


def execute(url: str, *statements: str, rows: Sequence[tuple[str, list[dict]]] = ()) -> None:
    """Run statements, then ``(sql, rows)`` parameterised statements, in one transaction."""
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
            for sql, params in rows:
                conn.execute(sa.text(sql), params)
    finally:
        eng.dispose()


def run_json(plan: Path, capsys: Any, *args: str, command: str = "run") -> tuple[int, dict]:
    """``migrate COMMAND PLAN --json --quiet ARGS`` in this process (``run`` by default)."""
    capsys.readouterr()
    code = main([command, str(plan), "--json", "--quiet", *args])
    out = capsys.readouterr()
    try:
        return code, json.loads(out.out)
    except ValueError:
        raise AssertionError(f"exit {code}, no JSON result:\n{out.out}\n{out.err}") from None


def run_text(plan: Path, capsys: Any, *args: str) -> tuple[int, str]:
    """``migrate run PLAN ARGS`` in this process: exit code and stdout + stderr."""
    capsys.readouterr()
    code = main(["run", str(plan), *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def run_cli(plan: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``migrate run PLAN ARGS`` as its own process: exit code, stdout, stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "migrate.cli", "run", str(plan), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    return proc.returncode, proc.stdout, proc.stderr
