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
    (t,) = dry_run(plan)["waves"][0]["steps"][0]["tables"]
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
        [("orders", 1, 1, 1, 0, 1)],
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
