"""``migrate validate`` on real servers: planted differences found exactly, rules, redaction,
the HTML report, keyless and text-keyed tables, read-only operation and usage errors.

Every test builds both sides natively (server-side generated rows where they are many),
plants known differences on one side and runs ``migrate validate --json`` in-process
through ``migrate.cli.main``; the JSON result must list exactly the planted keys, and for
changed rows exactly the planted columns with both values.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from edge_data import execute, run_json, write_plan
from sqlalchemy.pool import NullPool

from migrate.cli import main
from validators.checksum import CHUNK_ROWS

# -- helpers ----------------------------------------------------------------------------------


def fetch(url: str, sql: str, **params: Any) -> list[tuple]:
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        eng.dispose()


def validate(plan: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    """``migrate validate PLAN --json --quiet ARGS`` in this process: exit code and JSON."""
    return run_json(plan, capsys, *args, command="validate")


def usage_error(plan: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``migrate validate PLAN ARGS`` expected to fail: exit code and stderr."""
    capsys.readouterr()
    code = main(["validate", str(plan), "--quiet", *args])
    out = capsys.readouterr()
    assert out.out == "", out.out
    return code, out.err


def plan_with(tmp_path: Path, src: str, dst: str, extra: str = "", **kw: Any) -> Path:
    """:func:`edge_data.write_plan` with TOML text appended to its one step ``copy``
    (``[steps.rules]``, ``[steps.overrides.T.rules]``, ``validate = [...]``)."""
    kw.setdefault("chunk_rows", 1000)
    plan = write_plan(tmp_path, src, dst, **kw)
    if extra:
        plan.write_text(plan.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return plan


def two_step_plan(
    tmp_path: Path, name: str, src: str, m2: str, pg: str, extra: str = "", chunk_rows: int = 1000
) -> Path:
    """Two steps from MariaDB ``src``: ``m`` to MariaDB ``m2`` and ``p`` to PostgreSQL
    ``pg``; ``extra`` (TOML such as ``[steps.rules]``) is added to both."""
    steps = "".join(
        f'[[steps]]\nname = "{step}"\nsource = "src"\ntarget = "{dst}"\ntables = ["*"]\n{extra}'
        for step, dst in (("m", "m2"), ("p", "pg"))
    )
    plan = tmp_path / f"{name}.toml"
    plan.write_text(
        f"""version = 1
name = "{name}"
state = "{name}-state.db"
[defaults]
chunk_rows = {chunk_rows}
workers = 4
[connections]
src = {{ url = "{src}" }}
m2 = {{ url = "{m2}" }}
pg = {{ url = "{pg}" }}
{steps}""",
        encoding="utf-8",
    )
    return plan


def table_of(data: dict, name: str) -> dict:
    found = [t for t in data["tables"] if t["table"] == name]
    assert len(found) == 1, json.dumps(data, indent=1)[:3000]
    return found[0]


Diffs = dict[tuple, tuple[str, dict[str, tuple[Any, Any]]]]


def diffs_of(table: dict) -> Diffs:
    """``{key: (kind, {column: (source, target)})}`` of one table's JSON result."""
    out: Diffs = {}
    for d in table["diffs"]:
        key = tuple(d["key"])
        assert key not in out, f"key {key} listed twice"
        cols = {c["column"]: (c["source"], c["target"]) for c in d["columns"]}
        assert len(cols) == len(d["columns"]), d
        out[key] = (d["kind"], cols)
    return out


def assert_diffs(table: dict, expected: Diffs) -> None:
    """The table's differing rows are exactly ``expected`` and its counts agree."""
    got = diffs_of(table)
    missing = {k: v for k, v in expected.items() if got.get(k) != v}
    surplus = {k: v for k, v in got.items() if k not in expected}
    assert not missing and not surplus, (
        f"expected but not reported (or reported otherwise): {missing}\n"
        f"reported but not planted: {surplus}\nreported for those: "
        f"{ {k: got.get(k) for k in missing} }"
    )
    kinds = [kind for kind, _ in expected.values()]
    assert (table["missing"], table["extra"], table["changed"]) == (
        kinds.count("missing"),
        kinds.count("extra"),
        kinds.count("changed"),
    )
    assert table["status"] == ("differences" if expected else "equal")


def shown(value: Any) -> Any:
    """A value as the JSON report writes it (independently of migrate.validate)."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") + (
            f".{value.microsecond:06d}" if value.microsecond else ""
        )
    return str(value)


# -- 1. planted differences in a 200,000-row table --------------------------------------------

BIG_ROWS = 200_000
BIG_CHUNK = 20_000
BIG_DDL = """CREATE TABLE big (
    id BIGINT NOT NULL PRIMARY KEY,
    txt VARCHAR(60) NULL,
    amount DECIMAL(12,2) NOT NULL,
    ts DATETIME(6) NOT NULL,
    qty INT NOT NULL,
    score DOUBLE NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
# keys are the even numbers 2 .. 400000; txt is NULL where seq % 1000 = 7 and '' where 8
BIG_FILL = f"""INSERT INTO big
SELECT seq * 2,
       CASE MOD(seq, 1000) WHEN 7 THEN NULL WHEN 8 THEN '' ELSE CONCAT('text ', seq) END,
       MOD(seq * 7919, 10000000) / 100,
       TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq * 1000003 MICROSECOND,
       MOD(seq, 977),
       seq / 8
FROM seq_1_to_{BIG_ROWS}"""
FIRST, LAST = 2, 2 * BIG_ROWS


def big_source(url: str) -> None:
    execute(url, BIG_DDL, BIG_FILL)


def plant_big(url: str) -> Diffs:
    """Plant three differences of each kind on ``url`` (a copy of the source); returns
    what validation must report."""
    at = (4, 150_000, 399_998, 14, 200_014, 398_016, 6, 222_222, 399_996, 8, 300_000, 399_994)
    rows = {r[0]: r for r in fetch(url, f"SELECT id, txt, amount, ts FROM big WHERE id IN {at}")}
    expected: dict[tuple, tuple[str, dict[str, tuple[Any, Any]]]] = {}
    stmts: list[tuple[str, list[dict]]] = []
    # missing on the target: the very first and last keys and one inside
    for k in (FIRST, 200_000, LAST):
        stmts.append(("DELETE FROM big WHERE id = :k", [{"k": k}]))
        expected[(k,)] = ("missing", {})
    # extra on the target: below the first key, between two keys, above the last key
    for k in (1, 250_001, LAST + 1):
        stmts.append(
            (
                "INSERT INTO big (id, txt, amount, ts, qty, score)"
                " VALUES (:k, 'extra', 1, :ts, 1, 1)",
                [{"k": k, "ts": dt.datetime(2030, 1, 1, 0, 0, 0, 5)}],
            )
        )
        expected[(k,)] = ("extra", {})
    # text changed
    for k in (4, 150_000, 399_998):
        old = rows[k][1]
        assert old, rows[k]
        stmts.append(("UPDATE big SET txt = :v WHERE id = :k", [{"k": k, "v": old + "!"}]))
        expected[(k,)] = ("changed", {"txt": (old, old + "!")})
    # NULL <-> ''
    for k, old, new in ((14, None, ""), (200_014, None, ""), (398_016, "", None)):
        assert rows[k][1] == old, rows[k]
        stmts.append(("UPDATE big SET txt = :v WHERE id = :k", [{"k": k, "v": new}]))
        expected[(k,)] = ("changed", {"txt": (old, new)})
    # the last digit of a decimal
    for k in (6, 222_222, 399_996):
        old = rows[k][2]
        cent = Decimal("0.01")
        new = old - cent if old % Decimal("0.1") == Decimal("0.09") else old + cent
        stmts.append(("UPDATE big SET amount = :v WHERE id = :k", [{"k": k, "v": new}]))
        expected[(k,)] = ("changed", {"amount": (old, new)})
    # one microsecond of a timestamp
    for k in (8, 300_000, 399_994):
        old = rows[k][3]
        new = old + dt.timedelta(microseconds=1)
        stmts.append(("UPDATE big SET ts = :v WHERE id = :k", [{"k": k, "v": new}]))
        expected[(k,)] = ("changed", {"ts": (old, new)})
    assert len(expected) == 18
    execute(url, rows=stmts)
    return {
        k: (kind, {c: (shown(a), shown(b)) for c, (a, b) in cols.items()})
        for k, (kind, cols) in expected.items()
    }


def assert_big(data: dict, expected: Diffs) -> dict:
    t = table_of(data, "big")
    assert_diffs(t, expected)
    assert (t["source_rows"], t["target_rows"]) == (BIG_ROWS, BIG_ROWS)
    # the first pass reads chunks of at most CHUNK_ROWS, fewer than the copy's
    assert t["chunks"] == BIG_ROWS // min(BIG_CHUNK, CHUNK_ROWS)
    assert 1 <= t["chunks_differing"] <= t["chunks"]
    assert t["locatable"] is True and t["error"] is None
    assert data["status"] == "differences" and data["exit_code"] == 3
    return t


@pytest.mark.slow
def test_planted_differences_mariadb_to_mariadb_fast_and_canonical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, mysql2_db: str
) -> None:
    """Three differences of each kind in 200,000 rows are reported exactly (keys, kinds,
    columns, both values), by the same-engine fast hash and by the canonical hash."""
    big_source(mysql_db)
    big_source(mysql2_db)
    plan = plan_with(tmp_path, mysql_db, mysql2_db, chunk_rows=BIG_CHUNK)
    expected = plant_big(mysql2_db)
    code, data = validate(plan, capsys)
    t = assert_big(data, expected)
    assert code == 3
    assert "same engine" in t["method"], t["method"]
    code, data = validate(plan, capsys, "--hash", "canonical")
    t = assert_big(data, expected)
    assert code == 3
    assert "same engine" not in t["method"] and "canonical" in t["method"], t["method"]
    # the HTML report tells a NULL from an empty string
    html = (tmp_path / "plan-state.validation.html").read_text(encoding="utf-8")
    assert html.count('<span class="muted">(empty string)</span>') == 3
    assert html.count('<span class="muted">NULL</span>') == 3


@pytest.mark.slow
def test_planted_differences_mariadb_to_postgresql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str
) -> None:
    """The same planted differences on a PostgreSQL copy are reported exactly."""
    big_source(mysql_db)
    plan = plan_with(tmp_path, mysql_db, pg_db, chunk_rows=BIG_CHUNK)
    code, result = run_json(plan, capsys)
    assert code == 0, result
    expected = plant_big(pg_db)
    code, data = validate(plan, capsys)
    t = assert_big(data, expected)
    assert code == 3
    assert "same engine" not in t["method"]


# -- 2. identical tables ------------------------------------------------------------------------

SAME_DDL = """CREATE TABLE same (
    id INT NOT NULL PRIMARY KEY,
    txt VARCHAR(40) NULL,
    amount DECIMAL(10,3) NULL,
    ts DATETIME(6) NULL,
    f DOUBLE NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
SAME_FILL = """INSERT INTO same
SELECT seq,
       CASE MOD(seq, 10) WHEN 0 THEN NULL WHEN 1 THEN '' ELSE CONCAT('Žluťoučký ', seq) END,
       IF(MOD(seq, 7) = 0, NULL, seq / 3),
       IF(MOD(seq, 11) = 0, NULL, TIMESTAMP'1999-12-31 23:59:59' + INTERVAL seq * 77 SECOND),
       IF(MOD(seq, 13) = 0, NULL, seq / 7)
FROM seq_1_to_10000"""


@pytest.mark.parametrize("side", ["mysql2", "pg"])
def test_identical_tables_are_equal(
    side: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    mysql_db: str,
) -> None:
    """A fresh copy (NULLs, empty strings, accents, decimals, floats, timestamps) validates
    equal: exit 0, every chunk counted, row counts equal, nothing listed."""
    target = str(request.getfixturevalue({"mysql2": "mysql2_db", "pg": "pg_db"}[side]))
    execute(mysql_db, SAME_DDL, SAME_FILL)
    plan = plan_with(tmp_path, mysql_db, target, chunk_rows=1000)
    code, result = run_json(plan, capsys)
    assert code == 0, result
    code, data = validate(plan, capsys)
    assert code == 0, data
    assert data["status"] == "equal" and data["exit_code"] == 0
    assert data["message"] == "all 1 table(s) equal"
    t = table_of(data, "same")
    assert t["status"] == "equal"
    assert (t["source_rows"], t["target_rows"]) == (10_000, 10_000)
    assert (t["chunks"], t["chunks_differing"]) == (10, 0)
    assert (t["missing"], t["extra"], t["changed"]) == (0, 0, 0)
    assert t["diffs"] == [] and t["locatable"] is True and t["error"] is None
    assert t["rules"] == [] and t["rules_used"] == {}
    assert ("same engine" in t["method"]) == (side == "mysql2"), t["method"]


# -- 3. known-difference rules ------------------------------------------------------------------

RULE_DDL = {
    "mysql": """CREATE TABLE {name} (
        id INT NOT NULL PRIMARY KEY,
        f DOUBLE NULL,
        ts DATETIME(6) NULL,
        t VARCHAR(40) NULL,
        x INT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "postgresql": """CREATE TABLE {name} (
        id integer NOT NULL PRIMARY KEY,
        f double precision,
        ts timestamp(6),
        t varchar(40),
        x integer
    )""",
}
RULE_BASE = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)


def rule_rows() -> list[dict[str, Any]]:
    """20 rows; row 11 holds '' and row 12 NULL in ``t``."""
    rows = [
        {"id": i, "f": i + 0.5, "ts": RULE_BASE + dt.timedelta(seconds=i), "t": f"Row {i}", "x": i}
        for i in range(1, 21)
    ]
    rows[10]["t"], rows[11]["t"] = "", None
    return rows


def rule_table(url: str, name: str = "r") -> None:
    engine = "postgresql" if url.startswith("postgresql") else "mysql"
    execute(
        url,
        RULE_DDL[engine].format(name=name),
        rows=[(f"INSERT INTO {name} (id, f, ts, t, x) VALUES (:id, :f, :ts, :t, :x)", rule_rows())],
    )


def set_value(url: str, table: str, key: int, column: str, value: Any) -> None:
    execute(
        url, rows=[(f"UPDATE {table} SET {column} = :v WHERE id = :k", [{"v": value, "k": key}])]
    )


def source_value(key: int, column: str) -> Any:
    return rule_rows()[key - 1][column]


T3 = RULE_BASE + dt.timedelta(seconds=3)
T4 = RULE_BASE + dt.timedelta(seconds=4)
T7 = RULE_BASE + dt.timedelta(seconds=7)

#: rule id -> (TOML line, the name ``rules`` lists, the tolerated plants
#: ``[(key, column, target value)]``, a plant the rule does not tolerate)
RULE_CASES: dict[str, tuple[str, str, list[tuple[int, str, Any]], tuple[int, str, Any]]] = {
    "float_tolerance": (
        "float_tolerance = 0.001",
        "float tolerance 0.001 (absolute)",
        [(3, "f", 3.5004), (4, "f", 4.4991)],
        (7, "f", 7.502),
    ),
    "float_relative_tolerance": (
        "float_relative_tolerance = 1e-6",
        "float tolerance 1e-06 (relative)",
        [(3, "f", 3.5 * (1 + 5e-7)), (4, "f", 4.5 * (1 - 8e-7))],
        (7, "f", 7.5 * (1 + 3e-6)),
    ),
    "timestamp_precision": (
        'timestamp_precision = "ms"',
        "timestamp precision ms",
        # within the same millisecond, and across a millisecond boundary by 644 us
        [(3, "ts", T3.replace(microsecond=123999)), (4, "ts", T4.replace(microsecond=124100))],
        (7, "ts", T7.replace(microsecond=124457)),  # 1001 us
    ),
    "trailing_blanks": (
        "trailing_blanks = true",
        "trailing blanks ignored",
        [(3, "t", "Row 3   "), (11, "t", "  ")],
        (7, "t", " Row 7"),
    ),
    "empty_is_null": (
        "empty_is_null = true",
        "empty string = NULL",
        [(11, "t", None), (12, "t", "")],
        (7, "t", None),
    ),
    "case_insensitive": (
        "case_insensitive = true",
        "case-insensitive text",
        [(3, "t", "ROW 3"), (4, "t", "row 4")],
        (7, "t", "Rov 7"),
    ),
    "ignore_columns": (
        'ignore_columns = ["x"]',
        "ignored columns: x",
        [(3, "x", 300), (4, "x", None)],
        (7, "t", "Row seven"),
    ),
}


#: rules whose tolerated plants still hash differently (so rows are fetched and compared)
ROWS_COMPARED = ("float_tolerance", "float_relative_tolerance", "timestamp_precision")


def expect_plants(plants: list[tuple[int, str, Any]]) -> Diffs:
    return {
        (k,): ("changed", {col: (shown(source_value(k, col)), shown(v))}) for k, col, v in plants
    }


@pytest.mark.parametrize("rule", list(RULE_CASES))
def test_rule_turns_its_difference_into_a_pass(
    rule: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mysql_db: str,
    mysql2_db: str,
    pg_db: str,
) -> None:
    """Without the rule its planted difference fails (exit 3, those rows and columns);
    with it the table is equal (exit 0, rule listed and used); a difference of another
    kind is still reported with the rule on. MariaDB to MariaDB (step ``m``) and to
    PostgreSQL (step ``p``)."""
    line, name, tolerated, other = RULE_CASES[rule]
    for url in (mysql_db, mysql2_db, pg_db):
        rule_table(url)
    for target in (mysql2_db, pg_db):
        for k, col, v in tolerated:
            set_value(target, "r", k, col, v)
    bare = two_step_plan(tmp_path, "bare", mysql_db, mysql2_db, pg_db)
    ruled = two_step_plan(tmp_path, "ruled", mysql_db, mysql2_db, pg_db, f"[steps.rules]\n{line}\n")

    code, data = validate(bare, capsys)
    assert code == 3, data
    for t in data["tables"]:
        assert_diffs(t, expect_plants(tolerated))
        assert t["rules"] == [] and t["rules_used"] == {}

    code, data = validate(ruled, capsys)
    assert code == 0, data
    assert data["status"] == "equal" and [t["step"] for t in data["tables"]] == ["m", "p"]
    for t in data["tables"]:
        assert t["status"] == "equal" and t["diffs"] == [], t
        assert t["rules"] == [name]
        # with rules on, the canonical hash is used: its sum without the rules tells
        # whether they were needed
        assert "same engine" not in t["method"], t["method"]
        assert t["rules_used"] or t["ruled_ranges"], t
        if rule in ROWS_COMPARED:  # the rendering leaves a difference: compared row by row
            assert t["rules_used"], t
            assert sum(t["rules_used"].values()) == len(tolerated), t["rules_used"]
        # (the text rules: see test_rules_used_counts_what_hashing_absorbed)

    k, col, v = other
    for target in (mysql2_db, pg_db):
        set_value(target, "r", k, col, v)
    code, data = validate(ruled, capsys)
    assert code == 3, data
    assert len(data["tables"]) == 2
    for t in data["tables"]:
        assert_diffs(t, expect_plants([other]))
        assert t["rules"] == [name]


def test_override_rules_beat_step_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str
) -> None:
    """``[steps.overrides.a.rules]`` widens the step's tolerances for table ``a`` only:
    the same differences pass in ``a`` and are reported in ``b``."""
    for url in (mysql_db, pg_db):
        rule_table(url, "a")
        rule_table(url, "b")
    for table in ("a", "b"):
        set_value(pg_db, table, 5, "ts", RULE_BASE + dt.timedelta(seconds=5, microseconds=400_000))
        set_value(pg_db, table, 6, "f", 6.55)
    plan = plan_with(
        tmp_path,
        mysql_db,
        pg_db,
        '[steps.rules]\ntimestamp_precision = "ms"\nfloat_tolerance = 0.001\n'
        "case_insensitive = true\n"
        '[steps.overrides.a.rules]\ntimestamp_precision = "s"\nfloat_tolerance = 0.1\n',
    )
    code, data = validate(plan, capsys)
    assert code == 3, data
    a, b = table_of(data, "a"), table_of(data, "b")
    assert a["status"] == "equal", a
    assert a["rules"] == [
        "float tolerance 0.1 (absolute)",
        "timestamp precision s",
        "case-insensitive text",
    ]
    assert a["rules_used"] == {"float tolerance": 1, "timestamp precision s": 1}
    assert b["rules"] == [
        "float tolerance 0.001 (absolute)",
        "timestamp precision ms",
        "case-insensitive text",
    ]
    assert_diffs(
        b,
        {
            (5,): ("changed", {"ts": ("2024-05-06 07:08:14.123456", "2024-05-06 07:08:14.523456")}),
            (6,): ("changed", {"f": ("6.5", "6.55")}),
        },
    )
    code, data = validate(plan, capsys, "--table", "a")
    assert code == 0, data
    assert [t["table"] for t in data["tables"]] == ["a"]


@pytest.mark.parametrize("rule", ["trailing_blanks", "empty_is_null", "case_insensitive"])
def test_rules_used_counts_what_hashing_absorbed(
    rule: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mysql_db: str,
    mysql2_db: str,
) -> None:
    """A rule that made the table equal is reported as used, also when its rendering made
    the chunk hashes agree (``ruled_ranges``: the checksums without rules differ)."""
    line, _, tolerated, _ = RULE_CASES[rule]
    rule_table(mysql_db)
    rule_table(mysql2_db)
    for k, col, v in tolerated:
        set_value(mysql2_db, "r", k, col, v)
    plan = plan_with(tmp_path, mysql_db, mysql2_db, f"[steps.rules]\n{line}\n")
    code, data = validate(plan, capsys)
    t = table_of(data, "r")
    assert code == 0 and t["status"] == "equal", t
    assert t["rules_used"] or t["ruled_ranges"], t
    untouched = plan_with(tmp_path, mysql_db, mysql_db, f"[steps.rules]\n{line}\n", name="same")
    code, data = validate(untouched, capsys)
    same = table_of(data, "r")
    assert code == 0 and not same["rules_used"] and same["ruled_ranges"] == 0, same


# -- 4. --redact, the HTML report ----------------------------------------------------------------

SECRETS = ("s3cr3t-source-value", "s3cr3t-target-value", "4242.42", "9191.91")


def redact_tables(src: str, dst: str) -> Diffs:
    """Table ``p`` on both sides with a changed secret, a changed amount, a NULL turned
    into a value, a missing and an extra row; returns the differences (values shown)."""
    ddl = (
        "CREATE TABLE p (id INT NOT NULL PRIMARY KEY, secret VARCHAR(40) NULL,"
        " amount DECIMAL(8,2) NULL)"
    )
    rows = [{"id": i, "s": f"public {i}", "a": Decimal(i)} for i in range(1, 101)]
    rows[4]["s"] = SECRETS[0]
    rows[5]["a"] = Decimal(SECRETS[2])
    rows[6]["s"] = None
    for url in (src, dst):
        execute(url, ddl, rows=[("INSERT INTO p VALUES (:id, :s, :a)", rows)])
    execute(
        dst,
        "UPDATE p SET secret = 's3cr3t-target-value' WHERE id = 5",
        "UPDATE p SET amount = 9191.91 WHERE id = 6",
        "UPDATE p SET secret = 'now set' WHERE id = 7",
        "DELETE FROM p WHERE id = 50",
        "INSERT INTO p VALUES (1000, 'extra', 1)",
    )
    return {
        (5,): ("changed", {"secret": (SECRETS[0], SECRETS[1])}),
        (6,): ("changed", {"amount": (SECRETS[2], SECRETS[3])}),
        (7,): ("changed", {"secret": (None, "now set")}),
        (50,): ("missing", {}),
        (1000,): ("extra", {}),
    }


def assert_self_contained(html: str) -> None:
    """One complete HTML document that loads nothing (no script, link, image, URL)."""
    assert html.startswith("<!DOCTYPE html>\n<html")
    assert html.rstrip().endswith("</html>")
    assert html.count("<html") == 1 and html.count("</html>") == 1
    lower = html.lower()
    for needle in ("<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import"):
        assert needle not in lower, needle
    assert "http://" not in lower and "https://" not in lower


def test_redact_masks_values_in_json_console_html_and_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str
) -> None:
    """``--redact`` shows every value as ``***`` (JSON, console, HTML beside the state
    file, the state store) and keeps keys and column names; without it, ``--html PATH``
    gets a report with the values."""
    planted = redact_tables(mysql_db, pg_db)
    plan = plan_with(tmp_path, mysql_db, pg_db, chunk_rows=30)
    default_html = tmp_path / "plan-state.validation.html"

    code, data = validate(plan, capsys, "--redact")
    assert code == 3, data
    t = table_of(data, "p")
    assert t["values_masked"] is True
    masked = {
        k: (
            kind,
            {c: tuple(None if v is None else "***" for v in pair) for c, pair in cols.items()},
        )
        for k, (kind, cols) in planted.items()
    }
    assert_diffs(t, masked)
    text = json.dumps(data)
    assert not [s for s in SECRETS if s in text]
    assert data["html"] == str(default_html)

    html = default_html.read_text(encoding="utf-8")
    assert_self_contained(html)
    assert not [s for s in SECRETS if s in html]
    assert "<code>***</code>" in html and "values masked" in html
    for key in ("5", "6", "7", "50", "1000"):
        assert f"<td><code>{key}</code></td>" in html, key
    assert "<td>secret</td>" in html and "<td>amount</td>" in html

    state = b"".join(p.read_bytes() for p in tmp_path.glob("plan-state.db*"))
    assert b"s3cr3t" not in state and b"***" in state

    capsys.readouterr()
    assert main(["validate", str(plan), "--redact", "--quiet"]) == 3
    console = capsys.readouterr().out
    assert "***" in console and "secret" in console and "1000" in console
    assert not [s for s in SECRETS if s in console], console

    # without --redact, to a path of one's own: the values are there, the default untouched
    report = tmp_path / "reports" / "check.html"
    report.parent.mkdir()
    before = default_html.read_text(encoding="utf-8")
    code, data = validate(plan, capsys, "--html", str(report))
    assert code == 3 and data["html"] == str(report)
    assert_diffs(table_of(data, "p"), planted)
    html = report.read_text(encoding="utf-8")
    assert_self_contained(html)
    for s in SECRETS:
        assert f"<code>{s}</code>" in html, s
    assert "<td><code>50</code></td>" in html and "not on the target" in html
    assert "<td><code>1000</code></td>" in html and "not on the source" in html
    assert default_html.read_text(encoding="utf-8") == before


# -- 5. a table without a key -------------------------------------------------------------------


@pytest.mark.parametrize("side", ["mysql2", "pg"])
def test_keyless_table_equal_then_unlocatable_difference(
    side: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    mysql_db: str,
) -> None:
    """A table without a primary or NOT NULL unique key (a nullable UNIQUE does not
    count) is compared as a whole: equal exits 0; one changed row exits 3 with
    ``locatable`` false and a note that the rows cannot be located."""
    target = str(request.getfixturevalue({"mysql2": "mysql2_db", "pg": "pg_db"}[side]))
    ddl = "CREATE TABLE nk (a INT NULL, b VARCHAR(20) NULL, c INT NULL UNIQUE)"
    rows = [{"a": i % 7, "b": None if i % 5 == 0 else f"b{i}", "c": i} for i in range(300)]
    rows += [{"a": 1, "b": "dup", "c": None}] * 2  # a duplicated row
    for url in (mysql_db, target):
        execute(url, ddl, rows=[("INSERT INTO nk VALUES (:a, :b, :c)", rows)])
    plan = plan_with(tmp_path, mysql_db, target, chunk_rows=50)

    code, data = validate(plan, capsys)
    t = table_of(data, "nk")
    assert code == 0, t
    assert t["status"] == "equal" and t["key"] == [] and t["locatable"] is False
    assert (t["source_rows"], t["target_rows"], t["chunks"]) == (302, 302, 1)
    assert any("cannot be located" in n for n in t["notes"]), t["notes"]

    execute(target, "UPDATE nk SET b = 'changed' WHERE c = 123")
    code, data = validate(plan, capsys)
    t = table_of(data, "nk")
    assert code == 3 and data["status"] == "differences", t
    assert t["status"] == "differences" and t["locatable"] is False
    assert (t["chunks"], t["chunks_differing"]) == (1, 1)
    # a small keyless table's rows are compared as multisets: the changed row is one row
    # only on each side, not located
    assert (t["missing"], t["extra"], t["changed"], t["diffs"]) == (1, 1, 0, [])
    note = [n for n in t["notes"] if "no primary or NOT NULL unique key" in n]
    assert len(note) == 1 and "cannot be located" in note[0], t["notes"]
    html = (tmp_path / "plan-state.validation.html").read_text(encoding="utf-8")
    assert "cannot be located" in html

    # a duplicate row gone on the target (the rest equal) is a difference too
    execute(target, "UPDATE nk SET b = 'b123' WHERE c = 123", "DELETE FROM nk WHERE c IS NULL")
    execute(target, "INSERT INTO nk VALUES (1, 'dup', NULL)")
    code, data = validate(plan, capsys)
    t = table_of(data, "nk")
    assert code == 3, t
    assert (t["source_rows"], t["target_rows"], t["locatable"]) == (302, 301, False)
    assert (t["missing"], t["extra"]) == (1, 0), t


# -- 6. a text primary key across engines -------------------------------------------------------

WORDS = ("apple", "Banana", "cherry", "Äther", "Zebra", "éclair", "Öl", "école", "ñandú", "_x")


def test_text_key_across_engines_groups_by_key_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str
) -> None:
    """A VARCHAR key with mixed case and accents sorts differently on MariaDB
    (utf8mb4_unicode_ci) and PostgreSQL (C.UTF-8): rows are grouped by a hash of the key,
    and the planted differences are found exactly."""
    execute(
        mysql_db,
        "CREATE TABLE tk (k VARCHAR(40) NOT NULL PRIMARY KEY, v INT NOT NULL, s VARCHAR(40) NULL)"
        " DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
        rows=[
            (
                "INSERT INTO tk VALUES (:k, :v, :s)",
                [
                    {"k": f"{w}-{i:03d}", "v": i, "s": None if i % 9 == 0 else f"{w.upper()} {i}"}
                    for i in range(120)
                    for w in WORDS
                ],
            )
        ],
    )
    mysql_order = [r[0] for r in fetch(mysql_db, "SELECT k FROM tk ORDER BY k LIMIT 12")]
    plan = plan_with(tmp_path, mysql_db, pg_db, chunk_rows=100)
    code, result = run_json(plan, capsys)
    assert code == 0, result
    pg_order = [r[0] for r in fetch(pg_db, "SELECT k FROM tk ORDER BY k LIMIT 12")]
    assert mysql_order != pg_order  # the premise: the two engines sort the keys differently

    code, data = validate(plan, capsys)
    t = table_of(data, "tk")
    assert code == 0, t
    assert (t["source_rows"], t["target_rows"], t["chunks"]) == (1200, 1200, 12)

    execute(
        pg_db,
        "DELETE FROM tk WHERE k IN ('apple-000', 'Öl-057', '_x-119')",
        "INSERT INTO tk VALUES ('Zebra-120', 1, 'ZEBRA 1'), ('Äther-999', 9, NULL), ('zzz', 0, '')",
        "UPDATE tk SET v = -1 WHERE k = 'éclair-010'",
        "UPDATE tk SET s = 'ÉCLAIR 11' WHERE k = 'école-011'",
        "UPDATE tk SET s = 'set' WHERE k = 'Banana-009'",
    )
    code, data = validate(plan, capsys)
    t = table_of(data, "tk")
    assert code == 3, t
    assert_diffs(
        t,
        {
            ("apple-000",): ("missing", {}),
            ("Öl-057",): ("missing", {}),
            ("_x-119",): ("missing", {}),
            ("Zebra-120",): ("extra", {}),
            ("Äther-999",): ("extra", {}),
            ("zzz",): ("extra", {}),
            ("éclair-010",): ("changed", {"v": (10, -1)}),
            ("école-011",): ("changed", {"s": ("ÉCOLE 11", "ÉCLAIR 11")}),
            ("Banana-009",): ("changed", {"s": (None, "set")}),
        },
    )
    assert any("hash of their key" in n for n in t["notes"]), t["notes"]
    assert t["locatable"] is True and t["chunks"] == 12


def test_text_key_differing_only_in_case_is_one_extra_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str
) -> None:
    """A target row whose key differs from a source key only in case ('APPLE' beside the
    copied 'apple', possible on case-sensitive PostgreSQL) is one extra row, nothing else."""
    execute(
        mysql_db,
        "CREATE TABLE tk (k VARCHAR(20) NOT NULL PRIMARY KEY, v INT)",
        "INSERT INTO tk VALUES ('apple', 1), ('pear', 2)",
    )
    plan = plan_with(tmp_path, mysql_db, pg_db)
    code, result = run_json(plan, capsys)
    assert code == 0, result
    execute(pg_db, "INSERT INTO tk VALUES ('APPLE', 1)")
    code, data = validate(plan, capsys)
    t = table_of(data, "tk")
    assert code == 3
    assert not [n for n in t["notes"] if "read again" in n], t["notes"]
    assert_diffs(t, {("APPLE",): ("extra", {})})


# -- 7. validation never writes -----------------------------------------------------------------

RO_PASSWORD = "ro-pass-7"


def mysql_checksums(url: str, tables: Sequence[str]) -> dict[str, int]:
    return {t: int(fetch(url, f"CHECKSUM TABLE {t} EXTENDED")[0][1]) for t in tables}


def pg_contents(url: str, tables: Sequence[str]) -> dict[str, tuple]:
    """Per table: row count, an MD5 of every row's text and the newest row version."""
    return {
        t: fetch(
            url,
            f"SELECT count(*), md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')),"
            f" max(xmin::text::bigint) FROM {t} AS x",
        )[0]
        for t in tables
    }


def pg_tuple_writes(url: str) -> int:
    """n_tup_ins + n_tup_upd + n_tup_del over the database's tables (statistics)."""
    rows = fetch(
        url,
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables",
    )
    return int(rows[0][0])


def binlog_events_touching(admin_url: str, since: tuple[str, int], database: str) -> list[tuple]:
    """The binary-log events written after ``since`` that name ``database``."""
    files = [r[0] for r in fetch(admin_url, "SHOW BINARY LOGS") if r[0] >= since[0]]
    events: list[tuple] = []
    for f in files:
        sql = f"SHOW BINLOG EVENTS IN '{f}'" + (f" FROM {since[1]}" if f == since[0] else "")
        events.extend(fetch(admin_url, sql))
    return [e for e in events if database in str(e[-1])]


def master_status(admin_url: str) -> tuple[str, int]:
    row = fetch(admin_url, "SHOW MASTER STATUS")[0]
    return str(row[0]), int(row[1])


def with_user(url: str, user: str) -> str:
    return (
        sa.make_url(url)
        .set(username=user, password=RO_PASSWORD)
        .render_as_string(hide_password=False)
    )


RO_DDL = {
    "mysql": [
        "CREATE TABLE w (id BIGINT NOT NULL PRIMARY KEY, txt VARCHAR(40) NULL,"
        " amount DECIMAL(10,2) NOT NULL, ts DATETIME(6) NOT NULL)",
        "CREATE TABLE nk (a INT NULL, b VARCHAR(20) NULL)",
    ],
    "postgresql": [
        "CREATE TABLE w (id bigint NOT NULL PRIMARY KEY, txt varchar(40),"
        " amount numeric(10,2) NOT NULL, ts timestamp(6) NOT NULL)",
        "CREATE TABLE nk (a integer, b varchar(20))",
    ],
}
RO_PLANTS = [
    "DELETE FROM w WHERE id IN (1, 5555)",
    "INSERT INTO w VALUES (8001, 'extra', 1, '2030-01-01 00:00:00')",
    "UPDATE w SET txt = 'changed' WHERE id IN (7, 7000)",
    "UPDATE nk SET b = 'changed' WHERE a = 3",
]
#: rows inserted (8,000 + 50 + 1), deleted (2) and updated (3) on PostgreSQL
PG_TUPLE_WRITES = 8_000 + 50 + 1 + 2 + 3


def readonly_fill(url: str) -> None:
    engine = "postgresql" if url.startswith("postgresql") else "mysql"
    if engine == "postgresql":
        series, add = "generate_series(1, 8000) AS seq", "seq * INTERVAL '1 second'"
    else:
        series, add = "seq_1_to_8000", "INTERVAL seq SECOND"
    execute(
        url,
        *RO_DDL[engine],
        f"INSERT INTO w SELECT seq, CONCAT('t', seq), seq / 4.0,"
        f" TIMESTAMP '2024-01-01 00:00:00' + {add} FROM {series}",
        rows=[("INSERT INTO nk VALUES (:a, :b)", [{"a": i, "b": f"b{i}"} for i in range(50)])],
    )


def assert_readonly_result(code: int, data: dict) -> None:
    assert code == 3, data
    for step in ("m", "p"):
        by_table = {t["table"]: t for t in data["tables"] if t["step"] == step}
        w, nk = by_table["w"], by_table["nk"]
        assert w["error"] is None and nk["error"] is None, (w["error"], nk["error"])
        assert {tuple(d["key"]): d["kind"] for d in w["diffs"]} == {
            (1,): "missing",
            (5555,): "missing",
            (8001,): "extra",
            (7,): "changed",
            (7000,): "changed",
        }, w["diffs"]
        assert w["chunks_differing"] == 2 and w["chunks"] == 2
        assert nk["status"] == "differences" and nk["locatable"] is False


def test_validation_writes_nothing_and_needs_only_select(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mysql_url: str,
    mysql2_url: str,
    pg_url: str,
    mysql_db: str,
    mysql2_db: str,
    pg_db: str,
) -> None:
    """With differences present (so chunks are split and rows fetched and re-read), a
    validation leaves the MariaDB binary log without an event for the database, every
    table's CHECKSUM TABLE and PostgreSQL contents and write statistics unchanged; and it
    runs the same through SELECT-only users (PostgreSQL's also read-only by default)."""
    for url in (mysql_db, mysql2_db, pg_db):
        readonly_fill(url)
    execute(mysql2_db, *RO_PLANTS)
    execute(pg_db, *RO_PLANTS)
    src_db, m2_db = sa.make_url(mysql_db).database, sa.make_url(mysql2_db).database
    pg_name = sa.make_url(pg_db).database
    assert src_db and m2_db and pg_name
    user = f"ro_{src_db}"
    created: list[tuple[str, str]] = []
    try:
        for admin, db in ((mysql_url, src_db), (mysql2_url, m2_db)):
            execute(
                admin,
                f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{RO_PASSWORD}'",
                f"GRANT SELECT ON {db}.* TO '{user}'@'127.0.0.1'",
            )
            created.append((admin, "mysql"))
        execute(pg_url, f"CREATE ROLE {user} LOGIN PASSWORD '{RO_PASSWORD}'")
        created.append((pg_url, "pg"))
        execute(
            pg_db,
            f"GRANT CONNECT ON DATABASE {pg_name} TO {user}",
            f"GRANT USAGE ON SCHEMA public TO {user}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user}",
            f"ALTER ROLE {user} SET default_transaction_read_only = on",
        )
        ro = (with_user(mysql_db, user), with_user(mysql2_db, user), with_user(pg_db, user))
        # the premise: these users cannot write
        for url in ro:
            with pytest.raises(sa.exc.DBAPIError):
                execute(url, "UPDATE w SET txt = 'x' WHERE id = 2")

        deadline = time.monotonic() + 15  # PostgreSQL's statistics arrive asynchronously
        while pg_tuple_writes(pg_db) != PG_TUPLE_WRITES and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pg_tuple_writes(pg_db) == PG_TUPLE_WRITES
        binlog = master_status(mysql_url)
        sums = (mysql_checksums(mysql_db, ["w", "nk"]), mysql_checksums(mysql2_db, ["w", "nk"]))
        contents = pg_contents(pg_db, ["w", "nk"])

        plan = two_step_plan(tmp_path, "admin", mysql_db, mysql2_db, pg_db, chunk_rows=4000)
        code, data = validate(plan, capsys)
        assert_readonly_result(code, data)
        code, data = validate(plan, capsys, "--hash", "canonical")
        assert_readonly_result(code, data)
        plan = two_step_plan(tmp_path, "readonly", *ro, chunk_rows=4000)
        code, data = validate(plan, capsys)
        assert_readonly_result(code, data)

        assert binlog_events_touching(mysql_url, binlog, src_db) == []
        assert mysql_checksums(mysql_db, ["w", "nk"]) == sums[0]
        assert mysql_checksums(mysql2_db, ["w", "nk"]) == sums[1]
        assert pg_contents(pg_db, ["w", "nk"]) == contents
        time.sleep(0.2)  # a write would show in the statistics by now
        assert pg_tuple_writes(pg_db) == PG_TUPLE_WRITES
    finally:
        for admin, kind in reversed(created):
            if kind == "pg":
                execute(pg_db, f"DROP OWNED BY {user}")
                execute(pg_url, f"DROP ROLE {user}")
            else:
                execute(admin, f"DROP USER '{user}'@'127.0.0.1'")


# -- 8. checksum validation inside migrate run --------------------------------------------------

CHANGE_EVERY_250 = (
    "CREATE FUNCTION mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF mod(NEW.id, 250) = 0 THEN NEW.txt := NEW.txt || '?'; END IF; RETURN NEW; END $$",
    "CREATE TRIGGER mark BEFORE INSERT ON c FOR EACH ROW EXECUTE FUNCTION mark()",
)


def test_run_validates_checksums_of_a_full_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str
) -> None:
    """``validate = ["count", "checksum"]``: a run's table carries an equal checksum
    validation; once the target changes rows as they arrive (a trigger), ``--restart``
    copies again, counts still match and the checksum names exactly those rows (exit 3,
    values masked with ``--redact``); a later run without ``--restart`` shows the stored
    validation."""
    execute(
        mysql_db,
        "CREATE TABLE c (id INT NOT NULL PRIMARY KEY, txt VARCHAR(20) NOT NULL)",
        "INSERT INTO c SELECT seq, CONCAT('c', seq) FROM seq_1_to_1000",
    )
    execute(pg_db, "CREATE TABLE c (id integer NOT NULL PRIMARY KEY, txt varchar(20) NOT NULL)")
    plan = plan_with(
        tmp_path,
        mysql_db,
        pg_db,
        'validate = ["count", "checksum"]\n',
        chunk_rows=300,
        if_exists="truncate",
    )
    code, result = run_json(plan, capsys)
    assert code == 0, result
    (table,) = [t for s in result["steps"] for t in s["tables"]]
    check = table["checksum"]
    assert check is not None and check["status"] == "equal", table
    assert (check["source_rows"], check["target_rows"], check["chunks"]) == (1000, 1000, 4)
    assert check["diffs"] == [] and table["status"] == "done"

    execute(pg_db, *CHANGE_EVERY_250)
    code, result = run_json(plan, capsys, "--restart", "--redact")
    assert code == 3, result
    assert result["status"] == "differences"
    assert result["message"] == "checksum validation found differing rows"
    (table,) = [t for s in result["steps"] for t in s["tables"]]
    assert table["status"] == "differences" and table["counts_match"] is True, table
    check = table["checksum"]
    assert check["status"] == "differences" and check["values_masked"] is True
    assert_diffs(check, {(k,): ("changed", {"txt": ("***", "***")}) for k in (250, 500, 750, 1000)})

    code, result = run_json(plan, capsys)  # not copied again: the stored validation
    assert code == 3, result
    (table,) = [t for s in result["steps"] for t in s["tables"]]
    assert table["checksum"]["status"] == "differences", table
    assert [d["key"] for d in table["checksum"]["diffs"]] == [[250], [500], [750], [1000]]
    code, data = validate(plan, capsys)  # and migrate validate agrees, with the values
    assert code == 3
    assert_diffs(
        table_of(data, "c"),
        {(k,): ("changed", {"txt": (f"c{k}", f"c{k}?")}) for k in (250, 500, 750, 1000)},
    )


# -- 9. usage errors ------------------------------------------------------------------------------


def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, mysql2_db: str
) -> None:
    """An unknown ``--step``, a ``--table`` matching nothing, an ``--html`` folder that
    does not exist and invalid rules in the plan exit 2 with one line naming the culprit
    (the key path for rules), and write no report."""
    execute(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY)")
    execute(mysql2_db, "CREATE TABLE t (id INT PRIMARY KEY)")
    plan = plan_with(tmp_path, mysql_db, mysql2_db)
    html = tmp_path / "plan-state.validation.html"

    def one_line(*args: str, path: Path = plan) -> str:
        code, err = usage_error(path, capsys, *args)
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("migrate: error: "), err
        return lines[0]

    line = one_line("--step", "nope")
    assert "--step nope: no such step" in line and "(steps: copy)" in line
    line = one_line("--table", "nomatch")
    assert "--table nomatch: no table of the selected steps matches" in line
    line = one_line("--table", "t", "--table", "x*")
    assert "--table x*" in line
    line = one_line("--html", str(tmp_path / "no" / "such" / "r.html"))
    assert "--html" in line and "does not exist" in line
    assert not html.exists()

    cases = {
        "[steps.rules]\nfloat_tolerence = 0.1\n": "steps.copy.rules.float_tolerence",
        '[steps.rules]\ntimestamp_precision = "us"\n': "steps.copy.rules.timestamp_precision",
        "[steps.rules]\nfloat_tolerance = 0.1\nfloat_relative_tolerance = 0.1\n": (
            "steps.copy.rules.float_relative_tolerance"
        ),
        "[steps.rules]\nfloat_tolerance = -1\n": "steps.copy.rules.float_tolerance",
        '[steps.rules]\ntrailing_blanks = "yes"\n': "steps.copy.rules.trailing_blanks",
        "[steps.overrides.t.rules]\ncase_sensitive = true\n": (
            "steps.copy.overrides.t.rules.case_sensitive"
        ),
    }
    for i, (extra, key) in enumerate(cases.items()):
        bad = plan_with(tmp_path, mysql_db, mysql2_db, extra, name=f"bad{i}")
        line = one_line(path=bad)
        assert f"bad{i}.toml:" in line and f": {key}: " in line, line
    assert not list(tmp_path.glob("*.validation.html"))

    code, data = validate(plan, capsys, "--table", "t")  # the plan itself is fine
    assert code == 0, data


# -- regressions found in review ------------------------------------------------------------------


def test_a_table_that_cannot_be_compared_does_not_stop_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, mysql2_db: str
) -> None:
    """A table that fails (its key column is not on the target) is reported failed; the
    next table is still compared and its difference found; the outcome is 1 (failed), not
    5 (interrupted). Then ``migrate run --redact`` shows the stored result of that
    comparison with its values masked, though it was stored unmasked."""
    for url in (mysql_db, mysql2_db):
        execute(
            url,
            "CREATE TABLE a1 (id INT NOT NULL PRIMARY KEY, v INT)",
            "INSERT INTO a1 SELECT seq, seq FROM seq_1_to_3000",
            "CREATE TABLE b2 (id INT NOT NULL PRIMARY KEY, secret VARCHAR(20))",
            "INSERT INTO b2 SELECT seq, CONCAT('s', seq) FROM seq_1_to_3000",
        )
    execute(mysql2_db, "ALTER TABLE a1 DROP PRIMARY KEY, CHANGE id ident INT NOT NULL")
    execute(mysql2_db, "UPDATE b2 SET secret = 'hunter2' WHERE id = 2999")
    plan = plan_with(tmp_path, mysql_db, mysql2_db, chunk_rows=500)
    code, data = validate(plan, capsys)
    assert code == 1, data
    assert data["status"] == "failed"
    a1, b2 = table_of(data, "a1"), table_of(data, "b2")
    assert a1["status"] == "failed" and "key column id is not on the target" in a1["error"]
    assert_diffs(b2, {(2999,): ("changed", {"secret": ("s2999", "hunter2")})})


def test_odd_columns_percent_bit_and_a_wider_decimal_scale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str
) -> None:
    """A column named with ``%``, a BIT column and a decimal the target keeps at a larger
    scale are compared exactly: equal after the copy; then a value the narrower side could
    not hold (1.2349 where the source has 1.23) and a changed BIT are found."""
    execute(
        mysql_db,
        # `x%y`: the driver formats the statement, so % is written twice
        "CREATE TABLE o (id INT NOT NULL PRIMARY KEY, `x%%y` INT, flags BIT(8),"
        " amount DECIMAL(10,2))",
        "INSERT INTO o SELECT seq, seq * 3, MOD(seq, 256), seq / 100 FROM seq_1_to_2500",
    )
    plan = plan_with(tmp_path, mysql_db, pg_db, chunk_rows=1000)
    code, result = run_json(plan, capsys)
    assert code == 0, json.dumps(result)
    execute(pg_db, "ALTER TABLE o ALTER COLUMN amount TYPE numeric(12,4)")
    code, data = validate(plan, capsys)
    t = table_of(data, "o")
    assert code == 0 and t["status"] == "equal", t
    assert t["hash_only"] == 0, t  # every value written alike: no row-by-row fallback
    execute(
        pg_db, "UPDATE o SET amount = 1.2349 WHERE id = 123", "UPDATE o SET flags = 7 WHERE id = 9"
    )
    code, data = validate(plan, capsys)
    assert code == 3
    assert_diffs(
        table_of(data, "o"),
        {
            (123,): ("changed", {"amount": ("1.23", "1.2349")}),  # each side as it holds it
            (9,): ("changed", {"flags": (9, "7")}),
        },
    )


def test_percent_names_bulk_insert_and_wide_integer_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, mysql2_db: str, pg_db: str
) -> None:
    """A table and a column named with ``%`` copy through ``bulk = "insert"`` and validate
    equal; integer keys below and above 2**31 in one re-read list bind on PostgreSQL
    (a list starting with a small key once bound the others as INTEGER)."""
    execute(
        mysql_db,
        # the driver formats these statements: % is written twice
        "CREATE TABLE `t%%s` (id BIGINT NOT NULL PRIMARY KEY, `a%%b` VARCHAR(10))",
        "INSERT INTO `t%%s` VALUES (1, 'x'), (5, 'y'), (3000000000, 'z'), (3000000001, 'w')",
    )
    plan = plan_with(tmp_path, mysql_db, mysql2_db, name="ins")
    plan.write_text(
        plan.read_text(encoding="utf-8").replace(
            f'dst = {{ url = "{mysql2_db}" }}',
            f'dst = {{ url = "{mysql2_db}", options = {{ bulk = "insert" }} }}',
        ),
        encoding="utf-8",
    )
    code, result = run_json(plan, capsys)
    assert code == 0, json.dumps(result)
    code, data = validate(plan, capsys)
    assert code == 0 and table_of(data, "t%s")["status"] == "equal", data

    pg_plan = plan_with(tmp_path, mysql_db, pg_db, name="pg")
    code, result = run_json(pg_plan, capsys)
    assert code == 0, json.dumps(result)
    execute(pg_db, 'UPDATE "t%%s" SET "a%%b" = \'X\' WHERE id IN (1, 3000000001)')
    code, data = validate(pg_plan, capsys)
    assert code == 3, data
    assert_diffs(
        table_of(data, "t%s"),
        {
            (1,): ("changed", {"a%b": ("x", "X")}),
            (3000000001,): ("changed", {"a%b": ("w", "X")}),
        },
    )


def test_keys_spanning_the_whole_bigint_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keys from below -2**62 to above 2**62 in one differing range (SQLite, where
    ``key - origin`` would silently turn into a REAL): the changed last row is found."""
    keys = [-(2**62) - 10, *range(1, 2500), 2**62 + 10]
    for name in ("a", "b"):
        db = sqlite3.connect(tmp_path / f"{name}.db")
        db.execute("CREATE TABLE w (id INTEGER NOT NULL PRIMARY KEY, v TEXT)")
        db.executemany("INSERT INTO w VALUES (?, ?)", [(k, f"v{k}") for k in keys])
        db.commit()
        db.close()
    db = sqlite3.connect(tmp_path / "b.db")
    db.execute("UPDATE w SET v = 'changed' WHERE id = ?", (2**62 + 10,))
    db.commit()
    db.close()
    plan = plan_with(  # one chunk of 2,501 rows: narrowed down, not fetched whole
        tmp_path,
        f"sqlite:///{tmp_path / 'a.db'}",
        f"sqlite:///{tmp_path / 'b.db'}",
        chunk_rows=10_000,
    )
    code, data = validate(plan, capsys)
    assert code == 3, data
    assert_diffs(
        table_of(data, "w"),
        {(2**62 + 10,): ("changed", {"v": (f"v{2**62 + 10}", "changed")})},
    )


def test_a_key_that_is_not_unique_fails_that_table_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, mysql2_db: str
) -> None:
    """An override key many rows share: the table fails with a one-line reason (no endless
    splitting), exit 1."""
    for url in (mysql_db, mysql2_db):
        execute(
            url,
            "CREATE TABLE d (id INT NOT NULL PRIMARY KEY, day DATE NOT NULL, v INT)",
            "INSERT INTO d SELECT seq, '2026-01-01', seq FROM seq_1_to_3000",
        )
    execute(mysql2_db, "UPDATE d SET v = 0 WHERE id = 7")
    plan = plan_with(tmp_path, mysql_db, mysql2_db, '[steps.overrides.d]\nkey = ["day"]\n')
    code, data = validate(plan, capsys)
    assert code == 1, data
    t = table_of(data, "d")
    assert t["status"] == "failed" and "is not unique" in t["error"], t


def test_keyless_rows_within_a_rule_pair_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pg_db: str
) -> None:
    """A keyless table whose timestamps one side keeps to the second: with
    ``timestamp_precision = "s"`` the rows pair up (equal); a real difference is still one
    row only on each side. A huge absolute float tolerance is accepted too."""
    src = pg_db
    execute(
        src,
        "CREATE TABLE k (t timestamp(6), f double precision)",
        "CREATE TABLE k2 (t timestamp(0), f double precision)",
        "INSERT INTO k VALUES ('2026-01-01 10:00:00.7', 1.5), ('2026-01-01 11:00:00.2', 2.5)",
        "INSERT INTO k2 VALUES ('2026-01-01 10:00:00.7', 1.5), ('2026-01-01 11:00:00.2', 2.5)",
    )
    plan = tmp_path / "k.toml"
    plan.write_text(
        f"""version = 1
name = "k"
state = "k-state.db"
[connections]
a = {{ url = "{src}" }}
b = {{ url = "{src}" }}
[[steps]]
name = "k"
source = "a"
target = "b"
tables = ["k"]
[steps.overrides.k]
rename = "k2"
[steps.rules]
timestamp_precision = "s"
float_tolerance = 1e9
""",
        encoding="utf-8",
    )
    code, data = validate(plan, capsys)
    t = table_of(data, "k")
    assert code == 0 and t["status"] == "equal" and t["locatable"] is False, t
    execute(src, "UPDATE k2 SET t = '2026-01-01 12:00:00' WHERE t > '2026-01-01 10:30'")
    code, data = validate(plan, capsys)
    t = table_of(data, "k")
    assert code == 3 and (t["missing"], t["extra"]) == (1, 1), t
