"""What the core does with two of Oracle's capabilities, on endpoints that declare them.

An Oracle server cannot run on these machines (the Oracle endpoint's own SQL is
compile-tested in tests/test_oracle.py), so SQLite endpoints declare the capability and
the core's part is tested for real:

- ``snapshot_reads = "scn"``: a full copy reads inside ``snapshot()``, the SCN is
  recorded in the state and in the run's notes, a resumed copy asks for the same SCN, and
  ``--restart`` takes a new one;
- ``empty_string_is_null``: validation against such an endpoint turns the
  ``empty_is_null`` rule on by itself and says so; without the capability, the same rows
  differ.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
from edge_data import run_json, table_results

from connectors.sql.sqlite import SQLiteEndpoint
from migrate import registry
from migrate.endpoints import Capabilities
from migrate.runner import SNAPSHOT_NOTE


class SCNSource(SQLiteEndpoint):
    """SQLite declaring Oracle-style snapshot reads; remembers every snapshot asked for."""

    capabilities: ClassVar[Capabilities] = replace(
        SQLiteEndpoint.capabilities, snapshot_reads="scn"
    )
    calls: ClassVar[list[str | None]] = []
    next_scn: ClassVar[int] = 1000

    def resolve_url(self, url: Any) -> Any:
        return super().resolve_url(url.set(drivername="sqlite"))

    @contextlib.contextmanager
    def snapshot(self, text: bool, at: str | None = None) -> Iterator[str]:
        SCNSource.calls.append(at)
        if at is None:
            SCNSource.next_scn += 1
        yield at or str(SCNSource.next_scn)


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(registry.BUILTIN, "scnlite", (f"{__name__}:SCNSource", "table"))
    SCNSource.calls.clear()
    SCNSource.next_scn = 1000
    src = tmp_path / "src.db"
    db = sqlite3.connect(src)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(1, 21)])
    db.commit()
    db.close()
    path = tmp_path / "plan.toml"
    path.write_text(
        f"""version = 1
name = "scn"
state = "scn-state.db"
[connections]
src = {{ url = "scnlite:///{src}" }}
dst = {{ url = "sqlite:///{tmp_path / "dst.db"}" }}
[[steps]]
name = "copy"
source = "src"
target = "dst"
tables = ["*"]
chunk_rows = 5
""",
        encoding="utf-8",
    )
    return path


def _state(plan: Path) -> sqlite3.Connection:
    return sqlite3.connect(plan.parent / "scn-state.db")


def test_full_copy_reads_one_snapshot_and_records_its_scn(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = run_json(plan, capsys)
    assert code == 0, result
    t = table_results(result)["t"]
    assert SCNSource.calls == [None]
    assert "read as of SCN 1001" in t["notes"]
    assert SNAPSHOT_NOTE in t["notes"]
    (scn,) = _state(plan).execute("SELECT snapshot FROM tables WHERE name = 't'").fetchone()
    assert scn == "1001"


def test_a_resumed_copy_reads_the_same_snapshot(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_json(plan, capsys)
    assert code == 0
    db = _state(plan)  # cut the copy off after its second chunk, as a crash would
    db.execute("UPDATE tables SET status = 'copying' WHERE name = 't'")
    db.execute("UPDATE chunks SET status = 'copying' WHERE tbl = 't' AND seq > 2")
    db.commit()
    code, result = run_json(plan, capsys)
    assert code == 0, [s["error"] for s in result["steps"]]
    assert SCNSource.calls == [None, "1001"]
    t = table_results(result)["t"]
    assert (t["source_rows"], t["target_rows"]) == (20, 20)
    code, result = run_json(plan, capsys, "--restart")
    assert code == 0, result
    assert SCNSource.calls == [None, "1001", None]  # a fresh copy takes a fresh snapshot
    (scn,) = _state(plan).execute("SELECT snapshot FROM tables WHERE name = 't'").fetchone()
    assert scn == "1002"


def test_dry_run_says_the_copy_reads_one_snapshot(
    plan: Path, capsys: pytest.CaptureFixture[str], **_: Any
) -> None:
    capsys.readouterr()
    from migrate.cli import main

    assert main(["run", str(plan), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "AS OF SCN" in " ".join(out.split())
    assert SCNSource.calls == []


class EmptyIsNullTarget(SQLiteEndpoint):
    """SQLite declaring that it stores '' as NULL, as Oracle does."""

    capabilities: ClassVar[Capabilities] = replace(
        SQLiteEndpoint.capabilities, empty_string_is_null=True, engine="oracle"
    )

    def resolve_url(self, url: Any) -> Any:
        return super().resolve_url(url.set(drivername="sqlite"))


def test_validation_against_an_empty_is_null_engine_uses_the_rule_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from migrate.cli import main

    monkeypatch.setitem(registry.BUILTIN, "nulllite", (f"{__name__}:EmptyIsNullTarget", "table"))
    src, dst = tmp_path / "src.db", tmp_path / "dst.db"
    for path, rows in (
        (src, [(1, ""), (2, "x"), (3, None)]),
        (dst, [(1, None), (2, "x"), (3, None)]),
    ):
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        db.executemany("INSERT INTO t VALUES (?, ?)", rows)
        db.commit()
        db.close()

    def plan(scheme: str) -> Path:
        path = tmp_path / f"{scheme}.toml"
        path.write_text(
            f"""version = 1
name = "{scheme}"
state = "{scheme}-state.db"
[connections]
src = {{ url = "sqlite:///{src}" }}
dst = {{ url = "{scheme}:///{dst}" }}
[[steps]]
name = "copy"
source = "src"
target = "dst"
tables = ["*"]
""",
            encoding="utf-8",
        )
        return path

    capsys.readouterr()
    assert main(["validate", str(plan("nulllite")), "--json"]) == 0
    (check,) = json.loads(capsys.readouterr().out)["tables"]
    assert check["status"] == "equal"
    assert "empty string = NULL" in check["rules"]
    assert check["notes"][0] == (
        "the target stores '' as NULL (oracle): the rule empty_is_null is on for this"
        " table by itself"
    )
    assert check["ruled_ranges"] == 1  # equal only thanks to the rule
    assert main(["validate", str(plan("sqlite")), "--json"]) == 3  # the same rows differ
    (check,) = json.loads(capsys.readouterr().out)["tables"]
    assert check["changed"] == 1 and check["rules"] == []
