"""``migrate rollback`` and ``migrate cleanup``: undo what runs changed on the targets.

Every change a run makes to a target is recorded in the state's ``undo`` table before it
is made (see ``migrate/backup.py``, ``migrate/filecopy.py``): tables created, rows kept in
a backup table before they were overwritten or deleted, files created, files moved to a
backup folder before they were overwritten or deleted. This module turns those records
back into actions.

Contracts:

- Records are undone newest first: the reverse of the order the changes were made, so
  the last run goes first and, within a run, the data layer and the last batch go first.
- ``--run R`` undoes one run's changes; it is refused while a later run still has
  changes to the same steps (those must go first). ``--batch``/``--step`` undo every run's
  changes to those steps.
- Before anything is applied, the actions are written as plain scripts, one per target
  connection, in ``<state folder>/<state stem>.rollback/<time>/``: ``<connection>.sql``
  for databases (the exact statements the tool runs), ``<connection>.sh`` for file
  systems and ``<connection>.json`` (a list of object operations) for object stores. They
  name connections, never their URLs or credentials.
- Each record is applied and then marked ``undone`` on its own, so an interrupted or
  failed rollback is resumed by running the command again: the records left are the
  ones not yet undone. An interrupt (Ctrl-C, SIGTERM) arriving while one record is
  applied takes effect once it is marked (a second one at once), so a record done is
  never done again (undoing a record twice is harmless only where its undo can tell it
  ran; records of older versions cannot). The state is put back with it: watermarks
  and binlog positions to where they were, manifests to the files they describe (a
  record of an older version that kept no manifest row forgets the path's row, so the
  next run copies it again), and a table whose load was undone is copied afresh by the
  next run.
- Every record names a target connection of the plan; one the plan no longer has is a
  plan error before anything is done.
- ``migrate cleanup`` (the migration is accepted) drops the backup tables and backup
  files and marks the records ``accepted``: they can no longer be rolled back. A record
  is accepted as soon as what kept its previous state is gone (a backup file; a backup
  table, with every selected record whose rows it held); the rest once every backup is
  gone. So a cleanup that stops part way leaves nothing marked restorable that is not,
  and running it again goes on.
- Nothing is written anywhere with ``dry_run`` except the scripts.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.errors import MigrateError, PlanError
from migrate.plan import Plan, redact
from migrate.planner import select_steps
from migrate.state import State

#: records that only put the state back (nothing to do on a target, not in scripts)
STATE_ACTIONS = frozenset({"restore_watermark", "restore_stream"})
#: database records whose undo makes the table's load start afresh
RELOAD_ACTIONS = frozenset({"drop_table", "emptied_table", "replaced_table"})
FILE_ACTIONS = frozenset({"delete_file", "restore_file", "make_dir", "delete_dir"})


@dataclass
class Action:
    """One undo record and what undoing it takes."""

    record: dict[str, Any]
    what: str  # one line for people
    kind: str  # sql | files | state
    statements: list[str] = field(default_factory=list)
    ops: list[Any] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.record["id"])


@dataclass
class RollbackResult:
    """What a rollback (or cleanup) did or, with ``dry_run``, would do."""

    command: str  # rollback | cleanup
    dry_run: bool
    actions: list[Action] = field(default_factory=list)
    scripts: dict[str, str] = field(default_factory=dict)  # connection → file
    done: list[int] = field(default_factory=list)
    error: str | None = None
    #: cleanup: the records accepted (no longer to be rolled back); with ``dry_run``, the
    #: records it would accept
    accepted: int = 0
    notes: list[str] = field(default_factory=list)


def _records(rows: list[Any]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        d = dict(zip(r.keys(), tuple(r), strict=True))
        d["detail"] = json.loads(d["detail"]) if d["detail"] else {}
        out.append(d)
    return out


def select(
    plan: Plan,
    state: State,
    *,
    run_id: int | None = None,
    batch: str | None = None,
    steps: tuple[str, ...] = (),
    status: str | None = None,
) -> list[dict[str, Any]]:
    """The undo records a command applies, newest first (see the module contract)."""
    chosen = select_steps(plan, [batch] if batch else [], steps)
    records = _records(state.undo_records(run_id=run_id, steps=chosen, status=status))
    if run_id is not None and status is None:
        if state.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is None:
            raise PlanError(f"--run {run_id}: no such run in {state.path}")
        touched = sorted({r["step"] for r in records})
        if touched:
            later = state.execute(
                "SELECT MIN(run_id), step FROM undo WHERE status IS NULL AND run_id > ?"
                f" AND step IN ({','.join('?' * len(touched))}) GROUP BY step ORDER BY 1",
                (run_id, *touched),
            ).fetchone()
            if later is not None:
                raise PlanError(
                    f"--run {run_id}: run {later[0]} changed step {later[1]} after it; roll"
                    f" back run {later[0]} first (or leave out --run to roll back every run)"
                )
    return records


def describe(record: dict[str, Any]) -> str:
    """One line saying what undoing ``record`` does."""
    a, obj, d = record["action"], record["object"], record["detail"]
    run = f"run {record['run_id']}"
    backup = d.get("backup")
    return {
        "drop_table": f"drop table {obj} ({run} created it)",
        "drop_backup_table": f"drop backup table {obj}",
        "drop_foreign_key": f"drop foreign key {d.get('name')} of {obj} ({run} created it)",
        "restore_rows": f"restore the rows of {obj} that {run} overwrote or deleted"
        + (f" (kept in {backup})" if backup else " (kept in the state file)"),
        "emptied_table": f"restore the rows {obj} held before {run} emptied it (from {backup})",
        "replaced_table": f"create {obj} again as it was before {run} replaced it, with its"
        f" rows (from {backup})",
        "restore_watermark": f"put the catch-up position of {d.get('source_table', obj)} back"
        f" to where it was before {run}",
        "restore_stream": f"put the binlog position of step {record['step']} back to where it"
        f" was before {run}",
        "delete_file": f"delete {obj} ({run} created it)",
        "restore_file": f"put back {obj} as it was before {run} (from {backup})",
        "make_dir": f"make directory {obj} again",
        "delete_dir": f"remove directory {obj} ({run} made it)",
    }.get(a, f"{a} {obj}")


def _endpoint_kind(endpoint: Any) -> str:
    return "sql" if hasattr(endpoint, "undo_statements") else "files"


def build_actions(
    records: list[dict[str, Any]], endpoints: Any, cleanup: bool = False
) -> list[Action]:
    """The statements (databases) or operations (files) for each record."""
    from migrate import fileundo

    actions = []
    for rec in records:
        what = describe(rec)
        if rec["action"] in STATE_ACTIONS:
            if not cleanup:
                actions.append(Action(rec, what, "state"))
            continue
        ep = endpoints.get(rec["connection"])
        if _endpoint_kind(ep) == "sql":
            stmts = ep.cleanup_statements(rec) if cleanup else ep.undo_statements(rec)
            if cleanup and not stmts:
                continue
            if cleanup:
                what = f"drop backup table {rec['object']}"
            actions.append(Action(rec, what, "sql", statements=list(stmts)))
        else:
            ops = fileundo.cleanup_ops(rec) if cleanup else fileundo.undo_ops(rec)
            if cleanup and not ops:
                continue
            if cleanup:
                what = f"delete the backup of {rec['object']} ({rec['detail'].get('backup')})"
            actions.append(Action(rec, what, "files", ops=list(ops)))
    return actions


def script_folder(plan: Plan, command: str) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return plan.state_path.with_name(f"{plan.state_path.stem}.{command}") / stamp


def write_scripts(
    plan: Plan, command: str, actions: list[Action], endpoints: Any
) -> dict[str, str]:
    """One script per target connection (see the module contract); returns their paths."""
    from migrate import fileundo

    by_conn: dict[str, list[Action]] = {}
    for a in actions:
        if a.kind != "state":
            by_conn.setdefault(a.record["connection"], []).append(a)
    if not by_conn:
        return {}
    folder = script_folder(plan, command)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    header = (
        f"migrate {command} of plan {plan.name}: {len(actions)} action(s), newest change"
        f" first; generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
    )
    comment = fileundo.comment_text  # names may hold line breaks: one comment line each
    used: set[str] = set()
    for conn, acts in by_conn.items():
        ep = endpoints.get(conn)
        stem = _safe(conn)
        while stem in used:  # two names alike once made safe: each keeps its own script
            stem += "_"
        used.add(stem)
        if acts[0].kind == "sql":
            path = folder / f"{stem}.sql"
            lines = [
                f"-- {comment(header)}",
                f"-- run against connection {comment(repr(conn))} ({comment(ep.describe())}),"
                " in this order;",
                "-- each block undoes one recorded change (the tool runs the same statements).",
                "",
            ]
            for a in acts:
                r = a.record
                lines.append(
                    f"-- #{r['id']} run {r['run_id']}, step {comment(r['step'])}: {comment(a.what)}"
                )
                for stmt in a.statements:
                    body = stmt.rstrip()
                    if re.match(r"(?is)\s*(BEGIN|DECLARE)\b", body):  # PL/SQL: ends at "/"
                        lines.extend([body if body.endswith(";") else body + ";", "/"])
                    else:
                        lines.append(body.rstrip(";") + ";")
                lines.append("")
            text = "\n".join(lines).rstrip("\n") + "\n"
        else:
            ops = [op for a in acts for op in a.ops]
            path = folder / f"{stem}.{fileundo.script_kind(ep)}"
            text = fileundo.render(ops, ep, title=header)
        path.write_text(redact(text, plan.secrets), encoding="utf-8")
        if path.suffix == ".sh":
            path.chmod(0o755)
        out[conn] = str(path)
    return out


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _put_state_back(state: State, rec: dict[str, Any], plan: Plan) -> None:
    """What undoing ``rec`` means for the state (see the module contract)."""
    a, d, step = rec["action"], rec["detail"], rec["step"]
    if a == "restore_watermark":
        state.put_row("watermarks", {"step": step, "tbl": d["source_table"]}, d.get("previous"))
    elif a == "restore_stream":
        state.put_row("streams", {"step": step}, d.get("previous"))
    elif a in RELOAD_ACTIONS and d.get("source_table"):
        state.reset_table(step, d["source_table"])
        if not state.tables(step):
            state.drop_stream(step)  # a cdc step with no table left copies from a snapshot
    elif a in FILE_ACTIONS:
        if "manifest" in d:
            state.put_row("files", {"step": step, "path": rec["object"]}, d["manifest"])
        elif a in ("delete_file", "delete_dir", "restore_file"):
            # a record of an older version: no manifest row kept; forget the path's row
            # (a file put back is then copied again by the next run, not taken as its own)
            state.put_row("files", {"step": step, "path": rec["object"]}, None)
        if state.file_step(step) is not None:
            state.set_file_step(step, status="copying")


def _shared_backups(
    state: State, records: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """``records`` without the drops of backup tables that records left out of the
    selection still keep rows in (two steps writing one target table share its backup
    table): those drops stay pending, with a note saying so."""
    chosen = {int(r["id"]) for r in records}
    kept, notes = [], []
    for rec in records:
        if rec["action"] == "drop_backup_table":
            needle = json.dumps({"backup": rec["object"]})[1:-1]  # '"backup": "name"'
            users = sorted(
                {
                    row["step"]
                    for row in state.execute(
                        "SELECT id, step FROM undo WHERE status IS NULL AND connection=?"
                        " AND instr(detail, ?) > 0",
                        (rec["connection"], needle),
                    ).fetchall()
                    if int(row["id"]) not in chosen
                }
            )
            if users:
                notes.append(
                    f"#{rec['id']}: backup table {rec['object']} is kept: changes of step(s)"
                    f" {', '.join(users)} outside this selection still need it"
                )
                continue
        kept.append(rec)
    return kept, notes


def _check_connections(plan: Plan, records: list[dict[str, Any]]) -> None:
    """Every record that changed a target names a connection the plan still has."""
    for r in records:
        if r["action"] not in STATE_ACTIONS and r["connection"] not in plan.connections:
            raise PlanError(
                f"undo record #{r['id']} (run {r['run_id']}, step {r['step']}) changed"
                f" connection {r['connection']!r}, which {plan.path} no longer has: put it"
                " back under [connections] to roll back or clean up"
            )


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM (in the main thread) until the block ends, then
    raise :class:`KeyboardInterrupt` if one came; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        if caught:
            raise KeyboardInterrupt
        caught.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt


def _apply(action: Action, endpoints: Any) -> list[str]:
    """Apply one action; returns notes on what was skipped (a backup a cut-off run never
    made or a rollback script run by hand dropped, a folder that now holds other files)."""
    from migrate import fileundo

    if action.kind == "sql":
        ep = endpoints.get(action.record["connection"])
        rec = action.record
        backup = rec["detail"].get("backup")
        if rec["action"] == "restore_rows" and backup is None:
            ep.apply_undo(rec)  # rows kept in the state file (state schema 5 and before)
        elif rec["action"] == "restore_rows" and not ep.table_exists(backup):
            # the rollback script was run by hand (it drops the backup tables): the state
            # is put back all the same
            return [
                f"backup table {backup} is not there (a rollback script run by hand drops"
                " it): nothing to put back"
            ]
        else:
            ep.run_statements(action.statements)
    elif action.kind == "files":
        return fileundo.apply_ops(endpoints.get(action.record["connection"]), action.ops)
    return []


def rollback(
    plan: Plan,
    state: State,
    endpoints: Any,
    *,
    run_id: int | None = None,
    batch: str | None = None,
    steps: tuple[str, ...] = (),
    dry_run: bool = False,
    progress: Any = None,
) -> RollbackResult:
    """Undo the selected records (see the module contract); ``result.error`` holds why it
    stopped early, and the records left are undone by running it again."""
    records = select(plan, state, run_id=run_id, batch=batch, steps=steps)
    _check_connections(plan, records)
    records, shared = _shared_backups(state, records)
    result = RollbackResult("rollback", dry_run, notes=shared)
    result.actions = build_actions(records, endpoints)
    result.scripts = write_scripts(plan, "rollback", result.actions, endpoints)
    if dry_run:
        return result
    for action in result.actions:
        with _interrupts_deferred():  # applied and marked, or neither
            try:
                notes = _apply(action, endpoints)
            except MigrateError as exc:
                result.error = (
                    f"undoing #{action.id} ({action.what}) failed: {redact(str(exc), plan.secrets)}"
                )
                break
            result.notes.extend(f"#{action.id}: {n}" for n in notes)
            _put_state_back(state, action.record, plan)
            state.mark_undo([action.id], "undone")
            result.done.append(action.id)
        if progress is not None:
            progress.message(f"undone #{action.id}: {action.what}")
    runs = {a.record["run_id"] for a in result.actions if a.id in result.done}
    for r in runs:
        left = state.execute(
            "SELECT 1 FROM undo WHERE run_id=? AND status IS NULL", (r,)
        ).fetchone()
        if left is None:
            state.execute(
                "UPDATE runs SET message=? WHERE id=?",
                (f"rolled back {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC", r),
            )
    return result


def cleanup(
    plan: Plan,
    state: State,
    endpoints: Any,
    *,
    batch: str | None = None,
    steps: tuple[str, ...] = (),
    dry_run: bool = False,
) -> RollbackResult:
    """Drop the backups of the selected steps' changes and accept them (no rollback)."""
    records = select(plan, state, batch=batch, steps=steps)
    _check_connections(plan, records)
    records, shared = _shared_backups(state, records)
    result = RollbackResult("cleanup", dry_run, notes=shared)
    result.actions = build_actions(records, endpoints, cleanup=True)
    result.scripts = write_scripts(plan, "cleanup", result.actions, endpoints)
    if dry_run:
        result.accepted = len(records)
        return result
    # A record is accepted once what kept its previous state is gone (see the module
    # contract); the others only after every backup went, so a cleanup that stops part
    # way leaves them restorable.
    accepted: set[int] = set()
    for action in result.actions:
        with _interrupts_deferred():  # dropped and accepted, or neither
            try:
                _apply(action, endpoints)
            except MigrateError as exc:
                result.error = (
                    f"cleaning #{action.id} ({action.what}) failed:"
                    f" {redact(str(exc), plan.secrets)}"
                )
                break
            gone = {action.id, *_kept_in(action.record, records)} - accepted
            state.mark_undo(sorted(gone), "accepted")
            accepted |= gone
            result.done.append(action.id)
    if result.error is None:
        rest = [int(r["id"]) for r in records if int(r["id"]) not in accepted]
        state.mark_undo(rest, "accepted")
        accepted.update(rest)
    result.accepted = len(accepted)
    return result


def _kept_in(record: dict[str, Any], records: list[dict[str, Any]]) -> list[int]:
    """The records whose previous rows the backup table ``record`` drops held."""
    if record["action"] != "drop_backup_table":
        return []
    return [
        int(r["id"])
        for r in records
        if r["connection"] == record["connection"]
        and r["action"] != "drop_backup_table"
        and (r["detail"] or {}).get("backup") == record["object"]
    ]


def result_to_json(result: RollbackResult) -> dict[str, Any]:
    return {
        "command": result.command,
        "dry_run": result.dry_run,
        "actions": [
            {
                "id": a.id,
                "run_id": a.record["run_id"],
                "step": a.record["step"],
                "connection": a.record["connection"],
                "action": a.record["action"],
                "object": a.record["object"],
                "what": a.what,
                "done": a.id in result.done,
            }
            for a in result.actions
        ],
        "scripts": result.scripts,
        "accepted": result.accepted,
        "notes": result.notes,
        "error": result.error,
    }


def print_result(console: Any, result: RollbackResult) -> None:
    from rich.markup import escape

    verb = "would" if result.dry_run else "did"
    is_cleanup = result.command == "cleanup"
    if is_cleanup and result.dry_run and result.accepted:
        console.print(
            f"would accept {result.accepted:,} recorded change(s): they could no longer be"
            " rolled back"
        )
    elif is_cleanup and not result.dry_run and not result.error and result.accepted:
        console.print(
            f"accepted {result.accepted:,} recorded change(s): they can no longer be rolled back"
        )
    elif is_cleanup and not result.dry_run and result.accepted:
        console.print(
            f"accepted {result.accepted:,} recorded change(s) whose backups are gone; run"
            " migrate cleanup again for the others"
        )
    if not result.actions:
        if not is_cleanup:
            console.print("nothing to roll back: no recorded change in the selection")
        else:  # changes without a backup (tables or files created) are accepted all the same
            console.print(
                "no backup to drop"
                + ("" if result.accepted else ": no recorded change in the selection")
            )
        for note in result.notes:
            console.print(f"[yellow]{escape(note)}[/]")
        return
    for a in result.actions:
        r = a.record
        mark = "" if result.dry_run else ("[green]✓[/] " if a.id in result.done else "[red]✗[/] ")
        console.print(
            f"{mark}#{r['id']} run {r['run_id']} · step {escape(r['step'])} ·"
            f" {escape(r['connection'] or '')}: {escape(a.what)}"
        )
    for note in result.notes:
        console.print(f"[yellow]{escape(note)}[/]")
    for conn, path in result.scripts.items():
        console.print(f"script for {escape(conn)}: {escape(path)}")
    n = len(result.done) if not result.dry_run else len(result.actions)
    console.print(f"[bold]{result.command}: {verb} {n} of {len(result.actions)} action(s)[/]")
    if result.error:
        console.print(f"[red]{escape(result.error)}[/]")


__all__ = [
    "Action",
    "RollbackResult",
    "build_actions",
    "cleanup",
    "rollback",
    "select",
]
