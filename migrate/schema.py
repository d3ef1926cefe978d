"""Portable table schema: what a table endpoint reads from a source and creates on a target.

Core never sees a driver's or a dialect's types; each SQL engine module maps its native
types to :class:`PType` and back (a plain dict per engine, see ``connectors/sql``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Every portable type kind. ``length`` is characters for text kinds and bytes for binary
#: kinds (None = unbounded); ``precision`` is digits for decimal and fractional-second
#: digits for time kinds; ``scale`` is decimal places.
KINDS = frozenset(
    {
        "boolean",
        "int8",
        "int16",
        "int32",
        "int64",
        "decimal",
        "float32",
        "float64",
        "char",
        "varchar",
        "text",
        "binary",
        "varbinary",
        "blob",
        "date",
        "time",
        "datetime",
        "timestamptz",
        "json",
        "uuid",
        "enum",
    }
)

#: kinds whose values are text, binary or whole numbers (the groups several modules test)
TEXT_KINDS = frozenset({"char", "varchar", "text", "enum", "json", "uuid"})
BINARY_KINDS = frozenset({"binary", "varbinary", "blob"})
INT_KINDS = frozenset({"int8", "int16", "int32", "int64"})


@dataclass(frozen=True)
class PType:
    """A column type independent of any engine.

    Contract: two engines that both map a column to the same PType store the same set of
    values exactly (a mapping that cannot must say so through :attr:`Column.notes`).
    """

    kind: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    unsigned: bool = False
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown portable type kind {self.kind!r}")

    def __str__(self) -> str:
        args: list[str] = []
        if self.kind == "decimal" and self.precision is not None:
            args = [str(self.precision), str(self.scale or 0)]
        elif self.kind in ("time", "datetime", "timestamptz") and self.precision is not None:
            args = [str(self.precision)]
        elif self.length is not None:
            args = [str(self.length)]
        elif self.values:
            args = [repr(v) for v in self.values]
        text = self.kind + (f"({', '.join(args)})" if args else "")
        return text + (" unsigned" if self.unsigned else "")


@dataclass(frozen=True)
class Default:
    """A column default: a literal value (as SQL text of the literal) or a known function.

    ``kind`` is ``"literal"`` (``value`` holds the Python value: str, int, Decimal, ...) or
    ``"current_timestamp"``. Defaults the tool cannot carry across engines are dropped and
    reported by the engine module, never guessed.
    """

    kind: str
    value: object = None


@dataclass
class Column:
    """A column of a :class:`TableSchema`; ``notes`` lists what a type mapping changed."""

    name: str
    type: PType
    nullable: bool = True
    default: Default | None = None
    autoincrement: bool = False
    collation: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Index:
    """A secondary index (created on the target after the data is in)."""

    name: str
    columns: tuple[str, ...]
    unique: bool = False


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key; created on the target after every table of the step is loaded."""

    name: str | None
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str | None = None
    on_update: str | None = None


@dataclass
class TableSchema:
    """One table as a source reports it.

    ``primary_key`` may be empty; :meth:`chunk_key` then falls back to a unique index whose
    columns are all NOT NULL, and to ``()`` when there is none (the table is copied as one
    chunk and cannot be resumed part way).
    """

    name: str
    columns: list[Column]
    primary_key: tuple[str, ...] = ()
    indexes: list[Index] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    collation: str | None = None

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def chunk_key(self) -> tuple[str, ...]:
        """The columns to chunk and order by: the primary key, else a NOT NULL unique key."""
        if self.primary_key:
            return self.primary_key
        by_name = {c.name: c for c in self.columns}
        for index in sorted(self.indexes, key=lambda i: len(i.columns)):
            if index.unique and all(not by_name[c].nullable for c in index.columns):
                return index.columns
        return ()
