"""``mode = "cdc"`` end to end on the real servers: a MariaDB source with a ROW binlog
(33306) copied to PostgreSQL and to the second MariaDB (33307), through ``migrate run``.

What is checked: the full copy from consistent snapshots while a writer process keeps
changing the source, catch-up passes from the binlog (inserts, updates, primary-key
changes, deletes; a composite key; a table with many column types), the cut-over, writes
made during the full copy, SIGKILL inside a pass (``MIGRATE_FAILPOINT``), replaying events
that were already applied, a position the server no longer has, ``migrate status``, and
the errors a source that cannot feed change capture gives.

Both sides are read with SQLAlchemy Core and compared value by value after normalising
each value per column kind (tests/edge_data.py). No assertion depends on the wall clock.

This file is also the writer process: ``python tests/test_cdc.py URL STOP PROGRESS SEED``
runs :class:`Workload` transactions against the source until the file STOP exists
(tests/writer.py drives one table without key changes; these tests need three tables
and primary-key changes).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa
from edge_data import (
    EDGE_KINDS,
    EDGE_NAMES,
    SPECIAL,
    assert_same_rows,
    create_edge_table,
    long_text,
    normalise_rows,
    read_rows,
    run_cli,
    run_json,
    run_text,
    table_results,
    write_plan,
)
from edge_data import state_file as state_of
from sqlalchemy.pool import NullPool

from connectors.sql.mysql_binlog import BinlogPosition
from migrate.cli import main
from migrate.incremental import earlier_position

THIS = Path(__file__).resolve()

ORDERS_DDL = """CREATE TABLE orders (
    id INT NOT NULL PRIMARY KEY,
    qty INT NOT NULL DEFAULT 0,
    name VARCHAR(60) NOT NULL,
    amount DECIMAL(12,2) NULL,
    note TEXT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
LINES_DDL = """CREATE TABLE `lines` (
    order_id INT NOT NULL,
    line_no INT NOT NULL,
    qty INT NOT NULL,
    price DECIMAL(10,2) NULL,
    PRIMARY KEY (order_id, line_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""

#: table -> (columns, kinds for edge_data.normalise, number of key columns)
TABLES: dict[str, tuple[list[str], list[str], int]] = {
    "orders": (
        ["id", "qty", "name", "amount", "note"],
        ["int", "int", "text", "decimal:2", "text"],
        1,
    ),
    "lines": (["order_id", "line_no", "qty", "price"], ["int", "int", "int", "decimal:2"], 2),
    "edge": (EDGE_NAMES, [EDGE_KINDS[c] for c in EDGE_NAMES], 1),
}
FIRST_EDGE_EXTRA = 1000  # seeded edge rows the workload may re-key and delete start here
EDGE_BUMP = "n = IF(n = 2147483647, -2147483648, n + 1)"  # edge.n is an INT counter


# -- the workload (run by the writer process, and in-process for fixed bursts) ------------------


def mysql_connect(url: str) -> pymysql.connections.Connection:
    u = sa.make_url(url)
    return pymysql.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 3306,
        user=u.username,
        password=u.password or "",
        database=u.database,
        charset="utf8mb4",
        autocommit=False,
    )


def edge_values(rng: random.Random) -> dict[str, Any]:
    """Random values for the edge table's non-key columns (NULL now and then)."""

    def maybe(value: Any) -> Any:
        return None if rng.random() < 0.15 else value

    return {
        "s": maybe(rng.choice(["", SPECIAL, f"emoji 😀 中文 {rng.randrange(10**6)}", "\\N"])),
        "d": maybe(Decimal(rng.randrange(-(10**20), 10**20)).scaleb(-10)),
        "f": maybe(rng.choice([rng.uniform(-1e6, 1e6), 1 / 3, 1e-300, -1.7976931348623157e308])),
        "ts": maybe(
            dt.datetime(1000, 1, 1)
            + dt.timedelta(microseconds=rng.randrange(8999 * 365 * 86400 * 10**6))
        ),
        "dd": maybe(dt.date(1000, 1, 1) + dt.timedelta(days=rng.randrange(8999 * 365))),
        "big": maybe(long_text(rng.randrange(1, 4000))),
        "b": maybe(rng.randbytes(rng.randrange(0, 2000))),
        "j": maybe(json.dumps({"k": rng.randrange(100), "t": "中文😀", "l": [1, 2.5, None, True]})),
        "n": rng.randrange(-(2**31), 2**31),
    }


class Workload:
    """Small transactions on orders, lines and edge: inserts, updates (a counter column
    ``qty`` / ``n`` goes up by one each time), primary-key changes, deletes, and mixed
    transactions that touch one key several times. New keys come from counters far above
    the seeded ones, so a key change never collides. The caller commits."""

    def __init__(self, conn: pymysql.connections.Connection, seed: int) -> None:
        self.conn, self.rng = conn, random.Random(seed)
        self.cur = conn.cursor()
        self.done: Counter[str] = Counter()
        self.next_order, self.next_line, self.next_edge = 1_000_000, 1_000_000, 100_000

    def _new(self, counter: str) -> int:
        value = getattr(self, counter)
        setattr(self, counter, value + 1)
        return value

    def _one(self, sql: str, args: tuple = ()) -> tuple | None:
        self.cur.execute(sql, args)
        return self.cur.fetchone()

    def pick_order(self) -> int | None:
        lo, hi = self._one("SELECT MIN(id), MAX(id) FROM orders") or (None, None)
        if lo is None:
            return None
        row = self._one(
            "SELECT id FROM orders WHERE id >= %s ORDER BY id LIMIT 1", (self.rng.randint(lo, hi),)
        )
        return row[0] if row else None

    def pick_line(self) -> tuple[int, int] | None:
        lo, hi = self._one("SELECT MIN(order_id), MAX(order_id) FROM `lines`") or (None, None)
        if lo is None:
            return None
        row = self._one(
            "SELECT order_id, line_no FROM `lines` WHERE order_id >= %s"
            " ORDER BY order_id, line_no LIMIT 1",
            (self.rng.randint(lo, hi),),
        )
        return (row[0], row[1]) if row else None

    def pick_edge(self, lowest: int) -> int | None:
        lo, hi = self._one("SELECT MIN(id), MAX(id) FROM edge WHERE id >= %s", (lowest,)) or (
            None,
            None,
        )
        if lo is None:
            return None
        row = self._one(
            "SELECT id FROM edge WHERE id >= %s ORDER BY id LIMIT 1", (self.rng.randint(lo, hi),)
        )
        return row[0] if row else None

    def _insert_order(self, key: int) -> None:
        rng = self.rng
        self.cur.execute(
            "INSERT INTO orders (id, qty, name, amount, note) VALUES (%s, %s, %s, %s, %s)",
            (
                key,
                rng.randrange(100),
                f"新 {rng.randrange(10**6)}",
                f"{rng.randrange(10**6)}.{rng.randrange(100):02d}",
                None if rng.random() < 0.3 else f"备注 {rng.randrange(10**6)} tab\t'q'",
            ),
        )

    def _insert_edge(self, key: int) -> None:
        values = {"id": key, **edge_values(self.rng)}
        cols = ", ".join(values)
        self.cur.execute(
            f"INSERT INTO edge ({cols}) VALUES ({', '.join(['%s'] * len(values))})",
            tuple(values.values()),
        )

    # one operation each; its name is counted in ``done`` when it changed a row
    def order_insert(self) -> int:
        self._insert_order(self._new("next_order"))
        return 1

    def order_bump(self) -> int:
        key = self.pick_order()
        self.cur.execute(
            "UPDATE orders SET qty = qty + 1, note = %s WHERE id = %s",
            (f"改 {self.rng.randrange(10**6)}", key),
        )
        return self.cur.rowcount

    def order_rekey(self) -> int:
        key = self.pick_order()
        self.cur.execute(
            "UPDATE orders SET id = %s, qty = qty + 1 WHERE id = %s", (self._new("next_order"), key)
        )
        return self.cur.rowcount

    def order_delete(self) -> int:
        self.cur.execute("DELETE FROM orders WHERE id = %s", (self.pick_order(),))
        return self.cur.rowcount

    def line_insert(self) -> int:
        self.cur.execute(
            "INSERT INTO `lines` (order_id, line_no, qty, price) VALUES (%s, %s, %s, %s)",
            (
                self.rng.randrange(1, 500),
                self._new("next_line"),
                self.rng.randrange(50),
                f"{self.rng.randrange(10**4)}.{self.rng.randrange(100):02d}",
            ),
        )
        return 1

    def line_bump(self) -> int:
        key = self.pick_line() or (0, 0)
        self.cur.execute(
            "UPDATE `lines` SET qty = qty + 1 WHERE order_id = %s AND line_no = %s", key
        )
        return self.cur.rowcount

    def line_rekey(self) -> int:  # both key columns change
        key = self.pick_line() or (0, 0)
        self.cur.execute(
            "UPDATE `lines` SET order_id = order_id + 1, line_no = %s, qty = qty + 1"
            " WHERE order_id = %s AND line_no = %s",
            (self._new("next_line"), *key),
        )
        return self.cur.rowcount

    def line_delete(self) -> int:
        key = self.pick_line() or (0, 0)
        self.cur.execute("DELETE FROM `lines` WHERE order_id = %s AND line_no = %s", key)
        return self.cur.rowcount

    def edge_insert(self) -> int:
        self._insert_edge(self._new("next_edge"))
        return 1

    def edge_bump(self) -> int:  # any row, the extreme seeded ones too: only n changes
        self.cur.execute(f"UPDATE edge SET {EDGE_BUMP} WHERE id = %s", (self.pick_edge(-(2**31)),))
        return self.cur.rowcount

    def edge_update(self) -> int:
        values = edge_values(self.rng)
        sets = ", ".join(f"{c} = %s" for c in values if c != "n")
        self.cur.execute(
            f"UPDATE edge SET {sets}, {EDGE_BUMP} WHERE id = %s",
            (*(v for c, v in values.items() if c != "n"), self.pick_edge(FIRST_EDGE_EXTRA)),
        )
        return self.cur.rowcount

    def edge_rekey(self) -> int:
        self.cur.execute(
            "UPDATE edge SET id = %s WHERE id = %s",
            (self._new("next_edge"), self.pick_edge(FIRST_EDGE_EXTRA)),
        )
        return self.cur.rowcount

    def edge_delete(self) -> int:
        self.cur.execute("DELETE FROM edge WHERE id = %s", (self.pick_edge(FIRST_EDGE_EXTRA),))
        return self.cur.rowcount

    def mixed(self) -> int:
        """One transaction touching keys several times: insert, update twice, re-key and
        back, insert-then-delete, delete-then-insert of one key, in three tables."""
        x = self._new("next_order")
        self._insert_order(x)
        for n in (1, 2):
            self.cur.execute(
                "INSERT INTO `lines` (order_id, line_no, qty, price) VALUES (%s, %s, 0, NULL)",
                (x, n),
            )
        self.cur.execute("UPDATE orders SET qty = qty + 1 WHERE id = %s", (x,))
        self.cur.execute("UPDATE orders SET qty = qty + 1 WHERE id = %s", (x,))
        y = self._new("next_order")
        self.cur.execute("UPDATE orders SET id = %s WHERE id = %s", (y, x))
        self.cur.execute("UPDATE orders SET id = %s WHERE id = %s", (x, y))
        self.cur.execute("UPDATE `lines` SET line_no = 3 WHERE order_id = %s AND line_no = 2", (x,))
        e = self._new("next_edge")
        self._insert_edge(e)
        self.cur.execute("DELETE FROM edge WHERE id = %s", (e,))
        again = self.pick_order()
        if again is not None and again != x:
            self.cur.execute("DELETE FROM orders WHERE id = %s", (again,))
            self._insert_order(again)
        return 1

    OPS = (
        "order_insert",
        "order_bump",
        "order_rekey",
        "order_delete",
        "line_insert",
        "line_bump",
        "line_rekey",
        "line_delete",
        "edge_insert",
        "edge_bump",
        "edge_update",
        "edge_rekey",
        "edge_delete",
        "mixed",
    )

    def step(self) -> None:
        """One random operation, committed."""
        name = self.rng.choice(self.OPS)
        if getattr(self, name)():
            self.done[name] += 1
        self.conn.commit()


def writer_main(url: str, stop: Path, progress: Path, seed: int) -> None:
    """The writer process: workload transactions until ``stop`` exists; the number done so
    far in ``progress`` (replaced atomically); what it did, as JSON, on stdout."""
    conn = mysql_connect(url)
    work = Workload(conn, seed)
    ops = 0
    while not stop.exists():
        work.step()
        ops += 1
        if ops % 5 == 0:
            tmp = progress.with_suffix(".tmp")
            tmp.write_text(str(ops))
            os.replace(tmp, progress)
        time.sleep(0.002)
    conn.close()
    print(json.dumps(work.done))


class Writer:
    """The writer process, started and stopped by a test."""

    def __init__(self, url: str, tmp_path: Path, seed: int) -> None:
        self.stop_file, self.progress = tmp_path / "writer.stop", tmp_path / "writer.progress"
        self.proc = subprocess.Popen(
            [sys.executable, str(THIS), url, str(self.stop_file), str(self.progress), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=THIS.parent.parent,
        )
        self.summary: dict[str, int] = {}

    def ops(self) -> int:
        return int(self.progress.read_text()) if self.progress.exists() else 0

    def wait(self, more: int) -> int:
        """Wait until the writer has committed ``more`` operations beyond the current count."""
        target = self.ops() + more
        deadline = time.monotonic() + 60
        while (done := self.ops()) < target:
            assert self.proc.poll() is None, f"the writer died: {self.proc.communicate()}"
            assert time.monotonic() < deadline, "the writer made no progress"
            time.sleep(0.01)
        return done

    def finish(self) -> dict[str, int]:
        if self.proc.poll() is None:
            self.stop_file.touch()
        out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        self.summary = json.loads(out)
        return self.summary


@pytest.fixture
def writers() -> Iterator[list[Writer]]:
    started: list[Writer] = []
    yield started
    for w in started:  # a failed test still stops its writer
        if w.proc.poll() is None:
            w.stop_file.touch()
            try:
                w.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.communicate()


# -- helpers ----------------------------------------------------------------------------------


def execute(url: str, *statements: str, rows: tuple[tuple[str, list[dict]], ...] = ()) -> None:
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
            for sql, params in rows:
                if params:
                    conn.execute(sa.text(sql), params)
    finally:
        eng.dispose()


def seed(url: str, orders: int = 300, lines_per_order: int = 2, edge: bool = True) -> None:
    """orders 1..N, lines (order, 1..k) for the first 1,000 orders, and the edge table
    with 30 more random rows."""
    rng = random.Random(orders)
    execute(
        url,
        ORDERS_DDL,
        LINES_DDL,
        rows=(
            (
                "INSERT INTO orders VALUES (:id, :qty, :name, :amount, :note)",
                [
                    {
                        "id": i,
                        "qty": 0,
                        "name": f"订单 {i}",
                        "amount": f"{i}.{i % 100:02d}",
                        "note": None if i % 3 else f"note {i}",
                    }
                    for i in range(1, orders + 1)
                ],
            ),
            (
                "INSERT INTO `lines` VALUES (:o, :n, :q, :p)",
                [
                    {"o": i, "n": n, "q": 0, "p": f"{n}.50"}
                    for i in range(1, min(orders, 1000) + 1)
                    for n in range(1, lines_per_order + 1)
                ],
            ),
        ),
    )
    if edge:
        create_edge_table("mysql", url)
        extra = [{"id": FIRST_EDGE_EXTRA + i, **edge_values(rng)} for i in range(30)]
        cols = list(extra[0])
        execute(
            url,
            rows=(
                (
                    f"INSERT INTO edge ({', '.join(cols)})"
                    f" VALUES ({', '.join(':' + c for c in cols)})",
                    extra,
                ),
            ),
        )


def cdc_plan(
    tmp_path: Path, src: str, dst: str, *, chunk_rows: int = 100, name: str = "cdc"
) -> Path:
    return write_plan(tmp_path, src, dst, chunk_rows=chunk_rows, name=name, workers=2, mode="cdc")


def assert_done(code: int, result: dict) -> None:
    assert code == 0, json.dumps(result, indent=1, default=str)[:4000]
    assert result["status"] == "done", json.dumps(result, indent=1, default=str)[:4000]


def stream_position(state: Path) -> str:
    db = sqlite3.connect(state)
    try:
        row = db.execute("SELECT kind, position FROM streams WHERE step = 'copy'").fetchone()
    finally:
        db.close()
    assert row is not None and row[0] == "binlog", row
    return str(row[1])


def set_stream_position(state: Path, position: str) -> None:
    db = sqlite3.connect(state)
    try:
        db.execute("UPDATE streams SET position = ? WHERE step = 'copy'", (position,))
        db.commit()
    finally:
        db.close()


def pos(text: str) -> BinlogPosition:
    return BinlogPosition.decode(text)


def snapshot(url: str, tables: tuple[str, ...]) -> dict[str, list[tuple]]:
    """Every row of ``tables``, normalised, in key order."""
    out = {}
    for table in tables:
        columns, kinds, key_len = TABLES[table]
        out[table] = normalise_rows(read_rows(url, table, columns, columns[:key_len]), kinds)
    return out


def assert_same(src: str, dst: str, tables: tuple[str, ...] = tuple(TABLES)) -> None:
    """Source and target hold the same rows, value by value, and no key twice."""
    for table in tables:
        columns, kinds, key_len = TABLES[table]
        source = read_rows(src, table, columns, columns[:key_len])
        target = read_rows(dst, table, columns, columns[:key_len])
        assert len(target) == len(source), (table, len(source), len(target))
        assert_same_rows(source, target, columns, kinds, key_len)


def catch_ups(result: dict, tables: tuple[str, ...]) -> dict[str, dict]:
    found = table_results(result)
    out = {}
    for table in tables:
        pr = found[table]["catch_up"]
        assert pr is not None, f"{table}: no catch-up pass: {json.dumps(result)[:3000]}"
        out[table] = pr
    return out


def done_chunks(state: Path, table: str) -> int:
    if not state.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute(
                "SELECT COUNT(*) FROM chunks WHERE tbl = ? AND status = 'done'", (table,)
            ).fetchone()[0]
        finally:
            db.close()
    except sqlite3.DatabaseError:  # not created yet, or being written
        return 0


def one_line_error(text: str, *parts: str) -> str:
    """The output holds a line with every part; no traceback."""
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if all(p in line for p in parts)]
    assert lines, f"no line holds {parts}:\n{text}"
    return lines[0]


TARGETS = {"pg": "pg_db", "mysql2": "mysql2_db"}


def target(side: str, request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(TARGETS[side]))


# -- 1. a writer process through the full copy, three passes and the cut-over ------------------


@pytest.mark.slow
@pytest.mark.parametrize("side", ["pg", "mysql2"])
def test_live_writer_full_copy_passes_and_cutover(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    writers: list[Writer],
    mysql_db: str,
    side: str,
) -> None:
    dst = target(side, request)
    seed(mysql_db)
    plan = cdc_plan(tmp_path, mysql_db, dst)
    writer = Writer(mysql_db, tmp_path, seed=11)
    writers.append(writer)
    writer.wait(20)
    code, result = run_json(plan, capsys)  # the full copy, from snapshots
    assert_done(code, result)
    assert all(t["catch_up"] is None for t in table_results(result).values()), result
    passes = []
    for _ in range(3):
        writer.wait(60)  # the source changed since the last run
        code, result = run_json(plan, capsys)
        assert_done(code, result)
        passes.append(catch_ups(result, tuple(TABLES)))
    done = writer.finish()
    assert set(done) == set(Workload.OPS), f"the workload missed some operations: {done}"
    code, text = run_text(plan, capsys, "--cutover")
    assert code == 0, text
    assert "cut-over acceptance" in text
    assert_same(mysql_db, dst)
    for table in TABLES:  # the passes did the work, not only the cut-over
        assert sum(p[table]["changed"] for p in passes) > 0, (table, passes)
        assert sum(p[table]["deleted"] for p in passes) > 0, (table, passes)
    capsys.readouterr()
    assert main(["status", str(plan), "--json"]) == 0
    status = {t["table"]: t["catch_up"] for t in json.loads(capsys.readouterr().out)["tables"]}
    assert {t: s["passes"] for t, s in status.items()} == {t: len(passes) + 1 for t in TABLES}


# -- 2. writes made while the full copy runs -------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("side", ["pg"])  # mysql2: the first run of the live-writer test
def test_writes_during_the_full_copy_are_applied_by_the_next_pass(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    writers: list[Writer],
    mysql_db: str,
    side: str,
) -> None:
    dst = target(side, request)
    seed(mysql_db, orders=4_000, lines_per_order=1)
    plan = cdc_plan(tmp_path, mysql_db, dst, chunk_rows=100)
    state = state_of(plan)
    writer = Writer(mysql_db, tmp_path, seed=22)
    writers.append(writer)
    writer.wait(10)
    proc = subprocess.Popen(
        [sys.executable, "-m", "migrate.cli", "run", str(plan), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=THIS.parent.parent,
    )
    deadline = time.monotonic() + 120
    while done_chunks(state, "orders") < 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "the copy made no progress"
        time.sleep(0.005)
    ops_mid_copy = writer.ops()  # orders' snapshot is older than this
    out, err = proc.communicate(timeout=300)
    ops_after_copy = writer.ops()
    assert proc.returncode == 0, out + err
    assert ops_after_copy > ops_mid_copy, "no write overlapped the copy: the test needs more rows"
    writer.finish()
    assert snapshot(dst, tuple(TABLES)) != snapshot(mysql_db, tuple(TABLES))

    db = sqlite3.connect(state)
    marks = db.execute("SELECT tbl, kind, value FROM watermarks WHERE step = 'copy'").fetchall()
    db.close()
    assert {m[0] for m in marks} == set(TABLES) and {m[1] for m in marks} == {"binlog"}, marks
    # the step's stream starts at the oldest of the tables' snapshots
    assert stream_position(state) == min((m[2] for m in marks), key=pos)

    code, result = run_json(plan, capsys)
    assert_done(code, result)
    assert sum(p["rows"] for p in catch_ups(result, tuple(TABLES)).values()) > 0
    assert_same(mysql_db, dst)


# -- 3. SIGKILL inside a pass ----------------------------------------------------------------

BUMPS, BUMP_ROWS = 22, 500  # 11,000 row changes: three batches (about 5,000 each)


def burst(url: str) -> None:
    """Many transactions: each adds one to ``qty`` of 500 orders; between them, key changes,
    inserts and deletes in both tables."""
    conn = mysql_connect(url)
    cur = conn.cursor()
    try:
        for i in range(BUMPS):
            cur.execute(
                "UPDATE orders SET qty = qty + 1 WHERE id BETWEEN %s AND %s", (1 + i, BUMP_ROWS + i)
            )
            conn.commit()
            cur.execute("UPDATE orders SET id = %s WHERE id = %s", (5000 + i, 560 + i))
            cur.execute("DELETE FROM orders WHERE id = %s", (530 + i,))
            cur.execute(
                "INSERT INTO orders (id, qty, name) VALUES (%s, %s, %s)", (7000 + i, i, f"n{i}")
            )
            cur.execute(
                "UPDATE `lines` SET qty = qty + 1, line_no = line_no + 10 WHERE order_id = %s",
                (1 + i,),
            )
            cur.execute("DELETE FROM `lines` WHERE order_id = %s", (400 + i,))
            conn.commit()
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "side"),
    [("before-checkpoint:1", "pg"), ("before-checkpoint:2", "mysql2"), ("after-merge:1", "pg")],
)
def test_sigkill_inside_a_pass_then_rerun_applies_each_change_once(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    mysql_db: str,
    point: str,
    side: str,
) -> None:
    dst = target(side, request)
    tables = ("orders", "lines")
    seed(mysql_db, orders=600, edge=False)
    plan = cdc_plan(tmp_path, mysql_db, dst, chunk_rows=1000)
    state = state_of(plan)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    before_pass = snapshot(dst, tables)
    start = stream_position(state)
    burst(mysql_db)

    code, out, err = run_cli(plan, "--quiet", env={"MIGRATE_FAILPOINT": point})
    assert code == -signal.SIGKILL, (code, out, err)
    killed_at = stream_position(state)
    on_target = snapshot(dst, tables)
    assert on_target != before_pass, "the kill came before any change was applied"
    assert on_target != snapshot(mysql_db, tables), "the kill came after the last batch"
    if point == "before-checkpoint:2":  # batch 1 was checkpointed, batch 2 was not
        assert pos(start) < pos(killed_at), (start, killed_at)
    else:  # the batch applied (in part) was never checkpointed
        assert killed_at == start

    code, result = run_json(plan, capsys)
    assert_done(code, result)
    assert pos(killed_at) < pos(stream_position(state))
    # each qty is the source's: a change applied twice or skipped would show here
    assert_same(mysql_db, dst, tables)


@pytest.mark.slow
def test_killed_full_copy_resumes_and_keeps_the_first_snapshot_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str
) -> None:
    """The resumed copy reads the rest from a newer snapshot; the step's stream stays at
    the first snapshot's position, so changes made since then to the rows copied before
    the kill are caught up too. (The changes keep out of the cut-off chunk: see
    test_resumed_copy_clears_the_cut_off_chunk_of_rows_the_source_no_longer_has.)"""
    seed(mysql_db, orders=1500, lines_per_order=0, edge=False)
    plan = cdc_plan(tmp_path, mysql_db, pg_db, chunk_rows=300)
    state = state_of(plan)
    code, out, err = run_cli(plan, "--quiet", env={"MIGRATE_FAILPOINT": "after-load:3"})
    assert code == -signal.SIGKILL, (code, out, err)  # orders 1..900 are on the target
    first = stream_position(state)
    execute(  # rows of the finished chunks 1 and 2, and new ones
        mysql_db,
        "UPDATE orders SET qty = qty + 1 WHERE id <= 600",
        "DELETE FROM orders WHERE id IN (10, 400)",
        "UPDATE orders SET id = 9000 WHERE id = 20",
        "INSERT INTO orders (id, qty, name) VALUES (9500, 1, 'new')",
    )
    code, result = run_json(plan, capsys)  # finishes the copy; no pass yet
    assert_done(code, result)
    assert all(t["catch_up"] is None for t in table_results(result).values()), result
    assert stream_position(state) == first
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    catch_ups(result, ("orders",))
    assert_same(mysql_db, pg_db, ("orders", "lines"))


# -- 4. replaying events already applied ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("side", ["pg", "mysql2"])
def test_replaying_applied_events_changes_nothing(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    mysql_url: str,
    mysql_db: str,
    side: str,
) -> None:
    """The position is set back to where the last pass started: the same events again
    (one batch) leave the target as it was. The binlog is rotated (FLUSH BINARY LOGS,
    harmless to other tests) between the recorded position and the changes, so the pass
    also reads across two binlog files."""
    dst = target(side, request)
    seed(mysql_db, orders=60)
    plan = cdc_plan(tmp_path, mysql_db, dst)
    state = state_of(plan)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    start = stream_position(state)
    execute(mysql_url, "FLUSH BINARY LOGS")
    conn = mysql_connect(mysql_db)
    try:
        work = Workload(conn, seed=44)
        for _ in range(50):
            work.step()
    finally:
        conn.close()
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    first = catch_ups(result, tuple(TABLES))
    assert all(first[t]["changed"] > 0 for t in TABLES), first
    end = stream_position(state)
    assert pos(end).file != pos(start).file, (start, end)
    assert_same(mysql_db, dst)
    applied = snapshot(dst, tuple(TABLES))

    set_stream_position(state, start)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    replay = catch_ups(result, tuple(TABLES))
    # the same events, read again: every row was already there, value for value
    assert {t: r["rows"] for t, r in replay.items()} == {t: r["rows"] for t, r in first.items()}
    assert {t: r["changed"] for t, r in replay.items()} == {t: 0 for t in TABLES}, replay
    assert pos(stream_position(state)) >= pos(end)
    assert snapshot(dst, tuple(TABLES)) == applied
    assert_same(mysql_db, dst)


def test_deleted_counts_rows_that_were_on_the_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str
) -> None:
    seed(mysql_db, orders=10, lines_per_order=1, edge=False)
    plan = cdc_plan(tmp_path, mysql_db, pg_db)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    execute(
        mysql_db,
        "INSERT INTO orders (id, name) VALUES (50, 'gone before the pass')",
        "DELETE FROM orders WHERE id = 50",  # never reached the target
        "DELETE FROM orders WHERE id = 5",
    )
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    assert_same(mysql_db, pg_db, ("orders",))
    assert catch_ups(result, ("orders",))["orders"]["deleted"] == 1


# -- 5. sources that cannot feed change capture -------------------------------------------------


def test_source_without_binlog_is_refused_before_any_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql2_db: str, pg_db: str
) -> None:
    execute(mysql2_db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    plan = cdc_plan(tmp_path, mysql2_db, pg_db)
    code, out, err = run_cli(plan, "--quiet")
    assert code == 1, out + err
    line = one_line_error(out + err, "binary log is off")
    assert "log_bin" in line and "server_id" in line, line
    eng = sa.create_engine(pg_db, poolclass=NullPool)
    try:
        assert sa.inspect(eng).get_table_names() == [], "the target was changed"
    finally:
        eng.dispose()

    capsys.readouterr()
    assert main(["run", str(plan), "--dry-run"]) == 2
    one_line_error(capsys.readouterr().out, "binary log is off", "log_bin")


def test_binlog_format_not_row_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_url: str, mysql_db: str, pg_db: str
) -> None:
    execute(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    plan = cdc_plan(tmp_path, mysql_db, pg_db)
    admin = sa.create_engine(mysql_url, poolclass=NullPool)
    try:
        with admin.connect() as conn:
            assert conn.exec_driver_sql("SELECT @@GLOBAL.binlog_format").scalar() == "ROW"
            try:  # only new sessions see it; other tests need ROW: restore at once
                conn.exec_driver_sql("SET GLOBAL binlog_format = 'MIXED'")
                code, text = run_text(plan, capsys, "--quiet")
            finally:
                conn.exec_driver_sql("SET GLOBAL binlog_format = 'ROW'")
    finally:
        admin.dispose()
    assert code == 1, text
    line = one_line_error(text, "binlog_format is MIXED")
    assert "SET GLOBAL binlog_format = ROW" in line and "my.cnf" in line, line


def test_user_without_replication_privileges_is_told_the_grant(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mysql_url: str,
    mysql_db: str,
    mysql2_db: str,
) -> None:
    execute(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    name, password = f"mt_{secrets.token_hex(5)}", secrets.token_hex(16)
    user = f"'{name}'@'127.0.0.1'"
    u = sa.make_url(mysql_db)
    src = f"mysql+pymysql://{name}:${{MT_CDC_PASSWORD}}@{u.host}:{u.port}/{u.database}"
    plan = cdc_plan(tmp_path, src, mysql2_db)
    env = {"MT_CDC_PASSWORD": password}
    execute(mysql_url, f"CREATE USER {user} IDENTIFIED BY '{password}'")
    try:
        execute(mysql_url, f"GRANT ALL ON {u.database}.* TO {user}")
        code, out, err = run_cli(plan, "--quiet", env=env)
        monkeypatch.setenv("MT_CDC_PASSWORD", password)
        capsys.readouterr()
        dry_code = main(["run", str(plan), "--dry-run"])
        dry_out, dry_err = capsys.readouterr()
    finally:
        execute(mysql_url, f"DROP USER IF EXISTS {user}")
    assert code == 1, out + err
    line = one_line_error(out + err, "lacks REPLICATION SLAVE")
    assert f"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO {user}" in line, line
    assert dry_code == 2, dry_out + dry_err
    one_line_error(dry_out + dry_err, "lacks REPLICATION SLAVE", "GRANT")
    leaked = [p for p in tmp_path.iterdir() if p.is_file() and password.encode() in p.read_bytes()]
    assert not leaked, leaked
    assert password not in out + err + dry_out + dry_err


@pytest.mark.parametrize("source", ["pg", "sqlite"])
def test_cdc_from_a_source_without_binlog_support_is_a_plan_error(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    mysql2_db: str,
    source: str,
) -> None:
    if source == "sqlite":
        src = f"sqlite:///{tmp_path / 'source.db'}"
        db = sqlite3.connect(tmp_path / "source.db")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        db.close()
    else:
        src = str(request.getfixturevalue("pg_db"))
        execute(src, "CREATE TABLE t (id INT PRIMARY KEY)")
    plan = cdc_plan(tmp_path, src, mysql2_db)
    code, text = run_text(plan, capsys, "--quiet")
    assert code == 2, text
    line = one_line_error(text, "steps.copy.mode")
    assert "full+incremental" in line, line
    capsys.readouterr()
    assert main(["run", str(plan), "--dry-run"]) == 2
    one_line_error(capsys.readouterr().out, "steps.copy.mode")


# -- 6. a recorded position the server no longer has ----------------------------------------


@pytest.mark.parametrize("gone", ["binlog.999999:4", "binlog.000000:4"])
def test_lost_position_fails_and_restart_recovers(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mysql_db: str,
    mysql2_db: str,
    gone: str,
) -> None:
    """Past the end of the binlog (a reset, another server) and before its first file (a
    purged file): both say to run --restart, which copies the step again."""
    tables = ("orders", "lines")
    seed(mysql_db, orders=40, edge=False)
    plan = cdc_plan(tmp_path, mysql_db, mysql2_db)
    state = state_of(plan)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    execute(
        mysql_db,
        "UPDATE orders SET id = 100 WHERE id = 1",
        "DELETE FROM `lines` WHERE qty = 0 AND line_no = 2",
    )
    set_stream_position(state, gone)
    before = snapshot(mysql2_db, tables)

    code, text = run_text(plan, capsys, "--quiet")
    assert code == 1, text
    line = one_line_error(text, gone, "migrate run --restart")
    assert "binlog" in line
    assert snapshot(mysql2_db, tables) == before  # nothing applied
    assert stream_position(state) == gone

    code, result = run_json(plan, capsys, "--restart")
    assert_done(code, result)
    assert stream_position(state) != gone
    assert_same(mysql_db, mysql2_db, tables)
    execute(
        mysql_db,
        "UPDATE orders SET qty = qty + 5 WHERE id <= 10",
        "DELETE FROM orders WHERE id = 20",
    )
    code, result = run_json(plan, capsys)  # catch-up works again from the new position
    assert_done(code, result)
    assert catch_ups(result, tables)["orders"]["changed"] == 9  # ids 2..10 (1 became 100)
    assert_same(mysql_db, mysql2_db, tables)


# -- 7. migrate status ----------------------------------------------------------------------------


def test_status_shows_the_binlog_position_and_the_last_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str
) -> None:
    seed(mysql_db, orders=5, lines_per_order=1, edge=False)
    plan = cdc_plan(tmp_path, mysql_db, pg_db)
    state = state_of(plan)
    code, result = run_json(plan, capsys)
    assert_done(code, result)

    def status() -> tuple[dict[str, dict], str]:
        capsys.readouterr()
        assert main(["status", str(plan), "--json"]) == 0
        rows = {t["table"]: t["catch_up"] for t in json.loads(capsys.readouterr().out)["tables"]}
        assert main(["status", str(plan)]) == 0
        return rows, capsys.readouterr().out

    rows, text = status()
    copied_at = stream_position(state)
    for table in ("orders", "lines"):
        c = rows[table]
        assert (c["kind"], c["position"], c["passes"], c["last_rows"]) == (
            "binlog",
            copied_at,
            0,
            None,
        )
    assert "binlog" in text and copied_at in text, text

    changes = [  # (upserts, deletes) each statement adds on orders
        ("INSERT INTO orders (id, name) VALUES (10, 'a'), (11, 'b')", 2, 0),
        ("UPDATE orders SET qty = 7 WHERE id = 2", 1, 0),
        ("UPDATE orders SET id = 12 WHERE id = 3", 1, 1),
        ("DELETE FROM orders WHERE id = 4", 0, 1),
    ]
    columns, kinds, _ = TABLES["orders"]
    before = {r[0]: r for r in snapshot(pg_db, ("orders",))["orders"]}
    execute(mysql_db, *(sql for sql, _, _ in changes))
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    rows, text = status()
    now_at = stream_position(state)
    assert pos(copied_at) < pos(now_at)
    c = rows["orders"]
    upserts, deletes = sum(ch[1] for ch in changes), sum(ch[2] for ch in changes)
    assert (c["kind"], c["position"], c["passes"]) == ("binlog", now_at, 1)
    assert (c["last_rows"], c["last_changed"], c["last_deleted"]) == (upserts, upserts, deletes)
    assert (rows["lines"]["passes"], rows["lines"]["last_rows"]) == (1, 0)
    assert isinstance(c["lag_seconds"], (int, float)) and c["lag_seconds"] >= 0
    assert "binlog" in text and now_at in text, text

    # the deleted rows (3 left its key, 4 was deleted) are kept whole in the backup table,
    # tagged with their undo records (op d); so is the row updated (u) and the keys added (i)
    db = sqlite3.connect(state)
    undo = db.execute(
        "SELECT id, detail FROM undo WHERE action = 'restore_rows' AND object = 'orders'"
    ).fetchall()
    db.close()
    details = {uid: json.loads(d) for uid, d in undo}
    assert all(d["table_columns"] == columns for d in details.values())
    (backup,) = {d["backup"] for d in details.values()}
    kept = [
        r
        for r in read_rows(pg_db, backup, ["migrate_undo", "migrate_op", *columns])
        if r[0] in details
    ]
    assert sorted(normalise_rows([r[2:] for r in kept if r[1] == "d"], kinds)) == [
        before[3],
        before[4],
    ]
    assert [normalise_rows([r[2:]], kinds)[0] for r in kept if r[1] == "u"] == [before[2]]
    assert sorted(r[2] for r in kept if r[1] == "i") == [10, 11, 12]


# -- tables changed at the source -------------------------------------------------------------


def test_column_added_at_the_source_asks_for_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str
) -> None:
    """The target table has the columns of the full copy: a pass cannot apply rows of
    another shape, and says that the step must be copied again."""
    execute(
        mysql_db,
        "CREATE TABLE widgets (id INT PRIMARY KEY, v INT)",
        "INSERT INTO widgets VALUES (1, 1)",
    )
    plan = cdc_plan(tmp_path, mysql_db, pg_db)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    execute(
        mysql_db,
        "ALTER TABLE widgets ADD COLUMN extra INT",
        "UPDATE widgets SET extra = 5 WHERE id = 1",
        "INSERT INTO widgets VALUES (2, 2, 2)",
    )
    code, text = run_text(plan, capsys, "--quiet")
    assert code == 1, text
    one_line_error(text, "widgets", "migrate run --restart")
    code, result = run_json(plan, capsys, "--restart")
    assert_done(code, result)
    cols = ["id", "v", "extra"]
    assert read_rows(pg_db, "widgets", cols, ["id"]) == read_rows(mysql_db, "widgets", cols, ["id"])


@pytest.mark.parametrize("statement", ["TRUNCATE TABLE widgets", "DELETE FROM widgets"])
def test_emptied_source_table_is_not_silently_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str, statement: str
) -> None:
    """TRUNCATE is a statement in the binlog, not row deletes: a pass must either apply it
    or stop and ask for --restart, never finish with the rows still on the target."""
    execute(
        mysql_db,
        "CREATE TABLE widgets (id INT PRIMARY KEY, v INT)",
        "INSERT INTO widgets VALUES (1, 1), (2, 2), (3, 3)",
    )
    plan = cdc_plan(tmp_path, mysql_db, pg_db)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    execute(mysql_db, statement, "INSERT INTO widgets VALUES (9, 9)")
    code, text = run_text(plan, capsys, "--quiet")
    cols = ["id", "v"]
    if code == 0:
        assert read_rows(pg_db, "widgets", cols, ["id"]) == [(9, 9)], text
    else:
        assert code == 1, text
        one_line_error(text, "widgets", "migrate run --restart")
        code, result = run_json(plan, capsys, "--restart")
        assert_done(code, result)
        assert read_rows(pg_db, "widgets", cols, ["id"]) == [(9, 9)]


# -- keys across tables, unique values, known bugs --------------------------------------------


@pytest.mark.parametrize("side", ["pg", "mysql2"])
def test_child_rows_before_their_parents_and_foreign_keys_at_cutover(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    mysql_db: str,
    side: str,
) -> None:
    dst = target(side, request)
    execute(
        mysql_db,
        "CREATE TABLE parent (id INT PRIMARY KEY, v INT)",
        "CREATE TABLE child (id INT PRIMARY KEY, pid INT NOT NULL,"
        " CONSTRAINT child_parent FOREIGN KEY (pid) REFERENCES parent (id))",
        "INSERT INTO parent VALUES (1, 1), (2, 2)",
        "INSERT INTO child VALUES (1, 1)",
    )
    plan = cdc_plan(tmp_path, mysql_db, dst)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    conn = mysql_connect(mysql_db)
    try:
        cur = conn.cursor()
        for statements in (
            ["INSERT INTO child VALUES (2, 2)"],  # child comes first in the batch
            ["INSERT INTO parent VALUES (3, 3)", "INSERT INTO child VALUES (3, 3)"],
            ["DELETE FROM child WHERE id = 1", "DELETE FROM parent WHERE id = 1"],
        ):
            for sql in statements:
                cur.execute(sql)
            conn.commit()
    finally:
        conn.close()
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    code, text = run_text(plan, capsys, "--cutover")
    assert code == 0, text
    for table in ("parent", "child"):
        cols = ["id", "v"] if table == "parent" else ["id", "pid"]
        assert read_rows(dst, table, cols, ["id"]) == read_rows(mysql_db, table, cols, ["id"])
    eng = sa.create_engine(dst, poolclass=NullPool)
    try:  # the cut-over created the foreign key
        fks = sa.inspect(eng).get_foreign_keys("child")
    finally:
        eng.dispose()
    assert [(fk["constrained_columns"], fk["referred_table"]) for fk in fks] == [
        (["pid"], "parent")
    ]


@pytest.mark.parametrize("side", ["pg", "mysql2"])
def test_unique_values_moving_between_rows(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    mysql_db: str,
    side: str,
) -> None:
    """Rows swap and rotate the values of a unique index that is not the key, in one
    transaction: the pass applies them (README: REPLACE on MariaDB, delete and insert in
    one transaction on PostgreSQL), and the index stays on the target."""
    dst = target(side, request)
    execute(
        mysql_db,
        "CREATE TABLE coded (id INT PRIMARY KEY, code VARCHAR(10) NOT NULL, v INT,"
        " UNIQUE KEY coded_code (code))",
        "INSERT INTO coded VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3), (4, 'd', 4)",
    )
    plan = cdc_plan(tmp_path, mysql_db, dst)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    execute(  # one transaction, as an application swaps and rotates codes
        mysql_db,
        "UPDATE coded SET code = 'tmp' WHERE id = 1",
        "UPDATE coded SET code = 'a' WHERE id = 2",
        "UPDATE coded SET code = 'b', v = 10 WHERE id = 1",
        "UPDATE coded SET code = 'tmp' WHERE id = 3",
        "UPDATE coded SET code = 'c' WHERE id = 4",
        "UPDATE coded SET code = 'd' WHERE id = 3",
    )
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    cols = ["id", "code", "v"]
    assert read_rows(dst, "coded", cols, ["id"]) == read_rows(mysql_db, "coded", cols, ["id"])
    eng = sa.create_engine(dst, poolclass=NullPool)
    try:
        unique = [ix["column_names"] for ix in sa.inspect(eng).get_indexes("coded") if ix["unique"]]
    finally:
        eng.dispose()
    assert unique == [["code"]]


def test_console_error_keeps_the_my_cnf_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql2_db: str, pg_db: str
) -> None:
    execute(mysql2_db, "CREATE TABLE t (id INT PRIMARY KEY)")
    plan = cdc_plan(tmp_path, mysql2_db, pg_db)
    capsys.readouterr()
    assert main(["run", str(plan), "--quiet"]) == 1
    one_line_error(capsys.readouterr().out, "binary log is off", "my.cnf [mysqld]: log_bin")


def test_failed_pass_is_not_reported_as_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, mysql2_db: str
) -> None:
    seed(mysql_db, orders=3, lines_per_order=1, edge=False)
    plan = cdc_plan(tmp_path, mysql_db, mysql2_db)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    set_stream_position(state_of(plan), "binlog.999999:4")
    capsys.readouterr()
    assert main(["run", str(plan)]) == 1
    out = capsys.readouterr().out
    one_line_error(out, "migrate run --restart")
    assert "nothing to do" not in out, out


def test_resumed_copy_clears_the_cut_off_chunk_of_rows_the_source_no_longer_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str
) -> None:
    execute(
        mysql_db,
        "CREATE TABLE items (id INT PRIMARY KEY, v INT)",
        rows=(("INSERT INTO items VALUES (:i, :i)", [{"i": i} for i in range(1, 1501)]),),
    )
    plan = write_plan(tmp_path, mysql_db, pg_db, chunk_rows=300, name="cdc", workers=1, mode="cdc")
    code, out, err = run_cli(plan, "--quiet", env={"MIGRATE_FAILPOINT": "after-load:3"})
    assert code == -signal.SIGKILL, (code, out, err)  # chunk 3 (601..900) is on the target
    execute(
        mysql_db, "DELETE FROM items WHERE id = 700", "UPDATE items SET id = 5000 WHERE id = 800"
    )
    code, result = run_json(plan, capsys)  # the source stays live: no pass yet
    chunks = table_results(result)["items"]["chunks"]
    assert [(c["source_rows"], c["target_rows"]) for c in chunks if not c["match"]] == []
    assert_done(code, result)
    code, result = run_json(plan, capsys)
    assert_done(code, result)
    cols = ["id", "v"]
    assert read_rows(pg_db, "items", cols, ["id"]) == read_rows(mysql_db, "items", cols, ["id"])


def test_earlier_position_follows_binlog_file_numbers() -> None:
    a, b = "binlog.999999:500", "binlog.1000000:4"
    assert (pos(a) < pos(b)) is True  # the server's order
    assert earlier_position(a, b) is True
    assert earlier_position(b, a) is False


if __name__ == "__main__":
    writer_main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))


def test_cutover_also_catches_up_when_it_copies_a_new_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mysql_db: str, pg_db: str
) -> None:
    """A table that appears at the source before the cut-over is copied by the cut-over
    run itself; the binlog pass must still run for the others, not be skipped."""
    seed(mysql_db, orders=50, lines_per_order=1, edge=False)
    plan = cdc_plan(tmp_path, mysql_db, pg_db)
    assert_done(*run_json(plan, capsys))
    execute(
        mysql_db,
        "UPDATE orders SET qty = qty + 100 WHERE id <= 10",
        "CREATE TABLE late (id INT PRIMARY KEY, v INT)",
        "INSERT INTO late VALUES (1, 1), (2, 2)",
    )
    code, result = run_json(plan, capsys, "--cutover")
    assert_done(code, result)
    assert_same(mysql_db, pg_db, ("orders",))
    rows = read_rows(pg_db, "late", ["id", "v"], ["id"])
    assert [tuple(r) for r in rows] == [(1, 1), (2, 2)]
