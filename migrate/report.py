"""Render what a run did, what a dry run would do, and the status of a plan.

Every renderer takes plain data (results, state rows) and writes to a rich Console or
returns a JSON-ready dict; none of them reads a database.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from migrate.file_report import human_bytes
from migrate.filecopy import file_step_to_json
from migrate.incremental import show
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


def wave_summary(result: RunResult) -> list[dict[str, Any]]:
    """What ran per batch and layer, in the order the run took them: the steps by
    status, tables and files copied, and seconds."""
    out: list[dict[str, Any]] = []
    for step in result.steps:
        if not out or (out[-1]["batch"], out[-1]["layer"]) != (step.batch, step.layer):
            out.append(
                {
                    "batch": step.batch,
                    "layer": step.layer,
                    "steps": {},
                    "tables": 0,
                    "files": 0,
                    "seconds": 0.0,
                }
            )
        w = out[-1]
        w["steps"][step.name] = step.status
        w["tables"] += sum(1 for t in step.tables if t.status not in ("skipped", "failed"))
        w["files"] += step.files.copied if step.files is not None else 0
        w["seconds"] = round(w["seconds"] + step.seconds, 3)
    for w in out:
        statuses = set(w["steps"].values())
        w["status"] = next(
            (s for s in ("failed", "differences", "interrupted", "not run") if s in statuses),
            "done",
        )
    return out


def run_to_json(result: RunResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "plan": result.plan,
        "run_id": result.run_id,
        "status": result.status,
        "exit_code": result.exit_code,
        "message": result.message,
        "waves": wave_summary(result),
        "steps": [],
    }
    for step in result.steps:
        s = {k: v for k, v in asdict(step).items() if k not in ("tables", "files")}
        s["files"] = file_step_to_json(step.files) if step.files is not None else None
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


def _print_file_step(console: Console, title: str, step: Any) -> None:
    """A file step: what was listed, copied, verified and deleted, and its validation."""
    f = step.files
    console.print(f"[bold]{escape(title)}[/]")
    if f.status == "skipped":
        console.print(
            f"  {f.source_files:,} files, {human_bytes(f.source_bytes)}: " + "; ".join(f.notes)
        )
        return
    verified = ", ".join(f"{k} {v:,}" for k, v in sorted(f.verified.items()))
    rate = f.copied_bytes / f.seconds if f.seconds else 0.0
    console.print(
        f"  source {f.source_files:,} files, {human_bytes(f.source_bytes)}; copied {f.copied:,}"
        f" ({human_bytes(f.copied_bytes)}, {human_bytes(rate)}/s), unchanged {f.unchanged:,},"
        f" deleted {f.deleted:,} in {f.seconds:.1f}s"
    )
    if f.copied:
        console.print(f"  verified against the target: {verified}")
    extra = []
    if f.server_side:
        extra.append(f"{f.server_side:,} copied server-side")
    if f.recopied:
        extra.append(f"{f.recopied:,} changed while copied and copied again")
    if f.dirs:
        extra.append(f"{f.dirs:,} empty directories kept")
    if f.cleaned:
        extra.append(f"{f.cleaned:,} leftovers of an interrupted run removed")
    if f.backed_up:
        extra.append(
            f"{f.backed_up:,} existing file(s) kept under .migrate-backup/ before being"
            " overwritten (a rollback puts them back)"
        )
    if extra:
        console.print("  " + "; ".join(extra))
    for path, why in f.refused[:20]:
        console.print(f"  [red]refused {escape(path)}: {escape(why)}[/]")
    for path, err in f.failed[:20]:
        console.print(
            f"  [red]{escape(err) if not path or path in err else escape(path + ': ' + err)}[/]"
        )
    more = len(f.refused) + len(f.failed) - min(len(f.refused), 20) - min(len(f.failed), 20)
    if more > 0:
        console.print(f"  [red]… and {more:,} more[/]")
    for note in f.notes:
        console.print(f"  [yellow]{escape(note)}[/]")
    if step.error and not (f.refused or f.failed):
        console.print(f"  [red]{escape(step.error)}[/]")
    if f.check is not None:
        from migrate.file_report import print_file_check

        print_file_check(console, f.check)


def _json_key(key: tuple[Any, ...] | None) -> list[Any] | None:
    if key is None:
        return None
    return [v if isinstance(v, (int, str, float, bool)) or v is None else str(v) for v in key]


def print_run(console: Console, result: RunResult) -> None:
    tables = [t for s in result.steps for t in s.tables]
    failed = any(t.error for t in tables) or any(s.error for s in result.steps)
    if tables and not failed and all(t.status == "skipped" for t in tables):
        console.print(
            "nothing to do: every table was copied by an earlier run"
            " (migrate run --restart copies again)"
        )
    passes = [t.catch_up for t in tables if t.catch_up is not None]
    if (
        passes
        and not failed
        and all(t.status == "skipped" or t.catch_up is not None for t in tables)
        and not any(p.changed or p.deleted for p in passes)
    ):
        console.print("caught up: nothing changed at the source since the last pass")
    for step in result.steps:
        title = (
            f"step {step.name}: {step.source} → {step.target}"
            f"  ({step.batch} · {step.layer}) — {step.status}"
        )
        if step.files is not None:
            _print_file_step(console, title, step)
            continue
        if not step.tables:
            console.print(f"[bold]{title}[/]" + (f"\n  {escape(step.error)}" if step.error else ""))
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
        _print_catch_up(console, step.tables)
        for t in step.tables:
            copied_now = t.status != "skipped" and t.catch_up is None
            if not copied_now and not t.chunk_mismatches:
                pass  # chunks of an earlier run's copy: `migrate status` shows them
            elif t.chunks and (len(t.chunks) <= CHUNK_LISTING_LIMIT or t.chunk_mismatches):
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
                console.print(f"  [yellow]{escape(t.name)}: {escape(note)}[/]")
            if t.error:
                console.print(f"  [red]{escape(t.name)}: {escape(t.error)}[/]")
        for note in step.notes:
            console.print(f"  [yellow]{escape(note)}[/]")
        if step.error:
            console.print(f"  [red]{escape(step.error)}[/]")
        checks = [t.checksum for t in step.tables if t.checksum]
        if checks:
            print_checks(console, checks)
    if result.cutover:
        _print_acceptance(console, result)
    _print_waves(console, result)
    live = any(t.live for t in tables)
    style = {"done": "green", "differences": "red", "failed": "red"}.get(result.status, "yellow")
    text = {
        "done": "done: every count matches",
        "differences": "row counts differ (exit 3)"
        if (result.message or "").startswith("row counts")
        else "checksums differ (exit 3)",
        "failed": "failed (exit 1)",
        "interrupted": "interrupted: run again to finish (exit 5)",
        "plan error": "stopped by a plan error (exit 2)",
    }.get(result.status, result.status)
    if (
        result.status == "done"
        and not tables
        and not any(s.files is not None and s.files.check is not None for s in result.steps)
    ):
        text = "done"
    elif result.status == "done" and live:
        text = "done: chunk counts match (the source is live: --cutover compares tables)"
    elif result.status == "done" and (
        any(t.checksum for t in tables)
        or any(
            s.files is not None
            and s.files.check is not None
            and "checksum" in (s.files.check.get("method") or "")
            for s in result.steps
        )
    ):
        text = "done: every count and checksum matches"
    elif result.status == "differences" and (result.message or "").startswith("file"):
        text = "files differ (exit 3)"
    console.print(f"[bold {style}]run {result.run_id}: {text}[/]")
    if result.message and result.status != "done":
        console.print(f"  {escape(result.message)}")


def _print_waves(console: Console, result: RunResult) -> None:
    """The per batch and layer summary, when the run spans more than one of them or a
    batch stopped the later ones."""
    summary = wave_summary(result)
    if len(summary) < 2 and not any(w["status"] == "not run" for w in summary):
        return
    table = Table(title="by batch and layer", title_justify="left", show_edge=False)
    for col in ("batch", "layer", "status", "steps", "tables", "files", "seconds"):
        table.add_column(col, justify="right" if col in ("tables", "files", "seconds") else "left")
    for w in summary:
        style = {"done": "green", "not run": "yellow"}.get(w["status"], "red")
        table.add_row(
            w["batch"],
            w["layer"],
            f"[{style}]{w['status']}[/]",
            ", ".join(f"{n} ({st})" for n, st in w["steps"].items()),
            f"{w['tables']:,}",
            f"{w['files']:,}",
            f"{w['seconds']:.2f}",
        )
    console.print(table)


def _print_catch_up(console: Console, tables: list[TableResult]) -> None:
    rows = [t for t in tables if t.catch_up is not None]
    if not rows:
        return
    table = Table(title="  catch-up pass", title_justify="left", show_edge=False)
    for col in ("table", "since", "rows read", "changed", "deleted", "now at", "seconds"):
        table.add_column(
            col,
            justify="right" if col in ("rows read", "changed", "deleted", "seconds") else "left",
        )
    for t in rows:
        p = t.catch_up
        assert p is not None
        table.add_row(
            t.name,
            p.since or "(start)",
            f"{p.rows:,}",
            f"{p.changed:,}",
            f"{p.deleted:,}",
            t.position or p.watermark or "",
            f"{p.seconds:.2f}",
        )
    console.print(table)


def _print_acceptance(console: Console, result: RunResult) -> None:
    """The cut-over summary: every table counted on both sides, and where catch-up stands."""
    if not any(step.tables for step in result.steps):
        return  # file steps show their comparison with their own result
    table = Table(title="cut-over acceptance", title_justify="left", show_edge=False)
    for col in ("step", "table", "source rows", "target rows", "counts", "final position"):
        table.add_column(col, justify="right" if "rows" in col else "left")
    for step in result.steps:
        for t in step.tables:
            table.add_row(
                step.name,
                t.name,
                _n(t.source_rows),
                _n(t.target_rows),
                _counts_cell(t),
                t.position or "",
            )
    console.print(table)


def _n(v: int | None) -> str:
    return "" if v is None else f"{v:,}"


def _counts_cell(t: TableResult) -> str:
    if t.status == "failed":
        return "[red]failed[/]"
    if t.source_rows is None:
        return ""
    if t.live and t.counts_match:
        return "live" if t.source_rows != t.target_rows else "[green]match[/] (live)"
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
        mark = state.watermark(row["step"], row["name"])
        catch_up: dict[str, Any] | None = None
        if mark is not None:
            stream = state.stream(row["step"]) if mark["kind"] == "binlog" else None
            if stream is not None:
                position, as_of = stream["position"], stream["as_of"]
            elif mark["kind"] == "binlog":  # the table's snapshot position, no pass yet
                position, as_of = mark["value"], mark["as_of"]
            else:
                value = decode_key(mark["value"]) if mark["value"] else None
                position, as_of = (show(value[0]) if value else None), mark["as_of"]
            catch_up = {
                "kind": mark["kind"],
                "cursor": mark["cursor"],
                "position": position,
                "as_of": as_of,
                "lag_seconds": _lag(as_of),
                "passes": mark["passes"],
                "last_rows": mark["last_rows"],
                "last_changed": mark["last_changed"],
                "last_deleted": mark["last_deleted"],
                "last_pass_at": mark["last_pass_at"],
            }
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
                "catch_up": catch_up,
                "checksum": _last_check(state, row["step"], row["name"]),
            }
        )
    return out


def _last_check(state: State, step: str, table: str) -> dict[str, Any] | None:
    """The table's latest checksum validation, in short."""
    v = state.last_validation(step, table)
    if v is None:
        return None
    return {
        "status": v["status"],
        "checked_at": v["checked_at"],
        "missing": v["missing"],
        "extra": v["extra"],
        "changed": v["changed"],
        "method": v["method"],
    }


def _check_cell(c: dict[str, Any] | None) -> str:
    if c is None:
        return ""
    when = (c["checked_at"] or "")[:16].replace("T", " ")
    if c["status"] == "differences" and (c["missing"] or c["extra"] or c["changed"]):
        what = f"{c['missing']} missing, {c['extra']} extra, {c['changed']} changed"
        return f"differences: {what} ({when})"
    return f"{c['status']} ({when})"


def _lag(as_of: str | None) -> float | None:
    """Seconds since the moment the target last caught up with (the start of the last pass)."""
    if not as_of:
        return None
    then = dt.datetime.strptime(as_of, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return round((dt.datetime.now(dt.UTC) - then).total_seconds(), 1)


def _lag_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def print_status(console: Console, run: Any, rows: list[dict[str, Any]]) -> None:
    if run is not None:
        console.print(
            f"last run {run['id']}: {run['status']} (started {run['started_at']},"
            f" finished {run['finished_at'] or '-'}, pid {run['pid']} on"
            f" {run['host']})"
        )
        if run["message"]:
            console.print(f"  {escape(run['message'])}")
    if not rows:
        return
    table = Table(show_edge=False)
    for col in (
        "step",
        "table",
        "status",
        "rows copied",
        "chunks done",
        "chunks left",
        "last checksum",
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
            escape(_check_cell(r["checksum"])),
            escape(r["last_error"] or ""),
        )
    console.print(table)
    caught = [r for r in rows if r["catch_up"]]
    if not caught:
        return
    table = Table(title="catch-up", title_justify="left", show_edge=False)
    for col in ("step", "table", "by", "watermark / position", "passes", "last pass", "lag"):
        table.add_column(col)
    for r in caught:
        c = r["catch_up"]
        by = "binlog" if c["kind"] == "binlog" else f"{c['cursor']} ({c['kind']})"
        last = (
            f"{c['last_rows']:,} read, {c['last_changed']:,} changed, {c['last_deleted']:,} deleted"
            if c["last_rows"] is not None
            else "none yet"
        )
        table.add_row(
            r["step"],
            r["table"],
            by,
            c["position"] or "",
            str(c["passes"]),
            last,
            _lag_text(c["lag_seconds"]),
        )
    console.print(table)


def file_status_rows(state: State) -> list[dict[str, Any]]:
    """Per file step: files and bytes in the manifest, runs, the last run's numbers, lag."""
    out = []
    for row in state.file_steps():
        counts = state.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files WHERE step=? AND kind='file'",
            (row["step"],),
        ).fetchone()
        out.append(
            {
                "step": row["step"],
                "status": row["status"],
                "files": counts[0],
                "bytes": counts[1],
                "runs": row["runs"],
                "last_copied": row["last_copied"],
                "last_bytes": row["last_bytes"],
                "last_deleted": row["last_deleted"],
                "last_seconds": row["last_seconds"],
                "last_run_at": row["last_run_at"],
                "as_of": row["as_of"],
                "lag_seconds": _lag(row["as_of"]),
            }
        )
    return out


def print_file_status(console: Console, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = Table(title="file steps", title_justify="left", show_edge=False)
    for col in ("step", "status", "files", "bytes", "runs", "last run", "lag"):
        table.add_column(col)
    for r in rows:
        last = (
            f"{r['last_copied'] or 0:,} copied ({human_bytes(r['last_bytes'] or 0)}),"
            f" {r['last_deleted'] or 0:,} deleted"
        )
        table.add_row(
            escape(r["step"]),
            r["status"],
            f"{r['files']:,}",
            human_bytes(r["bytes"]),
            str(r["runs"]),
            last,
            _lag_text(r["lag_seconds"]),
        )
    console.print(table)


# -- checksum validation --------------------------------------------------------------------
_CHECK_STYLE = {"equal": "green", "differences": "red", "failed": "red"}


def _key_show(key: list[Any]) -> str:
    return ", ".join("NULL" if v is None else str(v) for v in key)


def _value_show(v: Any) -> str:
    return "NULL" if v is None else repr(v) if isinstance(v, str) else str(v)


def print_checks(console: Console, tables: list[dict[str, Any]], rows_shown: int = 20) -> None:
    """The checksum validation of each table (``check_to_json`` dicts): a summary table,
    then per differing table its first differing rows, the rules used and notes."""
    summary = Table(title="checksum validation", title_justify="left", show_edge=False)
    for col in ("step", "table", "rows (source/target)", "chunks", "method", "status", "time"):
        summary.add_column(col, justify="right" if col in ("chunks", "time") else "left")
    for t in tables:
        status = check_status(t)
        style = _CHECK_STYLE.get(t["status"], "")
        summary.add_row(
            escape(t["step"]),
            escape(
                t["table"]
                if t["table"] == t["target_table"]
                else f"{t['table']} -> {t['target_table']}"
            ),
            f"{_n(t['source_rows'])} / {_n(t['target_rows'])}",
            f"{t['chunks_differing']}/{t['chunks']}" if t["chunks_differing"] else str(t["chunks"]),
            escape(t["method"] or ""),
            f"[{style}]{escape(status)}[/]" if style else escape(status),
            f"{t['seconds']:.2f}s",
        )
    console.print(summary)
    for t in tables:
        lines = []
        if t["error"]:
            lines.append(f"  error: {escape(t['error'])}")
        for d in t["diffs"][:rows_shown]:
            key = escape(_key_show(d["key"]))
            if d["kind"] != "changed":
                where = "target" if d["kind"] == "missing" else "source"
                lines.append(f"  {d['kind']:8} key {key}  (not on the {where})")
                continue
            for c in d["columns"]:
                lines.append(
                    f"  changed  key {key}  {escape(c['column'])}:"
                    f" {escape(_value_show(c['source']))} -> {escape(_value_show(c['target']))}"
                )
        more = t["missing"] + t["extra"] + t["changed"] - min(len(t["diffs"]), rows_shown)
        if more > 0 and t["locatable"]:
            lines.append(f"  … {more:,} more differing row(s) in the JSON and HTML reports")
        if t["rules"]:
            lines.append(f"  rules: {escape('; '.join(t['rules']))}; {escape(rules_used(t))}")
        lines.extend(f"  note: {escape(n)}" for n in t["notes"])
        if lines:
            console.print(f"[bold]{escape(t['step'])} / {escape(t['table'])}[/]")
            for line in lines:
                console.print(line, highlight=False)


def check_status(t: dict[str, Any]) -> str:
    """A table's validation status in words."""
    status = t["status"]
    if status != "differences":
        return status
    if not t["locatable"]:
        if t["missing"] or t["extra"]:
            return (
                f"differences: {t['missing']:,} row(s) only on the source, {t['extra']:,}"
                " only on the target (cannot be located: no key)"
            )
        return "differences (cannot be located: no key)"
    if t["missing"] or t["extra"] or t["changed"]:
        return f"differences: {t['missing']} missing, {t['extra']} extra, {t['changed']} changed"
    return status


def rules_used(t: dict[str, Any]) -> str:
    """Whether the table's rules were needed: rows compared equal only under a rule, and
    ranges whose checksums agreed only under the rules."""
    used = [f"{k} ({v:,} rows)" for k, v in t["rules_used"].items()]
    if t.get("ruled_ranges"):
        used.append(f"{t['ruled_ranges']:,} range(s) equal only under the rules")
    return "used: " + ", ".join(used) if used else "not needed"


def print_validation(console: Console, data: dict[str, Any]) -> None:
    """The result of ``migrate validate`` (``result_to_json``)."""
    if data["tables"] or not data.get("files"):
        print_checks(console, data["tables"])
    if data.get("files"):
        from migrate.file_report import print_file_check

        for check in data["files"]:
            print_file_check(console, check)
    style = _CHECK_STYLE.get(data["status"], "yellow")
    console.print(
        f"[{style}]{escape(data['status'])}[/]: {escape(data['message'] or '')}"
        f" ({data['seconds']:.1f}s)"
    )
    if data.get("html"):
        console.print(f"report: {escape(data['html'])}", highlight=False)
