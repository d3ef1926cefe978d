"""The ``migrate`` command on the demo plan (no server): run, rerun, status, dry run, docs."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from edge_data import write_plan

from migrate import __version__
from migrate.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEMO_TABLES = ["audit_log", "customers", "products", "orders", "order_items"]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """plans/demo.toml copied to tmp_path, so its .demo/ folder is created there."""
    plan = tmp_path / "demo.toml"
    shutil.copy(ROOT / "plans" / "demo.toml", plan)
    return plan


@pytest.fixture
def demo_done(demo: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    code, out, err = _run(["run", str(demo)], capsys)
    assert code == 0, out + err
    return demo


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"migrate {__version__}\n"
    assert __version__ == version("migrate")


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("migrate: error: ")


def test_run_demo_then_run_again_has_nothing_to_do(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["run", str(demo)], capsys)
    assert code == 0, out + err
    assert "every count and checksum matches" in out
    assert "Traceback" not in err
    for table in DEMO_TABLES:
        assert re.search(rf"^\s*{table}\s.*\bmatch\b", out, re.M), table
    assert (demo.parent / ".demo" / "state.db").exists()
    assert (demo.parent / ".demo" / "cloud.db").exists()

    code, out, err = _run(["run", str(demo)], capsys)
    assert code == 0, out + err
    assert "nothing to do" in out
    assert "every count and checksum matches" in out


def _source_counts(demo: Path) -> dict[str, int]:
    db = sqlite3.connect(demo.parent / ".demo" / "legacy.db")
    try:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in DEMO_TABLES}
    finally:
        db.close()


def test_status_json_after_a_run(demo_done: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["status", str(demo_done), "--json"], capsys)
    assert code == 0, err
    status = json.loads(out)
    assert status["plan"] == "demo"
    assert status["last_run"]["status"] == "done"
    rows = {t["table"]: t for t in status["tables"]}
    assert sorted(rows) == sorted(DEMO_TABLES)
    counts = _source_counts(demo_done)
    assert all(n > 0 for n in counts.values())
    for name, row in rows.items():
        assert row["step"] == "erp-db"
        assert row["chunks_left"] == 0, name
        assert row["rows_copied"] == counts[name], name
        assert row["source_rows"] == row["target_rows"] == counts[name], name
        assert row["last_error"] is None


def test_status_console_after_a_run(demo_done: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["status", str(demo_done)], capsys)
    assert code == 0, err
    for table in DEMO_TABLES:
        assert table in out


def test_run_json_output_parses(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["run", str(demo), "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert (result["plan"], result["status"], result["exit_code"]) == ("demo", "done", 0)
    tables = {t["name"]: t for s in result["steps"] for t in s["tables"]}
    counts = _source_counts(demo)
    assert {n: t["target_rows"] for n, t in tables.items()} == counts
    assert all(t["counts_match"] for t in tables.values())


SURVEY = [".demo", ".demo/state.survey.html"]  # the survey's HTML report, beside the state


def test_dry_run_writes_nothing(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing but the survey's HTML report: no state, no target database."""
    before = _listing(demo.parent)
    assert before == ["demo.toml"]
    code, out, err = _run(["run", str(demo), "--dry-run"], capsys)
    assert code == 0, out + err
    assert "dry run" in out
    for table in DEMO_TABLES:
        assert table in out
    assert _listing(demo.parent) == sorted(before + SURVEY)

    code, out, err = _run(["run", str(demo), "--dry-run", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["problems"] == 0 and report["blockers"] == []
    ((step,),) = [w["steps"] for w in report["waves"]]
    assert sorted(t["table"] for t in step["tables"]) == sorted(DEMO_TABLES)
    # the demo's audit_log has no key: a warning, not a blocker
    assert [(w["kind"], w["where"]) for w in report["warnings"]] == [
        ("no_key", "step erp-db / table audit_log")
    ]
    assert _listing(demo.parent) == sorted(before + SURVEY)


def test_dry_run_of_one_step_looks_at_that_step_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--step narrows a dry run as it narrows a run: the other step's unreachable
    source is neither connected to nor reported."""
    sqlite3.connect(tmp_path / "a.db").execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    plan = tmp_path / "two.toml"
    plan.write_text(
        """version = 1
name = "two"
[connections]
a = { url = "sqlite:///a.db" }
gone = { url = "mssql+pyodbc://sa:pw@127.0.0.1:1/x?driver=FreeTDS" }
dst = { url = "sqlite:///dst.db" }
[[steps]]
name = "first"
source = "a"
target = "dst"
tables = ["*"]
[[steps]]
name = "second"
source = "gone"
target = "dst"
tables = ["*"]
""",
        encoding="utf-8",
    )
    code, out, err = _run(["run", str(plan), "--dry-run", "--step", "first", "--json"], capsys)
    assert code == 0, out + err
    report = json.loads(out)
    assert [s["name"] for w in report["waves"] for s in w["steps"]] == ["first"]
    assert report["problems"] == 0
    code, out, err = _run(["run", str(plan), "--dry-run", "--step", "second"], capsys)
    assert code == 2 and "cannot connect to SQL Server at 127.0.0.1:1" in out, out + err
    assert "step first" not in out


def test_dry_run_after_a_run_writes_nothing(
    demo_done: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = demo_done.parent

    def files() -> dict[str, bytes]:  # but the survey's own HTML report
        return {
            str(p.relative_to(folder)): p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file() and not p.name.endswith(".survey.html")
        }

    before = files()
    _run(["run", str(demo_done), "--dry-run"], capsys)
    after = files()
    assert sorted(after) == sorted(before)  # no new file (e.g. SQLite -wal / -shm)
    assert after == before


def test_dry_run_after_a_run_agrees_with_the_run(
    demo_done: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tables were created and filled by this plan: a run has nothing to do (exit 0),
    so the dry run must not call them a problem that would stop the run."""
    code, out, err = _run(["run", str(demo_done)], capsys)
    assert code == 0 and "nothing to do" in out
    code, out, err = _run(["run", str(demo_done), "--dry-run"], capsys)
    assert "STOP" not in out
    assert code == 0, out + err


def test_status_of_a_plan_never_run(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["status", str(demo)], capsys)
    assert code == 1
    assert out == ""
    assert "Traceback" not in err
    state = demo.parent / ".demo" / "state.db"
    assert err.splitlines() == [
        f"migrate: error: no state at {state}: nothing has run for this plan yet"
    ]
    assert _listing(demo.parent) == ["demo.toml"]  # status creates nothing


def test_readme_documents_every_command_and_exit_code() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("migrate run", "migrate status", "--dry-run", "--json"):
        assert command in text, command
    m = re.search(r"^#+\s*Exit codes\s*$(.*?)(?=^#+\s)", text, re.M | re.S | re.I)
    assert m, "README.md has no 'Exit codes' section"
    section = m.group(1)
    for code in range(6):
        assert re.search(rf"^\s*(\|\s*|[-*]\s*)?`?{code}`?\s*(\||[-:—·]|\s)", section, re.M), (
            f"exit code {code} is not in the README's exit code section"
        )


# -- the run lock: a second run at the same time, and a run killed holding it ------------
CONSOLE_SCRIPT = Path(sys.executable).parent / "migrate"
HOLDER_LINE = re.compile(r"^pid (\d+) on (\S+) since (\S+)$")


def _seed(path: Path, rows: int) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", ((i, f"v{i}") for i in range(1, rows + 1)))
    db.commit()
    db.close()


def _wait_for_run_started(log: Path, proc: subprocess.Popen[str]) -> None:
    """Until the JSON ``log`` says the run started (it then holds the lock)."""
    deadline = time.monotonic() + 120  # a guard against a hang, not a timing assertion
    while time.monotonic() < deadline:
        if log.exists() and '"event": "run_started"' in log.read_text():
            return
        assert proc.poll() is None, f"the first run ended (exit {proc.returncode}) too early"
        time.sleep(0.05)
    raise AssertionError("the first run never started")


def _check_holder_line(line: str, pid: int, earliest: dt.datetime) -> None:
    m = HOLDER_LINE.match(line)
    assert m, line
    assert (int(m.group(1)), m.group(2)) == (pid, socket.gethostname())
    since = dt.datetime.fromisoformat(m.group(3))
    assert since.utcoffset() == dt.timedelta(0)
    assert earliest <= since <= dt.datetime.now(dt.UTC)


def test_a_second_run_exits_4_at_once_naming_the_holders_pid_host_and_start(
    tmp_path: Path,
) -> None:
    _seed(tmp_path / "src.db", 50_000)
    plan = write_plan(
        tmp_path, "sqlite:///src.db", "sqlite:///dst.db", chunk_rows=100, workers=1, name="p"
    )
    lock = tmp_path / "p-state.db.lock"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    earliest = dt.datetime.now(dt.UTC)
    argv = [str(CONSOLE_SCRIPT), "run", str(plan), "--quiet", "--log-file", str(first_log)]
    first = subprocess.Popen(
        [*argv, "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_run_started(first_log, first)
        os.kill(first.pid, signal.SIGSTOP)  # frozen while holding the lock
        assert first.poll() is None, "the first run finished before it could be frozen"
        holder = lock.read_text().strip()
        # A second run that waited for the lock would hang here: its holder is frozen.
        second = subprocess.run(
            [str(CONSOLE_SCRIPT), "run", str(plan), "--log-file", str(second_log)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=300)
    _check_holder_line(holder, first.pid, earliest)
    assert second.returncode == 4
    assert second.stdout == ""
    assert second.stderr == f"migrate: error: another run holds {lock} ({holder})\n"
    (logged,) = second_log.read_text().splitlines()
    assert logged.endswith(f" error: another run holds {lock} ({holder}) (exit 4)")
    assert first.returncode == 0, out + err  # the first run was not disturbed
    assert sqlite3.connect(tmp_path / "dst.db").execute("SELECT COUNT(*) FROM t").fetchone() == (
        50_000,
    )


def test_a_run_killed_holding_the_lock_is_taken_over_by_the_next_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(tmp_path / "src.db", 95)
    plan = write_plan(tmp_path, "sqlite:///src.db", "sqlite:///dst.db", chunk_rows=10, name="p")
    lock = tmp_path / "p-state.db.lock"
    earliest = dt.datetime.now(dt.UTC)
    killed = subprocess.Popen(  # SIGKILLs itself after the target committed chunk 3
        [str(CONSOLE_SCRIPT), "run", str(plan), "--quiet"],
        env={**os.environ, "MIGRATE_FAILPOINT": "after-load:3"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    left = lock.read_text().strip()
    _check_holder_line(left, killed.pid, earliest)

    log = tmp_path / "p.log"
    argv = ["run", str(plan), "--quiet", "--json", "--log-file", str(log)]
    code, out, err = _run([*argv, "--log-format", "json"], capsys)
    assert code == 0, err
    warning = f"taking over the lock left by {left} (that run ended without releasing it)"
    assert err.splitlines() == [f"migrate: warning: {warning}"]  # --quiet with a log
    (table,) = json.loads(out)["steps"][0]["tables"]
    assert (table["source_rows"], table["target_rows"]) == (95, 95)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["event"] for r in records[:2]] == ["run_started", "lock_taken_over"]
    assert (records[1]["level"], records[1]["message"]) == ("warning", warning)
    assert records[1]["previous_holder"] == left
    assert any(  # the crash-recovery message is in the log, not on the quiet console
        r["event"] == "message" and "chunk 3 was cut off by a crash" in r["message"]
        for r in records
    )
    assert lock.read_text() == ""  # released cleanly this time ...

    code, out, err = _run(["run", str(plan)], capsys)
    assert code == 0
    assert "taking over" not in err  # ... so the next run takes over nothing


def test_acquire_returns_the_line_a_dead_holder_left(tmp_path: Path) -> None:
    from migrate.state import RunLock

    state = tmp_path / "s.db"
    lock = RunLock(state)
    assert lock.acquire() is None  # first use
    lock.release()
    assert lock.acquire() is None  # after a clean release
    lock.release()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from migrate.state import RunLock;"
            " RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(120)",
            str(state),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    left = Path(f"{state}.lock").read_text().strip()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert left.startswith(f"pid {holder.pid} on ")
    assert lock.acquire() == left
    assert Path(f"{state}.lock").read_text().startswith(f"pid {os.getpid()} on ")
    lock.release()
