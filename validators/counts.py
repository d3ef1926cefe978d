"""Row-count validation: exact counts of a key range or a whole table, on both sides.

Contract: counts are taken inside each database (``SELECT COUNT(*)`` over a key range or
a whole table), never by reading rows into the client; a :class:`RangeCount` matches only
when both sides hold the same number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrate.endpoints import Key, TableEndpoint, target_names


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


def chunk_rows(
    source: TableEndpoint,
    source_table: str,
    target: TableEndpoint,
    target_table: str,
    key: tuple[str, ...],
    lo: Key | None,
    hi: Key | None,
    *,
    read: int,
    written: int,
    recount_source: bool,
    range_on_target: bool,
) -> tuple[int, int]:
    """A chunk's rows on each side, each counted inside its database where that is exact.

    Source: the key range counted again (``recount_source``), else the rows read.
    Target: the key range counted, unless the key is text the target sorts differently
    (``range_on_target`` False: then the rows its load wrote). A keyless table is one
    chunk: the whole target table is counted.
    """
    if not key:
        return read, target.count(target_table)
    s_rows = source.count(source_table, key, lo, hi) if recount_source else read
    t_rows = (
        target.count(target_table, target_names(target, key), lo, hi)
        if range_on_target
        else written
    )
    return s_rows, t_rows


def table_counts(
    source: TableEndpoint, source_table: str, target: TableEndpoint, target_table: str
) -> tuple[int, int]:
    """Exact row counts of a whole table on both sides."""
    return source.count(source_table), target.count(target_table)
