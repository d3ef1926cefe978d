"""Copies between real engines keep every value, the keys, NOT NULLs, defaults and indexes.

Each test builds its source natively, runs ``migrate run plan.toml --json``, checks the JSON
result (exit 0, counts equal per table and per chunk) and then reads *both* sides with
SQLAlchemy Core and compares every value after normalising it per column kind
(tests/edge_data.py): decimals exactly at their scale, datetimes to the microsecond, bytes
and text exactly, floats by repr, JSON by its parsed value.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import sys
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from edge_data import (
    EDGE_COLUMNS,
    EDGE_INDEX,
    EDGE_KINDS,
    EDGE_NAMES,
    EDGE_TABLE,
    assert_counts_ok,
    assert_same_rows,
    create_edge_table,
    normalise_rows,
    read_rows,
    run_plan,
    table_results,
    write_plan,
)
from sqlalchemy.pool import NullPool

ENGINE = {"mysql": "mysql", "mysql2": "mysql", "pg": "postgresql", "sqlite": "sqlite"}
FIXTURE = {"mysql": "mysql_db", "mysql2": "mysql2_db", "pg": "pg_db"}


def db_url(side: str, request: pytest.FixtureRequest, tmp_path: Path, role: str) -> str:
    """A fresh empty database of the given kind (a file for SQLite)."""
    if side == "sqlite":
        return f"sqlite:///{tmp_path / f'{role}.db'}"
    return request.getfixturevalue(FIXTURE[side])


def execute(url: str, statements: list[str], params: Sequence[tuple[str, Any]] = ()) -> None:
    """Run DDL, then ``(sql, rows)`` inserts, in one transaction."""
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
            for sql, rows in params:
                conn.execute(sa.text(sql), rows)
    finally:
        eng.dispose()


def count_rows(url: str, table: str) -> int:
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(sa.table(table))
            ).scalar_one()
    finally:
        eng.dispose()


def _default_text(value: Any) -> str | None:
    """A reflected column default as plain text: ``'0'``, ``(0)``, ``0::integer`` -> ``0``."""
    if value is None:
        return None
    text = re.sub(r"::[\w ]+$", "", str(value).strip())
    while len(text) >= 2 and text[0] + text[-1] in ("()", "''"):
        text = text[1:-1].strip()
    return text


# -- 1 + 2: the edge table across engines ------------------------------------------------------

COPIES = [
    pytest.param("mysql", "mysql2", "any", id="mariadb-to-mariadb"),
    pytest.param("mysql", "pg", "any", id="mariadb-to-postgresql"),
    pytest.param("sqlite", "mysql", "any", id="sqlite-to-mariadb"),
    pytest.param("pg", "mysql", "any", id="postgresql-to-mariadb"),
    # MySQL sources read text-form rows with mysqlclient when it is installed, else with
    # PyMySQL: both readers must give the same values
    pytest.param("mysql", "mysql2", "pymysql", id="mariadb-to-mariadb-pymysql-reader"),
    pytest.param("mysql", "pg", "pymysql", id="mariadb-to-postgresql-pymysql-reader"),
]


@pytest.mark.parametrize(("src_side", "dst_side", "reader"), COPIES)
def test_edge_table_copies_every_value(
    src_side: str,
    dst_side: str,
    reader: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if reader == "pymysql":  # `import MySQLdb` now fails, as where it is not installed
        monkeypatch.setitem(sys.modules, "MySQLdb", None)
    src = db_url(src_side, request, tmp_path, "src")
    dst = db_url(dst_side, request, tmp_path, "dst")
    rows = create_edge_table(ENGINE[src_side], src)
    kinds = [EDGE_KINDS[c] for c in EDGE_NAMES]

    # the fixture itself: the source holds exactly the intended rows (row id=1 took DEFAULT 0)
    source = read_rows(src, EDGE_TABLE, EDGE_NAMES, order_by=["id"])
    intended = [tuple(r[c] for c in EDGE_NAMES) for r in rows]
    loose = src_side == "sqlite"
    assert normalise_rows(source, kinds, loose=loose) == normalise_rows(intended, kinds)

    code, result = run_plan(write_plan(tmp_path, src, dst, chunk_rows=3), capsys)
    assert_counts_ok(code, result, {EDGE_TABLE: len(rows)}, chunk_rows=3)

    # schema on the target: primary key, NOT NULLs, the default, decimal precision, the index
    eng = sa.create_engine(dst, poolclass=NullPool)
    try:
        insp = sa.inspect(eng)
        assert insp.get_pk_constraint(EDGE_TABLE)["constrained_columns"] == ["id"]
        cols = {c["name"]: c for c in insp.get_columns(EDGE_TABLE)}
        assert list(cols) == EDGE_NAMES
        for name, _kind, nullable in EDGE_COLUMNS:
            assert bool(cols[name]["nullable"]) is nullable, (name, cols[name])
        assert _default_text(cols["n"]["default"]) == "0", cols["n"]
        dtype = cols["d"]["type"]
        assert isinstance(dtype, sa.Numeric) and (dtype.precision, dtype.scale) == (38, 10), dtype
        indexes = insp.get_indexes(EDGE_TABLE)
        assert [ix["column_names"] for ix in indexes if not ix.get("unique")] == [["s"]], indexes
        assert EDGE_INDEX in {ix["name"] for ix in indexes}, indexes
    finally:
        eng.dispose()

    target = read_rows(dst, EDGE_TABLE, EDGE_NAMES, order_by=["id"])
    assert_same_rows(source, target, EDGE_NAMES, kinds, source_loose=loose)
    # the default works on the target too: a row without n gets 0
    execute(dst, [f"INSERT INTO {EDGE_TABLE} (id) VALUES (1000)"])
    assert read_rows(dst, EDGE_TABLE, ["id", "n"], order_by=["id"])[-1] == (1000, 0)


# -- 3: a composite primary key ----------------------------------------------------------------

LOWER_REGIONS = ["eu-west", "ap-south", "us-east", "eu-north", "sa-1", "af-2"]
MIXED_REGIONS = ["Europe", "africa", "Asia", "zulu", "Zeta", "américa"]


def _regional_rows(regions: list[str]) -> list[dict[str, Any]]:
    rng = random.Random(7)
    rows = [
        {
            "region": r,
            "id": i,
            "v": f"{r}/{i} 中文",
            "amount": Decimal(f"{rng.randint(-99999, 99999)}.{rng.randint(0, 99):02d}"),
        }
        for r in regions
        for i in (1, 2, 3, 10, 11, -4)
        if not (r.startswith("s") and i > 2)
    ]
    rng.shuffle(rows)  # inserted in no particular order
    return rows


REGIONAL_DDL = {
    "mysql": "CREATE TABLE regional (region VARCHAR(10) NOT NULL, id INT NOT NULL,"
    " v VARCHAR(30), amount DECIMAL(12,2), PRIMARY KEY (region, id))",
    "postgresql": "CREATE TABLE regional (region varchar(10) NOT NULL, id integer NOT NULL,"
    " v varchar(30), amount numeric(12,2), PRIMARY KEY (region, id))",
}


@pytest.mark.parametrize(
    ("src_side", "dst_side", "regions"),
    [
        pytest.param("mysql", "pg", LOWER_REGIONS, id="mariadb-to-postgresql"),
        pytest.param("pg", "mysql", LOWER_REGIONS, id="postgresql-to-mariadb"),
        pytest.param("mysql", "mysql2", LOWER_REGIONS, id="mariadb-to-mariadb"),
        pytest.param("pg", "mysql", MIXED_REGIONS, id="postgresql-to-mariadb-mixed-case"),
        pytest.param("mysql", "pg", MIXED_REGIONS, id="mariadb-to-postgresql-mixed-case"),
    ],
)
def test_composite_primary_key_is_chunked_in_key_order(
    src_side: str,
    dst_side: str,
    regions: list[str],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys,
) -> None:
    src = db_url(src_side, request, tmp_path, "src")
    dst = db_url(dst_side, request, tmp_path, "dst")
    rows = _regional_rows(regions)
    execute(
        src,
        [REGIONAL_DDL[ENGINE[src_side]]],
        [("INSERT INTO regional VALUES (:region, :id, :v, :amount)", rows)],
    )
    cols, kinds = ["region", "id", "v", "amount"], ["text", "int", "text", "decimal:2"]
    chunk_rows = 4
    code, result = run_plan(write_plan(tmp_path, src, dst, chunk_rows=chunk_rows), capsys)
    table = assert_counts_ok(code, result, {"regional": len(rows)}, chunk_rows=chunk_rows)[
        "regional"
    ]
    assert table["key"] == ["region", "id"]

    # chunks follow the source's own key order: chunk k ends at the (k * chunk_rows)-th key
    source = read_rows(src, "regional", cols, order_by=["region", "id"])
    keys = [list(r[:2]) for r in source]
    his = [c["hi"] for c in table["chunks"]]
    assert his == [keys[min(k * chunk_rows, len(keys)) - 1] for k in range(1, len(his) + 1)]

    eng = sa.create_engine(dst, poolclass=NullPool)
    try:
        pk = sa.inspect(eng).get_pk_constraint("regional")["constrained_columns"]
    finally:
        eng.dispose()
    assert pk == ["region", "id"]
    target = read_rows(dst, "regional", cols)
    assert len(target) == len(rows)
    assert_same_rows(source, target, cols, kinds, key_len=2)


# -- 4: no primary key, duplicate rows ------------------------------------------------------------

DUPS_DDL = {
    "mysql": "CREATE TABLE dups (a INT, b VARCHAR(20), c DECIMAL(10,2), t DATETIME(6))",
    "postgresql": "CREATE TABLE dups (a integer, b varchar(20), c numeric(10,2), t timestamp(6))",
    "sqlite": "CREATE TABLE dups (a INTEGER, b VARCHAR(20), c DECIMAL(10,2), t DATETIME)",
}


def _dup_rows() -> list[dict[str, Any]]:
    base = [
        {"a": 1, "b": "x", "c": Decimal("1.10"), "t": dt.datetime(2024, 1, 1, 0, 0, 0, 1)},
        {"a": 1, "b": "x", "c": Decimal("1.10"), "t": dt.datetime(2024, 1, 1, 0, 0, 0, 1)},
        {"a": 1, "b": "x", "c": Decimal("1.10"), "t": dt.datetime(2024, 1, 1, 0, 0, 0, 1)},
        {"a": None, "b": None, "c": None, "t": None},
        {"a": None, "b": None, "c": None, "t": None},
        {"a": 2, "b": "", "c": Decimal("-0.01"), "t": dt.datetime(1000, 1, 1)},
        {"a": 2, "b": "中文 😀", "c": Decimal("-0.01"), "t": dt.datetime(1000, 1, 1)},
        {"a": 2, "b": "中文 😀", "c": Decimal("-0.01"), "t": dt.datetime(1000, 1, 1)},
        {"a": 3, "b": "tab\there", "c": Decimal("99999999.99"), "t": None},
        {"a": 3, "b": "tab\there", "c": Decimal("99999999.99"), "t": None},
    ]
    return base


@pytest.mark.parametrize(
    ("src_side", "dst_side"),
    [
        pytest.param("mysql", "pg", id="mariadb-to-postgresql"),
        pytest.param("pg", "mysql", id="postgresql-to-mariadb"),
        pytest.param("sqlite", "mysql", id="sqlite-to-mariadb"),
    ],
)
def test_table_without_key_copies_duplicates_as_one_chunk(
    src_side: str, dst_side: str, request: pytest.FixtureRequest, tmp_path: Path, capsys
) -> None:
    src = db_url(src_side, request, tmp_path, "src")
    dst = db_url(dst_side, request, tmp_path, "dst")
    rows = _dup_rows()
    params = [
        {
            **r,
            **(
                {
                    "c": None if r["c"] is None else str(r["c"]),
                    "t": None if r["t"] is None else r["t"].strftime("%Y-%m-%d %H:%M:%S.%f"),
                }
                if src_side == "sqlite"
                else {}
            ),
        }
        for r in rows
    ]
    execute(
        src, [DUPS_DDL[ENGINE[src_side]]], [("INSERT INTO dups VALUES (:a, :b, :c, :t)", params)]
    )
    cols, kinds = ["a", "b", "c", "t"], ["int", "text", "decimal:2", "datetime"]

    code, result = run_plan(write_plan(tmp_path, src, dst, chunk_rows=3), capsys)
    table = assert_counts_ok(code, result, {"dups": len(rows)}, chunk_rows=None)["dups"]
    assert table["key"] == []
    assert any("cannot be resumed" in note for note in table["notes"]), table["notes"]

    source = read_rows(src, "dups", cols)
    intended = [tuple(r[c] for c in cols) for r in rows]
    source_set = Counter(normalise_rows(source, kinds, loose=src_side == "sqlite"))
    assert source_set == Counter(normalise_rows(intended, kinds))
    target = read_rows(dst, "dups", cols)
    # the same multiset: every duplicate kept, none added
    assert Counter(normalise_rows(target, kinds)) == source_set


# -- 5: a 200-column table ------------------------------------------------------------------------

WIDE_KINDS = ["int", "varchar", "decimal", "datetime"]
WIDE_NATIVE = {
    "int": "INT",
    "varchar": "VARCHAR(20)",
    "decimal": "DECIMAL(12,2)",
    "datetime": "DATETIME(6)",
}
WIDE_COLS = ["id"] + [f"c{i:03d}" for i in range(1, 200)]
WIDE_COL_KINDS = ["int"] + [WIDE_KINDS[(i - 1) % 4] for i in range(1, 200)]


def _wide_value(kind: str, rng: random.Random) -> Any:
    if rng.random() < 0.1:
        return None
    if kind == "int":
        return rng.randint(-(2**31), 2**31 - 1)
    if kind == "varchar":
        alphabet = "abcXYZ09 '\"\\\t\n中文😀é"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
    if kind == "decimal":
        return Decimal(rng.randint(-(10**12) + 1, 10**12 - 1)).scaleb(-2)
    return dt.datetime(
        rng.randint(1000, 9999),
        rng.randint(1, 12),
        rng.randint(1, 28),
        rng.randint(0, 23),
        rng.randint(0, 59),
        rng.randint(0, 59),
        rng.randint(0, 999999),
    )


@pytest.mark.parametrize(
    ("src_side", "dst_side"),
    [
        pytest.param("mysql", "pg", id="mariadb-to-postgresql"),
        pytest.param("mysql", "mysql2", id="mariadb-to-mariadb"),
    ],
)
def test_wide_table_of_200_columns(
    src_side: str, dst_side: str, request: pytest.FixtureRequest, tmp_path: Path, capsys
) -> None:
    src = db_url(src_side, request, tmp_path, "src")
    dst = db_url(dst_side, request, tmp_path, "dst")
    ddl = ", ".join(
        ["id INT NOT NULL PRIMARY KEY"]
        + [f"{c} {WIDE_NATIVE[k]}" for c, k in zip(WIDE_COLS[1:], WIDE_COL_KINDS[1:], strict=True)]
    )
    rng = random.Random(200)
    rows = [
        {
            "id": i,
            **{
                c: _wide_value(k, rng)
                for c, k in zip(WIDE_COLS[1:], WIDE_COL_KINDS[1:], strict=True)
            },
        }
        for i in range(1, 51)
    ]
    marks = ", ".join(f":{c}" for c in WIDE_COLS)
    execute(src, [f"CREATE TABLE wide ({ddl})"], [(f"INSERT INTO wide VALUES ({marks})", rows)])
    kinds = [{"varchar": "text", "decimal": "decimal:2"}.get(k, k) for k in WIDE_COL_KINDS]

    source = read_rows(src, "wide", WIDE_COLS, order_by=["id"])
    intended = [tuple(r[c] for c in WIDE_COLS) for r in rows]
    assert normalise_rows(source, kinds) == normalise_rows(intended, kinds)

    code, result = run_plan(write_plan(tmp_path, src, dst, chunk_rows=10), capsys)
    assert_counts_ok(code, result, {"wide": 50}, chunk_rows=10)
    target = read_rows(dst, "wide", WIDE_COLS, order_by=["id"])
    assert len(target) == 50
    assert_same_rows(source, target, WIDE_COLS, kinds)


# -- 6: a rerun after success copies nothing -------------------------------------------------------


@pytest.mark.parametrize(
    ("src_side", "dst_side"),
    [
        pytest.param("mysql", "pg", id="mariadb-to-postgresql"),
        pytest.param("sqlite", "mysql", id="sqlite-to-mariadb"),
    ],
)
def test_rerun_after_success_copies_nothing(
    src_side: str, dst_side: str, request: pytest.FixtureRequest, tmp_path: Path, capsys
) -> None:
    src = db_url(src_side, request, tmp_path, "src")
    dst = db_url(dst_side, request, tmp_path, "dst")
    rows = [{"id": i, "name": f"item {i} 中"} for i in range(1, 11)]
    execute(
        src,
        ["CREATE TABLE items (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(20))"],
        [("INSERT INTO items VALUES (:id, :name)", rows)],
    )
    plan = write_plan(tmp_path, src, dst, chunk_rows=3)
    code, result = run_plan(plan, capsys)
    assert_counts_ok(code, result, {"items": 10}, chunk_rows=3)
    before = read_rows(dst, "items", ["id", "name"], order_by=["id"])
    assert len(before) == 10

    code, result = run_plan(plan, capsys)
    assert code == 0, result
    assert result["status"] == "done", result
    table = table_results(result)["items"]
    assert table["status"] == "skipped", table
    assert (table["source_rows"], table["target_rows"]) == (10, 10), table
    assert count_rows(dst, "items") == 10
    assert read_rows(dst, "items", ["id", "name"], order_by=["id"]) == before


# -- a SQLite target keeps decimals exactly (as connectors/sql/sqlite.py promises) ----------


def test_decimals_keep_every_digit_on_a_sqlite_target(
    mysql_db: str, tmp_path: Path, capsys
) -> None:
    values = [
        Decimal("9999999999999999999999999999.9999999999"),
        Decimal("-9999999999999999999999999999.9999999999"),
        Decimal("0.0000000001"),
        Decimal("12345678901234567.8901234567"),
        Decimal("0"),
    ]
    execute(
        mysql_db,
        ["CREATE TABLE money (id INT PRIMARY KEY, d DECIMAL(38,10))"],
        [("INSERT INTO money VALUES (:id, :d)", [{"id": i, "d": v} for i, v in enumerate(values)])],
    )
    dst = f"sqlite:///{tmp_path / 'dst.db'}"
    code, result = run_plan(write_plan(tmp_path, mysql_db, dst, chunk_rows=2), capsys)
    assert_counts_ok(code, result, {"money": len(values)}, chunk_rows=2)
    source = read_rows(mysql_db, "money", ["id", "d"], order_by=["id"])
    target = read_rows(dst, "money", ["id", "d"], order_by=["id"])
    # SQLite has no decimal type: text, integers and reals are all fine if the value is exact
    assert_same_rows(source, target, ["id", "d"], ["int", "decimal"], target_loose=True)


# -- a JSON column stays JSON ---------------------------------------------------------------

JSON_DDL = {
    "mysql": "CREATE TABLE docs (id INT NOT NULL PRIMARY KEY, j JSON)",
    "postgresql": "CREATE TABLE docs (id integer NOT NULL PRIMARY KEY, j jsonb)",
}


def _is_json_column(url: str, table: str, column: str) -> bool:
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            if eng.dialect.name == "postgresql":
                kind = conn.execute(
                    sa.text(
                        "SELECT data_type FROM information_schema.columns"
                        " WHERE table_name = :t AND column_name = :c"
                    ),
                    {"t": table, "c": column},
                ).scalar_one()
                return kind in ("json", "jsonb")
            # MariaDB's JSON is LONGTEXT with a json_valid() check
            ddl = conn.exec_driver_sql(f"SHOW CREATE TABLE {table}").one()[1]
            return f"json_valid(`{column}`)" in ddl
    finally:
        eng.dispose()


@pytest.mark.parametrize(
    ("src_side", "dst_side"),
    [
        pytest.param("mysql", "pg", id="mariadb-to-postgresql"),
        pytest.param("mysql", "mysql2", id="mariadb-to-mariadb"),
        pytest.param("pg", "mysql", id="postgresql-to-mariadb"),
    ],
)
def test_json_column_stays_json(
    src_side: str, dst_side: str, request: pytest.FixtureRequest, tmp_path: Path, capsys
) -> None:
    src = db_url(src_side, request, tmp_path, "src")
    dst = db_url(dst_side, request, tmp_path, "dst")
    cast = "CAST(:j AS jsonb)" if src_side == "pg" else ":j"
    docs = [{"id": 1, "j": '{"a": [1, 2.5, null], "k": "中文😀"}'}, {"id": 2, "j": None}]
    execute(src, [JSON_DDL[ENGINE[src_side]]], [(f"INSERT INTO docs VALUES (:id, {cast})", docs)])
    assert _is_json_column(src, "docs", "j")
    code, result = run_plan(write_plan(tmp_path, src, dst, chunk_rows=3), capsys)
    assert_counts_ok(code, result, {"docs": 2}, chunk_rows=3)
    assert_same_rows(
        read_rows(src, "docs", ["id", "j"]),
        read_rows(dst, "docs", ["id", "j"]),
        ["id", "j"],
        ["int", "json"],
    )
    assert _is_json_column(dst, "docs", "j"), "the JSON column arrived as plain text"


# -- ENUM members with quotes and backslashes ---------------------------------------------


@pytest.mark.parametrize(
    "dst_side",
    [pytest.param("mysql2", id="mariadb-to-mariadb"), pytest.param("pg", id="mariadb-to-pg")],
)
def test_enum_members_with_quotes_and_backslashes_arrive_exactly(
    dst_side: str, mysql_db: str, request: pytest.FixtureRequest, tmp_path: Path, capsys
) -> None:
    members = ["plain", "it''s", "back\\\\slash", "中文"]  # as written in SQL
    values = ["plain", "it's", "back\\slash", "中文"]
    enum = ", ".join(f"'{m}'" for m in members)
    execute(
        mysql_db,
        [f"CREATE TABLE tags (id INT PRIMARY KEY, t ENUM({enum}))"],
        [("INSERT INTO tags VALUES (:id, :t)", [{"id": i, "t": v} for i, v in enumerate(values)])],
    )
    dst = db_url(dst_side, request, tmp_path, "dst")
    code, result = run_plan(write_plan(tmp_path, mysql_db, dst, chunk_rows=2), capsys)
    assert_counts_ok(code, result, {"tags": len(values)}, chunk_rows=2)
    target = read_rows(dst, "tags", ["id", "t"], order_by=["id"])
    assert [r[1] for r in target] == values
