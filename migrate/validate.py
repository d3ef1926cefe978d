"""Checksum validation of a plan's tables: ``migrate validate`` and ``validate =
["count", "checksum"]`` on a step.

Contracts:

- Only reads: the endpoints are opened read-only (MySQL ``SET SESSION TRANSACTION READ
  ONLY``, PostgreSQL ``default_transaction_read_only``, SQLite ``mode=ro``); the state
  store and the HTML report are the only files written. It takes no run lock, so it can
  run while catch-up passes continue (rows changing under it are read twice, see
  :mod:`validators.checksum`).
- A table is compared with the key, target name and chunk size its copy uses
  (:func:`migrate.runner.build_job`), under the rules of its step and its own override.
- Outcome: ``equal`` (exit 0), ``differences`` (exit 3), ``failed`` (exit 1, a table
  could not be compared), ``interrupted`` (exit 5).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from migrate.copier import Progress
from migrate.endpoints import TableEndpoint, target_names
from migrate.errors import (
    EXIT_DIFFERENCES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    InterruptedRun,
    MigrateError,
    PlanError,
)
from migrate.plan import Plan, Step, redact
from validators.checksum import RowDiff, TableCheck, check_table

#: the console lists at most this many differing rows per table (JSON and HTML: all kept)
CONSOLE_ROWS = 20
#: binary values longer than this many bytes are shown cut
SHOW_BYTES = 32
MASK = "***"


@dataclass
class ValidationResult:
    plan: str
    check_id: int | None
    status: str  # equal | differences | failed | interrupted
    tables: list[TableCheck] = field(default_factory=list)
    #: file steps' checks (``validators.files.FileCheck``)
    files: list[Any] = field(default_factory=list)
    message: str | None = None
    html: str | None = None
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return {
            "equal": EXIT_OK,
            "differences": EXIT_DIFFERENCES,
            "interrupted": EXIT_INTERRUPTED,
        }.get(self.status, EXIT_ERROR)


def check_job(
    step: Step,
    job: Any,
    source: TableEndpoint,
    target: TableEndpoint,
    *,
    hash_mode: str = "auto",
    stop: threading.Event | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> TableCheck:
    """Validate one table as ``job`` (a :class:`migrate.copier.TableJob`) copies it."""
    name, tname = job.source_schema.name, job.target_schema.name
    if not target.table_exists(tname):
        res = TableCheck(step.name, name, tname, job.key, status="differences")
        res.error = f"table {tname} is not on the target ({step.target})"
        res.source_rows = source.count(name)
        return res
    rules = step.table_rules(name)
    auto = empty_string_rule(source, target, rules)
    if auto:
        rules = replace(rules, empty_is_null=True)
    columns = job.source_schema.column_names
    check = check_table(
        step=step.name,
        source=source,
        source_schema=job.source_schema,
        target=target,
        target_schema=target.read_schema(tname),
        key=job.key,
        rules=rules,
        chunk_rows=job.chunk_rows,
        workers=step.workers,
        stop=stop,
        hash_mode=hash_mode,
        on_chunk=on_chunk,
        names=dict(zip(columns, target_names(target, columns), strict=True)),
    )
    if auto:
        check.notes.insert(0, auto)
    return check


def empty_string_rule(source: TableEndpoint, target: TableEndpoint, rules: Any) -> str | None:
    """Why the ``empty_is_null`` rule is on for this pair without the plan asking: one side
    stores ``''`` as NULL (Oracle), so an empty string can only arrive as NULL. None when
    neither side does or the plan already asks for the rule."""
    if rules.empty_is_null:
        return None
    for side, ep in (("source", source), ("target", target)):
        if ep.capabilities.empty_string_is_null:
            return (
                f"the {side} stores '' as NULL ({ep.capabilities.engine}): the rule"
                " empty_is_null is on for this table by itself"
            )
    return None


def failed_check(step: Step, job: Any, exc: BaseException, secrets: frozenset[str]) -> TableCheck:
    """A table that could not be compared: its error (a connector's own message, or the
    exception's type and text for anything unexpected), without secrets."""
    check = TableCheck(step.name, job.source_schema.name, job.target_schema.name, job.key)
    check.status = "failed"
    text = str(exc) if isinstance(exc, MigrateError) else f"{type(exc).__name__}: {exc}"
    check.error = redact(text, secrets)
    return check


def validate_plan(
    plan: Plan,
    *,
    steps: tuple[str, ...] = (),
    tables: tuple[str, ...] = (),
    hash_mode: str = "auto",
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> ValidationResult:
    """Compare every selected table of every selected step; nothing is written to a
    database (see the module docstring)."""
    from migrate.runner import Endpoints, build_job, select_tables

    started = time.monotonic()
    progress = progress or Progress()
    stop = stop or threading.Event()
    result = ValidationResult(plan.name, None, "equal")
    endpoints = Endpoints(plan, max((s.workers for s in plan.steps), default=4), dry_run=True)
    matched: set[str] = set()
    try:
        for step in plan.steps:
            if steps and step.name not in steps:
                continue
            source, target = endpoints.get(step.source), endpoints.get(step.target)
            if step.kind == "file":
                if not tables:  # --table selects database tables only
                    result.files.append(_check_file_step(plan, step, source, target, stop))
                continue
            names = select_tables(step, source.list_tables(), plan)
            if tables:
                names = [n for n in names if any(fnmatch.fnmatchcase(n, t) for t in tables)]
                matched.update(t for t in tables if any(fnmatch.fnmatchcase(n, t) for n in names))
            for name in names:
                job = build_job(plan, step, source.read_schema(name), source, target, 0)
                progress.table_started(step.name, name, None, 0)
                try:
                    check = check_job(
                        step,
                        job,
                        source,
                        target,
                        hash_mode=hash_mode,
                        stop=stop,
                        on_chunk=lambda n, s=step.name, t=name: progress.advance(s, t, n),
                    )
                except (KeyboardInterrupt, InterruptedRun, PlanError):
                    raise
                except Exception as exc:  # one table's failure: the others are still compared
                    check = failed_check(step, job, exc, plan.secrets)
                if step.incremental and check.status == "differences":
                    check.notes.append(
                        "the source is live (a catch-up step): rows changed after the last"
                        " pass differ until the next pass applies them"
                    )
                result.tables.append(check)
                progress.table_finished(step.name, name, check.source_rows, check.seconds)
        unmatched = [t for t in tables if t not in matched]
        if unmatched:
            raise PlanError(
                f"--table {unmatched[0]}: no table of the selected steps matches"
                f" ({', '.join(steps) or 'all steps'})"
            )
    except (KeyboardInterrupt, InterruptedRun):
        stop.set()
        result.status = "interrupted"
        result.message = "interrupted: run the command again to validate"
    finally:
        endpoints.close()
        result.seconds = time.monotonic() - started
    if result.status != "interrupted":
        result.status = overall([*result.tables, *result.files])
        result.message = summary(result.tables, result.files)
    return result


def _check_file_step(
    plan: Plan, step: Step, source: Any, target: Any, stop: threading.Event
) -> Any:
    """One file step's lists, sizes and content hashes (reads both sides, writes nothing;
    the manifest, when a state file exists, only tells the part sizes used)."""
    from migrate.state import State
    from validators.files import FileCheck, check_files

    manifest: dict[str, Any] = {}
    if plan.state_path.exists():
        state = State(plan.state_path, plan.name, readonly=True)
        try:
            manifest = state.manifest(step.name)
        finally:
            state.close()
    try:
        return check_files(step, source, target, manifest, checksum=True, stop=stop)
    except (KeyboardInterrupt, InterruptedRun, PlanError):
        raise
    except Exception as exc:  # one step's failure: the others are still compared
        text = str(exc) if isinstance(exc, MigrateError) else f"{type(exc).__name__}: {exc}"
        return FileCheck(
            step=step.name,
            source=step.source,
            target=step.target,
            status="error",
            error=redact(text, plan.secrets),
        )


def overall(checks: list[Any]) -> str:
    statuses = {c.status for c in checks}
    if "failed" in statuses or "error" in statuses:
        return "failed"
    if "differences" in statuses:
        return "differences"
    return "equal"


def summary(checks: list[TableCheck], files: list[Any] = ()) -> str:  # type: ignore[assignment]
    differing = [c for c in checks if c.status == "differences"]
    failed = [c for c in checks if c.status == "failed"]
    f_differing = [c for c in files if c.status == "differences"]
    f_failed = [c for c in files if c.status == "error"]
    if failed:
        return f"{len(failed)} table(s) could not be compared: {failed[0].error}"
    if f_failed:
        return f"{len(f_failed)} file step(s) could not be compared: {f_failed[0].error}"
    parts = []
    if differing:
        rows = sum(c.differing_rows for c in differing)
        parts.append(
            f"{len(differing)} of {len(checks)} table(s) differ"
            + (f" ({rows:,} row(s))" if rows else "")
        )
    if f_differing:
        n = sum(len(c.missing) + len(c.extra) + len(c.different) for c in f_differing)
        parts.append(f"{len(f_differing)} of {len(files)} file step(s) differ ({n:,} file(s))")
    if parts:
        return "; ".join(parts)
    if files and checks:
        return f"all {len(checks)} table(s) and {len(files)} file step(s) equal"
    if files:
        return f"all {len(files)} file step(s) equal"
    return f"all {len(checks)} table(s) equal"


# -- presenting ---------------------------------------------------------------------------
def show_value(value: Any, masked: bool = False) -> Any:
    """A value as the report shows it (JSON-ready); ``masked`` hides it."""
    if value is None:
        return None
    if masked:
        return MASK
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        cut = "…" if len(data) > SHOW_BYTES else ""
        return "0x" + data[:SHOW_BYTES].hex() + cut
    return str(value)


def diff_to_json(diff: RowDiff, masked: bool) -> dict[str, Any]:
    return {
        "kind": diff.kind,
        "key": [show_value(v) for v in diff.key],
        "columns": [
            {"column": name, "source": show_value(a, masked), "target": show_value(b, masked)}
            for name, a, b in diff.columns
        ],
    }


def check_to_json(check: TableCheck, masked: bool = False) -> dict[str, Any]:
    """One table's validation as JSON (what the state store, --json and the HTML hold)."""
    return {
        "step": check.step,
        "table": check.table,
        "target_table": check.target_table,
        "key": list(check.key),
        "status": check.status,
        "method": check.method,
        "source_rows": check.source_rows,
        "target_rows": check.target_rows,
        "chunks": check.chunks,
        "chunks_differing": check.chunks_differing,
        "missing": check.missing,
        "extra": check.extra,
        "changed": check.changed,
        "hash_only": check.hash_only,
        "ruled_ranges": check.ruled_ranges,
        "locatable": check.locatable,
        "seconds": round(check.seconds, 3),
        "rules": check.rules,
        "rules_used": check.rules_used,
        "notes": check.notes,
        "error": check.error,
        "diffs": [diff_to_json(d, masked) for d in check.diffs],
        "values_masked": masked,
    }


def result_to_json(result: ValidationResult, masked: bool = False) -> dict[str, Any]:
    return {
        "plan": result.plan,
        "check_id": result.check_id,
        "status": result.status,
        "exit_code": result.exit_code,
        "message": result.message,
        "seconds": round(result.seconds, 3),
        "html": result.html,
        "tables": [check_to_json(c, masked) for c in result.tables],
        "files": [_file_json(c, masked) for c in result.files],
    }


def _file_json(check: Any, masked: bool) -> dict[str, Any]:
    from validators.files import file_check_to_json

    return file_check_to_json(check, masked)


def record(state: Any, checks: list[TableCheck], run_id: int | None, masked: bool) -> int:
    """Store the checks under a new check id; returns it."""
    check_id = int(state.next_check_id())
    for c in checks:
        state.record_validation(check_id, run_id, check_to_json(c, masked))
    return check_id


def default_html_path(plan: Plan) -> Path:
    """Where the HTML report goes unless ``--html`` says: beside the state file."""
    return plan.state_path.with_name(plan.state_path.stem + ".validation.html")
