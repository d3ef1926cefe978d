"""Row-count validation: exact counts of a key range or a whole table, on both sides.

Contract: counts are taken inside each database (``SELECT COUNT(*)`` over the same key
range), never by reading rows into the client; a :class:`RangeCount` matches only when
both sides hold the same number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migrate.endpoints import Key, TableEndpoint


@dataclass(frozen=True)
class RangeCount:
    """Rows in ``(lo, hi]`` on each side (the whole table when both bounds are None)."""

    seq: int
    lo: Key | None
    hi: Key | None
    source_rows: int
    target_rows: int

    @property
    def matches(self) -> bool:
        return self.source_rows == self.target_rows


def count_range(
    seq: int,
    source: TableEndpoint,
    source_table: str,
    target: TableEndpoint,
    target_table: str,
    key: tuple[str, ...],
    lo: Key | None,
    hi: Key | None,
) -> RangeCount:
    """Count one key range on both sides; with no key, count both whole tables."""
    return RangeCount(
        seq,
        lo,
        hi,
        source.count(source_table, key, lo, hi),
        target.count(target_table, key, lo, hi),
    )


def table_counts(
    source: TableEndpoint, source_table: str, target: TableEndpoint, target_table: str
) -> tuple[int, int]:
    """Exact row counts of a whole table on both sides."""
    return source.count(source_table), target.count(target_table)


def summarize(counts: list[RangeCount]) -> dict[str, Any]:
    """Totals and the ranges that differ, for reports."""
    bad = [c for c in counts if not c.matches]
    return {
        "chunks": len(counts),
        "differing_chunks": len(bad),
        "source_rows": sum(c.source_rows for c in counts),
        "target_rows": sum(c.target_rows for c in counts),
    }
