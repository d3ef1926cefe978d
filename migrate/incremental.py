"""Catch-up passes after the full copy: by watermark (a cursor column) and by binlog (cdc).

Contracts:

- A watermark pass reads the source's highest cursor value *before* it reads any row,
  then reads every row whose cursor is above ``watermark - overlap`` and upserts it by key
  on the target. The new watermark is recorded only after every row is committed, so a
  pass killed anywhere is simply repeated by the next run: upserts are idempotent, so
  nothing is lost and nothing is doubled.
- ``deletes = "detect"`` runs first in a pass (a value of a unique index freed by a
  delete may be taken by a changed row). It compares fingerprints computed inside each
  database: for one integer key, count and key sum per bucket of ~64 keys in one grouped
  scan per side; otherwise key-range counts, narrowed by splitting differing ranges at
  the target's median key. Only differing buckets or small ranges have their keys read.
  A key is deleted from the target only after a point lookup confirms the source lacks
  it; the row is copied to the table's backup table in the same transaction.
- Before a pass changes a table's watermark, the watermark as it was is recorded
  (``restore_watermark``; a binlog pass also records its position, ``restore_stream``).
  Rows an upsert changes or adds and rows a pass deletes are kept in the table's backup
  table in the transaction that changes them (:mod:`migrate.backup`), unless this run
  created or emptied the table.
- A binlog pass applies the row events since the step's recorded position in order,
  batch by batch (each batch ends at a transaction commit), and records the position
  after each batch's writes are committed. Within a batch only each key's last event
  counts (deletes first, then upserts), which leaves the same rows as applying every
  event in turn; applying a batch again leaves the same target, so a crash between a
  batch's writes and its checkpoint is harmless.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from migrate.backup import TableBackup, as_dict
from migrate.copier import _failpoint
from migrate.endpoints import Key, TableEndpoint, target_names
from migrate.errors import ConnectorError, InterruptedRun, PlanError
from migrate.plan import DEFAULT_TIME_OVERLAP, Plan, Step
from migrate.schema import INT_KINDS, TableSchema
from migrate.state import State, decode_key, encode_key, now

TIME_KINDS = frozenset({"date", "datetime", "timestamptz"})
NUMBER_KINDS = INT_KINDS | {"decimal"}
DEFAULT_OVERLAP_SECONDS = 300.0
#: an always-growing key is handed out at insert but seen at commit, and transactions
#: commit out of order: a pass re-reads this many keys behind the watermark by default
DEFAULT_OVERLAP_KEYS = 1000
BATCH_ROWS = 5000
#: ranges with at most this many target keys are diffed key by key
LEAF_KEYS = 2000


@dataclass(frozen=True)
class CursorSpec:
    """How one table is caught up: its cursor column and how far back a pass re-reads."""

    column: str
    kind: str  # "time" (a date/time column) or "key" (a number that only grows)
    overlap_seconds: float = 0.0
    overlap_keys: int = 0
    overlap_text: str = ""
    start: Any = None
    indexed: bool = True

    def lower_bound(self, watermark: Any) -> Any:
        """Where a pass starts reading: the watermark minus the overlap window."""
        if watermark is None:
            return None
        if self.kind == "key":
            if isinstance(watermark, Decimal):
                return watermark - Decimal(self.overlap_keys)
            return watermark - self.overlap_keys
        if isinstance(watermark, dt.datetime):
            return watermark - dt.timedelta(seconds=self.overlap_seconds)
        # a DATE cursor: rows changed later on the watermark's own day must be read again
        days = max(1, math.ceil(self.overlap_seconds / 86400))
        return watermark - dt.timedelta(days=days)


@dataclass
class PassResult:
    """What one catch-up pass did to one table."""

    rows: int = 0  # rows read from the source and upserted
    changed: int = 0  # of those, rows new to the target or different there
    deleted: int = 0
    watermark: str | None = None
    since: str | None = None
    seconds: float = 0.0


def cursor_spec(plan: Plan, step: Step, schema: TableSchema) -> CursorSpec:
    """Resolve a table's cursor from the step and its override; plan errors name the key."""
    override = step.overrides.get(schema.name)
    column = override.cursor if override and override.cursor else step.cursor
    key = (
        f"steps.{step.name}.overrides.{schema.name}.cursor"
        if override and override.cursor
        else f"steps.{step.name}.cursor"
    )
    if column is None:
        raise PlanError(
            f"table {schema.name!r} has no cursor: set cursor on the step or in"
            f" [steps.overrides.{schema.name}]",
            path=str(plan.path),
            key=f"steps.{step.name}",
        )
    if column not in schema.column_names:
        raise PlanError(
            f"cursor column {column!r} is not in table {schema.name!r}",
            path=str(plan.path),
            key=key,
        )
    kind = schema.column(column).type.kind
    if kind in TIME_KINDS:
        ckind = "time"
    elif kind in NUMBER_KINDS:
        ckind = "key"
    else:
        raise PlanError(
            f"cursor column {column!r} of table {schema.name!r} is {kind}: a cursor must"
            " be a date/time that every change updates, or a number that only grows",
            path=str(plan.path),
            key=key,
        )
    overlap = (override.overlap if override else None) or step.overlap
    okey = (
        f"steps.{step.name}.overrides.{schema.name}.overlap"
        if override and override.overlap
        else f"steps.{step.name}.overlap"
    )
    seconds, keys, text = 0.0, 0, ""
    if ckind == "time":
        if overlap is not None and overlap.seconds is None:
            raise PlanError(
                f"cursor {column!r} of table {schema.name!r} is a date/time: its overlap"
                f' is a duration such as "5m", not {overlap.text}',
                path=str(plan.path),
                key=okey,
            )
        seconds = overlap.seconds if overlap and overlap.seconds is not None else 300.0
        text = overlap.text if overlap else DEFAULT_TIME_OVERLAP
    else:
        if overlap is not None and overlap.keys is None:
            raise PlanError(
                f"cursor {column!r} of table {schema.name!r} is a number: its overlap is"
                f" a number of keys, not {overlap.text!r}",
                path=str(plan.path),
                key=okey,
            )
        keys = overlap.keys if overlap and overlap.keys is not None else DEFAULT_OVERLAP_KEYS
        text = str(keys)
    raw_start = override.start if override and override.start is not None else step.start
    start: Any = None
    if raw_start is not None:
        start = _parse_start(plan, step, schema, column, ckind, kind, raw_start)
    indexed = (bool(schema.primary_key) and schema.primary_key[0] == column) or any(
        ix.columns and ix.columns[0] == column for ix in schema.indexes
    )
    return CursorSpec(column, ckind, seconds, keys, text, start, indexed)


def _parse_start(
    plan: Plan, step: Step, schema: TableSchema, column: str, ckind: str, kind: str, raw: Any
) -> Any:
    key = f"steps.{step.name}.start"
    if ckind == "key":
        if isinstance(raw, int):
            return Decimal(raw) if kind == "decimal" else raw
        raise PlanError(
            f"cursor {column!r} of table {schema.name!r} is a number: start must be a"
            f" number, not {raw!r}",
            path=str(plan.path),
            key=key,
        )
    if not isinstance(raw, str):
        raise PlanError(
            f"cursor {column!r} of table {schema.name!r} is a date/time: start must be an"
            f" ISO date-time, not {raw!r}",
            path=str(plan.path),
            key=key,
        )
    value = dt.datetime.fromisoformat(raw)
    if kind == "date":
        return value.date()
    if kind == "timestamptz" and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    if kind == "datetime" and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def cursor_notes(spec: CursorSpec, table: str) -> list[str]:
    notes = []
    if not spec.indexed:
        notes.append(
            f"cursor {spec.column} has no index on the source: every catch-up pass reads"
            f" the whole table (CREATE INDEX ... ON {table} ({spec.column}) avoids it)"
        )
    return notes


def max_of(value_a: Any, value_b: Any) -> Any:
    if value_a is None:
        return value_b
    if value_b is None:
        return value_a
    return max(value_a, value_b)


def show(value: Any) -> str | None:
    """A watermark as people read it."""
    if value is None:
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return str(value)


# -- one watermark pass ------------------------------------------------------------------
def watermark_pass(
    *,
    step: Step,
    source_schema: TableSchema,
    target_schema: TableSchema,
    key: tuple[str, ...],
    spec: CursorSpec,
    chunk_rows: int,
    source: TableEndpoint,
    target: TableEndpoint,
    state: State,
    run_id: int,
    workdir: Path,
    stop: threading.Event,
    on_rows: Callable[[int], None] = lambda n: None,
    ordered: bool = True,
) -> PassResult:
    """Find deletes (optionally), then copy what changed since the table's watermark.

    ``ordered`` is False when the two engines may sort the key differently (text key
    columns across engines): delete detection then compares whole-table key sets.
    """
    started = time.monotonic()
    sname = source_schema.name
    row = state.watermark(step.name, sname)
    watermark = None
    if (
        row is not None
        and row["value"]
        and (row["kind"], row["cursor"])
        == (
            spec.kind,
            spec.column,
        )
    ):  # a watermark of another cursor (the plan changed) means nothing here: read all
        watermark = (decode_key(row["value"]) or (None,))[0]
    watermark = source.cursor_value(source_schema, spec.column, watermark)
    state.record_undo(
        run_id,
        step.name,
        step.target,
        "restore_watermark",
        target_schema.name,
        {"source_table": sname, "previous": as_dict(row)},
    )
    keep = TableBackup(state, run_id, step.name, step.target, target, target_schema.name, sname)
    as_of = now()
    high = source.max_value(source_schema, spec.column)  # read before any row
    high = source.cursor_value(source_schema, spec.column, high)
    low = spec.lower_bound(watermark)
    result = PassResult(since=show(low))
    if step.deletes == "detect":  # first: a deleted row may hold a unique value a new row reuses
        result.deleted = detect_deletes(
            step=step,
            source_schema=source_schema,
            target_schema=target_schema,
            key=key,
            source=source,
            target=target,
            state=state,
            run_id=run_id,
            stop=stop,
            ordered=ordered,
            keep=keep,
        )
    text = source.reads_text() and target.loads_text()
    conv = None if text else source.row_converter(source_schema)
    spool = target.new_spool(target_schema, workdir)
    try:
        batch_rows = min(BATCH_ROWS, chunk_rows)
        for batch in source.read_changed(source_schema, spec.column, low, batch_rows, text):
            if stop.is_set():
                raise InterruptedRun("stopped")
            spool.add([conv(r) for r in batch] if conv is not None else batch)
            if spool.rows >= chunk_rows:
                result.rows, result.changed = _merge(
                    target, target_schema, key, spool, result, keep
                )
                on_rows(spool.rows)
                spool.discard()
                spool = target.new_spool(target_schema, workdir)
        spool.close()
        if spool.rows:
            result.rows, result.changed = _merge(target, target_schema, key, spool, result, keep)
            on_rows(spool.rows)
    finally:
        spool.discard()
    new_mark = max_of(watermark, high)
    result.watermark = show(new_mark)
    result.seconds = time.monotonic() - started
    state.set_watermark(
        step.name,
        sname,
        spec.kind,
        cursor=spec.column,
        value=encode_key((new_mark,)) if new_mark is not None else None,
        as_of=as_of,
        last_rows=result.rows,
        last_changed=result.changed,
        last_deleted=result.deleted,
        last_seconds=result.seconds,
        last_pass_at=now(),
        add_pass=1,
    )
    return result


_merges = 0


def _merge(
    target: TableEndpoint,
    schema: TableSchema,
    key: tuple[str, ...],
    spool: Any,
    so_far: PassResult,
    keep: TableBackup,
) -> tuple[int, int]:
    """Upsert one spool, keeping the rows it changes in ``keep``'s backup table;
    ``MIGRATE_FAILPOINT=after-merge:N`` kills the process right after the Nth merge of
    the process committed (crash tests)."""
    global _merges
    spool.close()
    tkey = target_names(target, key)
    applied, changed = target.merge_spool(schema, tkey, spool, backup=keep.rows(tkey))
    _merges += 1
    _failpoint("after-merge", _merges)
    return so_far.rows + applied, so_far.changed + changed


# -- deletes -----------------------------------------------------------------------------
def _key_normaliser(endpoint: TableEndpoint, schema: TableSchema, key: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """Raw key values read from ``endpoint`` → portable values comparable across engines."""
    sub = replace(schema, columns=[schema.column(k) for k in key])
    conv = endpoint.row_converter(sub)
    if conv is None:
        return lambda k: tuple(k)
    return lambda k: tuple(conv(tuple(k)))


def detect_deletes(
    *,
    step: Step,
    source_schema: TableSchema,
    target_schema: TableSchema,
    key: tuple[str, ...],
    source: TableEndpoint,
    target: TableEndpoint,
    state: State,
    run_id: int,
    stop: threading.Event,
    keep: TableBackup,
    ordered: bool = True,
) -> int:
    """Delete from the target the rows whose key the source no longer has; returns how many.

    Ranges start from the full copy's chunk boundaries (one open range without them).
    When the engines may sort the key differently (``ordered`` False), a key range is not
    the same set of rows on both sides: the whole table is one range, and if its
    fingerprints differ every key is compared.
    """
    if not key:
        return 0
    sname, tname = source_schema.name, target_schema.name
    tkey = target_names(target, key)
    with_sum = len(key) == 1 and source_schema.column(key[0]).type.kind in INT_KINDS
    t_norm = _key_normaliser(target, target_schema, tkey)
    s_norm = _key_normaliser(source, source_schema, key)
    if with_sum and target_schema.column(tkey[0]).type.kind in INT_KINDS:
        found = _integer_key_diff(sname, tname, key, tkey, source, target, s_norm, t_norm, stop)
        if found is not None:
            return _confirm_and_delete(
                step, source_schema, target_schema, key, source, target, state, run_id, found, keep
            )
    bounds = [decode_key(c["hi"]) for c in state.chunks(step.name, sname) if c["hi"]]
    if not ordered:
        bounds = []
    edges: list[Key | None] = [None, *bounds, None]
    ranges = list(itertools.pairwise(edges))
    candidates: list[Key] = []

    def walk(lo: Key | None, hi: Key | None, depth: int) -> None:
        if stop.is_set():
            raise InterruptedRun("stopped")
        t_count, t_sum = target.key_summary(tname, tkey, lo, hi, with_sum)
        if t_count == 0:
            return
        s_count, s_sum = source.key_summary(sname, key, lo, hi, with_sum)
        if (s_count, s_sum) == (t_count, t_sum):
            return
        dense = (t_count - s_count) * LEAF_KEYS >= t_count  # a difference in most leaves
        if t_count <= LEAF_KEYS or depth >= 40 or dense:
            on_target = [
                t_norm(k) for b in target.read_keys(tname, tkey, lo, hi, BATCH_ROWS) for k in b
            ]
            on_source = {
                s_norm(k) for b in source.read_keys(sname, key, lo, hi, BATCH_ROWS) for k in b
            }
            candidates.extend(k for k in on_target if k not in on_source)
            return
        mid = target.key_at(tname, tkey, lo, hi, t_count // 2)
        if mid is None or mid == hi:
            return walk(lo, hi, 40)
        mid = t_norm(mid)
        walk(lo, mid, depth + 1)
        walk(mid, hi, depth + 1)

    for lo, hi in ranges:
        walk(lo, hi, 0 if ordered else 40)
    return _confirm_and_delete(
        step, source_schema, target_schema, key, source, target, state, run_id, candidates, keep
    )


#: integer keys are fingerprinted in buckets of about this many keys
BUCKET_KEYS = 64


def _integer_key_diff(
    sname: str,
    tname: str,
    key: tuple[str, ...],
    tkey: tuple[str, ...],
    source: TableEndpoint,
    target: TableEndpoint,
    s_norm: Callable[[Any], Key],
    t_norm: Callable[[Any], Key],
    stop: threading.Event,
) -> list[Key] | None:
    """Target keys the source lacks, for one integer key: one grouped scan per side gives
    count and key sum per bucket of ~64 keys; only differing buckets' keys are read.
    None when the keys span more than 2**62 (the range walk is used then). ``tkey`` is
    ``key`` as the target names it."""
    column, tcolumn = key[0], tkey[0]
    s_lo, s_hi = source.key_span(sname, column)
    t_lo, t_hi = target.key_span(tname, tcolumn)
    if t_lo is None or t_hi is None:
        return []
    origin = min(t_lo, s_lo if s_lo is not None else t_lo)
    top = max(t_hi, s_hi if s_hi is not None else t_hi)
    if top - origin >= 2**62:  # bucket numbers would overflow a BIGINT on some engine
        return None
    rows = max(1, target.count(tname))
    width = min(top - origin + 1, max(1, math.ceil((top - origin + 1) * BUCKET_KEYS / rows)))
    with ThreadPoolExecutor(1) as pool:  # two servers: both scans at once
        on_source_f = pool.submit(source.key_buckets, sname, column, origin, width)
        on_target = target.key_buckets(tname, tcolumn, origin, width)
        on_source = on_source_f.result()
    differing = sorted(b for b, v in on_target.items() if on_source.get(b) != v)
    ranges: list[tuple[Key | None, Key | None]] = []
    i = 0
    while i < len(differing):  # adjacent buckets are read as one key range
        j = i
        while j + 1 < len(differing) and differing[j + 1] == differing[j] + 1:
            j += 1
        first, last = differing[i] == 0, origin + (differing[j] + 1) * width - 1 >= top
        ranges.append(
            (
                None if first else (origin + differing[i] * width - 1,),
                None if last else (origin + (differing[j] + 1) * width - 1,),
            )
        )
        i = j + 1
    candidates: list[Key] = []
    for n in range(0, len(ranges), 1000):
        if stop.is_set():
            raise InterruptedRun("stopped")
        part = ranges[n : n + 1000]
        with ThreadPoolExecutor(1) as pool:
            src_f = pool.submit(source.read_key_ranges, sname, key, part)
            on_tgt = target.read_key_ranges(tname, tkey, part)
            on_src = {s_norm(k) for k in src_f.result()}
        candidates.extend(k for k in (t_norm(x) for x in on_tgt) if k not in on_src)
    return candidates


def _confirm_and_delete(
    step: Step,
    source_schema: TableSchema,
    target_schema: TableSchema,
    key: tuple[str, ...],
    source: TableEndpoint,
    target: TableEndpoint,
    state: State,
    run_id: int,
    candidates: list[Key],
    keep: TableBackup,
) -> int:
    if not candidates:
        return 0
    s_norm = _key_normaliser(source, source_schema, key)
    # a range means the same keys on both sides only when both sort them alike: confirm
    key_schema = replace(source_schema, columns=[source_schema.column(k) for k in key])
    still = {
        s_norm(r)
        for i in range(0, len(candidates), 1000)
        for r in source.read_rows(key_schema, key, candidates[i : i + 1000])
    }
    gone = [k for k in candidates if k not in still]
    if not gone:
        return 0
    return delete_rows(step, target_schema, key, gone, target, state, run_id, keep)


def delete_rows(
    step: Step,
    target_schema: TableSchema,
    key: tuple[str, ...],
    keys: list[Key],
    target: TableEndpoint,
    state: State,
    run_id: int,
    keep: TableBackup,
) -> int:
    """Delete the rows with these keys, copying them to ``keep``'s backup table first in
    the same transaction (a ``restore_rows`` record); returns how many were deleted.

    ``key`` names the source's key columns; the target's names for them are used here."""
    tkey = target_names(target, key)
    return target.delete_keys(target_schema.name, tkey, keys, backup=keep.rows(tkey))


# -- binlog (cdc) --------------------------------------------------------------------------
def earlier_position(a: str, b: str) -> bool:
    """Whether change-log position ``a`` comes before ``b`` (``file:offset`` strings)."""

    def parts(text: str) -> tuple[str, int, int]:
        name, _, offset = text.rpartition(":")
        base, _, number = name.rpartition(".")
        return (base, int(number), int(offset)) if number.isdigit() else (name, 0, int(offset))

    return parts(a) < parts(b)


@dataclass
class StreamResult:
    events: int = 0
    batches: int = 0
    position: str | None = None
    event_time: str | None = None
    seconds: float = 0.0
    per_table: dict[str, PassResult] | None = None


def binlog_pass(
    *,
    step: Step,
    jobs: list[Any],
    source: Any,
    target: TableEndpoint,
    state: State,
    run_id: int,
    workdir: Path,
    stop: threading.Event,
) -> StreamResult:
    """Apply the source's row events since the step's recorded position; see the module doc."""
    started = time.monotonic()
    stream = state.stream(step.name)
    if stream is None or not stream["position"]:
        raise ConnectorError(
            f"step {step.name}: no binlog position is recorded; run with --restart to copy"
            " the tables again from a snapshot"
        )
    state.record_undo(
        run_id, step.name, step.target, "restore_stream", step.name, {"previous": as_dict(stream)}
    )
    as_of = now()
    by_name = {j.source_schema.name: j for j in jobs}
    keep: dict[str, TableBackup] = {}
    for name, j in by_name.items():  # each table's pass counters move too
        state.record_undo(
            run_id,
            step.name,
            step.target,
            "restore_watermark",
            j.target_schema.name,
            {"source_table": name, "previous": as_dict(state.watermark(step.name, name))},
        )
        keep[name] = TableBackup(
            state, run_id, step.name, step.target, target, j.target_schema.name, name
        )
    per_table = {name: PassResult(since=stream["position"]) for name in by_name}
    result = StreamResult(position=stream["position"], per_table=per_table)
    key_idx = {
        name: [j.source_schema.column_names.index(k) for k in j.key] for name, j in by_name.items()
    }
    for batch in source.read_changes(
        stream["position"],
        {n: j.source_schema for n, j in by_name.items()},
        {n: j.key for n, j in by_name.items()},
        server_id_seed=f"{state.path}:{step.name}",
    ):
        if stop.is_set():
            raise InterruptedRun("stopped")
        net: dict[str, dict[Key, tuple[str, tuple[Any, ...]]]] = {}
        for change in batch.changes:
            if change.op == "delete":
                k = tuple(change.values)
            else:
                k = tuple(change.values[i] for i in key_idx[change.table])
            table_net = net.setdefault(change.table, {})
            table_net.pop(k, None)
            table_net[k] = (change.op, tuple(change.values))
        for name, items in net.items():
            job = by_name[name]
            dels = [k for k, (op, _v) in items.items() if op == "delete"]
            ups = [v for _k, (op, v) in items.items() if op == "upsert"]
            pr = per_table[name]
            if dels:
                pr.deleted += delete_rows(
                    step, job.target_schema, job.key, dels, target, state, run_id, keep[name]
                )
            if ups:
                spool = target.new_spool(job.target_schema, workdir)
                try:
                    spool.add(ups)
                    pr.rows, pr.changed = _merge(
                        target, job.target_schema, job.key, spool, pr, keep[name]
                    )
                finally:
                    spool.discard()
        result.events += len(batch.changes)
        result.batches += 1
        result.position = batch.position.encode()
        result.event_time = batch.event_time.isoformat() if batch.event_time else None
        _failpoint("before-checkpoint", result.batches)
        state.set_stream(
            step.name, "binlog", position=result.position, event_time=result.event_time
        )
    result.seconds = time.monotonic() - started
    state.set_stream(
        step.name,
        "binlog",
        as_of=as_of,
        last_events=result.events,
        last_seconds=result.seconds,
        last_pass_at=now(),
        add_pass=1,
    )
    for name, pr in per_table.items():
        pr.watermark = result.position
        pr.seconds = result.seconds
        state.set_watermark(
            step.name,
            name,
            "binlog",
            as_of=as_of,
            last_rows=pr.rows,
            last_changed=pr.changed,
            last_deleted=pr.deleted,
            last_seconds=result.seconds,
            last_pass_at=now(),
            add_pass=1,
        )
    return result
