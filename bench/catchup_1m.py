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
   the *full copy*, timed;
3. 1 % of N rows change at the source, with the binlog on: 0.5 % updated, 0.4 % inserted,
   0.1 % deleted, in transactions of 1,000 rows (``watermark``, which ignores deletes:
   0.6 % updated instead);
4. ``migrate run`` again: the *catch-up pass*, timed (wall time of the whole command, and
   the pass alone as the run reports it);
5. ``migrate run`` once more with nothing changed: the fixed cost of a pass;
6. ``CHECKSUM TABLE ... EXTENDED`` must be equal on both servers, or the run fails.

Prints a table and writes ``bench/results/catchup_<rows>.json``. Each child's peak RSS
comes from ``os.wait4``. Drops the databases it created unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
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


def run(work: Path, plan: Path, env: dict[str, str]) -> tuple[float, float, dict[str, Any]]:
    cmd = [str(Path(sys.executable).with_name("migrate")), "run", str(plan), "--quiet", "--json"]
    with open(work / "out.json", "w+b") as out, open(work / "err.txt", "w+b") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=work, env=env)
        rc, usage = base._wait(proc)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    if rc != 0:
        base.die(f"{' '.join(cmd)} exited {rc}\n{stderr[-3000:]}\n{stdout[-3000:]}")
    return seconds, base._mb(usage), json.loads(stdout)


def table_of(report: dict[str, Any]) -> dict[str, Any]:
    (t,) = [t for s in report["steps"] for t in s["tables"]]
    return t


def one_mode(
    a: Any, b: Any, mode: str, rows: int, args: argparse.Namespace, rnd: int
) -> dict[str, Any]:
    """Full copy, 1 % change (``rnd`` picks other rows each time), catch-up, idle pass."""
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
    env = dict(os.environ)
    full_s, full_rss, _ = run(work, plan, env)
    # a step that ignores deletes is measured on updates and inserts only
    changed = change(a, rows, rnd, deletes="deletes" in mode or step_mode == "cdc")
    pass_s, pass_rss, report = run(work, plan, env)
    t = table_of(report)
    cu = t["catch_up"] or {}
    idle_s, _, idle_report = run(work, plan, env)
    idle = table_of(idle_report)["catch_up"] or {}
    src_sum, dst_sum = base.checksum(a, base.SRC_DB), base.checksum(b, dst)
    if src_sum != dst_sum:
        base.die(f"{mode}: CHECKSUM TABLE differs after the pass: {src_sum} vs {dst_sum}")
    if not args.keep:
        base.drop_db(b, dst)
    return {
        "mode": mode,
        "round": rnd,
        "full_copy_s": full_s,
        "full_copy_peak_rss_mb": full_rss,
        "catch_up_s": pass_s,
        "catch_up_pass_s": cu.get("seconds"),
        "catch_up_peak_rss_mb": pass_rss,
        "rows_read": cu.get("rows"),
        "rows_changed": cu.get("changed"),
        "rows_deleted": cu.get("deleted"),
        "source_changes": changed,
        "idle_pass_s": idle_s,
        "idle_pass_own_s": idle.get("seconds"),
        "ratio": pass_s / full_s,
        "checksum_equal": True,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--chunk-rows", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--modes", default=",".join(MODES), help=", ".join(MODES))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    a, b = base.connect(base.PORT_A), base.connect(base.PORT_B)
    samples = []
    modes = args.modes.split(",")
    for rnd in range(1, args.repeat + 1):
        # a fresh source per round: a pass re-reads the overlap window (5 minutes), which
        # would otherwise hold the previous rounds' changes too
        print(f"round {rnd}: generating {args.rows:,} rows ...", flush=True)
        base.generate(a, args.rows)
        prepare_source(a)
        for i, mode in enumerate(modes):
            s = one_mode(a, b, mode, args.rows, args, (rnd - 1) * len(modes) + i + 1)
            samples.append(s)
            print(
                f"round {rnd} {mode:17} full {s['full_copy_s']:6.2f}s  catch-up"
                f" {s['catch_up_s']:5.2f}s (pass {s['catch_up_pass_s']:.2f}s)"
                f"  idle {s['idle_pass_s']:5.2f}s  ratio {s['ratio']:.3f}"
                f"  read {s['rows_read']:,} changed {s['rows_changed']:,}"
                f" deleted {s['rows_deleted']:,}",
                flush=True,
            )
    summary = {}
    for mode in args.modes.split(","):
        mine = [s for s in samples if s["mode"] == mode]
        summary[mode] = {
            k: statistics.median(s[k] for s in mine)
            for k in (
                "full_copy_s",
                "catch_up_s",
                "catch_up_pass_s",
                "idle_pass_s",
                "ratio",
                "catch_up_peak_rss_mb",
            )
        }
    result = {
        "rows": args.rows,
        "changed_fraction": 0.01,
        "machine": base.machine_info(a, b, None),
        "summary": summary,
        "samples": samples,
    }
    out = args.out or base.BENCH_DIR / "results" / f"catchup_{args.rows}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print("\n| mode | full copy s | catch-up s (command) | pass s (in run) | idle pass s | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for mode, m in summary.items():
        print(
            f"| {mode} | {m['full_copy_s']:.2f} | {m['catch_up_s']:.2f} |"
            f" {m['catch_up_pass_s']:.2f} | {m['idle_pass_s']:.2f} | {m['ratio']:.3f} |"
        )
    print(f"\nwritten to {out}")
    if not args.keep:
        base.drop_db(a, base.SRC_DB)


if __name__ == "__main__":
    main()
