"""``migrate run --log-file / --log-format``: what the run log holds, in text and JSON, and
that every way a command can end is recorded in it, without secrets."""

from __future__ import annotations

import datetime as dt
import io
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
from pathlib import Path
from typing import Any

import pytest
from edge_data import write_plan

from migrate.cli import main
from migrate.progress import LEVELS, LogProgress, RunLog
from migrate.runner import RunResult

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_SCRIPT = Path(sys.executable).parent / "migrate"
DEMO_TABLES = ["audit_log", "customers", "products", "orders", "order_items"]
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z ")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    plan = tmp_path / "demo.toml"
    shutil.copy(ROOT / "plans" / "demo.toml", plan)
    return plan


def _source_counts(folder: Path) -> dict[str, int]:
    db = sqlite3.connect(folder / ".demo" / "legacy.db")
    try:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in DEMO_TABLES}
    finally:
        db.close()


def _records(log: Path) -> list[dict[str, Any]]:
    """Every line of a JSON log, parsed; the common fields checked."""
    out = []
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        assert list(record)[:4] == ["ts", "level", "event", "pid"], record
        ts = dt.datetime.fromisoformat(record["ts"])
        assert ts.utcoffset() == dt.timedelta(0) and record["ts"].endswith("Z"), record
        assert record["level"] in LEVELS, record
        out.append(record)
    return out


def _seed(path: Path, rows: int) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", ((i, f"v{i}") for i in range(1, rows + 1)))
    db.commit()
    db.close()


# -- what a run writes ------------------------------------------------------------------
def test_text_log_with_quiet_leaves_the_console_silent(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "logs" / "deep" / "demo.log"  # folders are created
    code, out, err = _run(["run", str(demo), "--quiet", "--log-file", str(log)], capsys)
    assert code == 0, log.read_text() if log.exists() else err
    assert (out, err) == ("", "")
    lines = log.read_text(encoding="utf-8").splitlines()
    assert all(TS.match(line) for line in lines), lines
    text = [TS.sub("", line) for line in lines]
    host = socket.gethostname()
    assert text[0] == f"run started: plan demo ({demo}), pid {os.getpid()} on {host}"
    counts = _source_counts(demo.parent)
    for table, rows in counts.items():
        assert f"step=erp-db table={table} copying" in text
        assert any(t.startswith(f"step=erp-db table={table} copied rows={rows} in ") for t in text)
    assert text[-1] == "run 1: done: every count and checksum matches"
    assert any(re.match(r"\s*orders\s.*\bmatch\b", t) for t in text)  # the summary table


def test_json_log_holds_every_event_and_the_same_result_as_json_output(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "demo.jsonl"
    argv = ["run", str(demo), "--json", "--log-file", str(log), "--log-format", "json"]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    records = _records(log)
    started = records[0]
    assert started["event"] == "run_started"
    assert (started["plan"], started["plan_file"]) == ("demo", str(demo))
    assert (started["pid"], started["host"]) == (os.getpid(), socket.gethostname())
    assert started["cutover"] is False
    assert {r["pid"] for r in records} == {os.getpid()}
    counts = _source_counts(demo.parent)
    begun = {r["table"]: r for r in records if r["event"] == "table_started"}
    ended = {r["table"]: r for r in records if r["event"] == "table_finished"}
    assert set(begun) == set(ended) == set(counts)
    assert all((r["step"], r["done"]) == ("erp-db", 0) for r in begun.values())
    assert {t: r["rows"] for t, r in ended.items()} == counts
    finished = records[-1]
    assert [r["event"] for r in records].count("run_finished") == 1
    assert finished["event"] == "run_finished" and finished["level"] == "info"
    assert (finished["status"], finished["exit_code"]) == ("done", 0)
    assert finished["result"] == json.loads(out)  # the summary --json prints


def test_runs_append_to_the_log(demo: Path, tmp_path: Path, capsys) -> None:
    log = tmp_path / "demo.jsonl"
    argv = ["run", str(demo), "--quiet", "--log-file", str(log), "--log-format", "json"]
    for _ in range(2):
        assert main(argv) == 0
    capsys.readouterr()
    records = _records(log)
    assert [r["event"] for r in records].count("run_started") == 2
    last = records[-1]
    assert last["event"] == "run_finished" and last["result"]["run_id"] == 2
    tables = [t for s in last["result"]["steps"] for t in s["tables"]]
    assert {t["status"] for t in tables} == {"skipped"}


def test_log_format_without_a_file_replaces_the_display_on_stderr(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["run", str(demo), "--log-format", "json"], capsys)
    assert code == 0
    records = [json.loads(line) for line in err.splitlines()]  # nothing but JSON lines
    assert records[0]["event"] == "run_started"
    assert {r["event"] for r in records} >= {"table_started", "table_finished"}
    assert records[-1]["event"] == "run_finished" and records[-1]["exit_code"] == 0
    assert "every count and checksum matches" in out  # stdout unchanged

    (demo.parent / "broken.toml").write_text("version = [", encoding="utf-8")
    code, out, err = _run(["run", str(demo.parent / "broken.toml"), "--log-format", "text"], capsys)
    assert (code, out) == (2, "")
    ((line,),) = [err.splitlines()]  # one line: the record, not also the plain error
    assert TS.match(line) and line.endswith(" (exit 2)") and "invalid TOML" in line


# -- errors that end the command --------------------------------------------------------
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_plan_error_is_one_line_on_stderr_and_one_record(
    tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "bad.toml"
    plan.write_text('version = 1\nname = "bad"\nwat = 1\n', encoding="utf-8")
    log = tmp_path / "bad.log"
    code, out, err = _run(["run", str(plan), "--log-file", str(log), "--log-format", fmt], capsys)
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith("migrate: error: ") and "unknown key 'wat'" in line
    message = line.removeprefix("migrate: error: ")
    if fmt == "json":
        (record,) = _records(log)
        assert (record["level"], record["event"]) == ("error", "error")
        assert (record["exit_code"], record["message"]) == (2, message)
        assert record["plan_file"] == str(plan)
    else:
        (logged,) = log.read_text(encoding="utf-8").splitlines()
        assert TS.sub("", logged) == f"error: {message} (exit 2)"


def test_lock_held_is_recorded_naming_the_holder(tmp_path: Path, capsys) -> None:
    _seed(tmp_path / "src.db", 20)
    plan = write_plan(tmp_path, "sqlite:///src.db", "sqlite:///dst.db", chunk_rows=10, name="p")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from migrate.state import RunLock;"
            " RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(120)",
            str(tmp_path / "p-state.db"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    log = tmp_path / "p.log"
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, out, err = _run(
            ["run", str(plan), "--quiet", "--log-file", str(log), "--log-format", "json"], capsys
        )
    finally:
        holder.kill()
        holder.wait()
    assert (code, out) == (4, "")
    (record,) = _records(log)  # no run_started: the run never began
    assert (record["event"], record["exit_code"]) == ("error", 4)
    assert f"pid {holder.pid} on {socket.gethostname()} since " in record["message"]
    assert err == f"migrate: error: {record['message']}\n"


def test_a_state_error_is_recorded_and_the_lock_is_released(tmp_path: Path, capsys) -> None:
    _seed(tmp_path / "src.db", 20)
    plan = write_plan(tmp_path, "sqlite:///src.db", "sqlite:///dst.db", chunk_rows=10, name="p")
    (tmp_path / "p-state.db").write_bytes(b"not a state file " * 200)
    log = tmp_path / "p.log"
    code, out, err = _run(
        ["run", str(plan), "--log-file", str(log), "--log-format", "json"], capsys
    )
    assert (code, out) == (1, "")
    (record,) = _records(log)
    assert (record["event"], record["exit_code"]) == ("error", 1)
    assert err == f"migrate: error: {record['message']}\n"
    assert str(tmp_path / "p-state.db") in record["message"]
    (tmp_path / "p-state.db").unlink()
    assert main(["run", str(plan), "--quiet"]) == 0  # this process let go of the lock


def test_a_failed_connection_ends_the_log_with_exit_1_and_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "Hunter2-s3cret-pw"
    monkeypatch.setenv("MIGRATE_T_PW", secret)
    plan = write_plan(
        tmp_path, "mysql://migrator:${MIGRATE_T_PW}@127.0.0.1:1/erp", "sqlite:///dst.db", name="p"
    )
    for fmt in ("text", "json"):
        log = tmp_path / f"p.{fmt}.log"
        code, out, err = _run(
            ["run", str(plan), "--log-file", str(log), "--log-format", fmt], capsys
        )
        assert code == 1
        text = log.read_text(encoding="utf-8")
        assert secret not in text + out + err
        assert "cannot connect" in text
    last = _records(tmp_path / "p.json.log")[-1]
    assert (last["event"], last["status"], last["exit_code"]) == ("run_finished", "failed", 1)
    assert last["level"] == "error"


def _wait_for_event(log: Path, event: str, proc: subprocess.Popen[str]) -> None:
    """Until ``log`` holds a JSON record of ``event``; fails if ``proc`` ends first."""
    deadline = time.monotonic() + 120  # a guard against a hang, not a timing assertion
    while time.monotonic() < deadline:
        if log.exists() and any(
            json.loads(line)["event"] == event for line in log.read_text().splitlines()
        ):
            return
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {event}"
        time.sleep(0.05)
    raise AssertionError(f"no {event} record in {log}")


def test_sigterm_during_a_run_exits_5_and_is_recorded(tmp_path: Path) -> None:
    _seed(tmp_path / "src.db", 50_000)
    plan = write_plan(
        tmp_path, "sqlite:///src.db", "sqlite:///dst.db", chunk_rows=100, workers=1, name="p"
    )
    log = tmp_path / "p.log"
    argv = [str(CONSOLE_SCRIPT), "run", str(plan), "--quiet", "--log-file", str(log)]
    proc = subprocess.Popen(
        [*argv, "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_event(log, "run_started", proc)
        os.kill(proc.pid, signal.SIGSTOP)  # frozen: it cannot finish before the SIGTERM
        assert proc.poll() is None, "the run finished before it could be stopped"
        os.kill(proc.pid, signal.SIGTERM)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 5, out + err
    assert "Traceback" not in err
    last = _records(log)[-1]
    assert last["exit_code"] == 5 and last["level"] == "warning"
    assert last["event"] in ("run_finished", "error")


def test_stderr_that_is_the_log_file_is_not_written_twice(tmp_path: Path) -> None:
    """The cron line appends the command's own output to its log: a JSON log stays pure
    JSON lines, whether the run succeeds or is refused."""
    _seed(tmp_path / "src.db", 30)
    plan = write_plan(tmp_path, "sqlite:///src.db", "sqlite:///dst.db", chunk_rows=10, name="p")
    log = tmp_path / "p.log"
    argv = [str(CONSOLE_SCRIPT), "run", str(plan), "--log-file", str(log), "--log-format", "json"]
    with open(log, "ab") as sink:
        done = subprocess.run(argv, stdout=sink, stderr=sink, timeout=300)
    assert done.returncode == 0
    (tmp_path / "p-state.db").write_bytes(b"not a state file " * 200)
    with open(log, "ab") as sink:
        done = subprocess.run(argv, stdout=sink, stderr=sink, timeout=300)
    assert done.returncode == 1
    records = _records(log)  # every line parses
    assert [r["event"] for r in records if r["event"] in ("run_finished", "error")] == [
        "run_finished",
        "error",
    ]


def test_a_bug_is_a_traceback_on_stderr_and_a_record_with_it(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class BrokenRunner:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def run(self, command: str) -> RunResult:
            raise RuntimeError("a bug in the runner")

    monkeypatch.setattr("migrate.runner.Runner", BrokenRunner)
    log = tmp_path / "bug.log"
    code, out, err = _run(
        ["run", str(demo), "--log-file", str(log), "--log-format", "json"], capsys
    )
    assert (code, out) == (1, "")
    assert "Traceback" in err and "RuntimeError: a bug in the runner" in err
    assert err.splitlines()[-1] == (
        "migrate: internal error (a bug); the state is safe to rerun from"
    )
    records = _records(log)
    assert [r["event"] for r in records] == ["run_started", "error"]
    assert (records[1]["exit_code"], records[1]["level"]) == (1, "error")
    assert "RuntimeError: a bug in the runner" in records[1]["traceback"]
    assert main(["run", str(demo), "--quiet"]) != 4  # the lock was released


# -- flags that do not go together, and bad paths ---------------------------------------
def test_dry_run_with_a_log_is_a_usage_error_and_writes_nothing(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = demo.parent / "x.log"
    for extra in (["--log-file", str(log)], ["--log-format", "json"]):
        code, out, err = _run(["run", str(demo), "--dry-run", *extra], capsys)
        assert (code, out) == (2, "")
        assert err.splitlines() == [
            "migrate: error: --log-file and --log-format are for runs; --dry-run writes"
            " nothing (--dry-run --json gives its report as JSON)"
        ]
    assert sorted(p.name for p in demo.parent.iterdir()) == ["demo.toml"]


def test_a_log_path_that_cannot_be_written_is_a_one_line_usage_error(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = demo.parent / "a-folder"
    folder.mkdir()
    code, out, err = _run(["run", str(demo), "--log-file", str(folder)], capsys)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"migrate: error: --log-file {folder}: cannot open it for appending: Is a directory"
    ]
    assert not (demo.parent / ".demo").exists()  # refused before anything ran


def test_run_help_documents_the_log_and_cutover_with_an_example(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for text in (
        "--log-file PATH",
        "--log-format {text,json}",
        "--cutover",
        "migrate run plan.toml --quiet --log-file /var/log/migrate/erp.log --log-format json",
        "run_started",
        "run_finished",
    ):
        assert text in out, text


@pytest.mark.parametrize("flag", [False, True])
def test_cutover_reaches_the_runner(
    demo: Path, flag: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    class FakeRunner:
        def __init__(self, plan: Any, state: Any, progress: Any, **kwargs: Any) -> None:
            seen.update(kwargs)
            self.plan = plan

        def run(self, command: str) -> RunResult:
            return RunResult(self.plan.name, 1, "done")

    monkeypatch.setattr("migrate.runner.Runner", FakeRunner)
    code, _, err = _run(["run", str(demo), "--quiet"] + (["--cutover"] if flag else []), capsys)
    assert code == 0, err
    assert seen.get("cutover", False) is flag


# -- the pieces -------------------------------------------------------------------------
def test_run_log_masks_secrets_in_text_and_in_every_json_string() -> None:
    secret = 'pa"ss\\word-42'  # JSON escapes it: masking the finished line would miss it
    for fmt in ("text", "json"):
        buf = io.StringIO()
        log = RunLog.to_stream(buf, fmt)
        log.secrets = frozenset({secret})
        log.write(
            "error",
            "message",
            f"could not log in with {secret}",
            message=f"could not log in with {secret}",
            nested={"list": [secret, 1], secret: "as a key"},
        )
        text = buf.getvalue()
        assert secret not in text and json.dumps(secret)[1:-1] not in text
        assert "***" in text
        if fmt == "json":
            record = json.loads(text)
            assert record["message"] == "could not log in with ***"
            assert record["nested"] == {"list": ["***", 1], "***": "as a key"}


def test_log_progress_json_events() -> None:
    buf = io.StringIO()
    progress = LogProgress(RunLog.to_stream(buf, "json"), interval=0)
    progress.table_started("s", "orders", 1000, 200)
    progress.advance("s", "orders", 300)
    progress.table_finished("s", "orders", 1000, 0.5)
    progress.message("s.orders: chunk 3 was cut off by a crash")
    records = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [(r["level"], r["event"]) for r in records] == [
        ("info", "table_started"),
        ("info", "progress"),
        ("info", "table_finished"),
        ("warning", "message"),
    ]
    assert {k: records[0][k] for k in ("step", "table", "total", "done")} == {
        "step": "s",
        "table": "orders",
        "total": 1000,
        "done": 200,
    }
    assert (records[1]["rows"], records[1]["total"]) == (500, 1000)
    assert (records[2]["rows"], records[2]["seconds"], records[2]["rate"]) == (1000, 0.5, 2000)
    assert records[3]["message"] == "s.orders: chunk 3 was cut off by a crash"
