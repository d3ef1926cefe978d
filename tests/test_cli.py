"""The ``migrate`` command on the demo plan (no server): run, rerun, status, dry run, docs."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from importlib.metadata import version
from pathlib import Path

import pytest

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
    assert "every count matches" in out
    assert "Traceback" not in err
    for table in DEMO_TABLES:
        assert re.search(rf"^\s*{table}\s.*\bmatch\b", out, re.M), table
    assert (demo.parent / ".demo" / "state.db").exists()
    assert (demo.parent / ".demo" / "cloud.db").exists()

    code, out, err = _run(["run", str(demo)], capsys)
    assert code == 0, out + err
    assert "nothing to do" in out
    assert "every count matches" in out


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


def test_dry_run_writes_nothing(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _listing(demo.parent)
    assert before == ["demo.toml"]
    code, out, err = _run(["run", str(demo), "--dry-run"], capsys)
    assert code == 0, out + err
    assert "dry run" in out
    for table in DEMO_TABLES:
        assert table in out
    assert _listing(demo.parent) == before

    code, out, err = _run(["run", str(demo), "--dry-run", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["problems"] == 0
    ((step,),) = [w["steps"] for w in report["waves"]]
    assert sorted(t["table"] for t in step["tables"]) == sorted(DEMO_TABLES)
    assert _listing(demo.parent) == before


def test_dry_run_after_a_run_writes_nothing(
    demo_done: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = demo_done.parent
    before = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    _run(["run", str(demo_done), "--dry-run"], capsys)
    after = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
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
