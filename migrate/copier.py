"""Copy one table in key-range chunks, resumably.

The order of events for a chunk is the whole crash-safety argument:

1. the reader streams rows with ``key > previous chunk's last key`` (keyset pagination,
   ``LIMIT chunk_rows``, a server-side cursor) into a spool file in the target's load
   format, and learns the chunk's last key;
2. the writer records the chunk ``(lo, hi]`` as ``writing`` in the state store;
3. the target loads the spool in one transaction;
4. both sides count the range; the chunk is recorded ``done`` with both counts.

A run killed anywhere leaves at most one ``writing`` chunk per table. The next run deletes
the target's rows in that chunk's key range (a no-op if step 3 never committed; where the
engines may sort the key differently, the keys the source now has in the range), and
carries on from the last ``done`` chunk: no row is lost or doubled.

A table without a usable key is one chunk: a resumed run empties the target table and
copies it again, and the report says it could not be chunked or resumed.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.endpoints import TableEndpoint, target_names
from migrate.errors import InterruptedRun
from migrate.schema import TableSchema
from migrate.state import State, decode_key, encode_key
from validators.counts import RangeCount, chunk_rows

BATCH_ROWS = 5000


def _failpoint(where: str, seq: int) -> None:
    """Test hook: ``MIGRATE_FAILPOINT=after-load:3`` kills the process with SIGKILL right
    after the target committed chunk 3 and before the state records it (``after-merge:N``,
    and ``before-checkpoint:N`` after a binlog batch, do the same in catch-up passes)."""
    spec = os.environ.get("MIGRATE_FAILPOINT")
    if spec and spec == f"{where}:{seq}":
        os.kill(os.getpid(), signal.SIGKILL)


NO_KEY_NOTE = "no primary or NOT NULL unique key: copied as one chunk, cannot be resumed part way"


@dataclass
class TableJob:
    """What the runner hands the copier for one table."""

    step: str
    run_id: int
    source_schema: TableSchema
    target_schema: TableSchema
    key: tuple[str, ...]
    chunk_rows: int
    count_chunks: bool
    #: False when the key has text columns the two engines may sort differently: a key
    #: range then holds other rows on the target, so the target's per-chunk count is the
    #: rows its load wrote (the table count stays an independent count on both sides).
    range_count_on_target: bool = True
    notes: list[str] = field(default_factory=list)
    #: the watermark column of an incremental step (a ``migrate.incremental.CursorSpec``)
    cursor: Any = None
    #: a pilot copies only this many chunks (the first ones in key order); None: all
    max_chunks: int | None = None


class Progress:
    """Receives progress events; the console and log renderers implement it."""

    def table_started(self, step: str, table: str, total: int | None, done: int) -> None: ...

    def advance(self, step: str, table: str, rows: int) -> None: ...

    def table_finished(self, step: str, table: str, rows: int, seconds: float) -> None: ...

    def message(self, text: str) -> None: ...


_DONE = object()


def copy_table(
    job: TableJob,
    source: TableEndpoint,
    target: TableEndpoint,
    state: State,
    workdir: Path,
    progress: Progress,
    stop: threading.Event,
    on_snapshot: Callable[[str], None] | None = None,
    snapshot_at: str | None = None,
) -> None:
    """Copy (or finish copying) one table; the state store records every chunk.

    Precondition: the target table exists and the state row for the table is ``copying``.
    Postcondition: every source row read is in the target; chunk counts are recorded.
    With ``on_snapshot`` every chunk is read inside one consistent snapshot of the source
    (``source.snapshot``), whose position (a binlog position, an Oracle SCN) is handed to
    ``on_snapshot`` before the first row is read; ``snapshot_at`` asks for the snapshot an
    earlier, cut-off run of the table read (sources that can return to one: Oracle).
    """
    sname, tname = job.source_schema.name, job.target_schema.name
    chunks = state.chunks(job.step, sname)
    done = [c for c in chunks if c["status"] == "done"]
    unfinished = [c for c in chunks if c["status"] != "done"]

    if not job.key:
        if chunks:  # a keyless table restarts from nothing
            progress.message(
                f"{job.step}.{sname}: the copy was cut off and the table has no"
                " key: the target table was emptied and is copied again"
            )
            target.truncate_table(tname)
            for c in chunks:
                state.drop_chunk(job.step, sname, c["seq"])
            state.upsert_table(job.step, sname, chunks_done=0, rows_copied=0)
        done, unfinished = [], []
    tkey = target_names(target, job.key)
    for c in unfinished:
        lo, hi = decode_key(c["lo"]), decode_key(c["hi"])
        if job.range_count_on_target:  # the range holds the same keys on the target
            target.delete_range(tname, tkey, lo, hi)
        else:  # text keys the target sorts differently: the source's keys of the range
            for keys in source.read_keys(sname, job.key, lo, hi, BATCH_ROWS):
                target.delete_keys(tname, tkey, keys)
        state.drop_chunk(job.step, sname, c["seq"])
        progress.message(
            f"{job.step}.{sname}: chunk {c['seq']} was cut off by a crash:"
            " its rows were removed from the target and are copied again"
        )

    after = decode_key(done[-1]["hi"]) if done else None
    seq = done[-1]["seq"] + 1 if done else 1
    rows_before = sum(c["target_rows"] or 0 for c in done)
    text = source.reads_text() and target.loads_text()
    conv = None if text else source.row_converter(job.source_schema)
    key_conv = source.key_converter(job.source_schema, job.key) if text else None
    key_idx = [job.source_schema.column_names.index(k) for k in job.key]
    handoff: queue.Queue[Any] = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def put(item: Any) -> None:
        while True:
            if stop.is_set() or failure:
                raise InterruptedRun("stopped")
            try:
                handoff.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def reader() -> None:
        try:
            if on_snapshot is None:
                read_chunks()
                return
            snap = source.snapshot  # type: ignore[attr-defined]
            with snap(text, at=snapshot_at) if snapshot_at else snap(text) as position:
                on_snapshot(position)
                read_chunks()
        except BaseException as exc:  # handed to the writer, which raises it
            failure.append(exc)
            try:
                handoff.put_nowait(_DONE)
            except queue.Full:
                pass

    def read_chunks() -> None:
        nonlocal after, seq
        while True:
            spool = target.new_spool(job.target_schema, workdir)
            n, last = 0, None
            limit = job.chunk_rows if job.key or job.max_chunks else None
            try:
                batch_rows = min(BATCH_ROWS, job.chunk_rows)
                for batch in source.read_range(
                    job.source_schema, job.key, after, limit, batch_rows, text
                ):
                    if stop.is_set() or failure:
                        raise InterruptedRun("stopped")
                    if job.key:
                        last = tuple(batch[-1][i] for i in key_idx)
                        if key_conv is not None:
                            last = key_conv(last)
                    if conv is not None:
                        batch = [conv(r) for r in batch]
                    if not job.key and limit is not None:  # a pilot of a keyless table
                        batch = batch[: limit - n]
                    spool.add(batch)
                    n += len(batch)
                    if not job.key and limit is not None and n >= limit:
                        break
                spool.close()
            except BaseException:
                spool.discard()
                raise
            if n == 0 and (job.key or seq > 1):
                spool.discard()
                break
            put((seq, after, last, spool))
            after, seq = last, seq + 1
            if not job.key or n < job.chunk_rows:
                break
            if job.max_chunks is not None and seq > job.max_chunks:
                break
        put(_DONE)

    thread = threading.Thread(target=reader, name=f"read-{sname}", daemon=True)
    started = time.monotonic()
    row = state.table(job.step, sname)
    progress.table_started(job.step, sname, row["est_rows"] if row else None, rows_before)
    thread.start()
    copied = rows_before
    try:
        while True:
            if stop.is_set():
                raise InterruptedRun("stopped")
            try:
                item = handoff.get(timeout=0.2)
            except queue.Empty:
                if failure and not thread.is_alive():
                    raise failure[0] from None
                continue
            if item is _DONE:
                if failure:
                    raise failure[0] from None
                break
            cseq, lo, hi, spool = item
            try:
                state.chunk_writing(
                    job.step, sname, cseq, encode_key(lo), encode_key(hi), spool.rows, job.run_id
                )
                _failpoint("before-load", cseq)
                written = target.load_spool(job.target_schema, spool)
                _failpoint("after-load", cseq)
            finally:
                spool.discard()
            s_rows, t_rows = chunk_rows(
                source,
                job.source_schema.name,
                target,
                tname,
                job.key,
                lo,
                hi,
                read=spool.rows,
                written=written,
                recount_source=job.count_chunks,
                range_on_target=job.range_count_on_target,
            )
            state.chunk_done(job.step, sname, cseq, s_rows, t_rows)
            copied += t_rows
            progress.advance(job.step, sname, spool.rows)
    except BaseException:
        failure.append(InterruptedRun("stopped"))
        thread.join(timeout=30)
        raise
    thread.join()
    progress.table_finished(job.step, sname, copied, time.monotonic() - started)


def chunk_counts(state: State, step: str, table: str) -> list[RangeCount]:
    """The recorded counts of a table's finished chunks, in key order."""
    return [
        RangeCount(
            c["seq"],
            decode_key(c["lo"]),
            decode_key(c["hi"]),
            c["source_rows"] or 0,
            c["target_rows"] or 0,
        )
        for c in state.chunks(step, table)
        if c["status"] == "done"
    ]
