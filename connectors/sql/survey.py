"""What a dry run asks a database: statistics, privileges, round trips and a read probe.

Every function takes an open SQL endpoint (:class:`connectors.sql.base.SQLEndpoint`) and
dispatches on ``endpoint.capabilities.engine`` (``mysql`` — MariaDB too —, ``postgresql``,
``sqlite``, ``mssql``, ``oracle``). Nothing here writes: statements are catalog reads and
``SELECT``s run on the endpoint's raw DBAPI connection (:meth:`raw`), each rolled back.

Contracts:

- :func:`latency` — the median of ``samples`` round trips of the engine's cheapest
  statement (``SELECT 1``; Oracle ``SELECT 1 FROM DUAL``) on one connection, after one
  warm-up; seconds.
- :func:`table_stats` — rows and bytes per table from the engine's statistics, without
  reading the tables (``None`` where the engine has none: the caller may count):
  MySQL/MariaDB ``information_schema.TABLES`` (``TABLE_ROWS``, an estimate for InnoDB;
  ``DATA_LENGTH``), PostgreSQL ``pg_class.reltuples`` (``-1``: never analysed → None) and
  ``pg_table_size``, SQLite ``sqlite_stat1`` (after ``ANALYZE``) and the ``dbstat`` table
  when compiled in, SQL Server ``sys.partitions``/``sys.allocation_units`` (heap or
  clustered index), Oracle ``USER_TABLES.NUM_ROWS`` and ``USER_SEGMENTS.BYTES``.
- :func:`read_probe` — reads a table's first rows (in key order when it has a key) for at
  most ``seconds`` or ``max_bytes`` (value sizes as Python sees them: an approximation of
  the bytes on the wire); returns rows, bytes, seconds and the rates.
- :func:`privileges` — for each :class:`Need` (a portable privilege on a table, or on the
  database when the table does not exist yet) whether the login holds it: True, False,
  or None when the engine cannot tell (a MySQL role, an unknown engine); rows grouped per
  native privilege, each saying how it was found out.
- :func:`write_settings` — server settings a target's write path needs that are off
  (MySQL/MariaDB ``local_infile`` for ``LOAD DATA LOCAL``), each a line saying what to do.
- :func:`cdc_rights` — MySQL/MariaDB change capture: the grants and binlog settings
  :func:`connectors.sql.mysql_binlog.check_binlog` checks, as one result.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from migrate.errors import ConnectorError
from migrate.schema import TableSchema

PING = {"oracle": "SELECT 1 FROM DUAL"}

STATS_SQL = {
    "mysql": (
        "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH FROM information_schema.TABLES"
        " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
    ),
    "postgresql": (
        "SELECT c.relname, c.reltuples, pg_table_size(c.oid) FROM pg_catalog.pg_class AS c"
        " JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
    ),
    "mssql": (
        "SELECT t.name,"
        " (SELECT SUM(p.rows) FROM sys.partitions AS p"
        " WHERE p.object_id = t.object_id AND p.index_id IN (0, 1)),"
        " (SELECT SUM(a.used_pages) FROM sys.partitions AS p"
        " JOIN sys.allocation_units AS a ON a.container_id = p.partition_id"
        " WHERE p.object_id = t.object_id AND p.index_id IN (0, 1)) * 8192"
        " FROM sys.tables AS t WHERE t.schema_id = SCHEMA_ID()"
    ),
    "oracle": (
        "SELECT t.table_name, t.num_rows, s.bytes FROM user_tables t LEFT JOIN"
        " (SELECT segment_name, SUM(bytes) AS bytes FROM user_segments"
        " WHERE segment_type LIKE 'TABLE%' GROUP BY segment_name) s"
        " ON s.segment_name = t.table_name"
    ),
}
SQLITE_STAT1 = "SELECT tbl, stat FROM sqlite_stat1"
SQLITE_DBSTAT = "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"

#: MySQL/MariaDB: the grants of the login and the settings a target's bulk path needs
MYSQL_GRANTS = "SHOW GRANTS"
MYSQL_SESSION = "SELECT DATABASE(), CURRENT_USER()"
MYSQL_LOCAL_INFILE = "SELECT @@GLOBAL.local_infile"
#: PostgreSQL: the login's rights on the current schema and on each of its tables
PG_SCHEMA_PRIVS = (
    "SELECT current_schema(), has_schema_privilege(current_schema(), 'CREATE'),"
    " has_schema_privilege(current_schema(), 'USAGE')"
)
PG_TABLE_PRIVS = (
    "SELECT c.relname, has_table_privilege(c.oid, 'SELECT'),"
    " has_table_privilege(c.oid, 'INSERT'), has_table_privilege(c.oid, 'UPDATE'),"
    " has_table_privilege(c.oid, 'DELETE'), pg_has_role(c.relowner, 'USAGE')"
    " FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n"
    " ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
)
#: SQL Server: database and schema permissions (new tables), then each table's
MSSQL_SCHEMA_PRIVS = (
    "SELECT SCHEMA_NAME(), HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'CREATE TABLE'),"
    " HAS_PERMS_BY_NAME(SCHEMA_NAME(), 'SCHEMA', 'ALTER'),"
    " HAS_PERMS_BY_NAME(SCHEMA_NAME(), 'SCHEMA', 'SELECT'),"
    " HAS_PERMS_BY_NAME(SCHEMA_NAME(), 'SCHEMA', 'INSERT'),"
    " HAS_PERMS_BY_NAME(SCHEMA_NAME(), 'SCHEMA', 'UPDATE'),"
    " HAS_PERMS_BY_NAME(SCHEMA_NAME(), 'SCHEMA', 'DELETE')"
)
MSSQL_TABLE_PRIVS = (
    "SELECT t.name,"
    " HAS_PERMS_BY_NAME(QUOTENAME(SCHEMA_NAME(t.schema_id)) + '.' + QUOTENAME(t.name),"
    " 'OBJECT', 'SELECT'),"
    " HAS_PERMS_BY_NAME(QUOTENAME(SCHEMA_NAME(t.schema_id)) + '.' + QUOTENAME(t.name),"
    " 'OBJECT', 'INSERT'),"
    " HAS_PERMS_BY_NAME(QUOTENAME(SCHEMA_NAME(t.schema_id)) + '.' + QUOTENAME(t.name),"
    " 'OBJECT', 'UPDATE'),"
    " HAS_PERMS_BY_NAME(QUOTENAME(SCHEMA_NAME(t.schema_id)) + '.' + QUOTENAME(t.name),"
    " 'OBJECT', 'DELETE'),"
    " HAS_PERMS_BY_NAME(QUOTENAME(SCHEMA_NAME(t.schema_id)) + '.' + QUOTENAME(t.name),"
    " 'OBJECT', 'ALTER')"
    " FROM sys.tables AS t WHERE t.schema_id = SCHEMA_ID()"
)
#: Oracle: the system privileges of the session, and a quota on the default tablespace
ORACLE_PRIVS = "SELECT privilege FROM session_privs"
ORACLE_QUOTA = (
    "SELECT COUNT(*) FROM user_ts_quotas q JOIN user_users u"
    " ON u.default_tablespace = q.tablespace_name WHERE q.max_bytes <> 0"
)

#: the portable privileges a :class:`Need` names, and their usual SQL names
PORTABLE = ("read", "create", "insert", "update", "delete", "drop", "index", "alter")
_NATIVE = {
    "read": "SELECT",
    "create": "CREATE",
    "insert": "INSERT",
    "update": "UPDATE",
    "delete": "DELETE",
    "drop": "DROP",
    "index": "INDEX",
    "alter": "ALTER",
}


@dataclass(frozen=True)
class TableStats:
    """A table's size as the statistics say (None: unknown)."""

    rows: int | None
    bytes: int | None


@dataclass(frozen=True)
class Need:
    """A portable privilege (:data:`PORTABLE`) the run needs. ``table`` is the table it
    is needed on; None (or a table that does not exist yet, ``exists=False``) means it is
    needed on the database/schema, where new tables are created. ``why`` says what for."""

    privilege: str
    table: str | None
    why: str
    exists: bool = True
    #: a missing privilege stops the run (False: only rollback would miss it)
    blocking: bool = True


def _engine(endpoint: Any) -> str:
    return str(endpoint.capabilities.engine)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, (bytes, bytearray)) else str(v)


def _fetch(endpoint: Any, sql: str, doing: str) -> list[tuple[Any, ...]]:
    """All rows of one read-only statement on a raw connection (rolled back)."""
    with endpoint.errors(doing), endpoint.raw() as conn:
        cur = conn.cursor()
        try:
            cur.execute(sql)
            rows = [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()
        conn.rollback()
    return rows


def _normalizer(endpoint: Any) -> Any:
    """How the catalog's names become the names ``list_tables`` gives (Oracle: upper-case
    names read as lower case, as SQLAlchemy does)."""
    dialect = endpoint.dialect
    if getattr(dialect, "requires_name_normalize", False):
        return lambda n: dialect.normalize_name(_text(n))
    return _text


# -- latency ---------------------------------------------------------------------------
def latency(endpoint: Any, samples: int = 5) -> float:
    """The median round trip of ``SELECT 1`` in seconds (see the module contract)."""
    sql = PING.get(_engine(endpoint), "SELECT 1")
    times = []
    with endpoint.errors("measuring the round trip"), endpoint.raw() as conn:
        cur = conn.cursor()
        try:
            for i in range(samples + 1):
                started = time.perf_counter()
                cur.execute(sql)
                cur.fetchall()
                if i:  # the first one warms up (plans, caches)
                    times.append(time.perf_counter() - started)
        finally:
            cur.close()
        conn.rollback()
    return statistics.median(times)


# -- statistics ------------------------------------------------------------------------
def table_stats(endpoint: Any, tables: Iterable[str]) -> dict[str, TableStats]:
    """Rows and bytes of ``tables`` from the engine's statistics (module contract); a
    table the statistics do not know gets ``TableStats(None, None)``."""
    wanted = list(tables)
    engine = _engine(endpoint)
    found: dict[str, TableStats] = {}
    if engine == "sqlite":
        found = _sqlite_stats(endpoint)
    elif engine in STATS_SQL:
        norm = _normalizer(endpoint)
        for name, rows, size in _fetch(endpoint, STATS_SQL[engine], "reading table statistics"):
            n = None if rows is None or float(rows) < 0 else int(rows)
            found[norm(name)] = TableStats(n, None if size is None else int(size))
    return {t: found.get(t, TableStats(None, None)) for t in wanted}


def _sqlite_stats(endpoint: Any) -> dict[str, TableStats]:
    rows: dict[str, int] = {}
    sizes: dict[str, int] = {}
    try:
        for tbl, stat in _fetch(endpoint, SQLITE_STAT1, "reading sqlite_stat1"):
            first = str(stat or "").split(" ", 1)[0]
            if first.isdigit():
                rows[_text(tbl)] = max(rows.get(_text(tbl), 0), int(first))
    except ConnectorError:
        pass  # no ANALYZE was ever run: no statistics
    try:
        for name, size in _fetch(endpoint, SQLITE_DBSTAT, "reading dbstat"):
            sizes[_text(name)] = int(size or 0)
    except ConnectorError:
        pass  # SQLite built without the dbstat table
    return {n: TableStats(rows.get(n), sizes.get(n)) for n in set(rows) | set(sizes)}


# -- read probe ------------------------------------------------------------------------
def value_size(value: Any) -> int:
    """About how many bytes a value takes on the wire: text in UTF-8, bytes as they are,
    8 for numbers, dates and anything else."""
    if value is None:
        return 1
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    return 8


def read_probe(
    endpoint: Any,
    schema: TableSchema,
    key: tuple[str, ...],
    *,
    seconds: float = 2.0,
    max_bytes: int = 8 << 20,
    max_rows: int = 200_000,
) -> dict[str, Any]:
    """Read ``schema``'s first rows for at most about ``seconds``, ``max_bytes`` or
    ``max_rows``: in key order in growing key ranges when ``key`` is given, else one
    ``LIMIT`` read. Returns ``{"table", "rows", "bytes", "seconds", "rows_per_s",
    "bytes_per_s", "ordered"}`` (rates None when nothing could be timed)."""
    rows = size = 0
    started = time.perf_counter()
    positions = [schema.column_names.index(k) for k in key]
    if key:
        after = None
        limit = 1000
        while True:
            got = 0
            last = None
            for batch in endpoint.read_range(schema, key, after, limit, min(limit, 5000)):
                got += len(batch)
                size += sum(value_size(v) for row in batch for v in row)
                last = batch[-1]
            rows += got
            elapsed = time.perf_counter() - started
            if got < limit or elapsed >= seconds or size >= max_bytes or rows >= max_rows:
                break
            after = tuple(last[i] for i in positions) if last is not None else after
            rate = rows / elapsed if elapsed > 0 else limit
            limit = int(min(limit * 8, max(1000, rate * (seconds - elapsed)), max_rows - rows))
            limit = max(limit, 1)
    else:
        t = endpoint.sa_table(schema.name, schema.column_names)
        stmt = sa.select(*endpoint.select_list(t, schema)).limit(min(max_rows, 20_000))
        for batch in endpoint._stream(stmt, 5000, f"reading {schema.name}"):
            rows += len(batch)
            size += sum(value_size(v) for row in batch for v in row)
    elapsed = time.perf_counter() - started
    timed = elapsed > 0 and rows > 0
    return {
        "table": schema.name,
        "rows": rows,
        "bytes": size,
        "seconds": round(elapsed, 4),
        "rows_per_s": round(rows / elapsed, 1) if timed else None,
        "bytes_per_s": round(size / elapsed, 1) if timed else None,
        "ordered": bool(key),
    }


# -- privileges ------------------------------------------------------------------------
def privileges(endpoint: Any, needs: list[Need]) -> list[dict[str, Any]]:
    """Whether the login holds each need; one row per native privilege (its purposes
    joined in ``needed_for``): ``{"privilege", "on", "needed_for", "held", "missing_on",
    "how", "blocking"}`` where ``held`` is True, False or None (cannot tell),
    ``missing_on`` lists the tables (or the database) it is missing on and ``blocking``
    whether missing it stops the run."""
    engine = _engine(endpoint)
    checker = {
        "mysql": _mysql_checker,
        "postgresql": _pg_checker,
        "sqlite": _sqlite_checker,
        "mssql": _mssql_checker,
        "oracle": _oracle_checker,
    }.get(engine)
    if checker is None:
        return _group(needs, lambda n: (None, f"not checked for {engine}"), _NATIVE, "database")
    has, native, scope = checker(endpoint)
    return _group(needs, has, native, scope)


def _group(needs: list[Need], has: Any, native: dict[str, str], scope: str) -> list[dict[str, Any]]:
    """One row per native privilege: what it is needed for, where it is missing, and
    ``blocking`` (a missing need that stops the run, or, when nothing is missing,
    whether any need of it would)."""
    rows: dict[str, dict[str, Any]] = {}
    for need in needs:
        name = native.get(need.privilege, need.privilege.upper())
        held, how = has(need)
        row = rows.setdefault(
            name,
            {
                "privilege": name,
                "on": set(),
                "needed_for": [],
                "held": True,
                "missing_on": [],
                "how": how,
                "blocking": False,
                "_missing_blocks": False,
            },
        )
        if need.why not in row["needed_for"]:
            row["needed_for"].append(need.why)
        row["blocking"] = row["blocking"] or need.blocking
        where = need.table if need.table and need.exists else scope
        row["on"].add(where)
        if held is False:
            row["held"] = False
            row["how"] = how
            row["_missing_blocks"] = row["_missing_blocks"] or need.blocking
            if where not in row["missing_on"]:
                row["missing_on"].append(where)
        elif held is None and row["held"] is True:
            row["held"] = None
            row["how"] = how
    out = []
    for row in rows.values():
        on = sorted(row["on"])
        row["on"] = scope if scope in on or len(on) > 3 else ", ".join(on)
        row["needed_for"] = "; ".join(row["needed_for"])
        if row["held"] is False:
            row["blocking"] = row["_missing_blocks"]
        del row["_missing_blocks"]
        out.append(row)
    return out


# MySQL / MariaDB ---------------------------------------------------------------------
_GRANT = re.compile(
    r"^GRANT (?P<privs>.+?) ON (?:TABLE )?(?P<db>\*|`(?:[^`]|``)+`|[\w$]+)"
    r"\.(?P<tbl>\*|`(?:[^`]|``)+`|[\w$]+) TO ",
    re.S,
)
_ROLE_GRANT = re.compile(r"^GRANT `(?:[^`]|``)+`(?:@`(?:[^`]|``)*`)? TO ", re.S)


@dataclass(frozen=True)
class Grant:
    """One ``GRANT privs ON db.tbl`` line: ``db``/``tbl`` unquoted (``*`` for all)."""

    privileges: frozenset[str]
    db: str
    table: str

    def covers(self, database: str, table: str | None) -> bool:
        if self.db != "*" and not _db_match(self.db, database):
            return False
        return self.table == "*" or (table is not None and self.table == table)


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _db_match(pattern: str, database: str) -> bool:
    """A database-level grant's name is a LIKE pattern (``\\_`` is a literal ``_``)."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append("." if ch == "_" else ".*" if ch == "%" else re.escape(ch))
        i += 1
    return re.fullmatch("".join(out), database) is not None


def _split_privileges(text: str) -> set[str]:
    """``SELECT, INSERT (a, b), ALL PRIVILEGES`` → table-wide privileges only (a column
    list grants the columns, not the table)."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return {" ".join(p.split()).upper() for p in parts if p.strip() and "(" not in p}


def parse_grants(lines: Iterable[str]) -> tuple[list[Grant], bool]:
    """``SHOW GRANTS`` lines as :class:`Grant`\\ s, and whether a role is granted (its
    privileges are not in these lines unless it is the active role)."""
    grants: list[Grant] = []
    roles = False
    for line in lines:
        m = _GRANT.match(line)
        if m:
            grants.append(
                Grant(
                    frozenset(_split_privileges(m.group("privs"))),
                    _unquote(m.group("db")),
                    _unquote(m.group("tbl")),
                )
            )
        elif _ROLE_GRANT.match(line):
            roles = True
    return grants, roles


def mysql_holds(grants: list[Grant], privilege: str, database: str, table: str | None) -> bool:
    """Whether ``grants`` give ``privilege`` on ``database`` (``table`` None: on every
    table of it, which is what creating new tables needs)."""
    for g in grants:
        if g.covers(database, table) and (
            privilege in g.privileges or g.privileges & {"ALL", "ALL PRIVILEGES"}
        ):
            return True
    return False


def _mysql_checker(endpoint: Any) -> tuple[Any, dict[str, str], str]:
    with endpoint.errors("reading the login's grants"), endpoint.raw() as conn:
        cur = conn.cursor()
        try:
            cur.execute(MYSQL_SESSION)
            database, user = cur.fetchone()
            cur.execute(MYSQL_GRANTS)
            lines = [_text(r[0]) for r in cur.fetchall()]
        finally:
            cur.close()
        conn.rollback()
    database = _text(database or "")
    grants, roles = parse_grants(lines)

    def has(need: Need) -> tuple[bool | None, str]:
        name = _NATIVE[need.privilege]
        table = need.table if need.exists else None
        if mysql_holds(grants, name, database, table):
            return True, f"SHOW GRANTS for {_text(user)}"
        if roles:
            return None, f"SHOW GRANTS for {_text(user)}: a role is granted, not checked"
        return False, f"SHOW GRANTS for {_text(user)}"

    return has, _NATIVE, f"{database}.*"


# PostgreSQL --------------------------------------------------------------------------
def _pg_checker(endpoint: Any) -> tuple[Any, dict[str, str], str]:
    ((schema, create, usage),) = _fetch(endpoint, PG_SCHEMA_PRIVS, "reading the schema's rights")
    tables = {_text(r[0]): r[1:] for r in _fetch(endpoint, PG_TABLE_PRIVS, "reading table rights")}
    index = {"read": 0, "insert": 1, "update": 2, "delete": 3}
    how = "has_table_privilege / has_schema_privilege"

    def has(need: Need) -> tuple[bool | None, str]:
        row = tables.get(need.table) if need.table and need.exists else None
        if row is None:  # a table the run creates: it will own it
            return bool(create and usage), how
        if need.privilege in index:
            return bool(row[index[need.privilege]]), how
        if need.privilege == "create":
            return bool(create and usage), how
        return bool(row[4]), f"{how} (only the owner may drop, alter or index)"

    native = dict(_NATIVE, create="CREATE", drop="DROP (owner)", index="INDEX (owner)")
    native["alter"] = "ALTER (owner)"
    return has, native, f"schema {_text(schema)}"


# SQLite ------------------------------------------------------------------------------
def _sqlite_checker(endpoint: Any) -> tuple[Any, dict[str, str], str]:
    path: Path | None = getattr(endpoint, "path", None)

    def has(need: Need) -> tuple[bool | None, str]:
        if path is None:
            return True, "an in-memory database"
        if need.privilege == "read":
            if not path.exists():
                return None, f"{path} does not exist (yet)"
            return os.access(path, os.R_OK), f"file permissions of {path}"
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        ok = os.access(folder, os.W_OK | os.X_OK)
        if path.exists():
            ok = ok and os.access(path, os.R_OK | os.W_OK)
        return ok, f"file permissions of {path} and its folder (journal files)"

    native = {p: ("read" if p == "read" else "write") for p in PORTABLE}
    return has, native, str(path or ":memory:")


# SQL Server --------------------------------------------------------------------------
def _mssql_checker(endpoint: Any) -> tuple[Any, dict[str, str], str]:
    ((schema, create, alter, *dml),) = _fetch(
        endpoint, MSSQL_SCHEMA_PRIVS, "reading the schema's permissions"
    )
    tables = {
        _text(r[0]): r[1:] for r in _fetch(endpoint, MSSQL_TABLE_PRIVS, "reading permissions")
    }
    index = {"read": 0, "insert": 1, "update": 2, "delete": 3}
    how = "HAS_PERMS_BY_NAME"

    def has(need: Need) -> tuple[bool | None, str]:
        row = tables.get(need.table) if need.table and need.exists else None
        if need.privilege == "create":
            return bool(create and alter), how
        if row is None:  # a new table: the schema's permissions apply
            if need.privilege in index:
                return bool(dml[index[need.privilege]]), how
            return bool(alter), how
        if need.privilege in index:
            return bool(row[index[need.privilege]]), how
        return bool(row[4]), how

    native = dict(_NATIVE, create="CREATE TABLE + ALTER on schema")
    native.update(drop="ALTER", index="ALTER")
    return has, native, f"schema {_text(schema)}"


# Oracle ------------------------------------------------------------------------------
def _oracle_checker(endpoint: Any) -> tuple[Any, dict[str, str], str]:
    privs = {_text(r[0]).upper() for r in _fetch(endpoint, ORACLE_PRIVS, "reading privileges")}
    ((quota,),) = _fetch(endpoint, ORACLE_QUOTA, "reading tablespace quotas")
    space = "UNLIMITED TABLESPACE" in privs or int(quota or 0) > 0
    how = "SESSION_PRIVS, USER_TS_QUOTAS (the user owns its own tables)"

    def has(need: Need) -> tuple[bool | None, str]:
        if need.privilege == "create":
            return bool(privs & {"CREATE TABLE", "CREATE ANY TABLE"}) and space, how
        return True, how  # tables of the user's own schema: the owner may do anything

    native = dict(_NATIVE, create="CREATE TABLE + tablespace quota")
    return has, native, "own schema"


def write_settings(endpoint: Any) -> list[str]:
    """Server settings a target's write path needs that are off, each as one line saying
    what to change (MySQL/MariaDB: ``local_infile`` for ``bulk = "load_data"``)."""
    if _engine(endpoint) != "mysql" or getattr(endpoint, "bulk", None) != "load_data":
        return []
    ((value,),) = _fetch(endpoint, MYSQL_LOCAL_INFILE, "reading local_infile")
    if str(_text(value)).upper() in ("1", "ON"):
        return []
    return [
        "the server refuses LOAD DATA LOCAL (local_infile is OFF): set local_infile=ON on"
        ' the server, or options.bulk = "insert" on this connection'
    ]


# -- change capture --------------------------------------------------------------------
def cdc_rights(endpoint: Any) -> dict[str, Any]:
    """Whether ``endpoint`` can feed ``mode = "cdc"``: ``{"ok": bool, "message": str}``
    (the message says what to change, as the run would say it)."""
    if _engine(endpoint) != "mysql" or not hasattr(endpoint, "cdc_check"):
        return {"ok": False, "message": "change capture reads a MySQL or MariaDB binary log"}
    try:
        endpoint.cdc_check()
    except ConnectorError as exc:
        return {"ok": False, "message": str(exc)}
    return {
        "ok": True,
        "message": "binary log on, ROW format, FULL row image; REPLICATION SLAVE and the"
        " right to read the binlog position held",
    }
