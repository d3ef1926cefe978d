"""Render what a run did, what a dry run would do, and the status of a plan.

Every renderer takes plain data (results, state rows) and writes to a rich Console or
returns a JSON-ready dict; none of them reads a database.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from migrate.runner import RunResult, TableResult
from migrate.state import State, decode_key

#: Tables with at most this many chunks get a per-chunk listing in the console summary.
CHUNK_LISTING_LIMIT = 20


def _key_text(key: tuple[Any, ...] | None, open_end: str) -> str:
    if key is None:
        return open_end
    return "(" + ", ".join(str(v) for v in key) + ")" if len(key) > 1 else str(key[0])


def _range_text(lo: tuple[Any, ...] | None, hi: tuple[Any, ...] | None) -> str:
    if lo is None and hi is None:
        return "whole table"
    return f"({_key_text(lo, 'start')}, {_key_text(hi, 'end')}]"


def run_to_json(result: RunResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "plan": result.plan,
        "run_id": result.run_id,
        "status": result.status,
        "exit_code": result.exit_code,
        "message": result.message,
        "steps": [],
    }
    for step in result.steps:
        s = {k: v for k, v in asdict(step).items() if k != "tables"}
        s["tables"] = []
        for t in step.tables:
            d = {k: v for k, v in asdict(t).items() if k != "chunks"}
            d["key"] = list(t.key)
            d["counts_match"] = t.counts_match
            d["chunks"] = [
                {
                    "seq": c.seq,
                    "lo": _json_key(c.lo),
                    "hi": _json_key(c.hi),
                    "source_rows": c.source_rows,
                    "target_rows": c.target_rows,
                    "match": c.matches,
                }
                for c in t.chunks
            ]
            s["tables"].append(d)
        out["steps"].append(s)
    return out


def _json_key(key: tuple[Any, ...] | None) -> list[Any] | None:
    if key is None:
        return None
    return [v if isinstance(v, (int, str, float, bool)) or v is None else str(v) for v in key]


def print_run(console: Console, result: RunResult) -> None:
    tables = [t for s in result.steps for t in s.tables]
    if tables and all(t.status == "skipped" for t in tables):
        console.print(
            "nothing to do: every table was copied by an earlier run"
            " (migrate run --restart copies again)"
        )
    for step in result.steps:
        title = (
            f"step {step.name}: {step.source} → {step.target}"
            f"  ({step.batch} · {step.layer}) — {step.status}"
        )
        if not step.tables:
            console.print(f"[bold]{title}[/]" + (f"\n  {step.error}" if step.error else ""))
            continue
        table = Table(title=title, title_justify="left", show_edge=False)
        for col in (
            "table",
            "key",
            "source rows",
            "target rows",
            "chunks",
            "counts",
            "seconds",
            "rows/s",
        ):
            table.add_column(
                col, justify="right" if "rows" in col or col in ("chunks", "seconds") else "left"
            )
        for t in step.tables:
            rate = f"{t.target_rows / t.seconds:,.0f}" if t.seconds and t.target_rows else ""
            table.add_row(
                t.name if t.name == t.target_name else f"{t.name} → {t.target_name}",
                ", ".join(t.key) or "(none)",
                _n(t.source_rows),
                _n(t.target_rows),
                str(len(t.chunks)),
                _counts_cell(t),
                f"{t.seconds:.2f}",
                rate,
            )
        console.print(table)
        for t in step.tables:
            if t.chunks and (len(t.chunks) <= CHUNK_LISTING_LIMIT or t.chunk_mismatches):
                shown = t.chunks if len(t.chunks) <= CHUNK_LISTING_LIMIT else t.chunk_mismatches
                console.print(f"  {t.name}: chunk, key range, source rows = target rows")
                for c in shown:
                    line = (
                        f"    #{c.seq} {_range_text(c.lo, c.hi)} {c.source_rows:,} ="
                        f" {c.target_rows:,}"
                    )
                    console.print(
                        line if c.matches else f"[red]{line.replace('=', '≠')}[/]", highlight=False
                    )
            elif t.chunks:
                console.print(
                    f"  {t.name}: {len(t.chunks)} chunks, source and target counts"
                    " match in every chunk"
                )
            for note in t.notes:
                console.print(f"  [yellow]{t.name}: {note}[/]")
            if t.error:
                console.print(f"  [red]{t.name}: {t.error}[/]")
        for note in step.notes:
            console.print(f"  [yellow]{note}[/]")
        if step.error:
            console.print(f"  [red]{step.error}[/]")
    style = {"done": "green", "differences": "red", "failed": "red"}.get(result.status, "yellow")
    text = {
        "done": "done: every count matches",
        "differences": "row counts differ (exit 3)",
        "failed": "failed (exit 1)",
        "interrupted": "interrupted: run again to finish (exit 5)",
        "plan error": "stopped by a plan error (exit 2)",
    }.get(result.status, result.status)
    console.print(f"[bold {style}]run {result.run_id}: {text}[/]")
    if result.message and result.status != "done":
        console.print(f"  {result.message}")


def _n(v: int | None) -> str:
    return "" if v is None else f"{v:,}"


def _counts_cell(t: TableResult) -> str:
    if t.status == "failed":
        return "[red]failed[/]"
    if t.source_rows is None:
        return ""
    if t.counts_match:
        return "[green]match[/]" + (" (earlier run)" if t.status == "skipped" else "")
    return "[red]DIFFER[/]"


def status_rows(state: State, chunk_rows: dict[str, int]) -> list[dict[str, Any]]:
    """Per step and table: rows copied, chunks done and left, last error."""
    out = []
    for row in state.tables():
        copied = row["rows_copied"] or 0
        est = row["est_rows"]
        size = chunk_rows.get(row["step"], 50_000)
        chunks = state.chunks(row["step"], row["name"])
        if row["status"] in ("copying", "failed", "pending") and row["key_columns"]:
            left = math.ceil(max((est or 0) - copied, 0) / size)
            if row["status"] != "pending":
                left = max(left, sum(1 for c in chunks if c["status"] != "done"))
        elif row["status"] in ("copying", "failed", "pending"):
            left = 1
        else:
            left = 0
        last = chunks[-1] if chunks else None
        out.append(
            {
                "step": row["step"],
                "table": row["name"],
                "target_table": row["target_name"],
                "status": row["status"],
                "rows_copied": copied,
                "estimated_rows": est,
                "source_rows": row["source_rows"],
                "target_rows": row["target_rows"],
                "chunks_done": row["chunks_done"],
                "chunks_left": left,
                "last_key": _json_key(decode_key(last["hi"])) if last else None,
                "last_error": row["error"],
            }
        )
    return out


def print_status(console: Console, run: Any, rows: list[dict[str, Any]]) -> None:
    if run is not None:
        console.print(
            f"last run {run['id']}: {run['status']} (started {run['started_at']},"
            f" finished {run['finished_at'] or '-'}, pid {run['pid']} on"
            f" {run['host']})"
        )
        if run["message"]:
            console.print(f"  {run['message']}")
    table = Table(show_edge=False)
    for col in (
        "step",
        "table",
        "status",
        "rows copied",
        "chunks done",
        "chunks left",
        "last error",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["step"],
            r["table"],
            r["status"],
            f"{r['rows_copied']:,}",
            str(r["chunks_done"]),
            str(r["chunks_left"]),
            r["last_error"] or "",
        )
    console.print(table)
