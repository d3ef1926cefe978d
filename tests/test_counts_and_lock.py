"""Counts that differ exit 3 and name the chunks; a second run on a locked state exits 4."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from edge_data import write_plan

from migrate.cli import main


def _seed_sqlite(path: Path, rows: int = 95) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(1, rows + 1)])
    db.commit()
    db.close()


def test_rows_lost_on_the_way_exit_3_and_name_the_chunks(tmp_path: Path, capsys) -> None:
    _seed_sqlite(tmp_path / "src.db")
    dst = sqlite3.connect(tmp_path / "dst.db")  # a target that silently drops ids 7 and 42
    dst.executescript("""
        CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
        CREATE TRIGGER lose BEFORE INSERT ON t WHEN NEW.id IN (7, 42)
        BEGIN SELECT RAISE(IGNORE); END;""")
    dst.close()
    plan = write_plan(
        tmp_path,
        "sqlite:///src.db",
        "sqlite:///dst.db",
        if_exists="truncate",
        chunk_rows=10,
        name="counts",
    )
    assert main(["run", str(plan), "--json"]) == 3
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "differences"
    table = result["steps"][0]["tables"][0]
    assert (table["source_rows"], table["target_rows"]) == (95, 93)
    bad = [
        (c["lo"], c["hi"], c["source_rows"], c["target_rows"])
        for c in table["chunks"]
        if not c["match"]
    ]
    assert bad == [(None, [10], 10, 9), ([40], [50], 10, 9)]
    # the console summary says the same, and status shows it
    assert main(["run", str(plan)]) == 3
    out = capsys.readouterr().out
    assert "row counts differ (exit 3)" in out
    assert "#1 (start, 10] 10 ≠ 9" in out and "#5 (40, 50] 10 ≠ 9" in out


def test_rows_lost_on_postgresql_copy_exit_3(
    tmp_path: Path, capsys, mysql_db: str, pg_db: str
) -> None:
    src = sa.create_engine(mysql_db)
    with src.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))"))
        conn.execute(
            sa.text("INSERT INTO t VALUES (:i, :v)"), [{"i": i, "v": f"v{i}"} for i in range(1, 51)]
        )
    src.dispose()
    dst = sa.create_engine(pg_db)
    with dst.begin() as conn:  # COPY fires row triggers: one that drops every 10th row
        conn.execute(sa.text("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))"))
        conn.execute(
            sa.text(
                "CREATE FUNCTION skip_tenth() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN IF NEW.id % 10 = 0 THEN RETURN NULL; END IF; RETURN NEW; END $$"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TRIGGER skip BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION skip_tenth()"
            )
        )
    dst.dispose()
    plan = write_plan(tmp_path, mysql_db, pg_db, if_exists="truncate", chunk_rows=10, name="counts")
    assert main(["run", str(plan), "--json"]) == 3
    table = json.loads(capsys.readouterr().out)["steps"][0]["tables"][0]
    assert (table["source_rows"], table["target_rows"]) == (50, 45)
    assert sum(not c["match"] for c in table["chunks"]) == 5


def test_existing_target_table_is_not_touched_without_if_exists(tmp_path: Path, capsys) -> None:
    _seed_sqlite(tmp_path / "src.db")
    dst = sqlite3.connect(tmp_path / "dst.db")
    dst.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    dst.execute("INSERT INTO t VALUES (1, 'keep me')")
    dst.commit()
    dst.close()
    plan = write_plan(
        tmp_path, "sqlite:///src.db", "sqlite:///dst.db", chunk_rows=10, name="counts"
    )
    assert main(["run", str(plan)]) == 1
    captured = capsys.readouterr()
    assert "table t already exists (1 rows) and was not created by this plan" in captured.out
    assert sqlite3.connect(tmp_path / "dst.db").execute("SELECT * FROM t").fetchall() == [
        (1, "keep me")
    ]


def test_second_run_while_one_holds_the_lock_exits_4(tmp_path: Path, capsys) -> None:
    _seed_sqlite(tmp_path / "src.db")
    plan = write_plan(
        tmp_path, "sqlite:///src.db", "sqlite:///dst.db", chunk_rows=10, name="counts"
    )
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from migrate.state import RunLock;"
            " RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(60)",
            str(tmp_path / "counts-state.db"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        assert main(["run", str(plan)]) == 4
        assert time.monotonic() - started < 10  # at once, not after waiting
        err = capsys.readouterr().err.strip()
        assert err.startswith("migrate: error: another run holds")
        assert f"pid {holder.pid} on" in err and len(err.splitlines()) == 1
        assert not (tmp_path / "dst.db").exists()
    finally:
        holder.kill()
        holder.wait()
    assert main(["run", str(plan)]) == 0  # the dead holder's lock is gone


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_renderers(tmp_path: Path, terminal: bool) -> None:
    """Plain lines off a terminal; the rich display on one (forced here)."""
    import io

    from rich.console import Console

    from migrate.progress import LogProgress, RichProgressDisplay

    buf = io.StringIO()
    if terminal:
        display = RichProgressDisplay(Console(file=buf, force_terminal=True, width=100))
        with display:
            display.table_started("s", "orders", 1000, 0)
            display.advance("s", "orders", 500)
            display.table_finished("s", "orders", 1000, 0.5)
        assert "s.orders" in buf.getvalue() and "rows/s" in buf.getvalue()
    else:
        log = LogProgress(buf, interval=0)
        log.table_started("s", "orders", 1000, 0)
        log.advance("s", "orders", 500)
        log.table_finished("s", "orders", 1000, 0.5)
        lines = buf.getvalue().splitlines()
        assert len(lines) == 3
        assert lines[0].endswith("step=s table=orders copying")
        assert "rows=500 rate=" in lines[1]
        assert lines[2].endswith("copied rows=1000 in 0.5s (2000 rows/s)")


def test_a_table_the_source_lacks_is_a_plan_error(tmp_path: Path, capsys) -> None:
    _seed_sqlite(tmp_path / "src.db")
    plan = write_plan(
        tmp_path, "sqlite:///src.db", "sqlite:///dst.db", chunk_rows=10, name="counts"
    )
    plan.write_text(plan.read_text().replace('tables = ["*"]', 'tables = ["t", "nosuch"]'))
    assert main(["run", str(plan), "--json"]) == 2
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "plan error"
    assert result["message"] == (
        f"{plan.resolve()}: steps.copy.tables: table 'nosuch' is not in connection 'src'"
    )
    assert (
        not (tmp_path / "dst.db").exists()
        or not sqlite3.connect(tmp_path / "dst.db")
        .execute("SELECT name FROM sqlite_master")
        .fetchall()
    )
