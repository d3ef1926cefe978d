#!/usr/bin/env python3
"""Validate a copied table: ``migrate validate`` vs reladiff vs ``CHECKSUM TABLE``.

    .venv/bin/python bench/validate_1m.py --rows 1000000 --repeat 3

1. Builds ``bench_src.orders`` (the table of ``copy_1m.py``, N rows generated on the
   server, deterministic) on MariaDB A (127.0.0.1:33306) and, with the same generator, an
   identical copy on MariaDB B (127.0.0.1:33307); ``CHECKSUM TABLE`` must match. Copies it
   to PostgreSQL (127.0.0.1:35432, database ``bench_src``) with ``migrate run``. None of
   this is timed.
2. *Equal* phase, each case a child process (wall time; peak RSS and CPU from
   ``os.wait4``; the servers' CPU from ``/proc``):

   * ``migrate``: ``migrate validate plan.toml --json --quiet``, A vs B (same engine: the
     cheaper hash is negotiated);
   * ``migrate-canonical``: the same with ``--hash canonical`` (the cross-engine hash);
   * ``reladiff``: ``reladiff mysql://…A/bench_src orders mysql://…B/bench_src orders
     -k id -c % --json --skip-sort-results`` (hashdiff, its default thread count);
   * ``checksum-table``: ``CHECKSUM TABLE bench_src.orders`` on A and B at the same time
     (two ``mariadb`` clients): a same-engine reference that cannot locate a row;
   * ``migrate-pg``: ``migrate validate`` A vs PostgreSQL (canonical hash);
   * ``reladiff-pg``: reladiff A vs PostgreSQL;
   * ``reladiff-j4``, ``reladiff-pg-j4``: reladiff with ``-j 4``.

   migrate must report no difference (exit 0) or the run fails; what the others report
   is recorded.
3. *Planted* phase: exactly 10 rows are made to differ on B and on PostgreSQL (3 values
   changed in 3 columns, 2 rows deleted, 2 rows inserted, a NULL made '', a decimal's last
   digit, a timestamp's microsecond) and every case runs again. migrate must exit 3 and
   report exactly those 10 keys (2 missing, 2 extra, 6 changed), or the run fails; what
   reladiff and CHECKSUM TABLE report is recorded.
4. Prints a table (medians of ``--repeat K`` rounds, the case order rotated each round)
   and writes it, with machine info, to ``bench/results/validate_<rows>.json``. Drops the
   databases it created unless ``--keep``.

reladiff is installed into its own venv, ``bench/.venv-reladiff`` (created when missing:
``pip install 'reladiff[mysql,postgresql]'``), never into the project's.

reladiff runs with ``--skip-sort-results``: by default it sorts the differing rows by key
and dies on a NULL beside a string (the planted NULL -> ''), printing an ERROR and exiting
0 with part of the rows; the ``-sorted`` cases (planted phase only) show that. The ``-j4``
cases give it 4 threads per database, as many as migrate's default ``workers``.

Options: ``--cases`` (comma-separated), ``--repeat K``, ``--reladiff-threads N`` (its
``-j`` in the cases without ``-j4``; default: its own, 1), ``--at REV`` (migrate's code as
of a git revision), ``--keep``, ``--out FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import copy_1m as base  # the shared source table and helpers

HOST = base.HOST
PORT_PG = 35432
DB = base.SRC_DB
TABLE = base.TABLE
URL_A = f"mysql://root@{HOST}:{base.PORT_A}/{DB}"
URL_B = f"mysql://root@{HOST}:{base.PORT_B}/{DB}"
URL_PG = f"postgresql://postgres@{HOST}:{PORT_PG}/{DB}"
RELADIFF_VENV = base.BENCH_DIR / ".venv-reladiff"
RELADIFF_REQ = "reladiff[mysql,postgresql]"

#: case -> (tool, target, what it is)
CASES = {
    "migrate": ("migrate", "B", "migrate validate (same engine: fast hash)"),
    "migrate-canonical": ("migrate", "B", "migrate validate --hash canonical"),
    "reladiff": ("reladiff", "B", "reladiff (hashdiff)"),
    "checksum-table": ("checksum", "B", "CHECKSUM TABLE on A and B at once"),
    "migrate-pg": ("migrate", "PG", "migrate validate (cross-engine: canonical)"),
    "reladiff-pg": ("reladiff", "PG", "reladiff (hashdiff)"),
    # reladiff with 4 threads per database, as many as migrate's default workers
    "reladiff-j4": ("reladiff", "B", "reladiff -j 4"),
    "reladiff-pg-j4": ("reladiff", "PG", "reladiff -j 4"),
    # planted phase only: reladiff as it runs by default, sorting its output by key
    "reladiff-sorted": ("reladiff", "B", "reladiff, sorted output (its default)"),
    "reladiff-pg-sorted": ("reladiff", "PG", "reladiff, sorted output (its default)"),
}
PLANTED_ONLY = {"reladiff-sorted", "reladiff-pg-sorted"}
N_PLANTED = 10

PLAN = """\
version = 1
name = "{name}"
state = "state.db"

[connections]
src = {{ url = "{src}" }}
dst = {{ url = "{dst}" }}

[[steps]]
name = "orders"
source = "src"
target = "dst"
tables = ["{table}"]
mode = "full"
"""


def die(msg: str) -> None:
    print(f"validate_1m: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def pg_connect(db: str = "postgres") -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(host=HOST, port=PORT_PG, user="postgres", dbname=db, autocommit=True)
    except psycopg.Error as exc:
        die(
            f"cannot connect to PostgreSQL on {HOST}:{PORT_PG} ({exc});"
            " run scripts/test-servers start"
        )
        raise


def pg_postmaster_pid(pg: Any) -> int | None:
    try:
        (data_dir,) = pg.execute("SHOW data_directory").fetchone()
        return int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
    except Exception:
        return None


def pg_cpu_seconds(pid: int | None) -> float | None:
    """CPU of the postmaster, of its reaped children (the backends that served finished
    connections: cutime + cstime) and of its live children."""
    if pid is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")

    def stat(p: int | str) -> list[str]:
        return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()

    try:
        f = stat(pid)
        total = sum(int(x) for x in f[11:15]) / tick
    except (OSError, IndexError, ValueError):
        return None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            f = stat(entry)
            if int(f[1]) == pid:
                total += (int(f[11]) + int(f[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


# -- reladiff ------------------------------------------------------------------------------
def ensure_reladiff() -> Path:
    exe = RELADIFF_VENV / "bin" / "reladiff"
    if not exe.exists():
        print(f"creating {RELADIFF_VENV} and installing {RELADIFF_REQ} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(RELADIFF_VENV)], check=True)
        pip = RELADIFF_VENV / "bin" / "pip"
        done = subprocess.run([str(pip), "install", "-q", RELADIFF_REQ])
        if done.returncode or not exe.exists():
            die(f"pip install '{RELADIFF_REQ}' into {RELADIFF_VENV} failed")
    return exe


def reladiff_version(exe: Path) -> str:
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).strip()


#: one line of ``reladiff --json``: ["-", [id, ...]] (only in A), ["+", [id, ...]] (only in B)
RELADIFF_LINE = re.compile(r'^\s*\[\s*"([-+!])"\s*,\s*\[\s*"?(-?\d+)')


def parse_reladiff(stdout: str) -> dict[str, Any]:
    minus: set[int] = set()
    plus: set[int] = set()
    lines = 0
    for line in stdout.splitlines():
        m = RELADIFF_LINE.match(line)
        if not m:
            continue
        lines += 1
        (minus if m.group(1) == "-" else plus).add(int(m.group(2)))
    return {
        "lines": lines,
        "only_in_a": sorted(minus - plus),
        "only_in_b": sorted(plus - minus),
        "in_both": sorted(minus & plus),  # a changed row: one "-" and one "+" line
        "keys": sorted(minus | plus),
    }


# -- building the data ---------------------------------------------------------------------
def checksum(conn: Any) -> int:
    return base.checksum(conn, DB)


def build(a: Any, b: Any, rows: int, work: Path, env: dict[str, str] | None) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for name, conn in (("A", a), ("B", b)):
        print(f"generating {rows:,} rows in {DB}.{TABLE} on MariaDB {name} ...", flush=True)
        info[f"generate_{name}_seconds"] = round(base.generate(conn, rows), 1)
    sum_a, sum_b = checksum(a), checksum(b)
    if sum_a != sum_b:
        die(f"A and B were generated differently: CHECKSUM TABLE {sum_a} vs {sum_b}")
    info["checksum"] = sum_a
    (info["bytes_on_disk"],) = base.q1(
        a,
        "SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES"
        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        (DB, TABLE),
    )

    print(f"copying A -> PostgreSQL {HOST}:{PORT_PG}/{DB} with migrate run ...", flush=True)
    with pg_connect() as pg:
        pg.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        pg.execute(f'CREATE DATABASE "{DB}"')
    cdir = work / "copy-pg"
    cdir.mkdir()
    plan = cdir / "plan.toml"
    plan.write_text(PLAN.format(name="bench-validate-copy", src=URL_A, dst=URL_PG, table=TABLE))
    started = time.perf_counter()
    proc = subprocess.run(
        [migrate_bin(), "run", str(plan), "--quiet", "--json"],
        cwd=cdir,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        die(f"migrate run A -> PostgreSQL exited {proc.returncode}: {proc.stderr[-2000:]}")
    info["copy_pg_seconds"] = round(time.perf_counter() - started, 1)
    with pg_connect(DB) as pg:
        pg.execute(f'ANALYZE "{TABLE}"')
        (n,) = pg.execute(f'SELECT COUNT(*) FROM "{TABLE}"').fetchone()
        types = pg.execute(
            "SELECT column_name, data_type, character_maximum_length, numeric_precision,"
            " numeric_scale, datetime_precision FROM information_schema.columns"
            " WHERE table_name = %s ORDER BY ordinal_position",
            (TABLE,),
        ).fetchall()
        (info["pg_bytes_on_disk"],) = pg.execute(
            "SELECT pg_total_relation_size(%s)", (TABLE,)
        ).fetchone()
    if n != rows:
        die(f"PostgreSQL holds {n} rows after the copy, expected {rows}")
    info["pg_columns"] = [list(t) for t in types]
    return info


def planted_ids(rows: int) -> dict[str, Any]:
    """The keys made to differ (fixed fractions of ``rows``, chosen for their values)."""
    return {
        "status": rows // 10 + 1,  # changed: a VARCHAR
        "customer_id": rows // 5 + 2,  # changed: an INT
        "note": (3 * rows // 10) // 10 * 10 + 3,  # changed: a Chinese note (seq % 10 == 3)
        "deleted": [2 * rows // 5 + 4, rows // 2 + 5],  # missing on the target
        "inserted": [rows + 1, 2 * rows],  # extra on the target, past the source's last key
        "null_to_empty": (3 * rows // 5) // 10 * 10 + 10,  # note NULL (seq % 10 == 0) -> ''
        "decimal": 7 * rows // 10 + 6,  # amount + 0.01
        "microsecond": 4 * rows // 5 + 7,  # created_at + 1 microsecond
    }


def expected(ids: dict[str, Any]) -> dict[str, list[int]]:
    changed = [ids[k] for k in ("status", "customer_id", "note", "null_to_empty")]
    changed += [ids["decimal"], ids["microsecond"]]
    return {
        "missing": sorted(ids["deleted"]),
        "extra": sorted(ids["inserted"]),
        "changed": sorted(changed),
    }


def plant(b: Any, rows: int, ids: dict[str, Any]) -> list[dict[str, Any]]:
    """Make exactly 10 rows differ on B and on PostgreSQL; returns what was done."""
    done: list[dict[str, Any]] = []
    mysql_sql = [
        ("status", "UPDATE {t} SET status = 'returned' WHERE id = %s"),
        ("customer_id", "UPDATE {t} SET customer_id = customer_id + 1 WHERE id = %s"),
        ("note", "UPDATE {t} SET note = CONCAT(note, '！') WHERE id = %s AND note <> ''"),
        ("null_to_empty", "UPDATE {t} SET note = '' WHERE id = %s AND note IS NULL"),
        ("decimal", "UPDATE {t} SET amount = amount + 0.01 WHERE id = %s"),
        (
            "microsecond",
            "UPDATE {t} SET created_at = created_at + INTERVAL 1 MICROSECOND WHERE id = %s",
        ),
    ]
    pg_sql = {
        "note": "UPDATE {t} SET note = note || '！' WHERE id = %s AND note <> ''",
        "microsecond": "UPDATE {t} SET created_at = created_at + INTERVAL '1 microsecond'"
        " WHERE id = %s",
    }
    with b.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")
        cur.execute(f"USE `{DB}`")
        cur.execute("BEGIN")
        for what, sql in mysql_sql:
            cur.execute(sql.format(t=TABLE), (ids[what],))
            if cur.rowcount != 1:
                die(f"planting {what} on B changed {cur.rowcount} rows")
        cur.execute(f"DELETE FROM {TABLE} WHERE id IN (%s, %s)", tuple(ids["deleted"]))
        if cur.rowcount != 2:
            die(f"planting the deletes on B removed {cur.rowcount} rows")
        for k in ids["inserted"]:
            cur.execute(base.GEN_SELECT.format(table=TABLE, lo=k, hi=k))
        cur.execute("COMMIT")
        cur.execute(
            f"SELECT * FROM {TABLE} WHERE id IN (%s, %s) ORDER BY id", tuple(ids["inserted"])
        )
        new_rows = cur.fetchall()
        names = [d[0] for d in cur.description]
    if len(new_rows) != 2:
        die(f"planting the inserts on B added {len(new_rows)} rows")
    with pg_connect(DB) as pg, pg.transaction():
        for what, sql in mysql_sql:
            stmt = pg_sql.get(what, sql).format(t=TABLE)
            n = pg.execute(stmt, (ids[what],)).rowcount
            if n != 1:
                die(f"planting {what} on PostgreSQL changed {n} rows")
        n = pg.execute(f"DELETE FROM {TABLE} WHERE id IN (%s, %s)", tuple(ids["deleted"])).rowcount
        if n != 2:
            die(f"planting the deletes on PostgreSQL removed {n} rows")
        cols = ", ".join(names)
        marks = ", ".join(["%s"] * len(names))
        for row in new_rows:
            pg.execute(f"INSERT INTO {TABLE} ({cols}) VALUES ({marks})", row)
    for what, sql in mysql_sql:
        done.append({"what": what, "id": ids[what], "sql": sql.format(t=TABLE)})
    done.append({"what": "deleted", "id": ids["deleted"]})
    done.append({"what": "inserted", "id": ids["inserted"]})
    if sum(len(v) for v in expected(ids).values()) != N_PLANTED:
        die("the planted keys are not 10 distinct keys")
    return done


# -- running a case ------------------------------------------------------------------------
def migrate_bin() -> str:
    return str(Path(sys.executable).with_name("migrate"))


@dataclass
class Sample:
    case: str
    phase: str  # equal | planted
    seconds: float
    peak_rss_mb: float
    client_cpu_s: float
    exit_code: int | None
    server_a_cpu_s: float | None = None
    server_b_cpu_s: float | None = None
    server_pg_cpu_s: float | None = None
    other_cpu_s: float | None = None
    round: int = 1
    #: differing keys the tool reported (CHECKSUM TABLE: None, it cannot locate)
    keys_found: int | None = None
    found: dict[str, Any] = field(default_factory=dict)
    correct: bool | None = None
    method: str | None = None  # migrate: the hash it used
    tool_seconds: float | None = None  # migrate: its own timing of the validation
    rss_detail: dict[str, float] = field(default_factory=dict)


def run_child(
    cmds: list[list[str]], cwd: Path, env: dict[str, str] | None
) -> tuple[float, list[tuple[int, Any, str, str]]]:
    """Start ``cmds`` at once, reap each with ``os.wait4``; wall time until all ended."""
    files = []
    procs = []
    started = time.perf_counter()
    for i, cmd in enumerate(cmds):
        out = open(cwd / f"out{i}.txt", "w+b")  # noqa: SIM115
        err = open(cwd / f"err{i}.txt", "w+b")  # noqa: SIM115
        files.append((out, err))
        procs.append(subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, env=env))
    results = []
    usages = [base._wait(p) for p in procs]
    seconds = time.perf_counter() - started
    for (rc, usage), (out, err) in zip(usages, files, strict=True):
        out.seek(0)
        err.seek(0)
        results.append(
            (rc, usage, out.read().decode(errors="replace"), err.read().decode(errors="replace"))
        )
        out.close()
        err.close()
    return seconds, results


def case_command(
    case: str, plan_dir: Path, args: argparse.Namespace
) -> tuple[list[list[str]], dict[str, str] | None]:
    tool, target, _ = CASES[case]
    if tool == "migrate":
        plan = plan_dir / "plan.toml"
        url = URL_B if target == "B" else URL_PG
        plan.write_text(PLAN.format(name=f"bench-{case}", src=URL_A, dst=url, table=TABLE))
        cmd = [migrate_bin(), "validate", str(plan), "--json", "--quiet"]
        if case == "migrate-canonical":
            cmd += ["--hash", "canonical"]
        return [cmd], args.migrate_env
    if tool == "reladiff":
        url = URL_B if target == "B" else URL_PG
        cmd = [str(args.reladiff), URL_A, TABLE, url, TABLE, "-k", "id", "-c", "%", "--json"]
        if not case.endswith("-sorted"):
            # its default sorts the differing rows by key and dies on a NULL beside a
            # string (a NULL made ''), printing an ERROR and exiting 0 with part of them
            cmd.append("--skip-sort-results")
        if case.endswith("-j4"):
            cmd += ["-j", "4"]
        elif args.reladiff_threads:
            cmd += ["-j", str(args.reladiff_threads)]
        # rich wraps its output at the terminal width: no wrapping
        return [cmd], {**os.environ, "COLUMNS": "100000", "NO_COLOR": "1", "TERM": "dumb"}
    client = shutil.which("mariadb") or shutil.which("mysql")
    if not client:
        die("the mariadb client must be on PATH")
    sql = f"CHECKSUM TABLE `{DB}`.`{TABLE}`"
    return [
        [str(client), f"-h{HOST}", f"-P{port}", "-uroot", "-N", "-B", "-e", sql]
        for port in (base.PORT_A, base.PORT_B)
    ], None


def judge(
    case: str, phase: str, results: list[tuple[int, Any, str, str]], exp: dict[str, list[int]]
) -> dict[str, Any]:
    """What the case found; fails the run where migrate is wrong."""
    tool = CASES[case][0]
    if tool == "checksum":
        sums = []
        for rc, _, out, err in results:
            if rc != 0:
                die(f"{case}: mariadb exited {rc}: {err[-1000:]}")
            sums.append(out.split()[-1])
        same = sums[0] == sums[1]
        if phase == "equal" and not same:
            die(f"{case}: CHECKSUM TABLE differs on equal tables: {sums}")
        return {
            "keys_found": None,
            "correct": same == (phase == "equal"),
            "found": {"sums": sums, "differ": not same},
        }
    rc, _, out, err = results[0]
    if tool == "reladiff":
        found = parse_reladiff(out)
        if rc != 0:  # recorded, not fatal: the comparison is of migrate
            found["stderr_tail"] = err[-2000:]
        want = set() if phase == "equal" else {k for v in exp.values() for k in v}
        found["missed"] = sorted(want - set(found["keys"]))
        found["not_planted"] = sorted(set(found["keys"]) - want)
        found["errors"] = [ln.strip() for ln in err.splitlines() if " ERROR " in ln]
        correct = set(found["keys"]) == want and not found["errors"] and rc == 0
        if phase == "planted":
            correct = correct and found["only_in_a"] == exp["missing"]
            correct = correct and found["only_in_b"] == exp["extra"]
        return {"keys_found": len(found["keys"]), "correct": correct, "found": found}
    # migrate
    want_rc = 0 if phase == "equal" else 3
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        die(f"{case}: migrate validate printed no JSON (exit {rc}): {out[-1500:]} {err[-1500:]}")
        raise
    tables = report.get("tables", [])
    if rc != want_rc or len(tables) != 1:
        die(
            f"{case} ({phase}): migrate validate exited {rc}, expected {want_rc}:"
            f" {json.dumps(report)[:3000]}\nstderr: {err[-2000:]}"
        )
    t = tables[0]
    by_kind: dict[str, list[int]] = {"missing": [], "extra": [], "changed": []}
    for d in t["diffs"]:
        by_kind.setdefault(d["kind"], []).append(int(d["key"][0]))
    by_kind = {k: sorted(v) for k, v in by_kind.items()}
    counts = {k: t[k] for k in ("missing", "extra", "changed")}
    want = {"missing": [], "extra": [], "changed": []} if phase == "equal" else exp
    ok = by_kind == want and counts == {k: len(v) for k, v in want.items()}
    found = {
        "status": t["status"],
        "method": t["method"],
        "counts": counts,
        "keys": by_kind,
        "source_rows": t["source_rows"],
        "target_rows": t["target_rows"],
        "chunks": t["chunks"],
        "chunks_differing": t["chunks_differing"],
        "hash_only": t["hash_only"],
        "notes": t["notes"],
        "seconds": t["seconds"],
    }
    if not ok:
        die(
            f"{case} ({phase}): migrate validate found {counts} {by_kind}, expected {want}"
            f"\nfull JSON: {json.dumps(report)[:4000]}"
        )
    return {
        "keys_found": sum(counts.values()),
        "correct": ok,
        "found": found,
        "method": t["method"],
        "tool_seconds": report.get("seconds"),
    }


def run_case(
    case: str,
    phase: str,
    rnd: int,
    work: Path,
    args: argparse.Namespace,
    pids: dict[str, int | None],
    exp: dict[str, list[int]],
) -> Sample:
    cdir = work / f"{phase}-{case}-{rnd}"
    cdir.mkdir()
    cmds, env = case_command(case, cdir, args)
    ca0, cb0 = base.cpu_seconds(pids["A"]), base.cpu_seconds(pids["B"])
    cp0, busy0 = pg_cpu_seconds(pids["PG"]), base.busy_seconds()
    seconds, results = run_child(cmds, cdir, env)
    time.sleep(0.2)  # let the PostgreSQL backends that served the case exit and be reaped
    ca1, cb1 = base.cpu_seconds(pids["A"]), base.cpu_seconds(pids["B"])
    cp1, busy1 = pg_cpu_seconds(pids["PG"]), base.busy_seconds()

    def delta(x: float | None, y: float | None) -> float | None:
        return None if x is None or y is None else round(y - x, 2)

    cpu = sum(base._cpu(u) for _, u, _, _ in results)
    srv = [delta(ca0, ca1), delta(cb0, cb1), delta(cp0, cp1)]
    other = None
    if None not in srv:
        other = max(0.0, busy1 - busy0 - cpu - sum(s for s in srv if s is not None))
    rss = {
        (Path(cmds[i][0]).name + (f"-{i}" if len(cmds) > 1 else "")): base._mb(u)
        for i, (_, u, _, _) in enumerate(results)
    }
    verdict = judge(case, phase, results, exp)
    return Sample(
        case=case,
        phase=phase,
        seconds=seconds,
        peak_rss_mb=sum(rss.values()),
        client_cpu_s=cpu,
        exit_code=results[0][0] if len(results) == 1 else max(r[0] for r in results),
        server_a_cpu_s=srv[0],
        server_b_cpu_s=srv[1],
        server_pg_cpu_s=srv[2],
        other_cpu_s=other,
        round=rnd,
        rss_detail=rss,
        **verdict,
    )


# -- machine info --------------------------------------------------------------------------
def machine_info(a: Any, b: Any, pg: Any, args: argparse.Namespace) -> dict[str, Any]:
    info = base.machine_info(a, b, args.at)
    info.pop("mysqldump", None)
    info["postgresql"] = {
        k: pg.execute(f"SHOW {k}").fetchone()[0]
        for k in ("server_version", "shared_buffers", "max_parallel_workers_per_gather")
    }
    info["reladiff"] = reladiff_version(args.reladiff)
    info["reladiff_packages"] = subprocess.run(
        [str(RELADIFF_VENV / "bin" / "pip"), "list", "--format=freeze"],
        capture_output=True,
        text=True,
    ).stdout.split()
    return info


# -- main ----------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--cases", default=",".join(CASES), help=f"from: {', '.join(CASES)}")
    p.add_argument("--repeat", type=int, default=1, help="rounds per phase (order rotated)")
    p.add_argument(
        "--reladiff-threads",
        type=int,
        help="reladiff -j for the reladiff cases without -j4 (default: reladiff's own, 1)",
    )
    p.add_argument(
        "--at",
        metavar="REV",
        help="run migrate's code as of this git revision (git archive), not the working tree",
    )
    p.add_argument("--out", type=Path, help="default: bench/results/validate_<rows>.json")
    p.add_argument("--keep", action="store_true", help="keep the databases (also on failure)")
    args = p.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in cases:
        if c not in CASES:
            p.error(f"unknown case {c!r}")
    rows = args.rows
    if rows < 1000:
        p.error("--rows must be at least 1000")
    args.reladiff = ensure_reladiff()

    a, b = base.connect(base.PORT_A), base.connect(base.PORT_B)
    pg = pg_connect()
    info = machine_info(a, b, pg, args)
    pids = {"A": base.server_pid(a), "B": base.server_pid(b), "PG": pg_postmaster_pid(pg)}
    pg.close()
    work = Path(tempfile.mkdtemp(prefix="migrate-bench-validate-"))
    args.migrate_env = base.code_at(args.at, work) if args.at else None
    samples: list[Sample] = []
    ids = planted_ids(rows)
    exp = expected(ids)
    planted: list[dict[str, Any]] = []
    try:
        source = build(a, b, rows, work, args.migrate_env)
        print(
            f"  {source['bytes_on_disk'] / 1024**2:.0f} MiB on MariaDB,"
            f" {source['pg_bytes_on_disk'] / 1024**2:.0f} MiB on PostgreSQL;"
            f" CHECKSUM TABLE {source['checksum']}",
            flush=True,
        )
        for phase in ("equal", "planted"):
            if phase == "planted":
                print(f"planting {N_PLANTED} differences on B and on PostgreSQL: {exp}", flush=True)
                planted = plant(b, rows, ids)
            for rnd in range(1, args.repeat + 1):
                todo = [c for c in cases if phase == "planted" or c not in PLANTED_ONLY]
                k = (rnd - 1) % len(todo)
                for case in todo[k:] + todo[:k]:
                    label = f"[{phase} {rnd}/{args.repeat}] " if args.repeat > 1 else f"[{phase}] "
                    print(f"{label}{case}: {CASES[case][2]} ...", flush=True)
                    s = run_case(case, phase, rnd, work, args, pids, exp)
                    samples.append(s)
                    found = "-" if s.keys_found is None else s.keys_found
                    if CASES[case][0] == "checksum":
                        found = "differs" if s.found["differ"] else "equal"
                    print(
                        f"  {s.seconds:.2f} s, peak RSS {s.peak_rss_mb:.0f} MB, client CPU"
                        f" {s.client_cpu_s:.1f} s, other CPU {s.other_cpu_s or 0:.1f} s;"
                        f" found {found}{'' if s.correct else ' (NOT the planted set)'}"
                        + (f", hash {s.method}" if s.method else ""),
                        flush=True,
                    )
                    for what in ("missed", "not_planted", "errors"):
                        if s.found.get(what):
                            print(f"  {what}: {s.found[what]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            base.drop_db(a, DB)
            base.drop_db(b, DB)
            with pg_connect() as pg:
                pg.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')

    # -- results ---------------------------------------------------------------------------
    def med(case: str, phase: str, attr: str, digits: int = 2) -> Any:
        vals = [getattr(s, attr) for s in samples if s.case == case and s.phase == phase]
        vals = [v for v in vals if v is not None]
        return round(statistics.median(vals), digits) if vals else None

    summary = []
    for phase in ("equal", "planted"):
        for case in cases:
            mine = [s for s in samples if s.case == case and s.phase == phase]
            if not mine:
                continue
            found_vals = {s.keys_found for s in mine}
            summary.append(
                {
                    "phase": phase,
                    "case": case,
                    "what": CASES[case][2],
                    "target": CASES[case][1],
                    "seconds": med(case, phase, "seconds"),
                    "best_seconds": round(min(s.seconds for s in mine), 2),
                    "worst_seconds": round(max(s.seconds for s in mine), 2),
                    "peak_rss_mb": med(case, phase, "peak_rss_mb", 1),
                    "client_cpu_s": med(case, phase, "client_cpu_s", 1),
                    "server_a_cpu_s": med(case, phase, "server_a_cpu_s", 1),
                    "server_b_cpu_s": med(case, phase, "server_b_cpu_s", 1),
                    "server_pg_cpu_s": med(case, phase, "server_pg_cpu_s", 1),
                    "other_cpu_s": med(case, phase, "other_cpu_s", 1),
                    "keys_found": found_vals.pop()
                    if len(found_vals) == 1
                    else sorted(found_vals, key=str),
                    "correct": all(s.correct for s in mine),
                    "checksum_differs": (
                        mine[0].found.get("differ") if CASES[case][0] == "checksum" else None
                    ),
                    "method": mine[0].method,
                    "missed": mine[0].found.get("missed"),
                    "not_planted": mine[0].found.get("not_planted"),
                    "errors": mine[0].found.get("errors"),
                }
            )

    def sec(case: str, phase: str) -> float | None:
        return next(
            (r["seconds"] for r in summary if r["case"] == case and r["phase"] == phase), None
        )

    ratios = {}
    for phase in ("equal", "planted"):
        for name, (rel, mig) in {
            "same_engine": ("reladiff", "migrate"),
            "same_engine_canonical": ("reladiff", "migrate-canonical"),
            "cross_engine": ("reladiff-pg", "migrate-pg"),
            "same_engine_j4": ("reladiff-j4", "migrate"),
            "cross_engine_j4": ("reladiff-pg-j4", "migrate-pg"),
        }.items():
            r, m = sec(rel, phase), sec(mig, phase)
            if r and m:
                ratios[f"{phase}.{name}"] = round(r / m, 2)
    aims = {
        "same_engine_3x": all(
            ratios.get(f"{ph}.same_engine", 0) >= 3 for ph in ("equal", "planted")
        ),
        "cross_engine_at_least_as_fast": all(
            ratios.get(f"{ph}.cross_engine", 0) >= 1 for ph in ("equal", "planted")
        ),
        "same_engine_3x_vs_j4": all(
            ratios.get(f"{ph}.same_engine_j4", 0) >= 3 for ph in ("equal", "planted")
        ),
        "cross_engine_at_least_as_fast_vs_j4": all(
            ratios.get(f"{ph}.cross_engine_j4", 0) >= 1 for ph in ("equal", "planted")
        ),
        "exactly_10_found": all(s.correct for s in samples if CASES[s.case][0] == "migrate"),
    }

    headers = [
        "phase",
        "case",
        "seconds",
        "peak RSS MB",
        "client CPU s",
        "srv A",
        "srv B",
        "srv PG",
        "other",
        "found",
        "ok",
    ]
    keys = [
        "phase",
        "case",
        "seconds",
        "peak_rss_mb",
        "client_cpu_s",
        "server_a_cpu_s",
        "server_b_cpu_s",
        "server_pg_cpu_s",
        "other_cpu_s",
        "keys_found",
        "correct",
    ]

    def cell(r: dict[str, Any], k: str) -> str:
        v = r[k]
        if k == "keys_found" and r["checksum_differs"] is not None:
            return "differs" if r["checksum_differs"] else "equal"
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "NO"
        if isinstance(v, float):
            return f"{v:.2f}"
        return str(v)

    table = [[cell(r, k) for k in keys] for r in summary]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    print()
    rounds = f", median of {args.repeat} rounds" if args.repeat > 1 else ""
    print(
        f"{rows:,} rows, MariaDB {info['mariadb_a']['version']} x2, PostgreSQL"
        f" {info['postgresql']['server_version']}, {info['reladiff']}, {info['nproc']}"
        f" CPUs{rounds}"
    )
    for line in [headers, *table]:
        print(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    print("reladiff / migrate:", ", ".join(f"{k} {v}" for k, v in ratios.items()))
    print("aims:", ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in aims.items()))

    info["load_average_at_end"] = os.getloadavg()
    out = {
        "rows": rows,
        "source": {"table": f"{DB}.{TABLE}", **source},
        "settings": {
            "repeat": args.repeat,
            "cases": cases,
            "migrate_plan": "defaults: chunk_rows 50000, workers 4; mode full",
            "reladiff_args": "-k id -c % --json"
            + (f" -j {args.reladiff_threads}" if args.reladiff_threads else " (threads: default)"),
        },
        "planted": planted,
        "expected": exp,
        "machine": info,
        "results": summary,
        "ratios_reladiff_over_migrate": ratios,
        "aims": aims,
        "samples": [asdict(s) for s in samples],
    }
    path = args.out or base.BENCH_DIR / "results" / f"validate_{rows}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
