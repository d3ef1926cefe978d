"""``migrate schedule``: --every, the crontab line, and that line run the way cron runs it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from migrate.cli import main
from migrate.schedule import EVERY_HELP, migrate_command, parse_every

ROOT = Path(__file__).resolve().parent.parent
#: The console script pip installed beside this interpreter (what a user runs).
CONSOLE_SCRIPT = Path(sys.executable).parent / "migrate"
DEMO_TABLES = ["audit_log", "customers", "products", "orders", "order_items"]
#: The environment cron gives a job (crontab(5)): no virtualenv, no user variables.
CRON_ENV = {"PATH": "/usr/bin:/bin", "SHELL": "/bin/sh", "LANG": "C.UTF-8"}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """plans/demo.toml in a folder whose name needs quoting and cron's % escape."""
    folder = tmp_path / "my plans 100%"
    folder.mkdir()
    plan = folder / "demo.toml"
    shutil.copy(ROOT / "plans" / "demo.toml", plan)
    return plan


# -- --every ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "cron"),
    [
        ("1m", "*/1 * * * *"),
        ("5m", "*/5 * * * *"),
        ("15m", "*/15 * * * *"),
        ("7m", "*/7 * * * *"),
        ("59m", "*/59 * * * *"),
        ("60m", "0 */1 * * *"),
        ("1h", "0 */1 * * *"),
        ("2h", "0 */2 * * *"),
        ("12h", "0 */12 * * *"),
        ("24h", "0 0 * * *"),
        ("1d", "0 0 * * *"),
    ],
)
def test_every_gives_cron_time_fields(spec: str, cron: str) -> None:
    assert parse_every(spec).cron == cron


def test_every_that_does_not_divide_the_hour_says_so() -> None:
    assert parse_every("15m").note is None
    note = parse_every("7m").note
    assert note is not None and "56" in note and "4 minutes" in note


@pytest.mark.parametrize(
    "spec",
    ["0m", "61m", "90m", "5h", "7h", "48h", "2d", "0d", "15", "m", "15min", "-5m", "1.5h", "15M"],
)
def test_any_other_every_is_a_one_line_usage_error(
    spec: str, demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["schedule", str(demo), f"--every={spec}"], capsys)
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"migrate: error: --every {spec}: not a schedule this accepts; use {EVERY_HELP}"
    ]


# -- the printed lines --------------------------------------------------------------------
_FIELD = {0: (0, 59), 1: (0, 23)}


def _valid_cron_fields(fields: list[str]) -> bool:
    """Minute and hour: ``*``, ``*/N`` or a number in range; the other three ``*``."""
    for i, f in enumerate(fields):
        if i >= 2:
            if f != "*":
                return False
            continue
        lo, hi = _FIELD[i]
        m = re.fullmatch(r"\*|\*/(\d+)|(\d+)", f)
        if not m:
            return False
        if m.group(1) and not 1 <= int(m.group(1)) <= hi:
            return False
        if m.group(2) and not lo <= int(m.group(2)) <= hi:
            return False
    return True


def _split(out: str) -> tuple[list[str], list[str], str]:
    """(comment lines, the 5 time fields, the command) of the printed crontab text."""
    lines = out.splitlines()
    comments = [line for line in lines if line.startswith("#")]
    entries = [line for line in lines if line.strip() and not line.startswith("#")]
    assert len(entries) == 1, out
    assert lines[-1] == entries[0], "the crontab entry comes after the comments"
    assert len(comments) == len(lines) - 1, "only comments before the entry"
    parts = entries[0].split(" ", 5)
    assert _valid_cron_fields(parts[:5]), parts
    return comments, parts[:5], parts[5]


def _as_cron_runs_it(command: str) -> str:
    """Cron turns ``\\%`` into ``%`` (and a bare ``%`` into a newline) before ``sh -c``."""
    assert re.search(r"(?<!\\)%", command) is None, "a bare % would end the command"
    return command.replace("\\%", "%")


def _check_command(command: str, plan: Path, log: Path, fmt: str, exe: list[str]) -> list[str]:
    words = shlex.split(_as_cron_runs_it(command))
    n = len(exe)
    assert words[:3] == ["cd", str(plan.parent.resolve()), "&&"], words
    assert words[3 : 3 + n] == exe, words
    assert all(Path(w).is_absolute() for w in exe if w != "-m" and w != "migrate.cli")
    assert words[3 + n :] == [
        "run",
        str(plan.resolve()),
        "--quiet",
        "--log-file",
        str(log),
        "--log-format",
        fmt,
        ">>",
        str(log),
        "2>&1",
    ], words
    return words


def _source_counts(folder: Path) -> dict[str, int]:
    db = sqlite3.connect(folder / ".demo" / "legacy.db")
    try:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in DEMO_TABLES}
    finally:
        db.close()


def _target_counts(folder: Path) -> dict[str, int]:
    db = sqlite3.connect(folder / ".demo" / "cloud.db")
    try:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in DEMO_TABLES}
    finally:
        db.close()


def _cron_run(shell: str, command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shell, "-c", _as_cron_runs_it(command)],
        cwd=cwd,
        env={**CRON_ENV, "HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_console_script_prints_a_line_that_cron_can_run(demo: Path, tmp_path: Path) -> None:
    """The real ``migrate`` executable: its own absolute path is in the line, and the line,
    run by /bin/sh from another folder with cron's bare environment, runs the plan and
    appends everything to the log (nothing reaches the console, so cron mails nothing)."""
    assert CONSOLE_SCRIPT.is_file(), f"no console script at {CONSOLE_SCRIPT}: pip install -e ."
    printed = subprocess.run(
        [str(CONSOLE_SCRIPT), "schedule", str(demo), "--every", "15m"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert printed.returncode == 0, printed.stderr
    assert printed.stderr == ""
    comments, fields, command = _split(printed.stdout)
    assert fields == ["*/15", "*", "*", "*", "*"]
    log = demo.parent.resolve() / "demo.log"  # the default: beside the plan, named after it
    _check_command(command, demo, log, "text", [str(CONSOLE_SCRIPT)])
    text = "\n".join(comments)
    assert "every 15 minutes" in text
    assert "code 4" in text and str(demo.parent.resolve() / ".demo" / "state.db.lock") in text
    assert "environment" not in text  # the demo plan reads no ${VAR}
    assert "Note:" not in text

    elsewhere = tmp_path / "cron-home"
    elsewhere.mkdir()
    assert not log.exists()
    for _ in range(2):
        done = _cron_run("/bin/sh", command, elsewhere)
        assert done.returncode == 0, done.stdout + done.stderr
        assert (done.stdout, done.stderr) == ("", "")
    lines = log.read_text(encoding="utf-8").splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z ", line) for line in lines)
    assert sum(" run started: plan demo " in line for line in lines) == 2  # appended
    assert lines[-1].endswith("run 2: done: every count and checksum matches")
    assert any("nothing to do" in line for line in lines)
    counts = _source_counts(demo.parent)
    assert _target_counts(demo.parent) == counts
    assert all(n > 0 for n in counts.values())
    assert list(elsewhere.iterdir()) == []  # it ran in the plan's folder, not cron's


def test_in_process_the_line_uses_python_m_and_bash_runs_it(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Called from another program (here pytest), there is no ``migrate`` executable to
    name: the line runs ``sys.executable -m migrate.cli``. A relative --log-file is made
    absolute against the current folder; json logs are one JSON object per line."""
    monkeypatch.chdir(tmp_path)
    argv = ["schedule", str(demo), "--every", "2h", "--log-file", "logs/x.log"]
    argv += ["--log-format", "json"]
    code, out, err = _run(argv, capsys)
    assert code == 2  # the folder of the log must exist: the shell opens the log first
    assert out == ""
    assert err.splitlines() == [
        f"migrate: error: --log-file {tmp_path / 'logs' / 'x.log'}: folder {tmp_path / 'logs'}"
        " does not exist (the shell opens the log before migrate starts: create the folder"
        " first)"
    ]
    (tmp_path / "logs").mkdir()
    code, out, err = _run(argv, capsys)
    assert (code, err) == (0, "")
    _, fields, command = _split(out)
    assert fields == ["0", "*/2", "*", "*", "*"]
    log = tmp_path / "logs" / "x.log"
    exe = migrate_command()
    assert exe == [os.path.abspath(sys.executable), "-m", "migrate.cli"]
    _check_command(command, demo, log, "json", exe)

    done = _cron_run("/bin/bash", command, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (done.stdout, done.stderr) == ("", "")
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert records[0]["event"] == "run_started"
    assert records[-1]["event"] == "run_finished"
    assert (records[-1]["status"], records[-1]["exit_code"]) == ("done", 0)
    finished = {r["table"]: r["rows"] for r in records if r["event"] == "table_finished"}
    assert finished == _source_counts(demo.parent)


def test_environment_variable_names_are_listed_never_their_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = tmp_path / "erp.toml"
    plan.write_text(
        """version = 1
name = "erp"
# ${IN_A_COMMENT} is not read
[connections]
erp = { url = "mysql://migrator:${MIGRATE_T_PW}@${MIGRATE_T_HOST}:3306/erp" }
rds = { url = "postgresql://migrator:${MIGRATE_T_RDS_PW}@rds.internal:5432/erp" }
[[steps]]
name = "erp-db"
source = "erp"
target = "rds"
tables = ["${MIGRATE_T_PW}_x"]
""",
        encoding="utf-8",
    )
    values = {
        "MIGRATE_T_PW": "Hunter2-first-secret",
        "MIGRATE_T_HOST": "db-host-secret.example",
        "MIGRATE_T_RDS_PW": "second-secret-value",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    code, out, err = _run(["schedule", str(plan), "--every", "1d"], capsys)
    assert (code, err) == (0, "")
    comments, fields, _ = _split(out)
    assert fields == ["0", "0", "*", "*", "*"]
    listed = [c for c in comments if "from the environment" in c]
    assert listed == [
        "# The plan reads MIGRATE_T_PW, MIGRATE_T_HOST, MIGRATE_T_RDS_PW from the environment,"
        " and cron jobs do not have your environment variables."
    ]
    assert any("top of the crontab" in c for c in comments)
    assert any(f"chmod 600 {tmp_path / 'erp.env'}" in c for c in comments)
    for value in values.values():
        assert value not in out
    assert "IN_A_COMMENT" not in out

    monkeypatch.delenv("MIGRATE_T_RDS_PW")  # checked like `run`: an unset variable is an error
    code, out, err = _run(["schedule", str(plan), "--every", "1d"], capsys)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"migrate: error: {plan}:6: connections.rds.url: environment variable"
        " ${MIGRATE_T_RDS_PW} is not set"
    ]


def test_a_bad_plan_is_refused_as_run_refuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "bad.toml"
    plan.write_text('version = 1\nname = "bad"\nwat = 1\n', encoding="utf-8")
    code, out, err = _run(["schedule", str(plan), "--every", "15m"], capsys)
    run_code, _, run_err = _run(["run", str(plan)], capsys)
    assert (code, out) == (2, "")
    assert (run_code, run_err) == (2, err)
    assert len(err.splitlines()) == 1 and "unknown key 'wat'" in err
    assert "Traceback" not in err


def test_every_is_required(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["schedule", str(demo)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "migrate: error: the following arguments are required: --every"


def test_migrate_command_names_the_running_executable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "bin" / "migrate"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    script.chmod(0o755)
    link = tmp_path / "migrate"
    link.symlink_to(script)
    fallback = [os.path.abspath(sys.executable), "-m", "migrate.cli"]

    monkeypatch.setattr(sys, "argv", [str(script), "schedule"])
    assert migrate_command() == [str(script)]
    monkeypatch.setattr(sys, "argv", [str(link)])  # a symlink is kept, not followed
    assert migrate_command() == [str(link)]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["bin/migrate"])  # relative: made absolute
    assert migrate_command() == [str(script)]
    monkeypatch.setenv("PATH", str(script.parent))
    monkeypatch.setattr(sys, "argv", ["migrate"])  # a bare name: found on PATH
    assert migrate_command() == [str(script)]
    monkeypatch.setattr(sys, "argv", [str(ROOT / "migrate" / "cli.py")])  # python -m
    assert migrate_command() == fallback
    script.chmod(0o644)  # not executable
    monkeypatch.setattr(sys, "argv", [str(script)])
    assert migrate_command() == fallback
