"""The contracts between core and connectors.

Core (``migrate/``) talks to connectors only through :class:`TableEndpoint` (and, for the
files issue, a file endpoint) plus a :class:`Capabilities` record. It never imports a
driver.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from migrate.schema import TEXT_KINDS, TableSchema

Row = tuple[Any, ...]
Key = tuple[Any, ...]


@dataclass(frozen=True)
class Capabilities:
    """What an endpoint can do, declared once and negotiated by the runner.

    - ``bulk_load``: the path used for writes (``"load data"``, ``"copy"``, ``"executemany"``)
    - ``max_identifier_length``: longest table/column/index name the engine accepts
    - ``max_bind_params``: most parameters one statement may carry
    - ``index_namespace``: ``"table"`` when index names are per table (MySQL), ``"schema"``
      when they must be unique in the schema (PostgreSQL, SQLite)
    - ``hash_kinds``: checksum functions the engine has built in
    - ``cdc``: change-capture kind, or None
    - ``engine``: the engine family (``"mysql"``, ``"postgresql"``, ``"sqlite"``,
      ``"mssql"``, ``"oracle"``); two endpoints of one family keep native details
      (collations) a portable type cannot carry
    - ``snapshot_reads``: ``"scn"`` when every read can be pinned to one point in time
      on any connection (Oracle's ``AS OF SCN``): full copies then read one snapshot
    - ``empty_string_is_null``: the engine stores ``''`` as NULL (Oracle); validation
      against it applies the ``empty_is_null`` rule by itself
    - ``identifier_bytes``: ``max_identifier_length`` counts UTF-8 bytes, not characters
    """

    engine: str
    bulk_load: str
    max_identifier_length: int
    max_bind_params: int
    index_namespace: str = "table"
    hash_kinds: tuple[str, ...] = ()
    cdc: str | None = None
    snapshot_reads: str | None = None
    empty_string_is_null: bool = False
    identifier_bytes: bool = False


class Spool(Protocol):
    """Rows of one chunk, staged (on disk) in the target's load format before the write."""

    rows: int

    def add(self, rows: list[Row]) -> None: ...

    def close(self) -> None: ...

    def discard(self) -> None: ...


class TableEndpoint(Protocol):
    """A database seen as tables. One instance per connection per run; thread-safe.

    Reads are consistent per statement; every write method commits before it returns, or
    raises and commits nothing.
    """

    kind: str  # "table"
    capabilities: Capabilities

    def describe(self) -> str:
        """Engine, version and address, no secrets: ``MariaDB 10.11.19 at 127.0.0.1:3306``."""
        ...

    def list_tables(self) -> list[str]: ...

    def read_schema(self, table: str) -> TableSchema: ...

    def table_exists(self, table: str) -> bool: ...

    def count(
        self, table: str, key: tuple[str, ...] = (), lo: Key | None = None, hi: Key | None = None
    ) -> int:
        """Rows with ``lo < key <= hi`` (an open bound is None); whole table if no key."""
        ...

    def read_range(
        self,
        schema: TableSchema,
        key: tuple[str, ...],
        after: Key | None,
        limit: int | None,
        batch_rows: int,
    ) -> Iterator[list[Row]]:
        """Stream rows with key > ``after`` in key order, at most ``limit`` rows, as batches.

        Rows are raw driver values in ``schema.columns`` order; with no key, the whole
        table in no particular order. Uses a server-side cursor: memory is bounded by
        ``batch_rows`` whatever the table size.
        """
        ...

    def row_converter(self, schema: TableSchema) -> Callable[[Row], Row] | None:
        """How to turn raw rows into portable Python values, or None when they already are."""
        ...

    def read_keys(
        self, table: str, key: tuple[str, ...], lo: Key | None, hi: Key | None, batch_rows: int
    ) -> Iterator[list[Key]]: ...

    def target_schema(self, source: TableSchema, source_caps: Capabilities) -> TableSchema:
        """The schema this endpoint will create for ``source``; lossy mappings are in notes."""
        ...

    def create_table(self, schema: TableSchema) -> None: ...

    def drop_table(self, table: str) -> None: ...

    def truncate_table(self, table: str) -> None: ...

    def new_spool(self, schema: TableSchema, workdir: Path) -> Spool: ...

    def load_spool(self, schema: TableSchema, spool: Spool) -> int:
        """Write a closed spool in one transaction; returns rows written."""
        ...

    def delete_keys(self, table: str, key: tuple[str, ...], keys: Iterable[Key]) -> int:
        """Delete the rows with these keys; returns the rows deleted."""
        ...

    def delete_range(
        self, table: str, key: tuple[str, ...], lo: Key | None, hi: Key | None
    ) -> int: ...

    def existing_indexes(self, table: str) -> list[str]: ...

    def existing_foreign_keys(self, table: str) -> list[str]:
        """Names of the table's foreign keys and their ``(col, ...)->ref_table`` signatures."""
        ...

    def create_indexes(self, schema: TableSchema) -> list[str]:
        """Create secondary indexes; returns the statements run."""
        ...

    def create_foreign_keys(self, schema: TableSchema) -> list[str]: ...

    def finish_table(self, schema: TableSchema) -> None:
        """After the load: move identity/sequence counters past the loaded keys."""
        ...

    def close(self) -> None: ...


def key_order_agrees(schema: TableSchema, key: tuple[str, ...], source: Any, target: Any) -> bool:
    """Whether a key range means the same rows on both sides.

    True for keys without text columns, and between two endpoints of one engine family
    (column collations are carried there); text may sort differently across engines.
    """
    if source.engine == target.engine:
        return True
    return not any(schema.column(k).type.kind in TEXT_KINDS for k in key)


def fit_name(target: Any, name: str) -> tuple[str, str | None]:
    """``name`` as ``target`` creates it, and why it differs (see ``fit_identifier``)."""
    fit = getattr(target, "fit_identifier", None)
    return fit(name) if fit is not None else (name, None)  # type: ignore[no-any-return]


def target_names(target: Any, names: Iterable[str]) -> tuple[str, ...]:
    """Source column ``names`` as ``target`` names them (its ``fit_identifier``: a name
    too long for the target engine is cut and hashed). Deterministic, so a later run or
    ``migrate validate`` finds the same columns; an endpoint without it keeps names."""
    fit = getattr(target, "fit_identifier", None)
    return tuple(fit(n)[0] if fit is not None else n for n in names)
