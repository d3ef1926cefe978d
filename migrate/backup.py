"""Row backups on database targets: what a run keeps before it changes rows it did not write.

Before a run overwrites or deletes rows of a target table, their previous values are
copied into the table's backup table on the same target, in the same transaction as the
change, tagged with the id of the undo record that describes the change (the records and
their undo are in :mod:`migrate.rollback`; the SQL is each engine's ``undo_statements``).

Contracts:

- One backup table per target table, in the same database/schema: ``migrate_bak_<table>``
  fitted to the target's identifier limit (:func:`backup_name`); when a table of that
  name exists that this plan did not create (another plan's, or one left by a state file
  that was deleted), ``migrate_bak_<table>_2``, ``_3``, ... instead: rows are never
  written next to rows tagged with another state's ids. Every record names its backup
  table, and later runs find it by its ``drop_backup_table`` record. Its columns are
  ``migrate_undo`` (BIGINT NOT NULL: the undo record's id), ``migrate_op`` (CHAR(1) NOT
  NULL) and every column of the table with the same type, NULL-able, without keys,
  indexes, defaults or identity (:func:`backup_schema`; an engine whose portable types
  do not hold each of its own types exactly writes the native type: PostgreSQL's json,
  timetz, interval, inet, arrays, ... go through a backup table unchanged).
  ``migrate_op`` is ``u`` for a row as it was before an upsert changed it, ``i`` for
  the key of a row an upsert added (the other columns NULL), ``d`` for a row as it was
  before it was deleted, emptied or replaced, and ``m`` for the mark of a whole-table
  change (below).
- It is created the first time a record needs it, after its ``drop_backup_table`` record
  (undo and ``migrate cleanup`` drop it); a column the table gained since is added to it.
- No row is kept for a table this very run created (``drop_table``) or emptied
  (``emptied_table``): undoing that undoes every later change of the run to it.
- Upserts keep only the rows that will change (an overlap re-read of an unchanged row
  keeps nothing) and record ``restore_rows`` only when some row changes.
- Emptying or dropping a whole table (``emptied_table``, ``replaced_table``) also writes
  a mark (op ``m``, every table column NULL) in the transaction that copies its rows:
  the record is written before the change, so a run killed or failed between the two
  leaves a record whose change never happened, and its undo (which deletes or drops
  the table's rows) must then do nothing. Such records carry ``"marked": true``; their
  undo runs only when the mark is there (each engine's ``undo_statements``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from migrate.endpoints import fit_name
from migrate.schema import Column, Default, ForeignKey, Index, PType, TableSchema
from migrate.state import State

BACKUP_PREFIX = "migrate_bak_"
UNDO_COLUMN = "migrate_undo"
OP_COLUMN = "migrate_op"
#: ``migrate_op`` of the row saying a whole-table change committed (see the contract)
MARK_OP = "m"


def backup_name(target: Any, table: str, n: int = 1) -> str:
    """The ``n``-th candidate name of ``table``'s backup table on ``target``."""
    return fit_name(target, BACKUP_PREFIX + table + (f"_{n}" if n > 1 else ""))[0]


def backup_schema(name: str, table: TableSchema) -> TableSchema:
    """The backup table ``name`` for ``table`` (see the module contract)."""
    columns = [
        Column(UNDO_COLUMN, PType("int64"), nullable=False),
        Column(OP_COLUMN, PType("char", length=1), nullable=False),
        *[
            replace(c, nullable=True, default=None, autoincrement=False, notes=[])
            for c in table.columns
        ],
    ]
    return TableSchema(name, columns, collation=table.collation)


def as_dict(row: Any) -> dict[str, Any] | None:
    """A state row (``sqlite3.Row``) as a plain dict, for an undo record's detail."""
    return None if row is None else dict(zip(row.keys(), tuple(row), strict=True))


@dataclass
class RowBackup:
    """Where one change keeps the previous values of the rows it overwrites or deletes.

    The connector calls :meth:`undo_id` inside the change's transaction before it copies
    the first row into :attr:`table`; the first call writes the undo record, so a change
    that alters nothing records nothing. ``columns`` are every column of the target
    table (copied whole), ``key`` its key columns (kept alone for new rows).
    """

    table: str
    columns: list[str]
    key: list[str]
    record: Callable[[], int]
    _id: int | None = field(default=None, repr=False)

    def undo_id(self) -> int:
        if self._id is None:
            self._id = self.record()
        return self._id

    @property
    def recorded(self) -> int | None:
        """The record's id once :meth:`undo_id` wrote it, else None."""
        return self._id


class TableBackup:
    """The backups of one target table for one step of one run (see the module contract).

    ``table`` is the target table's name, ``source_table`` the step's source table (kept
    in every record, so a rollback can put the state back).
    """

    def __init__(
        self,
        state: State,
        run_id: int,
        step: str,
        connection: str,
        target: Any,
        table: str,
        source_table: str,
    ) -> None:
        self.state, self.run_id, self.step = state, run_id, step
        self.connection, self.target = connection, target
        self.table, self.source_table = table, source_table
        self.name = ""  # known once :meth:`ensure` ran
        self._schema: TableSchema | None = None

    @property
    def needed(self) -> bool:
        """False when this run created or emptied the table (its undo covers every row)."""
        return (
            self.state.execute(
                "SELECT 1 FROM undo WHERE run_id=? AND connection=? AND object=? AND"
                " action IN ('drop_table', 'emptied_table') AND status IS NULL",
                (self.run_id, self.connection, self.table),
            ).fetchone()
            is None
        )

    def ensure(self) -> TableSchema:
        """Create the backup table if it is missing (recording ``drop_backup_table``
        first), or add the columns it lacks; returns the target table's schema as read."""
        if self._schema is not None:
            return self._schema
        live = self.target.read_schema(self.table)
        ours = [
            name
            for name, detail in self.state.execute(
                "SELECT object, detail FROM undo WHERE connection=? AND"
                " action='drop_backup_table' AND status IS NULL ORDER BY id",
                (self.connection,),
            ).fetchall()
            if json.loads(detail or "{}").get("table") == self.table
        ]
        if ours:
            self.name = ours[0]
            exists = self.target.table_exists(self.name)
        else:
            n = 1
            while self.target.table_exists(name := backup_name(self.target, self.table, n)):
                n += 1  # not ours: never mixed with rows another state's ids tag
            self.name, exists = name, False
            self.state.record_undo(
                self.run_id,
                self.step,
                self.connection,
                "drop_backup_table",
                self.name,
                {"table": self.table, "source_table": self.source_table},
            )
        if not exists:
            self.target.create_backup_table(self.name, live)
        else:
            have = set(self.target.read_schema(self.name).column_names)
            missing = [c for c in backup_schema(self.name, live).columns if c.name not in have]
            if missing:
                self.target.add_backup_columns(self.name, self.table, missing)
        self._schema = live
        return live

    def _detail(self, **more: Any) -> dict[str, Any]:
        assert self._schema is not None
        return {
            "backup": self.name,
            **more,
            "table_columns": self._schema.column_names,
            "source_table": self.source_table,
        }

    def rows(self, key: tuple[str, ...]) -> RowBackup | None:
        """The backup of one upsert or delete by ``key`` (target column names), whose
        record (``restore_rows``) is written when the first row is kept; None when the
        table needs no backup (:attr:`needed`)."""
        if not self.needed:
            return None
        live = self.ensure()
        detail = self._detail(key=list(key))
        return RowBackup(
            self.name,
            live.column_names,
            list(key),
            lambda: self.state.record_undo(
                self.run_id, self.step, self.connection, "restore_rows", self.table, detail
            ),
        )

    def _whole(self, action: str, **more: Any) -> RowBackup:
        live = self.ensure()
        detail = self._detail(**more, marked=True)
        rb = RowBackup(
            self.name,
            live.column_names,
            [],
            lambda: self.state.record_undo(
                self.run_id, self.step, self.connection, action, self.table, detail
            ),
        )
        rb.undo_id()  # recorded before the change, even for an empty table
        return rb

    def empty(self) -> None:
        """Empty the table (``if_exists = "truncate"``), its rows kept first
        (``emptied_table``), in one transaction."""
        self.target.truncate_table(self.table, backup=self._whole("emptied_table"))

    def replace(self) -> None:
        """Drop the table (``if_exists = "replace"``), its rows and schema kept first
        (``replaced_table``)."""
        live = self.ensure()
        rb = self._whole("replaced_table", schema=schema_to_json(live))
        self.target.drop_table(self.table, backup=rb)


# -- a portable schema as JSON (replaced_table records) ------------------------------------
def _value_to_json(value: Any) -> Any:
    return {"decimal": str(value)} if isinstance(value, Decimal) else value


def _value_from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"decimal"}:
        return Decimal(value["decimal"])
    return value


def schema_to_json(schema: TableSchema) -> dict[str, Any]:
    """``schema`` as plain JSON data; :func:`schema_from_json` reads it back equal."""
    return {
        "name": schema.name,
        "columns": [
            {
                "name": c.name,
                "type": {
                    "kind": c.type.kind,
                    "length": c.type.length,
                    "precision": c.type.precision,
                    "scale": c.type.scale,
                    "unsigned": c.type.unsigned,
                    "values": list(c.type.values),
                },
                "nullable": c.nullable,
                "default": (
                    {"kind": c.default.kind, "value": _value_to_json(c.default.value)}
                    if c.default is not None
                    else None
                ),
                "autoincrement": c.autoincrement,
                "collation": c.collation,
            }
            for c in schema.columns
        ],
        "primary_key": list(schema.primary_key),
        "indexes": [
            {"name": ix.name, "columns": list(ix.columns), "unique": ix.unique}
            for ix in schema.indexes
        ],
        "foreign_keys": [
            {
                "name": fk.name,
                "columns": list(fk.columns),
                "ref_table": fk.ref_table,
                "ref_columns": list(fk.ref_columns),
                "on_delete": fk.on_delete,
                "on_update": fk.on_update,
            }
            for fk in schema.foreign_keys
        ],
        "collation": schema.collation,
    }


def schema_from_json(data: dict[str, Any]) -> TableSchema:
    """The :class:`TableSchema` :func:`schema_to_json` wrote."""
    columns = []
    for c in data["columns"]:
        t = c["type"]
        d = c.get("default")
        columns.append(
            Column(
                c["name"],
                PType(
                    t["kind"],
                    t.get("length"),
                    t.get("precision"),
                    t.get("scale"),
                    bool(t.get("unsigned")),
                    tuple(t.get("values") or ()),
                ),
                nullable=bool(c.get("nullable", True)),
                default=Default(d["kind"], _value_from_json(d["value"])) if d else None,
                autoincrement=bool(c.get("autoincrement")),
                collation=c.get("collation"),
            )
        )
    return TableSchema(
        data["name"],
        columns,
        tuple(data.get("primary_key") or ()),
        [Index(i["name"], tuple(i["columns"]), bool(i["unique"])) for i in data["indexes"]],
        [
            ForeignKey(
                f["name"],
                tuple(f["columns"]),
                f["ref_table"],
                tuple(f["ref_columns"]),
                f.get("on_delete"),
                f.get("on_update"),
            )
            for f in data["foreign_keys"]
        ],
        data.get("collation"),
    )
