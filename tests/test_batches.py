"""Batches in ``migrate run``: ``--batch``, the stop before the next batch when a batch
fails or fails validation, ``--continue-on-error``, and the per batch and layer summary.

SQLite only: no server needed. A batch "fails validation" for real: its target table
exists with a trigger that changes every row loaded into it, so the checksums differ.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from migrate.cli import main


def _db(path: Path, sql: str) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(sql)
    db.close()


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    """Two batches: ``office`` (one step whose target changes rows as they load) and
    ``business`` (a platform step and a data-layer step)."""
    _db(
        tmp_path / "src.db",
        """
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
        INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c');
        CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER NOT NULL);
        INSERT INTO orders VALUES (1, 10), (2, 20);
        """,
    )
    _db(
        tmp_path / "office.db",
        """
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
        CREATE TRIGGER mangle AFTER INSERT ON notes BEGIN
            UPDATE notes SET body = body || '!' WHERE id = NEW.id;
        END;
        """,
    )
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.txt").write_text("hello")
    plan = tmp_path / "plan.toml"
    plan.write_text(
        """version = 1
name = "batches"
state = "state.db"
[defaults]
validate = ["count", "checksum"]
[connections]
src = { url = "sqlite:///src.db" }
office = { url = "sqlite:///office.db" }
erp = { url = "sqlite:///erp.db" }
share = { url = "file:files" }
archive = { url = "file:archive" }
[[batches]]
name = "office"
[[batches]]
name = "business"
[[steps]]
name = "notes"
batch = "office"
source = "src"
target = "office"
tables = ["notes"]
mode = "full"
if_exists = "truncate"
[[steps]]
name = "erp-db"
batch = "business"
source = "src"
target = "erp"
tables = ["orders"]
mode = "full"
[[steps]]
name = "erp-files"
batch = "business"
source = "share"
target = "archive"
""",
        encoding="utf-8",
    )
    return plan


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main([*argv, "--json", "--quiet"])
    return code, json.loads(capsys.readouterr().out)


def test_a_batch_that_fails_validation_stops_the_run_before_the_next_batch(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(["run", str(plan)], capsys)
    assert code == 3, out
    by_step = {s["name"]: s for s in out["steps"]}
    assert by_step["notes"]["status"] == "differences"
    for later in ("erp-db", "erp-files"):
        assert by_step[later]["status"] == "not run"
        assert "batch office failed validation" in by_step[later]["error"]
    assert "later batches not run: business" in out["message"]
    assert not (plan.parent / "erp.db").exists()
    assert not (plan.parent / "archive").exists()
    assert [(w["batch"], w["layer"], w["status"]) for w in out["waves"]] == [
        ("office", "platform", "differences"),
        ("business", "platform", "not run"),
        ("business", "data", "not run"),
    ]


def test_continue_on_error_runs_the_later_batches(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(["run", str(plan), "--continue-on-error"], capsys)
    assert code == 3, out
    assert [(w["batch"], w["layer"], w["status"]) for w in out["waves"]] == [
        ("office", "platform", "differences"),
        ("business", "platform", "done"),
        ("business", "data", "done"),
    ]
    assert out["waves"][1]["steps"] == {"erp-db": "done"}
    assert out["waves"][1]["tables"] == 1
    assert out["waves"][2]["files"] == 1
    assert (plan.parent / "archive" / "a.txt").read_text() == "hello"


def test_batch_runs_that_batch_only(plan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["run", str(plan), "--batch", "business"], capsys)
    assert code == 0, out
    assert [s["name"] for s in out["steps"]] == ["erp-db", "erp-files"]
    with sqlite3.connect(plan.parent / "office.db") as db:
        assert db.execute("SELECT COUNT(*) FROM notes").fetchone() == (0,)
    db.close()
    with sqlite3.connect(plan.parent / "erp.db") as db:
        assert db.execute("SELECT * FROM orders ORDER BY id").fetchall() == [(1, 10), (2, 20)]
    db.close()


def test_console_summary_shows_each_batch_and_layer(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", str(plan), "--quiet"])
    out = capsys.readouterr().out
    assert code == 3
    assert "by batch and layer" in out
    lines = [ln for ln in out.splitlines() if ln.strip().startswith(("office", "business"))]
    assert any("office" in ln and "differences" in ln and "notes" in ln for ln in lines)
    assert any("business" in ln and "not run" in ln and "erp-files" in ln for ln in lines)


def test_an_unknown_batch_is_a_plan_error(plan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(plan), "--batch", "nope"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        f"migrate: error: --batch nope: no such batch in {plan} (batches: office, business)"
    )
