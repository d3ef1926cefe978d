"""``migrate run PLAN --dry-run`` / ``migrate check PLAN``: the survey before a migration.

Reads sources and targets — catalogs, statistics, grants, the first rows or megabytes of
the largest table or file — and writes nothing anywhere: no state file, no lock, no
target change (database endpoints are opened read-only, SQLite files with ``mode=ro``, a
SQLite target that does not exist yet is not made). A state of an older schema, which
the next run upgrades, is read from an upgraded copy in a temporary folder.

Contract of :func:`dry_run` (its JSON is the report every output renders)::

    {"plan", "state", "exact": bool,
     "connections": [{"name", "url" (no secret), "kind": "table"|"file",
                      "roles": ["source"|"target"|"cdc source", ...], "steps": [...],
                      "reachable": bool, "error": str|None, "endpoint": describe(),
                      "version": str|None, "latency_ms": float|None,
                      "probe": {..., "rows_per_s", "bytes_per_s",
                                "row_bytes" (the probe table's, statistics)}|None,
                      "privileges": [{"privilege", "on", "needed_for", "held": bool|None,
                                      "missing_on", "how", "blocking"}],
                      "cdc": {"ok", "message"}|None, "notes": [...]}],
     "waves": [{"wave", "batch", "layer", "label", "rows", "bytes", "files",
                "estimate_s", "steps": [step, ...]}],
     "estimate": {"seconds", "basis", "formula"},
     "blockers": [finding, ...], "warnings": [finding, ...],
     "problems": len(blockers)}

A step is ``{"name", "kind", "source", "target", "mode", "after", "validate", "error",
"source_endpoint", "target_endpoint", "notes", "tables" | "files", "load_order",
"cycles", "rows", "bytes", "estimate": {"seconds", "basis"}, "rollback": {"can_undo",
"cannot_undo"}}``; a table ``{"table", "target_table", "rows", "rows_from" ("statistics",
"exact count", "exact count (no statistics)"), "bytes" (statistics; else from the
probe's average row size, then ``"bytes_from"`` says so), "key", "chunks", "action",
"action_code", "indexes", "foreign_keys", "references" (parent tables), "cursor":
{"column", "indexed"}|None, "types", "identifiers", "notes" (all of them), "info" (the
notes that are no finding), "estimate_s", "undo"}``; a file step's ``files`` is
:func:`migrate.filecopy.preview`'s dict. A finding is
``{"level": "blocker"|"warning", "kind", "where", "message"}`` plus ``connection``,
``step``, ``table`` where they apply; each is listed once: a connection used by three
steps gives one finding; a source table two steps read gives one ``no_key``,
``key_not_indexed`` or ``cursor_not_indexed`` finding whose ``steps`` lists both (so
does a missing source root two file steps read, ``file_step``).

Blockers stop a run (exit 2), by ``kind``: ``unreachable`` connection; missing
``privilege`` the run needs (on a target: create, insert, delete, read for the counts,
update and temporary tables for catch-up merges, the backup tables); ``setting`` of the
server the write path needs (MySQL ``local_infile``); ``no_bucket`` (a bucket, of a
source or a target, that does not exist: the steps using it are not surveyed further);
``table_exists`` (not the plan's, ``if_exists = "fail"``); ``target_conflict`` (two
copies write one target table and one of them loads it whole); ``no_target_table``
(``mode = "incremental"``); ``cdc`` without binlog rights; ``file_name`` the target
cannot hold; ``file_step`` (a missing source root, deletes refused); ``plan`` errors
found only now (a table the source lacks, no key in an incremental step); ``error``
(anything else a connector reported). Warnings do not: ``no_key`` (copied whole),
``key_not_indexed`` (an ``overrides.<table>.key`` no index leads with: every chunk sorts
the table), ``cursor_not_indexed``, ``lossy_type``, ``identifier`` changes, ``fk_cycle``,
``privilege_unchecked``, ``privilege`` only a rollback or ``migrate cleanup`` needs,
``survey`` (a probe that failed).

Estimates (clearly an estimate, never a promise). Per table: ``rows / r × max(1, w / w_p)``
with ``r`` the rows per second the read probe measured on the source connection (one
reader, the first rows of the largest selected table an index orders, for up to ~2 s or
8 MiB), ``w`` the table's bytes per row and ``w_p`` the probe table's, both from the
statistics (the factor is left out where either is unknown: wider rows read slower,
narrower ones are not assumed faster than the probe's), at least :data:`FLOOR_S` seconds
per table (create, indexes, counts). Per file step:
``copy_bytes / b + copy_files × (source latency + 2 × target latency) / workers``, with
``b`` the bytes per second of the source probe (the largest files' first MiBs), at least
:data:`FLOOR_S`. With ``measured`` (a pilot: ``{step: {"rows", "bytes", "seconds",
"files"?}}``) the step's own measured rate replaces the probe ("measured by the pilot"):
rows per second for tables, and for files the larger of ``copy_files × seconds per file``
and ``copy_bytes / bytes per second``. Steps run one after another, so a wave's estimate
is the sum of its steps', and the total the sum of the waves'. The probe reads only: the
write side, indexes and validation come on top, parallel workers may shorten it.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from migrate.backup import backup_name
from migrate.copier import NO_KEY_NOTE
from migrate.errors import MigrateError, PlanError, StateError
from migrate.file_report import human_bytes
from migrate.filecopy import preview
from migrate.incremental import cursor_notes, show
from migrate.plan import Plan, Step, redact
from migrate.planner import foreign_key_order, waves
from migrate.runner import Endpoints, build_job, check_cdc, select_tables
from migrate.state import SCHEMA_VERSION, State, decode_key

#: the least time an estimate gives a table or a file step with something to copy
FLOOR_S = 1.0
#: the read probe's budget per connection
PROBE_SECONDS = 2.0
PROBE_BYTES = 8 << 20
FORMULA = (
    "tables: rows / probe rows per second, times (row size / the probe table's row size,"
    " both from the statistics) when its rows are wider (at least 1 s each); file steps:"
    " bytes / probe bytes per second + files x (source latency + 2 x target latency) /"
    " workers (at least 1 s); a pilot's measured rate replaces the probe; waves add up"
    " their steps. An estimate: the probe reads only, writes, indexes and validation come"
    " on top."
)


#: the action codes of a table a run loads whole (see :func:`_action`)
FULL_LOADS = frozenset({"create", "recreate", "truncate", "replace", "resume"})


def _read_state(plan: Plan) -> tuple[State, Path | None]:
    """The plan's state, opened read-only (no file written, not even WAL's). A state of
    an older schema (the tool was upgraded since the last run, which upgrades it) is
    read from an upgraded copy in a temporary folder instead: ``(state, folder)``, the
    caller removes the folder. Any other problem (another plan's state, a newer schema)
    is raised as it is."""
    try:
        return State(plan.state_path, plan.name, readonly=True), None
    except StateError:
        try:
            with contextlib.closing(
                sqlite3.connect(f"file:{plan.state_path}?mode=ro&immutable=1", uri=True)
            ) as db:
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.Error:
            row = None
        if row is None or not str(row[0]).isdigit() or int(row[0]) >= SCHEMA_VERSION:
            raise
    folder = Path(tempfile.mkdtemp(prefix="migrate-survey-"))
    try:
        copy = folder / plan.state_path.name
        with (
            contextlib.closing(
                sqlite3.connect(f"file:{plan.state_path}?mode=ro&immutable=1", uri=True)
            ) as src,
            contextlib.closing(sqlite3.connect(copy)) as dst,
        ):
            src.backup(dst)
        return State(copy, plan.name), folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


@dataclass
class _Conn:
    """One connection as the survey sees it, whatever the number of steps using it."""

    name: str
    kind: str
    roles: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    endpoint: Any = None
    error: str | None = None
    needs: list[Any] = field(default_factory=list)
    #: probe candidates: (schema, key, bytes or -1, rows)
    tables: list[tuple[Any, tuple[str, ...], int, int]] = field(default_factory=list)
    files: list[tuple[str, int]] = field(default_factory=list)
    #: the tables of a target, when asking for each one failed (:meth:`_Survey._exists`)
    listed: set[str] | None = None
    #: reached, but no step can use it (a bucket that does not exist): the one finding
    blocked: str | None = None
    cdc: bool = False
    out: dict[str, Any] = field(default_factory=dict)

    def role(self, role: str, step: str) -> None:
        if role not in self.roles:
            self.roles.append(role)
        if step not in self.steps:
            self.steps.append(step)


def dry_run(
    plan: Plan,
    only_steps: tuple[str, ...] = (),
    *,
    exact: bool = False,
    measured: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The survey of the plan (of ``only_steps`` when given, as ``migrate run --step``
    runs them); see the module docstring for the report and the estimate."""
    return _Survey(plan, only_steps, exact, measured or {}).run()


class _Survey:
    def __init__(
        self,
        plan: Plan,
        only_steps: tuple[str, ...],
        exact: bool,
        measured: dict[str, dict[str, Any]],
    ) -> None:
        self.plan, self.only, self.exact, self.measured = plan, only_steps, exact, measured
        self.endpoints = Endpoints(plan, workers=1, dry_run=True)
        self.conns: dict[str, _Conn] = {}
        self.findings: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        #: findings about a source table, by (level, kind, connection, table, ..., message)
        self.merged: dict[tuple[str, ...], dict[str, Any]] = {}
        #: who writes each target table: (connection, table) -> [(step, source table,
        #: action code)]
        self.writers: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        self.state: State | None = None
        self._state_copy: Path | None = None

    # -- findings ------------------------------------------------------------------------
    def find(
        self,
        level: str,
        kind: str,
        message: str,
        *,
        source: tuple[str, ...] | None = None,
        **where: str,
    ) -> None:
        """Record a finding once (same level, kind, place and message: one finding).

        ``source``: the finding is about a source table itself (no key, an unindexed
        cursor or key), named by ``(connection, table, ...)``: when another step reads
        the same table, that step is added to the one finding (``"steps"``; ``where``
        then says ``steps a, b / table t``) instead of a second finding."""
        message = redact(" ".join(message.split()), self.plan.secrets)
        if source is not None:
            mkey = (level, kind, *source, message)
            seen = self.merged.get(mkey)
            if seen is not None:
                if where.get("step") not in seen["steps"]:
                    seen["steps"].append(where["step"])
                    seen["where"] = f"steps {', '.join(seen['steps'])}" + (
                        f" / table {seen['table']}" if "table" in seen else ""
                    )
                return
        parts = []
        if "connection" in where:
            parts.append(f"connection {where['connection']}")
        if "step" in where:
            parts.append(f"step {where['step']}")
        if "table" in where:
            parts.append(f"table {where['table']}")
        place = " / ".join(parts) or "plan"
        key = (level, kind, place, message)
        if key not in self.findings:
            self.findings[key] = {
                "level": level,
                "kind": kind,
                "where": place,
                "message": message,
                **where,
            }
            if source is not None:
                self.findings[key]["steps"] = [where["step"]]
                self.merged[(level, kind, *source, message)] = self.findings[key]

    def safe(self, exc: BaseException) -> str:
        return redact(str(exc), self.plan.secrets)

    # -- the run -------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        plan = self.plan
        out: dict[str, Any] = {
            "plan": plan.name,
            "state": str(plan.state_path),
            "exact": self.exact,
            "connections": [],
            "waves": [],
        }
        if plan.state_path.exists():
            self.state, self._state_copy = _read_state(plan)
        try:
            selected = [
                (n, w, [s for s in w.steps if not self.only or s.name in self.only])
                for n, w in enumerate(waves(plan), 1)
            ]
            selected = [(n, w, steps) for n, w, steps in selected if steps]
            for _n, _w, steps in selected:
                for step in steps:
                    self._open(step.source, "source", step)
                    self._open(step.target, "target", step)
            for number, wave, steps in selected:
                w: dict[str, Any] = {
                    "wave": number,
                    "batch": wave.batch,
                    "layer": wave.layer,
                    "label": wave.label,
                    "steps": [self._step(step) for step in steps],
                }
                out["waves"].append(w)
            for conn in self.conns.values():
                self._connection(conn)
            for w in out["waves"]:
                for s in w["steps"]:
                    self._estimate(s)
                w["rows"] = sum(s.get("rows") or 0 for s in w["steps"])
                w["bytes"] = sum(s.get("bytes") or 0 for s in w["steps"])
                w["files"] = sum(s.get("files", {}).get("copy_files", 0) for s in w["steps"])
                w["estimate_s"] = round(sum(s["estimate"]["seconds"] for s in w["steps"]), 1)
            self._conflicts()
        finally:
            self.endpoints.close()
            if self.state is not None:
                self.state.close()
            if self._state_copy is not None:
                shutil.rmtree(self._state_copy, ignore_errors=True)
        out["connections"] = [c.out for c in self.conns.values()]
        bases = {s["estimate"]["basis"] for w in out["waves"] for s in w["steps"]}
        out["estimate"] = {
            "seconds": round(sum(w["estimate_s"] for w in out["waves"]), 1),
            "basis": "measured by the pilot"
            if bases == {"measured by the pilot"}
            else "read probe"
            if "measured by the pilot" not in bases
            else "read probe and pilot",
            "formula": FORMULA,
        }
        findings = list(self.findings.values())
        out["blockers"] = [f for f in findings if f["level"] == "blocker"]
        out["warnings"] = [f for f in findings if f["level"] == "warning"]
        out["problems"] = len(out["blockers"])
        return out

    def _conflicts(self) -> None:
        """A target table two copies write (two steps, or two source tables whose names
        become the same): when one of them loads it whole, the later one finds the table
        the earlier one made and stops (``if_exists = "fail"``), or empties it."""
        for (conn, table), writers in self.writers.items():
            live = [w for w in writers if w[2] not in ("done", "exists", "no_target", "failed")]
            copies = list(dict.fromkeys((step, source) for step, source, _ in live))
            if len(copies) > 1 and any(code in FULL_LOADS for _, _, code in live):
                who = ", ".join(f"step {step} (table {source})" for step, source in copies)
                self.find(
                    "blocker",
                    "target_conflict",
                    f"{len(copies)} copies write table {table}: {who}; the later one finds"
                    " the table the earlier one loaded and stops, or empties it: rename the"
                    " target in one of them (overrides.<table>.rename) or copy it once",
                    connection=conn,
                    table=table,
                )

    # -- connections ---------------------------------------------------------------------
    def _open(self, name: str, role: str, step: Step) -> None:
        """Open (and reach) a connection the first time a selected step uses it."""
        conn = self.conns.get(name)
        if conn is None:
            conn = self.conns[name] = _Conn(name, step.kind)
            try:
                ep = self.endpoints.get(name)
                conn.endpoint = ep
                if step.kind == "file":
                    found = ep.root_exists()  # connects (and authenticates)
                    if not found and not ep.capabilities.filesystem:
                        conn.blocked = f"the bucket of {ep.describe()} does not exist"
                        self.find(
                            "blocker",
                            "no_bucket",
                            f"{name}: {conn.blocked}: create it first (a run does not)",
                            connection=name,
                        )
                # a database connects here
                conn.out["endpoint"] = redact(ep.describe(), self.plan.secrets)
            except MigrateError as exc:
                conn.error = self.safe(exc)
                kind = "plan" if isinstance(exc, PlanError) else "unreachable"
                what = "cannot be used" if kind == "plan" else "unreachable"
                self.find("blocker", kind, f"{what}: {conn.error}", connection=name)
        conn.role(role, step.name)

    def _connection(self, conn: _Conn) -> None:
        """Latency, probe, privileges and cdc rights of one reachable connection."""
        c = self.plan.connections[conn.name]
        out = conn.out
        out.update(
            {
                "name": conn.name,
                "url": redact(c.safe_url, self.plan.secrets),
                "kind": conn.kind,
                "roles": conn.roles,
                "steps": conn.steps,
                "reachable": conn.error is None,
                "error": conn.error,
                "endpoint": out.get("endpoint"),
                "version": None,
                "latency_ms": None,
                "probe": None,
                "privileges": [],
                "cdc": None,
                "notes": [],
            }
        )
        if conn.error is not None:
            return
        ep = conn.endpoint
        try:
            if conn.kind == "table":
                self._sql_connection(conn, ep, out)
            else:
                self._file_connection(conn, ep, out)
        except MigrateError as exc:
            out["notes"].append(f"survey incomplete: {self.safe(exc)}")
            self.find(
                "warning",
                "survey",
                f"the survey of {conn.name} stopped: {self.safe(exc)}",
                connection=conn.name,
            )
        out["notes"].extend(redact(n, self.plan.secrets) for n in getattr(ep, "notes", []))
        self._privilege_findings(conn.name, out["privileges"])

    def _sql_connection(self, conn: _Conn, ep: Any, out: dict[str, Any]) -> None:
        from connectors.sql import survey

        version = getattr(ep, "server_version", None)
        if version is not None:
            out["version"] = ".".join(str(p) for p in version()) or None
        if not hasattr(ep, "raw"):  # a table endpoint that is not SQLAlchemy-based
            out["notes"].append("latency, probe and privileges are not surveyed for it")
            return
        out["latency_ms"] = round(survey.latency(ep) * 1000, 3)
        if conn.needs:  # first: a table the login cannot read is not probed
            out["privileges"] = survey.privileges(ep, conn.needs)
        unreadable = {t for r in out["privileges"] if r["held"] is False for t in r["missing_on"]}
        candidates = [t for t in conn.tables if t[0].name not in unreadable]
        if candidates:
            # the largest table read in the order of an index, with rows (statistics:
            # bytes, then rows); its first read sized by the statistics' row size
            schema, key, size, rows = max(
                candidates, key=lambda t: (survey.key_indexed(t[0], t[1]), t[3] > 0, t[2], t[3])
            )
            row_bytes = size / rows if size > 0 and rows > 0 else None
            try:
                out["probe"] = survey.read_probe(
                    ep,
                    schema,
                    key,
                    seconds=PROBE_SECONDS,
                    max_bytes=PROBE_BYTES,
                    row_bytes=row_bytes,
                )
                out["probe"]["row_bytes"] = round(row_bytes, 1) if row_bytes else None
            except MigrateError as exc:  # the rest of the survey goes on without it
                self.find(
                    "warning",
                    "survey",
                    f"the read probe of {conn.name} failed: {self.safe(exc)}",
                    connection=conn.name,
                )
        if "target" in conn.roles:
            for line in survey.write_settings(ep):
                self.find("blocker", "setting", f"{conn.name}: {line}", connection=conn.name)
        if conn.cdc:
            out["cdc"] = survey.cdc_rights(ep)
            if not out["cdc"]["ok"]:
                self.find("blocker", "cdc", out["cdc"]["message"], connection=conn.name)

    def _file_connection(self, conn: _Conn, ep: Any, out: dict[str, Any]) -> None:
        from connectors.files import survey

        out["latency_ms"] = round(survey.latency(ep) * 1000, 3)
        if conn.blocked is not None:  # no bucket: nothing to list, read or write yet
            out["notes"].append(conn.blocked)
            return
        read: bool | None = None
        how = ""
        if "source" in conn.roles and conn.files:
            try:
                out["probe"] = survey.read_probe(
                    ep, conn.files, seconds=PROBE_SECONDS, max_bytes=PROBE_BYTES
                )
                read = out["probe"] is not None or None
            except MigrateError as exc:
                read, how = False, self.safe(exc)
        roles = set(conn.roles)
        if not conn.files:  # no file to read (an empty source, or its steps stopped)
            roles.discard("source")
        out["privileges"] = survey.privileges(ep, roles, read=read, read_how=how)

    def _privilege_findings(self, name: str, rows: list[dict[str, Any]]) -> None:
        """One finding per connection and level: the privileges it lacks (a blocker when
        the run needs them, a warning when only a rollback does), and those that cannot
        be checked (a warning)."""

        def listed(group: list[dict[str, Any]]) -> str:
            return "; ".join(
                f"{r['privilege']} on {', '.join(r['missing_on']) or r['on']} ({r['needed_for']})"
                for r in group
            )

        missing = [r for r in rows if r["held"] is False]
        for level, group in (
            ("blocker", [r for r in missing if r.get("blocking", True)]),
            ("warning", [r for r in missing if not r.get("blocking", True)]),
        ):
            if group:
                how = "; ".join(dict.fromkeys(r["how"] for r in group))
                self.find(
                    level,
                    "privilege",
                    f"{name} lacks {listed(group)} (found out by: {how})",
                    connection=name,
                )
        unknown = [r for r in rows if r["held"] is None]
        if unknown:
            self.find(
                "warning",
                "privilege_unchecked",
                f"{name}: "
                + "; ".join(
                    f"{r['privilege']} on {r['on']} ({r['needed_for']}): {r['how']}"
                    for r in unknown
                ),
                connection=name,
            )

    # -- steps ---------------------------------------------------------------------------
    def _step(self, step: Step) -> dict[str, Any]:
        s: dict[str, Any] = {
            "name": step.name,
            "kind": step.kind,
            "source": step.source,
            "target": step.target,
            "mode": step.mode,
            "after": list(step.after),
            "validate": list(step.validate),
            "tables": [],
            "error": None,
            "notes": [],
            "load_order": [],
            "cycles": [],
            "rows": 0,
            "bytes": 0,
            "rollback": {"can_undo": [], "cannot_undo": []},
        }
        src, tgt = self.conns[step.source], self.conns[step.target]
        for conn in (src, tgt):
            if conn.error is not None or conn.blocked is not None:
                s["error"] = f"connection {conn.name}: {conn.error or conn.blocked}"
                s["rollback"]["can_undo"].append("nothing: the step cannot run")
                return s
        s["source_endpoint"] = src.out.get("endpoint")
        s["target_endpoint"] = tgt.out.get("endpoint")
        try:
            if step.kind == "file":
                self._file_step(step, s, src, tgt)
            else:
                self._table_step(step, s, src, tgt)
        except MigrateError as exc:
            s["error"] = self.safe(exc)
            kind = "plan" if isinstance(exc, PlanError) else "error"
            self.find("blocker", kind, s["error"], step=step.name)
        return s

    def _file_step(self, step: Step, s: dict[str, Any], src: _Conn, tgt: _Conn) -> None:
        state = self.state
        source, target = src.endpoint, tgt.endpoint
        manifest = state.manifest(step.name) if state is not None else {}
        row = state.file_step(step.name) if state is not None else None
        created = state.created_files(step.name, step.target) if state is not None else set()
        f = preview(
            step,
            source,
            target,
            manifest,
            done=row is not None and row["status"] == "done",
            created=created,
        )
        s["files"] = f
        s["notes"] = list(f["notes"])
        s["rows"] = 0
        s["bytes"] = f["copy_bytes"]
        if f["largest"]:
            src.files.append((f["largest"]["path"], f["largest"]["size"]))
        if f["refused"]:
            shown = "; ".join(f"{r['path']} ({r['reason']})" for r in f["refused"][:5])
            more = f" and {len(f['refused']) - 5:,} more" if len(f["refused"]) > 5 else ""
            self.find(
                "blocker",
                "file_name",
                f"{len(f['refused']):,} name(s) the target cannot hold: {shown}{more}",
                step=step.name,
            )
        for note in f["notes"]:
            if note.startswith("STOP"):
                self.find("blocker", "file_step", note.removeprefix("STOP: "), step=step.name)
        if not f["files"] and not f["dirs"] and not source.root_exists():
            self.find(
                "blocker",
                "file_step",
                f"the source {source.describe()} does not exist (is the share mounted, the"
                " path right?)",
                source=(step.source,),
                step=step.name,
            )
        s["rollback"] = _file_rollback(step, f, target)

    def _table_step(self, step: Step, s: dict[str, Any], src: _Conn, tgt: _Conn) -> None:
        from connectors.sql import survey as sql_survey

        plan, source = self.plan, src.endpoint
        if step.mode == "cdc":
            caps = source.capabilities
            if caps.cdc != "binlog" or not hasattr(source, "read_changes"):
                check_cdc(plan, step, source)  # raises the plan error
            src.cdc = True
            src.role("cdc source", step.name)
        names = select_tables(step, source.list_tables(), plan)
        schemas = [source.read_schema(n) for n in names]
        ordered, cycles = foreign_key_order(schemas)
        s["load_order"] = [x.name for x in ordered]
        s["cycles"] = cycles
        for cycle in cycles:
            self.find(
                "warning",
                "fk_cycle",
                f"foreign-key cycle among {cycle}: loaded in name order; the foreign keys"
                " are created after the load",
                step=step.name,
            )
        s["notes"] = [f"foreign-key cycle among {c}: loaded in name order" for c in cycles]
        stats: dict[str, Any] = {}
        if not self.exact and hasattr(source, "raw"):
            try:
                stats = sql_survey.table_stats(source, names)
            except MigrateError as exc:
                s["notes"].append(f"no statistics ({self.safe(exc)}): rows counted")
        for schema in ordered:
            try:
                s["tables"].append(self._table(step, schema, stats.get(schema.name), src, tgt))
            except MigrateError as exc:
                message = self.safe(exc)
                kind = "plan" if isinstance(exc, PlanError) else "error"
                self.find("blocker", kind, message, step=step.name, table=schema.name)
                s["tables"].append(_failed_table(schema, message))
        s["rows"] = sum(t["rows"] or 0 for t in s["tables"])
        s["bytes"] = sum(t["bytes"] or 0 for t in s["tables"])
        s["rollback"] = _table_rollback(step, s["tables"])

    def _table(self, step: Step, schema: Any, stats: Any, src: _Conn, tgt: _Conn) -> dict[str, Any]:
        from connectors.sql.survey import Need, key_indexed

        plan, source, target = self.plan, src.endpoint, tgt.endpoint
        job = build_job(plan, step, schema, source, target, 0)
        tname, tschema = job.target_schema.name, job.target_schema
        exists = self._exists(tgt, tname)
        code, action = _action(plan, step, schema.name, tname, exists, self.state)
        where = {"step": step.name, "table": schema.name}
        if code == "no_target":
            self.find(
                "blocker",
                "no_target_table",
                f'mode = "incremental" needs the table {tname} on the target: it is not'
                f" there (create and fill it first, or use mode ="
                ' "full+incremental")',
                **where,
            )
        elif code == "exists":
            self.find(
                "blocker",
                "table_exists",
                f"the target table {tname} exists and was not created by this plan"
                ' (if_exists = "fail"): set if_exists = "truncate" or "replace", or drop it',
                **where,
            )
        # rows and bytes
        if self.exact:
            rows, rows_from = source.count(schema.name), "exact count"
        elif stats is not None and stats.rows is not None:
            rows, rows_from = stats.rows, "statistics"
        else:
            rows, rows_from = source.count(schema.name), "exact count (no statistics)"
        size = stats.bytes if stats is not None else None
        # notes, classified
        kinds = _classify(job, schema, source, target)
        ident = kinds["identifier"]
        types = kinds["type"]
        read_as = (step.source, schema.name)
        if not job.key:
            self.find(
                "warning",
                "no_key",
                "no primary or NOT NULL unique key: copied whole as one chunk (cannot be"
                " resumed part way; set overrides.<table>.key to a unique column)",
                source=read_as,
                **where,
            )
        elif not key_indexed(schema, job.key):
            cols = ", ".join(job.key)
            self.find(
                "warning",
                "key_not_indexed",
                f"the key ({cols}) is not the first column(s) of any index: every chunk"
                f" (WHERE key > ... ORDER BY key LIMIT n) reads and sorts the whole table"
                f" (CREATE INDEX ... ON {schema.name} ({cols}), or a key that is indexed)",
                source=(*read_as, cols),
                **where,
            )
        cursor = None
        if job.cursor is not None:
            cursor = {"column": job.cursor.column, "indexed": job.cursor.indexed}
            if not job.cursor.indexed:
                self.find(
                    "warning",
                    "cursor_not_indexed",
                    f"cursor {job.cursor.column} is not the first column of any index:"
                    f" every catch-up pass reads the whole table (CREATE INDEX ... ON"
                    f" {schema.name} ({job.cursor.column}))",
                    source=(*read_as, job.cursor.column),
                    **where,
                )
        if types:
            self.find("warning", "lossy_type", "type conversions: " + "; ".join(types), **where)
        if ident:
            self.find("warning", "identifier", "identifier changes: " + "; ".join(ident), **where)
        # who writes the target table; what the connections need
        self.writers.setdefault((step.target, tname), []).append((step.name, schema.name, code))
        src.tables.append((schema, job.key, size if size is not None else -1, rows or 0))
        src.needs.append(Need("read", schema.name, "reading the source tables"))
        if code not in ("done", "no_target", "exists"):
            self._target_needs(step, tgt, tname, tschema, exists, code)
        references = sorted(
            {fk.ref_table for fk in schema.foreign_keys if fk.ref_table != schema.name}
        )
        return {
            "table": schema.name,
            "target_table": tname,
            "rows": rows,
            "rows_from": rows_from,
            "bytes": size,
            "key": list(job.key),
            "chunks": max(1, math.ceil(rows / job.chunk_rows)) if job.key else 1,
            "action": action,
            "action_code": code,
            "indexes": len(tschema.indexes),
            "foreign_keys": len(tschema.foreign_keys),
            "references": references,
            "cursor": cursor,
            "types": types,
            "identifiers": ident,
            "notes": job.notes,
            "info": kinds["info"],
            "undo": _table_undo(code, step, tname, target),
        }

    def _exists(self, tgt: _Conn, tname: str) -> bool:
        """Whether the target table exists. MariaDB does not even say whether a table
        exists to a login without SELECT on it: the catalog's list of tables (read once
        per connection) still tells, and the privilege check says what is missing, once."""
        try:
            return bool(tgt.endpoint.table_exists(tname))
        except MigrateError:
            if tgt.listed is None:
                tgt.listed = set(tgt.endpoint.list_tables())
            return tname in tgt.listed

    def _target_needs(
        self, step: Step, tgt: _Conn, tname: str, tschema: Any, exists: bool, code: str
    ) -> None:
        from connectors.sql.survey import Need

        add = tgt.needs.append
        existing = exists and code not in ("create", "recreate", "replace")
        if not existing or code in ("truncate", "replace", "adopt", "catch_up"):
            why = (
                "creating tables and the backup tables rollback restores from"
                if code in ("truncate", "replace", "adopt", "catch_up")
                else "creating tables"
            )
            add(Need("create", tname, why, exists=False))
        add(Need("insert", tname, "loading rows", exists=existing))
        add(
            Need(
                "delete",
                tname,
                "deleting rows (a retried chunk, catch-up deletes, rollback)",
                exists=existing,
            )
        )
        add(Need("read", tname, "counting and checking the copied rows", exists=existing))
        # SQL Server is the one engine where explicit identity values need more than
        # INSERT (its schema is read only there: one catalog read per existing table)
        mssql = tgt.endpoint.capabilities.engine == "mssql"
        if existing and mssql and _has_identity(tgt.endpoint, tname):
            why = "explicit values into its identity column (SQL Server: SET IDENTITY_INSERT)"
            add(Need("identity", tname, why, exists=True))
        if step.incremental:
            add(Need("update", tname, "upserts of catch-up passes", exists=existing))
            add(Need("temp", tname, "the staging table of catch-up merges", exists=False))
        if code in ("truncate", "replace", "adopt", "catch_up"):
            # rows are copied to the backup table (created by the run) before a change;
            # `migrate cleanup` drops it
            bak = backup_name(tgt.endpoint, tname)
            for privilege in ("insert", "read", "delete"):
                add(Need(privilege, bak, "the backup tables rollback restores from", exists=False))
            add(
                Need(
                    "drop",
                    bak,
                    "`migrate cleanup` (dropping the backup tables)",
                    exists=False,
                    blocking=False,
                )
            )
        if code in ("replace", "recreate"):
            add(Need("drop", tname, 'replacing tables (if_exists = "replace")', exists=True))
        elif code in ("create", "resume"):  # a table the plan creates: rollback drops it
            add(
                Need(
                    "drop",
                    tname,
                    "rollback (dropping the tables a run creates)",
                    exists=existing,
                    blocking=False,
                )
            )
        if code in ("adopt", "catch_up"):
            return  # nothing is loaded whole: no index or foreign key is made
        indexes, fks = _to_make(tgt.endpoint, tname, tschema, existing)
        if indexes:
            add(Need("index", tname, "creating indexes after the load", exists=existing))
        if fks:
            add(Need("alter", tname, "adding foreign keys after the load", exists=existing))

    # -- estimates -----------------------------------------------------------------------
    def _estimate(self, s: dict[str, Any]) -> None:
        """Seconds per table and per step (module docstring: the formula)."""
        m = self.measured.get(s["name"])
        if s["error"]:
            s["estimate"] = {"seconds": 0.0, "basis": "not estimated (the step cannot run)"}
            return
        if s["kind"] == "file":
            s["estimate"] = self._file_estimate(s, m)
            return
        probe = self.conns[s["source"]].out.get("probe")
        rate = None
        basis = "read probe"
        probe_width = None
        if m and m.get("rows") and m.get("seconds"):
            rate, basis = m["rows"] / m["seconds"], "measured by the pilot"
        elif probe and probe.get("rows_per_s"):
            rate = probe["rows_per_s"]
            probe_width = probe.get("row_bytes")
        if rate is None:
            basis = "floor (nothing could be read to measure)"
        avg = (
            probe["bytes"] / probe["rows"]
            if probe and probe.get("rows") and probe.get("bytes")
            else None
        )
        total = 0.0
        for t in s["tables"]:
            # a row's size as the statistics say (the probe table's is measured the same way)
            width = t["bytes"] / t["rows"] if t.get("bytes") and t.get("rows") else None
            if t.get("bytes") is None and avg is not None and t["rows"] is not None:
                t["bytes"] = int(t["rows"] * avg)
                t["bytes_from"] = "the probe's average row size"
            if t.get("action_code") in ("done", "no_target", "exists", "failed"):
                t["estimate_s"] = 0.0
                continue
            rows = t["rows"] or 0
            seconds = rows / rate if rate else 0.0
            if probe_width and width and width > probe_width:
                seconds *= width / probe_width  # wider rows than the probe's: slower
            t["estimate_s"] = round(max(FLOOR_S, seconds), 2)
            total += t["estimate_s"]
        s["bytes"] = sum(t["bytes"] or 0 for t in s["tables"])
        s["estimate"] = {"seconds": round(total, 1), "basis": basis}

    def _file_estimate(self, s: dict[str, Any], m: dict[str, Any] | None) -> dict[str, Any]:
        f = s["files"]
        files, size = f["copy_files"], f["copy_bytes"]
        if not files:
            return {"seconds": 0.0, "basis": "nothing to copy"}
        if m and m.get("seconds") and (m.get("files") or m.get("bytes")):
            per_file = m["seconds"] / m["files"] if m.get("files") else 0.0
            bps = m["bytes"] / m["seconds"] if m.get("bytes") else None
            seconds = max(files * per_file, size / bps if bps else 0.0)
            return {"seconds": round(max(FLOOR_S, seconds), 1), "basis": "measured by the pilot"}
        src, tgt = self.conns[s["source"]].out, self.conns[s["target"]].out
        probe = src.get("probe")
        bps = probe.get("bytes_per_s") if probe else None
        rtt = ((src.get("latency_ms") or 0.0) + 2 * (tgt.get("latency_ms") or 0.0)) / 1000
        workers = self.plan.step(s["name"]).workers
        seconds = (size / bps if bps else 0.0) + files * rtt / max(1, workers)
        basis = "read probe" if bps else "floor (nothing could be read to measure)"
        return {"seconds": round(max(FLOOR_S, seconds), 1), "basis": basis}


def _has_identity(target: Any, tname: str) -> bool:
    """Whether the existing target table has an identity (auto-increment) column the
    load writes explicit values into (False when its schema cannot be read)."""
    try:
        return any(c.autoincrement for c in target.read_schema(tname).columns)
    except MigrateError:
        return False


def _to_make(target: Any, tname: str, tschema: Any, existing: bool) -> tuple[list[Any], list[Any]]:
    """The indexes and foreign keys a run would make on ``tname`` after loading it: on an
    existing table only those it lacks (by name; a foreign key also by its columns and
    parent table), as the runner does; all of them when the table cannot be read."""
    if not existing:
        return list(tschema.indexes), list(tschema.foreign_keys)
    try:
        have = set(target.existing_indexes(tname))
        linked = set(target.existing_foreign_keys(tname)) if tschema.foreign_keys else set()
    except MigrateError:
        return list(tschema.indexes), list(tschema.foreign_keys)
    indexes = [ix for ix in tschema.indexes if ix.name not in have]
    fks = [
        fk
        for fk in tschema.foreign_keys
        if fk.name not in linked and f"({','.join(fk.columns)})->{fk.ref_table}" not in linked
    ]
    return indexes, fks


def _failed_table(schema: Any, message: str) -> dict[str, Any]:
    return {
        "table": schema.name,
        "target_table": schema.name,
        "rows": None,
        "rows_from": None,
        "bytes": None,
        "key": [],
        "chunks": 0,
        "action": f"STOP: {message}",
        "action_code": "failed",
        "indexes": 0,
        "foreign_keys": 0,
        "references": [],
        "cursor": None,
        "types": [],
        "identifiers": [],
        "notes": [],
        "undo": f"{schema.name}: nothing (the run would stop)",
        "info": [],
    }


def _classify(job: Any, schema: Any, source: Any, target: Any) -> dict[str, list[str]]:
    """``job.notes`` sorted into identifier changes, type conversions and ``info`` (what
    is only shown: snapshot reads, text keys); key and cursor notes are findings of
    their own."""
    fit = getattr(target, "fit_identifier", None)
    care = getattr(target, "identifier_note", None)
    cross = source.capabilities.engine != target.capabilities.engine
    naming = set()
    for col in schema.columns:
        if fit is not None and (why := fit(col.name)[1]):
            naming.add(f"{col.name}: {why}")
        elif cross and care is not None and (note := care(col.name)):
            naming.add(f"{col.name}: {note}")
    ident, types, info = [], [], []
    cursor = set(cursor_notes(job.cursor, schema.name)) if job.cursor is not None else set()
    columns = {c.name for c in schema.columns}
    for note in job.notes:
        if note.startswith("table ") or note in naming:
            ident.append(note.removeprefix("table "))
        elif note == NO_KEY_NOTE or note in cursor:
            continue
        elif note.split(": ", 1)[0] in columns or "stores '' as NULL" in note:
            types.append(note)
        else:
            info.append(note)
    return {"identifier": ident, "type": types, "info": info}


def _action(
    plan: Plan, step: Step, name: str, tname: str, exists: bool, state: State | None
) -> tuple[str, str]:
    """What a run would do to one table: ``(code, text)``; codes ``no_target`` and
    ``exists`` stop the run."""
    row = state.table(step.name, name) if state is not None else None
    if row is not None and row["status"] in ("done", "differences") and step.incremental:
        return "catch_up", _catch_up_action(step, name, state)
    if row is not None and row["status"] in ("done", "differences"):
        return "done", "already copied by an earlier run: nothing to do"
    if step.mode == "incremental":
        if not exists:
            return "no_target", "STOP: mode incremental needs the table on the target"
        start = f"start {step.start}" if step.start is not None else "the target's highest"
        return "adopt", f"adopt the existing table; catch up from {start} cursor value"
    if row is not None and row["status"] not in ("pending",):
        return "resume", f"resume the copy after {row['rows_copied']:,} rows"
    if not exists:
        return "create", "create and copy"
    if state is not None and state.created_by_us(step.name, step.target, tname):
        return "recreate", "drop the table this plan created, create and copy"
    return {
        "fail": (
            "exists",
            "STOP: the target table exists and was not created by this plan (set if_exists)",
        ),
        "truncate": ("truncate", "empty the existing table and copy"),
        "replace": ("replace", "drop, create and copy"),
    }[step.if_exists]


def _catch_up_action(step: Step, name: str, state: State | None) -> str:
    """What a catch-up pass would read, from the recorded watermark or binlog position."""
    assert state is not None
    if step.mode == "cdc":
        stream = state.stream(step.name)
        where = stream["position"] if stream and stream["position"] else "(none recorded)"
        return f"catch up: apply binlog row events from {where}"
    mark = state.watermark(step.name, name)
    value = decode_key(mark["value"]) if mark is not None and mark["value"] else None
    if mark is None or value is None:
        return "catch up: read every row with a cursor value"
    return f"catch up: rows with {mark['cursor']} above {show(value[0])} minus the overlap"


# -- the rollback plan ---------------------------------------------------------------------
def _table_undo(code: str, step: Step, tname: str, target: Any) -> str:
    """How a rollback would undo what a run does to one table."""
    bak = backup_name(target, tname)
    passes = "the binlog pass" if step.mode == "cdc" else "a catch-up pass"
    mark = "binlog position" if step.mode == "cdc" else "watermark"
    return {
        "create": f"drop {tname} (recorded before it is created)",
        "recreate": f"drop {tname} (the plan's own table)",
        "resume": f"as recorded by the run that began it: drop {tname} if it created it,"
        f" else restore the rows kept in {bak}",
        "truncate": f"every row is copied to {bak} before {tname} is emptied; rollback"
        " empties it and puts them back",
        "replace": f"rows and definition kept ({bak} and the state); rollback re-creates"
        f" {tname} with its indexes and foreign keys and puts the rows back",
        "adopt": f"rows {passes} overwrites or deletes are copied to {bak} first (new rows:"
        f" their keys); rollback deletes what it wrote, puts the old rows back and resets"
        f" the {mark}",
        "catch_up": f"rows {passes} overwrites or deletes are copied to {bak} first (new"
        f" rows: their keys); rollback deletes what it wrote, puts the old rows back and"
        f" resets the {mark}",
        "done": f"{tname}: nothing to undo (nothing to do)",
    }.get(code, f"{tname}: nothing (the run would stop)")


def _table_rollback(step: Step, tables: list[dict[str, Any]]) -> dict[str, list[str]]:
    codes = {t["action_code"] for t in tables}
    created = [t["target_table"] for t in tables if t["action_code"] in ("create", "recreate")]
    can = []
    if created:
        shown = ", ".join(created[:10]) + (
            f" and {len(created) - 10:,} more" if len(created) > 10 else ""
        )
        can.append(
            f"drop the {len(created):,} table(s) the run creates ({shown}); each drop is"
            " recorded before its table is created"
        )
    can += [t["undo"] for t in tables if t["action_code"] not in ("create", "recreate")]
    cannot = ["the source is only read: nothing to undo there"]
    if codes & {"truncate", "replace", "adopt", "catch_up", "resume"}:
        cannot.append(
            "identity/sequence counters a load moves past the copied keys of an existing"
            " table are not moved back"
        )
    if step.incremental and codes & {"create", "recreate", "resume", "truncate", "replace"}:
        can.append(
            "later catch-up passes: rows they overwrite or delete are copied to the"
            " migrate_bak_<table> backup tables first; rolling a pass back restores them and"
            f" the {'binlog position' if step.mode == 'cdc' else 'watermark'}"
        )
    if "replace" in codes:
        cannot.append("triggers, grants and comments of a replaced table are not restored")
    if codes & {"truncate", "replace", "adopt", "catch_up"}:
        cannot.append("backup tables stay on the target until `migrate cleanup`")
    return {"can_undo": can, "cannot_undo": cannot}


def _file_rollback(step: Step, f: dict[str, Any], target: Any) -> dict[str, list[str]]:
    objects = not target.capabilities.filesystem
    what = "objects" if objects else "files"
    where = "the backup prefix .migrate-backup/" if objects else ".migrate-backup/"
    can = [f"{what} the run creates are deleted"]
    kept = f["set_aside"] + f["delete_files"]
    can.append(
        f"{what} it overwrites or deletes ({f['set_aside']:,} to overwrite and"
        f" {f['delete_files']:,} to delete now) are first moved under {where} and moved"
        " back"
        if kept
        else f"{what} it would overwrite or delete are first moved under {where} and moved"
        " back (none now)"
    )
    if step.empty_dirs == "keep":
        can.append("empty directories it makes are removed, ones it removes are made again")
    cannot = [
        "the source is only read: nothing to undo there",
        f"backups stay under {where} until `migrate cleanup`",
    ]
    return {"can_undo": can, "cannot_undo": cannot}


# -- console -------------------------------------------------------------------------------
def human_seconds(seconds: float) -> str:
    """A duration as people read an estimate: ``~ 45 s``, ``~ 3 min 20 s``, ``~ 2 h 05 min``."""
    s = round(seconds)
    if s < 1:
        return "< 1 s"
    if s < 60:
        return f"~ {s} s"
    if s < 3600:
        return f"~ {s // 60} min {s % 60:02d} s"
    return f"~ {s // 3600} h {s % 3600 // 60:02d} min"


def _privileges_line(rows: list[dict[str, Any]]) -> str:
    mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[yellow]?[/]"}
    return ", ".join(
        f"{mark[r['held']]} {escape(r['privilege'])} ({escape(r['needed_for'])})" for r in rows
    )


def print_dry_run(console: Console, report: dict[str, Any]) -> None:
    """The survey on the console: connections, waves with their steps and tables, the
    estimate, the rollback plan, then blockers and warnings (each once)."""
    pilot = report.get("pilot")
    if pilot is None:
        console.print(
            f"[bold]dry run of plan {report['plan']}[/]: nothing will be written"
            f" (state would be kept in {report['state']})"
        )
    else:
        console.print(
            f"[bold]survey of plan {report['plan']} with a pilot[/]: up to {pilot['rows']:,}"
            " rows per table and files per file step copied"
            + (f" under the prefix {escape(pilot['prefix'])}" if pilot.get("prefix") else "")
            + ", checked and removed; the plan's state is not touched"
        )
    if report.get("connections"):
        console.print("\n[bold]connections[/]")
    for c in report.get("connections", []):
        roles = ", ".join(c["roles"])
        if not c["reachable"]:
            console.print(f"  [bold]{c['name']}[/] ({roles}): [red]{escape(c['error'] or '')}[/]")
            continue
        facts = []
        if c.get("latency_ms") is not None:
            facts.append(f"round trip {c['latency_ms']:.1f} ms")
        p = c.get("probe")
        if p and p.get("bytes_per_s"):
            if p.get("rows_per_s"):
                facts.append(
                    f"read {p['rows_per_s']:,.0f} rows/s, {human_bytes(p['bytes_per_s'])}/s"
                    f" (table {p['table']})"
                )
            else:
                facts.append(f"read {human_bytes(p['bytes_per_s'])}/s ({p['files']} file(s))")
        console.print(
            f"  [bold]{c['name']}[/] ({roles}): {escape(c.get('endpoint') or '')}"
            + (f"; {'; '.join(facts)}" if facts else "")
        )
        if c.get("privileges"):
            console.print(f"    privileges: {_privileges_line(c['privileges'])}")
        if c.get("cdc") and c["cdc"]["ok"]:
            console.print(f"    change capture: {escape(c['cdc']['message'])}")
        for note in c.get("notes", []):
            console.print(f"    [yellow]{escape(note)}[/]")
    for w in report["waves"]:
        est = w.get("estimate_s")
        size = (
            f" — {w.get('rows', 0):,} rows, {human_bytes(w.get('bytes', 0))}, {human_seconds(est)}"
            if est is not None
            else ""
        )
        console.print(f"\n[bold]wave {w['wave']}: batch {w['batch']} · layer {w['layer']}[/]{size}")
        for s in w["steps"]:
            _print_step(console, s)
    if pilot is not None:
        _print_pilot(console, pilot)
    est = report.get("estimate")
    if est:
        console.print(
            f"\n[bold]estimated duration[/]: {human_seconds(est['seconds'])} ({est['basis']})"
        )
        console.print(f"  [dim]how: {escape(est['formula'])}[/]")
    blockers, warnings = report.get("blockers", []), report.get("warnings", [])
    if blockers:
        console.print(f"\n[bold red]blockers ({len(blockers)})[/]")
        for f in blockers:
            console.print(f"  [red]✗ {escape(f['where'])}: {escape(f['message'])}[/]")
    if warnings:
        console.print(f"\n[bold yellow]warnings ({len(warnings)})[/]")
        for f in warnings:
            console.print(f"  [yellow]! {escape(f['where'])}: {escape(f['message'])}[/]")
    if report["problems"]:
        console.print(f"\n[red]{report['problems']} problem(s) would stop the run[/]")


def _print_pilot(console: Console, pilot: dict[str, Any]) -> None:
    """What the pilot copied per step, how it checked, its speed, and its removal."""
    console.print("\n[bold]pilot[/]")
    for name, s in pilot.get("steps", {}).items():
        m = pilot["measured"].get(name)
        rate = ""
        if m and m.get("seconds"):
            per_s = m["bytes"] / m["seconds"] if m.get("files") else m["rows"] / m["seconds"]
            rate = f", {human_bytes(per_s)}/s" if m.get("files") else f", {per_s:,.0f} rows/s"
        style = "green" if s["status"] == "done" else "red"
        if s.get("files") is not None:
            f = s["files"]
            console.print(
                f"  step [bold]{escape(name)}[/]: [{style}]{s['status']}[/], {f['copied']:,}"
                f" file(s), {human_bytes(f['bytes'])} in {f['seconds']:.2f} s{rate}"
                " (each file's hash checked as written)"
            )
        else:
            rows = sum(t["rows"] or 0 for t in s["tables"])
            console.print(
                f"  step [bold]{escape(name)}[/]: [{style}]{s['status']}[/], {rows:,} row(s)"
                f" in {len(s['tables'])} table(s){rate}"
            )
            for t in s["tables"]:
                how = "; ".join(t["notes"]) or "chunk counted on both sides"
                console.print(
                    f"    {escape(t['table'])} → {escape(t['target_table'])}:"
                    f" {t['rows'] or 0:,} rows, {t['status']} ({escape(how)})"
                )
        if s.get("error"):
            console.print(f"    [red]{escape(s['error'])}[/]")
    if pilot.get("rolled_back"):
        console.print(f"  removed: {pilot.get('undone', 0):,} recorded change(s) rolled back")
    else:
        console.print("  [red]the pilot's copies were not all removed (see the blockers)[/]")


def _print_step(console: Console, s: dict[str, Any]) -> None:
    after = f", after {', '.join(s['after'])}" if s["after"] else ""
    console.print(
        f"  step [bold]{s['name']}[/]: {s['source']} → {s['target']},"
        f" mode {s['mode']}, validate {', '.join(s['validate']) or 'none'}{after}"
    )
    if s["error"]:  # the error itself is listed once, under blockers
        console.print("    [red]cannot be surveyed further: see the blockers below[/]")
        return
    console.print(f"    from {s.get('source_endpoint')}\n    to   {s.get('target_endpoint')}")
    if s.get("files") is not None:
        _print_files(console, s, s["files"])
    else:
        for i, t in enumerate(s["tables"], 1):
            key = ", ".join(t["key"]) or "no key"
            rename = f" → {t['target_table']}" if t["target_table"] != t["table"] else ""
            rows = f"{t['rows']:,}" if t["rows"] is not None else "?"
            size = f", {human_bytes(t['bytes'])}" if t.get("bytes") is not None else ""
            src = f" ({t['rows_from']})" if t.get("rows_from") else ""
            console.print(
                f"    {i}. {t['table']}{rename}: {rows} rows{src}{size}, key ({key}),"
                f" {t['chunks']} chunk(s), {escape(t['action'])}, then {t['indexes']}"
                f" index(es) and {t['foreign_keys']} foreign key(s)"
                + (f"; {human_seconds(t['estimate_s'])}" if t.get("estimate_s") else "")
            )
            if t.get("cursor"):
                indexed = "indexed" if t["cursor"]["indexed"] else "not indexed"
                console.print(f"       cursor {t['cursor']['column']} ({indexed})")
            for note in t.get("info", t["notes"]):
                console.print(f"       [yellow]{escape(note)}[/]")
        if len(s.get("load_order", [])) > 1:
            console.print(f"    load order: {' → '.join(s['load_order'])}")
        for note in s.get("notes", []):
            console.print(f"    [yellow]{escape(note)}[/]")
    est = s.get("estimate")
    if est:
        console.print(f"    estimate: {human_seconds(est['seconds'])} ({est['basis']})")
    rb = s.get("rollback") or {}
    for line in rb.get("can_undo", []):
        console.print(f"    rollback: {escape(line)}")
    for line in rb.get("cannot_undo", []):
        console.print(f"    [dim]not undone: {escape(line)}[/]")


def _print_files(console: Console, step: dict[str, Any], f: dict[str, Any]) -> None:
    largest = f["largest"]
    big = f", largest {escape(largest['path'])} ({human_bytes(largest['size'])})" if largest else ""
    console.print(
        f"    {f['files']:,} files, {human_bytes(f['bytes'])}, {f['dirs']:,} empty directories{big}"
    )
    what = "a first run copies" if f["first_run"] else "this run would copy"
    hashed = (
        f" ({f['hash_checks']:,} of them only if their content hash changed)"
        if f["hash_checks"]
        else ""
    )
    console.print(
        f"    {what} {f['copy_files']:,} files, {human_bytes(f['copy_bytes'])}{hashed};"
        f" {f['unchanged']:,} unchanged; {f['delete_files']:,} to delete on the target"
    )
    for r in f["refused"][:20]:
        console.print(f"    [red]STOP: {escape(r['path'])}: {escape(r['reason'])}[/]")
    if len(f["refused"]) > 20:
        console.print(f"    [red]… and {len(f['refused']) - 20:,} more refused names[/]")
    for note in step.get("notes", []):
        console.print(f"    [yellow]{escape(note)}[/]")
