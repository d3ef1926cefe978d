"""``migrate run PLAN --dry-run``: the order of waves and what each step would do.

Reads sources and targets (table lists, schemas, counts) and writes nothing anywhere: no
state file, no lock, no target change.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console

from migrate.copier import NO_KEY_NOTE
from migrate.errors import MigrateError
from migrate.plan import Plan, redact
from migrate.planner import foreign_key_order, waves
from migrate.runner import Endpoints, select_tables


def dry_run(plan: Plan) -> dict[str, Any]:
    """Describe the run; a step whose endpoints fail is reported with its error."""
    out: dict[str, Any] = {"plan": plan.name, "state": str(plan.state_path), "waves": []}
    endpoints = Endpoints(plan, workers=1, dry_run=True)
    problems = 0
    try:
        for number, wave in enumerate(waves(plan), 1):
            w: dict[str, Any] = {
                "wave": number,
                "batch": wave.batch,
                "layer": wave.layer,
                "steps": [],
            }
            for step in wave.steps:
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
                    names = select_tables(step, source.list_tables(), plan)
                    ordered, cycles = foreign_key_order([source.read_schema(n) for n in names])
                    s["notes"] = [
                        f"foreign-key cycle among {c}: loaded in name order" for c in cycles
                    ]
                    for schema in ordered:
                        override = step.overrides.get(schema.name)
                        tname = override.rename if override and override.rename else schema.name
                        key = override.key if override and override.key else schema.chunk_key()
                        size = (
                            override.chunk_rows
                            if override and override.chunk_rows
                            else step.chunk_rows
                        )
                        rows = source.count(schema.name)
                        tschema = target.target_schema(schema, source.capabilities, tname)
                        exists = target.table_exists(tname)
                        action = "create and copy"
                        if exists:
                            action = {
                                "fail": "STOP: target table exists",
                                "truncate": "empty the existing table and copy",
                                "replace": "drop, create and copy",
                            }[step.if_exists]
                        notes = [f"{c.name}: {n}" for c in tschema.columns for n in c.notes]
                        if not key:
                            notes.append(NO_KEY_NOTE)
                        s["tables"].append(
                            {
                                "table": schema.name,
                                "target_table": tname,
                                "rows": rows,
                                "key": list(key),
                                "chunks": max(1, math.ceil(rows / size)) if key else 1,
                                "action": action,
                                "indexes": len(tschema.indexes),
                                "foreign_keys": len(tschema.foreign_keys),
                                "notes": notes,
                            }
                        )
                        if exists and step.if_exists == "fail":
                            problems += 1
                except MigrateError as exc:
                    s["error"] = redact(str(exc), plan.secrets)
                    problems += 1
                w["steps"].append(s)
            out["waves"].append(w)
    finally:
        endpoints.close()
    out["problems"] = problems
    return out


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
                f" mode {s['mode']}, validate {', '.join(s['validate'])}{after}"
            )
            if s["error"]:
                console.print(f"    [red]{s['error']}[/]")
                continue
            console.print(f"    from {s['source_endpoint']}\n    to   {s['target_endpoint']}")
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
                    console.print(f"       [yellow]{note}[/]")
            for note in s.get("notes", []):
                console.print(f"    [yellow]{note}[/]")
    if report["problems"]:
        console.print(f"\n[red]{report['problems']} problem(s) would stop the run[/]")
