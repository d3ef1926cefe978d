"""Full-then-incremental catch-up on real servers: watermark passes, overlap, upserts, delete
detection, adopting a preloaded target, cut-over, crash safety and ``migrate status``.

Every test builds its source natively, runs ``migrate run`` (in-process through
``migrate.cli.main``, or as a subprocess where a writer process runs meanwhile or the run
is killed), then reads both sides with SQLAlchemy Core and compares every value after
normalising it per column kind (tests/edge_data.py). Cursor values are set explicitly
wherever a test depends on them, so no assertion depends on the wall clock.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa
from edge_data import (
    assert_same_rows,
    execute,
    normalise_rows,
    read_rows,
    run_json,
    run_text,
    table_results,
)
from edge_data import run_cli as run_proc
from edge_data import state_file as state_path
from sqlalchemy.pool import NullPool
from writer import WRITER_COLUMNS, WRITER_DDL, WRITER_KINDS

from migrate.cli import main

FIXTURE = {"mysql2": "mysql2_db", "pg": "pg_db"}
WRITER = Path(__file__).with_name("writer.py")
BASE = dt.datetime(2026, 3, 1, 12, 0, 0)

# -- helpers ----------------------------------------------------------------------------------


def target_url(side: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if side == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return str(request.getfixturevalue(FIXTURE[side]))


def scalar(url: str, sql: str) -> Any:
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            return conn.exec_driver_sql(sql).scalar()
    finally:
        eng.dispose()


def mysql_connect(url: str) -> pymysql.connections.Connection:
    u = sa.make_url(url)
    return pymysql.connect(
        host=u.host,
        port=u.port,
        user=u.username,
        password=u.password or "",
        database=u.database,
        autocommit=False,
    )


def plan_file(
    tmp_path: Path,
    src: str,
    dst: str,
    *,
    name: str = "inc",
    chunk_rows: int = 200,
    workers: int = 2,
    step: str = 'mode = "full+incremental"\ncursor = "updated_at"\n',
    extra: str = "",
) -> Path:
    """A one-step plan (step ``copy``) from ``src`` to ``dst``; ``step`` holds the step's
    mode keys, ``extra`` whole tables appended after the step (``[steps.overrides.X]``)."""
    plan = tmp_path / f"{name}.toml"
    plan.write_text(
        f"""version = 1
name = "{name}"
state = "{name}-state.db"
[defaults]
chunk_rows = {chunk_rows}
workers = {workers}
[connections]
src = {{ url = "{src}" }}
dst = {{ url = "{dst}" }}
[[steps]]
name = "copy"
source = "src"
target = "dst"
tables = ["*"]
{step}
{extra}""",
        encoding="utf-8",
    )
    return plan


def status_json(plan: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    """``migrate status PLAN --json``: the rows by table name."""
    capsys.readouterr()
    assert main(["status", str(plan), "--json"]) == 0
    return {t["table"]: t for t in json.loads(capsys.readouterr().out)["tables"]}


def catch_up(result: dict, table: str) -> dict:
    pr = table_results(result)[table]["catch_up"]
    assert pr is not None, f"{table}: no catch-up pass in this run: {json.dumps(result)[:2000]}"
    return dict(pr)


def assert_ok(code: int, result: dict) -> None:
    assert code == 0, json.dumps(result, indent=1, default=str)[:4000]
    assert result["status"] == "done", result


def assert_same(
    src: str,
    dst: str,
    table: str,
    columns: Sequence[str],
    kinds: Sequence[str],
    key_len: int = 1,
    *,
    dst_loose: bool = False,
    src_loose: bool = False,
) -> None:
    """Both sides hold the same rows value for value, and no key twice."""
    key = list(columns[:key_len])
    source = read_rows(src, table, columns, key)
    target = read_rows(dst, table, columns, key)
    assert len(target) == len(source), (table, len(source), len(target))
    assert_same_rows(
        source,
        target,
        columns,
        kinds,
        key_len,
        source_loose=src_loose,
        target_loose=dst_loose,
    )


def ts(seconds: float) -> str:
    return (BASE + dt.timedelta(seconds=seconds)).isoformat(" ", timespec="microseconds")


# -- 1. a live writer during the full copy and the catch-up passes ----------------------------

LIVE_ROWS = 2000


def _wait_for_ops(progress: Path, writer: subprocess.Popen[str], at_least: int) -> int:
    deadline = time.monotonic() + 60
    while True:
        done = int(progress.read_text()) if progress.exists() else 0
        if done >= at_least:
            return done
        assert writer.poll() is None, f"the writer died: {writer.communicate()}"
        assert time.monotonic() < deadline, "the writer made no progress"
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("side", ["pg", "mysql2"])
def test_live_writer_full_copy_catch_up_and_cutover(
    tmp_path: Path, request: pytest.FixtureRequest, mysql_db: str, side: str
) -> None:
    dst = target_url(side, request, tmp_path)
    execute(
        mysql_db,
        WRITER_DDL.format(table="items"),
        rows=[
            (
                "INSERT INTO items (name, amount, qty, note) VALUES (:n, :a, :q, :o)",
                [
                    {"n": f"品目 {i}", "a": f"{i}.{i % 100:02d}", "q": i % 17, "o": None}
                    for i in range(LIVE_ROWS)
                ],
            )
        ],
    )
    plan = plan_file(
        tmp_path,
        mysql_db,
        dst,
        step='mode = "full+incremental"\ncursor = "updated_at"\ndeletes = "detect"\n',
    )
    stop, progress = tmp_path / "stop", tmp_path / "progress"
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), mysql_db, "items", str(stop), str(progress), "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ops = _wait_for_ops(progress, writer, 20)
        passes = []
        for n in range(4):  # the full copy, then three catch-up passes
            code, out, err = run_proc(plan, "--json", "--quiet")
            result = json.loads(out) if out.strip() else {}
            assert code == 0, (n, err, out[:3000])
            assert result["status"] == "done"
            if n:
                passes.append(catch_up(result, "items"))
            else:  # the full copy, in several chunks
                assert table_results(result)["items"]["catch_up"] is None
                assert len(table_results(result)["items"]["chunks"]) >= LIVE_ROWS // 200
            ops = _wait_for_ops(progress, writer, ops + 60)  # the source changed meanwhile
    finally:
        stop.touch()
        try:
            w_out, w_err = writer.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            writer.kill()
            raise
    assert writer.returncode == 0, w_err
    done = json.loads(w_out)
    assert done["inserts"] and done["updates"] and done["deletes"], done
    code, out, err = run_proc(plan, "--cutover")
    assert code == 0, out + err
    assert "cut-over acceptance" in out
    assert sum(p["changed"] for p in passes) > 0, passes
    assert sum(p["deleted"] for p in passes) > 0, passes
    assert_same(mysql_db, dst, "items", WRITER_COLUMNS, WRITER_KINDS)


# -- 2. overlap: a row committed late ---------------------------------------------------------


@pytest.mark.parametrize("overlap", [None, "1s"])
def test_late_commit_is_caught_only_inside_the_overlap_window(
    tmp_path: Path,
    mysql_db: str,
    pg_db: str,
    capsys: pytest.CaptureFixture[str],
    overlap: str | None,
) -> None:
    """A row stamped 80 s before the watermark but committed after the pass that set it is
    caught by the next pass with the default 5m overlap; with ``overlap = "1s"`` (a window
    shorter than the commit delay, the user's choice) it is missed, and the cut-over count
    says so (exit 3)."""
    execute(
        mysql_db,
        "CREATE TABLE late (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL,"
        " updated_at DATETIME(6) NOT NULL, INDEX late_updated_ix (updated_at))",
        rows=[
            (
                "INSERT INTO late VALUES (:i, :v, :u)",
                [{"i": i, "v": f"v{i}", "u": ts(i)} for i in range(1, 21)],
            )
        ],
    )
    step = 'mode = "full+incremental"\ncursor = "updated_at"\n'
    if overlap:
        step += f'overlap = "{overlap}"\n'
    plan = plan_file(tmp_path, mysql_db, pg_db, step=step)
    assert_ok(*run_json(plan, capsys))  # full copy: watermark = BASE + 20 s

    late = mysql_connect(mysql_db)
    try:
        late.cursor().execute("INSERT INTO late VALUES (100, 'late', %s)", (ts(-50),))
        # committed meanwhile: the pass below moves the watermark to BASE + 30 s
        execute(mysql_db, f"INSERT INTO late VALUES (21, 'v21', '{ts(30)}')")
        code, result = run_json(plan, capsys)
        assert_ok(code, result)
        assert catch_up(result, "late")["watermark"] == ts(30)[:19]
        assert scalar(pg_db, "SELECT COUNT(*) FROM late WHERE id = 100") == 0  # not seen yet
        late.commit()  # 80 s older than the watermark
    finally:
        late.close()

    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    pr = catch_up(result, "late")
    on_target = scalar(pg_db, "SELECT COUNT(*) FROM late WHERE id = 100")
    if overlap is None:
        assert pr["changed"] == 1, pr
        assert on_target == 1
        assert_same(mysql_db, pg_db, "late", ["id", "v", "updated_at"], ["int", "text", "datetime"])
    else:
        assert pr["changed"] == 0, pr
        assert on_target == 0
        code, result = run_json(plan, capsys, "--cutover")
        assert code == 3, result
        t = table_results(result)["late"]
        assert (t["source_rows"], t["target_rows"]) == (22, 21)


# -- 3. a numeric key cursor on an append-only table ------------------------------------------


@pytest.mark.parametrize("overlap", [0, 10])
def test_numeric_cursor_reads_only_new_rows(
    tmp_path: Path,
    mysql_db: str,
    pg_db: str,
    capsys: pytest.CaptureFixture[str],
    overlap: int,
) -> None:
    execute(
        mysql_db,
        "CREATE TABLE events (id BIGINT AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(20) NOT NULL,"
        " amount DECIMAL(10,3) NULL)",
        rows=[
            (
                "INSERT INTO events (kind, amount) VALUES (:k, :a)",
                [{"k": f"k{i % 7}", "a": f"{i}.125"} for i in range(500)],
            )
        ],
    )
    step = f'mode = "full+incremental"\ncursor = "id"\noverlap = {overlap}\n'
    plan = plan_file(tmp_path, mysql_db, pg_db, step=step)
    assert_ok(*run_json(plan, capsys))
    new = 37
    execute(
        mysql_db,
        rows=[
            (
                "INSERT INTO events (kind, amount) VALUES (:k, :a)",
                [{"k": "new", "a": f"-{i}.5"} for i in range(new)],
            )
        ],
    )
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    pr = catch_up(result, "events")
    assert (pr["rows"], pr["changed"]) == (new + overlap, new), pr
    assert pr["watermark"] == str(500 + new)
    assert_same(mysql_db, pg_db, "events", ["id", "kind", "amount"], ["int", "text", "decimal:3"])
    code, result = run_json(plan, capsys)  # nothing new: only the overlap is read again
    assert_ok(code, result)
    assert catch_up(result, "events")["rows"] == overlap


# -- 4. a rerun with nothing changed ----------------------------------------------------------


@pytest.mark.parametrize("side", ["pg", "mysql2", "sqlite"])
def test_rerun_without_source_changes_changes_nothing(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
    side: str,
) -> None:
    """Every row is inside the 5m overlap, so the pass reads them all again and finds none
    different: the merge's comparison must hold for NULLs, decimals, text, JSON and
    microsecond times on every target engine."""
    dst = target_url(side, request, tmp_path)
    execute(
        mysql_db,
        "CREATE TABLE doc (id INT PRIMARY KEY, title VARCHAR(40) NULL, price DECIMAL(12,4) NULL,"
        " body TEXT NULL, meta JSON NULL, updated_at DATETIME(6) NOT NULL,"
        " INDEX doc_updated_ix (updated_at))",
        rows=[
            (
                "INSERT INTO doc VALUES (:i, :t, :p, :b, :m, :u)",
                [
                    {
                        "i": i,
                        "t": None if i % 5 == 0 else f"Ünïcode 題 {i} 'q' \\ \t",
                        "p": None if i % 7 == 0 else f"{i * 3}.{i % 10000:04d}",
                        "b": None if i % 3 == 0 else "x" * (i % 50),
                        "m": None if i % 4 == 0 else json.dumps({"i": i, "tags": ["a", "ü"]}),
                        "u": ts(i + i / 1000),
                    }
                    for i in range(1, 101)
                ],
            )
        ],
    )
    plan = plan_file(
        tmp_path,
        mysql_db,
        dst,
        chunk_rows=30,
        step='mode = "full+incremental"\ncursor = "updated_at"\ndeletes = "detect"\n',
    )
    assert_ok(*run_json(plan, capsys))
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    pr = catch_up(result, "doc")
    assert (pr["rows"], pr["changed"], pr["deleted"]) == (100, 0, 0), pr
    code, text = run_text(plan, capsys)
    assert code == 0, text
    assert "caught up: nothing changed" in text
    assert_same(
        mysql_db,
        dst,
        "doc",
        ["id", "title", "price", "body", "meta", "updated_at"],
        ["int", "text", "decimal:4", "text", "json", "datetime"],
        dst_loose=side == "sqlite",
    )


# -- 5. SIGKILL in the middle of a catch-up pass ----------------------------------------------

CRASH_ROWS = 1000
CRASH_CHUNK = 200


def _seed_crash(url: str) -> None:
    execute(
        url,
        "CREATE TABLE acct (id INT PRIMARY KEY, owner VARCHAR(30) NOT NULL, balance"
        " DECIMAL(14,2) NOT NULL, updated_at DATETIME(6) NOT NULL,"
        " INDEX acct_updated_ix (updated_at))",
        rows=[
            (
                "INSERT INTO acct VALUES (:i, :o, :b, :u)",
                [
                    {"i": i, "o": f"owner {i}", "b": f"{i}.50", "u": ts(i)}
                    for i in range(1, CRASH_ROWS + 1)
                ],
            )
        ],
    )


def _change_crash(url: str) -> None:
    """Update 700 rows (moving their cursor an hour on), delete 30, insert 50."""
    execute(
        url,
        f"UPDATE acct SET balance = balance + 1000, updated_at = '{ts(3600)}' WHERE id <= 700",
        "DELETE FROM acct WHERE id BETWEEN 701 AND 730",
        rows=[
            (
                "INSERT INTO acct VALUES (:i, :o, :b, :u)",
                [{"i": i, "o": "new", "b": "1.00", "u": ts(3601)} for i in range(2001, 2051)],
            )
        ],
    )


@pytest.mark.slow
def test_sigkill_mid_catch_up_pass_then_rerun_converges(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed_crash(mysql_db)
    plan = plan_file(
        tmp_path,
        mysql_db,
        pg_db,
        chunk_rows=CRASH_CHUNK,
        step='mode = "full+incremental"\ncursor = "updated_at"\ndeletes = "detect"\n',
    )
    assert_ok(*run_json(plan, capsys))
    before = status_json(plan, capsys)["acct"]["catch_up"]
    _change_crash(mysql_db)
    code, out, err = run_proc(plan, "--quiet", env={"MIGRATE_FAILPOINT": "after-merge:1"})
    assert code == -signal.SIGKILL, (code, out, err)
    after_kill = status_json(plan, capsys)["acct"]["catch_up"]
    assert after_kill["position"] == before["position"] == ts(CRASH_ROWS)[:19]
    assert after_kill["passes"] == before["passes"]
    # deletes come before the upserts: the killed run had done them, recorded for undo
    assert scalar(pg_db, "SELECT COUNT(*) FROM acct WHERE id BETWEEN 701 AND 730") == 0

    code, out, err = run_proc(plan, "--json", "--quiet")
    assert code == 0, err + out
    pr = catch_up(json.loads(out), "acct")
    assert pr["deleted"] == 0, pr  # nothing left to delete; the upserts are done again
    assert pr["watermark"] == ts(3601)[:19]
    kinds = ["int", "text", "decimal:2", "datetime"]
    assert_same(mysql_db, pg_db, "acct", ["id", "owner", "balance", "updated_at"], kinds)
    assert scalar(pg_db, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM acct") == 0


@pytest.mark.slow
def test_catch_up_upserts_in_batches_of_chunk_rows(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``after-merge:2`` kills the pass right after its second batch: exactly two batches of
    ``chunk_rows`` changed rows are on the target, the rest not yet."""
    _seed_crash(mysql_db)
    plan = plan_file(
        tmp_path,
        mysql_db,
        pg_db,
        chunk_rows=CRASH_CHUNK,
        step='mode = "full+incremental"\ncursor = "updated_at"\n',
    )
    assert_ok(*run_json(plan, capsys))
    _change_crash(mysql_db)
    code, out, err = run_proc(plan, "--quiet", env={"MIGRATE_FAILPOINT": "after-merge:2"})
    assert code == -signal.SIGKILL, (code, out, err)
    moved = scalar(pg_db, f"SELECT COUNT(*) FROM acct WHERE updated_at >= '{ts(3600)}'")
    assert moved == 2 * CRASH_CHUNK


# -- 6. deletes = "detect" --------------------------------------------------------------------

SOLO_ROWS = 3000
BIG_ROWS = 6000  # one chunk (override): ranges above 2000 keys are split at the median
GROUPS = 1000
CODES = ("a", "B", "c")  # sorted differently by MariaDB's unicode_ci and PostgreSQL's C


def _seed_deletes(url: str) -> None:
    execute(
        url,
        "CREATE TABLE solo (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL, updated_at"
        " DATETIME(6) NOT NULL, INDEX solo_updated_ix (updated_at))",
        "CREATE TABLE pair (grp INT NOT NULL, code VARCHAR(10) NOT NULL, v INT NOT NULL,"
        " updated_at DATETIME(6) NOT NULL, PRIMARY KEY (grp, code),"
        " INDEX pair_updated_ix (updated_at))",
        "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL, updated_at"
        " DATETIME(6) NOT NULL, INDEX big_updated_ix (updated_at))",
        rows=[
            (
                "INSERT INTO solo VALUES (:i, :v, :u)",
                [{"i": i, "v": f"s{i}", "u": ts(i)} for i in range(1, SOLO_ROWS + 1)],
            ),
            (
                "INSERT INTO pair VALUES (:g, :c, :v, :u)",
                [
                    {"g": g, "c": c, "v": g * 10 + n, "u": ts(g)}
                    for g in range(1, GROUPS + 1)
                    for n, c in enumerate(CODES)
                ],
            ),
            (
                "INSERT INTO big VALUES (:i, :v, :u)",
                [{"i": i, "v": f"b{i}", "u": ts(i)} for i in range(1, BIG_ROWS + 1)],
            ),
        ],
    )


def _delete_spread(url: str) -> dict[str, set[tuple]]:
    """Delete the first and last rows, a whole chunk's worth and scattered rows of each
    table, while also inserting and updating some; returns the deleted keys per table."""
    solo = {1, SOLO_ROWS} | set(range(801, 1001)) | set(range(5, SOLO_ROWS, 97))
    big = {1, BIG_ROWS} | set(range(2500, 2700)) | set(range(7, BIG_ROWS, 101))
    groups = set(range(301, 368))
    pair = {(1, "a"), (GROUPS, "c")} | {(g, c) for g in groups for c in CODES}
    pair |= {(g, CODES[g % 3]) for g in range(11, GROUPS, 89)}
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.begin() as conn:
            for name, keys in (("solo", solo), ("big", big)):
                conn.execute(sa.text(f"DELETE FROM {name} WHERE id = :i"), [{"i": i} for i in keys])
                conn.execute(
                    sa.text(f"INSERT INTO {name} VALUES (:i, 'new', :u)"),
                    [{"i": i, "u": ts(9000)} for i in range(10_001, 10_011)],
                )
                conn.exec_driver_sql(
                    f"UPDATE {name} SET v = 'upd', updated_at = '{ts(9001)}' WHERE id IN (2, 50)"
                )
            conn.execute(
                sa.text("DELETE FROM pair WHERE grp = :g AND code = :c"),
                [{"g": g, "c": c} for g, c in pair],
            )
            conn.exec_driver_sql(
                f"INSERT INTO pair VALUES (5000, 'z', 1, '{ts(9000)}'), (0, 'A', 2, '{ts(9000)}')"
            )
    finally:
        eng.dispose()
    return {
        "solo": {(i,) for i in solo},
        "big": {(i,) for i in big},
        "pair": set(pair),
    }


def _undo_keys(state: Path, dst: str) -> dict[str, dict[tuple, tuple]]:
    """The deleted rows kept for undo (``restore_rows`` records: op ``d`` rows of each
    record in its backup table on the target ``dst``), by table and key."""
    db = sqlite3.connect(state)
    try:
        records = db.execute(
            "SELECT id, object, detail FROM undo WHERE action = 'restore_rows' ORDER BY id"
        ).fetchall()
    finally:
        db.close()
    found: dict[str, dict[tuple, tuple]] = {}
    for uid, obj, detail in records:
        d = json.loads(detail)
        cols = d["table_columns"]
        idx = [cols.index(k) for k in d["key"]]
        kept = read_rows(dst, d["backup"], ["migrate_undo", "migrate_op", *cols])
        for row in kept:
            if row[0] == uid and row[1] == "d":
                found.setdefault(obj, {})[tuple(row[2:][i] for i in idx)] = row[2:]
    return found


DELETE_TABLES = {
    "solo": (["id", "v", "updated_at"], ["int", "text", "datetime"], 1),
    "big": (["id", "v", "updated_at"], ["int", "text", "datetime"], 1),
    "pair": (["grp", "code", "v", "updated_at"], ["int", "text", "int", "datetime"], 2),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "side",
    [
        "mysql2",
        pytest.param(
            "pg",
        ),
    ],
)
def test_detect_deletes_over_many_ranges(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
    side: str,
) -> None:
    dst = target_url(side, request, tmp_path)
    _seed_deletes(mysql_db)
    plan = plan_file(
        tmp_path,
        mysql_db,
        dst,
        step='mode = "full+incremental"\ncursor = "updated_at"\ndeletes = "detect"\n',
        extra=f"[steps.overrides.big]\nchunk_rows = {BIG_ROWS}\n",
    )
    assert_ok(*run_json(plan, capsys))
    before = {
        name: {
            r[:key_len]: r
            for r in normalise_rows(read_rows(mysql_db, name, cols, cols[:key_len]), kinds)
        }
        for name, (cols, kinds, key_len) in DELETE_TABLES.items()
    }
    deleted = _delete_spread(mysql_db)
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    undo = _undo_keys(state_path(plan), dst)
    for name, (cols, kinds, key_len) in DELETE_TABLES.items():
        pr = catch_up(result, name)
        assert pr["deleted"] == len(deleted[name]), (name, pr)
        assert_same(mysql_db, dst, name, cols, kinds, key_len)
        recorded = undo.get(name, {})
        assert set(recorded) == deleted[name], name
        assert {k: tuple(normalise_rows([v], kinds)[0]) for k, v in recorded.items()} == {
            k: before[name][k] for k in deleted[name]
        }, name
    code, result = run_json(plan, capsys)  # nothing more to delete
    assert_ok(code, result)
    assert all(catch_up(result, n)["deleted"] == 0 for n in DELETE_TABLES)


def test_detect_deletes_text_key_across_collations(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The smallest case: the first row of a (int, varchar) key, codes a/B/c (a < B on
    MariaDB, B < a on PostgreSQL's C collation), chunks of 200 rows."""
    execute(
        mysql_db,
        "CREATE TABLE pair (grp INT NOT NULL, code VARCHAR(10) NOT NULL, v INT NOT NULL,"
        " updated_at DATETIME(6) NOT NULL, PRIMARY KEY (grp, code),"
        " INDEX pair_updated_ix (updated_at))",
        rows=[
            (
                "INSERT INTO pair VALUES (:g, :c, 0, :u)",
                [{"g": g, "c": c, "u": ts(g)} for g in range(1, 201) for c in CODES],
            )
        ],
    )
    plan = plan_file(
        tmp_path,
        mysql_db,
        pg_db,
        step='mode = "full+incremental"\ncursor = "updated_at"\ndeletes = "detect"\n',
    )
    assert_ok(*run_json(plan, capsys))
    execute(mysql_db, "DELETE FROM pair WHERE grp = 1 AND code = 'a'")
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    assert catch_up(result, "pair")["deleted"] == 1
    assert scalar(pg_db, "SELECT COUNT(*) FROM pair") == 599


def test_deletes_ignore_leaves_deleted_rows(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    execute(
        mysql_db,
        "CREATE TABLE solo (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL, updated_at"
        " DATETIME(6) NOT NULL, INDEX solo_updated_ix (updated_at))",
        rows=[
            (
                "INSERT INTO solo VALUES (:i, :v, :u)",
                [{"i": i, "v": f"s{i}", "u": ts(i)} for i in range(1, 601)],
            )
        ],
    )
    plan = plan_file(tmp_path, mysql_db, pg_db)  # deletes defaults to "ignore"
    assert_ok(*run_json(plan, capsys))
    execute(
        mysql_db,
        "DELETE FROM solo WHERE id IN (1, 300, 600)",
        f"UPDATE solo SET v = 'upd', updated_at = '{ts(900)}' WHERE id = 2",
    )
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    pr = catch_up(result, "solo")
    assert (pr["changed"], pr["deleted"]) == (1, 0), pr
    assert scalar(pg_db, "SELECT COUNT(*) FROM solo WHERE id IN (1, 300, 600)") == 3
    assert scalar(pg_db, "SELECT v FROM solo WHERE id = 2") == "upd"
    assert _undo_keys(state_path(plan), pg_db) == {}


@pytest.mark.parametrize("side", ["pg", "mysql2"])
def test_rows_swapping_a_unique_value_converge(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
    side: str,
) -> None:
    dst = target_url(side, request, tmp_path)
    execute(
        mysql_db,
        "CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(40) NOT NULL,"
        " updated_at DATETIME(6) NOT NULL, UNIQUE INDEX users_email_ux (email),"
        " INDEX users_updated_ix (updated_at))",
        rows=[
            (
                "INSERT INTO users VALUES (:i, :e, :u)",
                [{"i": i, "e": f"{c}@example.com", "u": ts(i)} for i, c in enumerate("xyz", 1)],
            )
        ],
    )
    plan = plan_file(tmp_path, mysql_db, dst)
    assert_ok(*run_json(plan, capsys))
    execute(  # users 1 and 2 swap their addresses, as an application does through a third
        mysql_db,
        f"UPDATE users SET email = 'tmp', updated_at = '{ts(100)}' WHERE id = 1",
        f"UPDATE users SET email = 'x@example.com', updated_at = '{ts(101)}' WHERE id = 2",
        f"UPDATE users SET email = 'y@example.com', updated_at = '{ts(102)}' WHERE id = 1",
    )
    code, result = run_json(plan, capsys)
    # the upsert conflicts on users_email_ux; the staged rows then replace their old
    # versions (MariaDB: REPLACE; PostgreSQL: delete and insert inside the merge)
    assert_ok(code, result)
    assert catch_up(result, "users")["changed"] == 2
    assert_same(mysql_db, dst, "users", ["id", "email", "updated_at"], ["int", "text", "datetime"])


# -- 7. mode = "incremental": adopting a target loaded some other way -------------------------

ITEMS_DDL = {
    "mysql": "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL,"
    " updated_at DATETIME(6) NOT NULL, INDEX items_updated_ix (updated_at))",
    "pg": "CREATE TABLE items (id integer PRIMARY KEY, name varchar(40) NOT NULL,"
    " qty integer NOT NULL, updated_at timestamp(6) NOT NULL)",
}
ITEMS_COLUMNS = ["id", "name", "qty", "updated_at"]
ITEMS_KINDS = ["int", "text", "int", "datetime"]
OCT = dt.datetime(2026, 10, 1)


def _items(ids: Sequence[int]) -> list[dict]:
    """Rows 1-50 an hour apart from 1 Oct 2026; 51-80 from 5 Nov; 81 on 15 Oct."""

    def stamp(i: int) -> dt.datetime:
        if i <= 50:
            return OCT + dt.timedelta(hours=i)
        if i <= 80:
            return dt.datetime(2026, 11, 5) + dt.timedelta(minutes=i)
        return dt.datetime(2026, 10, 15)

    return [{"i": i, "n": f"item {i}", "q": i * 2, "u": stamp(i)} for i in ids]


ITEMS_INSERT = "INSERT INTO items VALUES (:i, :n, :q, :u)"


@pytest.mark.parametrize("start", [None, "2026-11-01T00:00:00"])
def test_incremental_mode_adopts_a_preloaded_target(
    tmp_path: Path,
    mysql_db: str,
    pg_db: str,
    capsys: pytest.CaptureFixture[str],
    start: str | None,
) -> None:
    """Without ``start`` the watermark is the target's MAX(updated_at) (row 81, stamped
    after it, is copied); with ``start`` it is that moment (row 81 is older: not read)."""
    execute(mysql_db, ITEMS_DDL["mysql"], rows=[(ITEMS_INSERT, _items(range(1, 82)))])
    execute(pg_db, ITEMS_DDL["pg"], rows=[(ITEMS_INSERT, _items(range(1, 51)))])
    step = 'mode = "incremental"\ncursor = "updated_at"\n'
    if start:
        step += f'start = "{start}"\n'
    plan = plan_file(tmp_path, mysql_db, pg_db, step=step)
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    pr = catch_up(result, "items")
    if start is None:  # rows after 2026-10-03 01:55 (the target's MAX minus 5m)
        assert (pr["rows"], pr["changed"]) == (32, 31), pr
        assert_same(mysql_db, pg_db, "items", ITEMS_COLUMNS, ITEMS_KINDS)
    else:  # rows after 2026-10-31 23:55
        assert (pr["rows"], pr["changed"]) == (30, 30), pr
        ids = [r[0] for r in read_rows(pg_db, "items", ["id"], ["id"])]
        assert ids == list(range(1, 81))
    assert pr["watermark"] == "2026-11-05 01:20:00"
    assert scalar(pg_db, "SELECT COUNT(*) FROM items") == (80 if start else 81)
    code, result = run_json(plan, capsys)  # the recorded watermark is kept, start is not reused
    assert_ok(code, result)
    assert catch_up(result, "items")["changed"] == 0


@pytest.mark.parametrize(
    "where",
    [
        "step",
        pytest.param(
            "override",
        ),
    ],
)
def test_incremental_mode_numeric_start_zero(
    tmp_path: Path,
    mysql_db: str,
    pg_db: str,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    """``start = 0`` on a numeric cursor reads every row, whatever the target holds."""
    execute(
        mysql_db,
        "CREATE TABLE ev (id INT PRIMARY KEY, v INT NOT NULL)",
        rows=[("INSERT INTO ev VALUES (:i, :i)", [{"i": i} for i in range(1, 21)])],
    )
    execute(pg_db, "CREATE TABLE ev (id integer PRIMARY KEY, v integer NOT NULL)")
    execute(pg_db, "INSERT INTO ev VALUES (15, 15)")
    step = 'mode = "incremental"\ncursor = "id"\n'
    extra = ""
    if where == "step":
        step += "start = 0\n"
    else:
        extra = "[steps.overrides.ev]\nstart = 0\n"
    plan = plan_file(tmp_path, mysql_db, pg_db, step=step, extra=extra)
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    pr = catch_up(result, "ev")
    # the default overlap of a numeric cursor (1000 keys) applies to start as well
    assert (pr["since"], pr["rows"], pr["changed"]) == ("-1000", 20, 19), pr
    assert_same(mysql_db, pg_db, "ev", ["id", "v"], ["int", "int"])


def _one_line_error(text: str, *parts: str) -> None:
    assert "Traceback" not in text, text
    assert any(all(p in line for p in parts) for line in text.splitlines()), text


def test_incremental_mode_errors(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    execute(mysql_db, ITEMS_DDL["mysql"], rows=[(ITEMS_INSERT, _items(range(1, 11)))])
    step = 'mode = "incremental"\ncursor = "updated_at"\n'
    plan = plan_file(tmp_path, mysql_db, pg_db, name="missing", step=step)
    code, text = run_text(plan, capsys)
    assert code == 1, text
    _one_line_error(text, "items does not exist", "full+incremental")

    execute(
        pg_db,
        "CREATE TABLE items (id integer NOT NULL, name varchar(40) NOT NULL,"
        " qty integer NOT NULL, updated_at timestamp(6) NOT NULL)",
    )
    plan = plan_file(tmp_path, mysql_db, pg_db, name="nokey", step=step)
    code, text = run_text(plan, capsys)
    assert code == 1, text
    _one_line_error(text, "items", "no primary key", "(id)")
    assert scalar(pg_db, "SELECT COUNT(*) FROM items") == 0  # nothing written

    for name, cursor in (("nocol", "changed_on"), ("text", "name")):
        plan = plan_file(
            tmp_path,
            mysql_db,
            pg_db,
            name=name,
            step=f'mode = "full+incremental"\ncursor = "{cursor}"\n',
        )
        code, text = run_text(plan, capsys)
        assert code == 2, text
        _one_line_error(text, "steps.copy.cursor", repr(cursor))


def test_cursor_without_index_warns(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    execute(
        mysql_db,
        "CREATE TABLE plain (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL)",
        "CREATE TABLE indexed (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL,"
        " INDEX indexed_updated_ix (updated_at))",
        rows=[
            (f"INSERT INTO {t} VALUES (:i, :u)", [{"i": i, "u": ts(i)} for i in range(5)])
            for t in ("plain", "indexed")
        ],
    )
    plan = plan_file(tmp_path, mysql_db, pg_db)
    warning = "has no index on the source: every catch-up pass reads the whole table"
    for _ in range(2):  # the full copy and a catch-up pass both say it
        code, text = run_text(plan, capsys)
        assert code == 0, text
        lines = [line for line in text.splitlines() if warning in line]
        assert lines, text
        assert all("plain" in line and "updated_at" in line for line in lines), text


# -- 8. SQLite to SQLite, no server -----------------------------------------------------------


def test_sqlite_to_sqlite_full_then_incremental_with_date_cursor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = f"sqlite:///{tmp_path / 'src.db'}"
    dst = f"sqlite:///{tmp_path / 'dst.db'}"
    execute(
        src,
        "CREATE TABLE visits (id INTEGER PRIMARY KEY, day DATE NOT NULL, n INTEGER NOT NULL,"
        " amount DECIMAL(8,2))",
        "CREATE INDEX visits_day_ix ON visits (day)",
        "CREATE TABLE log (id INTEGER PRIMARY KEY, at DATETIME NOT NULL, msg TEXT)",
        "CREATE INDEX log_at_ix ON log (at)",
        rows=[
            (
                "INSERT INTO visits VALUES (:i, :d, :n, :a)",
                [
                    {
                        "i": i,
                        "d": (dt.date(2026, 3, 1) + dt.timedelta(days=i // 10)).isoformat(),
                        "n": i,
                        "a": f"{i}.25",
                    }
                    for i in range(1, 101)
                ],
            ),
            (
                "INSERT INTO log VALUES (:i, :t, :m)",
                [{"i": i, "t": ts(i), "m": f"m{i}"} for i in range(1, 51)],
            ),
        ],
    )
    plan = plan_file(
        tmp_path,
        src,
        dst,
        chunk_rows=25,
        workers=1,  # two tables merging into one SQLite file at once: see the next test
        step='mode = "full+incremental"\ndeletes = "detect"\n',
        extra='[steps.overrides.visits]\ncursor = "day"\n[steps.overrides.log]\ncursor = "at"\n',
    )
    assert_ok(*run_json(plan, capsys))
    last_day = (dt.date(2026, 3, 1) + dt.timedelta(days=10)).isoformat()  # the watermark
    execute(
        src,
        f"UPDATE visits SET n = -1 WHERE day = '{last_day}'",  # same day: the overlap's day
        "INSERT INTO visits VALUES (101, '2026-03-12', 101, '0.01')",
        "DELETE FROM visits WHERE id IN (1, 55)",
        f"INSERT INTO log VALUES (51, '{ts(60)}', 'new')",
        f"UPDATE log SET msg = 'changed', at = '{ts(61)}' WHERE id = 3",
        "DELETE FROM log WHERE id = 50",
    )
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    visits, log = catch_up(result, "visits"), catch_up(result, "log")
    assert (visits["changed"], visits["deleted"]) == (2, 2), visits  # row 100 and row 101
    assert visits["watermark"] == "2026-03-12"
    assert (log["changed"], log["deleted"]) == (2, 1), log
    assert_same(
        src,
        dst,
        "visits",
        ["id", "day", "n", "amount"],
        ["int", "date", "int", "decimal:2"],
        src_loose=True,
        dst_loose=True,
    )
    assert_same(
        src,
        dst,
        "log",
        ["id", "at", "msg"],
        ["int", "datetime", "text"],
        src_loose=True,
        dst_loose=True,
    )


@pytest.mark.slow
def test_sqlite_target_merge_waits_for_another_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another connection holds the target file's write lock for a few seconds while a
    catch-up pass runs (as a second worker merging another table does): the pass must wait
    for it (as the full copy's loads do, up to the 120 s busy timeout) and finish."""
    src, dst = tmp_path / "src.db", tmp_path / "dst.db"
    execute(
        f"sqlite:///{src}",
        "CREATE TABLE log (id INTEGER PRIMARY KEY, at DATETIME NOT NULL, msg TEXT)",
        "CREATE INDEX log_at_ix ON log (at)",
        rows=[("INSERT INTO log VALUES (:i, :t, 'm')", [{"i": i, "t": ts(i)} for i in range(9)])],
    )
    plan = plan_file(
        tmp_path,
        f"sqlite:///{src}",
        f"sqlite:///{dst}",
        step=('mode = "full+incremental"\ncursor = "at"\n'),
    )
    assert_ok(*run_json(plan, capsys))
    execute(f"sqlite:///{src}", f"UPDATE log SET msg = 'new', at = '{ts(60)}' WHERE id = 1")
    holder = sqlite3.connect(dst, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    proc = subprocess.Popen(
        [sys.executable, "-m", "migrate.cli", "run", str(plan), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        proc.wait(timeout=5)  # a correct run is still waiting for the lock
    except subprocess.TimeoutExpired:
        pass
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert scalar(f"sqlite:///{dst}", "SELECT msg FROM log WHERE id = 1") == "new"


# -- 9. migrate status ------------------------------------------------------------------------


def test_status_shows_watermark_passes_and_lag(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    execute(
        mysql_db,
        "CREATE TABLE solo (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL, updated_at"
        " DATETIME(6) NOT NULL, INDEX solo_updated_ix (updated_at))",
        rows=[
            (
                "INSERT INTO solo VALUES (:i, :v, :u)",
                [{"i": i, "v": f"s{i}", "u": ts(i)} for i in range(1, 101)],
            )
        ],
    )
    plan = plan_file(
        tmp_path,
        mysql_db,
        pg_db,
        step='mode = "full+incremental"\ncursor = "updated_at"\ndeletes = "detect"\n',
    )
    assert_ok(*run_json(plan, capsys))
    c = status_json(plan, capsys)["solo"]["catch_up"]
    assert (c["kind"], c["cursor"], c["position"], c["passes"]) == (
        "time",
        "updated_at",
        ts(100)[:19],
        0,
    )
    execute(
        mysql_db,
        f"UPDATE solo SET v = 'upd', updated_at = '{ts(200)}' WHERE id = 7",
        "DELETE FROM solo WHERE id = 8",
    )
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    c = status_json(plan, capsys)["solo"]["catch_up"]
    assert c["position"] == ts(200)[:19]
    assert c["passes"] == 1
    assert (c["last_changed"], c["last_deleted"]) == (1, 1), c
    assert c["last_rows"] == catch_up(result, "solo")["rows"]
    assert isinstance(c["lag_seconds"], float) and c["lag_seconds"] >= 0, c

    capsys.readouterr()
    assert main(["status", str(plan)]) == 0
    text = capsys.readouterr().out
    line = next((ln for ln in text.splitlines() if "updated_at (time)" in ln), None)
    assert line is not None, text
    assert "solo" in line and ts(200)[:19] in line, line
    assert f"{c['last_rows']:,} read, 1 changed, 1 deleted" in line, line
    assert line.rstrip()[-1] in "smh", line  # the lag column: 3s, 2m, 1.0h


# -- foreign keys, sequences and watermark forms at the cut-over ------------------------------


def test_foreign_keys_and_sequences_wait_for_the_cut_over(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Passes apply tables in parallel, so a child may arrive before its parent: the
    foreign keys come with the cut-over, which also moves the identity counters."""
    execute(
        mysql_db,
        "CREATE TABLE parent (id INT AUTO_INCREMENT PRIMARY KEY, updated_at DATETIME(6)"
        " NOT NULL, INDEX parent_upd (updated_at))",
        "CREATE TABLE child (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT NOT NULL,"
        " updated_at DATETIME(6) NOT NULL, INDEX child_upd (updated_at),"
        " CONSTRAINT child_parent_fk FOREIGN KEY (parent_id) REFERENCES parent (id))",
        rows=[
            ("INSERT INTO parent VALUES (:i, :u)", [{"i": i, "u": ts(i)} for i in range(1, 4)]),
            ("INSERT INTO child VALUES (:i, :i, :u)", [{"i": i, "u": ts(i)} for i in (1, 2)]),
        ],
    )
    plan = plan_file(tmp_path, mysql_db, pg_db, workers=2)
    code, out = run_text(plan, capsys)
    assert code == 0, out
    assert "foreign keys are created by the cut-over run" in out
    fk_sql = (
        "SELECT count(*) FROM information_schema.table_constraints"
        " WHERE constraint_type = 'FOREIGN KEY' AND table_name = 'child'"
    )
    assert scalar(pg_db, fk_sql) == 0
    # many new parents and children referring to them: whichever table's pass runs first
    execute(
        mysql_db,
        rows=[
            (
                "INSERT INTO parent VALUES (:i, :u)",
                [{"i": i, "u": ts(1000 + i)} for i in range(4, 400)],
            ),
            (
                "INSERT INTO child VALUES (:i, :i, :u)",
                [{"i": i, "u": ts(1000 + i)} for i in range(3, 400)],
            ),
        ],
    )
    for _ in range(2):
        code, result = run_json(plan, capsys)
        assert_ok(code, result)
    code, result = run_json(plan, capsys, "--cutover")
    assert_ok(code, result)
    assert scalar(pg_db, fk_sql) == 1
    assert_same(mysql_db, pg_db, "child", ["id", "parent_id"], ["int", "int"])
    # the application's first insert on the target gets a fresh id
    execute(pg_db, f"INSERT INTO parent (updated_at) VALUES ('{ts(5000)}')")
    assert scalar(pg_db, "SELECT max(id) FROM parent") == 400


def test_timestamp_cursor_with_start_and_target_watermarks(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A MySQL TIMESTAMP cursor (naive UTC in the session) against a start with a time
    zone and a PostgreSQL target whose highest value comes back time-zone aware."""
    execute(
        mysql_db,
        "CREATE TABLE ev (id INT PRIMARY KEY, ts TIMESTAMP(6) NOT NULL, INDEX ev_ts (ts))",
        rows=[("INSERT INTO ev VALUES (:i, :t)", [{"i": i, "t": ts(i * 60)} for i in range(10)])],
    )
    execute(pg_db, "CREATE TABLE ev (id integer PRIMARY KEY, ts timestamptz(6) NOT NULL)")
    execute(pg_db, f"INSERT INTO ev VALUES (0, '{ts(0)}+00')")
    for start, expected_rows in ((None, 10), ("2026-03-01T20:04:30+08:00", 5)):
        execute(pg_db, "DELETE FROM ev WHERE id > 0")
        step = 'mode = "incremental"\ncursor = "ts"\noverlap = "0s"\n'
        if start:
            step += f'start = "{start}"\n'
        plan = plan_file(tmp_path, mysql_db, pg_db, step=step, name=f"tz{expected_rows}")
        code, result = run_json(plan, capsys)
        assert_ok(code, result)
        # +08:00 20:04:30 is 12:04:30 UTC: ids 5..9 are later (ts(300) = 12:05:00)
        assert catch_up(result, "ev")["rows"] == (9 if start is None else expected_rows)
        code, result = run_json(plan, capsys)  # and a second pass compares watermarks
        assert_ok(code, result)
    ids = [r[0] for r in read_rows(pg_db, "ev", ["id"], order_by=["id"])]
    assert ids == [0, 5, 6, 7, 8, 9]  # the rows from the start on, and the one loaded


def test_changing_the_cursor_reads_every_row_again(
    tmp_path: Path, mysql_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dst = f"sqlite:///{tmp_path / 'dst.db'}"
    execute(
        mysql_db,
        "CREATE TABLE ev (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL)",
        rows=[("INSERT INTO ev VALUES (:i, :u)", [{"i": i, "u": ts(i)} for i in range(1, 31)])],
    )
    plan = plan_file(tmp_path, mysql_db, dst)
    assert_ok(*run_json(plan, capsys))
    plan = plan_file(tmp_path, mysql_db, dst, step='mode = "full+incremental"\ncursor = "id"\n')
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    assert catch_up(result, "ev")["rows"] == 30  # the time watermark means nothing for id
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    assert catch_up(result, "ev")["rows"] == 30  # id > 30 - 1000: the default overlap
    code, out = run_text(plan, capsys, "--dry-run")
    assert code == 0, out


def test_delete_detection_with_keys_near_two_to_the_63(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite's SUM overflows past 2**63: the fingerprint sums keys modulo a prime."""
    src = tmp_path / "src.db"
    db = sqlite3.connect(src)
    db.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    base = 2**62
    db.executemany("INSERT INTO big VALUES (?, ?)", [(base + i * 7, f"v{i}") for i in range(50)])
    db.commit()
    plan = plan_file(
        tmp_path,
        f"sqlite:///{src}",
        f"sqlite:///{tmp_path / 'dst.db'}",
        chunk_rows=10,
        step='mode = "full+incremental"\ncursor = "id"\ndeletes = "detect"\n',
    )
    assert_ok(*run_json(plan, capsys))
    db.execute("DELETE FROM big WHERE id IN (?, ?)", (base, base + 7 * 33))
    db.commit()
    db.close()
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    assert catch_up(result, "big")["deleted"] == 2
    dst = sqlite3.connect(tmp_path / "dst.db")
    assert dst.execute("SELECT count(*) FROM big").fetchone() == (48,)
    dst.close()


def test_a_second_cut_over_does_not_add_an_unnamed_foreign_key_again(
    tmp_path: Path, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src.db"
    db = sqlite3.connect(src)
    db.executescript(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id));"
        "INSERT INTO parent VALUES (1), (2); INSERT INTO child VALUES (1, 1), (2, 2);"
    )
    db.close()
    plan = plan_file(
        tmp_path, f"sqlite:///{src}", pg_db, step='mode = "full+incremental"\ncursor = "id"\n'
    )
    assert_ok(*run_json(plan, capsys))
    fk_sql = (
        "SELECT count(*) FROM information_schema.table_constraints"
        " WHERE constraint_type = 'FOREIGN KEY' AND table_name = 'child'"
    )
    for _ in range(2):
        assert_ok(*run_json(plan, capsys, "--cutover"))
        assert scalar(pg_db, fk_sql) == 1


@pytest.mark.parametrize("side", ["sqlite", "mysql2"])
def test_a_unique_value_freed_by_a_delete_and_reused(
    tmp_path: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str], side: str
) -> None:
    """Row 3 is deleted and a new row takes its e-mail: with delete detection the pass
    converges; ignoring deletes, the stale row blocks the new one and the pass says so
    (it never merges the new row into the stale one)."""
    if side == "sqlite":
        src, dst = f"sqlite:///{tmp_path / 'src.db'}", f"sqlite:///{tmp_path / 'dst.db'}"
    else:
        src, dst = request.getfixturevalue("mysql_db"), request.getfixturevalue("mysql2_db")
    execute(
        src,
        "CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(40) NOT NULL,"
        " updated_at DATETIME NOT NULL)",
        "CREATE UNIQUE INDEX users_email_ux ON users (email)",
        rows=[
            (
                "INSERT INTO users VALUES (:i, :e, :u)",
                [{"i": i, "e": f"u{i}@x", "u": ts(i)} for i in range(1, 6)],
            )
        ],
    )
    for deletes, name in (("detect", "with"), ("ignore", "without")):
        step = f'mode = "full+incremental"\ncursor = "updated_at"\ndeletes = "{deletes}"\n'
        if side == "sqlite":
            dst = f"sqlite:///{tmp_path / f'dst-{name}.db'}"
        else:
            execute(dst, "DROP TABLE IF EXISTS users")
        plan = plan_file(tmp_path, src, dst, name=name, step=step)
        assert_ok(*run_json(plan, capsys))
        if deletes == "detect":
            execute(src, "DELETE FROM users WHERE id = 3")
            execute(src, f"INSERT INTO users VALUES (11, 'u3@x', '{ts(100)}')")
            code, result = run_json(plan, capsys)
            assert_ok(code, result)
            assert (catch_up(result, "users")["deleted"], catch_up(result, "users")["changed"]) == (
                1,
                1,
            )
            assert_same(src, dst, "users", ["id", "email"], ["int", "text"])
        else:
            execute(src, "DELETE FROM users WHERE id = 11")
            execute(src, f"INSERT INTO users VALUES (12, 'u3@x', '{ts(200)}')")
            code, result = run_json(plan, capsys)
            assert code == 1
            assert "holds a value of a unique index another row now has" in json.dumps(result)
            rows = read_rows(dst, "users", ["id", "email"], order_by=["id"])
            assert (11, "u3@x") in [tuple(r) for r in rows]  # the stale row, left as it was
            assert 12 not in [r[0] for r in rows]


def test_delete_detection_with_keys_spanning_more_than_two_to_the_62(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bucket numbers would overflow: the key-range walk finds the deletes instead."""
    src = tmp_path / "src.db"
    db = sqlite3.connect(src)
    db.execute("CREATE TABLE wide (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    keys = [-(2**63), -(2**62), -5, 0, 7, 2**40, 2**62, 2**63 - 1]
    db.executemany("INSERT INTO wide VALUES (?, ?)", [(k, str(k)) for k in keys])
    db.commit()
    plan = plan_file(
        tmp_path,
        f"sqlite:///{src}",
        f"sqlite:///{tmp_path / 'dst.db'}",
        chunk_rows=3,
        step='mode = "full+incremental"\ncursor = "id"\ndeletes = "detect"\n',
    )
    assert_ok(*run_json(plan, capsys))
    db.execute("DELETE FROM wide WHERE id IN (?, ?, ?)", (-(2**63), 7, 2**63 - 1))
    db.commit()
    db.close()
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    assert catch_up(result, "wide")["deleted"] == 3
    dst = sqlite3.connect(tmp_path / "dst.db")
    left = [r[0] for r in dst.execute("SELECT id FROM wide ORDER BY id")]
    dst.close()
    assert left == [-(2**62), -5, 0, 2**40, 2**62]
