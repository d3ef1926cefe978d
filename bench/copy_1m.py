#!/usr/bin/env python3
"""Copy an orders-like table from one MariaDB to another: mysqldump pipe vs ``migrate run``.

    .venv/bin/python bench/copy_1m.py --rows 1000000

1. Builds ``bench_src.orders`` on MariaDB A (127.0.0.1:33306) with N rows, generated on
   the server from MariaDB's SEQUENCE engine (``seq_1_to_N``); generation is not timed.
2. Copies the table to MariaDB B (127.0.0.1:33307), each method into a fresh empty
   database, in the same run:

   * ``mysqldump``: ``mysqldump --single-transaction --quick ... bench_src orders |
     mariadb ... bench_dump`` (wall time around the whole pipeline);
   * ``migrate``: ``migrate run plan.toml --quiet --json`` into ``bench_migrate``
     (chunk_rows 50000, workers 4, validate count; LOAD DATA LOCAL INFILE on the target);
   * ``migrate-insert``: the same with ``options = { bulk = "insert" }`` on the target
     (multi-row INSERT) into ``bench_migrate_insert``.

   Each command is a child process; its peak RSS and CPU time come from ``os.wait4`` (the
   kernel's rusage of exactly that child). The CPU seconds the two servers spent during
   each method are read from ``/proc/<mariadbd pid>/stat``.
3. Checks every target: ``COUNT(*)`` equals N, ``CHECKSUM TABLE`` equals the source's, and
   the secondary index exists. Any difference fails the run (exit 1).
4. Prints a results table and writes it, with machine info, to
   ``bench/results/copy_<rows>.json``. Drops every database it created (``--keep`` keeps
   them).

Options: ``--methods dump,migrate,migrate-insert``, ``--repeat K`` (K rounds, method order
rotated each round; the table shows the median), ``--at REV`` (run migrate's code as of a
git revision instead of the working tree), ``--profile`` (runs migrate under ``py-spy
record``; its timings then include the sampler), ``--keep``, ``--out FILE``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pymysql

HOST = "127.0.0.1"
PORT_A, PORT_B = 33306, 33307
SRC_DB = "bench_src"
TABLE = "orders"
TARGET_DB = {
    "dump": "bench_dump",
    "migrate": "bench_migrate",
    "migrate-insert": "bench_migrate_insert",
}
METHODS = ("dump", "migrate", "migrate-insert")
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
GEN_BATCH = 500_000

DDL = f"""
CREATE TABLE {TABLE} (
  id          BIGINT       NOT NULL AUTO_INCREMENT,
  customer_id INT          NOT NULL,
  status      VARCHAR(16)  NOT NULL,
  note        VARCHAR(200) NULL,
  amount      DECIMAL(12,2) NOT NULL,
  tax         DECIMAL(10,4) NULL,
  created_at  DATETIME(6)  NOT NULL,
  updated_at  DATETIME(6)  NULL,
  flags       TINYINT      NOT NULL DEFAULT 0,
  weight      DOUBLE       NULL,
  sku         CHAR(12)     NOT NULL,
  PRIMARY KEY (id),
  KEY ix_orders_customer_id (customer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
"""

# Every value is a function of seq: NULLs in note/tax/updated_at/weight, Chinese notes,
# notes with a tab, newline and backslash, negative TINYINTs, full-precision doubles,
# microsecond timestamps.
GEN_SELECT = """
INSERT INTO {table} (id, customer_id, status, note, amount, tax, created_at, updated_at,
                     flags, weight, sku)
SELECT seq,
       1 + (seq * 7919) % 200000,
       ELT(1 + seq % 6, 'new', 'paid', 'packed', 'shipped', 'delivered', 'cancelled'),
       CASE
         WHEN seq % 10 = 0 THEN NULL
         WHEN seq % 10 IN (3, 7) THEN CONCAT(ELT(1 + seq DIV 10 % 4, '客户要求加急配送',
              '请在工作日送达，谢谢！', '发票抬头：上海某某贸易有限公司', '缺货，等待补发'),
              ' #', seq)
         WHEN seq % 997 = 0 THEN CONCAT('tab\there, back\\\\slash, new\nline #', seq)
         ELSE CONCAT('order note ', LEFT(MD5(seq), 8 + seq % 24))
       END,
       (seq * 7919 % 10000000) / 100,
       CASE WHEN seq % 13 = 0 THEN NULL ELSE (seq * 31 % 100000000) / 10000 END,
       TIMESTAMPADD(MICROSECOND, seq * 31536123, '2019-01-01 00:00:00'),
       CASE WHEN seq % 5 = 0 THEN NULL
            ELSE TIMESTAMPADD(MICROSECOND, seq * 31536123 + seq % 86400000 * 1000 + seq % 1000,
                              '2019-01-01 00:00:00') END,
       seq % 256 - 128,
       CASE WHEN seq % 17 = 0 THEN NULL ELSE SQRT(seq) * 3.7 END,
       CONCAT('SKU', LPAD(seq * 7 % 1000000000, 9, '0'))
FROM (SELECT CAST(seq AS SIGNED) AS seq FROM seq_{lo}_to_{hi}) AS s
"""


def code_at(rev: str, work: Path) -> dict[str, str]:
    """The environment that makes ``migrate`` run the code of git revision ``rev``
    (exported under ``work``): PYTHONPATH comes before the editable install's finder."""
    code = work / "code"
    code.mkdir()
    export = subprocess.run(
        f"git archive {shlex.quote(rev)} migrate connectors validators | tar -x -C"
        f" {shlex.quote(str(code))}",
        shell=True,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if export.returncode:
        die(f"git archive {rev}: {export.stderr.strip()}")
    return {**os.environ, "PYTHONPATH": str(code)}


def die(msg: str) -> None:
    print(f"copy_1m: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def connect(port: int, db: str | None = None) -> pymysql.connections.Connection:
    try:
        return pymysql.connect(
            host=HOST,
            port=port,
            user="root",
            password="",
            database=db,
            charset="utf8mb4",
            autocommit=True,
            local_infile=False,
        )
    except pymysql.Error as exc:
        die(f"cannot connect to MariaDB on {HOST}:{port} ({exc}); run scripts/test-servers start")
        raise


def q1(conn: Any, sql: str, args: Any = None) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def qall(conn: Any, sql: str, args: Any = None) -> list[Any]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def fresh_db(conn: Any, db: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")


def drop_db(conn: Any, db: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{db}`")


# -- server CPU ---------------------------------------------------------------------------
def server_pid(conn: Any) -> int | None:
    try:
        (path,) = q1(conn, "SELECT @@pid_file")
        return int(Path(path).read_text().split()[0])
    except Exception:
        return None


def busy_seconds() -> float:
    """CPU seconds every process on the machine has used (all CPUs), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a process, from /proc (the servers run on this machine)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


# -- generation ---------------------------------------------------------------------------
def generate(a: Any, rows: int) -> float:
    started = time.perf_counter()
    fresh_db(a, SRC_DB)
    with a.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")  # A writes a binlog; the data needs none
        cur.execute(f"USE `{SRC_DB}`")
        cur.execute(DDL)
        lo = 1
        while lo <= rows:
            hi = min(rows, lo + GEN_BATCH - 1)
            cur.execute("BEGIN")
            cur.execute(GEN_SELECT.format(table=TABLE, lo=lo, hi=hi))
            cur.execute("COMMIT")
            lo = hi + 1
        cur.execute(f"ANALYZE TABLE `{TABLE}`")
        cur.fetchall()
    return time.perf_counter() - started


# -- the methods ----------------------------------------------------------------------------
@dataclass
class Sample:
    method: str
    seconds: float
    peak_rss_mb: float  # the copying client process(es); see rss_detail
    client_cpu_s: float
    server_a_cpu_s: float | None
    server_b_cpu_s: float | None
    #: CPU used on the machine by anything but the client(s) and the two servers during
    #: the copy: other work that competed for the CPUs (a noisy sample when large)
    other_cpu_s: float | None = None
    rss_detail: dict[str, float] = field(default_factory=dict)
    round: int = 1
    #: migrate only, from its --json report: the step (schema, copy, indexes, counts) and
    #: the table copy alone; the rest of the wall time is start-up and connecting
    migrate_step_s: float | None = None
    migrate_table_s: float | None = None


def _wait(proc: subprocess.Popen[Any]) -> tuple[int, Any]:
    """Reap exactly this child and return (exit code, its rusage)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage


def _mb(usage: Any) -> float:
    return usage.ru_maxrss / 1024  # KiB on Linux


def _cpu(usage: Any) -> float:
    return usage.ru_utime + usage.ru_stime


def run_dump(work: Path) -> tuple[float, dict[str, float], float, dict[str, float]]:
    dump_bin = shutil.which("mysqldump") or shutil.which("mariadb-dump")
    client_bin = shutil.which("mariadb") or shutil.which("mysql")
    if not dump_bin or not client_bin:
        die("mysqldump/mariadb-dump and the mariadb client must be on PATH")
    dump_cmd = [
        dump_bin,
        "--single-transaction",
        "--quick",
        f"-h{HOST}",
        f"-P{PORT_A}",
        "-uroot",
        SRC_DB,
        TABLE,
    ]
    load_cmd = [client_bin, f"-h{HOST}", f"-P{PORT_B}", "-uroot", TARGET_DB["dump"]]
    with open(work / "mysqldump.err", "w+b") as err1, open(work / "mariadb.err", "w+b") as err2:
        started = time.perf_counter()
        p1 = subprocess.Popen(dump_cmd, stdout=subprocess.PIPE, stderr=err1)
        p2 = subprocess.Popen(load_cmd, stdin=p1.stdout, stderr=err2)
        assert p1.stdout is not None
        p1.stdout.close()  # p2 holds the read end; p1 gets SIGPIPE if p2 dies
        rc2, u2 = _wait(p2)
        rc1, u1 = _wait(p1)
        seconds = time.perf_counter() - started
        for rc, cmd, err in ((rc1, dump_cmd, err1), (rc2, load_cmd, err2)):
            err.seek(0)
            text = err.read().decode(errors="replace").strip()
            if rc != 0:
                die(f"{' '.join(cmd)} exited {rc}: {text[-2000:]}")
    rss = {"mysqldump": _mb(u1), "mariadb": _mb(u2)}
    return seconds, rss, _cpu(u1) + _cpu(u2), {}


PLAN = """\
version = 1
name = "bench-copy"
state = "state.db"

[defaults]
chunk_rows = {chunk_rows}
workers = {workers}
validate = ["count"]

[connections]
src = {{ url = "mysql://root@{host}:{port_a}/{src_db}" }}
dst = {{ url = "mysql://root@{host}:{port_b}/{dst_db}"{options} }}

[[batches]]
name = "bench"

[[steps]]
name = "orders"
batch = "bench"
source = "src"
target = "dst"
tables = ["{table}"]
mode = "full"
"""


def write_plan(work: Path, method: str, chunk_rows: int, workers: int) -> Path:
    options = ', options = { bulk = "insert" }' if method == "migrate-insert" else ""
    plan = work / f"{method}.toml"
    plan.write_text(
        PLAN.format(
            chunk_rows=chunk_rows,
            workers=workers,
            host=HOST,
            port_a=PORT_A,
            port_b=PORT_B,
            src_db=SRC_DB,
            dst_db=TARGET_DB[method],
            options=options,
            table=TABLE,
        )
    )
    return plan


def run_migrate(
    work: Path, method: str, rows: int, args: argparse.Namespace, rnd: int
) -> tuple[float, dict[str, float], float, dict[str, float]]:
    mdir = work / f"{method}-{rnd}"
    mdir.mkdir()
    plan = write_plan(mdir, method, args.chunk_rows, args.workers)
    migrate_bin = Path(sys.executable).with_name("migrate")
    cmd = [str(migrate_bin), "run", str(plan), "--quiet", "--json"]
    if args.profile:
        pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        out = BENCH_DIR / "results" / f"profile_{method}_{rows}"
        cmd = [
            pyspy,
            "record",
            "--rate",
            "200",
            "--format",
            "raw",
            "--threads",
            "-o",
            f"{out}.txt",
            "--",
            *cmd,
        ]
    with open(mdir / "stdout.json", "w+b") as out_f, open(mdir / "stderr.txt", "w+b") as err_f:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, cwd=mdir, env=args.migrate_env)
        rc, usage = _wait(proc)
        seconds = time.perf_counter() - started
        out_f.seek(0)
        err_f.seek(0)
        stdout, stderr = out_f.read().decode(), err_f.read().decode(errors="replace")
    if rc != 0:
        die(f"{' '.join(cmd)} exited {rc}\nstderr: {stderr[-3000:]}\nstdout: {stdout[-3000:]}")
    if args.profile:  # py-spy writes its own messages to stdout
        stdout = "\n".join(ln for ln in stdout.splitlines() if not ln.startswith("py-spy>"))
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        die(f"migrate --json printed no JSON: {stdout[-2000:]}")
        raise
    tables = [t for s in report["steps"] for t in s["tables"]]
    if report["status"] != "done" or len(tables) != 1:
        die(f"migrate reported {report['status']}: {json.dumps(report)[:2000]}")
    t = tables[0]
    if not (t["source_rows"] == t["target_rows"] == rows and t["counts_match"]):
        die(
            f"migrate's own counts: source {t['source_rows']}, target {t['target_rows']},"
            f" expected {rows}"
        )
    phases = {"migrate_step_s": report["steps"][0]["seconds"], "migrate_table_s": t["seconds"]}
    return seconds, {"migrate": _mb(usage)}, _cpu(usage), phases


# -- verification --------------------------------------------------------------------------
def checksum(conn: Any, db: str) -> int:
    row = q1(conn, f"CHECKSUM TABLE `{db}`.`{TABLE}` EXTENDED")
    return int(row[1])


def columns(conn: Any, db: str) -> list[tuple[Any, ...]]:
    return qall(
        conn,
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, COLLATION_NAME"
        " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
        " ORDER BY ORDINAL_POSITION",
        (db, TABLE),
    )


def content_hash(conn: Any, db: str) -> tuple[Any, ...]:
    """A column-layout-independent content check, only used to explain a checksum mismatch."""
    cols = [c[0] for c in columns(conn, db)]
    expr = ", ".join(f"IFNULL(HEX(`{c}`), '~')" for c in cols)
    return tuple(
        q1(conn, f"SELECT COUNT(*), BIT_XOR(CRC32(CONCAT_WS('|', {expr}))) FROM `{db}`.`{TABLE}`")
    )


def verify(a: Any, b: Any, method: str, rows: int, src_sum: int) -> dict[str, Any]:
    db = TARGET_DB[method]
    (n,) = q1(b, f"SELECT COUNT(*) FROM `{db}`.`{TABLE}`")
    if n != rows:
        die(f"{method}: {db}.{TABLE} holds {n} rows, expected {rows}")
    dst_sum = checksum(b, db)
    schema_diff = [
        {"source": s, "target": t}
        for s, t in zip(columns(a, SRC_DB), columns(b, db), strict=False)
        if s != t
    ]
    if dst_sum != src_sum:
        same_content = content_hash(a, SRC_DB) == content_hash(b, db)
        die(
            f"{method}: CHECKSUM TABLE differs: source {src_sum}, {db} {dst_sum}"
            f" (content hash {'equal' if same_content else 'DIFFERENT'};"
            f" column differences: {schema_diff or 'none'})"
        )
    indexed = {r[4] for r in qall(b, f"SHOW INDEX FROM `{db}`.`{TABLE}`")}
    if "customer_id" not in indexed:
        die(f"{method}: {db}.{TABLE} has no index on customer_id")
    return {
        "rows": n,
        "checksum": dst_sum,
        "checksum_matches": True,
        "column_differences": [str(d) for d in schema_diff],
    }


# -- machine info --------------------------------------------------------------------------
def machine_info(a: Any, b: Any, at: str | None) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(
                ["git", *cmd], cwd=REPO, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except Exception:
            return ""

    def server(conn: Any) -> dict[str, Any]:
        keys = (
            "version",
            "innodb_buffer_pool_size",
            "innodb_flush_log_at_trx_commit",
            "log_bin",
            "local_infile",
        )
        row = q1(conn, "SELECT " + ", ".join(f"@@{k}" for k in keys))
        return dict(zip(keys, row, strict=True))

    try:
        import MySQLdb  # noqa: F401

        text_driver = "mysqlclient"
    except ImportError:
        text_driver = "pymysql"
    dump_bin = shutil.which("mysqldump") or shutil.which("mariadb-dump") or ""
    dump_version = (
        subprocess.run([dump_bin, "--version"], capture_output=True, text=True).stdout.strip()
        if dump_bin
        else ""
    )
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_gb, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "mariadb_a": server(a),
        "mariadb_b": server(b),
        "mysqldump": dump_version,
        "migrate_commit": git("rev-parse", "--short", at or "HEAD"),
        "migrate_code": f"git archive {at}" if at else "working tree (editable install)",
        "migrate_tree_dirty": False
        if at
        else bool(git("status", "--porcelain", "--", "migrate", "connectors", "validators")),
        "migrate_text_read_driver": text_driver,
        "load_average_at_start": os.getloadavg(),
    }


# -- main ----------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument(
        "--methods", default=",".join(METHODS), help=f"comma-separated, from: {', '.join(METHODS)}"
    )
    p.add_argument("--repeat", type=int, default=1, help="rounds (order rotated each round)")
    p.add_argument("--chunk-rows", type=int, default=50_000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument(
        "--profile",
        action="store_true",
        help="run migrate under py-spy record (bench/results/profile_*.txt)",
    )
    p.add_argument(
        "--at",
        metavar="REV",
        help="run migrate's code as of this git revision (exported with git archive), not"
        " the working tree: numbers stay tied to a commit while others edit the tree",
    )
    p.add_argument(
        "--out", type=Path, help="results file (default: bench/results/copy_<rows>.json)"
    )
    p.add_argument("--keep", action="store_true", help="keep the databases (also on failure)")
    p.add_argument(
        "--reuse-source",
        action="store_true",
        help="reuse bench_src.orders if it holds --rows rows (left by --keep): skip generation",
    )
    args = p.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            p.error(f"unknown method {m!r}")
    rows = args.rows
    results_dir = BENCH_DIR / "results"
    results_dir.mkdir(exist_ok=True)

    a, b = connect(PORT_A), connect(PORT_B)
    info = machine_info(a, b, args.at)
    pid_a, pid_b = server_pid(a), server_pid(b)
    created_a: list[str] = []
    created_b: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="migrate-bench-"))
    args.migrate_env = code_at(args.at, work) if args.at else None
    samples: list[Sample] = []
    checks: dict[str, Any] = {}
    try:
        existing = 0
        if args.reuse_source:
            try:
                (existing,) = q1(a, f"SELECT COUNT(*) FROM `{SRC_DB}`.`{TABLE}`")
            except pymysql.Error:
                existing = 0
        created_a.append(SRC_DB)
        if existing == rows:
            print(f"reusing {SRC_DB}.{TABLE} ({rows:,} rows)")
            gen_s = None
        else:
            print(f"generating {rows:,} rows in {SRC_DB}.{TABLE} on port {PORT_A} ...", flush=True)
            gen_s = generate(a, rows)
            print(f"  generated in {gen_s:.1f} s", flush=True)
        (n,) = q1(a, f"SELECT COUNT(*) FROM `{SRC_DB}`.`{TABLE}`")
        if n != rows:
            die(f"source holds {n} rows, expected {rows}")
        src_sum = checksum(a, SRC_DB)  # also reads the whole table once: a warm start for all
        (src_bytes,) = q1(
            a,
            "SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (SRC_DB, TABLE),
        )
        print(f"  source checksum {src_sum}, {src_bytes / 1024**2:.0f} MiB on disk", flush=True)

        for rnd in range(1, args.repeat + 1):
            k = (rnd - 1) % len(methods)
            order = methods[k:] + methods[:k]
            for method in order:
                db = TARGET_DB[method]
                fresh_db(b, db)
                created_b.append(db)
                time.sleep(2)  # let the DROP/CREATE settle on B
                label = f"[{rnd}/{args.repeat}] " if args.repeat > 1 else ""
                print(f"{label}{method}: copying into {HOST}:{PORT_B}/{db} ...", flush=True)
                ca0, cb0, busy0 = cpu_seconds(pid_a), cpu_seconds(pid_b), busy_seconds()
                if method == "dump":
                    seconds, rss, cpu, phases = run_dump(work)
                else:
                    seconds, rss, cpu, phases = run_migrate(work, method, rows, args, rnd)
                ca1, cb1, busy1 = cpu_seconds(pid_a), cpu_seconds(pid_b), busy_seconds()
                srv_a = None if ca0 is None or ca1 is None else ca1 - ca0
                srv_b = None if cb0 is None or cb1 is None else cb1 - cb0
                other = None
                if srv_a is not None and srv_b is not None:
                    other = max(0.0, busy1 - busy0 - cpu - srv_a - srv_b)
                sample = Sample(
                    method=method,
                    seconds=seconds,
                    peak_rss_mb=sum(rss.values()),
                    client_cpu_s=cpu,
                    server_a_cpu_s=srv_a,
                    server_b_cpu_s=srv_b,
                    other_cpu_s=other,
                    rss_detail=rss,
                    round=rnd,
                    **phases,
                )
                samples.append(sample)
                detail = ", ".join(f"{k} {v:.0f}" for k, v in rss.items())
                print(
                    f"  {seconds:.2f} s, {rows / seconds:,.0f} rows/s, peak RSS"
                    f" {sample.peak_rss_mb:.0f} MB ({detail}), client CPU {cpu:.1f} s, other"
                    f" processes' CPU {other if other is not None else float('nan'):.1f} s",
                    flush=True,
                )
                checks[method] = verify(a, b, method, rows, src_sum)
                print(f"  verified: {rows:,} rows, CHECKSUM TABLE {src_sum} matches", flush=True)
                if not args.keep:
                    drop_db(b, db)  # a clean target server for the next method
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            for db in dict.fromkeys(created_b):
                drop_db(b, db)
            for db in dict.fromkeys(created_a):
                drop_db(a, db)

    # -- results ---------------------------------------------------------------------------
    def med(method: str, attr: str, digits: int = 1) -> float | None:
        vals = [getattr(s, attr) for s in samples if s.method == method]
        vals = [v for v in vals if v is not None]
        return round(statistics.median(vals), digits) if vals else None

    base = med("dump", "seconds", 2)
    summary = []
    for m in methods:
        secs = med(m, "seconds", 2)
        assert secs is not None
        summary.append(
            {
                "method": m,
                "seconds": secs,
                "best_seconds": round(min(x.seconds for x in samples if x.method == m), 2),
                "rows_per_s": round(rows / secs),
                "ratio_to_mysqldump": round(secs / base, 2) if base else None,
                "peak_rss_mb": med(m, "peak_rss_mb"),
                "client_cpu_s": med(m, "client_cpu_s"),
                "server_a_cpu_s": med(m, "server_a_cpu_s"),
                "server_b_cpu_s": med(m, "server_b_cpu_s"),
                "other_cpu_s": med(m, "other_cpu_s"),
                "migrate_step_s": med(m, "migrate_step_s", 2),
                "migrate_table_s": med(m, "migrate_table_s", 2),
            }
        )
    headers = [
        "method",
        "seconds",
        "rows/s",
        "x mysqldump",
        "peak RSS MB",
        "client CPU s",
        "server A CPU s",
        "server B CPU s",
        "other CPU s",
    ]
    keys = [
        "method",
        "seconds",
        "rows_per_s",
        "ratio_to_mysqldump",
        "peak_rss_mb",
        "client_cpu_s",
        "server_a_cpu_s",
        "server_b_cpu_s",
        "other_cpu_s",
    ]

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        if isinstance(v, float):
            return f"{v:.2f}"
        return str(v)

    table = [[cell(r[k]) for k in keys] for r in summary]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    print()
    rounds = f", median of {args.repeat} rounds" if args.repeat > 1 else ""
    versions = f"{info['mariadb_a']['version']} -> {info['mariadb_b']['version']}"
    print(f"{rows:,} rows, MariaDB {versions}, {info['nproc']} CPUs{rounds}")
    for line in [headers, *table]:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    print("peak RSS: the client process(es) only; for mysqldump the sum of mysqldump and mariadb")

    info["load_average_at_end"] = os.getloadavg()
    out = {
        "rows": rows,
        "source": {
            "table": f"{SRC_DB}.{TABLE}",
            "bytes_on_disk": int(src_bytes),
            "checksum": src_sum,
            "generate_seconds": gen_s,
        },
        "settings": {
            "chunk_rows": args.chunk_rows,
            "workers": args.workers,
            "validate": ["count"],
            "repeat": args.repeat,
            "profiled": args.profile,
        },
        "machine": info,
        "results": summary,
        "samples": [asdict(s) for s in samples],
        "checks": checks,
    }
    path = args.out or results_dir / f"copy_{rows}.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
