"""``migrate check PLAN --pilot N``: N rows per table and N files per file step copied for
real, checked, then removed; the survey's estimates use the measured speed.

SQLite and local files (no server), and MariaDB → PostgreSQL for real engines.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from migrate.cli import main


def _db(path: Path, sql: str) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(sql)
    db.close()


def _tables(path: Path) -> list[str]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    db.close()
    return sorted(names)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    rows = ",".join(f"({i}, 'name {i}', {i * 10})" for i in range(1, 501))
    _db(
        tmp_path / "src.db",
        f"""
        CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price INTEGER);
        INSERT INTO items VALUES {rows};
        CREATE TABLE lines (item_id INTEGER NOT NULL, n INTEGER NOT NULL, qty INTEGER,
                            PRIMARY KEY (item_id, n));
        INSERT INTO lines SELECT id, 1, id % 7 FROM items;
        INSERT INTO lines SELECT id, 2, id % 5 FROM items;
        CREATE TABLE loose (v TEXT);
        INSERT INTO loose SELECT name FROM items;
        """,
    )
    share = tmp_path / "share"
    (share / "sub").mkdir(parents=True)
    for i in range(12):
        (share / "sub" / f"f{i:02}.bin").write_bytes(bytes([i]) * (1000 + i))
    plan = tmp_path / "plan.toml"
    plan.write_text(
        """version = 1
name = "pilot"
state = "state/plan.db"
[connections]
src = { url = "sqlite:///src.db" }
dst = { url = "sqlite:///dst.db" }
share = { url = "file:share" }
archive = { url = "file:archive" }
[[steps]]
name = "db"
source = "src"
target = "dst"
tables = ["*"]
[[steps]]
name = "files"
source = "share"
target = "archive"
""",
        encoding="utf-8",
    )
    return plan


def _check(plan: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:
    code = main(["check", str(plan), "--json", *extra])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_pilot_copies_checks_measures_and_removes(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _check(plan, capsys, "--pilot", "40")
    pilot = report["pilot"]
    assert pilot["rolled_back"] is True, pilot
    assert pilot["blockers"] == []
    tables = {t["table"]: t for t in pilot["steps"]["db"]["tables"]}
    assert {n: t["rows"] for n, t in tables.items()} == {"items": 40, "lines": 40, "loose": 40}
    assert all(t["status"] == "done" for t in tables.values()), tables
    assert tables["items"]["notes"] == ["pilot rows compared by checksum: 40 equal"]
    assert pilot["steps"]["files"]["files"]["copied"] == 12  # fewer than N: all of them
    assert pilot["measured"]["db"]["rows"] == 120
    assert pilot["measured"]["files"]["bytes"] == sum(1000 + i for i in range(12))
    assert code == 0, report.get("blockers")
    # the targets are as before, and the plan's state was never written
    assert _tables(plan.parent / "dst.db") == []
    assert _tree(plan.parent / "archive") == []
    assert not (plan.parent / "state" / "plan.db").exists()


def test_pilot_takes_n_files(plan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _check(plan, capsys, "--pilot", "5", "--step", "files")
    assert code == 0, report["blockers"]
    assert report["pilot"]["steps"]["files"]["files"]["copied"] == 5
    assert list(report["pilot"]["steps"]) == ["files"]
    assert _tree(plan.parent / "archive") == []


def test_pilot_into_scratch_names_leaves_existing_tables_alone(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _db(plan.parent / "dst.db", "CREATE TABLE items (id INTEGER PRIMARY KEY, old TEXT);")
    _db(plan.parent / "dst.db", "INSERT INTO items VALUES (1, 'keep me');")
    # into the final table: it exists and is not the plan's, so the pilot stops there
    code, report = _check(plan, capsys, "--pilot", "10", "--step", "db")
    assert code == 2
    assert any("already exists" in b["message"] for b in report["pilot"]["blockers"])
    # into scratch names: pilot_items etc., removed afterwards
    code, report = _check(plan, capsys, "--pilot", "10", "--pilot-prefix", "pilot_")
    assert report["pilot"]["rolled_back"] is True
    targets = {t["target_table"] for t in report["pilot"]["steps"]["db"]["tables"]}
    assert targets == {"pilot_items", "pilot_lines", "pilot_loose"}
    assert _tables(plan.parent / "dst.db") == ["items"]
    with sqlite3.connect(plan.parent / "dst.db") as db:
        assert db.execute("SELECT * FROM items").fetchall() == [(1, "keep me")]
    db.close()
    assert _tree(plan.parent / "archive") == []  # the pilot's prefix folder went too
    assert not (plan.parent / "state" / "plan.db").exists()


def test_pilot_needs_a_positive_count(plan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(plan), "--pilot", "0"]) == 2
    assert "--pilot 0: give a number" in capsys.readouterr().err
    assert main(["run", str(plan), "--pilot-prefix", "x_"]) == 2
    assert "--pilot-prefix needs --pilot N" in capsys.readouterr().err


def test_pilot_mariadb_to_postgresql(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = sa.create_engine(mysql_db, poolclass=NullPool)
    with src.begin() as c:
        c.exec_driver_sql(
            "CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(40),"
            " amount DECIMAL(12,2), at DATETIME(6))"
        )
        c.exec_driver_sql(
            "INSERT INTO orders SELECT seq, CONCAT('n', seq), seq / 3, NOW(6) FROM seq_1_to_300"
        )
    src.dispose()
    plan = tmp_path / "p.toml"
    plan.write_text(
        f"""version = 1
name = "p"
state = "p.db"
[connections]
src = {{ url = "{mysql_db}" }}
dst = {{ url = "{pg_db}" }}
[[steps]]
name = "db"
source = "src"
target = "dst"
tables = ["*"]
""",
        encoding="utf-8",
    )
    code, report = _check(plan, capsys, "--pilot", "25")
    (t,) = report["pilot"]["steps"]["db"]["tables"]
    assert (t["rows"], t["status"]) == (25, "done"), report["pilot"]
    assert t["notes"] == ["pilot rows compared by checksum: 25 equal"]
    assert report["pilot"]["rolled_back"] is True
    dst = sa.create_engine(pg_db, poolclass=NullPool)
    assert sa.inspect(dst).get_table_names() == []
    dst.dispose()
    assert code == 0, report.get("blockers")


def test_check_pilot_prefix_needs_pilot(plan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(plan), "--pilot-prefix", "x_"]) == 2
    assert "--pilot-prefix needs --pilot N" in capsys.readouterr().err


def test_pilot_prefix_stays_under_a_relative_file_target(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``file:archive`` is relative to the plan: the prefix goes below it, never to
    ``/archive/...`` at the root of the file system; the prefix folders the pilot made
    go with its copies, a folder that holds something else stays."""
    from migrate.pilot import pilot_plan
    from migrate.plan import load_plan
    from migrate.runner import Endpoints

    pplan = pilot_plan(load_plan(plan), plan.parent / "p.db", "scratch/pilot_")
    endpoints = Endpoints(pplan, workers=1, dry_run=False)
    try:
        assert endpoints.get("archive").root == plan.parent / "archive" / "scratch" / "pilot_"
    finally:
        endpoints.close()
    (plan.parent / "archive").mkdir()
    (plan.parent / "archive" / "keep.txt").write_text("theirs", encoding="utf-8")
    code, report = _check(
        plan, capsys, "--pilot", "3", "--step", "files", "--pilot-prefix", "scratch/pilot_"
    )
    assert code == 0, report["pilot"]
    assert report["pilot"]["steps"]["files"]["files"]["copied"] == 3
    assert _tree(plan.parent / "archive") == ["keep.txt"]
    (plan.parent / "archive" / "scratch").mkdir()  # there before, not empty: it stays
    (plan.parent / "archive" / "scratch" / "note.txt").write_text("theirs", encoding="utf-8")
    code, report = _check(
        plan, capsys, "--pilot", "3", "--step", "files", "--pilot-prefix", "scratch/pilot_"
    )
    assert code == 0, report["pilot"]
    assert _tree(plan.parent / "archive") == ["keep.txt", "scratch", "scratch/note.txt"]


def test_pilot_prefix_cannot_leave_the_target(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(plan), "--pilot", "3", "--pilot-prefix", "../out"]) == 2
    assert "--pilot-prefix '../out'" in capsys.readouterr().err
    assert not (plan.parent / "out").exists()


def test_pilot_while_locked_leaves_no_temporary_folder(
    plan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tempfile

    from migrate.state import RunLock

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    (plan.parent / "state").mkdir()
    lock = RunLock(plan.parent / "state" / "plan.db")
    lock.acquire()
    try:
        assert main(["check", str(plan), "--pilot", "3"]) == 4
    finally:
        lock.release()
    assert "another run holds" in capsys.readouterr().err
    assert list(scratch.iterdir()) == []


def test_interrupted_pilot_removes_its_copies_and_says_so(
    plan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during the pilot: its copies are removed, then the interrupt is raised
    (exit 5), not swallowed into a survey that exits 0."""
    import os
    import signal
    import tempfile

    from migrate.copier import Progress
    from migrate.errors import InterruptedRun
    from migrate.pilot import pilot_run
    from migrate.plan import load_plan

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    class CtrlC(Progress):
        sent = False

        def table_finished(self, step: str, table: str, rows: int, seconds: float) -> None:
            if not CtrlC.sent:
                CtrlC.sent = True
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(InterruptedRun, match="what it had copied was removed"):
        pilot_run(load_plan(plan), 50, progress=CtrlC())
    assert CtrlC.sent
    assert _tables(plan.parent / "dst.db") == []
    assert _tree(plan.parent / "archive") == []
    assert list(scratch.iterdir()) == []


def test_pilot_leaves_out_a_step_adopting_its_target_tables(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """mode = "incremental" catches up tables loaded some other way: a pilot into the
    final tables would take them for foreign ones and block a plan that runs fine; it
    is left out (with the reason), or piloted into scratch tables with a prefix."""
    _db(
        plan.parent / "dst.db",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price INTEGER);"
        " INSERT INTO items VALUES (1, 'loaded by a dump', 10);",
    )
    text = plan.read_text(encoding="utf-8").replace(
        'tables = ["*"]', 'tables = ["items"]\nmode = "incremental"\ncursor = "id"'
    )
    plan.write_text(text, encoding="utf-8")
    code, report = _check(plan, capsys, "--pilot", "5", "--step", "db")
    assert code == 0, report["blockers"]
    step = report["pilot"]["steps"]["db"]
    assert step["status"] == "skipped" and "--pilot-prefix" in step["error"], step
    code, report = _check(plan, capsys, "--pilot", "5", "--step", "db", "--pilot-prefix", "p_")
    assert code == 0, report["blockers"]
    (t,) = report["pilot"]["steps"]["db"]["tables"]
    assert (t["target_table"], t["rows"], t["status"]) == ("p_items", 5, "done")
    assert _tables(plan.parent / "dst.db") == ["items"]
    with sqlite3.connect(plan.parent / "dst.db") as db:
        assert db.execute("SELECT * FROM items").fetchall() == [(1, "loaded by a dump", 10)]
    db.close()
