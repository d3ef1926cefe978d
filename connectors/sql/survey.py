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
  ``pg_table_size`` (a partitioned table: the sums over its partitions, PostgreSQL 12+),
  SQLite ``sqlite_stat1`` (after ``ANALYZE``) and the ``dbstat`` table when compiled in,
  SQL Server ``sys.partitions``/``sys.allocation_units`` (heap or clustered index),
  Oracle ``USER_TABLES.NUM_ROWS`` and ``USER_SEGMENTS.BYTES``.
- :func:`read_probe` — reads a table's first rows for at most ``seconds``, ``max_bytes``
  or ``max_rows`` (value sizes as Python sees them: an approximation of the bytes on the
  wire), in growing reads that start with a few rows; in key order only where an index
  leads with the key (never a sort of the table); returns rows, bytes, seconds and the
  rates.
- :func:`privileges` — for each :class:`Need` (a portable privilege on a table, or on the
  database when the table does not exist yet) whether the login holds it: True, False,
  or None when the engine cannot tell; rows grouped per native privilege, each saying
  how it was found out. Per engine: MySQL/MariaDB ``SHOW GRANTS`` of the account and its
  ACTIVE roles (MariaDB lists them; MySQL 8 ``USING`` ``CURRENT_ROLE()``; a role granted
  but not active at login does not count: a run does not ``SET ROLE``), global grants
  minus partial revokes, table grants, and the one most specific matching
  database-level pattern (:func:`mysql_holds`); PostgreSQL ``has_*_privilege`` and
  ``pg_has_role`` on the owner (superusers, role membership, ``pg_read_all_data`` /
  ``pg_write_all_data`` and PostgreSQL 15's ``public`` schema included); SQLite the file
  and folder permissions; SQL Server ``HAS_PERMS_BY_NAME`` (``db_owner``, ``sysadmin``
  and role membership included; a new table is the schema owner's, so its rows need the
  schema's permissions; dropping needs ALTER on the schema or CONTROL on the table);
  Oracle ``SESSION_PRIVS`` (roles included) and a tablespace quota with room left (the
  login's own schema: its tables need no grants).
- :func:`write_settings` — server settings a target's write path needs that are off
  (MySQL/MariaDB ``local_infile`` for ``LOAD DATA LOCAL``), each a line saying what to do.
- :func:`cdc_rights` — MySQL/MariaDB change capture: the grants and binlog settings
  :func:`connectors.sql.mysql_binlog.check_binlog` checks, as one result.
"""

from __future__ import annotations

import dataclasses
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
    # a partitioned table has no rows of its own (reltuples -1, size 0, and autovacuum
    # never analyses it): its partitions' statistics, summed (-1 when one has none)
    "postgresql": (
        "SELECT c.relname, CASE WHEN c.relkind = 'p' THEN (SELECT CASE WHEN"
        " bool_or(l.reltuples < 0) THEN -1 ELSE SUM(l.reltuples) END"
        " FROM pg_catalog.pg_partition_tree(c.oid) AS t JOIN pg_catalog.pg_class AS l"
        " ON l.oid = t.relid WHERE t.isleaf) ELSE c.reltuples END,"
        " CASE WHEN c.relkind = 'p' THEN (SELECT SUM(pg_table_size(t.relid))"
        " FROM pg_catalog.pg_partition_tree(c.oid) AS t WHERE t.isleaf)"
        " ELSE pg_table_size(c.oid) END"
        " FROM pg_catalog.pg_class AS c"
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
#: PostgreSQL 11 has no pg_partition_tree: partitioned tables are counted
PG11_STATS = (
    "SELECT c.relname, c.reltuples, pg_table_size(c.oid) FROM pg_catalog.pg_class AS c"
    " JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
)
SQLITE_STAT1 = "SELECT tbl, stat FROM sqlite_stat1"
SQLITE_DBSTAT = "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"

#: MySQL/MariaDB: the grants of the login and the settings a target's bulk path needs
MYSQL_GRANTS = "SHOW GRANTS"
MYSQL_SESSION = "SELECT DATABASE(), CURRENT_USER()"
#: the active roles (MariaDB: one name or NULL; MySQL 8: `r`@`h`,... or NONE)
MYSQL_ROLE = "SELECT CURRENT_ROLE()"
MYSQL_LOCAL_INFILE = "SELECT @@GLOBAL.local_infile"
#: PostgreSQL: the login's rights on the current schema and on each of its tables
PG_SCHEMA_PRIVS = (
    "SELECT current_schema(), has_schema_privilege(current_schema(), 'CREATE'),"
    " has_schema_privilege(current_schema(), 'USAGE'),"
    " has_database_privilege(current_database(), 'TEMPORARY'), current_database()"
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
    " 'OBJECT', 'ALTER'),"
    " HAS_PERMS_BY_NAME(QUOTENAME(SCHEMA_NAME(t.schema_id)) + '.' + QUOTENAME(t.name),"
    " 'OBJECT', 'CONTROL')"
    " FROM sys.tables AS t WHERE t.schema_id = SCHEMA_ID()"
)
#: Oracle: the system privileges of the session, and a quota on the default tablespace
ORACLE_PRIVS = "SELECT privilege FROM session_privs"
ORACLE_QUOTA = (
    "SELECT COUNT(*) FROM user_ts_quotas q JOIN user_users u"
    " ON u.default_tablespace = q.tablespace_name"
    " WHERE q.max_bytes = -1 OR q.bytes < q.max_bytes"
)

#: the portable privileges a :class:`Need` names, and their usual SQL names
PORTABLE = (
    "read",
    "create",
    "insert",
    "update",
    "delete",
    "drop",
    "index",
    "alter",
    "temp",
    "identity",
)
_NATIVE = {
    "read": "SELECT",
    "create": "CREATE",
    "insert": "INSERT",
    "update": "UPDATE",
    "delete": "DELETE",
    "drop": "DROP",
    "index": "INDEX",
    "alter": "ALTER",
    "temp": "CREATE TEMPORARY TABLES",
    "identity": "INSERT",
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


#: the privileges held on the database itself, not on a table or the schema
DATABASE_WIDE = frozenset({"temp"})


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
        sql = STATS_SQL[engine]
        if engine == "postgresql" and (endpoint.server_version() or (99,)) < (12,):
            sql = PG11_STATS
        for name, rows, size in _fetch(endpoint, sql, "reading table statistics"):
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


def key_indexed(schema: TableSchema, key: tuple[str, ...]) -> bool:
    """Whether an index leads with ``key`` (the primary key, a unique or plain index):
    only then does ``ORDER BY key LIMIT n`` read n entries of the index; on any other
    column the server reads and sorts the whole table for every such read."""
    n = len(key)
    if not n:
        return False
    leads = [tuple(schema.primary_key[:n])] + [tuple(ix.columns[:n]) for ix in schema.indexes]
    return tuple(key) in leads


def read_probe(
    endpoint: Any,
    schema: TableSchema,
    key: tuple[str, ...],
    *,
    seconds: float = 2.0,
    max_bytes: int = 8 << 20,
    max_rows: int = 200_000,
    row_bytes: float | None = None,
) -> dict[str, Any]:
    """Read ``schema``'s first rows for at most about ``seconds``, ``max_bytes`` or
    ``max_rows``, in reads that grow (×8 at most) as far as the rate measured so far
    and the byte budget allow. The first read takes a few rows (``row_bytes``, a row's
    size from the statistics, sizes it: at most an eighth of ``max_bytes``; unknown: 10
    rows), so a table of huge rows is not read whole. In key order only when an index
    leads with ``key`` (:func:`key_indexed`): one key range after the other (``WHERE key
    > last ORDER BY key LIMIT n``) for a one-column key, each read from the start for a
    key of several columns; else plain ``LIMIT n`` reads from the start (no ``ORDER BY``:
    no sort of the table). Rows read twice count twice (a rate, not a count). Returns
    ``{"table", "rows", "bytes", "seconds", "rows_per_s", "bytes_per_s", "ordered"}``
    (rates None when nothing could be timed)."""
    ordered = key_indexed(schema, key)
    positions = [schema.column_names.index(k) for k in key]
    t = endpoint.sa_table(schema.name, schema.column_names)
    if row_bytes and row_bytes > 0:
        limit = int(max(1, min(1000, max_bytes / 8 / row_bytes)))
    else:
        limit = 10
    rows = size = 0
    after = None
    started = time.perf_counter()
    while True:
        got = 0
        last = None
        if ordered:
            batches = endpoint.read_range(schema, key, after, limit, min(limit, 5000))
        else:
            stmt = sa.select(*endpoint.select_list(t, schema)).limit(limit)
            batches = endpoint._stream(stmt, min(limit, 5000), f"reading {schema.name}")
        for batch in batches:
            got += len(batch)
            size += sum(value_size(v) for row in batch for v in row)
            last = batch[-1]
        rows += got
        elapsed = time.perf_counter() - started
        if got < limit or elapsed >= seconds or size >= max_bytes or rows >= max_rows:
            break
        if ordered and len(key) == 1 and last is not None:
            # the next rows: a range of the index. A key of several columns would need
            # ``a > x OR (a = x AND b > y)``, which some planners answer by collecting
            # every later row (a bitmap OR) before the LIMIT: its reads start over
            after = tuple(last[i] for i in positions)
        per_row = size / rows if rows else 1.0
        rate = rows / elapsed if elapsed > 0 else limit
        limit = int(
            min(
                limit * 8,
                max(1.0, rate * (seconds - elapsed)),
                max_rows - rows,
                max(1.0, (max_bytes - size) / max(per_row, 1.0)),
            )
        )
        limit = max(limit, 1)
    elapsed = time.perf_counter() - started
    timed = elapsed > 0 and rows > 0
    return {
        "table": schema.name,
        "rows": rows,
        "bytes": size,
        "seconds": round(elapsed, 4),
        "rows_per_s": round(rows / elapsed, 1) if timed else None,
        "bytes_per_s": round(size / elapsed, 1) if timed else None,
        "ordered": ordered,
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
    if engine != "mssql":  # explicit values into an identity column need only INSERT
        needs = [
            dataclasses.replace(n, privilege="insert") if n.privilege == "identity" else n
            for n in needs
        ]
    if checker is None:
        return _group(needs, lambda n: (None, f"not checked for {engine}"), _NATIVE, "database")
    has, native, scope, database = checker(endpoint)
    return _group(needs, has, native, scope, database)


def _group(
    needs: list[Need], has: Any, native: dict[str, str], scope: str, database_scope: str = ""
) -> list[dict[str, Any]]:
    """One row per native privilege: what it is needed for, where it is missing, and
    ``blocking`` (a missing need that stops the run, or, when nothing is missing,
    whether any need of it would). ``database_scope`` names where the
    :data:`DATABASE_WIDE` privileges are held (default: ``scope``)."""
    database_scope = database_scope or scope
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
        if need.privilege in DATABASE_WIDE:
            where = database_scope
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
        if on == [database_scope]:
            row["on"] = database_scope
        row["needed_for"] = "; ".join(row["needed_for"])
        if row["held"] is False:
            row["blocking"] = row["_missing_blocks"]
        del row["_missing_blocks"]
        out.append(row)
    return out


# MySQL / MariaDB ---------------------------------------------------------------------
_NAME = r"`(?:[^`]|``)*`"
_GRANTEE = rf"(?P<to>{_NAME}(?:@{_NAME})?|PUBLIC|'[^']*'(?:@'[^']*')?)"
_GRANT = re.compile(
    r"^(?P<verb>GRANT|REVOKE) (?P<privs>.+?) ON (?:TABLE )?(?P<db>\*|`(?:[^`]|``)+`|[\w$]+)"
    rf"\.(?P<tbl>\*|`(?:[^`]|``)+`|[\w$]+) (?:TO|FROM) {_GRANTEE}",
    re.S,
)
_ROLE = rf"{_NAME}(?:@{_NAME})?"
_ROLE_GRANT = re.compile(rf"^GRANT (?P<roles>{_ROLE}(?:\s*,\s*{_ROLE})*) TO {_GRANTEE}", re.S)
_ALL = frozenset({"ALL", "ALL PRIVILEGES"})


@dataclass(frozen=True)
class Grant:
    """One ``GRANT privs ON db.tbl TO grantee`` line: ``db``/``tbl`` unquoted (``*`` for
    all). ``grantee`` is ``"user"`` (an account, ``name@host``), ``"role"`` (MariaDB
    shows an active role's grants, and those of the roles granted to it, as ``TO
    `role```) or ``"public"`` (MariaDB 10.11 ``TO PUBLIC``): the server checks each of
    them on its own and lets a statement through when one of them allows it.
    ``revoke``: a MySQL partial revoke (``REVOKE ... ON db.* FROM``) of global
    privileges on one database."""

    privileges: frozenset[str]
    db: str
    table: str
    grantee: str = "user"
    revoke: bool = False

    def gives(self, privilege: str) -> bool:
        return privilege in self.privileges or bool(self.privileges & _ALL)


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _unescape(name: str) -> str:
    """A database name as a table-level grant names it: ``\\_`` and ``\\%`` are shown
    escaped, but only database-level grants treat ``_`` and ``%`` as wildcards."""
    return re.sub(r"\\(.)", r"\1", name)


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
    return re.fullmatch("".join(out), database, re.S) is not None


def _pattern_rank(pattern: str, maxlen: int = 64) -> int:
    """How generic a database-name pattern is (0: no wildcard; larger: matches more
    names), as MariaDB orders ``mysql.db`` (``get_magic_sort``, MDEV-14735): the server
    takes the FIRST, most specific, database-level grant matching a database and ignores
    the others. Ties are not broken here (the caller reports them as unknown)."""
    n = m = k = 0
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "%":
            k += 1
            while i + 1 < len(pattern) and pattern[i + 1] == "%":
                i += 1
        elif ch == "_":
            m += 1
        else:
            if ch == "\\" and i + 1 < len(pattern):
                i += 1
            n += 1
        i += 1
    longest = maxlen - n - m if k else 0
    d = maxlen + 1
    if longest > m:
        return ((longest * 2 + 1) * d + k) * d + m
    return (m * 2 * d + longest) * d + k


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


def _grantee(text: str) -> str:
    if text.upper() == "PUBLIC":
        return "public"
    return "user" if "@" in text else "role"


def parse_grants(lines: Iterable[str]) -> tuple[list[Grant], bool]:
    """``SHOW GRANTS`` lines as :class:`Grant`\\ s, and whether a role is granted to the
    account (MariaDB lists an active role's grants; MySQL 8 only with ``USING``)."""
    grants, roles = parse_grant_lines(lines)
    return grants, bool(roles)


def parse_grant_lines(lines: Iterable[str]) -> tuple[list[Grant], list[str]]:
    """``SHOW GRANTS`` lines as :class:`Grant`\\ s, and the roles granted to the account
    itself (unquoted, in the order shown). ``GRANT PROXY`` lines grant no table rights."""
    grants: list[Grant] = []
    roles: list[str] = []
    for line in lines:
        m = _GRANT.match(line)
        if m and not m.group("privs").upper().startswith("PROXY"):
            grants.append(
                Grant(
                    frozenset(_split_privileges(m.group("privs"))),
                    _unquote(m.group("db")),
                    _unquote(m.group("tbl")),
                    _grantee(m.group("to")),
                    m.group("verb") == "REVOKE",
                )
            )
            continue
        r = _ROLE_GRANT.match(line)
        if r and _grantee(r.group("to")) == "user":
            roles += [_unquote(n) for n in re.findall(rf"({_NAME})(?:@{_NAME})?", r.group("roles"))]
    return grants, roles


def mysql_holds(
    grants: list[Grant], privilege: str, database: str, table: str | None
) -> bool | None:
    """Whether ``grants`` give ``privilege`` on ``database`` (``table`` None: on every
    table of it, which is what creating new tables needs), checked as the server does
    for each grantee (the account, the active roles, PUBLIC): global grants minus
    partial revokes, then table grants (literal names), then the ONE most specific
    database-level grant whose pattern matches (the server does not add up several
    matching patterns). None: two equally specific patterns match and only one of them
    gives it (the server's pick cannot be told from the grants)."""
    unknown = False
    for grantee in ("user", "role", "public"):
        mine = [g for g in grants if g.grantee == grantee]
        revoked = {
            p for g in mine if g.revoke and _unescape(g.db) == database for p in g.privileges
        }
        for g in mine:
            if g.revoke:
                continue
            if g.db == "*" and g.gives(privilege) and privilege not in revoked:
                return True
            if (
                g.table != "*"
                and table is not None
                and _unescape(g.db) == database
                and g.table == table
                and g.gives(privilege)
            ):
                return True
        patterns: dict[str, set[str]] = {}
        for g in mine:
            if not g.revoke and g.db != "*" and g.table == "*" and _db_match(g.db, database):
                patterns.setdefault(g.db, set()).update(g.privileges)
        if not patterns:
            continue
        best = min(_pattern_rank(p) for p in patterns)
        answers = {
            privilege in privs or bool(_ALL & privs)
            for p, privs in patterns.items()
            if _pattern_rank(p) == best
        }
        if answers == {True}:
            return True
        unknown = unknown or len(answers) > 1
    return None if unknown else False


def _mysql_grant_lines(endpoint: Any) -> tuple[str, str, list[str], list[str], str]:
    """The session's database, account, ``SHOW GRANTS`` lines, the active roles and how
    the lines were read. MariaDB's ``SHOW GRANTS`` lists the grants of the active role
    (and of the roles granted to it); MySQL 8 needs ``USING`` the active roles
    (``CURRENT_ROLE()``); MySQL 5.7 has no roles."""
    mariadb = bool(getattr(endpoint.dialect, "is_mariadb", False))
    with endpoint.errors("reading the login's grants"), endpoint.raw() as conn:
        cur = conn.cursor()
        try:
            cur.execute(MYSQL_SESSION)
            database, user = cur.fetchone()
            active: list[str] = []
            try:
                cur.execute(MYSQL_ROLE)
                (current,) = cur.fetchone()
            except endpoint._dbapi_errors():  # MySQL 5.7: no roles at all
                current = None
            current = _text(current) if current is not None else ""
            if current and current.upper() != "NONE":
                active = [r.strip() for r in current.split(",") if r.strip()]
            sql = MYSQL_GRANTS
            if active and not mariadb:
                sql = f"{MYSQL_GRANTS} FOR CURRENT_USER() USING {', '.join(active)}"
            try:
                cur.execute(sql)
            except endpoint._dbapi_errors():  # a role USING cannot name: as without roles
                sql = MYSQL_GRANTS
                cur.execute(sql)
            lines = [_text(r[0]) for r in cur.fetchall()]
        finally:
            cur.close()
        conn.rollback()
    roles = [_unquote(r.split("@", 1)[0]) if r.startswith("`") else r for r in active]
    return _text(database or ""), _text(user), lines, roles, sql


def _mysql_checker(endpoint: Any) -> tuple[Any, dict[str, str], str, str]:
    database, user, lines, active, sql = _mysql_grant_lines(endpoint)
    grants, granted = parse_grant_lines(lines)
    # MySQL 8 refused USING the active roles: their grants are not in the lines
    unread = not getattr(endpoint.dialect, "is_mariadb", False) and bool(active)
    unread = unread and "USING" not in sql
    idle = [r for r in granted if r not in active]
    how = f"SHOW GRANTS for {user}" + (f" (active role: {', '.join(active)})" if active else "")

    def has(need: Need) -> tuple[bool | None, str]:
        name = _NATIVE[need.privilege]
        # a table that does not exist yet is covered by a database-level grant, or by a
        # table-level one naming it (MySQL lets both be granted before it is created)
        held = mysql_holds(grants, name, database, need.table)
        if held is True:
            return True, how
        if held is None:
            return None, f"{how}: equally specific database patterns disagree"
        if unread:
            return None, f"{how}: the active roles' grants could not be read"
        if idle:
            return False, (
                f"{how}; granted but not active at login, so a run does not have them:"
                f" {', '.join(idle)} (SET DEFAULT ROLE ... FOR {user})"
            )
        return False, how

    return has, _NATIVE, f"{database}.*", f"{database}.*"


# PostgreSQL --------------------------------------------------------------------------
def _pg_checker(endpoint: Any) -> tuple[Any, dict[str, str], str, str]:
    ((schema, create, usage, temp, database),) = _fetch(
        endpoint, PG_SCHEMA_PRIVS, "reading the schema's rights"
    )
    tables = {_text(r[0]): r[1:] for r in _fetch(endpoint, PG_TABLE_PRIVS, "reading table rights")}
    index = {"read": 0, "insert": 1, "update": 2, "delete": 3}
    how = "has_table_privilege / has_schema_privilege"

    def has(need: Need) -> tuple[bool | None, str]:
        if need.privilege == "temp":
            return bool(temp), "has_database_privilege"
        row = tables.get(need.table) if need.table and need.exists else None
        if need.privilege == "create":
            return bool(create and usage), how
        if row is None and need.exists and need.table:
            return None, f"{need.table} is not in schema {_text(schema)}"
        if row is None:  # a table the run creates: it will own it (CREATE says if it can)
            return True, "the owner of the tables it creates"
        if need.privilege in index:
            return bool(row[index[need.privilege]]), how
        return bool(row[4]), f"{how} (only the owner may drop, alter or index)"

    native = dict(_NATIVE, create="CREATE", drop="DROP (owner)", index="INDEX (owner)")
    native["temp"] = "TEMPORARY"
    native["alter"] = "ALTER (owner)"
    return has, native, f"schema {_text(schema)}", f"database {_text(database)}"


# SQLite ------------------------------------------------------------------------------
def _sqlite_checker(endpoint: Any) -> tuple[Any, dict[str, str], str, str]:
    path: Path | None = getattr(endpoint, "path", None)

    def has(need: Need) -> tuple[bool | None, str]:
        if path is None:
            return True, "an in-memory database"
        if need.privilege == "read" and (path.exists() or need.exists):
            if not path.exists():
                return None, f"{path} does not exist (yet)"
            return os.access(path, os.R_OK), f"file permissions of {path}"
        # writing, or reading tables of a file the run creates: the folder decides
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        ok = os.access(folder, os.W_OK | os.X_OK)
        if path.exists():
            ok = ok and os.access(path, os.R_OK | os.W_OK)
        return ok, f"file permissions of {path} and its folder (journal files)"

    native = {p: ("read" if p == "read" else "write") for p in PORTABLE}
    return has, native, str(path or ":memory:"), str(path or ":memory:")


# SQL Server --------------------------------------------------------------------------
def _mssql_checker(endpoint: Any) -> tuple[Any, dict[str, str], str, str]:
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
        if need.privilege == "temp":
            return True, "#temporary tables need no permission"
        if row is None:  # a new table: the schema's permissions apply
            if need.privilege in index:
                return bool(dml[index[need.privilege]]), how
            return bool(alter), how
        if need.privilege in index:
            return bool(row[index[need.privilege]]), how
        if need.privilege == "drop":  # ALTER on the table is not enough to drop it
            return bool(alter or row[5]), f"{how} (ALTER on the schema or CONTROL on the table)"
        if need.privilege == "identity":  # SET IDENTITY_INSERT: the owner, or ALTER on it
            return bool(row[4]), f"{how} (SET IDENTITY_INSERT needs ALTER on the table)"
        return bool(row[4]), how

    native = dict(_NATIVE, create="CREATE TABLE + ALTER on schema")
    native.update(drop="DROP (ALTER on schema or CONTROL)", index="ALTER", temp="#temp table")
    native["identity"] = "ALTER (SET IDENTITY_INSERT)"
    return has, native, f"schema {_text(schema)}", "tempdb"


# Oracle ------------------------------------------------------------------------------
def _oracle_checker(endpoint: Any) -> tuple[Any, dict[str, str], str, str]:
    privs = {_text(r[0]).upper() for r in _fetch(endpoint, ORACLE_PRIVS, "reading privileges")}
    ((quota,),) = _fetch(endpoint, ORACLE_QUOTA, "reading tablespace quotas")
    space = "UNLIMITED TABLESPACE" in privs or int(quota or 0) > 0
    how = "SESSION_PRIVS, USER_TS_QUOTAS (the user owns its own tables)"

    def has(need: Need) -> tuple[bool | None, str]:
        if need.privilege == "create":
            return bool(privs & {"CREATE TABLE", "CREATE ANY TABLE"}) and space, how
        if need.privilege == "temp":  # a private temporary table: CREATE TABLE, no quota
            return bool(privs & {"CREATE TABLE", "CREATE ANY TABLE"}), "SESSION_PRIVS"
        return True, how  # tables of the user's own schema: the owner may do anything

    native = dict(_NATIVE, create="CREATE TABLE + tablespace quota")
    native["temp"] = "CREATE TABLE (private temporary table)"
    return has, native, "own schema", "own schema"


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
