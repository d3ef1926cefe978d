"""Change capture from the MariaDB binlog (connectors/sql/mysql_binlog.py), on the real server.

Every read registers with its own random server_id. Other test sessions may write to the
same server (other databases) meanwhile, so the tests look at the changes read, and allow
a last batch without changes (it only carries the position forward).
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa

from connectors.sql.mysql import MySQLEndpoint
from connectors.sql.mysql_binlog import (
    BinlogPosition,
    Change,
    ChangeBatch,
    check_binlog,
    current_position,
    read_changes,
    settings_from_url,
    snapshot_position,
)
from migrate.errors import ConnectorError
from migrate.schema import TableSchema


def _server_id() -> int:
    return random.randint(100_000, 4_000_000_000)


def _connect(url: str, **kwargs: Any) -> pymysql.connections.Connection:
    u = sa.make_url(url)
    args: dict[str, Any] = {
        "host": u.host,
        "port": u.port,
        "user": u.username,
        "password": u.password or "",
        "charset": "utf8mb4",
        "autocommit": True,
    }
    if u.database:
        args["database"] = u.database
    return pymysql.connect(**{**args, **kwargs})


def _run(url: str, *statements: str) -> None:
    conn = _connect(url)
    try:
        cur = conn.cursor()
        for sql in statements:
            cur.execute(sql)
    finally:
        conn.close()


def _position(url: str) -> BinlogPosition:
    conn = _connect(url)
    try:
        return current_position(conn)
    finally:
        conn.close()


@pytest.fixture
def source(mysql_db: str, tmp_path: Path) -> Iterator[MySQLEndpoint]:
    ep = MySQLEndpoint("src", mysql_db, {}, base_dir=tmp_path)
    yield ep
    ep.close()


def _schemas(ep: MySQLEndpoint, *tables: str) -> dict[str, TableSchema]:
    return {t: ep.read_schema(t) for t in tables}


def _read(
    url: str, start: BinlogPosition, schemas: dict[str, TableSchema], **kwargs: Any
) -> list[ChangeBatch]:
    u = sa.make_url(url)
    keys = {name: s.chunk_key() for name, s in schemas.items()}
    return list(
        read_changes(settings_from_url(u), _server_id(), start, u.database, schemas, keys, **kwargs)
    )


def _changes(batches: list[ChangeBatch]) -> list[tuple[str, str, tuple[Any, ...]]]:
    return [(c.table, c.op, c.values) for b in batches for c in b.changes]


def _select(ep: MySQLEndpoint, schema: TableSchema) -> list[tuple[Any, ...]]:
    """The table as the full copy reads it: SELECT through PyMySQL, then row_converter."""
    convert = ep.row_converter(schema) or tuple
    return [
        convert(r)
        for batch in ep.read_range(schema, schema.chunk_key(), None, None, 1000)
        for r in batch
    ]


def _typed(row: tuple[Any, ...]) -> tuple[tuple[str, Any], ...]:
    return tuple((type(v).__name__, v) for v in row)


def _assert_same_rows(
    expected: list[tuple[Any, ...]], got: list[tuple[Any, ...]], schema: TableSchema
) -> None:
    """Same rows, value by value, Python type included."""
    assert len(got) == len(expected), (len(got), len(expected))
    problems = [
        f"key {e[0]!r} column {col.name} ({col.type}): SELECT {a!r} != binlog {b!r}"
        for e, g in zip(expected, got, strict=True)
        for col, a, b in zip(schema.columns, e, g, strict=True)
        if type(a) is not type(b) or a != b
    ]
    assert not problems, "\n".join(p[:300] for p in problems)


# -- positions and checks ----------------------------------------------------------------------


def test_position_encode_decode_and_order() -> None:
    p = BinlogPosition("binlog.000003", 1234)
    assert p.encode() == "binlog.000003:1234"
    assert BinlogPosition.decode("binlog.000003:1234") == p
    assert hash(BinlogPosition.decode(p.encode())) == hash(p)
    assert BinlogPosition.decode("host:bin.000001:4") == BinlogPosition("host:bin.000001", 4)
    assert BinlogPosition("b.000003", 99) < BinlogPosition("b.000003", 100)
    assert BinlogPosition("b.000003", 10**9) < BinlogPosition("b.000004", 4)
    assert BinlogPosition("b.999999", 10**9) < BinlogPosition("b.1000000", 4)
    assert max(BinlogPosition("b.000010", 4), BinlogPosition("b.000009", 500)).file == "b.000010"
    for bad in ("", "binlog.000001", "binlog.000001:", ":4", "binlog.000001:x", "f:-4"):
        with pytest.raises(ValueError, match="not a binlog position"):
            BinlogPosition.decode(bad)


def test_settings_from_url() -> None:
    url = sa.make_url("mysql+pymysql://mig:s3cret@db.example:3307/erp?unix_socket=/tmp/m.sock")
    assert settings_from_url(url) == {
        "host": "db.example",
        "port": 3307,
        "user": "mig",
        "password": "s3cret",
        "charset": "utf8mb4",
        "unix_socket": "/tmp/m.sock",
    }
    assert settings_from_url("mysql://root@localhost/x")["port"] == 3306


def test_check_binlog_passes_on_binlog_server(mysql_url: str) -> None:
    conn = _connect(mysql_url)
    try:
        check_binlog(conn, "src")
        assert current_position(conn).file.startswith("binlog.")
    finally:
        conn.close()


def test_check_binlog_without_binlog(mysql2_url: str) -> None:
    conn = _connect(mysql2_url)
    try:
        with pytest.raises(ConnectorError) as err:
            check_binlog(conn, "old (MariaDB at 127.0.0.1:33307)")
        with pytest.raises(ConnectorError, match="binary log is off"):
            current_position(conn)
        assert snapshot_position(conn) is None
    finally:
        conn.close()
    message = str(err.value)
    assert message.startswith("old (MariaDB at 127.0.0.1:33307): ")
    assert "the binary log is off: start the server with log_bin and a server_id" in message
    assert "\n" not in message


def test_check_binlog_wrong_format_and_row_image(mysql_url: str) -> None:
    conn = _connect(mysql_url)
    cur = conn.cursor()
    cur.execute("SELECT @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image")
    fmt, image = cur.fetchone()
    assert (fmt, image) == ("ROW", "FULL")
    try:
        # only new sessions take the global values; the checks read @@GLOBAL
        cur.execute("SET GLOBAL binlog_format = 'MIXED'")
        cur.execute("SET GLOBAL binlog_row_image = 'MINIMAL'")
        with pytest.raises(ConnectorError) as err:
            check_binlog(conn, "src")
    finally:
        cur.execute(f"SET GLOBAL binlog_format = '{fmt}'")
        cur.execute(f"SET GLOBAL binlog_row_image = '{image}'")
        conn.close()
    message = str(err.value)
    assert "binlog_format is MIXED" in message
    assert "SET GLOBAL binlog_format = ROW" in message and "my.cnf" in message
    assert "binlog_row_image is MINIMAL" in message
    assert "SET GLOBAL binlog_row_image = FULL" in message
    assert "binary log is off" not in message and "GRANT" not in message
    assert "\n" not in message


def test_user_without_replication_privileges(mysql_url: str, mysql_db: str, tmp_path: Path) -> None:
    name = f"mt_{secrets.token_hex(5)}"
    password = secrets.token_hex(16)
    database = sa.make_url(mysql_db).database
    _run(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    ep = MySQLEndpoint("src", mysql_db, {}, base_dir=tmp_path)
    schemas = {"t": ep.read_schema("t")}
    ep.close()
    admin = _connect(mysql_url)
    cur = admin.cursor()
    user = f"'{name}'@'127.0.0.1'"
    cur.execute(f"CREATE USER {user} IDENTIFIED BY '{password}'")
    try:
        cur.execute(f"GRANT SELECT ON {database}.* TO {user}")
        conn = _connect(mysql_url, user=name, password=password)
        try:
            with pytest.raises(ConnectorError) as err:
                check_binlog(conn, "src")
        finally:
            conn.close()
        message = str(err.value)
        assert f"the user {user} lacks REPLICATION SLAVE and BINLOG MONITOR" in message
        assert f"run GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO {user}" in message

        settings = {**settings_from_url(sa.make_url(mysql_url)), "user": name}
        settings["password"] = password
        start = BinlogPosition("binlog.000001", 4)
        messages = []
        with pytest.raises(ConnectorError, match="BINLOG MONITOR") as err:
            list(read_changes(settings, _server_id(), start, database, schemas, {"t": ("id",)}))
        messages.append(str(err.value))
        cur.execute(f"GRANT BINLOG MONITOR ON *.* TO {user}")
        with pytest.raises(ConnectorError) as err:
            list(read_changes(settings, _server_id(), start, database, schemas, {"t": ("id",)}))
        messages.append(str(err.value))
        assert f"REPLICATION SLAVE ON *.* TO {user}" in messages[-1]
        with pytest.raises(ConnectorError, match="access denied") as err:
            bad = {**settings, "password": password + "x"}
            list(read_changes(bad, _server_id(), start, database, schemas, {"t": ("id",)}))
        messages.append(str(err.value))
    finally:
        cur.execute(f"DROP USER IF EXISTS {user}")
        admin.close()
    for text in [message, *messages]:
        assert password not in text and "\n" not in text


def test_snapshot_position_is_the_snapshot(mysql_db: str, source: MySQLEndpoint) -> None:
    _run(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    reader, writer = _connect(mysql_db), _connect(mysql_db)
    try:
        before = current_position(reader)
        reader.cursor().execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        snap = snapshot_position(reader)
        assert snap is not None and snap >= before
        writer.cursor().execute("INSERT INTO t VALUES (2)")
        assert snapshot_position(reader) == snap  # still the snapshot's, not the binlog's end
        assert current_position(writer) > snap
        cur = reader.cursor()
        cur.execute("SELECT id FROM t")
        assert cur.fetchall() == ((1,),)
        reader.rollback()
    finally:
        reader.close()
        writer.close()
    # the row the snapshot did not see is exactly what the binlog holds after it
    assert _changes(_read(mysql_db, snap, _schemas(source, "t"))) == [("t", "upsert", (2,))]


# -- reading changes ---------------------------------------------------------------------------


def test_changes_in_order(mysql_db: str, source: MySQLEndpoint) -> None:
    _run(
        mysql_db,
        "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), n INT)",
        "CREATE TABLE pair (a INT, b VARCHAR(5), v TEXT, PRIMARY KEY (a, b))",
        "CREATE TABLE other (id INT PRIMARY KEY)",
    )
    schemas = _schemas(source, "t", "pair")
    start = _position(mysql_db)
    conn = _connect(mysql_db, autocommit=False)
    cur = conn.cursor()
    cur.execute("INSERT INTO t VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)")
    cur.execute("INSERT INTO other VALUES (1)")
    conn.commit()
    cur.execute("UPDATE t SET n = 20 WHERE id = 2")
    cur.execute("INSERT INTO pair VALUES (1, 'x', 'v1')")
    conn.commit()
    cur.execute("UPDATE t SET id = 30 WHERE id = 3")
    cur.execute("UPDATE pair SET b = 'y' WHERE a = 1")
    cur.execute("UPDATE other SET id = 5")
    conn.commit()
    cur.execute("INSERT INTO t VALUES (4, 'gone', 4)")
    conn.rollback()
    cur.execute("DELETE FROM t WHERE id = 1")
    cur.execute("DELETE FROM other")
    conn.commit()
    cur.execute("UPDATE t SET id = id + 100, name = 'moved' WHERE id IN (2, 30)")
    conn.commit()
    conn.close()
    assert _changes(_read(mysql_db, start, schemas)) == [
        ("t", "upsert", (1, "a", 1)),
        ("t", "upsert", (2, "b", 2)),
        ("t", "upsert", (3, "c", 3)),
        ("t", "upsert", (2, "b", 20)),
        ("pair", "upsert", (1, "x", "v1")),
        ("t", "delete", (3,)),
        ("t", "upsert", (30, "c", 3)),
        ("pair", "delete", (1, "x")),
        ("pair", "upsert", (1, "y", "v1")),
        ("t", "delete", (1,)),
        ("t", "delete", (2,)),
        ("t", "upsert", (102, "moved", 20)),
        ("t", "delete", (30,)),
        ("t", "upsert", (130, "moved", 3)),
    ]


TYPES_DDL = """CREATE TABLE types (
    id INT PRIMARY KEY,
    ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
    mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
    bi BIGINT, biu BIGINT UNSIGNED, bo BOOLEAN,
    bt BIT(1), b12 BIT(12), b64 BIT(64),
    de DECIMAL(38,10), d0 DECIMAL(10,0), d2 DECIMAL(5,2) UNSIGNED,
    fl FLOAT, db DOUBLE, fs FLOAT(7,3), ds DOUBLE(12,4),
    dd DATE, dtm DATETIME, dtm6 DATETIME(6), dtm3 DATETIME(3),
    ts TIMESTAMP(6) NULL, ts0 TIMESTAMP NULL,
    tm TIME, tm6 TIME(6), tm1 TIME(1), tm3 TIME(3), tm4 TIME(4), yr YEAR,
    ch CHAR(10), vc VARCHAR(200), tx TEXT, ttx TINYTEXT, ltx LONGTEXT,
    lat VARCHAR(20) CHARACTER SET latin1, latc CHAR(5) CHARACTER SET latin1,
    bn BINARY(8), vb VARBINARY(20), bl BLOB, lbl LONGBLOB,
    en ENUM('a', 'b', '中文', 'it''s', 'b\\\\s'), st SET('x', 'y', 'z', 'o''k', 'b\\\\s'),
    js JSON
) CHARACTER SET utf8mb4"""

TYPES_ROWS = [
    """INSERT INTO types VALUES (1, -128, 255, -32768, 65535, -8388608, 16777215,
    -2147483648, 4294967295, -9223372036854775808, 18446744073709551615, 1,
    b'1', b'101010101010', b'1111111111111111111111111111111111111111111111111111111111111111',
    -12345.6789012345, 9999999999, 999.99, 1.1, 0.1, 1234.567, 12345678.1234,
    '2024-02-29', '9999-12-31 23:59:59', '2024-02-29 12:34:56.000001', '2024-01-01 00:00:00.5',
    '2038-01-19 03:14:07.999999', '1970-01-01 00:00:01',
    '-838:59:59', '-00:00:01.5', '23:59:59.9', '-00:00:00.001', '-12:00:00.0001', 0,
    'ab  ', ' 中文😀🇨🇳 ', 'tab\\t nl\\n', 'tiny', 'long 😀', 'café', 'é ',
    X'0100', X'00ff00', X'000000', X'', 'b', 'x,z', '{"k": [1, 2.5, "中文"]}')""",
    """INSERT INTO types (id, yr, fl, tm6, tm, en, st, fs, ds, tm3, tm4, bt, b12, dd)
    VALUES (2, 2155, 123456789, '-12:34:56.123456', '838:59:59', '中文', '', -1.5, -0.0001,
    '-838:59:58.999', '00:00:00.0001', b'0', b'0', '1000-01-01')""",
    """INSERT INTO types (id, fl, db, tm6, en, st, bn, vb, ch)
    VALUES (3, 3.4028234e38, 1.7976931348623157e308, '-00:00:00.000001', 'it''s', 'o''k,x',
    X'00', X'', '')""",
    "INSERT INTO types (id, fl, db, tm6, bn, en, st) VALUES (4, 1e-30, 5e-324,"
    " '-01:00:00.999999', X'0000000000000001', 'b\\\\s', 'b\\\\s,y')",
    "INSERT INTO types (id, fl, tm1, dtm3, d2) VALUES (5, -0.333333333, '-00:00:00.1',"
    " '2000-01-01 00:00:00.001', 0)",
    "INSERT INTO types (id) VALUES (6)",
]
# Values only a non-strict sql_mode lets in (MariaDB's default has no NO_ZERO_DATE): PyMySQL
# returns the text of invalid dates, and the binlog reader must return the same.
LOOSE_ROWS = [
    """INSERT INTO types (id, dd, dtm, dtm6, ts0, ts, dtm3, en)
    VALUES (7, '0000-00-00', '0000-00-00 00:00:00', '2024-00-00 00:00:00', 0, 0,
    '0000-01-01 10:00:00.5', 'not a member')""",
    "INSERT INTO types (id, dd, dtm6) VALUES (8, '2024-02-00', '2024-02-30 01:02:03.000004')",
]


@pytest.fixture(params=["NO_LOG", "FULL"])
def row_metadata(request: pytest.FixtureRequest, mysql_url: str) -> Iterator[str]:
    """binlog_row_metadata for the test: NO_LOG (no column names in the binlog) or FULL."""
    conn = _connect(mysql_url)
    cur = conn.cursor()
    cur.execute("SELECT @@GLOBAL.binlog_row_metadata")
    (old,) = cur.fetchone()
    cur.execute(f"SET GLOBAL binlog_row_metadata = {request.param}")
    try:
        yield request.param
    finally:
        cur.execute(f"SET GLOBAL binlog_row_metadata = {old}")
        conn.close()


def test_values_equal_select(mysql_db: str, source: MySQLEndpoint, row_metadata: str) -> None:
    from edge_data import EDGE_TABLE, create_edge_table  # imports the CLI: only here

    start = _position(mysql_db)  # new sessions: they log with row_metadata
    create_edge_table("mysql", mysql_db)
    _run(mysql_db, TYPES_DDL, *TYPES_ROWS, "SET SESSION sql_mode = ''", *LOOSE_ROWS)
    schemas = _schemas(source, EDGE_TABLE, "types")
    inserted = {name: _select(source, s) for name, s in schemas.items()}
    # update every row: the key of each types row, a value of each edge row
    _run(
        mysql_db,
        "SET SESSION sql_mode = ''",
        "UPDATE types SET id = id + 1000 ORDER BY id DESC",
        f"UPDATE {EDGE_TABLE} SET s = CONCAT('u', COALESCE(s, ''))",
    )
    updated = {name: _select(source, s) for name, s in schemas.items()}
    assert len(inserted["types"]) == 8 and len(inserted[EDGE_TABLE]) == 10

    changes = _changes(_read(mysql_db, start, schemas))
    for name, schema in schemas.items():
        mine = [(op, values) for table, op, values in changes if table == name]
        rows = len(inserted[name])
        assert all(op == "upsert" for op, _ in mine[:rows])
        _assert_same_rows(inserted[name], [v for _, v in mine[:rows]], schema)
        state: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for op, values in mine:
            if op == "upsert":
                state[values[:1]] = values
            else:
                del state[values]
        _assert_same_rows(updated[name], sorted(state.values(), key=lambda r: r[0]), schema)
    deletes = [values for table, op, values in changes if op == "delete"]
    assert deletes == [(k,) for k in range(8, 0, -1)]  # types: key changes, in update order


def test_batches_end_at_commits_and_positions_resume(mysql_db: str, source: MySQLEndpoint) -> None:
    _run(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY, txn INT NOT NULL)")
    schemas = _schemas(source, "t")
    sizes = [1, 3, 2, 4, 1, 1, 5, 2]
    start = _position(mysql_db)
    conn = _connect(mysql_db, autocommit=False)
    cur = conn.cursor()
    next_id = 0
    for txn, size in enumerate(sizes):
        for _ in range(size):
            next_id += 1
            cur.execute("INSERT INTO t VALUES (%s, %s)", (next_id, txn))
        conn.commit()
    conn.close()

    batches = _read(mysql_db, start, schemas, max_changes=3)
    everything = _changes(batches)
    assert [v for _, _, v in everything] == [
        (i + 1, txn) for i, txn in enumerate(t for t, n in enumerate(sizes) for _ in range(n))
    ]
    with_changes = [b for b in batches if b.changes]
    assert [b for b in batches if not b.changes] in ([], [batches[-1]])
    assert 2 < len(with_changes) < len(sizes)  # several transactions per batch, not all in one
    for b in with_changes:
        txns = [c.values[1] for c in b.changes]
        for txn in set(txns):  # whole transactions only
            assert txns.count(txn) == sizes[txn], (txns, b.position)
        assert len(b.changes) - sizes[txns[-1]] < 3  # the batch was full only with its last
        assert isinstance(b.event_time, dt.datetime) and b.event_time.tzinfo == dt.UTC
        assert abs(b.event_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    positions = [b.position for b in batches]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert start < positions[0] and positions[-1] <= _position(mysql_db)
    done = 0
    for b in batches:  # a read from each batch's position yields exactly what follows it
        done += len(b.changes)
        assert _changes(_read(mysql_db, b.position, schemas)) == everything[done:]


def test_from_current_position_yields_no_change(mysql_db: str, source: MySQLEndpoint) -> None:
    _run(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)")
    schemas = _schemas(source, "t")
    here = _position(mysql_db)
    assert _changes(_read(mysql_db, here, schemas)) == []
    _run(mysql_db, "INSERT INTO t VALUES (3)")
    assert _changes(_read(mysql_db, here, schemas)) == [("t", "upsert", (3,))]


def test_a_large_transaction_is_one_batch(mysql_db: str, source: MySQLEndpoint) -> None:
    _run(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY)")
    schemas = _schemas(source, "t")
    start = _position(mysql_db)
    conn = _connect(mysql_db, autocommit=False)
    cur = conn.cursor()
    for i in range(1, 41):
        cur.execute("INSERT INTO t VALUES (%s)", (i,))
    cur.execute("DELETE FROM t WHERE id > 35")
    conn.commit()
    cur.execute("INSERT INTO t VALUES (100)")
    conn.commit()
    conn.close()
    batches = [b for b in _read(mysql_db, start, schemas, max_changes=10) if b.changes]
    assert [len(b.changes) for b in batches] == [45, 1]
    assert batches[0].changes[-1] == Change("t", "delete", (40,))
    assert batches[1].changes == [Change("t", "upsert", (100,))]


def test_read_ends_while_a_writer_keeps_writing(mysql_db: str, source: MySQLEndpoint) -> None:
    _run(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY)")
    schemas = _schemas(source, "t")
    start = _position(mysql_db)
    stop = threading.Event()
    written = [0]

    def write() -> None:
        conn = _connect(mysql_db)
        cur = conn.cursor()
        while not stop.is_set():
            cur.execute("INSERT INTO t VALUES (%s)", (written[0] + 1,))
            written[0] += 1
        conn.close()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    result: list[list[ChangeBatch]] = []
    try:
        while written[0] < 200:
            time.sleep(0.01)
        reader = threading.Thread(
            target=lambda: result.append(_read(mysql_db, start, schemas)), daemon=True
        )
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "read_changes did not stop while rows kept coming"
        assert writer.is_alive()
    finally:
        stop.set()
        writer.join(timeout=10)
    ids = [v[0] for _, _, v in _changes(result[0])]
    assert len(ids) >= 200 and ids == list(range(1, len(ids) + 1))


def test_table_changed_shape(mysql_db: str, source: MySQLEndpoint) -> None:
    _run(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY, a INT)")
    start = _position(mysql_db)
    _run(mysql_db, "INSERT INTO t VALUES (1, 1)")
    old = _schemas(source, "t")
    _run(mysql_db, "ALTER TABLE t ADD COLUMN b INT", "INSERT INTO t VALUES (2, 2, 2)")
    database = sa.make_url(mysql_db).database
    # the schema read before the ALTER no longer matches the table
    with pytest.raises(ConnectorError, match=rf"table {database}\.t changed shape") as err:
        _read(mysql_db, start, old)
    assert "migrate run --restart" in str(err.value)
    # the schema read after it does not match the rows logged before it
    with pytest.raises(ConnectorError, match=r"the binlog has 2 columns, the schema 3"):
        _read(mysql_db, start, _schemas(source, "t"))


def test_positions_the_server_does_not_have(mysql_db: str, source: MySQLEndpoint) -> None:
    _run(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY)")
    schemas = _schemas(source, "t")
    with pytest.raises(ConnectorError) as err:
        _read(mysql_db, BinlogPosition("binlog.000000", 4), schemas)
    message = str(err.value)
    assert "binlog.000000:4 is gone from the server (its binlog file was purged)" in message
    assert message.endswith("a full copy is needed: migrate run --restart")
    with pytest.raises(ConnectorError, match="past the end of the server's binlog"):
        _read(mysql_db, BinlogPosition("binlog.900000", 4), schemas)


def test_table_without_key_is_refused(mysql_db: str, source: MySQLEndpoint) -> None:
    _run(mysql_db, "CREATE TABLE t (a INT, b INT)")
    with pytest.raises(ConnectorError, match=r"\.t has no primary key"):
        _read(mysql_db, _position(mysql_db), _schemas(source, "t"))


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("TRUNCATE TABLE t", "table t was changed at the source by TRUNCATE"),
        # a table that is gone is found before reading: its columns are checked first
        ("RENAME TABLE t TO t_old", ".t changed shape during the migration"),
        ("DROP TABLE IF EXISTS other, t", ".t changed shape during the migration"),
    ],
)
def test_truncate_drop_or_rename_of_a_tracked_table_stops_the_read(
    mysql_db: str, source: MySQLEndpoint, statement: str, expected: str
) -> None:
    """Row events cannot express these: the read stops and says how to recover."""
    _run(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY)", "CREATE TABLE other (id INT)")
    schemas = _schemas(source, "t")
    start = _position(mysql_db)
    _run(mysql_db, "INSERT INTO t VALUES (1)", statement)
    with pytest.raises(ConnectorError) as err:
        _read(mysql_db, start, schemas)
    assert expected in str(err.value)
    assert str(err.value).endswith("migrate run --restart")


def test_ddl_on_other_tables_is_ignored(mysql_db: str, source: MySQLEndpoint) -> None:
    _run(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY)", "CREATE TABLE other (id INT)")
    schemas = _schemas(source, "t")
    start = _position(mysql_db)
    _run(
        mysql_db,
        "ALTER TABLE other ADD COLUMN t INT",
        "TRUNCATE other",
        "INSERT INTO t VALUES (1)",
    )
    changes = [c.values for b in _read(mysql_db, start, schemas) for c in b.changes]
    assert changes == [(1,)]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("/* app:x */ TRUNCATE TABLE t", ("TRUNCATE", "t")),
        ("ALTER /* c */ TABLE t ADD c INT", ("ALTER", "t")),
        ("CREATE OR REPLACE TABLE t (id INT)", ("CREATE OR REPLACE", "t")),
        ("ALTER TABLE x RENAME TO t", ("ALTER", "t")),
        ("DROP TABLE IF EXISTS `t` /* generated by server */", ("DROP", "t")),
        ("TRUNCATE db.t -- done", ("TRUNCATE", "t")),
        ("ALTER TABLE x ADD COLUMN t INT", None),
        ("ALTER TABLE x RENAME COLUMN t TO u", None),
        ("TRUNCATE other.t", None),
        ("CREATE TABLE IF NOT EXISTS t2 (id INT)", None),
    ],
)
def test_statements_that_rewrite_a_tracked_table(query: str, found: tuple[str, str] | None) -> None:
    from connectors.sql.mysql_binlog import _ddl_on

    assert _ddl_on(query, "db", "db", {"t": "t"}) == found
