"""``migrate rollback`` and ``migrate cleanup`` through the command line, on SQLite and
local folders (no server needed).

The plan has two batches: ``docs`` copies a folder into one that already holds two of
its files (kept under ``.migrate-backup/`` before being overwritten), ``erp`` loads a
table into an existing table holding other rows (``if_exists = "truncate"``: its rows
are kept in a backup table first). Each test compares the targets as read back (rows,
tables, every file with its content) with what they held before.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from migrate.cli import main
from migrate.plan import load_plan
from migrate.rollback import rollback
from migrate.runner import Endpoints
from migrate.state import RunLock, State

PLAN = """version = 1
name = "rb"
state = "state.db"
[defaults]
validate = ["count"]
[connections]
src = { url = "sqlite:///src.db" }
erp = { url = "sqlite:///erp.db" }
share = { url = "file:files" }
archive = { url = "file:archive" }
[[batches]]
name = "docs"
[[batches]]
name = "erp"
[[steps]]
name = "docs-files"
batch = "docs"
source = "share"
target = "archive"
mode = "full+incremental"
deletes = "propagate"
[[steps]]
name = "erp-db"
batch = "erp"
source = "src"
target = "erp"
tables = ["orders"]
mode = "full"
if_exists = "truncate"
"""


def _db(path: Path, sql: str) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(sql)
    db.close()


def _put(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    _db(
        tmp_path / "src.db",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER NOT NULL);"
        " INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30);",
    )
    _db(
        tmp_path / "erp.db",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER NOT NULL);"
        " INSERT INTO orders VALUES (7, 70), (8, 80);",
    )
    for rel, text in {"a.txt": "ours a", "d/c.txt": "ours c", "b.txt": "b"}.items():
        _put(tmp_path / "files", rel, text)
    for rel, text in {"a.txt": "theirs a", "d/c.txt": "theirs c"}.items():
        _put(tmp_path / "archive", rel, text)
    path = tmp_path / "plan.toml"
    path.write_text(PLAN, encoding="utf-8")
    return path


def targets(plan: Path) -> tuple[list[tuple[int, int]], list[str], dict[str, str]]:
    """What the targets hold: the rows of erp's ``orders``, erp's tables, and every file
    (and empty folder, as ``name/``) under the archive folder, backups included."""
    db = sqlite3.connect(plan.with_name("erp.db"))
    try:
        rows = db.execute("SELECT id, total FROM orders ORDER BY id").fetchall()
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    finally:
        db.close()
    files = {}
    root = plan.with_name("archive")
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for f in filenames:
            files[(here / f).relative_to(root).as_posix()] = (here / f).read_text()
        if not dirnames and not filenames and here != root:
            files[here.relative_to(root).as_posix() + "/"] = ""
    return rows, sorted(tables), files


BEFORE = (
    [(7, 70), (8, 80)],
    ["orders"],
    {"a.txt": "theirs a", "d/c.txt": "theirs c"},
)


def statuses(plan: Path) -> dict[int, str | None]:
    db = sqlite3.connect(plan.with_name("state.db"))
    try:
        return dict(db.execute("SELECT id, status FROM undo ORDER BY id").fetchall())
    finally:
        db.close()


def run(plan: Path, capsys: Any) -> dict[str, Any]:
    capsys.readouterr()
    code = main(["run", str(plan), "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    return out


def cli_json(capsys: Any, *argv: str) -> tuple[int, dict[str, Any]]:
    """``migrate ARGV --json``: the exit code and the JSON result."""
    capsys.readouterr()
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def cli_text(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """``migrate ARGV``: the exit code, stdout and stderr."""
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_run_keeps_what_it_overwrites_and_a_rollback_gives_it_back(
    plan: Path, capsys: Any
) -> None:
    assert targets(plan) == BEFORE
    run(plan, capsys)
    rows, tables, files = targets(plan)
    assert rows == [(1, 10), (2, 20), (3, 30)] and tables == ["migrate_bak_orders", "orders"]
    assert {p for p in files if not p.startswith(".migrate-backup/")} == {
        "a.txt",
        "b.txt",
        "d/c.txt",
    }
    code, out = cli_json(capsys, "rollback", str(plan))
    assert code == 0 and out["error"] is None, out
    assert [a["done"] for a in out["actions"]] == [True] * 5
    assert targets(plan) == BEFORE
    assert set(statuses(plan).values()) == {"undone"}


def test_dry_run_writes_the_scripts_and_changes_nothing(plan: Path, capsys: Any) -> None:
    run(plan, capsys)
    after, marks = targets(plan), statuses(plan)
    for command in ("rollback", "cleanup"):
        code, out = cli_json(capsys, command, str(plan), "--dry-run")
        assert code == 0 and out["dry_run"] and out["error"] is None, out
        assert not any(a["done"] for a in out["actions"])
        assert sorted(out["scripts"]) == ["archive", "erp"]
        sql = Path(out["scripts"]["erp"]).read_text(encoding="utf-8")
        sh = Path(out["scripts"]["archive"]).read_text(encoding="utf-8")
        assert "DROP TABLE IF EXISTS migrate_bak_orders;" in sql
        assert sh.startswith("#!/bin/sh\n") and os.access(out["scripts"]["archive"], os.X_OK)
        if command == "rollback":
            assert "DELETE FROM orders;" in sql and "\nmove " in sh and "\ndelete " in sh
            assert [a["action"] for a in out["actions"]] == [
                "emptied_table",
                "drop_backup_table",
                "restore_file",
                "restore_file",
                "delete_file",
            ]
        else:  # only the backups go
            assert "DELETE FROM orders" not in sql and "\nmove " not in sh
            assert sh.count("\ndelete ") == 2
        assert targets(plan) == after
        assert statuses(plan) == marks
    # the same actions as text, with the scripts named
    code, text, _ = cli_text(capsys, "rollback", str(plan), "--dry-run")
    assert code == 0 and "rollback: would 5 of 5 action(s)" in text
    assert "script for erp: " in text and targets(plan) == after


def test_a_run_is_refused_while_a_later_run_changed_the_same_step(plan: Path, capsys: Any) -> None:
    first = run(plan, capsys)["run_id"]
    _put(plan.with_name("files"), "a.txt", "ours a, second version")
    second = run(plan, capsys)["run_id"]  # overwrites a.txt again; erp-db (mode full) skips
    after_first_files = {"a.txt": "ours a", "b.txt": "b", "d/c.txt": "ours c"}

    code, _, err = cli_text(capsys, "rollback", str(plan), "--run", str(first))
    assert code == 2
    assert (
        f"--run {first}: run {second} changed step docs-files after it; roll back run"
        f" {second} first" in err
    )
    assert len(err.strip().splitlines()) == 1
    # the step the later run did not touch can go on its own
    code, out = cli_json(capsys, "rollback", str(plan), "--run", str(first), "--step", "erp-db")
    assert code == 0, out
    rows, tables, files = targets(plan)
    assert (rows, tables) == BEFORE[:2]
    assert {p: t for p, t in files.items() if not p.startswith(".migrate-")} == {
        **after_first_files,
        "a.txt": "ours a, second version",
    }
    code, out = cli_json(capsys, "rollback", str(plan), "--run", str(second))
    assert code == 0, out
    files = targets(plan)[2]
    assert {p: t for p, t in files.items() if not p.startswith(".migrate-")} == after_first_files
    code, out = cli_json(capsys, "rollback", str(plan), "--run", str(first))
    assert code == 0, out
    assert targets(plan) == BEFORE
    code, _, err = cli_text(capsys, "rollback", str(plan), "--run", "99")
    assert code == 2 and "--run 99: no such run" in err


def test_batch_and_step_choose_what_is_rolled_back(plan: Path, capsys: Any) -> None:
    run(plan, capsys)
    after = targets(plan)
    code, out = cli_json(capsys, "rollback", str(plan), "--batch", "erp")
    assert code == 0, out
    assert {a["step"] for a in out["actions"]} == {"erp-db"}
    rows, tables, files = targets(plan)
    assert (rows, tables, files) == (*BEFORE[:2], after[2])
    code, out = cli_json(capsys, "rollback", str(plan), "--batch", "erp")
    assert code == 0 and out["actions"] == [], out  # nothing left in that batch
    code, out = cli_json(capsys, "rollback", str(plan), "--step", "docs-files")
    assert code == 0 and {a["step"] for a in out["actions"]} == {"docs-files"}, out
    assert targets(plan) == BEFORE
    for option, name in (("--batch", "nope"), ("--step", "nope")):
        code, _, err = cli_text(capsys, "rollback", str(plan), option, name)
        assert code == 2 and f"{option} nope: no such" in err


def test_cleanup_accepts_and_a_rollback_then_has_nothing_to_do(plan: Path, capsys: Any) -> None:
    run(plan, capsys)
    rows, _, files = targets(plan)
    code, text, _ = cli_text(capsys, "cleanup", str(plan))
    assert code == 0 and "accepted 5 recorded change(s)" in text, text
    ours = {p: t for p, t in files.items() if not p.startswith(".migrate-backup/")}
    assert targets(plan) == (rows, ["orders"], ours)  # backup table and folder gone
    assert set(statuses(plan).values()) == {"accepted"}
    code, text, _ = cli_text(capsys, "rollback", str(plan))
    assert code == 0 and "nothing to roll back" in text
    code, text, _ = cli_text(capsys, "cleanup", str(plan))
    assert code == 0 and "no backup to drop" in text
    assert targets(plan) == (rows, ["orders"], ours)
    # the next run: nothing to copy, nothing to keep; its own changes can be rolled back
    out = run(plan, capsys)
    assert out["steps"][0]["files"]["copied"] == 0
    _put(plan.with_name("files"), "new.txt", "new")
    run(plan, capsys)
    code, out = cli_json(capsys, "rollback", str(plan))
    assert code == 0 and [a["object"] for a in out["actions"]] == ["new.txt"], out
    assert targets(plan) == (rows, ["orders"], ours)


def test_cleanup_dry_run_says_it_accepts_changes_that_kept_no_backup(
    plan: Path, capsys: Any
) -> None:
    """A created file keeps no backup, yet a cleanup accepts it (it can no longer be
    rolled back): the dry run says so instead of "no recorded change"."""
    run(plan, capsys)
    cli_text(capsys, "cleanup", str(plan))
    _put(plan.with_name("files"), "new.txt", "new")
    run(plan, capsys)
    code, text, _ = cli_text(capsys, "cleanup", str(plan), "--dry-run")
    assert code == 0 and "would accept 1 recorded change(s)" in text, text
    assert "no recorded change" not in text, text
    assert max(statuses(plan).items()) == (max(statuses(plan)), None)  # still restorable
    code, out = cli_json(capsys, "cleanup", str(plan), "--dry-run")
    assert code == 0 and out["dry_run"] and out["accepted"] == 1, out
    code, text, _ = cli_text(capsys, "cleanup", str(plan))
    assert code == 0 and "accepted 1 recorded change(s)" in text, text
    code, text, _ = cli_text(capsys, "cleanup", str(plan))
    assert code == 0 and "accepted" not in text and "no backup to drop" in text, text


def test_a_rollback_stopped_by_a_failing_action_finishes_when_run_again(
    plan: Path, capsys: Any
) -> None:
    run(plan, capsys)
    archive = plan.with_name("archive")
    # someone replaced the folder d with a file: c.txt cannot be put back in it
    (archive / "d" / "c.txt").unlink()
    (archive / "d").rmdir()
    (archive / "d").write_text("in the way")
    code, out = cli_json(capsys, "rollback", str(plan))
    assert code == 1, out
    assert [(a["object"], a["done"]) for a in out["actions"]] == [
        ("orders", True),
        ("migrate_bak_orders", True),
        ("d/c.txt", False),
        ("a.txt", False),
        ("b.txt", False),
    ]
    assert out["error"].startswith("undoing #3 (put back d/c.txt as it was before run 1")
    assert targets(plan)[:2] == BEFORE[:2]  # what was undone stays undone
    code, text, _ = cli_text(capsys, "rollback", str(plan), "--dry-run")
    assert code == 0 and "rollback: would 3 of 3 action(s)" in text
    (archive / "d").unlink()
    code, out = cli_json(capsys, "rollback", str(plan))
    assert code == 0, out
    assert [a["object"] for a in out["actions"]] == ["d/c.txt", "a.txt", "b.txt"]
    assert targets(plan) == BEFORE
    assert set(statuses(plan).values()) == {"undone"}


def test_a_cleanup_stopped_part_way_leaves_nothing_marked_restorable_that_is_not(
    plan: Path, capsys: Any
) -> None:
    """The backup table goes first (newest record first), then a backup file cannot be
    deleted: the records whose backups are gone are accepted at once (a rollback of the
    table step then has nothing to do, not a restore from a dropped table); the others
    stay restorable, and a second cleanup finishes."""
    run(plan, capsys)
    (backup,) = plan.with_name("archive").glob(".migrate-backup/*/a.txt")
    backup.unlink()
    (backup / "someone's").mkdir(parents=True)  # a folder in the way: not deletable
    code, text, _ = cli_text(capsys, "cleanup", str(plan))
    assert code == 1 and "cleaning #2 (delete the backup of a.txt" in text, text
    assert "accepted 3 recorded change(s) whose backups are gone; run migrate cleanup" in text
    assert statuses(plan) == {1: None, 2: None, 3: "accepted", 4: "accepted", 5: "accepted"}
    code, out = cli_json(capsys, "rollback", str(plan), "--step", "erp-db")
    assert code == 0 and out["actions"] == [], out
    assert targets(plan)[:2] == ([(1, 10), (2, 20), (3, 30)], ["orders"])
    (backup / "someone's").rmdir()  # the folder goes, the backup is back
    backup.rmdir()
    backup.write_text("theirs a")
    code, out = cli_json(capsys, "cleanup", str(plan))
    assert code == 0 and out["accepted"] == 2, out
    assert set(statuses(plan).values()) == {"accepted"}
    assert not plan.with_name("archive").joinpath(".migrate-backup").exists()


def test_a_record_on_a_connection_the_plan_no_longer_has_is_a_plan_error(
    plan: Path, capsys: Any
) -> None:
    run(plan, capsys)
    after = targets(plan)
    plan.write_text(PLAN.replace("archive", "vault"), encoding="utf-8")
    for command in ("rollback", "cleanup"):
        code, _, err = cli_text(capsys, command, str(plan))
        assert code == 2, err
        assert "undo record #3 (run 1, step docs-files) changed connection 'archive'" in err
        assert "Traceback" not in err
    assert targets(plan) == after
    assert set(statuses(plan).values()) == {None}


class _InterruptAfterCommit:
    """The plan's endpoints, except that the first undo statements a database runs are
    followed, once they committed, by a SIGINT to this process (a Ctrl-C at the worst
    moment: the change is made, the state does not know yet)."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.sent = False

    def get(self, name: str) -> Any:
        endpoint = self.endpoints.get(name)
        if not hasattr(endpoint, "run_statements"):
            return endpoint
        outer = self

        class Interrupting:
            def __getattr__(self, attr: str) -> Any:
                return getattr(endpoint, attr)

            def run_statements(self, statements: list[str]) -> None:
                endpoint.run_statements(statements)
                if not outer.sent:
                    outer.sent = True
                    os.kill(os.getpid(), signal.SIGINT)

        return Interrupting()


def test_an_interrupt_while_a_record_is_undone_never_undoes_it_twice(
    plan: Path, capsys: Any
) -> None:
    """An interrupt arriving while a record is applied takes effect once the record is
    marked undone, so running the rollback again goes on with the next record (undoing
    an emptied table twice, where the undo cannot tell it ran, would empty it)."""
    run(plan, capsys)
    loaded = load_plan(plan)
    state = State(loaded.state_path, loaded.name, create=False)
    endpoints = Endpoints(loaded, 1, dry_run=False)
    try:
        with pytest.raises(KeyboardInterrupt):
            rollback(loaded, state, _InterruptAfterCommit(endpoints))
    finally:
        endpoints.close()
        state.close()
    assert targets(plan)[0] == BEFORE[0]
    code, out = cli_json(capsys, "rollback", str(plan))
    assert code == 0, out
    assert targets(plan) == BEFORE  # not emptied by undoing #5 again
    assert [a["id"] for a in out["actions"]] == [4, 3, 2, 1]
    assert set(statuses(plan).values()) == {"undone"}


def test_without_a_state_there_is_nothing_to_roll_back(plan: Path, capsys: Any) -> None:
    code, _, err = cli_text(capsys, "rollback", str(plan))
    assert code == 2 and "nothing has run for this plan yet" in err
    assert targets(plan) == BEFORE


def test_a_name_with_a_line_break_stays_inside_the_sql_script_comments(
    tmp_path: Path, capsys: Any
) -> None:
    """The comment above each block names the table; a line break in that name must not
    end the comment (what follows would run as SQL when a DBA runs the script)."""
    odd = "odd\nDROP TABLE keep; --"
    _db(
        tmp_path / "src.db",
        f'CREATE TABLE "{odd}" (id INTEGER PRIMARY KEY, v TEXT);'
        f" INSERT INTO \"{odd}\" VALUES (1, 'a');",
    )
    _db(tmp_path / "dst.db", "CREATE TABLE keep (id INTEGER);")
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'version = 1\nname = "odd"\nstate = "state.db"\n[connections]\n'
        'src = { url = "sqlite:///src.db" }\ndst = { url = "sqlite:///dst.db" }\n'
        '[[steps]]\nname = "s"\nsource = "src"\ntarget = "dst"\nmode = "full"\n',
        encoding="utf-8",
    )
    run(plan, capsys)
    code, out = cli_json(capsys, "rollback", str(plan), "--dry-run")
    assert code == 0, out
    script = Path(out["scripts"]["dst"]).read_text(encoding="utf-8")
    with sqlite3.connect(tmp_path / "dst.db") as db:  # what `sqlite3 dst.db < script` does
        db.executescript(script)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert tables == {"keep"}


def test_two_connections_alike_once_made_file_names_keep_a_script_each(
    tmp_path: Path, capsys: Any
) -> None:
    for rel in ("one/a.txt", "two/b.txt"):
        _put(tmp_path, rel, rel)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'version = 1\nname = "alike"\nstate = "state.db"\n[connections]\n'
        'one = { url = "file:one" }\ntwo = { url = "file:two" }\n'
        '"to x" = { url = "file:x" }\n"to_x" = { url = "file:y" }\n'
        '[[steps]]\nname = "s1"\nsource = "one"\ntarget = "to x"\n'
        '[[steps]]\nname = "s2"\nsource = "two"\ntarget = "to_x"\n',
        encoding="utf-8",
    )
    run(plan, capsys)
    code, out = cli_json(capsys, "rollback", str(plan), "--dry-run")
    assert code == 0, out
    assert len(set(out["scripts"].values())) == 2
    texts = {c: Path(p).read_text(encoding="utf-8") for c, p in out["scripts"].items()}
    assert "a.txt" in texts["to x"] and "b.txt" in texts["to_x"]


def test_rollback_and_cleanup_wait_for_no_run_holding_the_lock(plan: Path, capsys: Any) -> None:
    run(plan, capsys)
    after, marks = targets(plan), statuses(plan)
    lock = RunLock(plan.with_name("state.db"))
    lock.acquire()
    try:
        for command in ("rollback", "cleanup"):
            code, _, err = cli_text(capsys, command, str(plan))
            assert code == 4 and "another run holds" in err, err
    finally:
        lock.release()
    assert (targets(plan), statuses(plan)) == (after, marks)
    code, out = cli_json(capsys, "rollback", str(plan))
    assert code == 0 and targets(plan) == BEFORE, out


SHARED = """version = 1
name = "shared"
state = "state.db"
[connections]
one = { url = "sqlite:///one.db" }
two = { url = "sqlite:///two.db" }
dst = { url = "sqlite:///dst.db" }
[[steps]]
name = "a"
source = "one"
target = "dst"
tables = ["t"]
mode = "incremental"
cursor = "upd"
[[steps]]
name = "b"
source = "two"
target = "dst"
tables = ["t"]
mode = "incremental"
cursor = "upd"
"""


def test_a_backup_table_two_steps_share_is_kept_until_neither_needs_it(
    tmp_path: Path, capsys: Any
) -> None:
    """Steps a and b catch up into the same target table, so their overwritten rows go
    to one backup table: rolling back a alone must not drop what b's rollback needs."""
    schema = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, upd INTEGER NOT NULL);"
    _db(tmp_path / "one.db", schema + "INSERT INTO t VALUES (1,'new',1),(2,'new',1);")
    _db(tmp_path / "two.db", schema + "INSERT INTO t VALUES (3,'new',1),(4,'new',1);")
    _db(
        tmp_path / "dst.db",
        schema + "INSERT INTO t VALUES (1,'o',1),(2,'o',1),(3,'o',1),(4,'o',1);",
    )
    plan = tmp_path / "shared.toml"
    plan.write_text(SHARED, encoding="utf-8")

    def rows() -> tuple[list[tuple[Any, ...]], list[str]]:
        with sqlite3.connect(tmp_path / "dst.db") as db:
            data = db.execute("SELECT id, v FROM t ORDER BY id").fetchall()
            names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        db.close()
        return data, sorted(names)

    before = rows()
    code, out, err = cli_text(capsys, "run", str(plan), "--quiet")
    assert code == 0, out + err
    assert rows() == ([(1, "new"), (2, "new"), (3, "new"), (4, "new")], ["migrate_bak_t", "t"])
    code, result = cli_json(capsys, "rollback", str(plan), "--step", "a")
    assert code == 0, result
    assert any("backup table migrate_bak_t is kept" in n and "(s) b " in n for n in result["notes"])
    assert rows() == ([(1, "o"), (2, "o"), (3, "new"), (4, "new")], ["migrate_bak_t", "t"])
    code, result = cli_json(capsys, "rollback", str(plan), "--step", "b")
    assert code == 0, result
    assert rows()[0] == before[0]
    code, result = cli_json(capsys, "rollback", str(plan))  # a's drop of the backup table
    assert code == 0, result
    assert rows() == before


def test_sql_scripts_end_plsql_blocks_with_a_slash(tmp_path: Path) -> None:
    """Oracle before 23ai drops a table in a PL/SQL block: SQL*Plus runs it at a "/"
    line; plain statements end with ";"."""
    from migrate.rollback import Action, write_scripts

    (tmp_path / "p.toml").write_text(
        'version = 1\nname = "p"\n[connections]\nora = { url = "sqlite:///x.db" }\n'
        'src = { url = "sqlite:///y.db" }\n[[steps]]\nname = "s"\nsource = "src"\n'
        'target = "ora"\ntables = ["*"]\n',
        encoding="utf-8",
    )
    plan = load_plan(tmp_path / "p.toml")

    class Target:  # what write_scripts asks of a database endpoint
        def describe(self) -> str:
            return "Oracle 19c"

        def undo_statements(self, record: dict[str, Any]) -> list[str]:
            return []

    class Endpoints:
        def get(self, name: str) -> Target:
            return Target()

    record = {"id": 3, "run_id": 1, "step": "s", "connection": "ora", "action": "drop_table"}
    block = "BEGIN EXECUTE IMMEDIATE 'DROP TABLE \"T\"'; EXCEPTION WHEN OTHERS THEN NULL; END;"
    action = Action(record, "drop table T", "sql", statements=[block, 'DELETE FROM "B"'])
    (path,) = write_scripts(plan, "rollback", [action], Endpoints()).values()
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    at = lines.index(block)
    assert lines[at + 1 : at + 3] == ["/", 'DELETE FROM "B";']
