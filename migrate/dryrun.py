"""``migrate run PLAN --dry-run``: the order of waves and what each step would do.

Reads sources and targets (table lists, schemas, counts) and writes nothing anywhere: no
state file, no lock, no target change.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.markup import escape

from migrate.endpoints import TableEndpoint
from migrate.errors import MigrateError
from migrate.file_report import human_bytes
from migrate.filecopy import preview
from migrate.incremental import show
from migrate.plan import Plan, Step, redact
from migrate.planner import foreign_key_order, waves
from migrate.runner import Endpoints, build_job, check_cdc, select_tables
from migrate.state import State, decode_key


def dry_run(plan: Plan, only_steps: tuple[str, ...] = ()) -> dict[str, Any]:
    """Describe the run (of ``only_steps`` when given, as ``migrate run --step`` runs
    them); a step whose endpoints fail is reported with its error."""
    out: dict[str, Any] = {"plan": plan.name, "state": str(plan.state_path), "waves": []}
    endpoints = Endpoints(plan, workers=1, dry_run=True)
    problems = 0
    state = State(plan.state_path, plan.name, readonly=True) if plan.state_path.exists() else None
    try:
        for number, wave in enumerate(waves(plan), 1):
            w: dict[str, Any] = {
                "wave": number,
                "batch": wave.batch,
                "layer": wave.layer,
                "steps": [],
            }
            for step in wave.steps:
                if only_steps and step.name not in only_steps:
                    continue
                s: dict[str, Any] = {
                    "name": step.name,
                    "source": step.source,
                    "target": step.target,
                    "mode": step.mode,
                    "after": list(step.after),
                    "validate": list(step.validate),
                    "tables": [],
                    "error": None,
                }
                try:
                    source, target = endpoints.get(step.source), endpoints.get(step.target)
                    s["source_endpoint"] = source.describe()
                    s["target_endpoint"] = target.describe()
                    if step.kind == "file":
                        manifest = state.manifest(step.name) if state is not None else {}
                        row = state.file_step(step.name) if state is not None else None
                        created = state.created_files(step.name, step.target) if state else set()
                        s["files"] = preview(
                            step,
                            source,
                            target,
                            manifest,
                            done=row is not None and row["status"] == "done",
                            created=created,
                        )
                        s["notes"] = (
                            s["files"]["notes"]
                            + list(getattr(source, "notes", []))
                            + list(getattr(target, "notes", []))
                        )
                        problems += 1 if s["files"]["refused"] else 0
                        problems += sum(1 for n in s["files"]["notes"] if n.startswith("STOP"))
                        w["steps"].append(s)
                        continue
                    if step.mode == "cdc":
                        check_cdc(plan, step, source)
                    names = select_tables(step, source.list_tables(), plan)
                    ordered, cycles = foreign_key_order([source.read_schema(n) for n in names])
                    s["notes"] = [
                        f"foreign-key cycle among {c}: loaded in name order" for c in cycles
                    ]
                    for schema in ordered:
                        job = build_job(plan, step, schema, source, target, 0)
                        tname, tschema = job.target_schema.name, job.target_schema
                        rows = source.count(schema.name)
                        action, blocking = _action(plan, step, schema.name, tname, target, state)
                        s["tables"].append(
                            {
                                "table": schema.name,
                                "target_table": tname,
                                "rows": rows,
                                "key": list(job.key),
                                "chunks": max(1, math.ceil(rows / job.chunk_rows))
                                if job.key
                                else 1,
                                "action": action,
                                "indexes": len(tschema.indexes),
                                "foreign_keys": len(tschema.foreign_keys),
                                "notes": job.notes,
                            }
                        )
                        problems += blocking
                except MigrateError as exc:
                    s["error"] = redact(str(exc), plan.secrets)
                    problems += 1
                w["steps"].append(s)
            if w["steps"]:
                out["waves"].append(w)
    finally:
        endpoints.close()
        if state is not None:
            state.close()
    out["problems"] = problems
    return out


def _action(
    plan: Plan, step: Step, name: str, tname: str, target: TableEndpoint, state: State | None
) -> tuple[str, int]:
    """What a run would do to one table, and 1 when that would stop the run."""
    row = state.table(step.name, name) if state is not None else None
    if row is not None and row["status"] in ("done", "differences") and step.incremental:
        return _catch_up_action(step, name, state), 0
    if row is not None and row["status"] in ("done", "differences"):
        return "already copied by an earlier run: nothing to do", 0
    if step.mode == "incremental":
        if not target.table_exists(tname):
            return "STOP: mode incremental needs the table on the target", 1
        start = f"start {step.start}" if step.start is not None else "the target's highest"
        return f"adopt the existing table; catch up from {start} cursor value", 0
    if row is not None and row["status"] not in ("pending",):
        return f"resume the copy after {row['rows_copied']:,} rows", 0
    if not target.table_exists(tname):
        return "create and copy", 0
    if state is not None and state.created_by_us(step.name, step.target, tname):
        return "drop the table this plan created, create and copy", 0
    return {
        "fail": (
            "STOP: the target table exists and was not created by this plan (set if_exists)",
            1,
        ),
        "truncate": ("empty the existing table and copy", 0),
        "replace": ("drop, create and copy", 0),
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


def print_dry_run(console: Console, report: dict[str, Any]) -> None:
    console.print(
        f"[bold]dry run of plan {report['plan']}[/]: nothing will be written"
        f" (state would be kept in {report['state']})"
    )
    for w in report["waves"]:
        console.print(f"\n[bold]wave {w['wave']}: batch {w['batch']} · layer {w['layer']}[/]")
        for s in w["steps"]:
            after = f", after {', '.join(s['after'])}" if s["after"] else ""
            console.print(
                f"  step [bold]{s['name']}[/]: {s['source']} → {s['target']},"
                f" mode {s['mode']}, validate {', '.join(s['validate']) or 'none'}{after}"
            )
            if s["error"]:
                console.print(f"    [red]{escape(s['error'])}[/]")
                continue
            console.print(f"    from {s['source_endpoint']}\n    to   {s['target_endpoint']}")
            if s.get("files") is not None:
                _print_files(console, s, s["files"])
                continue
            for i, t in enumerate(s["tables"], 1):
                key = ", ".join(t["key"]) or "no key"
                rename = f" → {t['target_table']}" if t["target_table"] != t["table"] else ""
                console.print(
                    f"    {i}. {t['table']}{rename}: {t['rows']:,} rows, key"
                    f" ({key}), {t['chunks']} chunk(s), {t['action']}, then"
                    f" {t['indexes']} index(es) and {t['foreign_keys']} foreign"
                    " key(s)"
                )
                for note in t["notes"]:
                    console.print(f"       [yellow]{escape(note)}[/]")
            for note in s.get("notes", []):
                console.print(f"    [yellow]{escape(note)}[/]")
    if report["problems"]:
        console.print(f"\n[red]{report['problems']} problem(s) would stop the run[/]")


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
