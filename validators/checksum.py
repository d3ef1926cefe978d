"""Checksum validation of one table: chunk checksums, narrowing down, row comparison.

Contract:

- Only reads. Every statement is a SELECT; nothing is written to either database.
- Chunks are key ranges ``(lo, hi]`` of at most :data:`CHUNK_ROWS` rows; each side
  returns ``(rows, hash sum)`` computed in the database (:mod:`validators.canonical`).
  Equal chunks are done. A differing chunk is narrowed down: with an integer key, one
  grouped scan per side gives the checksums of its parts of about :data:`GROUP_ROWS`
  rows; with other keys (or keys spanning more than 2**62) it is split into :data:`SPLIT`
  parts at keys read from the larger side and compared again. Parts of at most
  :data:`FETCH_ROWS` rows have their rows fetched from both sides and compared value by
  value; the rows that differ are read once more at the end and kept only if they still
  differ (a source being caught up while it is validated changes under the comparison).
- Where a key range does not mean the same rows on both sides (text keys across engines
  that sort differently), rows are grouped by a hash of their key instead of by range:
  one grouped scan per side, then the differing groups are compared row by row.
- A table without a usable key is compared as a whole (count and hash sum); when the sums
  differ and it has at most :data:`KEYLESS_ROWS` rows, its rows are compared as multisets.
  The report says the differing rows cannot be located.
- The verdict on a row is :func:`validators.canonical.values_equal`: a chunk whose hashes
  differ while all its rows compare equal is equal (and counted in ``hash_only``). A key
  that turns out not to be unique fails the table (:class:`ValidationError`).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any

from migrate.endpoints import Key, Row, TableEndpoint, key_order_agrees
from migrate.errors import InterruptedRun, MigrateError
from migrate.schema import PType, TableSchema
from validators.canonical import (
    FLOAT_KINDS,
    INT_KINDS,
    TEXT_KINDS,
    ColumnSpec,
    Rules,
    canonical_value,
    column_spec,
    comparable,
    plain_spec,
    row_text,
    values_equal,
)

#: a differing range with at most this many rows (on the larger side) is fetched
FETCH_ROWS = 2000
#: the first pass compares chunks of at most this many rows (fewer than a copy's
#: chunks: a differing chunk is scanned again to narrow it down, so smaller is cheaper)
CHUNK_ROWS = 10_000
#: a larger differing range is split into this many parts (keys that are not integers)
SPLIT = 8
#: a larger differing integer-keyed range is grouped into parts of about this many rows,
#: at most MAX_GROUPS of them, in one scan
GROUP_ROWS = 250
MAX_GROUPS = 1024
#: at most this many differing rows are kept per table (all are counted)
KEEP_DIFFS = 1000
#: rows per statement when fetching a range
BATCH = 5000
#: a keyless table whose checksums differ has its rows compared (without locating them)
#: up to this many rows
KEYLESS_ROWS = 200_000
#: rows of differing key-hash groups read per scan
BUCKET_ROWS = 200_000

NO_KEY_NOTE = (
    "no primary or NOT NULL unique key: compared as a whole (count and checksum); the"
    " differing rows cannot be located without a key"
)
BUCKET_NOTE = (
    "the key has text columns the two engines sort differently: rows are grouped by a"
    " hash of their key instead of by key range"
)


class ValidationError(MigrateError):
    """A table that cannot be compared as asked (a key column missing or holding NULLs)."""


class _Aborted(Exception):
    """Another chunk of the same table failed: this one stops quietly."""


@dataclass
class RowDiff:
    """One differing row: ``kind`` is ``missing`` (on the target), ``extra`` (on the
    target) or ``changed``; ``columns`` holds ``(name, source value, target value)``."""

    kind: str
    key: tuple[Any, ...]
    columns: list[tuple[str, Any, Any]] = field(default_factory=list)


@dataclass
class TableCheck:
    """The checksum validation of one table."""

    step: str
    table: str
    target_table: str
    key: tuple[str, ...]
    method: str = ""
    status: str = "equal"  # equal | differences | failed
    source_rows: int = 0
    target_rows: int = 0
    chunks: int = 0
    chunks_differing: int = 0
    missing: int = 0
    extra: int = 0
    changed: int = 0
    hash_only: int = 0
    #: ranges whose checksums agree only under the rules (so the rules were needed)
    ruled_ranges: int = 0
    rechecked: int = 0
    seconds: float = 0.0
    diffs: list[RowDiff] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    rules_used: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    locatable: bool = True
    #: a keyless table's checksums differ (rows cannot be located)
    unlocated: bool = False

    @property
    def differing_rows(self) -> int:
        return self.missing + self.extra + self.changed


# -- specs --------------------------------------------------------------------------------
def _family(kind: str) -> str:
    if kind in TEXT_KINDS:
        return "text"
    if kind in INT_KINDS or kind == "boolean":
        return "int"
    if kind in ("datetime", "timestamptz"):
        return "datetime"
    if kind in FLOAT_KINDS:
        return "float"
    if kind in ("binary", "varbinary", "blob"):
        return "binary"
    return kind


def compare_specs(
    source: TableSchema, target: TableSchema, rules: Rules, names: dict[str, str] | None = None
) -> tuple[list[ColumnSpec], list[ColumnSpec], list[str]]:
    """The compared columns as each side renders them, and notes on columns left out.

    ``names`` maps a source column to the target's name for it (a name too long for the
    target engine; absent: the same name); each spec carries its own side's name.
    Both lists have one spec per compared column, in the source's column order. A spec's
    ``kind`` is the side's own type where that changes only the SQL (boolean or integer,
    datetime or timestamptz) and the agreed one where it changes the text (floats: the
    narrower; text: uuid's lower case); decimals use the source's scale.
    """
    notes: list[str] = []
    t_cols = {c.name: c for c in target.columns}
    s_specs: list[ColumnSpec] = []
    t_specs: list[ColumnSpec] = []
    ignored = set(rules.ignore_columns)
    names = names or {}
    for col in source.columns:
        if col.name in ignored:
            continue
        tcol = t_cols.get(names.get(col.name, col.name))
        if tcol is None:
            notes.append(f"column {col.name} is not on the target: not compared")
            continue
        sk, tk = col.type.kind, tcol.type.kind
        whole = {_family(sk), _family(tk)} == {"int", "decimal"} and not (
            col.type.scale or tcol.type.scale
        )  # BIGINT UNSIGNED kept as DECIMAL(20, 0): the same digits
        if _family(sk) != _family(tk) and not whole:
            notes.append(
                f"column {col.name} is {col.type} on the source and {tcol.type} on the"
                " target: compared as text"
            )
            sk = tk = "text"
        agreed = sk
        if _family(sk) == "float":
            agreed = "float32" if "float32" in (sk, tk) else "float64"
            sk = tk = agreed
        elif _family(sk) == "text":
            agreed = "uuid" if "uuid" in (sk, tk) else "json" if "json" in (sk, tk) else sk
            sk = tk = agreed
        scales = [t.scale for t in (col.type, tcol.type) if t.kind == "decimal"]
        known = [x for x in scales if x is not None]
        # the larger scale: a value the narrower side rounded is a difference
        scale = max(known) if known else None
        if whole:
            scale = 0
        s_specs.append(
            column_spec(col.name, PType(sk) if sk != col.type.kind else col.type, rules, scale)
        )
        t_specs.append(
            column_spec(tcol.name, PType(tk) if tk != tcol.type.kind else tcol.type, rules, scale)
        )
    mapped = {names.get(c.name, c.name) for c in source.columns}
    for name in t_cols:
        if name not in mapped and name not in ignored:
            notes.append(f"column {name} is only on the target: not compared")
    return s_specs, t_specs, notes


def _schema_of(
    schema: TableSchema, specs: Sequence[ColumnSpec], key: tuple[str, ...]
) -> TableSchema:
    """``schema`` narrowed to the key columns followed by the compared columns."""
    names = list(key) + [s.name for s in specs if s.name not in key]
    return replace(schema, columns=[schema.column(n) for n in names])


# -- the check ----------------------------------------------------------------------------
class _Side:
    """One side of a check: its endpoint and table, the table narrowed to the key and the
    compared columns, the specs as this side writes them, and (when rules are on) the
    specs of every column without rules, hashed too to tell whether the rules were
    needed."""

    def __init__(
        self,
        ep: TableEndpoint,
        table: str,
        schema: TableSchema,
        specs: list[ColumnSpec],
        plain: list[ColumnSpec] | None = None,
        key: tuple[str, ...] = (),
    ) -> None:
        self.ep, self.table, self.schema, self.specs = ep, table, schema, specs
        self.plain = plain
        #: the key as this side names its columns
        self.key = key
        #: the key columns as both sides write them, named as this side names them
        self.key_specs: list[ColumnSpec] = []


def check_table(
    *,
    step: str,
    source: TableEndpoint,
    source_schema: TableSchema,
    target: TableEndpoint,
    target_schema: TableSchema,
    key: tuple[str, ...],
    rules: Rules,
    chunk_rows: int,
    workers: int,
    stop: threading.Event | None = None,
    hash_mode: str = "auto",
    on_chunk: Callable[[int], None] | None = None,
    names: dict[str, str] | None = None,
) -> TableCheck:
    """Compare one table's rows on both sides; see the module docstring. ``names`` maps
    source columns to the target's names for them (see :func:`compare_specs`)."""
    started = time.monotonic()
    names = names or {}
    res = TableCheck(step, source_schema.name, target_schema.name, key, rules=rules.names())
    s_specs, t_specs, notes = compare_specs(source_schema, target_schema, rules, names)
    res.notes.extend(notes)
    tkey = tuple(names.get(k, k) for k in key)
    missing_key = [k for k in tkey if k not in {c.name for c in target_schema.columns}]
    if missing_key:
        raise ValidationError(
            f"{source_schema.name}: key column {missing_key[0]} is not on the target"
            f" table {target_schema.name}"
        )
    ruled = bool(rules.names())
    s_plain, t_plain, _ = compare_specs(source_schema, target_schema, Rules(), names)
    check = _Check(
        res,
        _Side(
            source,
            source_schema.name,
            _schema_of(source_schema, s_specs, key),
            s_specs,
            s_plain if ruled else None,
            key,
        ),
        _Side(
            target,
            target_schema.name,
            _schema_of(target_schema, t_specs, tkey),
            t_specs,
            t_plain if ruled else None,
            tkey,
        ),
        key,
        chunk_rows,
        workers,
        stop or threading.Event(),
        hash_mode,
        on_chunk,
    )
    try:
        check.run()
    finally:
        res.seconds = time.monotonic() - started
    if res.hash_only:
        res.notes.append(
            f"{res.hash_only} range(s) hashed differently while every row compared equal"
            " (the engines write some value differently, such as JSON key order): settled"
            " row by row"
        )
    res.status = "differences" if res.differing_rows or res.unlocated else "equal"
    return res


class _Check:
    def __init__(
        self,
        res: TableCheck,
        src: _Side,
        tgt: _Side,
        key: tuple[str, ...],
        chunk_rows: int,
        workers: int,
        stop: threading.Event,
        hash_mode: str,
        on_chunk: Callable[[int], None] | None,
    ) -> None:
        self.res, self.src, self.tgt, self.key = res, src, tgt, key
        self.chunk_rows = max(1, min(chunk_rows, CHUNK_ROWS))
        self.workers, self.stop = max(1, workers), stop
        #: set when one chunk failed: the others stop (``stop`` is the user's interrupt,
        #: shared with the rest of the run, and is set only by an interrupt)
        self.abort = threading.Event()
        self.on_chunk = on_chunk
        self.lock = threading.Lock()
        self.specs = src.specs  # the comparison uses the source's view of each column
        self.plain_specs = src.plain or src.specs
        self.key_specs = self._key_specs()
        src.key_specs = self.key_specs
        tgt.key_specs = [
            replace(spec, name=name) for spec, name in zip(self.key_specs, tgt.key, strict=True)
        ]
        #: a source column's name on the target
        self.t_name = {a.name: b.name for a, b in zip(src.specs, tgt.specs, strict=True)}
        self.t_name.update(zip(key, tgt.key, strict=True))
        names = [c.name for c in src.schema.columns]
        #: each compared column's spec and its place in a fetched row
        self.positions = [(spec, names.index(spec.name)) for spec in self.specs]
        self.fast = None if hash_mode == "canonical" else self._negotiate()
        res.method = f"{self.fast} (same engine)" if self.fast else "md5 of the canonical text"
        self.s_sel = self._select(src)
        self.t_sel = self._select(tgt)
        self.pool = ThreadPoolExecutor(self.workers * 2, thread_name_prefix="validate")
        self.found: dict[tuple[str, ...], RowDiff] = {}

    # -- negotiation ----------------------------------------------------------------------
    def _negotiate(self) -> str | None:
        """A cheaper hash both sides have, when both render every value alike (the same
        engine and the same column types, no rule changing a value)."""
        s, t = self.src.ep, self.tgt.ep
        if s.capabilities.engine != t.capabilities.engine:
            return None
        if self.src.plain is not None:  # rules on: the canonical hash tells if they were needed
            return None
        for spec in self.src.specs:
            a = self.src.schema.column(spec.name)
            b = self.tgt.schema.column(self.t_name[spec.name])
            if a.type != b.type:
                return None
        kind = s.fast_hash()
        return kind if kind is not None and kind == t.fast_hash() else None

    def _select(self, side: _Side) -> str:
        if self.fast:
            return side.ep.fast_checksum_sql(side.schema, side.specs, self.fast)
        return side.ep.checksum_sql(side.specs, side.plain)

    def _equal(self, a: Any, b: Any) -> bool:
        """Whether two checksum rows agree; with rules on, the third number (the hash
        without rules) tells whether they agree only thanks to the rules."""
        a, b = tuple(a or (0, 0)), tuple(b or (0, 0))
        if self.fast or self.src.plain is None or len(a) < 3 or len(b) < 3:
            return a == b
        if a[:2] != b[:2]:
            return False
        if a[2] != b[2]:
            with self.lock:
                self.res.ruled_ranges += 1
        return True

    # -- driving --------------------------------------------------------------------------
    def run(self) -> None:
        try:
            if not self.key:
                self._whole()
            elif key_order_agrees(
                self.src.schema, self.key, self.src.ep.capabilities, self.tgt.ep.capabilities
            ):
                self._ranges()
            else:
                self.res.notes.append(BUCKET_NOTE)
                self._buckets()
            self._recheck()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        if not self.key:
            return  # the keyless comparison counted its rows itself
        diffs = sorted(self.found.values(), key=lambda d: _sort_key(d.key))
        self.res.missing = sum(1 for d in diffs if d.kind == "missing")
        self.res.extra = sum(1 for d in diffs if d.kind == "extra")
        self.res.changed = sum(1 for d in diffs if d.kind == "changed")
        self.res.diffs = diffs[:KEEP_DIFFS]

    def _both(self, fn: Callable[[_Side], Any]) -> tuple[Any, Any]:
        """Run ``fn`` on both sides at once."""
        fut: Future[Any] = self.pool.submit(fn, self.tgt)
        a = fn(self.src)
        return a, fut.result()

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise InterruptedRun("validation interrupted")
        if self.abort.is_set():
            raise _Aborted

    def _whole(self) -> None:
        """A keyless table: one checksum per side; when they differ and the table is
        small enough, its rows are compared as multisets (to tell a real difference from
        a value the two engines write differently), without locating them."""
        self.res.locatable = False
        self.res.notes.append(NO_KEY_NOTE)
        a, b = self._both(lambda s: s.ep.checksum(s.table, (), None, None, self._sel(s)))
        self.res.chunks = 1
        self.res.source_rows, self.res.target_rows = int(a[0]), int(b[0])
        if self._equal(a, b):
            return
        self.res.chunks_differing = 1
        if max(int(a[0]), int(b[0])) > KEYLESS_ROWS:
            self.res.notes.append(
                f"the table has more than {KEYLESS_ROWS:,} rows: its rows were not compared"
                " one by one (a value the two engines write differently would also differ)"
            )
            self.res.unlocated = True
            return
        s_rows, t_rows = self._both(lambda s: s.ep.read_between(s.schema, (), None, None, BATCH))
        s_bag = Counter(self._comparable(r) for r in s_rows)
        t_bag = Counter(self._comparable(r) for r in t_rows)
        only_s, only_t = s_bag - t_bag, t_bag - s_bag
        if only_s and only_t and self.src.plain is not None:  # rules: pair what they allow
            s_left = [r for r in s_rows if only_s[self._comparable(r)] > 0]
            t_left = [r for r in t_rows if only_t[self._comparable(r)] > 0]
            for r in s_left:
                match = next((o for o in t_left if not self._row_diff(r, o)[0]), None)
                if match is not None:
                    t_left.remove(match)
                    only_s[self._comparable(r)] -= 1
                    only_t[self._comparable(match)] -= 1
            only_s, only_t = +only_s, +only_t
        self.res.missing = sum(only_s.values())
        self.res.extra = sum(only_t.values())
        self.res.unlocated = bool(self.res.missing or self.res.extra)
        if not self.res.unlocated:
            self.res.chunks_differing = 0
            self.res.hash_only += 1

    def _comparable(self, row: Row) -> tuple[str, ...]:
        """A keyless row as a tuple that equal rows share (rules applied)."""
        return tuple(comparable(spec, row[i]) for spec, i in self.positions)

    def _sel(self, side: _Side) -> str:
        return self.s_sel if side is self.src else self.t_sel

    # key ranges
    def _ranges(self) -> None:
        ranges = self._initial_ranges()
        self.res.chunks = len(ranges)
        first: BaseException | None = None
        with ThreadPoolExecutor(self.workers, thread_name_prefix="validate-chunk") as chunks:
            futs = [chunks.submit(self._chunk, lo, hi, True) for lo, hi in ranges]
            try:
                for f in as_completed(futs):
                    exc = f.exception()
                    if exc is not None and not isinstance(exc, _Aborted) and first is None:
                        first = exc
                        self.abort.set()  # the other chunks stop at their next statement
            except BaseException:  # Ctrl-C while waiting
                self.stop.set()
                raise
        if first is not None:
            raise first

    def _int_key(self) -> bool:
        return len(self.key) == 1 and self.src.schema.column(self.key[0]).type.kind in INT_KINDS

    def _initial_ranges(self) -> list[tuple[Key | None, Key | None]]:
        k = self.key
        n_s, n_t = self._both(lambda s: s.ep.count(s.table))
        nullable = [
            i
            for i, c in enumerate(k)
            if self.src.schema.column(c).nullable
            or self.tgt.schema.column(self.tgt.key[i]).nullable
        ]
        if nullable:  # a key given in [steps.overrides]: rows with a NULL are in no range
            nulls = self._both(
                lambda s: s.ep.count_null(s.table, tuple(s.key[i] for i in nullable))
            )
            if any(nulls):
                raise ValidationError(
                    f"{self.res.table}: {nulls[0]:,} source and {nulls[1]:,} target row(s)"
                    f" have a NULL in the key ({', '.join(k)}), so no key range holds them:"
                    " set a key of NOT NULL columns in [steps.overrides]"
                )
        n = max(n_s, n_t)
        parts = max(1, math.ceil(n / self.chunk_rows))
        if parts == 1:
            return [(None, None)]
        if self._int_key():
            span = self._span(None, None)
            if span is None:  # the rows went while we looked (a live source)
                return [(None, None)]
            return _open_ends([((a,), (b,)) for a, b in _int_bounds(*span, parts)])
        out: list[tuple[Key | None, Key | None]] = []
        prev: Key | None = None
        while True:  # walk the source's key order, a chunk at a time
            self._check_stop()
            nxt = self.src.ep.key_at(self.src.table, k, prev, None, self.chunk_rows - 1)
            if nxt is None:
                out.append((prev, None))
                break
            out.append((prev, tuple(nxt)))
            prev = tuple(nxt)
        return out

    def _chunk(self, lo: Key | None, hi: Key | None, top: bool) -> int:
        """Compare ``(lo, hi]``, splitting it while it differs; returns the differing rows
        found in it (a chunk whose hashes differ but whose rows are all equal is equal)."""
        self._check_stop()
        a, b = self._both(lambda s: s.ep.checksum(s.table, s.key, lo, hi, self._sel(s)))
        found = 0 if self._equal(a, b) else self._resolve(lo, hi, int(a[0]), int(b[0]))
        if top:
            with self.lock:
                self.res.source_rows += int(a[0])
                self.res.target_rows += int(b[0])
                self.res.chunks_differing += 1 if found else 0
            if self.on_chunk is not None:
                self.on_chunk(int(a[0]))
        return found

    def _resolve(self, lo: Key | None, hi: Key | None, n_s: int, n_t: int) -> int:
        if max(n_s, n_t) <= FETCH_ROWS:
            return self._compare_range(lo, hi)
        if self._int_key():
            span = self._span(lo, hi)
            if span is None:  # the rows went while we looked (a live source)
                return self._compare_range(lo, hi)
            if span[1] - span[0] <= 2**62:  # beyond, key - origin would overflow BIGINT
                return self._groups(lo, hi, span, max(n_s, n_t))
        parts = self._split(lo, hi, n_s, n_t)
        if parts == [(lo, hi)]:  # cannot be cut further (many rows share a key value)
            return self._compare_range(lo, hi)
        return sum(self._chunk(sub_lo, sub_hi, False) for sub_lo, sub_hi in parts)

    def _groups(self, lo: Key | None, hi: Key | None, span: tuple[int, int], rows: int) -> int:
        """An integer-keyed range that differs: one grouped scan per side gives the
        checksums of its parts of about :data:`GROUP_ROWS` rows; only the differing parts
        are fetched (or, when still large, grouped again)."""
        a, b = span
        parts = min(MAX_GROUPS, max(2, math.ceil(rows / GROUP_ROWS)))
        width = max(1, -(-(b - a) // parts))
        if width == 1 and b - a <= 1:
            return self._compare_range(lo, hi)
        s_g, t_g = self._both(
            lambda s: s.ep.checksum_groups(s.table, s.key[0], lo, hi, a + 1, width, self._sel(s))
        )
        found = 0
        last = (b - a - 1) // width
        for g in sorted(set(s_g) | set(t_g)):
            self._check_stop()
            x, y = s_g.get(g, (0, 0)), t_g.get(g, (0, 0))
            if self._equal(x, y):
                continue
            sub_lo: Key | None = None if lo is None and g <= 0 else (a + g * width,)
            sub_hi: Key | None = (
                None if hi is None and g >= last else (min(a + (g + 1) * width, b),)
            )
            n = max(int(x[0]), int(y[0]))
            if n <= FETCH_ROWS or width == 1:
                found += self._compare_range(sub_lo, sub_hi)
            else:
                sub = self._span(sub_lo, sub_hi)
                found += self._groups(sub_lo, sub_hi, sub, n) if sub else 0
        return found

    def _span(self, lo: Key | None, hi: Key | None) -> tuple[int, int] | None:
        """``(a, b)`` with every key either side holds in ``(lo, hi]`` inside ``(a, b]``
        (the smallest key minus one, the largest key), or None when neither holds any."""
        span_s, span_t = self._both(lambda s: s.ep.key_span_in(s.table, s.key[0], lo, hi))
        lows = [v for v in (span_s[0], span_t[0]) if v is not None]
        highs = [v for v in (span_s[1], span_t[1]) if v is not None]
        if not lows or not highs:
            return None
        return min(lows) - 1, max(highs)

    def _split(
        self, lo: Key | None, hi: Key | None, n_s: int, n_t: int
    ) -> list[tuple[Key | None, Key | None]]:
        """A differing range of other keys cut into :data:`SPLIT` parts of about equal
        rows, at keys read from the side with more rows."""
        side = self.src if n_s >= n_t else self.tgt
        n = max(n_s, n_t)
        cuts: list[Key] = []
        for i in range(1, SPLIT):
            cut = side.ep.key_at(side.table, side.key, lo, hi, i * n // SPLIT - 1)
            if cut is None or tuple(cut) in (lo, hi) or (cuts and tuple(cut) == cuts[-1]):
                continue  # a cut at a bound narrows nothing (many rows share a key)
            cuts.append(tuple(cut))
        if not cuts:
            return [(lo, hi)]
        edges: list[Key | None] = [lo, *cuts, hi]
        return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]

    # hash buckets
    def _buckets(self) -> None:
        n = max(self._both(lambda s: s.ep.count(s.table)))
        parts = max(1, math.ceil(n / self.chunk_rows))
        key_specs = self.key_specs
        a, b = self._both(
            lambda s: s.ep.checksum_buckets(s.table, s.key_specs, parts, self._sel(s))
        )
        self.res.chunks = parts
        self.res.source_rows = sum(int(v[0]) for v in a.values())
        self.res.target_rows = sum(int(v[0]) for v in b.values())
        differing = [
            i
            for i in range(parts)
            if not _both_empty(a.get(i), b.get(i)) and not self._equal(a.get(i), b.get(i))
        ]
        # one scan per side reads up to BUCKET_ROWS rows of differing groups
        per = max(1, BUCKET_ROWS // max(1, self.chunk_rows))
        for at in range(0, len(differing), per):
            self._check_stop()
            group = differing[at : at + per]
            s_rows, t_rows = self._both(
                lambda s, g=group: s.ep.read_buckets(s.schema, s.key_specs, parts, g)
            )
            self._compare_rows(s_rows, t_rows)
        # the groups that hold differing rows (the key hash, as every engine computes it)
        self.res.chunks_differing = len(
            {
                int(hashlib.md5(row_text(key_specs, d.key).encode()).hexdigest()[:8], 16) % parts
                for d in self.found.values()
            }
        )

    def _key_specs(self) -> list[ColumnSpec]:
        """The key columns as both sides agree to write them (no rules)."""
        agreed = {s.name: s for s in self.plain_specs}
        out = []
        for k in self.key:
            col = self.src.schema.column(k)
            spec = agreed.get(k) or column_spec(k, col.type, Rules(), col.type.scale)
            out.append(plain_spec(spec) if spec.ruled else spec)
        return out

    # rows
    def _compare_range(self, lo: Key | None, hi: Key | None) -> int:
        s_rows, t_rows = self._both(lambda s: s.ep.read_between(s.schema, s.key, lo, hi, BATCH))
        return self._compare_rows(s_rows, t_rows)

    def _row_key(self, row: Row) -> tuple[str, ...]:
        return tuple(canonical_value(spec, row[i]) for i, spec in enumerate(self.key_specs))

    def _compare_rows(self, s_rows: list[Row], t_rows: list[Row]) -> int:
        """Compare fetched rows and keep the differing ones; returns how many differ."""
        found, used, hash_only = self._diff_rows(s_rows, t_rows)
        with self.lock:
            self.found.update(found)
            for r, n in used.items():
                self.res.rules_used[r] = self.res.rules_used.get(r, 0) + n
            if hash_only:
                self.res.hash_only += 1
        return len(found)

    def _diff_rows(
        self, s_rows: list[Row], t_rows: list[Row]
    ) -> tuple[dict[tuple[str, ...], RowDiff], dict[str, int], bool]:
        """The differing rows by canonical key, the rules used, and whether nothing
        differed at all (the hashes differed only in how a value was written)."""
        nk = len(self.key)
        s_map = {self._row_key(r): r for r in s_rows}
        t_map = {self._row_key(r): r for r in t_rows}
        for side, rows, by_key in (("source", s_rows, s_map), ("target", t_rows, t_map)):
            if len(by_key) < len(rows):
                raise ValidationError(
                    f"{self.res.table}: the key ({', '.join(self.key)}) is not unique on the"
                    f" {side}: rows cannot be matched; set a unique key in [steps.overrides]"
                )
        found: dict[tuple[str, ...], RowDiff] = {}
        used: dict[str, int] = {}
        for k, row in s_map.items():
            other = t_map.get(k)
            if other is None:
                found[k] = RowDiff("missing", tuple(row[:nk]))
                continue
            diff, rules = self._row_diff(row, other)
            for r in rules:
                used[r] = used.get(r, 0) + 1
            if diff:
                found[k] = RowDiff("changed", tuple(row[:nk]), diff)
        for k, row in t_map.items():
            if k not in s_map:
                found[k] = RowDiff("extra", tuple(row[:nk]))
        return found, used, not found and not used

    def _row_diff(self, s_row: Row, t_row: Row) -> tuple[list[tuple[str, Any, Any]], set[str]]:
        """The columns that differ as ``(name, source value, target value)``, and the
        rules that made other columns equal."""
        out: list[tuple[str, Any, Any]] = []
        used: set[str] = set()
        for spec, i in self.positions:
            a, b = s_row[i], t_row[i]
            equal, ruled = values_equal(spec, a, b)
            if not equal:
                out.append((spec.name, a, b))
            elif ruled:
                used.add(_rule_name(spec, a, b))
        return out, used

    def _recheck(self) -> None:
        """Read the differing rows once more; keep the ones that still differ."""
        if not self.found or not self.key:
            return
        items = list(self.found.items())
        head, tail = items[: KEEP_DIFFS * 5], items[KEEP_DIFFS * 5 :]
        keys = [d.key for _, d in head]
        wanted = {k for k, _ in head}
        s_rows, t_rows = self._both(lambda s: s.ep.read_rows(s.schema, s.key, keys))
        # a lookup by key may also return rows whose key only collates equal ('APPLE'
        # for 'apple'): only the rows of the keys found differing are compared again
        s_rows = [r for r in s_rows if self._row_key(r) in wanted]
        t_rows = [r for r in t_rows if self._row_key(r) in wanted]
        again, _, _ = self._diff_rows(s_rows, t_rows)
        self.res.rechecked = len(head) - len(again)
        self.found = {**again, **dict(tail)}
        if not self.found:  # every difference went away when read again
            self.res.chunks_differing = 0
        if self.res.rechecked:
            self.res.notes.append(
                f"{self.res.rechecked} row(s) differed when first read and agreed when read"
                " again (changed during validation)"
            )


def _rule_name(spec: ColumnSpec, a: Any, b: Any) -> str:
    if spec.kind in FLOAT_KINDS:
        return "float tolerance"
    if spec.time_unit:
        return f"timestamp precision {spec.time_unit}"
    if spec.empty_null and (a in ("", None) or b in ("", None)):
        return "empty string = NULL"
    if spec.rtrim and isinstance(a, str) and isinstance(b, str) and a.rstrip(" ") == b.rstrip(" "):
        return "trailing blanks ignored"
    return "case-insensitive text"


def _both_empty(a: Any, b: Any) -> bool:
    return (a is None or int(a[0]) == 0) and (b is None or int(b[0]) == 0)


def _int_bounds(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    """``(lo, hi]`` cut into ``parts`` ranges of (nearly) equal width."""
    width = max(1, -(-(hi - lo) // parts))
    out = []
    a = lo
    while a < hi:
        b = min(hi, a + width)
        out.append((a, b))
        a = b
    return out


def _open_ends(ranges: list[tuple[Key, Key]]) -> list[tuple[Key | None, Key | None]]:
    """The first range open below and the last open above (rows outside any bound)."""
    out: list[tuple[Key | None, Key | None]] = list(ranges)
    out[0] = (None, out[0][1])
    out[-1] = (out[-1][0], None)
    return out


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((0, v) if isinstance(v, (int, float)) else (1, str(v)) for v in key)
