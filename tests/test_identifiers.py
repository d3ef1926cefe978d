"""Identifier rules: names too long for the target engine, reserved words, case.

Unit tests check :meth:`SQLEndpoint.fit_identifier` and ``identifier_note`` on offline
endpoints of every engine. The live test copies a MySQL table whose table, key and column
names are 64 characters long (MySQL's limit) to PostgreSQL (63): the run, catch-up passes
with updates and deletes, and ``migrate validate`` must all find the fitted names, and
the run log names each change.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from edge_data import execute, run_json, table_results
from sqlalchemy.pool import NullPool
from sqlrecorder import offline
from test_incremental import assert_ok, catch_up, plan_file

from connectors.sql.mysql import MySQLEndpoint
from connectors.sql.postgresql import PostgreSQLEndpoint
from migrate.cli import main
from migrate.endpoints import target_names
from migrate.schema import Column, PType, TableSchema

PG_URL = "postgresql+psycopg://u@127.0.0.1/db"
MYSQL_URL = "mysql+pymysql://u@127.0.0.1/db"


def pg() -> PostgreSQLEndpoint:
    return offline(PostgreSQLEndpoint, PG_URL, (15, 0))[0]


def test_a_name_within_the_limit_is_kept() -> None:
    assert pg().fit_identifier("x" * 63) == ("x" * 63, None)


def test_a_long_name_is_cut_and_ends_in_a_hash_of_the_whole_name() -> None:
    name = "customer_" + "a" * 60
    fitted, why = pg().fit_identifier(name)
    assert len(fitted) == 63
    assert re.fullmatch(r"customer_a{45}_[0-9a-f]{8}", fitted)
    assert why == f"name longer than 63 characters: created as {fitted}"
    assert pg().fit_identifier(name) == (fitted, why)  # the same every time


def test_two_long_names_sharing_their_first_63_characters_stay_apart() -> None:
    a, b = "x" * 63 + "_one", "x" * 63 + "_two"
    assert pg().fit_identifier(a)[0] != pg().fit_identifier(b)[0]


def test_limits_in_bytes_count_utf8() -> None:
    """An engine whose limit counts bytes (Oracle) cuts a Chinese name at a character
    boundary, with the whole result within the limit in UTF-8."""
    from connectors.sql.oracle import OracleEndpoint

    ep = offline(OracleEndpoint, "oracle+oracledb://u@127.0.0.1:1521/?service_name=X", (23, 0))[0]
    name = "订单" * 30  # 60 characters, 180 bytes
    fitted, why = ep.fit_identifier(name)
    assert len(fitted.encode()) <= 128
    assert fitted.startswith("订单订单")
    assert why is not None and "128 bytes" in why
    old = offline(OracleEndpoint, "oracle+oracledb://u@127.0.0.1:1521/?service_name=X", (12, 1))
    assert len(old[0].fit_identifier("order_line_items_by_customer_id")[0].encode()) <= 30


def test_reserved_words_of_the_target_are_noted_with_the_quoted_name() -> None:
    note = pg().identifier_note("user")
    assert note == 'user is a reserved word in PostgreSQL: created quoted, as "user"'
    assert pg().identifier_note("customer") is None


def test_target_schema_fits_columns_keys_indexes_and_foreign_keys() -> None:
    long_id = "id_" + "i" * 61  # 64 characters
    schema = TableSchema(
        "orders",
        [Column(long_id, PType("int64"), nullable=False), Column("user", PType("int32"))],
        primary_key=(long_id,),
    )
    from migrate.schema import ForeignKey, Index

    schema.indexes.append(Index("ix_" + "z" * 70, (long_id, "user")))
    schema.foreign_keys.append(ForeignKey("fk_user", ("user",), "users", (long_id,)))
    t = pg().target_schema(schema, MySQLEndpoint.capabilities, "orders")
    fitted = pg().fit_identifier(long_id)[0]
    assert [c.name for c in t.columns] == [fitted, "user"]
    assert t.primary_key == (fitted,)
    assert t.indexes[0].columns == (fitted, "user")
    assert len(t.indexes[0].name) == 63
    assert t.foreign_keys[0].ref_columns == (fitted,)
    assert t.columns[0].notes == [f"name longer than 63 characters: created as {fitted}"]
    assert t.columns[1].notes == [
        'user is a reserved word in PostgreSQL: created quoted, as "user"'
    ]
    # the same engine on both sides: a reserved word is nothing new
    same = pg().target_schema(schema, PostgreSQLEndpoint.capabilities, "orders")
    assert same.columns[1].notes == []
    assert target_names(pg(), (long_id, "user")) == (fitted, "user")


# -- live: MySQL (64) to PostgreSQL (63) ---------------------------------------------------

TABLE = "t" * 64
KEY = "k" * 64
COL = "c" * 30 + "_" + "d" * 33
CURSOR = "updated_at"


def _pg_columns(url: str, table: str) -> list[str]:
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        return [c["name"] for c in sa.inspect(eng).get_columns(table)]
    finally:
        eng.dispose()


def test_long_names_survive_copy_catch_up_deletes_and_validate(
    tmp_path: Path, mysql_db: str, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    execute(
        mysql_db,
        f"CREATE TABLE `{TABLE}` (`{KEY}` INT PRIMARY KEY, `{COL}` VARCHAR(20) NULL,"
        f" `{CURSOR}` DATETIME(6) NOT NULL, INDEX `ix_{COL[:40]}` (`{COL}`))",
        rows=[
            (
                f"INSERT INTO `{TABLE}` VALUES (:k, :c, :u)",
                [{"k": i, "c": f"v{i}", "u": f"2026-03-01 12:00:{i:02d}"} for i in range(1, 41)],
            )
        ],
    )
    plan = plan_file(
        tmp_path,
        mysql_db,
        pg_db,
        chunk_rows=7,
        step=f'mode = "full+incremental"\ncursor = "{CURSOR}"\ndeletes = "detect"\n'
        'validate = ["count", "checksum"]\n',
    )
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    ep = pg()
    table, key, col = (ep.fit_identifier(n)[0] for n in (TABLE, KEY, COL))
    assert len(table) == len(key) == len(col) == 63
    assert _pg_columns(pg_db, table) == [key, col, CURSOR]
    t = table_results(result)[TABLE]
    assert t["target_name"] == table
    notes = " | ".join(t["notes"])
    assert f"table name longer than 63 characters: created as {table}" in notes
    assert f"{KEY}: name longer than 63 characters: created as {key}" in notes

    execute(
        mysql_db,
        f"UPDATE `{TABLE}` SET `{COL}` = 'changed', `{CURSOR}` = '2026-03-02'"
        f" WHERE `{KEY}` IN (3, 4)",
        f"DELETE FROM `{TABLE}` WHERE `{KEY}` IN (10, 11, 12)",
        f"INSERT INTO `{TABLE}` VALUES (41, 'new', '2026-03-02 00:00:01')",
    )
    code, result = run_json(plan, capsys)
    assert_ok(code, result)
    pr = catch_up(result, TABLE)
    assert (pr["changed"], pr["deleted"]) == (3, 3), pr

    capsys.readouterr()
    assert main(["validate", str(plan), "--json"]) == 0
    check = json.loads(capsys.readouterr().out)
    (only,) = check["tables"]
    assert only["status"] == "equal", only
    assert only["source_rows"] == only["target_rows"] == 38

    # a change only on the target is found under the target's names
    eng = sa.create_engine(pg_db, poolclass=NullPool)
    with eng.begin() as conn:
        conn.exec_driver_sql(f'UPDATE "{table}" SET "{col}" = \'edited\' WHERE "{key}" = 5')
    eng.dispose()
    capsys.readouterr()
    assert main(["validate", str(plan), "--json"]) == 3
    (only,) = json.loads(capsys.readouterr().out)["tables"]
    assert only["changed"] == 1
    assert only["diffs"][0]["columns"][0]["column"] == COL
