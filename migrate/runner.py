"""Execute a plan: waves of steps; for a database step, schema, chunked copy, indexes,
foreign keys and counts.

Contracts:
- Before a run changes a target it records how to undo the change (``undo`` in the state).
- A table whose copy finished in an earlier run is not copied again (``--restart`` copies
  the step's tables afresh, replacing the tables the tool itself created).
- A step that fails, or whose validation finds differences, stops the run before the
  next batch (``continue_on_error`` runs the later batches anyway); steps of its batch
  that do not depend on it still run. ``batches`` limits a run to those batches.
- Counts are compared per chunk and per table; any difference makes the run's outcome
  ``differences`` (exit 3).
"""

from __future__ import annotations

import fnmatch
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from migrate.backup import TableBackup
from migrate.copier import NO_KEY_NOTE, Progress, TableJob, chunk_counts, copy_table
from migrate.endpoints import TableEndpoint, fit_name, key_order_agrees, target_names
from migrate.errors import (
    EXIT_DIFFERENCES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PLAN,
    ConnectorError,
    InterruptedRun,
    MigrateError,
    PlanError,
)
from migrate.filecopy import FileCopier, FileStepResult
from migrate.incremental import (
    CursorSpec,
    PassResult,
    binlog_pass,
    cursor_notes,
    cursor_spec,
    earlier_position,
    show,
    watermark_pass,
)
from migrate.plan import Plan, Step, redact
from migrate.planner import Wave, foreign_key_order, waves
from migrate.registry import endpoint_class
from migrate.schema import TEXT_KINDS, TableSchema
from migrate.state import State, decode_key, encode_key, now
from validators.counts import RangeCount, table_counts


@dataclass
class TableResult:
    name: str
    target_name: str
    status: str  # done | skipped (done by an earlier run) | failed | differences
    key: tuple[str, ...]
    source_rows: int | None = None
    target_rows: int | None = None
    chunks: list[RangeCount] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    mode: str = "full"
    #: the source stays online (incremental modes before cut-over): table counts are
    #: shown but not compared, as rows keep changing between the two counts
    live: bool = False
    catch_up: PassResult | None = None
    #: where catch-up stands after this run: the watermark or the binlog position
    position: str | None = None
    #: the checksum validation (``validate = [..., "checksum"]``), as ``check_to_json``
    checksum: dict[str, Any] | None = None

    @property
    def chunk_mismatches(self) -> list[RangeCount]:
        return [c for c in self.chunks if not c.matches]

    @property
    def counts_match(self) -> bool:
        if self.live:
            return not self.chunk_mismatches
        return self.source_rows == self.target_rows and not self.chunk_mismatches


@dataclass
class StepResult:
    name: str
    batch: str
    layer: str
    source: str
    target: str
    status: str  # done | failed | differences | not run | interrupted
    tables: list[TableResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    #: a file step's result (``kind = "file"`` steps have no tables)
    files: FileStepResult | None = None


@dataclass
class RunResult:
    plan: str
    run_id: int | None
    status: str
    steps: list[StepResult] = field(default_factory=list)
    message: str | None = None
    cutover: bool = False

    @property
    def exit_code(self) -> int:
        return {
            "done": EXIT_OK,
            "differences": EXIT_DIFFERENCES,
            "interrupted": EXIT_INTERRUPTED,
            "plan error": EXIT_PLAN,
        }.get(self.status, EXIT_ERROR)


class Endpoints:
    """One endpoint per connection for the whole run, opened on first use."""

    def __init__(self, plan: Plan, workers: int, dry_run: bool) -> None:
        self.plan, self.workers, self.dry_run = plan, workers, dry_run
        self._open: dict[str, Any] = {}

    def get(self, name: str) -> TableEndpoint:
        if name not in self._open:
            conn = self.plan.connections[name]
            cls = endpoint_class(conn.url)
            try:
                self._open[name] = cls(
                    name,
                    conn.url,
                    conn.options,
                    base_dir=self.plan.base_dir,
                    workers=self.workers,
                    secrets=self.plan.secrets,
                    dry_run=self.dry_run,
                )
            except PlanError as exc:  # a connector's own check of its URL or options
                if exc.path is not None:
                    raise
                raise PlanError(
                    redact(str(exc), self.plan.secrets), path=str(self.plan.path)
                ) from None
        return self._open[name]  # type: ignore[no-any-return]

    def close(self) -> None:
        for ep in self._open.values():
            ep.close()


SNAPSHOT_NOTE = (
    "the full copy reads one consistent snapshot of the source (AS OF SCN); the SCN is"
    " recorded in the state, and a resumed copy reads the same one"
)
TEXT_KEY_NOTE = (
    "the key has text columns the two engines may sort differently: each chunk's target"
    " count is the rows its load wrote; the table count is counted on both sides"
)


def build_job(
    plan: Plan,
    step: Step,
    schema: TableSchema,
    source: TableEndpoint,
    target: TableEndpoint,
    run_id: int,
) -> TableJob:
    """How one source table will be copied: target name and schema, key, chunk size, notes.

    The runner and the dry run both use this, so the dry run shows exactly what a run does.
    """
    override = step.overrides.get(schema.name)
    tname = override.rename if override and override.rename else schema.name
    tname, why = fit_name(target, tname)
    key = override.key if override and override.key else schema.chunk_key()
    missing = [k for k in key if k not in schema.column_names]
    if missing:
        raise PlanError(
            f"column {missing[0]!r} is not in table {schema.name!r}",
            path=str(plan.path),
            key=f"steps.{step.name}.overrides.{schema.name}.key",
        )
    tschema = target.target_schema(schema, source.capabilities, tname)
    notes = [f"table {why}"] if why else []
    if not why and source.capabilities.engine != target.capabilities.engine:
        care = getattr(target, "identifier_note", lambda _n: None)(tname)
        if care:
            notes.append(f"table {care}")
    notes += [
        f"{s.name}: {n}"
        for s, c in zip(schema.columns, tschema.columns, strict=True)
        for n in c.notes
    ]
    if not key:
        notes.append(NO_KEY_NOTE)
    same_order = key_order_agrees(schema, key, source.capabilities, target.capabilities)
    if not same_order:
        notes.append(TEXT_KEY_NOTE)
    if source.capabilities.snapshot_reads == "scn" and step.mode != "incremental":
        notes.append(SNAPSHOT_NOTE)
    if target.capabilities.empty_string_is_null and any(
        c.type.kind in TEXT_KINDS for c in schema.columns
    ):
        notes.append(
            f"{target.capabilities.engine} stores '' as NULL: empty strings arrive as NULL"
            " (validation compares them with the empty_is_null rule)"
        )
    spec = None
    if step.mode in ("incremental", "full+incremental"):
        spec = cursor_spec(plan, step, schema)
        notes.extend(cursor_notes(spec, schema.name))
    if step.incremental and not key:
        raise PlanError(
            f"table {schema.name!r} has no primary or NOT NULL unique key: mode"
            f' "{step.mode}" upserts by key (set overrides.{schema.name}.key, or copy'
            ' it in a step with mode = "full")',
            path=str(plan.path),
            key=f"steps.{step.name}.mode",
        )
    return TableJob(
        step=step.name,
        run_id=run_id,
        source_schema=schema,
        target_schema=tschema,
        key=key,
        chunk_rows=override.chunk_rows if override and override.chunk_rows else step.chunk_rows,
        # a live source changes between reading a range and counting it again
        count_chunks="count" in step.validate and not step.incremental,
        range_count_on_target=same_order,
        notes=notes,
        cursor=spec,
    )


def check_cdc(plan: Plan, step: Step, source: TableEndpoint) -> None:
    """A cdc step needs a source with a binary log it can read; say what to change."""
    if source.capabilities.cdc != "binlog" or not hasattr(source, "read_changes"):
        raise PlanError(
            f'mode = "cdc" reads a MySQL or MariaDB binary log; connection'
            f" {step.source!r} is {source.capabilities.engine}: use mode ="
            ' "full+incremental" with a cursor instead',
            path=str(plan.path),
            key=f"steps.{step.name}.mode",
        )
    source.cdc_check()  # type: ignore[attr-defined]


def select_tables(step: Step, available: list[str], plan: Plan) -> list[str]:
    """The source tables a step copies: ``tables`` globs minus ``exclude_tables``."""
    chosen: list[str] = []
    for pattern in step.tables:
        if any(ch in pattern for ch in "*?["):
            matched = [t for t in available if fnmatch.fnmatchcase(t, pattern)]
        else:
            if pattern not in available:
                raise PlanError(
                    f"table {pattern!r} is not in connection {step.source!r}",
                    path=str(plan.path),
                    key=f"steps.{step.name}.tables",
                )
            matched = [pattern]
        chosen.extend(t for t in matched if t not in chosen)
    return [t for t in chosen if not any(fnmatch.fnmatchcase(t, p) for p in step.exclude_tables)]


class Runner:
    def __init__(
        self,
        plan: Plan,
        state: State,
        progress: Progress,
        *,
        restart: bool = False,
        only_steps: tuple[str, ...] = (),
        cutover: bool = False,
        redact: bool = False,
        batches: tuple[str, ...] = (),
        continue_on_error: bool = False,
        pilot: int | None = None,
    ) -> None:
        self.plan, self.state, self.progress = plan, state, progress
        self.restart = restart
        self.batches = batches
        self.continue_on_error = continue_on_error
        #: a pilot run (``migrate check --pilot N``): N rows per table, N files per file
        #: step, a full copy only (no catch-up, no foreign keys), checked by checksums of
        #: the copied key range; ``migrate.pilot`` rolls it back afterwards
        self.pilot = pilot
        self.redact = redact
        self.check_id: int | None = None
        self.cutover = cutover
        self.only_steps = only_steps
        self.stop = threading.Event()
        self._stream_lock = threading.Lock()
        workers = max((s.workers for s in plan.steps), default=4)
        self.endpoints = Endpoints(plan, workers, dry_run=False)

    def run(self, command: str) -> RunResult:
        run_id = self.state.start_run(command)
        result = RunResult(self.plan.name, run_id, "done", cutover=self.cutover)
        # Chunks are staged beside the state; a killed run's leftovers go at the next start
        # (this run holds the lock, so nobody else uses the folder).
        workdir = self.plan.state_path.with_name(self.plan.state_path.stem + ".spool")
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        #: the batch whose failure or differences stop the later batches, and why
        stopped: tuple[str, str] | None = None
        try:
            for wave in waves(self.plan):
                for step in wave.steps:
                    if self.only_steps and step.name not in self.only_steps:
                        continue
                    if self.batches and step.batch not in self.batches:
                        continue
                    if stopped is not None and step.batch != stopped[0]:
                        result.steps.append(
                            self._not_run(
                                step,
                                wave,
                                f"batch {stopped[0]} {stopped[1]} (--continue-on-error runs"
                                " the later batches anyway)",
                            )
                        )
                        continue
                    failed_deps = [
                        d
                        for d in step.after
                        if any(
                            s.name == d and s.status in ("failed", "not run") for s in result.steps
                        )
                    ]
                    if failed_deps:
                        result.steps.append(
                            self._not_run(
                                step,
                                wave,
                                f"it runs after {', '.join(failed_deps)}, which did not finish",
                            )
                        )
                        continue
                    sr = self._run_step(step, run_id, workdir)
                    result.steps.append(sr)
                    if stopped is None and not self.continue_on_error:
                        if sr.status == "failed":
                            stopped = (step.batch, "failed")
                        elif sr.status == "differences":
                            stopped = (step.batch, "failed validation")
        except (KeyboardInterrupt, InterruptedRun):
            self.stop.set()
            result.status = "interrupted"
            result.message = "interrupted: what was copied is kept; run again to finish"
        except PlanError as exc:  # found only now (a table the source lacks): fix the plan
            result.status = "plan error"
            result.message = redact(str(exc), self.plan.secrets)
        finally:
            self.endpoints.close()
            shutil.rmtree(workdir, ignore_errors=True)
        if result.status not in ("interrupted", "plan error"):
            statuses = {s.status for s in result.steps}
            skipped = [s for s in result.steps if s.status == "not run"]
            if "failed" in statuses or ("not run" in statuses and "differences" not in statuses):
                result.status = "failed"
                result.message = next((s.error for s in result.steps if s.error), None)
            elif "interrupted" in statuses:
                result.status = "interrupted"
            elif "differences" in statuses:
                result.status = "differences"
                checks = [
                    t.checksum
                    for s in result.steps
                    for t in s.tables
                    if t.checksum and t.checksum["status"] != "equal"
                ]
                counts = any(not t.counts_match for s in result.steps for t in s.tables)
                files = any(
                    s.files is not None and s.files.status == "differences" for s in result.steps
                )
                result.message = (
                    "row counts differ between source and target"
                    if counts or not (checks or files)
                    else "checksum validation found differing rows"
                    if checks
                    else "file validation found missing, extra or different files"
                )
                if skipped:
                    later = sorted({s.batch for s in skipped}, key=self.plan.batches.index)
                    result.message += (
                        f"; later batches not run: {', '.join(later)}"
                        " (--continue-on-error runs them anyway)"
                    )
        self.state.finish_run(run_id, result.status, result.message)
        return result

    def _not_run(self, step: Step, wave: Wave, why: str) -> StepResult:
        return StepResult(
            step.name,
            wave.batch,
            wave.layer,
            step.source,
            step.target,
            "not run",
            error=f"not run: {why}",
        )

    def _run_step(self, step: Step, run_id: int, workdir: Path) -> StepResult:
        sr = StepResult(step.name, step.batch, step.layer, step.source, step.target, "done")
        started = time.monotonic()
        try:
            if step.kind == "file":
                self._copy_file_step(step, run_id, sr)
            else:
                self._copy_database_step(step, run_id, workdir, sr)
        except (KeyboardInterrupt, InterruptedRun):
            sr.status = "interrupted"
            raise
        except PlanError:
            raise
        except MigrateError as exc:
            sr.status = "failed"
            sr.error = redact(str(exc), self.plan.secrets)
            self.progress.message(f"step {step.name} failed: {sr.error}")
        finally:
            sr.seconds = time.monotonic() - started
        if sr.status == "done" and any(t.status == "differences" for t in sr.tables):
            sr.status = "differences"
        if sr.status == "done" and sr.files is not None and sr.files.status == "differences":
            sr.status = "differences"
        return sr

    # -- file steps ----------------------------------------------------------------------
    def _copy_file_step(self, step: Step, run_id: int, sr: StepResult) -> None:
        source = self.endpoints.get(step.source)
        target = self.endpoints.get(step.target)
        source.describe(), target.describe()  # connect both before any work: fail fast
        copier = FileCopier(step, source, target, self.state, run_id, self.progress, self.stop)
        copier.limit = self.pilot
        sr.files = res = copier.result  # what was done so far, also when the step fails
        copier.run(restart=self.restart)
        for note in getattr(source, "notes", []) + getattr(target, "notes", []):
            res.notes.append(note)
        if res.status == "failed":
            sr.status = "failed"
            path, why = (res.refused or res.failed)[0]
            if not path:  # the step itself (the empty-source guard)
                sr.error = redact(why, self.plan.secrets)
                return
            what = "refused" if res.refused else "could not be copied"
            count = len(res.refused) + len(res.failed)
            shown = why if why.startswith(path) else f"{path}: {why}"
            sr.error = redact(f"{count} file(s) {what}; first: {shown}", self.plan.secrets)
            return
        if res.status == "skipped" or not ({"count", "checksum"} & set(step.validate)):
            return
        if step.incremental and not self.cutover:
            res.notes.append(
                "the source is live: files are compared in the cut-over run (migrate run"
                " --cutover) or by migrate validate"
            )
            return
        from validators.files import check_files, file_check_to_json

        check = check_files(
            step,
            source,
            target,
            self.state.manifest(step.name),
            checksum="checksum" in step.validate,
            stop=self.stop,
        )
        res.check = file_check_to_json(check)
        if check.status == "differences":
            res.status = "differences"
            # not done: the next run copies again what is missing or different
            self.state.set_file_step(step.name, status="differences")
        elif check.status == "error":
            sr.status = "failed"
            sr.error = redact(f"file validation failed: {check.error}", self.plan.secrets)

    # -- database steps ------------------------------------------------------------------
    def _copy_database_step(self, step: Step, run_id: int, workdir: Path, sr: StepResult) -> None:
        source = self.endpoints.get(step.source)
        target = self.endpoints.get(step.target)
        source.describe(), target.describe()  # connect both before any work: fail fast
        if step.mode == "cdc":
            check_cdc(self.plan, step, source)
        names = select_tables(step, source.list_tables(), self.plan)
        if self.restart:
            for name in names:
                self.state.reset_table(step.name, name)
            if step.mode == "cdc":
                self.state.drop_stream(step.name)
        schemas, cycles = foreign_key_order([source.read_schema(n) for n in names])
        for cyc in cycles:
            sr.notes.append(f"foreign-key cycle among {cyc}: loaded in name order")
        jobs = [build_job(self.plan, step, schema, source, target, run_id) for schema in schemas]
        if self.pilot is not None:
            jobs = [
                # a keyless table's "range" is the whole table: its pilot rows are counted
                # as read and written
                replace(j, chunk_rows=self.pilot, max_chunks=1, count_chunks=bool(j.key))
                for j in jobs
            ]
        results = {
            j.source_schema.name: TableResult(
                j.source_schema.name,
                j.target_schema.name,
                "done",
                j.key,
                notes=j.notes,
                mode=step.mode,
                live=step.incremental and not self.cutover,
            )
            for j in jobs
        }
        sr.tables = list(results.values())

        if step.mode == "incremental":  # the target was loaded some other way: no copy
            for job in jobs:
                self._prepare_incremental(step, job, target)
        caught_up = {
            j.source_schema.name
            for j in jobs
            if (row := self.state.table(step.name, j.source_schema.name)) is not None
            and row["status"] in ("done", "differences")
        }
        pending = [j for j in jobs if self._prepare(step, j, source, target, results)]
        self._copy_all(step, pending, source, target, workdir, results)
        for job in jobs:  # indexes and sequences once the data is in
            row = self.state.table(step.name, job.source_schema.name)
            if row and row["status"] == "copied":
                existing = set(target.existing_indexes(job.target_schema.name))
                todo = [ix for ix in job.target_schema.indexes if ix.name not in existing]
                schema = job.target_schema
                if todo:
                    target.create_indexes(_with_indexes(schema, todo))
                target.finish_table(schema)
                self.state.upsert_table(step.name, job.source_schema.name, status="indexed")
        if self.pilot is not None:
            self._pilot_checks(step, jobs, source, target, results)
            return
        # Catch-up passes apply each table's changes on their own, in any order: a
        # step that catches up gets its foreign keys in the cut-over run, after the last pass.
        link_now = not step.incremental
        for job in jobs:
            row = self.state.table(step.name, job.source_schema.name)
            if row and row["status"] == "indexed":
                if link_now:
                    self._link(step, job, jobs, target, results)
                elif job.target_schema.foreign_keys:
                    results[job.source_schema.name].notes.append(
                        "foreign keys are created by the cut-over run (migrate run --cutover)"
                    )
                self.state.upsert_table(step.name, job.source_schema.name, status="linked")
        if self.cutover:  # the last pass covers tables copied by this very run too
            caught_up = {
                j.source_schema.name
                for j in jobs
                if (row := self.state.table(step.name, j.source_schema.name)) is not None
                and row["status"] in ("done", "differences", "linked")
            }
        if step.mode == "cdc":
            if caught_up and len(caught_up) == len(jobs):
                self._binlog_pass(step, jobs, source, target, run_id, workdir, results)
            elif caught_up:
                sr.notes.append("the binary log is applied once every table's full copy is done")
        elif step.incremental:
            self._watermark_passes(
                step,
                [j for j in jobs if j.source_schema.name in caught_up],
                source,
                target,
                run_id,
                workdir,
                results,
            )
        if self.cutover and step.mode in ("full+incremental", "cdc"):
            for job in jobs:  # the target is about to take over: keys and counters
                if results[job.source_schema.name].status != "failed":
                    self._link(step, job, jobs, target, results)
                    target.finish_table(job.target_schema)
        for job in jobs:
            self._count(step, job, source, target, results[job.source_schema.name])
            self._record_position(step, job, results[job.source_schema.name])
        if "checksum" in step.validate:
            self._checksums(step, jobs, source, target, results)

    def _pilot_checks(
        self,
        step: Step,
        jobs: list[TableJob],
        source: TableEndpoint,
        target: TableEndpoint,
        results: dict[str, TableResult],
    ) -> None:
        """A pilot's validation: the chunk counts, and one checksum of the copied key
        range computed inside each database (a keyless table: the whole target table
        against the pilot's rows is not comparable, so its chunk count alone)."""
        from validators.checksum import compare_specs

        for job in jobs:
            name = job.source_schema.name
            res = results[name]
            row = self.state.table(step.name, name)
            if res.status == "failed" or row is None:
                continue
            res.chunks = chunk_counts(self.state, step.name, name)
            res.seconds = row["seconds"] or 0.0
            res.source_rows = sum(c.source_rows or 0 for c in res.chunks)
            res.target_rows = sum(c.target_rows or 0 for c in res.chunks)
            res.live = True  # the table counts are the pilot range's, not the tables'
            if res.chunk_mismatches:
                res.status = "differences"
                continue
            if not job.key or not res.chunks or not res.chunks[-1].hi:
                continue
            names = dict(zip(job.key, target_names(target, job.key), strict=True))
            names.update(
                zip(
                    job.source_schema.column_names,
                    target_names(target, tuple(job.source_schema.column_names)),
                    strict=True,
                )
            )
            s_specs, t_specs, _ = compare_specs(
                job.source_schema, job.target_schema, step.table_rules(name), names
            )
            hi = res.chunks[-1].hi
            try:
                s_sum = source.checksum(name, job.key, None, hi, source.checksum_sql(s_specs))
                t_sum = target.checksum(
                    job.target_schema.name,
                    target_names(target, job.key),
                    None,
                    hi,
                    target.checksum_sql(t_specs),
                )
            except MigrateError as exc:
                res.notes.append(f"pilot checksum not computed: {exc}")
                continue
            if s_sum == t_sum:
                res.notes.append(f"pilot rows compared by checksum: {s_sum[0]:,} equal")
            else:
                res.status = "differences"
                res.notes.append(
                    "pilot checksum differs: run migrate validate on the pilot tables"
                    " (migrate check --pilot N --pilot-prefix P keeps them apart)"
                )

    def _checksums(
        self,
        step: Step,
        jobs: list[TableJob],
        source: TableEndpoint,
        target: TableEndpoint,
        results: dict[str, TableResult],
    ) -> None:
        """Checksum validation of each table copied or caught up in this run.

        A live source (a catch-up step before ``--cutover``) is not validated: its rows
        change between the two reads; a table an earlier run copied and validated shows
        that validation.
        """
        from migrate.validate import check_job, check_to_json, failed_check

        for job in jobs:
            name = job.source_schema.name
            res = results[name]
            if res.status == "failed":
                continue
            if res.live:
                res.notes.append(
                    "checksums are compared by the cut-over run (migrate run --cutover)"
                    " or by migrate validate"
                )
                continue
            if res.status == "skipped":
                row = self.state.last_validation(step.name, name)
                if row is not None:
                    res.checksum = _stored_check(row, self.redact)
                    if row["status"] != "equal":
                        res.status = "differences"
                    continue
            self.progress.message(f"{step.name}: validating {name} (checksums)")
            try:
                check = check_job(step, job, source, target, stop=self.stop)
            except (KeyboardInterrupt, InterruptedRun):
                raise
            except Exception as exc:  # one table's failure: the others are still compared
                check = failed_check(step, job, exc, self.plan.secrets)
            res.checksum = check_to_json(check, self.redact)
            if self.check_id is None:
                self.check_id = self.state.next_check_id()
            self.state.record_validation(self.check_id, job.run_id, res.checksum)
            if check.status != "equal":
                res.status = "differences"
                if check.status == "failed" and check.error:
                    res.error = check.error

    def _link(
        self,
        step: Step,
        job: TableJob,
        jobs: list[TableJob],
        target: TableEndpoint,
        results: dict[str, TableResult],
    ) -> None:
        """Create the table's foreign keys the target does not have yet."""
        in_step = {j.target_schema.name for j in jobs}
        fks = [
            fk
            for fk in job.target_schema.foreign_keys
            if fk.ref_table in in_step or target.table_exists(fk.ref_table)
        ]
        skipped = len(job.target_schema.foreign_keys) - len(fks)
        if skipped:
            results[job.source_schema.name].notes.append(
                f"{skipped} foreign key(s) refer to tables outside this step and"
                " missing on the target: not created"
            )
        existing_fk = set(target.existing_foreign_keys(job.target_schema.name))
        fks = [
            fk
            for fk in fks
            if fk.name not in existing_fk
            and f"({','.join(fk.columns)})->{fk.ref_table}" not in existing_fk
        ]
        if fks and not getattr(target, "fks_inline", False):
            for fk in fks:  # recorded first: a rollback drops them before restoring rows
                if fk.name:
                    self.state.record_undo(
                        job.run_id,
                        step.name,
                        step.target,
                        "drop_foreign_key",
                        job.target_schema.name,
                        {"name": fk.name, "source_table": job.source_schema.name},
                    )
        if fks:
            target.create_foreign_keys(_with_fks(job.target_schema, fks))

    # -- incremental modes ---------------------------------------------------------------
    def _prepare_incremental(self, step: Step, job: TableJob, target: TableEndpoint) -> None:
        """Adopt a table loaded some other way: check its key, set its first watermark."""
        name, tname = job.source_schema.name, job.target_schema.name
        if not target.table_exists(tname):
            raise ConnectorError(
                f'{step.target}: table {tname} does not exist: mode = "incremental" catches'
                ' up a table loaded some other way; mode = "full+incremental" copies it first'
            )
        actual = target.read_schema(tname)
        tkey = target_names(target, job.key)
        keyed = actual.primary_key == tkey or any(
            ix.unique and set(ix.columns) == set(tkey) for ix in actual.indexes
        )
        if not keyed:
            raise ConnectorError(
                f"{step.target}: table {tname} has no primary key or unique index on"
                f" ({', '.join(tkey)}): upserting by key needs one"
            )
        if self.state.table(step.name, name) is None:
            self.state.upsert_table(
                step.name,
                name,
                target_name=tname,
                status="done",
                key_columns=",".join(job.key),
                run_id=job.run_id,
                started_at=now(),
                note="; ".join(job.notes) or None,
            )
        spec: CursorSpec = job.cursor
        if self.state.watermark(step.name, name) is None:
            start = spec.start
            if start is None:  # what the target already holds
                start = target.max_value(actual, target_names(target, (spec.column,))[0])
            self.state.set_watermark(
                step.name,
                name,
                spec.kind,
                cursor=spec.column,
                value=encode_key((start,)) if start is not None else None,
            )

    def _watermark_passes(
        self,
        step: Step,
        jobs: list[TableJob],
        source: TableEndpoint,
        target: TableEndpoint,
        run_id: int,
        workdir: Path,
        results: dict[str, TableResult],
    ) -> None:
        def one(job: TableJob) -> None:
            name = job.source_schema.name
            self.progress.table_started(step.name, name, None, 0)
            res = watermark_pass(
                step=step,
                source_schema=job.source_schema,
                target_schema=job.target_schema,
                key=job.key,
                spec=job.cursor,
                chunk_rows=job.chunk_rows,
                source=source,
                target=target,
                state=self.state,
                run_id=run_id,
                workdir=workdir,
                stop=self.stop,
                on_rows=lambda n: self.progress.advance(step.name, name, n),
                ordered=job.range_count_on_target,
            )
            results[name].catch_up = res
            self.progress.table_finished(step.name, name, res.rows, res.seconds)

        self._in_parallel(step, jobs, one, results)

    def _binlog_pass(
        self,
        step: Step,
        jobs: list[TableJob],
        source: TableEndpoint,
        target: TableEndpoint,
        run_id: int,
        workdir: Path,
        results: dict[str, TableResult],
    ) -> None:
        res = binlog_pass(
            step=step,
            jobs=jobs,
            source=source,
            target=target,
            state=self.state,
            run_id=run_id,
            workdir=workdir,
            stop=self.stop,
        )
        for name, pr in (res.per_table or {}).items():
            results[name].catch_up = pr
        self.progress.message(
            f"{step.name}: applied {res.events:,} row events in {res.batches:,} batches"
            f" ({res.seconds:.2f}s); binlog now at {res.position}"
        )

    def _record_position(self, step: Step, job: TableJob, result: TableResult) -> None:
        if not step.incremental:
            return
        if step.mode == "cdc":
            stream = self.state.stream(step.name)
            result.position = stream["position"] if stream else None
            return
        row = self.state.watermark(step.name, job.source_schema.name)
        if row is not None and row["value"]:
            result.position = show((decode_key(row["value"]) or (None,))[0])

    def _on_snapshot(self, step: Step, job: TableJob) -> Callable[[str], None]:
        """Record where a cdc table's copy stands in the binlog, before its first row."""
        name = job.source_schema.name

        def record(position: str) -> None:
            row = self.state.watermark(step.name, name)
            if row is None or not row["value"]:  # a resumed copy keeps the earlier one
                self.state.set_watermark(step.name, name, "binlog", value=position)
            with self._stream_lock:  # tables start their copies at once: keep the earliest
                stream = self.state.stream(step.name)
                if (
                    stream is None
                    or not stream["position"]
                    or earlier_position(position, stream["position"])
                ):
                    self.state.set_stream(step.name, "binlog", position=position, as_of=now())

        return record

    def _prepare(
        self,
        step: Step,
        job: TableJob,
        source: TableEndpoint,
        target: TableEndpoint,
        results: dict[str, TableResult],
    ) -> bool:
        """Make the target table ready; False when the table needs no copying."""
        name, tname = job.source_schema.name, job.target_schema.name
        row = self.state.table(step.name, name)
        if row is not None and row["status"] not in ("pending", "copying", "failed"):
            if row["status"] == "done":
                results[name].status = "skipped"
            return False
        if (
            row is not None
            and row["status"] in ("copying", "failed")
            and target.table_exists(tname)
        ):
            self.state.upsert_table(step.name, name, status="copying", error=None)
            return True  # resume
        if target.table_exists(tname):
            ours = self.state.created_by_us(step.name, step.target, tname)
            # a table the plan did not create keeps its rows (and schema) for rollback;
            # so does one an earlier run created (--restart, a copy reset by a rollback):
            # the undo of that run's changes needs it back as this run found it
            keep = TableBackup(self.state, job.run_id, step.name, step.target, target, tname, name)
            if ours and not keep.needed:  # this very run created it: its drop undoes all
                target.drop_table(tname)
            elif ours or step.if_exists == "replace":
                keep.replace()
            elif step.if_exists == "truncate":
                keep.empty()
            else:
                rows = target.count(tname)
                raise ConnectorError(
                    f"{step.target}: table {tname} already exists ({rows} rows) and was not"
                    f' created by this plan: set if_exists = "truncate" or "replace" on'
                    f" step {step.name}, or drop it"
                )
        if not target.table_exists(tname):
            self.state.record_undo(
                job.run_id, step.name, step.target, "drop_table", tname, {"source_table": name}
            )
            target.create_table(_with_indexes(job.target_schema, []))
        self.state.reset_table(step.name, name)
        self.state.upsert_table(
            step.name,
            name,
            target_name=tname,
            status="copying",
            key_columns=",".join(job.key),
            run_id=job.run_id,
            started_at=now(),
            est_rows=source.count(name),
            note="; ".join(job.notes) or None,
        )
        if job.cursor is not None:  # where the source stands before the first row is read
            as_of = now()
            high = source.max_value(job.source_schema, job.cursor.column)
            self.state.set_watermark(
                step.name,
                name,
                job.cursor.kind,
                cursor=job.cursor.column,
                value=encode_key((high,)) if high is not None else None,
                as_of=as_of,
            )
        return True

    def _copy_all(
        self,
        step: Step,
        jobs: list[TableJob],
        source: TableEndpoint,
        target: TableEndpoint,
        workdir: Path,
        results: dict[str, TableResult],
    ) -> None:
        def one(job: TableJob) -> None:
            started = time.monotonic()
            name = job.source_schema.name
            on_snapshot, at = None, None
            if step.mode == "cdc":
                on_snapshot = self._on_snapshot(step, job)
            elif source.capabilities.snapshot_reads == "scn":
                row = self.state.table(step.name, name)
                at = row["snapshot"] if row is not None and row["snapshot"] else None

                def on_snapshot(scn: str) -> None:  # kept for a resumed copy
                    self.state.upsert_table(step.name, name, snapshot=scn)
                    results[name].notes.append(f"read as of SCN {scn}")

            copy_table(
                job,
                source,
                target,
                self.state,
                workdir,
                self.progress,
                self.stop,
                on_snapshot,
                snapshot_at=at,
            )
            self.state.upsert_table(
                job.step,
                job.source_schema.name,
                status="copied",
                seconds=time.monotonic() - started,
                finished_at=now(),
            )

        self._in_parallel(step, jobs, one, results)

    def _in_parallel(
        self,
        step: Step,
        jobs: list[TableJob],
        work: Callable[[TableJob], None],
        results: dict[str, TableResult],
    ) -> None:
        """Run ``work`` per table on the step's workers; the first failure stops the others
        (they stay resumable) and is raised once all have stopped."""
        first_error: BaseException | None = None
        with ThreadPoolExecutor(step.workers, thread_name_prefix=f"copy-{step.name}") as pool:
            futures = {pool.submit(work, j): j for j in jobs}
            try:
                for fut in as_completed(futures):
                    exc = fut.exception()
                    if exc is None or (isinstance(exc, InterruptedRun) and first_error):
                        continue
                    if isinstance(exc, InterruptedRun):
                        raise exc
                    name = futures[fut].source_schema.name
                    msg = redact(str(exc), self.plan.secrets)
                    results[name].status, results[name].error = "failed", msg
                    row = self.state.table(step.name, name)
                    if row is not None and row["status"] not in ("done", "differences"):
                        self.state.upsert_table(step.name, name, status="failed", error=msg)
                    first_error = first_error or exc
                    self.stop.set()  # the other tables stop at their next batch
            except BaseException:
                self.stop.set()
                raise
        self.stop.clear()
        if first_error is not None:
            raise first_error

    def _count(
        self,
        step: Step,
        job: TableJob,
        source: TableEndpoint,
        target: TableEndpoint,
        result: TableResult,
    ) -> None:
        """Table counts on both sides; a cut-over run counts every table again."""
        row = self.state.table(step.name, job.source_schema.name)
        if row is None or result.status == "failed":
            return
        result.chunks = chunk_counts(self.state, step.name, job.source_schema.name)
        result.seconds = row["seconds"] or 0.0
        caught_up = step.incremental and row["status"] in ("done", "differences")
        if result.catch_up is not None and result.status == "skipped":
            result.status = "done"  # caught up in this run
        if caught_up and not self.cutover:
            return  # the source moved on since the counts of the copy: the pass reports
        if row["status"] == "done" and not self.cutover:
            result.source_rows, result.target_rows = row["source_rows"], row["target_rows"]
            return
        result.source_rows, result.target_rows = table_counts(
            source, job.source_schema.name, target, job.target_schema.name
        )
        if result.status == "skipped":  # counted again at cut-over
            result.status = "done"
        if not result.counts_match:
            result.status = "differences"
        self.state.upsert_table(
            step.name,
            job.source_schema.name,
            source_rows=result.source_rows,
            target_rows=result.target_rows,
            status="done" if result.counts_match else "differences",
        )


def _stored_check(row: Any, masked: bool) -> dict[str, Any]:
    """A validation as the state stores it, in the shape ``check_to_json`` gives;
    ``masked`` hides the values it holds (they may have been stored unmasked)."""
    import json

    from migrate.validate import MASK

    out = dict(zip(row.keys(), tuple(row), strict=True))
    out["table"], out["target_table"] = row["tbl"], row["target_tbl"]
    for k in ("rules", "notes", "diffs"):
        out[k] = json.loads(row[k] or "[]")
    out["rules_used"] = json.loads(row["rules_used"] or "{}")
    out["key"] = []
    out["locatable"] = True
    out["values_masked"] = masked
    out["ruled_ranges"] = out["hash_only"] = 0
    if masked:
        for d in out["diffs"]:
            for c in d["columns"]:
                for side in ("source", "target"):
                    if c[side] is not None:
                        c[side] = MASK
    return out


def _with_indexes(schema: TableSchema, indexes: list[Any]) -> TableSchema:
    return replace(schema, indexes=list(indexes))


def _with_fks(schema: TableSchema, fks: list[Any]) -> TableSchema:
    return replace(schema, foreign_keys=list(fks))
