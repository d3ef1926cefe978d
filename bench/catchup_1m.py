#!/usr/bin/env python3
"""Catch-up pass vs full copy: after copying N rows, change 1 % of them and catch up.

    .venv/bin/python bench/catchup_1m.py --rows 1000000

For each mode (``watermark``: ``full+incremental`` by an ``updated_at`` cursor;
``watermark+deletes``: the same with ``deletes = "detect"``; ``cdc``: from the binlog),
in one run:

1. the source ``bench_src.orders`` on MariaDB A (127.0.0.1:33306, binlog ROW) is the table
   of ``copy_1m.py`` (generated on the server for each round, not timed), with
   ``updated_at`` made NOT NULL, ``ON UPDATE CURRENT_TIMESTAMP(6)`` and indexed, as a
   watermark column must be; the modes of a round take turns on it;
2. ``migrate run`` copies it in full to a fresh database on MariaDB B (127.0.0.1:33307):
   the *full copy*, timed; ``CHECKSUM TABLE ... EXTENDED`` of the target is taken and must
   equal the source's;
3. 1 % of N rows change at the source, with the binlog on: 0.5 % updated, 0.4 % inserted,
   0.1 % deleted, in transactions of 1,000 rows (``watermark``, which ignores deletes:
   0.6 % updated instead);
4. ``migrate run`` again: the *catch-up pass*, timed (wall time of the whole command, and
   the pass alone as the run reports it); the checksums must be equal on both servers;
   the backup table it filled (``migrate_bak_orders``: previous values of the rows it
   overwrote or deleted, keys of the rows it inserted) is measured: exact rows per
   ``migrate_op`` and its size from ``information_schema`` after ``ANALYZE TABLE``;
5. ``migrate rollback plan.toml --run <the catch-up's run id> --json``, timed: every
   action must be done and the target's checksum must equal the one of step 2 (the
   rollback undid exactly the pass), or the run fails;
6. ``migrate run`` again: the rollback put the watermark (or binlog position) back, so this
   pass catches up the same changes once more (timed; it also shows the state was put
   back: a pass that missed them would fail the checksum of step 8);
7. ``migrate run`` once more with nothing changed: the fixed cost of a pass (it follows a
   catch-up, as it did before rollback was measured);
8. ``CHECKSUM TABLE ... EXTENDED`` must be equal on both servers, or the run fails.

Every command is a child process: wall time around it, peak RSS and CPU from ``os.wait4``,
the two servers' CPU from ``/proc/<pid>/stat``, and *other CPU*: everything else the
machine ran meanwhile (a noisy sample when large). Prints a table and writes
``bench/results/catchup_<rows>.json``. Drops the databases it created unless ``--keep``
(a failure keeps them, with the plan and state in the work folder it names).
``--at REV`` runs migrate's code as of a git revision (as ``copy_1m.py --at``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import copy_1m as base  # the shared source table and helpers

#: name -> (mode, extra step keys, target database)
MODES = {
    "watermark": ("full+incremental", 'cursor = "updated_at"\n', "bench_catchup_wm"),
    "watermark+deletes": (
        "full+incremental",
        'cursor = "updated_at"\ndeletes = "detect"\n',
        "bench_catchup_wmd",
    ),
    "cdc": ("cdc", "", "bench_catchup_cdc"),
}

PLAN = """\
version = 1
name = "bench-catchup"
state = "state.db"

[defaults]
chunk_rows = {chunk_rows}
workers = {workers}
validate = ["count"]

[connections]
src = {{ url = "mysql://root@{host}:{port_a}/{src_db}" }}
dst = {{ url = "mysql://root@{host}:{port_b}/{dst_db}" }}

[[steps]]
name = "orders"
source = "src"
target = "dst"
tables = ["{table}"]
mode = "{mode}"
{extra}"""


def prepare_source(a: Any) -> None:
    """A watermark column must be set by every change and indexed."""
    with a.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")
        cur.execute(f"USE `{base.SRC_DB}`")
        cur.execute(f"UPDATE `{base.TABLE}` SET updated_at = created_at WHERE updated_at IS NULL")
        cur.execute(
            f"ALTER TABLE `{base.TABLE}` MODIFY updated_at DATETIME(6) NOT NULL"
            " DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),"
            " ADD INDEX ix_orders_updated_at (updated_at)"
        )
        cur.execute("COMMIT")


def change(a: Any, rows: int, round_no: int, deletes: bool = True) -> dict[str, int]:
    """Change 1 % of ``rows``: 0.5 % updates, 0.4 % inserts, 0.1 % deletes (binlog on);
    without ``deletes``, 0.6 % updates instead."""
    n_upd, n_ins, n_del = rows // 200, rows * 4 // 1000, rows // 1000
    if not deletes:
        n_upd, n_del = n_upd + n_del, 0
    done = {"updated": 0, "inserted": 0, "deleted": 0}
    with a.cursor() as cur:
        cur.execute(f"USE `{base.SRC_DB}`")
        (top,) = base.q1(a, f"SELECT MAX(id) FROM `{base.TABLE}`")
        step = max(1, rows // max(1, n_upd))
        ids = list(range(1 + round_no, rows, step))[:n_upd]
        for i in range(0, len(ids), 1000):
            part = ids[i : i + 1000]
            cur.execute(
                f"UPDATE `{base.TABLE}` SET amount = amount + 1, status = 'changed'"
                f" WHERE id IN ({', '.join(map(str, part))})"
            )
            done["updated"] += cur.rowcount
            cur.execute("COMMIT")
        # new rows: generated like the originals into a side table (not logged), then
        # inserted with updated_at = now, as an application would (logged)
        cols = "id, customer_id, status, note, amount, tax, created_at, flags, weight, sku"
        cur.execute("SET SESSION sql_log_bin = 0")
        cur.execute("DROP TABLE IF EXISTS orders_new")
        cur.execute(base.DDL.replace(f"CREATE TABLE {base.TABLE}", "CREATE TABLE orders_new"))
        cur.execute(
            base.GEN_SELECT.format(table="orders_new", lo=int(top) + 1, hi=int(top) + n_ins)
        )
        cur.execute("COMMIT")
        cur.execute("SET SESSION sql_log_bin = 1")
        for lo in range(int(top) + 1, int(top) + n_ins + 1, 1000):
            cur.execute(
                f"INSERT INTO `{base.TABLE}` ({cols}, updated_at) SELECT {cols}, NOW(6)"
                f" FROM orders_new WHERE id BETWEEN %s AND %s",
                (lo, min(lo + 999, int(top) + n_ins)),
            )
            done["inserted"] += cur.rowcount
            cur.execute("COMMIT")
        cur.execute("SET SESSION sql_log_bin = 0")
        cur.execute("DROP TABLE orders_new")
        cur.execute("SET SESSION sql_log_bin = 1")
        victims = list(range(7 + round_no, rows, max(1, rows // max(1, n_del))))[:n_del]
        for i in range(0, len(victims), 1000):
            part = victims[i : i + 1000]
            cur.execute(f"DELETE FROM `{base.TABLE}` WHERE id IN ({', '.join(map(str, part))})")
            done["deleted"] += cur.rowcount
            cur.execute("COMMIT")
    return done


def timed(
    work: Path, cmd: list[str], env: dict[str, str], pids: tuple[int | None, int | None]
) -> dict[str, Any]:
    """Run ``cmd`` (a ``--json`` command) in ``work`` and measure it (see the module doc);
    a non-zero exit fails the benchmark."""
    a0, b0 = base.cpu_seconds(pids[0]), base.cpu_seconds(pids[1])
    busy0 = base.busy_seconds()
    with open(work / "out.json", "w+b") as out, open(work / "err.txt", "w+b") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=work, env=env)
        rc, usage = base._wait(proc)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    busy1 = base.busy_seconds()
    a1, b1 = base.cpu_seconds(pids[0]), base.cpu_seconds(pids[1])
    if rc != 0:
        base.die(f"{' '.join(cmd)} exited {rc} (in {work})\n{stderr[-3000:]}\n{stdout[-3000:]}")
    cpu = base._cpu(usage)
    srv_a = None if a0 is None or a1 is None else a1 - a0
    srv_b = None if b0 is None or b1 is None else b1 - b0
    other = None
    if srv_a is not None and srv_b is not None:
        other = max(0.0, busy1 - busy0 - cpu - srv_a - srv_b)
    return {
        "s": seconds,
        "peak_rss_mb": base._mb(usage),
        "cpu_s": cpu,
        "server_a_cpu_s": srv_a,
        "server_b_cpu_s": srv_b,
        "other_cpu_s": other,
        "json": json.loads(stdout),
    }


def migrate_cmd(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("migrate")), *args]


def table_of(report: dict[str, Any]) -> dict[str, Any]:
    (t,) = [t for s in report["steps"] for t in s["tables"]]
    return t


def backup_info(b: Any, db: str) -> dict[str, Any]:
    """The backup tables in ``db``: exact rows per ``migrate_op`` and the size
    ``information_schema`` gives after ``ANALYZE TABLE`` (InnoDB's statistics lag
    otherwise)."""
    names = [
        r[0]
        for r in base.qall(
            b,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
            " AND TABLE_NAME LIKE 'migrate\\\\_bak\\\\_%%'",
            (db,),
        )
    ]
    out: dict[str, Any] = {"tables": names, "rows": 0, "by_op": {}, "data_bytes": 0}
    out.update(index_bytes=0, table_rows_estimate=0)
    for name in names:
        base.qall(b, f"ANALYZE TABLE `{db}`.`{name}`")
        for op, n in base.qall(
            b, f"SELECT migrate_op, COUNT(*) FROM `{db}`.`{name}` GROUP BY migrate_op"
        ):
            out["by_op"][op] = out["by_op"].get(op, 0) + int(n)
            out["rows"] += int(n)
        est, data, index = base.q1(
            b,
            "SELECT TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (db, name),
        )
        out["table_rows_estimate"] += int(est or 0)
        out["data_bytes"] += int(data or 0)
        out["index_bytes"] += int(index or 0)
    out["mib"] = (out["data_bytes"] + out["index_bytes"]) / 1024**2
    return out


def one_mode(
    a: Any,
    b: Any,
    mode: str,
    rows: int,
    args: argparse.Namespace,
    rnd: int,
    pids: tuple[int | None, int | None],
) -> dict[str, Any]:
    """Full copy, 1 % change (``rnd`` picks other rows each time), catch-up, rollback of
    the catch-up, the same catch-up again, idle pass (see the module doc)."""
    work = Path(tempfile.mkdtemp(prefix=f"catchup-{mode.replace('+', '-')}-"))
    step_mode, extra, dst = MODES[mode]
    base.fresh_db(b, dst)
    plan = work / "plan.toml"
    plan.write_text(
        PLAN.format(
            chunk_rows=args.chunk_rows,
            workers=args.workers,
            host=base.HOST,
            port_a=base.PORT_A,
            port_b=base.PORT_B,
            src_db=base.SRC_DB,
            dst_db=dst,
            table=base.TABLE,
            mode=step_mode,
            extra=extra,
        )
    )
    env = args.migrate_env or dict(os.environ)
    run_cmd = migrate_cmd("run", str(plan), "--quiet", "--json")
    full = timed(work, run_cmd, env, pids)
    full_sum, src_full_sum = base.checksum(b, dst), base.checksum(a, base.SRC_DB)
    if full_sum != src_full_sum:
        base.die(
            f"{mode}: CHECKSUM TABLE differs after the full copy: {src_full_sum} vs {full_sum}"
        )
    # a step that ignores deletes is measured on updates and inserts only
    changed = change(a, rows, rnd, deletes="deletes" in mode or step_mode == "cdc")
    cu_run = timed(work, run_cmd, env, pids)
    report = cu_run["json"]
    cu = table_of(report)["catch_up"] or {}
    src_sum, dst_sum = base.checksum(a, base.SRC_DB), base.checksum(b, dst)
    if src_sum != dst_sum:
        base.die(f"{mode}: CHECKSUM TABLE differs after the pass: {src_sum} vs {dst_sum}")
    backup = backup_info(b, dst)
    # undo the pass: the target must be as the full copy left it
    run_id = report["run_id"]
    rb_cmd = migrate_cmd("rollback", str(plan), "--run", str(run_id), "--json")
    rb = timed(work, rb_cmd, env, pids)
    actions = rb["json"]["actions"]
    undone = sum(1 for x in actions if x["done"])
    by_action: dict[str, int] = {}
    for x in actions:
        by_action[x["action"]] = by_action.get(x["action"], 0) + 1
    rb_sum = base.checksum(b, dst)
    repro = (
        f"work folder {work} (plan.toml, state.db, rollback scripts in state.rollback/);"
        f" databases {base.SRC_DB} on :{base.PORT_A} and {dst} on :{base.PORT_B} are kept;"
        f" reproduce: {' '.join(rb_cmd)} after the steps in bench/README.md"
    )
    if rb["json"]["error"] or undone != len(actions) or not actions:
        base.die(
            f"{mode}: migrate rollback --run {run_id} did {undone} of {len(actions)} action(s),"
            f" error {rb['json']['error']!r}; {repro}"
        )
    if rb_sum != full_sum:
        base.die(
            f"{mode}: CHECKSUM TABLE after rollback of run {run_id} is {rb_sum}, after the"
            f" full copy it was {full_sum} (after the pass {dst_sum}); {repro}"
        )
    backup_after_rb = backup_info(b, dst)
    # the rollback put the state back: the same changes are caught up once more
    again = timed(work, run_cmd, env, pids)
    cu_again = table_of(again["json"])["catch_up"] or {}
    idle_run = timed(work, run_cmd, env, pids)
    idle = table_of(idle_run["json"])["catch_up"] or {}
    src_sum, dst_sum = base.checksum(a, base.SRC_DB), base.checksum(b, dst)
    if src_sum != dst_sum:
        base.die(f"{mode}: CHECKSUM TABLE differs after the pass: {src_sum} vs {dst_sum}")
    if not args.keep:
        base.drop_db(b, dst)
        shutil.rmtree(work, ignore_errors=True)
    pass_s, full_s = cu_run["s"], full["s"]
    timings = {"full_copy": full, "catch_up": cu_run, "rollback": rb}
    timings.update(catch_up_again=again, idle_pass=idle_run)
    return {
        "mode": mode,
        "round": rnd,
        "full_copy_s": full_s,
        "full_copy_peak_rss_mb": full["peak_rss_mb"],
        "catch_up_s": pass_s,
        "catch_up_pass_s": cu.get("seconds"),
        "catch_up_peak_rss_mb": cu_run["peak_rss_mb"],
        "rows_read": cu.get("rows"),
        "rows_changed": cu.get("changed"),
        "rows_deleted": cu.get("deleted"),
        "source_changes": changed,
        "idle_pass_s": idle_run["s"],
        "idle_pass_own_s": idle.get("seconds"),
        "ratio": pass_s / full_s,
        "checksum_equal": True,
        # since rollback: the backup of the pass, its rollback, the pass once more
        "catch_up_run_id": run_id,
        "checksum_after_full_copy": full_sum,
        "backup_table": ",".join(backup["tables"]),
        "backup_rows": backup["rows"],
        "backup_rows_by_op": backup["by_op"],
        "backup_table_rows_estimate": backup["table_rows_estimate"],
        "backup_data_bytes": backup["data_bytes"],
        "backup_index_bytes": backup["index_bytes"],
        "backup_mib": backup["mib"],
        "rollback_s": rb["s"],
        "rollback_peak_rss_mb": rb["peak_rss_mb"],
        "rollback_cpu_s": rb["cpu_s"],
        "rollback_server_b_cpu_s": rb["server_b_cpu_s"],
        "rollback_actions": len(actions),
        "rollback_actions_by_kind": by_action,
        "checksum_after_rollback": rb_sum,
        "checksum_after_rollback_equal": rb_sum == full_sum,
        "backup_rows_after_rollback": backup_after_rb["rows"],
        "catch_up_again_s": again["s"],
        "catch_up_again_pass_s": cu_again.get("seconds"),
        "catch_up_again_rows_changed": cu_again.get("changed"),
        "catch_up_again_rows_deleted": cu_again.get("deleted"),
        # CPU of each command: its own (client), each server's, everything else's
        "cpu": {
            name: {k: t[k] for k in ("cpu_s", "server_a_cpu_s", "server_b_cpu_s", "other_cpu_s")}
            for name, t in timings.items()
        },
        "other_cpu_s": {name: t["other_cpu_s"] for name, t in timings.items()},
    }


#: summary columns: (JSON key, printed header, format)
NEW_COLUMNS = (
    ("rollback_s", "rollback s", "{:.2f}"),
    ("rollback_peak_rss_mb", "rollback peak RSS MB", "{:.0f}"),
    ("backup_rows", "backup rows", "{:,.0f}"),
    ("backup_mib", "backup MiB", "{:.2f}"),
    ("catch_up_again_s", "catch-up again s", "{:.2f}"),
    ("catch_up_other_cpu_s", "other CPU s (catch-up)", "{:.2f}"),
    ("rollback_other_cpu_s", "other CPU s (rollback)", "{:.2f}"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--chunk-rows", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--modes", default=",".join(MODES), help=", ".join(MODES))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--at",
        metavar="REV",
        help="run migrate's code as of this git revision (git archive), not the working tree",
    )
    args = ap.parse_args()
    a, b = base.connect(base.PORT_A), base.connect(base.PORT_B)
    pids = (base.server_pid(a), base.server_pid(b))
    code_dir = Path(tempfile.mkdtemp(prefix="catchup-code-"))
    args.migrate_env = base.code_at(args.at, code_dir) if args.at else None
    samples = []
    modes = args.modes.split(",")
    for rnd in range(1, args.repeat + 1):
        # a fresh source per round: a pass re-reads the overlap window (5 minutes), which
        # would otherwise hold the previous rounds' changes too
        print(f"round {rnd}: generating {args.rows:,} rows ...", flush=True)
        base.generate(a, args.rows)
        prepare_source(a)
        for i, mode in enumerate(modes):
            s = one_mode(a, b, mode, args.rows, args, (rnd - 1) * len(modes) + i + 1, pids)
            samples.append(s)
            print(
                f"round {rnd} {mode:17} full {s['full_copy_s']:6.2f}s  catch-up"
                f" {s['catch_up_s']:5.2f}s (pass {s['catch_up_pass_s']:.2f}s)"
                f"  idle {s['idle_pass_s']:5.2f}s  ratio {s['ratio']:.3f}"
                f"  read {s['rows_read']:,} changed {s['rows_changed']:,}"
                f" deleted {s['rows_deleted']:,}",
                flush=True,
            )
            ops = ", ".join(f"{k} {v:,}" for k, v in sorted(s["backup_rows_by_op"].items()))
            other = ", ".join(
                f"{k} {v:.1f}" if v is not None else f"{k} -" for k, v in s["other_cpu_s"].items()
            )
            print(
                f"{'':25}backup {s['backup_rows']:,} rows ({ops}) {s['backup_mib']:.2f} MiB"
                f"  rollback {s['rollback_s']:5.2f}s {s['rollback_peak_rss_mb']:.0f} MB"
                f" ({s['rollback_actions']} actions, checksum = full copy's)"
                f"  catch-up again {s['catch_up_again_s']:5.2f}s"
                f" (changed {s['catch_up_again_rows_changed']:,})\n"
                f"{'':25}other CPU s: {other}",
                flush=True,
            )
    shutil.rmtree(code_dir, ignore_errors=True)
    for s in samples:
        s["catch_up_other_cpu_s"] = s["other_cpu_s"]["catch_up"]
        s["rollback_other_cpu_s"] = s["other_cpu_s"]["rollback"]
    summary = {}
    for mode in args.modes.split(","):
        mine = [s for s in samples if s["mode"] == mode]

        def med(k: str, mine: list[dict[str, Any]] = mine) -> float | None:
            vals = [s[k] for s in mine if s[k] is not None]
            return statistics.median(vals) if vals else None

        summary[mode] = {
            k: med(k)
            for k in (
                "full_copy_s",
                "catch_up_s",
                "catch_up_pass_s",
                "idle_pass_s",
                "ratio",
                "catch_up_peak_rss_mb",
                *(c[0] for c in NEW_COLUMNS),
                "rollback_cpu_s",
                "rollback_server_b_cpu_s",
                "backup_data_bytes",
                "backup_index_bytes",
            )
        }
        summary[mode]["checksum_after_rollback_equal"] = all(
            s["checksum_after_rollback_equal"] for s in mine
        )
    others = [v for s in samples for v in s["other_cpu_s"].values() if v is not None]
    result = {
        "rows": args.rows,
        "changed_fraction": 0.01,
        "machine": base.machine_info(a, b, args.at),
        "summary": summary,
        "max_other_cpu_s": max(others) if others else None,
        "samples": samples,
    }
    out = args.out or base.BENCH_DIR / "results" / f"catchup_{args.rows}.json"
    out.write_text(json.dumps(result, indent=2, default=str))

    def cell(v: Any, fmt: str) -> str:
        return "-" if v is None else fmt.format(v)

    print(
        "\n| mode | full copy s | catch-up s (command) | pass s (in run) | idle pass s | ratio | "
        + " | ".join(c[1] for c in NEW_COLUMNS)
        + " | checksum after rollback = after full copy |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |" + " ---: |" * len(NEW_COLUMNS) + " --- |")
    for mode, m in summary.items():
        print(
            f"| {mode} | {m['full_copy_s']:.2f} | {m['catch_up_s']:.2f} |"
            f" {m['catch_up_pass_s']:.2f} | {m['idle_pass_s']:.2f} | {m['ratio']:.3f} | "
            + " | ".join(cell(m[k], fmt) for k, _, fmt in NEW_COLUMNS)
            + f" | {'yes' if m['checksum_after_rollback_equal'] else 'NO'} |"
        )
    if others:
        print(f"\nother CPU s: at most {max(others):.1f} during any timed command")
    print(f"\nwritten to {out}")
    if not args.keep:
        base.drop_db(a, base.SRC_DB)


if __name__ == "__main__":
    main()
