"""The state store: key encoding, schema version, plan ownership, and the run lock."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from migrate.errors import LockHeldError, StateError
from migrate.state import SCHEMA_VERSION, RunLock, State, decode_key, encode_key

KEYS = {
    "int": (42,),
    "big int": (2**63 - 1,),
    "negative int": (-7,),
    "str": ("客户-北京",),
    "str with quotes": ('a "b" \\ c',),
    "empty str": ("",),
    "decimal": (Decimal("12345.670"),),
    "negative decimal": (Decimal("-0.001"),),
    "datetime microseconds": (dt.datetime(2024, 2, 29, 23, 59, 59, 123456),),
    "datetime with zone": (
        dt.datetime(2024, 1, 1, 8, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    ),
    "date": (dt.date(1999, 12, 31),),
    "time": (dt.time(13, 14, 15, 999999),),
    "bytes": (b"\x00\xff\x10abc",),
    "None": (None,),
    "bool": (True,),
    "float": (0.1,),
    "composite": (3000, "SKU-00120", Decimal("1.50"), None, dt.date(2024, 5, 1), b"\x01"),
}


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_key_round_trip(key: tuple[object, ...]) -> None:
    text = encode_key(key)
    assert isinstance(text, str)
    json.loads(text)  # plain JSON, readable in the state file
    back = decode_key(text)
    assert back == key
    assert [type(v) for v in back] == [type(v) for v in key]
    # the exact representation survives too (scale of a decimal, microseconds, zone)
    assert [repr(v) for v in back] == [repr(v) for v in key]


def test_no_key_encodes_as_null() -> None:
    assert encode_key(None) is None
    assert decode_key(None) is None


def test_chinese_text_is_stored_readably() -> None:
    assert "客户" in encode_key(("客户",))  # type: ignore[operator]


def test_new_state_has_schema_version_6_and_its_plan(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.db"
    state = State(path, "erp")
    state.close()
    db = sqlite3.connect(path)
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert SCHEMA_VERSION == 6
    assert meta == {"schema_version": "6", "plan": "erp"}
    assert {
        "meta",
        "runs",
        "tables",
        "chunks",
        "undo",
        "watermarks",
        "streams",
        "validations",
        "files",
        "file_steps",
    } <= tables
    State(path, "erp").close()  # opening it again changes nothing
    db = sqlite3.connect(path)
    assert dict(db.execute("SELECT key, value FROM meta").fetchall()) == meta
    db.close()


def test_version_1_state_is_upgraded_keeping_its_progress(tmp_path: Path) -> None:
    from migrate.state import MIGRATIONS

    path = tmp_path / "state.db"
    db = sqlite3.connect(path)  # a state file as version 1 wrote it
    for statement in MIGRATIONS[1]:
        db.execute(statement)
    db.execute("INSERT INTO meta VALUES ('schema_version', '1'), ('plan', 'erp')")
    db.execute(
        "INSERT INTO tables (step, name, target_name, status, rows_copied)"
        " VALUES ('db', 'orders', 'orders', 'done', 42)"
    )
    db.commit()
    db.close()
    state = State(path, "erp")
    assert state.table("db", "orders")["rows_copied"] == 42
    state.set_watermark("db", "orders", "key", cursor="id", value=encode_key((42,)), add_pass=1)
    row = state.watermark("db", "orders")
    assert (row["kind"], row["cursor"], decode_key(row["value"]), row["passes"]) == (
        "key",
        "id",
        (42,),
        1,
    )
    check = {"step": "db", "table": "orders", "status": "equal", "diffs": [], "rules": []}
    state.record_validation(state.next_check_id(), None, check)
    assert state.last_validation("db", "orders")["status"] == "equal"
    state.record_files("share", 1, [{"path": "a/b.txt", "size": 3, "md5": "x"}])
    assert state.manifest("share")["a/b.txt"]["size"] == 3
    state.set_file_step("share", status="done")
    assert state.file_step("share")["status"] == "done"
    undo = state.record_undo(1, "db", "dst", "drop_table", "orders", {"source_table": "orders"})
    assert [r["id"] for r in state.undo_records()] == [undo]  # schema 6: undo.status
    state.mark_undo([undo], "undone")
    assert state.undo_records() == [] and not state.created_by_us("db", "dst", "orders")
    state.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("6",)
    db.close()


def _set_meta(path: Path, key: str, value: str) -> None:
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value=? WHERE key=?", (value, key))
    db.commit()
    db.close()


def test_state_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    State(path, "erp").close()
    _set_meta(path, "schema_version", "99")
    with pytest.raises(StateError) as info:
        State(path, "erp")
    assert str(info.value) == (
        f"{path} was written by a newer migrate (state schema 99, this one reads up to 6)"
    )
    assert info.value.exit_code == 1
    db = sqlite3.connect(path)  # and it is left as it was
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("99",)
    db.close()


def test_state_of_another_plan_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    State(path, "erp").close()
    with pytest.raises(StateError) as info:
        State(path, "crm")
    assert str(info.value) == f"{path} belongs to plan 'erp', not 'crm'"


def test_missing_state_is_refused_when_not_creating(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with pytest.raises(StateError) as info:
        State(path, "erp", create=False)
    assert str(info.value) == f"no state at {path}: nothing has run for this plan yet"
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_state_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite at all, just some text " * 100)
    with pytest.raises(StateError) as info:
        State(path, "erp")
    assert str(path) in str(info.value)


# -- the run lock ------------------------------------------------------------------------
HOLDER = (
    "import sys, time; from pathlib import Path; from migrate.state import RunLock;"
    " RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(120)"
)


def _start_holder(state_path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_second_acquire_fails_naming_the_holder_then_works_once_it_is_killed(
    tmp_path: Path,
) -> None:
    state_path = tmp_path / "state.db"
    holder = _start_holder(state_path)
    try:
        started = time.monotonic()
        with pytest.raises(LockHeldError) as info:
            RunLock(state_path).acquire()
        assert time.monotonic() - started < 5  # at once, it does not wait
        message = str(info.value)
        assert message.startswith(f"another run holds {state_path}.lock (pid {holder.pid} on ")
        assert info.value.exit_code == 4
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = RunLock(state_path)
    lock.acquire()  # the kernel dropped the dead holder's lock
    try:
        content = Path(f"{state_path}.lock").read_text()
        assert content.startswith(f"pid {os.getpid()} on ")
    finally:
        lock.release()


def test_lock_can_be_taken_again_after_release(tmp_path: Path) -> None:
    state_path = tmp_path / "state.db"
    first = RunLock(state_path)
    first.acquire()
    with pytest.raises(LockHeldError):
        RunLock(state_path).acquire()  # a second handle in the same process is refused too
    first.release()
    second = RunLock(state_path)
    second.acquire()
    second.release()
    second.release()  # releasing twice is harmless


def test_keys_keep_a_seventh_fractional_digit() -> None:
    """A SQL Server DATETIME2(7) / TIME(7) key boundary stored in the state comes back
    with its 100 ns digit, so a resumed copy starts exactly after it."""
    import datetime as dt

    from migrate.values import nanos_of, with_nanos

    stamp = with_nanos(dt.datetime(2024, 1, 2, 3, 4, 5, 123456), 700)
    tod = with_nanos(dt.time(23, 59, 59, 999999), 900)
    back = decode_key(encode_key((stamp, tod, dt.datetime(2024, 1, 1))))
    assert back is not None
    assert back == (stamp, tod, dt.datetime(2024, 1, 1))
    assert [nanos_of(v) for v in back] == [700, 900, 0]
