"""The embedded state store: one SQLite file per plan.

It records runs, per-table progress, chunks (key range, rows on both sides, status) and
undo records. Contracts:

- A chunk row is written with status ``writing`` and its key range *before* the target is
  touched, and set to ``done`` only after the target committed it. A crash in between
  leaves a ``writing`` chunk whose keys the next run deletes from the target before it
  copies the range again: nothing is lost and nothing is duplicated.
- The schema carries a version; :data:`MIGRATIONS` upgrades an older file step by step; a
  file from a newer version is refused.
- A table's ``status`` moves ``copying`` → ``copied`` (all chunks in) → ``indexed``
  (secondary indexes, sequences) → ``linked`` (foreign keys) → ``done`` or
  ``differences`` (after the table counts); ``failed`` keeps the last error and resumes
  like ``copying``.
- Nothing secret is stored: no URLs, only connection names.
- :class:`RunLock` (an ``flock`` on ``<state>.lock``) keeps a second run off the same
  state; the kernel releases it when the holder dies, so a dead holder never blocks.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from migrate.errors import LockHeldError, StateError
from migrate.values import nanos_of, with_nanos

SCHEMA_VERSION = 6

MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
            status TEXT NOT NULL, pid INTEGER, host TEXT, command TEXT, message TEXT)""",
        """CREATE TABLE tables (
            step TEXT NOT NULL, name TEXT NOT NULL, target_name TEXT NOT NULL,
            status TEXT NOT NULL, key_columns TEXT, est_rows INTEGER,
            source_rows INTEGER, target_rows INTEGER, chunks_done INTEGER NOT NULL DEFAULT 0,
            rows_copied INTEGER NOT NULL DEFAULT 0, run_id INTEGER, started_at TEXT,
            finished_at TEXT, seconds REAL, error TEXT, note TEXT,
            PRIMARY KEY (step, name))""",
        """CREATE TABLE chunks (
            step TEXT NOT NULL, tbl TEXT NOT NULL, seq INTEGER NOT NULL,
            lo TEXT, hi TEXT, status TEXT NOT NULL, source_rows INTEGER, target_rows INTEGER,
            run_id INTEGER, finished_at TEXT, PRIMARY KEY (step, tbl, seq))""",
        """CREATE TABLE undo (
            id INTEGER PRIMARY KEY, run_id INTEGER, step TEXT NOT NULL, connection TEXT,
            action TEXT NOT NULL, object TEXT NOT NULL, detail TEXT, created_at TEXT NOT NULL)""",
    ],
    2: [
        # where each table's catch-up stands: a cursor value (kind time|key) or, for cdc,
        # the binlog position of the snapshot its full copy came from (kind binlog)
        """CREATE TABLE watermarks (
            step TEXT NOT NULL, tbl TEXT NOT NULL, kind TEXT NOT NULL, cursor TEXT,
            value TEXT, as_of TEXT, passes INTEGER NOT NULL DEFAULT 0, last_rows INTEGER,
            last_changed INTEGER, last_deleted INTEGER, last_seconds REAL, last_pass_at TEXT,
            PRIMARY KEY (step, tbl))""",
        # one change stream per cdc step: the position the next pass reads from
        """CREATE TABLE streams (
            step TEXT PRIMARY KEY, kind TEXT NOT NULL, position TEXT, as_of TEXT,
            event_time TEXT, passes INTEGER NOT NULL DEFAULT 0, last_events INTEGER,
            last_seconds REAL, last_pass_at TEXT)""",
    ],
    3: [
        # checksum validations, one row per table per check (``check_id`` groups one
        # ``migrate validate`` or one run's validation); ``diffs`` holds the first
        # differing rows as shown (values masked when asked), never connection secrets
        """CREATE TABLE validations (
            id INTEGER PRIMARY KEY, check_id INTEGER NOT NULL, run_id INTEGER,
            step TEXT NOT NULL, tbl TEXT NOT NULL, target_tbl TEXT, method TEXT,
            status TEXT NOT NULL, source_rows INTEGER, target_rows INTEGER, chunks INTEGER,
            chunks_differing INTEGER, missing INTEGER, extra INTEGER, changed INTEGER,
            seconds REAL, rules TEXT, rules_used TEXT, notes TEXT, diffs TEXT, error TEXT,
            checked_at TEXT NOT NULL)""",
    ],
    4: [
        # the manifest of a file step: what the target holds from the source, one row per
        # file (kind file) or kept empty directory (kind dir); size and mtime are the
        # source's when it was copied, md5/sha256 of the bytes copied, etag what the
        # target reported (with the part size used, to recompute a multipart ETag)
        """CREATE TABLE files (
            step TEXT NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL, size INTEGER NOT NULL,
            mtime_ns INTEGER, md5 TEXT, sha256 TEXT, etag TEXT, parts INTEGER,
            part_size INTEGER, run_id INTEGER, copied_at TEXT NOT NULL,
            PRIMARY KEY (step, path))""",
        # one row per file step: whether its full copy finished, and the last run's numbers
        """CREATE TABLE file_steps (
            step TEXT PRIMARY KEY, status TEXT NOT NULL, runs INTEGER NOT NULL DEFAULT 0,
            files INTEGER, bytes INTEGER, last_copied INTEGER, last_bytes INTEGER,
            last_deleted INTEGER, last_seconds REAL, last_run_at TEXT, as_of TEXT)""",
    ],
    5: [
        # the point in time a table's full copy reads (Oracle: the SCN of AS OF SCN), so
        # that a resumed copy reads the same snapshot
        "ALTER TABLE tables ADD COLUMN snapshot TEXT",
    ],
    6: [
        # an undo record's fate: NULL while it can be rolled back, 'undone' once
        # ``migrate rollback`` applied it, 'accepted' once ``migrate cleanup`` dropped its
        # backup
        "ALTER TABLE undo ADD COLUMN status TEXT",
        "ALTER TABLE undo ADD COLUMN done_at TEXT",
    ],
}


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- key values <-> JSON ----------------------------------------------------------------
def encode_key(values: tuple[Any, ...] | None) -> str | None:
    """Encode a key tuple as JSON, tagging types JSON lacks, so ranges survive a restart."""
    if values is None:
        return None
    out = []
    for v in values:
        if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
            out.append(v)
        elif isinstance(v, float):
            out.append({"f": repr(v)})
        elif isinstance(v, Decimal):
            out.append({"d": str(v)})
        elif isinstance(v, dt.datetime):
            ns = nanos_of(v)  # a seventh fractional digit (SQL Server) is kept
            out.append({"dt7": [v.isoformat(), ns]} if ns else {"dt": v.isoformat()})
        elif isinstance(v, dt.date):
            out.append({"date": v.isoformat()})
        elif isinstance(v, dt.time):
            ns = nanos_of(v)
            out.append({"t7": [v.isoformat(), ns]} if ns else {"t": v.isoformat()})
        elif isinstance(v, dt.timedelta):
            out.append({"td": v.total_seconds()})
        elif isinstance(v, (bytes, bytearray, memoryview)):
            out.append({"b": bytes(v).hex()})
        else:
            out.append({"s": str(v)})
    return json.dumps(out, ensure_ascii=False)


def decode_key(text: str | None) -> tuple[Any, ...] | None:
    if text is None:
        return None
    out: list[Any] = []
    for v in json.loads(text):
        if not isinstance(v, dict):
            out.append(v)
            continue
        ((tag, raw),) = v.items()
        out.append(
            {
                "f": float,
                "d": Decimal,
                "dt": dt.datetime.fromisoformat,
                "dt7": lambda r: with_nanos(dt.datetime.fromisoformat(r[0]), int(r[1])),
                "date": dt.date.fromisoformat,
                "t": dt.time.fromisoformat,
                "t7": lambda r: with_nanos(dt.time.fromisoformat(r[0]), int(r[1])),
                "td": lambda s: dt.timedelta(seconds=s),
                "b": bytes.fromhex,
                "s": str,
            }[tag](raw)
        )
    return tuple(out)


class RunLock:
    """An exclusive, non-blocking lock beside the state file, naming its holder.

    The lock is an ``flock`` on ``<state>.lock``; the file holds one line,
    ``pid N on HOST since T`` (T in UTC), while a run holds it. The kernel releases the
    ``flock`` when the holder dies, however it dies; only :meth:`release` empties the line.
    """

    #: How long a refused run waits for a holder that has the lock but not yet its line.
    HOLDER_LINE_WAIT = 0.5

    def __init__(self, state_path: Path) -> None:
        self.path = state_path.with_name(state_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> str | None:
        """Take the lock at once or raise :class:`LockHeldError` naming the holder's pid,
        host and start time (it never waits for the holder to finish).

        Returns the line an earlier holder left behind (``pid N on HOST since T``) when
        that process ended without releasing (SIGKILL, power loss): this run takes its
        place. Returns None after a clean release or on first use.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder_line(fd)
            os.close(fd)
            raise LockHeldError(f"another run holds {self.path} ({holder})") from None
        previous = self._first_line(os.pread(fd, 4096, 0)) or None
        line = f"pid {os.getpid()} on {socket.gethostname()} since {now()}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, line.encode(), 0)
        self._fd = fd
        return previous

    def _holder_line(self, fd: int) -> str:
        """The holder's line; a holder that has just taken the lock writes it a moment later."""
        deadline = time.monotonic() + self.HOLDER_LINE_WAIT
        while True:
            line = self._first_line(os.pread(fd, 4096, 0))
            if line or time.monotonic() >= deadline:
                return line or "holder unknown"
            time.sleep(0.02)

    @staticmethod
    def _first_line(data: bytes) -> str:
        text = data.decode("utf-8", "replace").strip()
        return text.splitlines()[0].strip() if text else ""

    def release(self) -> None:
        """Empty the holder line, then unlock. Releasing twice is harmless."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class State:
    """Thread-safe access to the state file. Every write commits at once."""

    def __init__(
        self, path: Path, plan_name: str, *, create: bool = True, readonly: bool = False
    ) -> None:
        """Open (and create or upgrade) the state; ``readonly`` writes no file at all."""
        self.path = path
        if not path.exists() and (not create or readonly):
            raise StateError(f"no state at {path}: nothing has run for this plan yet")
        try:
            if readonly:  # immutable: not even the -shm/-wal files of WAL mode
                self.db = sqlite3.connect(
                    f"file:{path}?mode=ro&immutable=1",
                    uri=True,
                    check_same_thread=False,
                    isolation_level=None,
                )
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.execute("PRAGMA busy_timeout=10000")
        except sqlite3.DatabaseError as exc:
            raise StateError(f"cannot open state file {path}: {exc}") from None
        self.db.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        self._upgrade(plan_name, readonly)

    # -- schema --------------------------------------------------------------------------
    def _upgrade(self, plan_name: str, readonly: bool = False) -> None:
        try:
            has_meta = self.db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{self.path} is not a migrate state file: {exc}") from None
        version = 0
        if has_meta:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            owner = self.db.execute("SELECT value FROM meta WHERE key='plan'").fetchone()
            if owner and owner[0] != plan_name:
                raise StateError(f"{self.path} belongs to plan {owner[0]!r}, not {plan_name!r}")
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.path} was written by a newer migrate (state schema"
                f" {version}, this one reads up to {SCHEMA_VERSION})"
            )
        if readonly and version != SCHEMA_VERSION:
            raise StateError(
                f"{self.path} has state schema {version}; a run upgrades it to {SCHEMA_VERSION}"
            )
        while version < SCHEMA_VERSION:
            version += 1
            with self.transaction():
                for statement in MIGRATIONS[version]:
                    self.db.execute(statement)
                self.db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(version),)
                )
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('plan', ?)", (plan_name,))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        with self.lock:
            return self.db.execute(sql, params)

    def close(self) -> None:
        with self.lock:
            self.db.close()

    # -- runs ----------------------------------------------------------------------------
    def start_run(self, command: str) -> int:
        cur = self.execute(
            "INSERT INTO runs (started_at, status, pid, host, command) VALUES (?,?,?,?,?)",
            (now(), "running", os.getpid(), socket.gethostname(), command),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish_run(self, run_id: int, status: str, message: str | None = None) -> None:
        self.execute(
            "UPDATE runs SET finished_at=?, status=?, message=? WHERE id=?",
            (now(), status, message, run_id),
        )

    def last_run(self) -> sqlite3.Row | None:
        return self.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()

    # -- validations ---------------------------------------------------------------------
    def next_check_id(self) -> int:
        row = self.execute("SELECT COALESCE(MAX(check_id), 0) + 1 FROM validations").fetchone()
        return int(row[0])

    def record_validation(self, check_id: int, run_id: int | None, result: dict[str, Any]) -> None:
        """Store one table's validation (``result`` as :func:`migrate.validate.check_to_json`
        gives it)."""
        self.execute(
            """INSERT INTO validations (check_id, run_id, step, tbl, target_tbl, method,
            status, source_rows, target_rows, chunks, chunks_differing, missing, extra,
            changed, seconds, rules, rules_used, notes, diffs, error, checked_at)
            VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            (
                check_id,
                run_id,
                result["step"],
                result["table"],
                result.get("target_table"),
                result.get("method"),
                result["status"],
                result.get("source_rows"),
                result.get("target_rows"),
                result.get("chunks"),
                result.get("chunks_differing"),
                result.get("missing"),
                result.get("extra"),
                result.get("changed"),
                result.get("seconds"),
                json.dumps(result.get("rules") or []),
                json.dumps(result.get("rules_used") or {}),
                json.dumps(result.get("notes") or [], ensure_ascii=False),
                json.dumps(result.get("diffs") or [], ensure_ascii=False, default=str),
                result.get("error"),
                now(),
            ),
        )

    def last_validation(self, step: str, table: str) -> sqlite3.Row | None:
        return self.execute(
            "SELECT * FROM validations WHERE step=? AND tbl=? ORDER BY id DESC LIMIT 1",
            (step, table),
        ).fetchone()

    # -- tables --------------------------------------------------------------------------
    def table(self, step: str, name: str) -> sqlite3.Row | None:
        return self.execute("SELECT * FROM tables WHERE step=? AND name=?", (step, name)).fetchone()

    def tables(self, step: str | None = None) -> list[sqlite3.Row]:
        if step is None:
            return self.execute("SELECT * FROM tables ORDER BY rowid").fetchall()
        return self.execute("SELECT * FROM tables WHERE step=? ORDER BY rowid", (step,)).fetchall()

    def upsert_table(self, step: str, name: str, **fields: Any) -> None:
        with self.transaction() as db:
            if (
                db.execute("SELECT 1 FROM tables WHERE step=? AND name=?", (step, name)).fetchone()
                is None
            ):
                db.execute(
                    "INSERT INTO tables (step, name, target_name, status) VALUES (?,?,?,?)",
                    (step, name, fields.get("target_name", name), fields.get("status", "pending")),
                )
            if fields:
                cols = ", ".join(f"{k}=?" for k in fields)
                db.execute(
                    f"UPDATE tables SET {cols} WHERE step=? AND name=?",
                    (*fields.values(), step, name),
                )

    def reset_table(self, step: str, name: str) -> None:
        """Forget a table's load (chunks and counters) so it is copied again from scratch."""
        with self.transaction() as db:
            db.execute("DELETE FROM chunks WHERE step=? AND tbl=?", (step, name))
            db.execute("DELETE FROM tables WHERE step=? AND name=?", (step, name))
            db.execute("DELETE FROM watermarks WHERE step=? AND tbl=?", (step, name))

    # -- watermarks and change streams ----------------------------------------------------
    def watermark(self, step: str, table: str) -> sqlite3.Row | None:
        return self.execute(
            "SELECT * FROM watermarks WHERE step=? AND tbl=?", (step, table)
        ).fetchone()

    def set_watermark(self, step: str, table: str, kind: str, **fields: Any) -> None:
        """Create or update a table's watermark row; ``passes`` grows by ``add_pass``."""
        add_pass = int(fields.pop("add_pass", 0))
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO watermarks (step, tbl, kind) VALUES (?,?,?)",
                (step, table, kind),
            )
            sets = ", ".join([*(f"{k}=?" for k in fields), "kind=?", "passes=passes+?"])
            db.execute(
                f"UPDATE watermarks SET {sets} WHERE step=? AND tbl=?",
                (*fields.values(), kind, add_pass, step, table),
            )

    def stream(self, step: str) -> sqlite3.Row | None:
        return self.execute("SELECT * FROM streams WHERE step=?", (step,)).fetchone()

    def set_stream(self, step: str, kind: str, **fields: Any) -> None:
        """Create or update a step's change-stream row (``add_pass`` as for watermarks)."""
        add_pass = int(fields.pop("add_pass", 0))
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO streams (step, kind) VALUES (?,?)", (step, kind))
            sets = ", ".join([*(f"{k}=?" for k in fields), "passes=passes+?"])
            db.execute(
                f"UPDATE streams SET {sets} WHERE step=?", (*fields.values(), add_pass, step)
            )

    def drop_stream(self, step: str) -> None:
        self.execute("DELETE FROM streams WHERE step=?", (step,))

    # -- chunks --------------------------------------------------------------------------
    def chunks(self, step: str, table: str) -> list[sqlite3.Row]:
        return self.execute(
            "SELECT * FROM chunks WHERE step=? AND tbl=? ORDER BY seq", (step, table)
        ).fetchall()

    def chunk_writing(
        self,
        step: str,
        table: str,
        seq: int,
        lo: str | None,
        hi: str | None,
        source_rows: int,
        run_id: int,
    ) -> None:
        self.execute(
            "INSERT OR REPLACE INTO chunks (step, tbl, seq, lo, hi, status,"
            " source_rows, run_id) VALUES (?,?,?,?,?,?,?,?)",
            (step, table, seq, lo, hi, "writing", source_rows, run_id),
        )

    def chunk_done(
        self, step: str, table: str, seq: int, source_rows: int, target_rows: int
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE chunks SET status='done', source_rows=?, target_rows=?,"
                " finished_at=? WHERE step=? AND tbl=? AND seq=?",
                (source_rows, target_rows, now(), step, table, seq),
            )
            db.execute(
                "UPDATE tables SET chunks_done=chunks_done+1, rows_copied="
                "rows_copied+? WHERE step=? AND name=?",
                (target_rows, step, table),
            )

    def drop_chunk(self, step: str, table: str, seq: int) -> None:
        self.execute("DELETE FROM chunks WHERE step=? AND tbl=? AND seq=?", (step, table, seq))

    # -- file manifests ------------------------------------------------------------------
    def manifest(self, step: str) -> dict[str, sqlite3.Row]:
        """The files a step has copied, by path."""
        rows = self.execute("SELECT * FROM files WHERE step=?", (step,)).fetchall()
        return {r["path"]: r for r in rows}

    def record_files(
        self,
        step: str,
        run_id: int,
        copied: list[dict[str, Any]],
        removed: list[str] = (),  # type: ignore[assignment]
        undo: list[tuple[str, str, str, dict[str, Any] | None]] = (),  # type: ignore[assignment]
    ) -> None:
        """In one transaction: manifest rows for ``copied`` (dicts with path, kind, size,
        mtime_ns, md5, sha256, etag, parts, part_size), rows of ``removed`` paths dropped,
        and ``undo`` records ``(connection, action, object, detail)``."""
        stamp = now()
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO files (step, path, kind, size, mtime_ns, md5, sha256,"
                " etag, parts, part_size, run_id, copied_at) VALUES"
                " (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        step,
                        f["path"],
                        f.get("kind", "file"),
                        f["size"],
                        f.get("mtime_ns"),
                        f.get("md5"),
                        f.get("sha256"),
                        f.get("etag"),
                        f.get("parts"),
                        f.get("part_size"),
                        run_id,
                        stamp,
                    )
                    for f in copied
                ],
            )
            db.executemany(
                "DELETE FROM files WHERE step=? AND path=?", [(step, p) for p in removed]
            )
            db.executemany(
                "INSERT INTO undo (run_id, step, connection, action, object, detail,"
                " created_at) VALUES (?,?,?,?,?,?,?)",
                [
                    (run_id, step, conn, action, obj, json.dumps(d) if d else None, stamp)
                    for conn, action, obj, d in undo
                ],
            )

    def created_files(self, step: str, connection: str) -> set[str]:
        """Paths a step recorded as created on ``connection`` (``delete_file`` undo rows)."""
        rows = self.execute(
            "SELECT object FROM undo WHERE step=? AND connection=? AND action='delete_file'"
            " AND status IS NOT 'undone'",
            (step, connection),
        ).fetchall()
        return {r[0] for r in rows}

    def file_step(self, step: str) -> sqlite3.Row | None:
        return self.execute("SELECT * FROM file_steps WHERE step=?", (step,)).fetchone()

    def file_steps(self) -> list[sqlite3.Row]:
        return self.execute("SELECT * FROM file_steps ORDER BY step").fetchall()

    def set_file_step(self, step: str, **fields: Any) -> None:
        """Create or update a file step's row (``runs`` is incremented when given as +1)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO file_steps (step, status) VALUES (?, 'pending')", (step,)
            )
            if fields:
                cols = ", ".join(f"{k}=?" for k in fields)
                db.execute(f"UPDATE file_steps SET {cols} WHERE step=?", (*fields.values(), step))

    def reset_file_step(self, step: str) -> None:
        """Forget a file step's manifest (``--restart``): everything is copied again."""
        with self.transaction() as db:
            db.execute("DELETE FROM files WHERE step=?", (step,))
            db.execute("DELETE FROM file_steps WHERE step=?", (step,))

    # -- undo ----------------------------------------------------------------------------
    def record_undo(
        self,
        run_id: int,
        step: str,
        connection: str,
        action: str,
        obj: str,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Record, before a change is made to a target, how to undo it; returns the
        record's id (a backup table tags the rows it keeps for this record with it)."""
        cur = self.execute(
            "INSERT INTO undo (run_id, step, connection, action, object, detail,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            (run_id, step, connection, action, obj, json.dumps(detail) if detail else None, now()),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def undo_records(
        self,
        *,
        run_id: int | None = None,
        steps: tuple[str, ...] = (),
        status: str | None = None,
    ) -> list[sqlite3.Row]:
        """Undo records, newest first (the order a rollback applies them); ``status``
        None selects the records still to be undone."""
        sql = "SELECT * FROM undo WHERE " + ("status IS NULL" if status is None else "status=?")
        params: list[Any] = [] if status is None else [status]
        if run_id is not None:
            sql += " AND run_id=?"
            params.append(run_id)
        if steps:
            sql += f" AND step IN ({','.join('?' * len(steps))})"
            params.extend(steps)
        return self.execute(sql + " ORDER BY id DESC", tuple(params)).fetchall()

    def put_row(self, table: str, where: dict[str, Any], row: dict[str, Any] | None) -> None:
        """Put one row of a state table back as an undo record kept it: ``row`` (all its
        columns) replaces the row matching ``where``; None deletes that row."""
        assert table in ("watermarks", "streams", "files")
        cond = " AND ".join(f"{k}=?" for k in where)
        with self.transaction() as db:
            db.execute(f"DELETE FROM {table} WHERE {cond}", tuple(where.values()))
            if row is not None:
                cols = ", ".join(row)
                marks = ",".join("?" * len(row))
                db.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(row.values()))

    def mark_undo(self, ids: list[int], status: str) -> None:
        """Set the fate of undo records (``undone`` or ``accepted``)."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE undo SET status=?, done_at=? WHERE id=?",
                [(status, now(), i) for i in ids],
            )

    def created_by_us(self, step: str, connection: str, obj: str) -> bool:
        return (
            self.execute(
                "SELECT 1 FROM undo WHERE step=? AND connection=? AND"
                " action='drop_table' AND object=? AND status IS NOT 'undone'",
                (step, connection, obj),
            ).fetchone()
            is not None
        )
