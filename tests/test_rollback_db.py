"""Rollback of database targets on real servers: what a run records before it changes a
target (tables created, rows kept in backup tables, tables emptied or replaced), and that
undoing those records, newest first, gives the target back exactly as it was.

Every test reads the target's tables whole before a run and after the undo (rows as the
driver gives them, table and index lists, columns), so any row, table or index the undo
misses fails it. The undo is applied through each target endpoint's
``undo_statements`` and ``run_statements`` (:func:`undo`), or as one script run by the
database's own client library without migrate (``by_hand``: what a DBA would run), or
through ``migrate rollback``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from edge_data import execute, run_json
from pymysql.constants import CLIENT
from sqlalchemy.pool import NullPool

from migrate.cli import main
from migrate.plan import load_plan
from migrate.runner import Endpoints
from migrate.state import State

FIXTURE = {"mysql2": "mysql2_db", "pg": "pg_db"}
TS = "2026-03-01 12:{:02d}:{:02d}"
STATE_ONLY = ("restore_watermark", "restore_stream")

ORDERS_DDL = (
    "CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL,"
    " amount DECIMAL(10,2) NULL, updated_at DATETIME(6) NOT NULL,"
    " INDEX orders_upd (updated_at))"
)
LINES_DDL = (
    "CREATE TABLE `lines` (order_id INT NOT NULL, line_no INT NOT NULL, qty INT NOT NULL,"
    " updated_at DATETIME(6) NOT NULL, PRIMARY KEY (order_id, line_no),"
    " INDEX lines_upd (updated_at))"
)


def ts(second: int) -> str:
    return TS.format(second // 60, second % 60)


def target_url(side: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if side == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return str(request.getfixturevalue(FIXTURE[side]))


def seed(url: str, orders: int = 60, lines_for: int = 20) -> None:
    """orders 1..N (updated_at one second apart), three lines for each of the first orders."""
    lines = [
        {"o": o, "n": n, "q": n, "u": ts(o)} for o in range(1, lines_for + 1) for n in (1, 2, 3)
    ]
    execute(
        url,
        ORDERS_DDL,
        LINES_DDL,
        rows=[
            (
                "INSERT INTO orders VALUES (:i, :n, :a, :u)",
                [
                    {"i": i, "n": f"order {i}", "a": f"{i}.{i % 100:02d}", "u": ts(i)}
                    for i in range(1, orders + 1)
                ],
            ),
            *([("INSERT INTO `lines` VALUES (:o, :n, :q, :u)", lines)] if lines else []),
        ],
    )


def plan_file(tmp_path: Path, src: str, dst: str, step: str, *, name: str = "rb") -> Path:
    plan = tmp_path / f"{name}.toml"
    plan.write_text(
        f"""version = 1
name = "{name}"
state = "{name}-state.db"
[defaults]
chunk_rows = 20
workers = 2
[connections]
src = {{ url = "{src}" }}
dst = {{ url = "{dst}" }}
[[steps]]
name = "copy"
source = "src"
target = "dst"
tables = ["*"]
{step}""",
        encoding="utf-8",
    )
    return plan


def engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=NullPool)


def contents(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the database and its rows (as the driver gives them), in a fixed
    order: two equal results mean the same tables holding the same rows."""
    eng = engine(url)
    try:
        out = {}
        with eng.connect() as conn:
            for name in sorted(sa.inspect(conn).get_table_names()):
                rows = conn.execute(sa.text(f"SELECT * FROM {_q(eng, name)}")).fetchall()
                out[name] = sorted((tuple(r) for r in rows), key=repr)
        return out
    finally:
        eng.dispose()


def shape(url: str, table: str) -> dict[str, Any]:
    """A table's columns (name, type, NULL-able), primary key and indexes."""
    eng = engine(url)
    try:
        insp = sa.inspect(eng)
        return {
            "columns": [
                (c["name"], repr(c["type"]), c["nullable"]) for c in insp.get_columns(table)
            ],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in insp.get_indexes(table)
            ),
        }
    finally:
        eng.dispose()


def _q(eng: sa.Engine, name: str) -> str:
    return eng.dialect.identifier_preparer.quote(name)


def records(plan: Path, run_id: int | None = None) -> list[dict[str, Any]]:
    """The plan's undo records still to be undone (one run's, or all), newest first."""
    p = load_plan(plan)
    state = State(p.state_path, p.name, create=False)
    try:
        out = []
        for row in state.undo_records(run_id=run_id):
            rec = dict(zip(row.keys(), tuple(row), strict=True))
            rec["detail"] = json.loads(rec["detail"]) if rec["detail"] else {}
            out.append(rec)
        return out
    finally:
        state.close()


def undo(plan: Path, run_id: int | None = None, by_hand: str | None = None) -> list[str]:
    """Undo the plan's records (one run's, or every run's) newest first, and mark them
    undone; returns the statements. Each record's statements run through the target
    endpoint (``run_statements``) or, with ``by_hand`` (the target's URL), as one script
    through the database's own driver, as a DBA would run the rollback script."""
    p = load_plan(plan)
    state = State(p.state_path, p.name, create=False)
    endpoints = Endpoints(p, 1, dry_run=False)
    done = []
    try:
        for rec in records(plan, run_id):
            if rec["action"] not in STATE_ONLY:
                ep = endpoints.get(rec["connection"])
                statements = ep.undo_statements(rec)
                if by_hand:
                    run_script(by_hand, statements)
                else:
                    ep.run_statements(statements)
                done.extend(statements)
            state.mark_undo([rec["id"]], "undone")
    finally:
        endpoints.close()
        state.close()
    return done


def run_script(url: str, statements: list[str]) -> None:
    """``statements`` as one SQL script (``;`` after each), run by the engine's own client
    library in one go, as ``sqlite3``, ``psql`` or ``mysql`` would read a file."""
    script = "".join(f"{s};\n" for s in statements)
    u = sa.make_url(url)
    if u.get_backend_name() == "sqlite":
        db = sqlite3.connect(str(u.database))
        try:
            db.executescript(script)
        finally:
            db.close()
    elif u.get_backend_name() == "postgresql":
        with psycopg.connect(
            host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database
        ) as conn:
            conn.execute(script.encode())  # no parameters: the simple query protocol
    else:
        conn = pymysql.connect(
            host=u.host,
            port=u.port,
            user=u.username,
            password=u.password or "",
            database=u.database,
            client_flag=CLIENT.MULTI_STATEMENTS,
        )
        try:
            with conn.cursor() as cur:
                cur.execute(script)
                while cur.nextset():
                    pass
            conn.commit()
        finally:
            conn.close()


def kept(url: str, backup: str) -> dict[tuple[int, str], int]:
    """Rows of a backup table by (undo record id, op)."""
    eng = engine(url)
    try:
        with eng.connect() as conn:
            rows = conn.execute(
                sa.text(
                    f"SELECT migrate_undo, migrate_op, COUNT(*) FROM {_q(eng, backup)}"
                    " GROUP BY migrate_undo, migrate_op"
                )
            ).fetchall()
        return {(int(u), str(op)): int(n) for u, op, n in rows}
    finally:
        eng.dispose()


def assert_done(code: int, result: dict) -> None:
    assert code == 0, json.dumps(result, indent=1, default=str)[:4000]
    assert result["status"] == "done", json.dumps(result, indent=1, default=str)[:4000]


def change_source(url: str) -> None:
    """3 orders updated, 2 added, 2 deleted; one line updated, one added, one deleted.
    Every other row is re-read by the next pass (the overlap covers them) unchanged."""
    execute(
        url,
        f"UPDATE orders SET name = 'updated', updated_at = '{ts(1000)}' WHERE id IN (5, 6, 7)",
        f"INSERT INTO orders VALUES (61, 'new', 1.00, '{ts(1001)}'),"
        f" (62, 'new', NULL, '{ts(1001)}')",
        "DELETE FROM orders WHERE id IN (10, 11)",
        f"UPDATE `lines` SET qty = 99, updated_at = '{ts(1002)}'"
        " WHERE order_id = 1 AND line_no = 1",
        f"INSERT INTO `lines` VALUES (30, 1, 1, '{ts(1003)}')",
        "DELETE FROM `lines` WHERE order_id = 2 AND line_no = 2",
    )


# -- (a) a full load into an empty target ------------------------------------------------
@pytest.mark.parametrize("side", ["sqlite", "pg", "mysql2"])
def test_undoing_a_full_load_drops_the_tables_it_created(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
    side: str,
) -> None:
    dst = target_url(side, request, tmp_path)
    seed(mysql_db)
    execute(dst, "CREATE TABLE keep_me (id INT PRIMARY KEY)", "INSERT INTO keep_me VALUES (1)")
    before = contents(dst)
    plan = plan_file(tmp_path, mysql_db, dst, 'mode = "full"\n')
    assert_done(*run_json(plan, capsys))
    assert set(contents(dst)) == {"keep_me", "orders", "lines"}
    recs = records(plan)
    assert sorted((r["action"], r["object"], r["detail"]["source_table"]) for r in recs) == [
        ("drop_table", "lines", "lines"),
        ("drop_table", "orders", "orders"),
    ]
    undo(plan)
    assert contents(dst) == before
    assert records(plan) == []


# -- (b) a full load into tables the plan did not create ---------------------------------
@pytest.mark.parametrize("side", ["sqlite", "pg", "mysql2"])
def test_undoing_a_truncating_load_puts_the_old_rows_back(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
    side: str,
) -> None:
    dst = target_url(side, request, tmp_path)
    seed(mysql_db)
    execute(
        dst,
        "CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL,"
        " amount DECIMAL(10,2) NULL, updated_at TIMESTAMP NOT NULL)",
        rows=[
            (
                "INSERT INTO orders VALUES (:i, :n, NULL, :u)",
                [{"i": i, "n": f"old {i}", "u": ts(i)} for i in (3, 70, 71)],
            )
        ],
    )
    before = contents(dst)
    plan = plan_file(tmp_path, mysql_db, dst, 'mode = "full"\nif_exists = "truncate"\n')
    assert_done(*run_json(plan, capsys))
    assert len(contents(dst)["orders"]) == 60
    (emptied,) = [r for r in records(plan) if r["action"] == "emptied_table"]
    assert (emptied["object"], emptied["detail"]["source_table"]) == ("orders", "orders")
    backup = emptied["detail"]["backup"]
    assert backup == "migrate_bak_orders"
    assert kept(dst, backup) == {(emptied["id"], "d"): 3, (emptied["id"], "m"): 1}
    undo(plan)
    assert contents(dst) == before


@pytest.mark.parametrize("side", ["sqlite", "pg", "mysql2"])
def test_undoing_a_replacing_load_creates_the_old_table_again(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
    side: str,
) -> None:
    dst = target_url(side, request, tmp_path)
    seed(mysql_db)
    identity = {
        "sqlite": "id INTEGER PRIMARY KEY",
        "pg": "id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "mysql2": "id INT NOT NULL AUTO_INCREMENT PRIMARY KEY",
    }[side]
    execute(
        dst,
        f"CREATE TABLE orders ({identity}, label VARCHAR(30) NOT NULL, score INT NULL)",
        "CREATE UNIQUE INDEX orders_label ON orders (label)",
        "CREATE INDEX orders_score ON orders (score)",
        "INSERT INTO orders (label, score) VALUES ('a', 1), ('b', NULL), ('c', 3)",
    )
    before, old_shape = contents(dst), shape(dst, "orders")
    plan = plan_file(tmp_path, mysql_db, dst, 'mode = "full"\nif_exists = "replace"\n')
    assert_done(*run_json(plan, capsys))
    assert [c[0] for c in shape(dst, "orders")["columns"]] == ["id", "name", "amount", "updated_at"]
    (replaced,) = [r for r in records(plan) if r["action"] == "replaced_table"]
    assert [c["name"] for c in replaced["detail"]["schema"]["columns"]] == ["id", "label", "score"]
    assert kept(dst, replaced["detail"]["backup"]) == {
        (replaced["id"], "d"): 3,
        (replaced["id"], "m"): 1,
    }
    statements = undo(plan)
    assert contents(dst) == before
    assert shape(dst, "orders") == old_shape
    assert any("CREATE UNIQUE INDEX" in s for s in statements)
    # the identity counter is past the rows put back: a new row gets a new id
    execute(dst, "INSERT INTO orders (label) VALUES ('d')")
    assert [r[0] for r in contents(dst)["orders"]] == [1, 2, 3, 4]


# -- (c) catch-up passes -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("side", "by_hand"),
    [("sqlite", False), ("pg", False), ("mysql2", False), ("pg", True), ("mysql2", True)],
)
def test_undoing_catch_up_passes_restores_each_earlier_state(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
    side: str,
    by_hand: bool,
) -> None:
    """A target table holding rows of its own (emptied by the load, ``if_exists =
    "truncate"``) and one the load creates; a catch-up pass updates, adds and deletes
    rows in both. Undoing the catch-up run gives the target as the full load left it;
    undoing the load too gives it as it was before."""
    dst = target_url(side, request, tmp_path)
    seed(mysql_db)
    execute(
        dst,
        "CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL,"
        " amount DECIMAL(10,2) NULL, updated_at TIMESTAMP NOT NULL)",
        f"INSERT INTO orders VALUES (1, 'mine', 0.50, '{ts(0)}')",
    )
    before = contents(dst)
    plan = plan_file(
        tmp_path,
        mysql_db,
        dst,
        'mode = "full+incremental"\ncursor = "updated_at"\ndeletes = "detect"\n'
        'if_exists = "truncate"\n',
    )
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    loaded = contents(dst)
    # the load kept the row it emptied away (and the mark that it did), and nothing of
    # the table it created
    assert {t for t in loaded if t.startswith("migrate_bak_")} == {"migrate_bak_orders"}
    assert sorted(r[1] for r in loaded["migrate_bak_orders"]) == ["d", "m"]

    change_source(mysql_db)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    catch_up_run = result["run_id"]
    caught = {t["name"]: t["catch_up"] for t in result["steps"][0]["tables"]}
    assert (caught["orders"]["changed"], caught["orders"]["deleted"]) == (5, 2)
    assert (caught["lines"]["changed"], caught["lines"]["deleted"]) == (2, 1)
    assert caught["orders"]["rows"] == 60  # every row read again, unchanged ones too

    # only what changed is kept: whole rows before an update or a delete, keys of new rows
    recs = records(plan, catch_up_run)
    by_table: dict[str, dict[str, int]] = {}
    for r in recs:
        if r["action"] == "restore_rows":
            for (uid, op), n in kept(dst, r["detail"]["backup"]).items():
                if uid == r["id"]:
                    ops = by_table.setdefault(r["object"], {})
                    ops[op] = ops.get(op, 0) + n
    assert by_table == {"orders": {"u": 3, "i": 2, "d": 2}, "lines": {"u": 1, "i": 1, "d": 1}}
    actions = sorted({(r["action"], r["object"]) for r in recs})
    assert actions == [  # migrate_bak_orders was created by the load (emptied_table)
        ("drop_backup_table", "migrate_bak_lines"),
        ("restore_rows", "lines"),
        ("restore_rows", "orders"),
        ("restore_watermark", "lines"),
        ("restore_watermark", "orders"),
    ]

    undo(plan, catch_up_run, by_hand=dst if by_hand else None)
    assert contents(dst) == loaded
    undo(plan, by_hand=dst if by_hand else None)
    assert contents(dst) == before


def test_undoing_binlog_passes_restores_each_earlier_state(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """mode = "cdc": two binlog passes, each with updates, inserts, deletes and a key
    change; undoing the second pass, then the first, then the load."""
    seed(mysql_db)
    plan = plan_file(tmp_path, mysql_db, pg_db, 'mode = "cdc"\n')
    assert_done(*run_json(plan, capsys))
    states = [contents(pg_db)]
    runs = []
    for sql in (
        [
            "UPDATE orders SET name = 'one' WHERE id IN (2, 3)",
            "UPDATE orders SET id = 100 WHERE id = 4",
            "DELETE FROM orders WHERE id = 5",
            "INSERT INTO orders VALUES (63, 'new', NULL, '2026-03-02 00:00:00')",
            "DELETE FROM `lines` WHERE order_id = 3",
        ],
        [
            "UPDATE orders SET name = 'two' WHERE id IN (2, 63)",
            "DELETE FROM orders WHERE id IN (100, 6)",
            "INSERT INTO orders VALUES (5, 'back', NULL, '2026-03-02 00:00:00')",
            "UPDATE `lines` SET qty = qty + 1 WHERE order_id = 1",
        ],
    ):
        execute(mysql_db, *sql)
        code, result = run_json(plan, capsys)
        assert_done(code, result)
        runs.append(result["run_id"])
        states.append(contents(pg_db))
    assert states[2]["orders"] != states[1]["orders"] != states[0]["orders"]
    actions = {r["action"] for r in records(plan, runs[1])}
    assert {"restore_stream", "restore_watermark", "restore_rows"} <= actions
    undo(plan, runs[1])
    assert contents(pg_db) == states[1]
    undo(plan, runs[0])
    assert contents(pg_db) == states[0]
    undo(plan)
    assert contents(pg_db) == {}


def test_no_row_is_kept_for_a_table_the_same_run_created(
    tmp_path: Path, mysql_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Step "feed" upserts into the table step "load" created in the same run: its
    rows need no backup (dropping the table undoes them); in the next run they do."""
    dst = f"sqlite:///{tmp_path / 'target.db'}"
    seed(mysql_db, orders=20, lines_for=0)
    execute(
        mysql_db,
        "CREATE TABLE orders_feed LIKE orders",
        "INSERT INTO orders_feed SELECT id, 'fed', amount, updated_at FROM orders WHERE id > 15",
        f"INSERT INTO orders_feed VALUES (30, 'fed', NULL, '{ts(30)}')",
    )
    plan = tmp_path / "two.toml"
    plan.write_text(
        f"""version = 1
name = "two"
state = "two-state.db"
[connections]
src = {{ url = "{mysql_db}" }}
dst = {{ url = "{dst}" }}
[[steps]]
name = "load"
source = "src"
target = "dst"
tables = ["orders"]
mode = "full"
[[steps]]
name = "feed"
source = "src"
target = "dst"
tables = ["orders_feed"]
after = ["load"]
mode = "incremental"
cursor = "updated_at"
start = "2026-03-01T00:00:00"
[steps.overrides.orders_feed]
rename = "orders"
""",
        encoding="utf-8",
    )
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    after = contents(dst)
    assert sorted(after) == ["orders"]  # no backup table
    assert [r for r in after["orders"] if r[1] == "fed"] == sorted(
        [r for r in after["orders"] if r[0] > 15], key=repr
    )
    assert {r["action"] for r in records(plan)} == {"drop_table", "restore_watermark"}

    execute(mysql_db, f"UPDATE orders_feed SET name = 'fed again', updated_at = '{ts(50)}'")
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    second = records(plan, result["run_id"])
    (rows,) = [r for r in second if r["action"] == "restore_rows"]
    assert kept(dst, rows["detail"]["backup"]) == {(rows["id"], "u"): 6}
    undo(plan, result["run_id"])
    assert contents(dst) == after
    undo(plan)
    assert contents(dst) == {}


def test_a_backup_table_of_another_plan_is_left_alone(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``migrate_bak_orders`` this plan did not create (another state's) is neither
    written nor dropped: the plan keeps its rows in ``migrate_bak_orders_2``."""
    seed(mysql_db)
    execute(mysql_db, "DROP TABLE `lines`")
    execute(
        pg_db,
        "CREATE TABLE migrate_bak_orders (migrate_undo BIGINT, migrate_op CHAR(1), id INT)",
        "INSERT INTO migrate_bak_orders VALUES (1, 'd', 42)",
    )
    plan = plan_file(tmp_path, mysql_db, pg_db, 'mode = "full+incremental"\ncursor = "id"\n')
    assert_done(*run_json(plan, capsys))
    loaded = contents(pg_db)
    execute(mysql_db, "UPDATE orders SET name = 'x' WHERE id = 60")
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    (rows,) = [r for r in records(plan, result["run_id"]) if r["action"] == "restore_rows"]
    assert rows["detail"]["backup"] == "migrate_bak_orders_2"
    assert kept(pg_db, "migrate_bak_orders") == {(1, "d"): 1}
    assert kept(pg_db, "migrate_bak_orders_2") == {(rows["id"], "u"): 1}
    undo(plan, result["run_id"])
    assert contents(pg_db) == loaded


def test_migrate_rollback_writes_the_script_it_runs(
    tmp_path: Path, mysql_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``migrate rollback --run`` of a catch-up run: the .sql script holds the statements
    of each record, and after it the next run catches up to the same target again."""
    dst = f"sqlite:///{tmp_path / 'target.db'}"
    seed(mysql_db)
    plan = plan_file(
        tmp_path,
        mysql_db,
        dst,
        'mode = "full+incremental"\ncursor = "updated_at"\ndeletes = "detect"\n',
    )
    assert_done(*run_json(plan, capsys))
    loaded = contents(dst)
    change_source(mysql_db)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    caught = contents(dst)
    capsys.readouterr()
    code = main(["rollback", str(plan), "--run", str(result["run_id"]), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert contents(dst) == loaded
    script = Path(out["scripts"]["dst"]).read_text(encoding="utf-8")
    for rec in out["actions"]:
        if rec["action"] == "restore_rows":
            uid, table = rec["id"], rec["object"]
            assert f"DELETE FROM migrate_bak_{table} WHERE migrate_undo = {uid};" in script
    assert "DROP TABLE IF EXISTS migrate_bak_orders;" in script
    code, result = run_json(plan, capsys)  # the state was put back: the same pass again
    assert_done(code, result)
    assert {t: r for t, r in contents(dst).items() if not t.startswith("migrate_bak_")} == {
        t: r for t, r in caught.items() if not t.startswith("migrate_bak_")
    }


@pytest.mark.parametrize("side", ["sqlite", "pg", "mysql2"])
def test_a_record_of_state_schema_5_is_restored_from_the_state(
    tmp_path: Path, request: pytest.FixtureRequest, side: str
) -> None:
    """Before backup tables, ``restore_rows`` kept the deleted rows in the record itself:
    its script is a comment saying so, and the tool deletes their keys and inserts them
    with bound values."""
    import datetime as dt
    from decimal import Decimal

    from migrate.registry import endpoint_class
    from migrate.state import encode_key

    dst = target_url(side, request, tmp_path)
    execute(
        dst,
        "CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL,"
        " amount DECIMAL(10,2) NULL, updated_at TIMESTAMP NULL)",
        f"INSERT INTO orders VALUES (1, 'changed', NULL, NULL), (2, 'kept', 2.50, '{ts(2)}')",
    )
    rows = [
        (1, "before", Decimal("1.25"), dt.datetime(2026, 3, 1, 12, 0, 1)),
        (3, "deleted", None, None),
    ]
    record = {
        "id": 4,
        "action": "restore_rows",
        "object": "orders",
        "detail": {
            "columns": ["id", "name", "amount", "updated_at"],
            "key": ["id"],
            "rows": [encode_key(r) for r in rows],
        },
    }
    ep = endpoint_class(dst)("dst", dst, {}, base_dir=tmp_path)
    try:
        (comment,) = ep.undo_statements(record)
        assert comment.startswith("-- the 2 row(s) of orders are kept in the state file")
        ep.run_statements([comment])  # a comment runs as nothing
        ep.apply_undo(record)
    finally:
        ep.close()
    got = {r[0]: (r[1], r[2]) for r in contents(dst)["orders"]}
    assert got == {
        1: ("before", Decimal("1.25")),
        2: ("kept", Decimal("2.50")),
        3: ("deleted", None),
    }


# -- a change that never committed ---------------------------------------------------------
PROTECT = {
    "sqlite": [
        "CREATE TRIGGER orders_keep BEFORE DELETE ON orders BEGIN"
        " SELECT RAISE(ABORT, 'orders are protected'); END"
    ],
    "pg": [
        "CREATE FUNCTION orders_keep() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'orders are protected'; END $$",
        "CREATE TRIGGER orders_keep BEFORE DELETE ON orders FOR EACH ROW"
        " EXECUTE FUNCTION orders_keep()",
    ],
    "mysql2": [
        "CREATE TRIGGER orders_keep BEFORE DELETE ON orders FOR EACH ROW"
        " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'orders are protected'"
    ],
}


@pytest.mark.parametrize("side", ["sqlite", "pg", "mysql2"])
def test_an_emptying_that_never_committed_is_not_undone(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
    side: str,
) -> None:
    """The ``emptied_table`` record is written before the table is emptied: a run that
    fails (here a trigger refuses the DELETE; a killed run is the same) leaves a record
    whose change never happened. Undoing it must not empty the table: after the next run
    emptied and loaded it for real, undoing both runs gives the old rows back."""
    dst = target_url(side, request, tmp_path)
    seed(mysql_db, lines_for=0)
    execute(mysql_db, "DROP TABLE `lines`")
    execute(
        dst,
        "CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL,"
        " amount DECIMAL(10,2) NULL, updated_at TIMESTAMP NOT NULL)",
        f"INSERT INTO orders VALUES (1, 'mine', 0.50, '{ts(0)}'), (2, 'mine', NULL, '{ts(1)}')",
        *PROTECT[side],
    )
    before = contents(dst)
    plan = plan_file(tmp_path, mysql_db, dst, 'mode = "full"\nif_exists = "truncate"\n')
    code, result = run_json(plan, capsys)
    assert code != 0 and "protected" in json.dumps(result), result
    assert contents(dst)["orders"] == before["orders"]
    (never,) = [r for r in records(plan) if r["action"] == "emptied_table"]
    execute(dst, "DROP TRIGGER orders_keep" + (" ON orders" if side == "pg" else ""))
    assert_done(*run_json(plan, capsys))
    assert len(contents(dst)["orders"]) == 60
    statements = undo(plan)
    assert contents(dst) == before
    assert f"-- nothing to undo: the emptying of orders (#{never['id']})" in "\n".join(statements)


def test_a_replacement_that_never_committed_is_not_undone(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``if_exists = "replace"`` on a table another table refers to: PostgreSQL refuses
    the DROP and the copy of its rows rolls back with it. Undoing that record must not
    drop the table and create it again empty."""
    seed(mysql_db, lines_for=0)
    execute(mysql_db, "DROP TABLE `lines`")
    execute(
        pg_db,
        "CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, label VARCHAR(30) NOT NULL)",
        "INSERT INTO orders VALUES (1, 'a'), (2, 'b')",
        "CREATE TABLE notes (id INT PRIMARY KEY, order_id INT"
        " CONSTRAINT notes_order REFERENCES orders (id))",
    )
    plan = tmp_path / "rb.toml"
    plan_file(tmp_path, mysql_db, pg_db, 'mode = "full"\nif_exists = "replace"\n')
    plan.write_text(
        plan.read_text(encoding="utf-8").replace('tables = ["*"]', 'tables = ["orders"]'),
        encoding="utf-8",
    )
    before = contents(pg_db)
    code, result = run_json(plan, capsys)
    assert code != 0 and "depend" in json.dumps(result), result
    assert contents(pg_db) == {**before, "migrate_bak_orders": []}
    execute(pg_db, "ALTER TABLE notes DROP CONSTRAINT notes_order")
    assert_done(*run_json(plan, capsys))
    assert len(contents(pg_db)["orders"]) == 60
    undo(plan)
    assert contents(pg_db) == before


@pytest.mark.parametrize("side", ["sqlite", "pg", "mysql2"])
def test_undoing_a_restarted_copy_gives_back_the_table_it_dropped(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
    side: str,
) -> None:
    """``--restart`` drops a table an earlier run created and loads it again. Undoing
    the restarted run gives the table back as that run found it (the catch-up run's
    changes included), and undoing every run after it still works, newest first."""
    dst = target_url(side, request, tmp_path)
    seed(mysql_db)
    plan = plan_file(
        tmp_path,
        mysql_db,
        dst,
        'mode = "full+incremental"\ncursor = "updated_at"\ndeletes = "detect"\n',
    )
    assert_done(*run_json(plan, capsys))
    change_source(mysql_db)
    assert_done(*run_json(plan, capsys))
    caught = contents(dst)
    execute(mysql_db, f"UPDATE orders SET name = 'later', updated_at = '{ts(2000)}'")
    code, result = run_json(plan, capsys, "--restart")
    assert_done(code, result)
    assert {r[1] for r in contents(dst)["orders"]} == {"later"}
    undo(plan, result["run_id"])
    assert contents(dst) == caught
    undo(plan)
    assert contents(dst) == {}


@pytest.mark.parametrize("side", ["sqlite", "pg", "mysql2"])
def test_a_table_named_like_an_alias_of_the_undo_keeps_its_other_rows(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
    side: str,
) -> None:
    """Tables named ``b`` and ``k``: the undo's statements name the backup table by an
    alias, which must not hide the table itself (``b.id = b.id`` is true for every row)."""
    dst = target_url(side, request, tmp_path)
    for name in ("b", "k"):
        execute(
            mysql_db,
            f"CREATE TABLE {name} (id INT NOT NULL, n INT NOT NULL, v VARCHAR(10) NOT NULL,"
            " PRIMARY KEY (id, n))",
            f"INSERT INTO {name} VALUES " + ", ".join(f"({i}, 1, 'v{i}')" for i in range(1, 21)),
        )
    plan = plan_file(
        tmp_path, mysql_db, dst, 'mode = "full+incremental"\ncursor = "id"\ndeletes = "detect"\n'
    )
    assert_done(*run_json(plan, capsys))
    loaded = contents(dst)
    for name in ("b", "k"):
        execute(
            mysql_db, f"DELETE FROM {name} WHERE id = 3", f"INSERT INTO {name} VALUES (30, 1, 'x')"
        )
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    assert len(contents(dst)["b"]) == 20
    undo(plan, result["run_id"])
    assert contents(dst) == loaded


def test_a_postgresql_table_of_native_types_gets_every_value_back(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rows an emptying keeps go through the backup table: each column there is of
    the table's own type, so json keeps its text (spacing, key order), timetz its offset,
    and intervals, addresses, arrays, money and bit strings can be inserted back."""
    seed(mysql_db, lines_for=0)
    execute(mysql_db, "DROP TABLE `lines`")
    execute(
        pg_db,
        "CREATE DOMAIN short_code AS varchar(5) CHECK (VALUE <> '')",
        "CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL,"
        " amount NUMERIC(10,2), updated_at TIMESTAMP NOT NULL, doc json, at_tz timetz,"
        " span interval, addr inet, tags int[], price money, flags bit(3), code short_code,"
        ' word text COLLATE "C")',
        "INSERT INTO orders VALUES (1, 'mine', 0.5, '2026-01-01', '{\"b\": 1,  \"a\": [1, 2]}',"
        " '12:00:00.5+05:30', '1 day 02:03:04.5', '10.0.0.1/24', '{3,1,2}', 12.34, B'101',"
        " 'ab', 'Zed')",
    )
    text_of = (
        "SELECT id, doc::text, at_tz::text, span::text, addr::text, tags::text, price::text,"
        " flags::text, code, word FROM orders ORDER BY id"
    )

    def rows() -> list[tuple[Any, ...]]:
        eng = engine(pg_db)
        try:
            with eng.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(text_of))]
        finally:
            eng.dispose()

    before, old_rows = contents(pg_db), rows()
    plan = plan_file(tmp_path, mysql_db, pg_db, 'mode = "full"\nif_exists = "truncate"\n')
    assert_done(*run_json(plan, capsys))
    assert len(rows()) == 60
    undo(plan)
    assert rows() == old_rows
    assert contents(pg_db) == before


def test_rows_go_back_into_a_generated_always_identity(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL refuses an explicit value for a ``GENERATED ALWAYS`` identity column
    unless the INSERT says ``OVERRIDING SYSTEM VALUE``: the rows put back keep their ids."""
    seed(mysql_db, lines_for=0)
    execute(mysql_db, "DROP TABLE `lines`")
    execute(
        pg_db,
        "CREATE TABLE orders (id INT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " name VARCHAR(40) NOT NULL, amount NUMERIC(10,2), updated_at TIMESTAMP NOT NULL)",
        "INSERT INTO orders (name, updated_at) VALUES ('a', '2026-01-01'), ('b', '2026-01-02')",
    )
    before = contents(pg_db)
    plan = plan_file(tmp_path, mysql_db, pg_db, 'mode = "full"\nif_exists = "truncate"\n')
    assert_done(*run_json(plan, capsys))
    assert len(contents(pg_db)["orders"]) == 60
    undo(plan)
    assert contents(pg_db) == before


def test_a_replacement_mysql_could_not_drop_leaves_no_mark(
    tmp_path: Path, mysql2_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MariaDB commits the copy of the rows before it runs the DROP (DDL commits): when
    the DROP then fails, the copy and its mark go again, so undoing that record leaves
    the table alone instead of dropping it and creating it again from its portable
    schema (here a YEAR column would come back as SMALLINT)."""
    from migrate.backup import TableBackup
    from migrate.errors import ConnectorError
    from migrate.registry import endpoint_class

    execute(
        mysql2_db,
        "CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, y YEAR NULL)",
        "INSERT INTO orders VALUES (1, 2024), (2, NULL)",
    )
    before, old_shape = contents(mysql2_db), shape(mysql2_db, "orders")
    state = State(tmp_path / "state.db", "rb")
    run_id = state.start_run("run")
    ep = endpoint_class(mysql2_db)("dst", mysql2_db, {}, base_dir=tmp_path)
    try:
        keep = TableBackup(state, run_id, "copy", "dst", ep, "orders", "orders")
        monkeypatch.setattr(ep, "drop_table_sql", lambda table: "DROP TABLE no_such_table")
        with pytest.raises(ConnectorError, match="no_such_table"):
            keep.replace()
        monkeypatch.undo()
        assert contents(mysql2_db) == {**before, "migrate_bak_orders": []}
        for row in state.undo_records():
            rec = dict(zip(row.keys(), tuple(row), strict=True))
            rec["detail"] = json.loads(rec["detail"]) if rec["detail"] else {}
            ep.run_statements(ep.undo_statements(rec))
    finally:
        ep.close()
        state.close()
    assert contents(mysql2_db) == before
    assert shape(mysql2_db, "orders") == old_shape


def test_a_mysql_script_run_by_hand_keeps_an_id_of_zero(
    tmp_path: Path, mysql_db: str, mysql2_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tool's MySQL sessions keep an explicit 0 in an AUTO_INCREMENT column
    (NO_AUTO_VALUE_ON_ZERO); the script says so too, so a DBA's client, in the server's
    default sql_mode, puts row 0 back as 0 instead of giving it a new id."""
    seed(mysql_db, lines_for=0)
    execute(mysql_db, "DROP TABLE `lines`")
    execute(
        mysql2_db,
        "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
        "CREATE TABLE orders (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40)"
        " NOT NULL, amount DECIMAL(10,2) NULL, updated_at DATETIME(6) NOT NULL)",
        f"INSERT INTO orders VALUES (0, 'zero', NULL, '{ts(0)}'), (7, 'seven', 1, '{ts(7)}')",
    )
    before = contents(mysql2_db)
    plan = plan_file(tmp_path, mysql_db, mysql2_db, 'mode = "full"\nif_exists = "truncate"\n')
    assert_done(*run_json(plan, capsys))
    statements = undo(plan, by_hand=mysql2_db)
    assert statements[0].startswith("SET time_zone = '+00:00', sql_mode = ")
    assert contents(mysql2_db) == before


@pytest.mark.parametrize("side", ["sqlite", "pg", "mysql2"])
def test_edge_values_go_through_the_backup_table_unchanged(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
    side: str,
) -> None:
    """The edge table (extreme decimals and floats, microsecond date-times, 100,000
    character text, a 1 MB blob, quotes and control characters, JSON), created natively
    on the target and emptied by a load: every value it had comes back as it was."""
    from edge_data import EDGE_NAMES, create_edge_table, read_rows

    dst = target_url(side, request, tmp_path)
    engine_name = {"sqlite": "sqlite", "pg": "postgresql", "mysql2": "mysql"}[side]
    create_edge_table("mysql", mysql_db)
    create_edge_table(engine_name, dst)
    execute(dst, "DELETE FROM edge WHERE id = 2")  # not quite the source's rows
    before = read_rows(dst, "edge", EDGE_NAMES, ["id"])
    plan = plan_file(tmp_path, mysql_db, dst, 'mode = "full"\nif_exists = "truncate"\n')
    assert_done(*run_json(plan, capsys))
    assert read_rows(dst, "edge", EDGE_NAMES, ["id"]) != before
    undo(plan)
    assert read_rows(dst, "edge", EDGE_NAMES, ["id"]) == before


@pytest.mark.parametrize("side", ["pg", "mysql2"])
def test_a_script_run_by_hand_then_by_the_tool_changes_nothing_more(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
    side: str,
) -> None:
    """A DBA runs the rollback script by hand (the state does not know), then someone
    runs ``migrate rollback``: the records are undone a second time, and an emptying
    whose kept rows the script already put back (and forgot) must not empty the table."""
    dst = target_url(side, request, tmp_path)
    seed(mysql_db, lines_for=0)
    execute(mysql_db, "DROP TABLE `lines`")
    execute(
        dst,
        "CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL,"
        " amount DECIMAL(10,2) NULL, updated_at TIMESTAMP NOT NULL)",
        f"INSERT INTO orders VALUES (1, 'mine', 0.50, '{ts(0)}')",
    )
    before = contents(dst)
    plan = plan_file(tmp_path, mysql_db, dst, 'mode = "full"\nif_exists = "truncate"\n')
    assert_done(*run_json(plan, capsys))
    p = load_plan(plan)
    endpoints = Endpoints(p, 1, dry_run=False)
    try:
        ep = endpoints.get("dst")
        script = [s for r in records(plan) for s in ep.undo_statements(r)]
    finally:
        endpoints.close()
    run_script(dst, script)
    assert contents(dst) == before
    undo(plan)
    assert contents(dst) == before


def rollback_json(plan: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    """``migrate rollback PLAN --json ARGS`` in this process."""
    capsys.readouterr()
    code = main(["rollback", str(plan), "--json", *args])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("side", ["sqlite", "pg", "mysql2"])
def test_migrate_rollback_after_the_script_of_a_pass_was_run_by_hand(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
    side: str,
) -> None:
    """A DBA runs the ``.sql`` script of a catch-up run by hand (it drops the backup
    table the pass created); ``migrate rollback --run`` then finishes without failing on
    that table and puts the watermarks back, so the next run applies the changes again."""
    dst = target_url(side, request, tmp_path)
    seed(mysql_db)
    plan = plan_file(
        tmp_path,
        mysql_db,
        dst,
        'mode = "full+incremental"\ncursor = "updated_at"\ndeletes = "detect"\n',
    )
    assert_done(*run_json(plan, capsys))
    loaded = contents(dst)
    change_source(mysql_db)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    caught_up = {t: rows for t, rows in contents(dst).items() if not t.startswith("migrate_bak_")}
    code, dry = rollback_json(plan, capsys, "--run", str(result["run_id"]), "--dry-run")
    assert code == 0 and dry["scripts"], dry
    script = Path(dry["scripts"]["dst"]).read_text(encoding="utf-8")
    bodies = [
        "\n".join(ln for ln in s.splitlines() if not ln.startswith("--"))
        for s in script.split(";\n")
    ]
    run_script(dst, [s for s in bodies if s.strip()])  # what psql or mysql would run
    assert contents(dst) == loaded  # the script alone gives the load's target back
    code, out = rollback_json(plan, capsys, "--run", str(result["run_id"]))
    assert code == 0 and out["error"] is None, out
    assert any("is not there" in n for n in out["notes"]), out["notes"]
    assert contents(dst) == loaded
    code, again = run_json(plan, capsys)
    assert_done(code, again)
    caught = {t["name"]: t["catch_up"] for t in again["steps"][0]["tables"]}
    assert (caught["orders"]["changed"], caught["orders"]["deleted"]) == (5, 2)
    now = {t: rows for t, rows in contents(dst).items() if not t.startswith("migrate_bak_")}
    assert now == caught_up


def test_a_rollback_after_the_cutover_drops_its_foreign_keys_before_restoring_rows(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cut-over run catches up (a parent row changed) and then creates the foreign
    keys. Undoing it restores the parent row by delete and insert, which a foreign key
    from the child rows would refuse on PostgreSQL: the keys are dropped first."""
    execute(
        mysql_db,
        "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL,"
        " updated_at DATETIME(6) NOT NULL, INDEX customers_upd (updated_at))",
        "CREATE TABLE buys (id INT PRIMARY KEY, customer_id INT NOT NULL,"
        " updated_at DATETIME(6) NOT NULL, INDEX buys_upd (updated_at),"
        " CONSTRAINT buys_customer FOREIGN KEY (customer_id) REFERENCES customers (id))",
        rows=[
            (
                "INSERT INTO customers VALUES (:i, :n, :u)",
                [{"i": i, "n": f"c{i}", "u": ts(i)} for i in (1, 2)],
            ),
            (
                "INSERT INTO buys VALUES (:i, :c, :u)",
                [{"i": i, "c": 1 + i % 2, "u": ts(i)} for i in (1, 2, 3)],
            ),
        ],
    )
    plan = plan_file(
        tmp_path, mysql_db, pg_db, 'mode = "full+incremental"\ncursor = "updated_at"\n'
    )
    before = contents(pg_db)
    assert_done(*run_json(plan, capsys))
    after_copy = contents(pg_db)
    execute(
        mysql_db, f"UPDATE customers SET name = 'renamed', updated_at = '{ts(90)}' WHERE id = 1"
    )
    code, result = run_json(plan, capsys, "--cutover")
    assert code == 0, result
    fks = [r for r in records(plan, result["run_id"]) if r["action"] == "drop_foreign_key"]
    assert [(r["object"], r["detail"]["name"]) for r in fks] == [("buys", "buys_customer")]
    capsys.readouterr()
    assert main(["rollback", str(plan), "--run", str(result["run_id"])]) == 0, capsys.readouterr()
    assert contents(pg_db) == after_copy
    assert main(["rollback", str(plan)]) == 0, capsys.readouterr()
    assert contents(pg_db) == before
