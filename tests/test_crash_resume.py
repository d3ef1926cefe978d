"""A run killed with SIGKILL and started again copies every row exactly once.

Two ways to kill: at a random moment while chunks are being written (the state file is
polled until some chunks are done), and at the exact points around a chunk's commit
through ``MIGRATE_FAILPOINT`` (after the target committed, before the state knows).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from edge_data import write_plan

ROWS = 12_000
CHUNK = 300
pytestmark = pytest.mark.slow


def _seed_mysql(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(40) NOT NULL,"
                " amount DECIMAL(12,2), created DATETIME(6), note TEXT)"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TABLE `lines` (order_id INT, line INT, qty INT,"  # a reserved word
                " PRIMARY KEY (order_id, line))"
            )
        )
        conn.execute(sa.text("CREATE TABLE journal (msg VARCHAR(40), n INT)"))
        rows = [
            {
                "id": i,
                "c": f"客户 {i % 97}",
                "a": f"{i * 1.25:.2f}",
                "d": f"2024-01-01 00:00:00.{i % 1000000:06d}",
                "n": None if i % 5 else "x" * (i % 50),
            }
            for i in range(1, ROWS + 1)
        ]
        conn.execute(sa.text("INSERT INTO orders VALUES (:id, :c, :a, :d, :n)"), rows)
        conn.execute(
            sa.text("INSERT INTO `lines` VALUES (:o, :l, :q)"),
            [{"o": i // 3, "l": i % 3, "q": i} for i in range(3, 3 * 2000)],
        )
        conn.execute(
            sa.text("INSERT INTO journal VALUES (:m, :n)"),
            [{"m": "dup", "n": i % 10} for i in range(3000)],
        )
    engine.dispose()


def _migrate(plan: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "migrate.cli", "run", str(plan), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _done_chunks(state: Path) -> int:
    if not state.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute("SELECT COUNT(*) FROM chunks WHERE status='done'").fetchone()[0]
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return 0


def _wait_for_chunks(proc: subprocess.Popen[str], state: Path, n: int) -> None:
    """Wait until the running copy has finished ``n`` chunks (or has exited)."""
    deadline = time.monotonic() + 120
    while _done_chunks(state) < n and proc.poll() is None:
        assert time.monotonic() < deadline, "the copy made no progress"
        time.sleep(0.005)


def _rows(url: str, table: str, order: str) -> list[tuple]:
    engine = sa.create_engine(url)
    quoted = engine.dialect.identifier_preparer.quote(table)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {quoted} ORDER BY {order}"))]
    engine.dispose()
    return rows


def _assert_same(src: str, dst: str) -> None:
    assert _rows(dst, "orders", "id") == _rows(src, "orders", "id")
    assert _rows(dst, "lines", "order_id, line") == _rows(src, "lines", "order_id, line")
    assert sorted(_rows(dst, "journal", "n")) == sorted(_rows(src, "journal", "n"))


def _finish(plan: Path) -> None:
    proc = _migrate(plan)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def test_sigkill_mid_copy_then_rerun_copies_exactly(
    tmp_path: Path, mysql_db: str, mysql2_db: str
) -> None:
    _seed_mysql(mysql_db)
    plan = write_plan(tmp_path, mysql_db, mysql2_db, chunk_rows=CHUNK, name="crash", workers=3)
    state = tmp_path / "crash-state.db"
    for kill_after in (3, 15):  # kill twice at different depths, then finish
        proc = _migrate(plan)
        _wait_for_chunks(proc, state, kill_after)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    assert _done_chunks(state) < ROWS // CHUNK, "the kills came too late to test a resume"
    _finish(plan)
    _assert_same(mysql_db, mysql2_db)


@pytest.mark.parametrize("point", ["after-load:4", "before-load:4", "after-load:1"])
def test_kill_at_chunk_commit_boundaries(
    tmp_path: Path, mysql_db: str, pg_db: str, point: str
) -> None:
    """The hardest window: the target committed a chunk the state does not know about."""
    _seed_mysql(mysql_db)
    plan = write_plan(tmp_path, mysql_db, pg_db, chunk_rows=CHUNK, name="crash", workers=3)
    proc = _migrate(plan, {"MIGRATE_FAILPOINT": point})
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    db = sqlite3.connect(tmp_path / "crash-state.db")
    writing = db.execute("SELECT COUNT(*) FROM chunks WHERE status='writing'").fetchone()[0]
    db.close()
    assert writing >= 1  # the killed chunk is recorded as unfinished
    proc = _migrate(plan)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "copied again" in err  # the resume says what it repaired
    _assert_same(mysql_db, pg_db)


def test_sigterm_stops_cleanly_with_exit_5_and_a_rerun_finishes(
    tmp_path: Path, mysql_db: str, mysql2_db: str
) -> None:
    _seed_mysql(mysql_db)
    plan = write_plan(tmp_path, mysql_db, mysql2_db, chunk_rows=CHUNK, name="crash", workers=3)
    state = tmp_path / "crash-state.db"
    proc = _migrate(plan)
    _wait_for_chunks(proc, state, 3)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    if _done_chunks(state) >= ROWS // CHUNK:
        pytest.fail("the copy finished before SIGTERM arrived; the test needs more rows")
    assert proc.returncode == 5, err
    db = sqlite3.connect(state)
    run = db.execute("SELECT status, message FROM runs ORDER BY id DESC").fetchone()
    db.close()
    assert run[0] == "interrupted"
    _finish(plan)
    _assert_same(mysql_db, mysql2_db)
