"""The survey (``migrate run --dry-run`` / ``migrate check``) against real servers.

One plan with every kind of problem — an unreachable connection used by two steps, a
MariaDB target login without CREATE and DELETE, a table without a key, a cursor without
an index, a lossy type, a name too long for the target, a foreign-key cycle, a target
table the plan did not create, ``incremental`` without its target table, ``cdc`` without
binlog rights, a table the source lacks, a file name no target can hold, an object store
whose put/delete a reader cannot check — gives each blocker and warning exactly once and
nothing else, writes nothing, and carries the numbers. Then ``--exact``, a pilot's
measured rates, the HTML page, and the per-engine SQL of SQL Server and Oracle (compile
tests: the exact statements, parsed by sqlglot, answered by a recorder).

Privileges are checked against what the server does: for MariaDB and PostgreSQL logins
(roles active or not, the first matching database pattern, grants on one table only,
PostgreSQL 15's public schema, a role owning the schema, pg_write_all_data, TEMPORARY,
SELECT on the target) the survey's verdict is compared with two real runs; MySQL 8's
roles and partial revokes and SQL Server's DROP and IDENTITY_INSERT rights offline. The
read probe's SQL is traced (no ORDER BY without an index, bounded reads); one cause gives
one finding (a table two steps read, a missing bucket or root); two copies into one
target table block; an older state is read from a copy; a partitioned PostgreSQL table
has statistics; the estimate weighs row sizes; the page shows the pilot.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from edge_data import execute
from sqlalchemy.pool import NullPool
from sqlrecorder import offline, parse

from connectors.files import survey as file_survey
from connectors.sql import survey as sql_survey
from connectors.sql.mssql import MSSQLEndpoint
from connectors.sql.oracle import OracleEndpoint
from migrate.cli import main
from migrate.dryrun import dry_run, human_seconds, print_dry_run
from migrate.plan import load_plan
from migrate.survey_html import survey_html

PASSWORD_VAR = "MT_SURVEY_PASSWORD"
LONG = "l" * 64  # a MariaDB name one character too long for PostgreSQL
LONG_COL = "c" * 64


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tables(url: str) -> list[str]:
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        return sorted(sa.inspect(eng).get_table_names())
    finally:
        eng.dispose()


def _admin_s3(s3_server: dict[str, str]) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=s3_server["endpoint"],
        aws_access_key_id=s3_server["access_key"],
        aws_secret_access_key=s3_server["secret_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def _keys(s3: Any, bucket: str) -> list[str]:
    return sorted(
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    )


@pytest.fixture
def bucket(s3_server: dict[str, str]) -> Iterator[str]:
    s3 = _admin_s3(s3_server)
    name = f"mt-{secrets.token_hex(6)}"
    s3.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        for key in _keys(s3, name):
            s3.delete_object(Bucket=name, Key=key)
        s3.delete_bucket(Bucket=name)


@pytest.fixture
def sftp_root(sftp_server: dict[str, str]) -> Iterator[Path]:
    """A folder of the SFTP server's tree, owned by its user (the target of a step)."""
    base = Path(sftp_server["dir"])
    root = base / f"survey-{secrets.token_hex(4)}"
    root.mkdir()
    st = base.stat()
    os.chown(root, st.st_uid, st.st_gid)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _user(server_url: str, database: str, grants: str) -> tuple[str, str, str]:
    """A new login on ``server_url`` with ``grants`` on ``database``: (name, password,
    the account as 'name'@'host')."""
    name, password = f"mt_{secrets.token_hex(5)}", secrets.token_hex(16)
    account = f"'{name}'@'127.0.0.1'"
    execute(server_url, f"CREATE USER {account} IDENTIFIED BY '{password}'")
    if grants:
        execute(server_url, f"GRANT {grants} ON {database}.* TO {account}")
    return name, password, account


@pytest.fixture
def world(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mysql_url: str,
    mysql2_url: str,
    mysql_db: str,
    mysql2_db: str,
    pg_db: str,
    s3_server: dict[str, str],
    sftp_server: dict[str, str],
    bucket: str,
    sftp_root: Path,
) -> Iterator[dict[str, Any]]:
    """The servers filled for the plan with every kind of problem, and the plan."""
    a, b = sa.make_url(mysql_db), sa.make_url(mysql2_db)
    # PostgreSQL source of step pgdb (into the restricted MariaDB login)
    execute(
        pg_db,
        "CREATE TABLE t_lossy (id INT PRIMARY KEY, amount NUMERIC)",
        "INSERT INTO t_lossy SELECT g, g / 7.0 FROM generate_series(1, 40) AS g",
        "CREATE TABLE nokey (a INT, b TEXT)",
        "INSERT INTO nokey SELECT g, 'row ' || g FROM generate_series(1, 25) AS g",
        "CREATE TABLE cyc_a (id INT PRIMARY KEY, b_id INT)",
        "CREATE TABLE cyc_b (id INT PRIMARY KEY, a_id INT REFERENCES cyc_a (id))",
        "ALTER TABLE cyc_a ADD FOREIGN KEY (b_id) REFERENCES cyc_b (id)",
        "CREATE TABLE existing (id INT PRIMARY KEY)",
        "INSERT INTO existing VALUES (1), (2)",
    )
    # MariaDB source of steps mydb, inc, cdc, missing (into PostgreSQL)
    execute(
        mysql_db,
        "CREATE TABLE events (id INT PRIMARY KEY, updated_at DATETIME NOT NULL, note VARCHAR(200))",
        f"CREATE TABLE {LONG} (id INT PRIMARY KEY, {LONG_COL} INT,"
        " updated_at DATETIME NOT NULL, KEY ix_upd (updated_at))",
        "CREATE TABLE later (id INT PRIMARY KEY, updated_at DATETIME NOT NULL,"
        " KEY ix_later (updated_at))",
        "CREATE TABLE cdc_t (id INT PRIMARY KEY, v INT)",
        rows=[
            (
                "INSERT INTO events VALUES (:i, '2026-01-01 00:00:00', :n)",
                [{"i": i, "n": f"note {i} " * 8} for i in range(1, 301)],
            ),
            ("INSERT INTO cdc_t VALUES (:i, :i)", [{"i": i} for i in range(1, 11)]),
        ],
    )
    # the restricted target already holds a table this plan did not create
    execute(mysql2_db, "CREATE TABLE existing (id INT PRIMARY KEY)")
    restricted = _user(mysql2_url, b.database, "SELECT, INSERT, UPDATE, DROP, INDEX, ALTER")
    norepl = _user(mysql_url, a.database, "SELECT")
    assert restricted[1] != norepl[1]
    monkeypatch.setenv(PASSWORD_VAR, restricted[1])
    monkeypatch.setenv(PASSWORD_VAR + "_2", norepl[1])
    # files: a name that is not UTF-8 (no target can hold it), a bucket to read, one to fill
    src, up = tmp_path / "src", tmp_path / "up"
    src.mkdir()
    (src / "fine.txt").write_bytes(b"fine\n" * 100)
    with open(os.fsencode(src) + b"/caf\xe9.txt", "wb") as f:
        f.write(b"latin-1 name")
    up.mkdir()
    (up / "report.csv").write_bytes(b"a,b\n" * 1000)
    s3 = _admin_s3(s3_server)
    s3.put_object(Bucket=bucket, Key="share/big.bin", Body=os.urandom(3 << 20))
    s3.put_object(Bucket=bucket, Key="share/small.txt", Body=b"small")
    netloc = urlsplit(sftp_server["url"]).netloc
    s3_opts = (
        f'endpoint = {_toml(s3_server["endpoint"])}, provider = "seaweedfs",'
        f" access_key = {_toml(s3_server['access_key'])},"
        f" secret_key = {_toml(s3_server['secret_key'])}"
    )
    sftp_opts = (
        f"key_file = {_toml(sftp_server['key'])}, known_hosts = {_toml(sftp_server['known_hosts'])}"
    )

    def login(user: str, var: str, server: sa.URL) -> str:
        """A MariaDB URL whose password comes from ``${var}``."""
        where = f"{server.host}:{server.port}/{server.database}"
        return f"mysql+pymysql://{user}:${{{var}}}@{where}"

    gone_port = _closed_port()
    plan = tmp_path / "survey.toml"
    plan.write_text(
        f"""version = 1
name = "survey"
state = "state/survey.db"

[[batches]]
name = "office"
[[batches]]
name = "business"

[connections]
maria = {{ url = {_toml(mysql_db)} }}
maria_norepl = {{ url = "{login(norepl[0], PASSWORD_VAR + "_2", a)}" }}
restricted = {{ url = "{login(restricted[0], PASSWORD_VAR, b)}" }}
pg = {{ url = {_toml(pg_db)} }}
gone = {{ url = "mysql+pymysql://nobody:GonePw7731x@127.0.0.1:{gone_port}/gone" }}
src = {{ url = {_toml("file:src")} }}
up = {{ url = {_toml("file:up")} }}
dst = {{ url = {_toml("file:dst")} }}
nas = {{ url = {_toml(f"sftp://{netloc}{sftp_root}")}, {sftp_opts} }}
archive = {{ url = "s3://{bucket}/share", {s3_opts} }}
outbox = {{ url = "s3://{bucket}/out", {s3_opts} }}

[[steps]]
name = "share"
batch = "office"
source = "src"
target = "nas"

[[steps]]
name = "fetch"
batch = "office"
source = "archive"
target = "dst"

[[steps]]
name = "upload"
batch = "office"
source = "up"
target = "outbox"

[[steps]]
name = "pgdb"
batch = "business"
source = "pg"
target = "restricted"
tables = ["*"]

[[steps]]
name = "mydb"
batch = "business"
source = "maria"
target = "pg"
tables = ["events", "{LONG}"]
mode = "full+incremental"
cursor = "updated_at"

[[steps]]
name = "inc"
batch = "business"
source = "maria"
target = "pg"
tables = ["later"]
mode = "incremental"
cursor = "updated_at"

[[steps]]
name = "cdc"
batch = "business"
source = "maria_norepl"
target = "pg"
tables = ["cdc_t"]
mode = "cdc"

[[steps]]
name = "missing"
batch = "business"
source = "maria"
target = "pg"
tables = ["no_such_table"]

[[steps]]
name = "gone1"
batch = "business"
source = "gone"
target = "pg"

[[steps]]
name = "gone2"
batch = "business"
source = "gone"
target = "pg"
""",
        encoding="utf-8",
    )
    try:
        yield {
            "plan": plan,
            "tmp": tmp_path,
            "mysql_db": mysql_db,
            "mysql2_db": mysql2_db,
            "pg_db": pg_db,
            "bucket": bucket,
            "s3": s3,
            "sftp_root": sftp_root,
            "passwords": (restricted[1], norepl[1]),
            "restricted_user": restricted[0],
            "s3_secret": s3_server["secret_key"],
        }
    finally:
        execute(mysql2_url, f"DROP USER IF EXISTS {restricted[2]}")
        execute(mysql_url, f"DROP USER IF EXISTS {norepl[2]}")


EXPECTED_BLOCKERS = {
    ("unreachable", "connection gone"),
    ("privilege", "connection restricted"),
    ("table_exists", "step pgdb / table existing"),
    ("no_target_table", "step inc / table later"),
    ("cdc", "connection maria_norepl"),
    ("plan", "step missing"),
    ("file_name", "step share"),
}
EXPECTED_WARNINGS = {
    ("no_key", "step pgdb / table nokey"),
    ("cursor_not_indexed", "step mydb / table events"),
    ("lossy_type", "step pgdb / table t_lossy"),
    ("identifier", f"step mydb / table {LONG}"),
    ("fk_cycle", "step pgdb"),
    ("privilege_unchecked", "connection outbox"),
}


def _snapshot(w: dict[str, Any]) -> dict[str, Any]:
    """Everything the dry run must leave as it was."""
    return {
        "restricted": _tables(w["mysql2_db"]),
        "pg": _tables(w["pg_db"]),
        "maria": _tables(w["mysql_db"]),
        "bucket": _keys(w["s3"], w["bucket"]),
        "nas": sorted(str(p) for p in w["sftp_root"].rglob("*")),
        "tmp": sorted(str(p.relative_to(w["tmp"])) for p in w["tmp"].rglob("*")),
    }


def test_every_problem_is_found_once_and_nothing_is_written(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    plan = load_plan(world["plan"])
    before = _snapshot(world)
    report = dry_run(plan)
    assert _snapshot(world) == before, "the dry run changed a target or wrote a file"
    assert not (world["tmp"] / "state").exists()

    # each blocker and each warning exactly once, and nothing else
    def kinds(findings: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
        return Counter((f["kind"], f["where"]) for f in findings)

    shown = "\n".join(f"{f['level']} {f['where']}: {f['message']}" for f in report["blockers"])
    shown += "\n" + "\n".join(f"warning {f['where']}: {f['message']}" for f in report["warnings"])
    assert kinds(report["blockers"]) == Counter(EXPECTED_BLOCKERS), shown
    assert kinds(report["warnings"]) == Counter(EXPECTED_WARNINGS), shown
    assert report["problems"] == len(EXPECTED_BLOCKERS)
    by = {(f["kind"], f["where"]): f["message"] for f in report["blockers"] + report["warnings"]}
    privilege = by[("privilege", "connection restricted")]
    assert "CREATE" in privilege and "DELETE" in privilege, privilege
    assert "INSERT" not in privilege and "SELECT" not in privilege, privilege
    assert world["restricted_user"] in privilege  # SHOW GRANTS for that user
    assert "Can't connect" in by[("unreachable", "connection gone")]
    assert "lacks REPLICATION SLAVE" in by[("cdc", "connection maria_norepl")]
    assert "no_such_table" in by[("plan", "step missing")]
    assert "caf\\xe9.txt" in by[("file_name", "step share")]
    assert "not valid UTF-8" in by[("file_name", "step share")]
    assert "DECIMAL(65,30)" in by[("lossy_type", "step pgdb / table t_lossy")]
    assert LONG_COL in by[("identifier", f"step mydb / table {LONG}")]
    assert "longer than 63" in by[("identifier", f"step mydb / table {LONG}")]
    assert "cyc_a, cyc_b" in by[("fk_cycle", "step pgdb")]
    assert "not checked by a dry run" in by[("privilege_unchecked", "connection outbox")]

    # the numbers: connections, tables, files, estimates per step and wave
    conns = {c["name"]: c for c in report["connections"]}
    assert set(conns) == {
        "maria",
        "maria_norepl",
        "restricted",
        "pg",
        "gone",
        "src",
        "up",
        "dst",
        "nas",
        "archive",
        "outbox",
    }
    assert conns["gone"]["reachable"] is False and conns["gone"]["steps"] == ["gone1", "gone2"]
    for name in ("maria", "pg", "restricted", "archive", "nas"):
        c = conns[name]
        assert c["reachable"] and c["latency_ms"] is not None and c["latency_ms"] > 0, c
    maria = conns["maria"]
    assert maria["version"] and "MariaDB" in maria["endpoint"]
    assert maria["probe"]["table"] == "events" and maria["probe"]["rows"] == 300
    assert maria["probe"]["rows_per_s"] > 0 and maria["probe"]["bytes_per_s"] > 0
    assert conns["pg"]["probe"]["rows_per_s"] > 0
    archive = conns["archive"]
    assert archive["probe"]["paths"] == ["big.bin"] and archive["probe"]["bytes"] == 3 << 20
    assert archive["probe"]["bytes_per_s"] > 0
    held = {(c["name"], r["privilege"]): r["held"] for c in conns.values() for r in c["privileges"]}
    assert held[("nas", "put")] is True and held[("nas", "delete")] is True
    assert held[("dst", "put")] is True and held[("archive", "list")] is True
    assert held[("archive", "read")] is True and held[("outbox", "put")] is None
    assert held[("restricted", "CREATE")] is False and held[("restricted", "INSERT")] is True
    assert held[("maria", "SELECT")] is True
    assert conns["maria_norepl"]["cdc"]["ok"] is False
    assert "cdc source" in conns["maria_norepl"]["roles"]

    steps = {s["name"]: s for w in report["waves"] for s in w["steps"]}
    assert [(w["batch"], w["layer"]) for w in report["waves"]] == [
        ("office", "data"),
        ("business", "platform"),
    ]
    tables = {(s["name"], t["table"]): t for s in steps.values() for t in s["tables"]}
    events = tables[("mydb", "events")]
    assert events["rows"] is not None and events["rows_from"] == "statistics"
    assert events["bytes"] and events["cursor"] == {"column": "updated_at", "indexed": False}
    assert events["estimate_s"] >= 1 and events["key"] == ["id"]
    assert tables[("mydb", LONG)]["target_table"] != LONG
    assert tables[("pgdb", "nokey")]["key"] == []
    # parents first, then the tables of the cycle in name order
    assert steps["pgdb"]["load_order"] == ["existing", "nokey", "t_lossy", "cyc_a", "cyc_b"]
    assert tables[("pgdb", "cyc_b")]["references"] == ["cyc_a"]
    assert steps["pgdb"]["cycles"] == ["cyc_a, cyc_b"]
    fetch = steps["fetch"]["files"]
    assert (fetch["files"], fetch["bytes"]) == (2, (3 << 20) + 5)
    assert fetch["largest"] == {"path": "big.bin", "size": 3 << 20}
    assert steps["inc"]["estimate"]["seconds"] == 0  # its only table stops the run
    for s in steps.values():
        if s["error"] is None and s["name"] != "inc":
            assert s["estimate"]["seconds"] >= 1, s["name"]
            assert s["rollback"]["can_undo"] and s["rollback"]["cannot_undo"], s["name"]
    created, passes = steps["mydb"]["rollback"]["can_undo"]
    fitted = tables[("mydb", LONG)]["target_table"]
    assert created.startswith(f"drop the 2 table(s) the run creates (events, {fitted})")
    assert "catch-up passes" in passes and "watermark" in passes
    assert steps["pgdb"]["rollback"]["can_undo"][-1] == "existing: nothing (the run would stop)"
    assert ".migrate-backup/" in " ".join(steps["fetch"]["rollback"]["can_undo"])
    assert steps["gone1"]["error"] and steps["gone1"]["estimate"]["seconds"] == 0
    for w in report["waves"]:
        assert w["estimate_s"] == round(sum(s["estimate"]["seconds"] for s in w["steps"]), 1)
    assert report["estimate"]["seconds"] == round(sum(w["estimate_s"] for w in report["waves"]), 1)
    assert report["estimate"]["basis"] == "read probe"

    # JSON, console, HTML: valid, no secret anywhere
    text = json.dumps(report, ensure_ascii=False)
    assert json.loads(text) == json.loads(json.dumps(report, ensure_ascii=False))
    from rich.console import Console

    console = Console(record=True, width=160, soft_wrap=True)
    print_dry_run(console, report)
    out = console.export_text()
    for f in report["blockers"] + report["warnings"]:
        assert sum(1 for line in out.splitlines() if f["message"] in line) == 1, f
    assert "7 problem(s) would stop the run" in out
    page = survey_html(report)
    for secret in (*world["passwords"], "GonePw7731x", world["s3_secret"]):
        assert secret not in text and secret not in out and secret not in page
    _check_html(page)

    # through the command line: exit 2, the JSON and the HTML where asked, still no state
    html = world["tmp"] / "report.html"
    capsys.readouterr()
    code = main(["check", str(world["plan"]), "--json", "--html", str(html)])
    printed = capsys.readouterr().out
    assert code == 2, printed
    assert json.loads(printed)["problems"] == len(EXPECTED_BLOCKERS)
    _check_html(html.read_text(encoding="utf-8"))
    assert not (world["tmp"] / "state" / "survey.db").exists()
    after = _snapshot(world)
    assert after["tmp"] == sorted([*before["tmp"], "report.html"])
    assert {k: v for k, v in after.items() if k != "tmp"} == {
        k: v for k, v in before.items() if k != "tmp"
    }


def _check_html(page: str) -> None:
    """One self-contained document: no script, no stylesheet or image fetched, a chart."""
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<svg" in page and "</svg>" in page and "<rect" in page
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(|\b(src|href)\s*=", page)
    assert not re.search(r"=\s*[\"']?https?://", page)


@pytest.fixture
def pg_to_sqlite(tmp_path: Path, pg_db: str) -> Path:
    """A PostgreSQL table whose statistics say 100 rows while it holds 150."""
    execute(
        pg_db,
        "CREATE TABLE stale (id INT PRIMARY KEY, v TEXT) WITH (autovacuum_enabled = false)",
        "INSERT INTO stale SELECT g, repeat('x', 50) FROM generate_series(1, 100) AS g",
    )
    eng = sa.create_engine(pg_db, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql("ANALYZE stale")
    eng.dispose()
    execute(pg_db, "INSERT INTO stale SELECT g, 'y' FROM generate_series(101, 150) AS g")
    plan = tmp_path / "exact.toml"
    plan.write_text(
        f"""version = 1
name = "exact"
[connections]
pg = {{ url = {_toml(pg_db)} }}
lite = {{ url = "sqlite:///target.db" }}
[[steps]]
name = "copy"
source = "pg"
target = "lite"
tables = ["stale"]
""",
        encoding="utf-8",
    )
    return plan


def test_exact_counts_and_a_pilots_measured_rate(pg_to_sqlite: Path) -> None:
    plan = load_plan(pg_to_sqlite)
    report = dry_run(plan)
    # a SQLite target that does not exist yet: not made, and its folder decides the rights
    assert report["blockers"] == [] and report["warnings"] == [], report["warnings"]
    (lite,) = [c for c in report["connections"] if c["name"] == "lite"]
    assert {r["privilege"]: r["held"] for r in lite["privileges"]} == {"read": True, "write": True}
    (t,) = report["waves"][0]["steps"][0]["tables"]
    assert (t["rows"], t["rows_from"]) == (100, "statistics")
    assert t["bytes"] and t["bytes"] > 0  # pg_table_size
    report = dry_run(plan, exact=True)
    (step,) = report["waves"][0]["steps"]
    (t,) = step["tables"]
    assert (t["rows"], t["rows_from"]) == (150, "exact count")
    assert report["exact"] is True and report["problems"] == 0
    assert step["estimate"]["basis"] == "read probe"
    # a pilot copied 10 rows in 20 s: 150 rows take 300 s, and the report says so
    report = dry_run(
        plan, exact=True, measured={"copy": {"rows": 10, "bytes": None, "seconds": 20}}
    )
    (step,) = report["waves"][0]["steps"]
    assert step["estimate"] == {"seconds": 300.0, "basis": "measured by the pilot"}
    assert report["estimate"]["seconds"] == 300.0
    assert report["estimate"]["basis"] == "measured by the pilot"
    assert not (pg_to_sqlite.parent / "target.db").exists()
    assert not (pg_to_sqlite.parent / ".migrate").exists()


def test_a_pilot_rate_for_a_file_step(tmp_path: Path) -> None:
    """Files: the larger of files x seconds per file and bytes / bytes per second."""
    (tmp_path / "src").mkdir()
    for i in range(10):
        (tmp_path / "src" / f"f{i}.bin").write_bytes(b"z" * 1000)
    plan = tmp_path / "files.toml"
    plan.write_text(
        """version = 1
name = "files"
[connections]
a = { url = "file:src" }
b = { url = "file:dst" }
[[steps]]
name = "share"
source = "a"
target = "b"
""",
        encoding="utf-8",
    )
    p = load_plan(plan)
    measured = {"share": {"rows": 0, "files": 2, "bytes": 4000, "seconds": 8}}
    (step,) = dry_run(p, measured=measured)["waves"][0]["steps"]
    assert step["estimate"] == {"seconds": 40.0, "basis": "measured by the pilot"}
    (step,) = dry_run(p)["waves"][0]["steps"]
    assert step["estimate"]["basis"] == "read probe" and step["estimate"]["seconds"] >= 1
    assert not (tmp_path / "dst").exists()


def test_read_only_rights_of_a_local_target(tmp_path: Path) -> None:
    """``file://``: os.access on the root, or on the folder where it will be made."""
    from connectors.files.local import LocalEndpoint

    root = tmp_path / "not" / "yet"
    ep = LocalEndpoint("t", f"file://{root}", {}, base_dir=tmp_path)
    held, how = file_survey.write_rights(ep)
    assert held is True and str(tmp_path) in how and "does not exist yet" in how
    rows = {r["privilege"]: r for r in file_survey.privileges(ep, {"target"})}
    assert set(rows) == {"list", "put", "delete"} and rows["put"]["held"] is True


def test_human_seconds() -> None:
    assert [human_seconds(s) for s in (0.2, 1, 59.6, 61, 3600 * 2 + 300)] == [
        "< 1 s",
        "~ 1 s",
        "~ 1 min 00 s",
        "~ 1 min 01 s",
        "~ 2 h 05 min",
    ]


# -- MySQL grants, parsed without a server ------------------------------------------------
def test_mysql_grants_are_matched_per_database_and_table() -> None:
    grants, roles = sql_survey.parse_grants(
        [
            "GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*ABCD'",
            "GRANT SELECT, INSERT (`a`, `b`) ON `mt\\_db`.* TO `u`@`%`",
            "GRANT ALL PRIVILEGES ON `other`.`t1` TO `u`@`%`",
            "GRANT DELETE ON `pat%`.* TO `u`@`%`",
        ]
    )
    assert roles is False
    holds = sql_survey.mysql_holds
    assert holds(grants, "SELECT", "mt_db", None)
    assert not holds(grants, "SELECT", "mtxdb", None)  # \\_ is a literal underscore
    assert not holds(grants, "INSERT", "mt_db", "t")  # a column grant is not the table's
    assert holds(grants, "DROP", "other", "t1") and not holds(grants, "DROP", "other", None)
    assert holds(grants, "DELETE", "pattern_db", "x")
    _, roles = sql_survey.parse_grants(["GRANT `app_role` TO `u`@`%`"])
    assert roles is True


# -- SQL Server and Oracle: the exact statements, parsed by sqlglot ------------------------
MSSQL_URL = "mssql+pyodbc://u:pw@127.0.0.1:1433/db?driver=FreeTDS"
ORACLE_URL = "oracle+oracledb://u:pw@127.0.0.1:1521/?service_name=FREEPDB1"


@pytest.mark.parametrize(
    "sql",
    [
        sql_survey.STATS_SQL["mssql"],
        sql_survey.MSSQL_SCHEMA_PRIVS,
        sql_survey.MSSQL_TABLE_PRIVS,
    ],
)
def test_mssql_survey_sql_parses(sql: str) -> None:
    parse(sql, "mssql")


@pytest.mark.parametrize(
    "sql",
    [
        sql_survey.STATS_SQL["oracle"],
        sql_survey.ORACLE_PRIVS,
        sql_survey.ORACLE_QUOTA,
        sql_survey.PING["oracle"],
    ],
)
def test_oracle_survey_sql_parses(sql: str) -> None:
    parse(sql, "oracle")


def test_mssql_statistics_privileges_and_latency_offline() -> None:
    ep, rec = offline(MSSQLEndpoint, MSSQL_URL, (16, 0))
    rec.results = [[("orders", 1200, 90112), ("empty", None, None)]]
    stats = sql_survey.table_stats(ep, ["orders", "empty", "gone"])
    assert stats == {
        "orders": sql_survey.TableStats(1200, 90112),
        "empty": sql_survey.TableStats(None, None),
        "gone": sql_survey.TableStats(None, None),
    }
    assert rec.sql == [sql_survey.STATS_SQL["mssql"]]
    rec.statements.clear()
    # CREATE TABLE and ALTER on the schema held, DELETE on the schema not; orders exists
    rec.results = [
        [("dbo", 1, 1, 1, 1, 1, 0)],
        [("orders", 1, 1, 1, 0, 1, 0)],
    ]
    Need = sql_survey.Need
    rows = sql_survey.privileges(
        ep,
        [
            Need("create", "new_t", "creating tables", exists=False),
            Need("insert", "new_t", "loading rows", exists=False),
            Need("delete", "new_t", "deleting rows", exists=False),
            Need("delete", "orders", "deleting rows"),
            Need("read", "orders", "reading"),
        ],
    )
    assert rec.sql == [sql_survey.MSSQL_SCHEMA_PRIVS, sql_survey.MSSQL_TABLE_PRIVS]
    by = {r["privilege"]: r for r in rows}
    assert by["CREATE TABLE + ALTER on schema"]["held"] is True
    assert by["INSERT"]["held"] is True
    assert by["DELETE"]["held"] is False
    assert by["DELETE"]["missing_on"] == ["schema dbo", "orders"]
    assert by["SELECT"]["held"] is True
    rec.statements.clear()
    rec.results = [[(1,)]] * 6
    assert sql_survey.latency(ep) >= 0
    assert rec.sql == ["SELECT 1"] * 6
    for sql in rec.sql:
        parse(sql, "mssql")


def test_oracle_statistics_names_and_privileges_offline() -> None:
    ep, rec = offline(OracleEndpoint, ORACLE_URL, (19, 0))
    rec.results = [[("ORDERS", 10, 65536), ("MixedCase", None, None)]]
    stats = sql_survey.table_stats(ep, ["orders", "MixedCase"])
    assert stats["orders"] == sql_survey.TableStats(10, 65536)
    assert stats["MixedCase"] == sql_survey.TableStats(None, None)
    rec.statements.clear()
    rec.results = [[("CREATE SESSION",), ("CREATE TABLE",)], [(0,)]]
    (row,) = sql_survey.privileges(
        ep, [sql_survey.Need("create", "t", "creating tables", exists=False)]
    )
    assert rec.sql == [sql_survey.ORACLE_PRIVS, sql_survey.ORACLE_QUOTA]
    assert row["held"] is False  # CREATE TABLE without a quota on the tablespace
    rec.statements.clear()
    rec.results = [[("CREATE TABLE",), ("UNLIMITED TABLESPACE",)], [(0,)]]
    (row,) = sql_survey.privileges(
        ep, [sql_survey.Need("create", "t", "creating tables", exists=False)]
    )
    assert row["held"] is True
    rec.statements.clear()
    rec.results = [[(1,)]] * 6
    sql_survey.latency(ep)
    assert rec.sql == ["SELECT 1 FROM DUAL"] * 6


def test_sqlite_statistics_without_analyze(tmp_path: Path) -> None:
    """No sqlite_stat1: rows unknown (the survey counts); dbstat gives the bytes."""
    from connectors.sql.sqlite import SQLiteEndpoint

    db = sqlite3.connect(tmp_path / "a.db")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, "v" * 100) for i in range(500)])
    db.commit()
    ep = SQLiteEndpoint("a", "sqlite:///a.db", {}, base_dir=tmp_path, dry_run=True)
    try:
        (st,) = sql_survey.table_stats(ep, ["t"]).values()
        assert st.rows is None and st.bytes and st.bytes >= 50_000
        db.execute("ANALYZE")
        db.commit()
        (st,) = sql_survey.table_stats(ep, ["t"]).values()
        assert st.rows == 500
    finally:
        ep.close()
        db.close()


def test_sftp_write_rights_from_the_mode_bits(
    sftp_server: dict[str, str], sftp_root: Path, tmp_path: Path
) -> None:
    """The login owns the root: writable; a folder of another owner, 0755: not; a root
    that does not exist yet: its nearest existing folder decides."""
    from connectors.files.sftp import SFTPEndpoint

    locked = sftp_root / "locked"
    locked.mkdir()
    os.chown(locked, 0, 0)  # root's folder: the SFTP login may read it, not write it
    os.chmod(locked, 0o755)
    netloc = urlsplit(sftp_server["url"]).netloc
    options = {"key_file": sftp_server["key"], "known_hosts": sftp_server["known_hosts"]}

    def rights(path: Path) -> tuple[bool | None, str]:
        ep = SFTPEndpoint("nas", f"sftp://{netloc}{path}", options, base_dir=tmp_path)
        try:
            return file_survey.write_rights(ep)
        finally:
            ep.close()

    held, how = rights(sftp_root)
    assert held is True and f"of {sftp_root}" in how, how
    held, how = rights(locked)
    assert held is False and "mode 0755" in how and "owner uid 0" in how, how
    held, how = rights(sftp_root / "new" / "deeper")
    assert held is True and f"of {sftp_root} " in how, how
    held, how = rights(locked / "new")
    assert held is False and f"of {locked} " in how, how


# -- privileges as the server applies them: the survey's verdict is the run's outcome ------
GRANTEE_PW = "MT_GRANTEE_PASSWORD"


def _sqlite_source(path: Path, rows: int = 30) -> None:
    """A SQLite source: ``items`` with a key and a numeric cursor ``ver``."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, ver INTEGER NOT NULL, v TEXT)")
    db.execute("CREATE INDEX ix_ver ON items (ver)")
    db.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, i, f"v{i}") for i in range(rows)])
    db.commit()
    db.close()


def _grant_plan(tmp_path: Path, target_url: str, mode: str, if_exists: str = "fail") -> Path:
    _sqlite_source(tmp_path / "src.db")
    cursor = 'cursor = "ver"\n' if mode != "full" else ""
    plan = tmp_path / "grants.toml"
    plan.write_text(
        f"""version = 1
name = "grants"
state = "state/grants.db"
[connections]
src = {{ url = "sqlite:///src.db" }}
dst = {{ url = {_toml(target_url)} }}
[[steps]]
name = "copy"
source = "src"
target = "dst"
mode = "{mode}"
if_exists = "{if_exists}"
{cursor}""",
        encoding="utf-8",
    )
    return plan


def _verdict_and_outcome(
    plan_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], bool, str]:
    """The survey's report, then whether two real runs (a full copy, a catch-up pass
    after a change at the source) both succeed, and what they printed."""
    report = dry_run(load_plan(plan_path))
    capsys.readouterr()
    first = main(["run", str(plan_path), "--quiet"])
    db = sqlite3.connect(plan_path.parent / "src.db")
    db.execute("UPDATE items SET ver = ver + 1000, v = 'changed' WHERE id < 5")
    db.commit()
    db.close()
    second = main(["run", str(plan_path), "--quiet"]) if first == 0 else first
    out = capsys.readouterr()
    return report, first == 0 and second == 0, out.out + out.err


MARIADB_CASES = {
    # ALL on the database through a role granted to the default role: held, no warning
    "default_role": (
        "'%'",
        [
            "CREATE ROLE {r}_in",
            "GRANT ALL ON {db}.* TO {r}_in",
            "CREATE ROLE {r}",
            "GRANT {r}_in TO {r}",
            "GRANT {r} TO {u}",
            "SET DEFAULT ROLE {r} FOR {u}",
        ],
        "full",
        None,
    ),
    # the same role, granted but not active at login: a run does not have its rights
    "role_not_active": (
        "'127.0.0.1'",
        [
            "GRANT SELECT ON {db}.* TO {u}",
            "CREATE ROLE {r}",
            "GRANT ALL ON {db}.* TO {r}",
            "GRANT {r} TO {u}",
        ],
        "full",
        "not active at login",
    ),
    # the most specific database pattern wins: `db` (SELECT) hides `mt%` (ALL)
    "first_matching_pattern": (
        "'127.0.0.1'",
        ["GRANT SELECT ON `{db_escaped}`.* TO {u}", "GRANT ALL ON `mt%`.* TO {u}"],
        "full",
        "INSERT",
    ),
    "all_on_everything": ("'%'", ["GRANT ALL PRIVILEGES ON *.* TO {u}"], "full", None),
    # a table-level grant may name a table before it exists: enough to create it
    "grants_on_the_table_only": ("'127.0.0.1'", ["GRANT ALL ON {db}.items TO {u}"], "full", None),
    # the run looks the table up and counts what it wrote: SELECT on the target
    "no_select": (
        "'127.0.0.1'",
        ["GRANT INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON {db}.* TO {u}"],
        "full",
        "SELECT",
    ),
    # catch-up passes merge through a temporary staging table
    "no_temporary_tables": (
        "'127.0.0.1'",
        ["GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON {db}.* TO {u}"],
        "full+incremental",
        "CREATE TEMPORARY TABLES",
    ),
}


@pytest.mark.parametrize("case", list(MARIADB_CASES))
def test_mariadb_privileges_as_the_server_applies_them(
    case: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mysql_url: str,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host, grants, mode, missing = MARIADB_CASES[case]
    url = sa.make_url(mysql_db)
    name, password = f"mt_{secrets.token_hex(5)}", secrets.token_hex(16)
    user, role = f"'{name}'@{host}", f"mt_r{secrets.token_hex(5)}"
    monkeypatch.setenv(GRANTEE_PW, password)
    _mysql_admin(mysql_url, f"CREATE USER {user} IDENTIFIED BY '{password}'")
    try:
        _mysql_admin(
            mysql_url,
            *[
                sql.format(
                    u=user, r=role, db=url.database, db_escaped=url.database.replace("_", "\\_")
                )
                for sql in grants
            ],
        )
        target = f"mysql+pymysql://{name}:${{{GRANTEE_PW}}}@{url.host}:{url.port}/{url.database}"
        report, works, printed = _verdict_and_outcome(_grant_plan(tmp_path, target, mode), capsys)
    finally:
        _mysql_admin(
            mysql_url,
            f"DROP USER IF EXISTS {user}",
            f"DROP ROLE IF EXISTS {role}",
            f"DROP ROLE IF EXISTS {role}_in",
        )
    blockers = [(f["kind"], f["where"], f["message"]) for f in report["blockers"]]
    if missing is None:
        assert blockers == [] and report["warnings"] == [] and works, (report, printed)
        return
    assert not works, f"the survey found {missing} missing, but the run worked"
    ((kind, where, message),) = blockers
    assert (kind, where) == ("privilege", "connection dst"), blockers
    assert missing in message and password not in message, message


PG_CASES = {
    # PostgreSQL 15: CREATE on schema public is the database owner's only
    "public_schema_pg15": ([], "full", "fail", "CREATE on schema public"),
    # a member of the role that owns the schema creates in it
    "member_of_the_schema_owner": (
        ["CREATE ROLE {r} NOLOGIN", "ALTER SCHEMA public OWNER TO {r}", "GRANT {r} TO {u}"],
        "full",
        "fail",
        None,
    ),
    # catch-up merges stage rows in a TEMP table: TEMPORARY on the database
    "no_temporary": (
        [
            "ALTER SCHEMA public OWNER TO {u}",
            "REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC",
        ],
        "full+incremental",
        "fail",
        "TEMPORARY",
    ),
    # someone else's table, emptied first: pg_write_all_data does the DML, but its rows
    # are kept in a backup table the login must be able to create, and only the owner
    # may add the index the table lacks
    "write_all_data_truncate": (
        [
            "CREATE TABLE items (id INT PRIMARY KEY, ver INT NOT NULL, v TEXT)",
            "GRANT pg_read_all_data, pg_write_all_data TO {u}",
        ],
        "full",
        "truncate",
        "CREATE on schema public",
    ),
    # ... with CREATE, into a table that has its index already: nothing is missing
    "write_all_data_truncate_indexed": (
        [
            "CREATE TABLE items (id INT PRIMARY KEY, ver INT NOT NULL, v TEXT)",
            "CREATE INDEX ix_ver ON items (ver)",
            "GRANT pg_read_all_data, pg_write_all_data TO {u}",
            "GRANT CREATE ON SCHEMA public TO {u}",
        ],
        "full",
        "truncate",
        None,
    ),
}


@pytest.mark.parametrize("case", list(PG_CASES))
def test_postgresql_privileges_as_the_server_applies_them(
    case: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pg_url: str,
    pg_db: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    statements, mode, if_exists, missing = PG_CASES[case]
    url = sa.make_url(pg_db)
    assert _pg_major(pg_db) >= 15  # CREATE on public is not PUBLIC's any more
    user, role = f"mt_{secrets.token_hex(5)}", f"mt_r{secrets.token_hex(5)}"
    password = secrets.token_hex(16)
    monkeypatch.setenv(GRANTEE_PW, password)
    execute(pg_url, f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
    try:
        for sql in statements:
            execute(pg_db, sql.format(u=user, r=role, db=url.database))
        target = url.set(username=user, password=None).render_as_string()
        target = target.replace(f"{user}@", f"{user}:${{{GRANTEE_PW}}}@")
        report, works, printed = _verdict_and_outcome(
            _grant_plan(tmp_path, target, mode, if_exists), capsys
        )
    finally:
        for r in (user, role):
            execute(pg_db, f"DROP OWNED BY {r} CASCADE") if _role_exists(pg_url, r) else None
            execute(pg_url, f"DROP ROLE IF EXISTS {r}")
    blockers = [(f["kind"], f["where"], f["message"]) for f in report["blockers"]]
    if missing is None:
        assert blockers == [] and report["warnings"] == [] and works, (report, printed)
        return
    assert not works, f"the survey found {missing} missing, but the run worked"
    ((kind, where, message),) = blockers
    assert (kind, where) == ("privilege", "connection dst"), blockers
    assert missing in message and password not in message, message


def _mysql_admin(server_url: str, *statements: str) -> None:
    """Run statements as the server's root, as they are (no parameter markers)."""
    import pymysql

    url = sa.make_url(server_url)
    conn = pymysql.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password or "",
        autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def _pg_major(url: str) -> int:
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            return int(conn.exec_driver_sql("SHOW server_version_num").scalar_one()) // 10000
    finally:
        eng.dispose()


def _role_exists(url: str, role: str) -> bool:
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT 1 FROM pg_roles WHERE rolname = %(r)s", {"r": role}
            ).first()
            return found is not None
    finally:
        eng.dispose()


# -- MySQL 8 (no server here): active roles read with USING; patterns; partial revokes --
MYSQL8_URL = "mysql+pymysql://u:pw@127.0.0.1:3306/app"


def _mysql8_needs() -> list[sql_survey.Need]:
    Need = sql_survey.Need
    return [
        Need("create", "t", "creating tables", exists=False),
        Need("insert", "t", "loading rows", exists=False),
        Need("drop", "t", "rollback", exists=False, blocking=False),
    ]


def test_mysql8_active_roles_are_read_with_using() -> None:
    from connectors.sql.mysql import MySQLEndpoint

    ep, rec = offline(MySQLEndpoint, MYSQL8_URL, (8, 0, 36))
    rec.results = [
        [("app", "u@%")],
        [("`writer`@`%`,`reader`@`%`",)],
        # what USING shows: the roles' privileges as the account's
        [
            ("GRANT USAGE ON *.* TO `u`@`%`",),
            ("GRANT SELECT, INSERT, CREATE ON `app`.* TO `u`@`%`",),
            ("GRANT `writer`@`%`,`reader`@`%` TO `u`@`%`",),
        ],
    ]
    rows = {r["privilege"]: r for r in sql_survey.privileges(ep, _mysql8_needs())}
    assert rec.sql == [
        sql_survey.MYSQL_SESSION,
        sql_survey.MYSQL_ROLE,
        "SHOW GRANTS FOR CURRENT_USER() USING `writer`@`%`, `reader`@`%`",
    ]
    assert rows["CREATE"]["held"] is True and rows["INSERT"]["held"] is True
    assert rows["DROP"]["held"] is False  # none of the active roles gives it
    assert "active role: writer, reader" in rows["DROP"]["how"]
    # USING refused (a role no longer granted): the roles' rights cannot be told
    ep, rec = offline(MySQLEndpoint, MYSQL8_URL, (8, 0, 36))
    rec.results = [
        [("app", "u@%")],
        [("`writer`@`%`",)],
        sa.exc.DBAPIError("SHOW GRANTS", {}, Exception("3530")),
        [("GRANT USAGE ON *.* TO `u`@`%`",), ("GRANT `writer`@`%` TO `u`@`%`",)],
    ]
    rows = {r["privilege"]: r for r in sql_survey.privileges(ep, _mysql8_needs())}
    assert rec.sql[-1] == "SHOW GRANTS"
    assert rows["CREATE"]["held"] is None and "could not be read" in rows["CREATE"]["how"]
    # a role granted but none active at login (no default role): the run lacks its rights
    ep, rec = offline(MySQLEndpoint, MYSQL8_URL, (8, 0, 36))
    rec.results = [
        [("app", "u@%")],
        [("NONE",)],
        [("GRANT USAGE ON *.* TO `u`@`%`",), ("GRANT `writer`@`%` TO `u`@`%`",)],
    ]
    rows = {r["privilege"]: r for r in sql_survey.privileges(ep, _mysql8_needs())}
    assert rec.sql[-1] == "SHOW GRANTS"
    assert rows["CREATE"]["held"] is False and "not active at login" in rows["CREATE"]["how"]


def test_mysql_grants_first_matching_pattern_partial_revokes_and_table_names() -> None:
    holds = sql_survey.mysql_holds
    grants, roles = sql_survey.parse_grant_lines(
        [
            "GRANT SELECT ON `mt\\_db`.* TO `u`@`%`",
            "GRANT ALL PRIVILEGES ON `mt%`.* TO `u`@`%`",
            "GRANT INSERT ON `m%`.* TO `u`@`%`",
            "GRANT PROXY ON `root`@`localhost` TO `u`@`%`",
        ]
    )
    assert roles == []
    # the exact name is the first match: the broader patterns do not add to it
    assert holds(grants, "SELECT", "mt_db", None) is True
    assert holds(grants, "INSERT", "mt_db", None) is False
    # for another database the most specific matching pattern decides
    assert holds(grants, "DELETE", "mt_other", None) is True  # `mt%` before `m%`
    assert holds(grants, "DELETE", "mx", None) is False  # only `m%` matches
    # two equally specific patterns that disagree: the server's pick is unknown
    grants, _ = sql_survey.parse_grant_lines(
        ["GRANT INSERT ON `a_c`.* TO `u`@`%`", "GRANT SELECT ON `ab_`.* TO `u`@`%`"]
    )
    assert holds(grants, "INSERT", "abc", None) is None
    # a table grant names its database literally; a role's grants are checked on their own
    grants, _ = sql_survey.parse_grant_lines(
        [
            "GRANT SELECT ON `mt_db`.`t` TO `u`@`%`",
            "GRANT DELETE ON `app`.* TO `r`",
            "GRANT UPDATE ON `app`.* TO PUBLIC",
        ]
    )
    assert holds(grants, "SELECT", "mt_db", "t") is True
    assert holds(grants, "SELECT", "mtxdb", "t") is False
    assert holds(grants, "DELETE", "app", None) is True
    assert holds(grants, "UPDATE", "app", None) is True
    # MySQL 8 partial revokes take a global privilege back on one database
    grants, _ = sql_survey.parse_grant_lines(
        ["GRANT SELECT, INSERT ON *.* TO `u`@`%`", "REVOKE INSERT ON `app`.* FROM `u`@`%`"]
    )
    assert holds(grants, "INSERT", "app", None) is False
    assert holds(grants, "INSERT", "other", None) is True
    assert holds(grants, "SELECT", "app", None) is True


def test_mssql_drop_needs_alter_on_the_schema_or_control_on_the_table() -> None:
    ep, rec = offline(MSSQLEndpoint, MSSQL_URL, (16, 0))
    Need = sql_survey.Need
    needs = [Need("drop", "orders", 'replacing tables (if_exists = "replace")')]
    # ALTER on the table only: DROP TABLE is refused
    rec.results = [[("dbo", 1, 0, 1, 1, 1, 1)], [("orders", 1, 1, 1, 1, 1, 0)]]
    (row,) = sql_survey.privileges(ep, needs)
    assert row["held"] is False and "CONTROL" in row["how"]
    rec.results = [[("dbo", 1, 0, 1, 1, 1, 1)], [("orders", 1, 1, 1, 1, 1, 1)]]
    (row,) = sql_survey.privileges(ep, needs)
    assert row["held"] is True  # CONTROL on the table
    rec.results = [[("dbo", 1, 1, 1, 1, 1, 1)], [("orders", 1, 1, 1, 1, 0, 0)]]
    (row,) = sql_survey.privileges(ep, needs)
    assert row["held"] is True  # ALTER on the schema
    # explicit values into an identity column: SET IDENTITY_INSERT needs ALTER on the table
    identity = [Need("identity", "orders", "explicit values into its identity column")]
    rec.results = [[("dbo", 1, 1, 1, 1, 1, 1)], [("orders", 1, 1, 1, 1, 0, 0)]]
    (row,) = sql_survey.privileges(ep, identity)
    assert (row["privilege"], row["held"]) == ("ALTER (SET IDENTITY_INSERT)", False)
    rec.results = [[("dbo", 1, 1, 1, 1, 1, 1)], [("orders", 1, 1, 1, 1, 1, 0)]]
    (row,) = sql_survey.privileges(ep, identity)
    assert row["held"] is True
    # elsewhere INSERT is all it takes
    ora, orec = offline(OracleEndpoint, ORACLE_URL, (19, 0))
    orec.results = [[("CREATE SESSION",)], [(0,)]]
    (row,) = sql_survey.privileges(ora, identity)
    assert (row["privilege"], row["held"]) == ("INSERT", True)


# -- the read probe: bounded reads, in index order only ---------------------------------
def _traced(ep: Any) -> list[str]:
    """Every statement the endpoint's SQLite connections run from now on."""
    statements: list[str] = []
    engine = ep.engine
    sa.event.listen(engine, "connect", lambda c, _r: c.set_trace_callback(statements.append))
    engine.dispose()  # the pooled connection was made before the trace
    return statements


def test_read_probe_reads_in_index_order_only_and_in_bounded_reads(tmp_path: Path) -> None:
    """A key no index leads with is never ORDER BY'd (a sort of the whole table); every
    read has a LIMIT; a table of 256 KiB rows is not read past the byte budget."""
    from connectors.sql.sqlite import SQLiteEndpoint

    row = 256 << 10
    db = sqlite3.connect(tmp_path / "wide.db")
    db.execute("CREATE TABLE wide (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, b BLOB)")
    db.executemany(
        "INSERT INTO wide VALUES (?, ?, ?)", [(i, 100 - i, b"x" * row) for i in range(40)]
    )
    db.execute("CREATE TABLE pairs (a INTEGER NOT NULL, b INTEGER NOT NULL, PRIMARY KEY (a, b))")
    db.executemany("INSERT INTO pairs VALUES (?, ?)", [(i // 10, i % 10) for i in range(5000)])
    db.commit()
    db.close()
    ep = SQLiteEndpoint("w", "sqlite:///wide.db", {}, base_dir=tmp_path, dry_run=True)
    try:
        schema = ep.read_schema("wide")
        assert sql_survey.key_indexed(schema, ("id",))
        assert not sql_survey.key_indexed(schema, ("k",))
        for key, ordered in ((("k",), False), (("id",), True)):
            statements = _traced(ep)
            probe = sql_survey.read_probe(
                ep, schema, key, seconds=30, max_bytes=1 << 20, row_bytes=row
            )
            reads = [s for s in statements if "FROM wide" in s]
            assert reads and all("LIMIT" in s for s in reads), reads
            assert any("ORDER BY" in s for s in reads) is ordered, reads
            assert probe["ordered"] is ordered
            assert probe["bytes"] <= (1 << 20) + row, probe  # not the table's 10 MiB
            assert 1 <= probe["rows"] <= 5 and probe["rows_per_s"], probe
            if ordered:  # later reads start after the last key read
                assert "ORDER BY wide.id" in reads[0] and all("wide.id >" in s for s in reads[1:])
        # a key of two columns: each read starts over in index order; never the
        # `a > x OR (a = x AND b > y)` some planners answer with every later row
        statements = _traced(ep)
        pairs = ep.read_schema("pairs")
        probe = sql_survey.read_probe(ep, pairs, ("a", "b"), seconds=30, max_rows=2000)
        reads = [s for s in statements if "FROM pairs" in s]
        assert len(reads) > 1 and probe["ordered"] is True, reads
        assert all("ORDER BY pairs.a, pairs.b" in s and " OR " not in s for s in reads), reads
    finally:
        ep.close()


# -- a table read by two steps, two copies into one target table ---------------------------
def test_a_table_in_two_steps_is_one_finding_and_two_copies_into_one_table_block(
    tmp_path: Path,
) -> None:
    db = sqlite3.connect(tmp_path / "src.db")
    db.execute("CREATE TABLE loose (a INTEGER, b TEXT)")
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT)")
    db.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, -i, "v") for i in range(50)])
    db.executemany("INSERT INTO loose VALUES (?, ?)", [(i, "b") for i in range(20)])
    db.commit()
    db.close()
    plan = tmp_path / "twice.toml"
    plan.write_text(
        """version = 1
name = "twice"
[connections]
src = { url = "sqlite:///src.db" }
dst = { url = "sqlite:///dst.db" }
dst2 = { url = "sqlite:///dst2.db" }
[[steps]]
name = "one"
source = "src"
target = "dst"
tables = ["loose", "items"]
overrides.items.key = ["k"]
[[steps]]
name = "two"
source = "src"
target = "dst2"
tables = ["loose", "items"]
overrides.items.key = ["k"]
[[steps]]
name = "three"
source = "src"
target = "dst"
tables = ["items"]
""",
        encoding="utf-8",
    )
    report = dry_run(load_plan(plan))
    warnings = Counter((f["kind"], f["where"]) for f in report["warnings"])
    assert warnings == Counter(
        {
            ("no_key", "steps one, two / table loose"): 1,
            ("key_not_indexed", "steps one, two / table items"): 1,
        }
    ), report["warnings"]
    (conflict,) = report["blockers"]
    assert (conflict["kind"], conflict["where"]) == (
        "target_conflict",
        "connection dst / table items",
    )
    assert "step one (table items), step three (table items)" in conflict["message"]
    by_kind = {f["kind"]: f for f in report["warnings"]}
    assert by_kind["no_key"]["steps"] == ["one", "two"]
    assert "ORDER BY key" in by_kind["key_not_indexed"]["message"]
    # the source's probe read items in the order of the key step three uses (its primary key)
    (src,) = [c for c in report["connections"] if c["name"] == "src"]
    assert src["probe"]["table"] == "items" and src["probe"]["ordered"] is True
    assert not (tmp_path / "dst.db").exists() and not (tmp_path / "dst2.db").exists()


# -- a state of an older schema ------------------------------------------------------------
def test_a_state_of_an_older_schema_is_surveyed_from_a_copy(tmp_path: Path) -> None:
    """After an upgrade of the tool, the state is at schema 5 until the next run: the
    survey reads it (the table is done) and leaves it and the temporary folder as they were."""
    import tempfile

    from migrate.state import MIGRATIONS

    _sqlite_source(tmp_path / "src.db")
    shutil.copy(tmp_path / "src.db", tmp_path / "dst.db")
    (tmp_path / "state").mkdir()
    state = tmp_path / "state" / "old.db"
    db = sqlite3.connect(state)
    for version in range(1, 6):
        for sql in MIGRATIONS[version]:
            db.execute(sql)
    db.execute("INSERT INTO meta VALUES ('schema_version', '5'), ('plan', 'old')")
    db.execute(
        "INSERT INTO tables (step, name, target_name, status, rows_copied)"
        " VALUES ('copy', 'items', 'items', 'done', 30)"
    )
    db.execute(
        "INSERT INTO undo (run_id, step, connection, action, object, detail, created_at)"
        " VALUES (1, 'copy', 'dst', 'drop_table', 'items', '{}', '2026-01-01')"
    )
    db.commit()
    db.close()
    plan = tmp_path / "old.toml"
    plan.write_text(
        """version = 1
name = "old"
state = "state/old.db"
[connections]
src = { url = "sqlite:///src.db" }
dst = { url = "sqlite:///dst.db" }
[[steps]]
name = "copy"
source = "src"
target = "dst"
""",
        encoding="utf-8",
    )
    before = state.read_bytes()
    temp = set(Path(tempfile.gettempdir()).glob("migrate-survey-*"))
    report = dry_run(load_plan(plan))
    (t,) = report["waves"][0]["steps"][0]["tables"]
    assert t["action_code"] == "done", t
    assert report["problems"] == 0, report["blockers"]
    assert state.read_bytes() == before
    assert sorted(p.name for p in state.parent.iterdir()) == ["old.db"]
    assert set(Path(tempfile.gettempdir()).glob("migrate-survey-*")) == temp


# -- the page after a pilot ----------------------------------------------------------------
def test_the_page_shows_what_the_pilot_copied_and_that_it_was_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = sqlite3.connect(tmp_path / "src.db")
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    db.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"name {i}") for i in range(200)])
    db.commit()
    db.close()
    (tmp_path / "share").mkdir()
    for i in range(6):
        (tmp_path / "share" / f"f{i}.bin").write_bytes(bytes([i]) * 3000)
    plan = tmp_path / "pilot.toml"
    plan.write_text(
        """version = 1
name = "pilot"
state = "state/pilot.db"
[connections]
src = { url = "sqlite:///src.db" }
dst = { url = "sqlite:///dst.db" }
share = { url = "file:share" }
archive = { url = "file:archive" }
[[steps]]
name = "db"
source = "src"
target = "dst"
[[steps]]
name = "files"
source = "share"
target = "archive"
""",
        encoding="utf-8",
    )
    html = tmp_path / "survey.html"
    code = main(["check", str(plan), "--pilot", "25", "--pilot-prefix", "p_", "--html", str(html)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    page = html.read_text(encoding="utf-8")
    _check_html(page)
    section = page[page.index('<h2 id="pilot">') :]
    assert "under the prefix <code>p_</code>" in section
    # one row per table: source, target, rows copied, seconds, a rate, how it was checked
    row = re.search(
        r"<tr><td>db</td><td>items</td><td>p_items</td><td class=\"n\">25 row\(s\)</td>"
        r"<td class=\"n\">[\d.]+</td><td class=\"n\">[\d,]+ rows/s</td>"
        r"<td class=\"ok\">done</td><td>pilot rows compared by checksum: 25 equal</td></tr>",
        section,
    )
    assert row, section
    assert re.search(r"<td>files</td><td>files</td><td></td><td class=\"n\">6 file\(s\)", section)
    assert "each file's hash, as it was written" in section
    assert re.search(r"Removed: \d+ recorded change\(s\) rolled back", section), section
    assert not (tmp_path / "archive").exists() or not any((tmp_path / "archive").rglob("*"))


# -- the estimate ----------------------------------------------------------------------------
def test_tables_of_wider_rows_than_the_probes_are_estimated_slower(tmp_path: Path) -> None:
    """rows / probe rate × (row size / the probe table's row size) when wider; never
    faster than the probe's rate per row; a pilot's measured rate is used as it is."""
    from migrate.dryrun import _Conn, _Survey

    plan = tmp_path / "est.toml"
    plan.write_text(
        """version = 1
name = "est"
[connections]
src = { url = "sqlite:///src.db" }
dst = { url = "sqlite:///dst.db" }
[[steps]]
name = "copy"
source = "src"
target = "dst"
""",
        encoding="utf-8",
    )
    survey = _Survey(load_plan(plan), (), False, {})
    probe = {"rows": 1000, "bytes": 50_000, "rows_per_s": 1000.0, "row_bytes": 100.0}
    survey.conns["src"] = _Conn("src", "table", out={"probe": probe})
    step: dict[str, Any] = {
        "name": "copy",
        "kind": "table",
        "source": "src",
        "error": None,
        "tables": [
            {"table": "narrow", "rows": 5000, "bytes": 250_000, "action_code": "create"},
            {"table": "wide", "rows": 5000, "bytes": 5_000_000, "action_code": "create"},
            {"table": "unknown", "rows": 5000, "bytes": None, "action_code": "create"},
            {"table": "tiny", "rows": 3, "bytes": 30, "action_code": "create"},
        ],
    }
    survey._estimate(step)
    assert [t["estimate_s"] for t in step["tables"]] == [5.0, 50.0, 5.0, 1.0]
    assert step["estimate"] == {"seconds": 61.0, "basis": "read probe"}
    unknown = step["tables"][2]
    assert (unknown["bytes"], unknown["bytes_from"]) == (250_000, "the probe's average row size")
    survey.measured = {"copy": {"rows": 100, "bytes": None, "seconds": 1.0}}
    survey._estimate(step)
    assert [t["estimate_s"] for t in step["tables"]] == [50.0, 50.0, 50.0, 1.0]
    assert step["estimate"]["basis"] == "measured by the pilot"


# -- one cause, one finding: missing buckets and roots -------------------------------------
def test_a_missing_bucket_or_source_root_is_one_finding(
    tmp_path: Path, s3_server: dict[str, str]
) -> None:
    """A bucket that does not exist is one blocker for its connection (not also a failed
    listing per step and a missing list right); a missing local source root read by two
    steps is one blocker naming both."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    s3 = (
        f'endpoint = {_toml(s3_server["endpoint"])}, provider = "seaweedfs",'
        f" access_key = {_toml(s3_server['access_key'])},"
        f" secret_key = {_toml(s3_server['secret_key'])}"
    )
    gone_out, gone_in = f"mt-gone-{secrets.token_hex(4)}", f"mt-gone-{secrets.token_hex(4)}"
    plan = tmp_path / "buckets.toml"
    plan.write_text(
        f"""version = 1
name = "buckets"
[connections]
src = {{ url = "file:src" }}
dst = {{ url = "file:dst" }}
nowhere = {{ url = "file:not/mounted" }}
outbox = {{ url = "s3://{gone_out}/up", {s3} }}
inbox = {{ url = "s3://{gone_in}/down", {s3} }}
[[steps]]
name = "up"
source = "src"
target = "outbox"
[[steps]]
name = "down"
source = "inbox"
target = "dst"
[[steps]]
name = "a"
source = "nowhere"
target = "dst"
[[steps]]
name = "b"
source = "nowhere"
target = "dst"
""",
        encoding="utf-8",
    )
    report = dry_run(load_plan(plan))
    found = Counter(
        (f["level"], f["kind"], f["where"]) for f in report["blockers"] + report["warnings"]
    )
    assert found == Counter(
        {
            ("blocker", "no_bucket", "connection outbox"): 1,
            ("blocker", "no_bucket", "connection inbox"): 1,
            ("blocker", "file_step", "steps a, b"): 1,
        }
    ), report["blockers"] + report["warnings"]
    by = {f["where"]: f["message"] for f in report["blockers"]}
    assert gone_out in by["connection outbox"] and "does not exist" in by["connection outbox"]
    assert s3_server["secret_key"] not in json.dumps(report)
    steps = {s["name"]: s for w in report["waves"] for s in w["steps"]}
    assert steps["up"]["error"] and steps["down"]["error"]
    assert not (tmp_path / "dst").exists()


def test_a_partitioned_postgresql_table_has_the_statistics_of_its_partitions(pg_db: str) -> None:
    """The parent of partitions has no statistics of its own (autovacuum never analyses
    it): without its partitions' sums the survey would count every row of them."""
    from connectors.sql.postgresql import PostgreSQLEndpoint

    execute(
        pg_db,
        "CREATE TABLE parted (id INT PRIMARY KEY, v TEXT) PARTITION BY RANGE (id)",
        "CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM (0) TO (1000)",
        "CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM (1000) TO (2000)",
        "INSERT INTO parted SELECT g, 'v' FROM generate_series(0, 1499) AS g",
        "CREATE TABLE parted_none (id INT) PARTITION BY RANGE (id)",
        "CREATE TABLE parted_none_a PARTITION OF parted_none FOR VALUES FROM (0) TO (10)",
    )
    eng = sa.create_engine(pg_db, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql("ANALYZE parted_a")
        conn.exec_driver_sql("ANALYZE parted_b")
    eng.dispose()
    ep = PostgreSQLEndpoint("pg", pg_db, {}, base_dir=Path("."), dry_run=True)
    try:
        stats = sql_survey.table_stats(ep, ["parted", "parted_a", "parted_none"])
    finally:
        ep.close()
    assert stats["parted"].rows == 1500 and (stats["parted"].bytes or 0) > 0, stats
    assert stats["parted_a"].rows == 1000
    assert stats["parted_none"].rows is None  # a partition never analysed: unknown


def test_a_source_table_the_login_cannot_read_blocks_and_is_not_probed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mysql_url: str,
    mysql_db: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The largest table, visible to the login (INSERT) but not readable: SELECT is
    missing (a blocker, as the run fails), and the probe reads a table it can read."""
    url = sa.make_url(mysql_db)
    execute(
        mysql_db,
        "CREATE TABLE small (id INT PRIMARY KEY, v VARCHAR(20))",
        "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(200))",
        rows=[
            ("INSERT INTO small VALUES (:i, 'v')", [{"i": i} for i in range(20)]),
            ("INSERT INTO big VALUES (:i, :v)", [{"i": i, "v": "x" * 150} for i in range(2000)]),
        ],
    )
    execute(mysql_db, "ANALYZE TABLE small, big")
    name, password = f"mt_{secrets.token_hex(5)}", secrets.token_hex(16)
    user = f"'{name}'@'127.0.0.1'"
    monkeypatch.setenv(GRANTEE_PW, password)
    _mysql_admin(
        mysql_url,
        f"CREATE USER {user} IDENTIFIED BY '{password}'",
        f"GRANT SELECT ON {url.database}.small TO {user}",
        f"GRANT INSERT ON {url.database}.big TO {user}",
    )
    try:
        source = f"mysql+pymysql://{name}:${{{GRANTEE_PW}}}@{url.host}:{url.port}/{url.database}"
        plan = tmp_path / "unreadable.toml"
        plan.write_text(
            f"""version = 1
name = "unreadable"
state = "state/u.db"
[connections]
maria = {{ url = {_toml(source)} }}
lite = {{ url = "sqlite:///out.db" }}
[[steps]]
name = "copy"
source = "maria"
target = "lite"
tables = ["small", "big"]
""",
            encoding="utf-8",
        )
        report = dry_run(load_plan(plan))
        capsys.readouterr()
        code = main(["run", str(plan), "--quiet"])
    finally:
        _mysql_admin(mysql_url, f"DROP USER IF EXISTS {user}")
    found = [(f["level"], f["kind"], f["where"]) for f in report["blockers"] + report["warnings"]]
    assert found == [("blocker", "privilege", "connection maria")], report["blockers"]
    assert "SELECT on big" in report["blockers"][0]["message"]
    (maria,) = [c for c in report["connections"] if c["name"] == "maria"]
    assert maria["probe"]["table"] == "small" and maria["probe"]["rows"] == 20
    assert code != 0  # the run fails as the survey said


def test_the_survey_leaves_no_wal_files_beside_a_wal_mode_sqlite_source(
    tmp_path: Path,
) -> None:
    """A read-only open of a WAL-mode SQLite file makes -wal/-shm files unless it is
    opened immutable: the survey writes nothing, not even those."""
    src = tmp_path / "wal.db"
    db = sqlite3.connect(src)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.execute("INSERT INTO t VALUES (1, 'a')")
    db.commit()
    db.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wal.db"]
    plan = tmp_path / "p.toml"
    plan.write_text(
        'version = 1\nname = "p"\nstate = "s/state.db"\n[connections]\n'
        'src = { url = "sqlite:///wal.db" }\ndst = { url = "sqlite:///dst.db" }\n'
        '[[steps]]\nname = "s"\nsource = "src"\ntarget = "dst"\ntables = ["*"]\n',
        encoding="utf-8",
    )
    report = dry_run(load_plan(plan))
    assert report["problems"] == 0, report["blockers"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.toml", "wal.db"]
