#!/usr/bin/env python3
"""Copy a file tree to S3, from local disk and from SFTP: ``rclone copy`` vs ``migrate run``.

    .venv/bin/python bench/files_441m.py                 # 3 rounds, both sources
    .venv/bin/python bench/files_441m.py --rounds 5 --sources sftp

1. Generates the data set once into ``--data`` (default ``$TMPDIR/migrate-bench-files``):
   5,000 files of 4–64 KiB (seeded random sizes and random bytes) spread over 50 folders
   (10 × 5), plus 4 files of 64 MiB in four of those folders: 442 MB in 5,004 files.
   Everything (sizes, bytes, mtimes) follows from ``--seed``; a ``manifest.json`` holds
   each file's size, MD5 and the S3 ETag it must get. Generation is not timed. For the
   SFTP source the tree is hard-linked (copied when it cannot be) into
   ``$MIGRATE_TEST_SFTP_DIR/bench-files-441m``.
2. For each round and each source (``local``: ``file://``, ``sftp``: the test server on
   127.0.0.1:32222), both tools copy the tree into their own fresh, empty bucket of the
   SeaweedFS test server (127.0.0.1:38333), in the same run; odd rounds run migrate first,
   even rounds rclone first:

   * ``migrate``: ``migrate run plan.toml --quiet --json`` with a generated plan
     (``workers = 16``, ``validate = []``; every file's MD5 is still checked against the
     ETag the store returns, or the multipart ETag recomputed from the parts);
   * ``rclone``: ``rclone copy SRC DST --transfers 16 --checkers 16 --s3-chunk-size 8M
     --s3-upload-cutoff 16M``, remotes configured through ``RCLONE_CONFIG_*`` variables
     (the part layout is migrate's default, so that both tools produce the same ETags).

   Each tool is a child process: wall time from ``time.perf_counter()``, peak RSS and CPU
   from ``os.wait4`` (that child only), the servers' CPU from ``/proc`` (weed's own time,
   sshd's reaped children: the per-connection processes), and the CPU everything else on
   the machine used meanwhile.
3. Checks every bucket: exactly the 5,004 keys of the manifest with their sizes and
   expected ETags, and the two buckets of a round and source equal to each other (keys,
   sizes, ETags). Any difference fails the run (exit 1). Buckets are deleted afterwards
   (``--keep`` keeps the last pair).
4. Prints a table (median per source and tool) and writes ``bench/results/files_441m.json``
   (every sample, load averages, versions, the code migrate ran).

migrate runs from a snapshot of the working tree taken at start (``--code tree``) so that
edits made by others during the run do not mix into it; ``--code REV`` runs a git revision
instead (``git archive``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
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

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
KIB, MIB = 1024, 1024 * 1024
SOURCES = ("local", "sftp")
TOOLS = ("migrate", "rclone")
SFTP_SUBDIR = "bench-files-441m"
SFTP_USER = "migrate-sftp"


def die(msg: str) -> None:
    print(f"files_441m: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


# -- servers ------------------------------------------------------------------------------
def server_env() -> dict[str, str]:
    """MIGRATE_TEST_* from the environment, else from ``scripts/test-servers env``."""
    need = (
        "MIGRATE_TEST_S3_ENDPOINT",
        "MIGRATE_TEST_S3_ACCESS_KEY",
        "MIGRATE_TEST_S3_SECRET_KEY",
        "MIGRATE_TEST_SFTP_URL",
        "MIGRATE_TEST_SFTP_KEY",
        "MIGRATE_TEST_SFTP_KNOWN_HOSTS",
        "MIGRATE_TEST_SFTP_DIR",
    )
    env = {k: os.environ[k] for k in need if k in os.environ}
    if len(env) < len(need):
        out = subprocess.run(
            [str(REPO / "scripts/test-servers"), "env"], capture_output=True, text=True
        )
        for line in out.stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export ") :].split("=", 1)
                if k in need and k not in env:
                    env[k] = shlex.split(v)[0] if v else ""
    missing = [k for k in need if not env.get(k)]
    if missing:
        die(f"missing {', '.join(missing)}: run scripts/test-servers start s3 sftp")
    return env


def pid_from(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def proc_cpu(pid: int | None, children: bool = False) -> float | None:
    """utime + stime of a process (with ``children``: plus its reaped children's)."""
    if pid is None:
        return None
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def children_cpu(pid: int | None) -> float | None:
    """CPU seconds of the reaped children of ``pid`` (cutime + cstime)."""
    if pid is None:
        return None
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(f[13]) + int(f[14])) / os.sysconf("SC_CLK_TCK")


def process_cpu() -> dict[int, tuple[str, float]]:
    """(name, utime + stime) of every process now."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            name = text[text.index("(") + 1 : text.rindex(")")]
            f = text.rsplit(")", 1)[1].split()
            out[int(stat.parent.name)] = (name, (int(f[11]) + int(f[12])) / tick)
        except (OSError, ValueError, IndexError):
            continue
    return out


def busiest(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> str:
    """The processes that used the most CPU between two :func:`process_cpu` snapshots."""
    used: dict[str, float] = {}
    for pid, (name, cpu) in after.items():
        prev = before.get(pid)
        delta = cpu - (prev[1] if prev and prev[0] == name else 0.0)
        if delta > 0.05:
            used[name] = used.get(name, 0.0) + delta
    top = sorted(used.items(), key=lambda kv: -kv[1])[:5]
    return ", ".join(f"{n} {c:.1f}" for n, c in top)


def busy_seconds() -> float:
    """CPU seconds every process on the machine has used (all CPUs), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# -- the data set ---------------------------------------------------------------------------
def layout(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(relative path, size) of every file, from the seed alone."""
    rng = random.Random(args.seed)
    tops, subs = 10, max(1, args.folders // 10)
    folders = [f"d{t:02d}/s{s}" for t in range(tops) for s in range(subs)]
    files: list[tuple[str, int]] = []
    for i in range(args.files):
        folder = folders[i % len(folders)]
        files.append(
            (f"{folder}/f{i:05d}.dat", rng.randint(args.min_kib * KIB, args.max_kib * KIB))
        )
    # the big files sit in folders spread over the tree (not all at the end of the walk)
    for j in range(args.big):
        folder = folders[(j * len(folders)) // max(1, args.big) + len(folders) // 8]
        files.append((f"{folder}/big-{j}.bin", args.big_mib * MIB))
    return sorted(files)


def expected_etag(md5: str, part_md5s: list[bytes], size: int, threshold: int) -> str:
    if size < threshold:
        return md5
    joined = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
    return f"{joined}-{len(part_md5s)}"


def generate(args: argparse.Namespace) -> dict[str, Any]:
    """Write the tree under ``args.data/tree`` (unless the manifest shows it is there) and
    return the manifest."""
    tree = args.data / "tree"
    mpath = args.data / "manifest.json"
    params = {
        "seed": args.seed,
        "files": args.files,
        "folders": args.folders,
        "min_kib": args.min_kib,
        "max_kib": args.max_kib,
        "big": args.big,
        "big_mib": args.big_mib,
        "part_size": args.part_mib * MIB,
        "threshold": args.threshold_mib * MIB,
    }
    files = layout(args)
    if mpath.exists():
        try:
            manifest = json.loads(mpath.read_text())
        except ValueError:
            manifest = {}
        if manifest.get("params") == params and all(
            (tree / p).is_file() and (tree / p).stat().st_size == s for p, s in files
        ):
            print(f"data: reusing {tree} ({len(files):,} files)", flush=True)
            return manifest
    print(f"data: generating {len(files):,} files into {tree} ...", flush=True)
    started = time.perf_counter()
    if tree.exists():
        shutil.rmtree(tree)
    rng = random.Random(args.seed * 7919 + 1)
    base_mtime = 1_700_000_000
    entries: dict[str, Any] = {}
    for n, (path, size) in enumerate(files):
        full = tree / path
        full.parent.mkdir(parents=True, exist_ok=True)
        md5 = hashlib.md5(usedforsecurity=False)
        parts: list[bytes] = []
        with open(full, "wb") as out:
            left = size
            while left:
                chunk = rng.randbytes(min(left, params["part_size"]))
                out.write(chunk)
                md5.update(chunk)
                parts.append(hashlib.md5(chunk, usedforsecurity=False).digest())
                left -= len(chunk)
        os.utime(full, (base_mtime + n, base_mtime + n))
        entries[path] = {
            "size": size,
            "md5": md5.hexdigest(),
            "etag": expected_etag(md5.hexdigest(), parts, size, params["threshold"]),
        }
    manifest = {
        "params": params,
        "files": entries,
        "total_bytes": sum(s for _, s in files),
        "generate_seconds": round(time.perf_counter() - started, 1),
    }
    mpath.write_text(json.dumps(manifest, indent=1) + "\n")
    print(
        f"  {manifest['total_bytes'] / 1e6:.1f} MB in {manifest['generate_seconds']} s", flush=True
    )
    return manifest


def sftp_tree(args: argparse.Namespace, env: dict[str, str], manifest: dict[str, Any]) -> Path:
    """The tree, hard-linked (or copied) below the SFTP server's data directory."""
    dest = Path(env["MIGRATE_TEST_SFTP_DIR"]) / SFTP_SUBDIR
    tree = args.data / "tree"
    stamp = args.data / "sftp-copy.sha256"  # outside the tree: it would be copied too
    want = hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == want:
        ok = all(
            (dest / p).is_file() and (dest / p).stat().st_size == e["size"]
            for p, e in manifest["files"].items()
        )
        if ok:
            return dest
    if dest.exists():
        shutil.rmtree(dest)
    stamp.unlink(missing_ok=True)
    linked = copied = 0
    for path in manifest["files"]:
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(tree / path, dest / path)
            linked += 1
        except OSError:
            shutil.copy2(tree / path, dest / path)
            copied += 1
    stamp.write_text(want + "\n")
    # The server's user owns its data directory; the hard links share the cache's inodes,
    # so only the directories change owner (reading is all a source needs).
    try:
        for d in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
            shutil.chown(d, SFTP_USER, SFTP_USER)
    except (LookupError, PermissionError):
        pass
    print(f"sftp: {dest} ({linked:,} hard links, {copied:,} copies)", flush=True)
    return dest


# -- buckets ----------------------------------------------------------------------------------
def s3_client(env: dict[str, str]) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=env["MIGRATE_TEST_S3_ENDPOINT"],
        aws_access_key_id=env["MIGRATE_TEST_S3_ACCESS_KEY"],
        aws_secret_access_key=env["MIGRATE_TEST_S3_SECRET_KEY"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}),
    )


def drop_bucket(s3: Any, bucket: str) -> None:
    try:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        for u in uploads:
            s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
        s3.delete_bucket(Bucket=bucket)
    except s3.exceptions.NoSuchBucket:
        pass
    except Exception as exc:  # cleanup must not hide the result
        if "NoSuchBucket" not in str(exc):
            print(f"  (could not delete bucket {bucket}: {exc})", flush=True)


def fresh_bucket(s3: Any, bucket: str) -> None:
    drop_bucket(s3, bucket)
    s3.create_bucket(Bucket=bucket)


def listing(s3: Any, bucket: str) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = (int(o["Size"]), o["ETag"].strip('"').lower())
    return out


def check_bucket(s3: Any, bucket: str, manifest: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """Exactly the manifest's keys, sizes and ETags, or the benchmark fails."""
    got = listing(s3, bucket)
    want = {p: (e["size"], e["etag"]) for p, e in manifest["files"].items()}
    if got != want:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        differ = sorted(p for p in set(want) & set(got) if want[p] != got[p])
        die(
            f"bucket {bucket}: {len(got)} objects, expected {len(want)}; missing"
            f" {len(missing)} {missing[:5]}, extra {len(extra)} {extra[:5]}, different"
            f" {len(differ)} {[(p, want[p], got[p]) for p in differ[:3]]}"
        )
    return got


# -- running a tool ----------------------------------------------------------------------------
@dataclass
class Sample:
    round: int
    source: str
    tool: str
    position: int  # 1: ran first in its pair, 2: second
    workers: int  # migrate workers = rclone --transfers = --checkers
    seconds: float
    peak_rss_mb: float
    cpu_s: float
    weed_cpu_s: float | None
    sshd_cpu_s: float | None
    other_cpu_s: float | None
    load_before: tuple[float, float, float]
    detail: dict[str, Any] = field(default_factory=dict)


def _wait(proc: subprocess.Popen[Any]) -> tuple[int, Any]:
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage


def measure(
    cmd: list[str], cwd: Path, env: dict[str, str] | None, pids: dict[str, int | None]
) -> tuple[float, Any, str, str, dict[str, float | None]]:
    """Run ``cmd``; wall seconds, rusage, stdout, stderr and the servers' CPU meanwhile."""
    w0, s0, b0 = proc_cpu(pids["weed"]), children_cpu(pids["sshd"]), busy_seconds()
    p0 = process_cpu()
    with open(cwd / "stdout", "w+b") as out_f, open(cwd / "stderr", "w+b") as err_f:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, cwd=cwd, env=env)
        rc, usage = _wait(proc)
        seconds = time.perf_counter() - started
        w1, s1, b1, p1 = (
            proc_cpu(pids["weed"]),
            children_cpu(pids["sshd"]),
            busy_seconds(),
            process_cpu(),
        )
        out_f.seek(0)
        err_f.seek(0)
        stdout, stderr = (
            out_f.read().decode(errors="replace"),
            err_f.read().decode(errors="replace"),
        )
    if rc != 0:
        die(f"{shlex.join(cmd)} exited {rc}\nstderr: {stderr[-3000:]}\nstdout: {stdout[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    weed = None if w0 is None or w1 is None else w1 - w0
    sshd = None
    if s0 is not None and s1 is not None:
        # sshd's session processes: those that ended were added to the listener's
        # children time; those still running (ours closing, anyone else's) by their change
        sshd = (
            s1
            - s0
            + sum(
                cpu - (p0[pid][1] if pid in p0 and p0[pid][0] == name else 0.0)
                for pid, (name, cpu) in p1.items()
                if name.startswith("sshd") and pid != pids["sshd"]
            )
        )
    other = max(0.0, b1 - b0 - cpu - (weed or 0) - (sshd or 0))
    # (processes that ran throughout; the tool's and sshd's short-lived ones are not here)
    top = busiest(p0, p1)
    return seconds, usage, stdout, stderr, {"weed": weed, "sshd": sshd, "other": other, "top": top}


PLAN = """\
version = 1
name = "bench-files"
state = "state.db"

[connections.src]
{source}

[connections.dst]
url = "s3://{bucket}"
endpoint = "{endpoint}"
provider = "seaweedfs"
access_key = "{access_key}"
secret_key = "{secret_key}"

[[steps]]
name = "files"
source = "src"
target = "dst"
mode = "full"
workers = {workers}
part_size = "{part_mib}MiB"
multipart_threshold = "{threshold_mib}MiB"
validate = {validate}
"""


def run_migrate(
    work: Path, source: str, bucket: str, ctx: dict[str, Any], args: argparse.Namespace
) -> tuple[float, Any, dict[str, Any], dict[str, float | None]]:
    env = ctx["env"]
    if source == "local":
        src = f'url = "file://{ctx["local_dir"]}"'
    else:
        base = env["MIGRATE_TEST_SFTP_URL"].rstrip("/")
        src = (
            f'url = "{base}/{SFTP_SUBDIR}"\nkey_file = "{env["MIGRATE_TEST_SFTP_KEY"]}"\n'
            f'known_hosts = "{env["MIGRATE_TEST_SFTP_KNOWN_HOSTS"]}"\nallow_agent = false'
        )
    plan = work / "plan.toml"
    plan.write_text(
        PLAN.format(
            source=src,
            bucket=bucket,
            endpoint=env["MIGRATE_TEST_S3_ENDPOINT"],
            access_key=env["MIGRATE_TEST_S3_ACCESS_KEY"],
            secret_key=env["MIGRATE_TEST_S3_SECRET_KEY"],
            workers=workers_for(source, args),
            part_mib=args.part_mib,
            threshold_mib=args.threshold_mib,
            validate=json.dumps(args.migrate_validate),
        )
    )
    cmd = [str(Path(sys.executable).with_name("migrate")), "run", str(plan), "--quiet", "--json"]
    if args.profile:
        pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        out = BENCH_DIR / "results" / f"profile_files_{source}.txt"
        cmd = [pyspy, "record", "--rate", "100", "--format", "raw", "--threads",
               "-o", str(out), "--", *cmd]  # fmt: skip
    seconds, usage, stdout, stderr, servers = measure(cmd, work, ctx["migrate_env"], ctx["pids"])
    detail_top = servers.pop("top")
    if args.profile:
        stdout = "\n".join(ln for ln in stdout.splitlines() if not ln.startswith("py-spy>"))
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        die(f"migrate --json printed no JSON: {stdout[-2000:]}\n{stderr[-2000:]}")
        raise
    step = report["steps"][0]
    files = step.get("files") or {}
    n = len(ctx["manifest"]["files"])
    if report["status"] != "done" or files.get("copied") != n or files.get("failed"):
        die(f"migrate reported {report['status']}: {json.dumps(report)[:3000]}")
    detail = {
        "step_seconds": files.get("seconds"),
        "verified": files.get("verified"),
        "copied": files.get("copied"),
        "copied_bytes": files.get("copied_bytes"),
        "check": (files.get("check") or {}).get("status"),
        "busiest_processes": detail_top,
    }
    return seconds, usage, detail, servers


def workers_for(source: str, args: argparse.Namespace) -> int:
    """migrate's ``workers`` and rclone's ``--transfers``/``--checkers`` for a source."""
    return args.sftp_workers if source == "sftp" else args.workers


def rclone_env(ctx: dict[str, Any], work: Path) -> dict[str, str]:
    env = ctx["env"]
    conf = work / "rclone.conf"
    conf.write_text("")
    out = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RCLONE_") and not k.startswith("AWS_")
    }
    out.update(
        {
            "RCLONE_CONFIG": str(conf),
            "RCLONE_CONFIG_BENCHS3_TYPE": "s3",
            "RCLONE_CONFIG_BENCHS3_PROVIDER": "SeaweedFS",
            "RCLONE_CONFIG_BENCHS3_ENDPOINT": env["MIGRATE_TEST_S3_ENDPOINT"],
            "RCLONE_CONFIG_BENCHS3_ACCESS_KEY_ID": env["MIGRATE_TEST_S3_ACCESS_KEY"],
            "RCLONE_CONFIG_BENCHS3_SECRET_ACCESS_KEY": env["MIGRATE_TEST_S3_SECRET_KEY"],
            "RCLONE_CONFIG_BENCHSFTP_TYPE": "sftp",
            "RCLONE_CONFIG_BENCHSFTP_HOST": ctx["sftp_host"],
            "RCLONE_CONFIG_BENCHSFTP_PORT": str(ctx["sftp_port"]),
            "RCLONE_CONFIG_BENCHSFTP_USER": ctx["sftp_user"],
            "RCLONE_CONFIG_BENCHSFTP_KEY_FILE": env["MIGRATE_TEST_SFTP_KEY"],
            "RCLONE_CONFIG_BENCHSFTP_KNOWN_HOSTS_FILE": env["MIGRATE_TEST_SFTP_KNOWN_HOSTS"],
        }
    )
    return out


def rclone_source(source: str, ctx: dict[str, Any]) -> str:
    if source == "local":
        return str(ctx["local_dir"])
    return f"benchsftp:{ctx['sftp_dir']}"


def run_rclone(
    work: Path, source: str, bucket: str, ctx: dict[str, Any], args: argparse.Namespace
) -> tuple[float, Any, dict[str, Any], dict[str, float | None]]:
    cmd = [
        ctx["rclone"],
        "copy",
        rclone_source(source, ctx),
        f"benchs3:{bucket}",
        "--transfers",
        str(workers_for(source, args)),
        "--checkers",
        str(workers_for(source, args)),
        "--s3-chunk-size",
        f"{args.part_mib}M",
        "--s3-upload-cutoff",
        f"{args.threshold_mib}M",
        "--stats",
        "0",
        "--stats-log-level",
        "NOTICE",
        "--log-level",
        "NOTICE",
        *args.rclone_extra,
    ]
    seconds, usage, _, stderr, servers = measure(cmd, work, rclone_env(ctx, work), ctx["pids"])
    detail_top = servers.pop("top")
    errors = [ln for ln in stderr.splitlines() if "ERROR" in ln]
    if errors:
        die(f"rclone logged errors: {errors[:5]}")
    return (
        seconds,
        usage,
        {"log": stderr.strip().splitlines()[-8:], "busiest_processes": detail_top},
        servers,
    )


# -- machine and versions -------------------------------------------------------------------------
def git(*cmd: str) -> str:
    try:
        return subprocess.run(
            ["git", *cmd], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except Exception:
        return ""


def snapshot_code(code: str, work: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """The environment that makes ``migrate`` run a frozen copy of its code (the working
    tree as it is now, another checkout's tree given as a path, or a git revision), and a
    description of that code."""
    dest = work / "code"
    dest.mkdir()
    pkgs = ("migrate", "connectors", "validators")
    tree = REPO if code == "tree" else Path(code) if Path(code).is_dir() else None
    if tree is not None:
        for pkg in pkgs:
            if (tree / pkg).is_dir():
                shutil.copytree(
                    tree / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__")
                )
        digest = hashlib.sha256()
        for f in sorted(p for p in dest.rglob("*") if p.is_file()):
            digest.update(str(f.relative_to(dest)).encode() + b"\0" + f.read_bytes())
        # (another checkout's changes are not known here: describe them with --note)
        changed = git("status", "--porcelain", "--", *pkgs).splitlines() if tree == REPO else None
        info = {
            "migrate_commit": git("rev-parse", "--short", "HEAD"),
            "migrate_code": "snapshot of the working tree at start"
            if tree == REPO
            else f"snapshot of {tree} at start (not this checkout)",
            "migrate_tree_changes": changed,
            "migrate_code_sha256": digest.hexdigest()[:16],
        }
    else:
        export = subprocess.run(
            f"git archive {shlex.quote(code)} {' '.join(pkgs)}"
            f" | tar -x -C {shlex.quote(str(dest))}",
            shell=True,
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if export.returncode:
            die(f"git archive {code}: {export.stderr.strip()}")
        info = {
            "migrate_commit": git("rev-parse", "--short", code),
            "migrate_code": f"git archive {code}",
        }
    env = {**os.environ, "PYTHONPATH": str(dest)}
    env.pop("MIGRATE_FAILPOINT", None)
    return env, info


def machine_info(ctx: dict[str, Any]) -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break

    def first_line(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except Exception:
            return ""

    weed = ctx["weed_bin"]
    py = sys.executable
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "rclone": first_line([ctx["rclone"], "--version"]),
        "weed": first_line([weed, "version"]) if weed else "",
        "openssh": first_line(["/usr/sbin/sshd", "-V"]),
        "paramiko": first_line([py, "-c", "import paramiko; print(paramiko.__version__)"]),
        "urllib3": first_line([py, "-c", "import urllib3; print(urllib3.__version__)"]),
        "load_average_at_start": os.getloadavg(),
    }


# -- main ----------------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sources", default="local,sftp", help="comma-separated: local, sftp")
    p.add_argument("--tools", default="migrate,rclone", help="comma-separated: migrate, rclone")
    p.add_argument("--workers", type=int, default=16, help="migrate workers = rclone --transfers")
    p.add_argument(
        "--sftp-workers",
        type=int,
        help="workers (both tools) for the sftp source; default --workers",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=Path(tempfile.gettempdir()) / "migrate-bench-files",
        help="where the generated tree is cached",
    )
    p.add_argument("--seed", type=int, default=441)
    p.add_argument("--files", type=int, default=5000, help="small files")
    p.add_argument("--folders", type=int, default=50)
    p.add_argument("--min-kib", type=int, default=4)
    p.add_argument("--max-kib", type=int, default=64)
    p.add_argument("--big", type=int, default=4, help="big files")
    p.add_argument("--big-mib", type=int, default=64)
    p.add_argument("--part-mib", type=int, default=8, help="multipart part size (both tools)")
    p.add_argument("--threshold-mib", type=int, default=16, help="multipart threshold (both)")
    p.add_argument(
        "--migrate-validate",
        default="",
        help='validate list of migrate\'s plan, comma-separated (default: none; "count,checksum"'
        " adds a full file validation after the copy)",
    )
    p.add_argument(
        "--rclone-extra",
        default="",
        help="more rclone flags (shell words), e.g. --s3-upload-concurrency 1",
    )
    p.add_argument(
        "--code",
        default="tree",
        help="'tree' (a snapshot of the working tree taken at start), the path of another"
        " checkout (a prototype; its migrate/ connectors/ validators/ are snapshotted), or a"
        " git revision",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="run migrate under py-spy record (CPU samples, bench/results/profile_files_*.txt)",
    )
    p.add_argument("--keep", action="store_true", help="keep the last buckets")
    p.add_argument("--note", default="", help="free text stored in the results (what was run)")
    p.add_argument("--out", type=Path, help="default: bench/results/files_441m.json")
    args = p.parse_args()
    if args.sftp_workers is None:
        args.sftp_workers = args.workers
    args.migrate_validate = [v.strip() for v in args.migrate_validate.split(",") if v.strip()]
    args.rclone_extra = shlex.split(args.rclone_extra)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    for s in sources:
        if s not in SOURCES:
            p.error(f"unknown source {s!r}")
    for t in tools:
        if t not in TOOLS:
            p.error(f"unknown tool {t!r}")

    env = server_env()
    rclone = shutil.which("rclone")
    if "rclone" in tools and not rclone:
        die("rclone is not installed (apt-get install rclone)")
    args.data.mkdir(parents=True, exist_ok=True)
    manifest = generate(args)
    n_files = len(manifest["files"])
    total = manifest["total_bytes"]
    from urllib.parse import urlsplit

    sftp_url = urlsplit(env["MIGRATE_TEST_SFTP_URL"])
    test_dir = Path(env["MIGRATE_TEST_SFTP_DIR"]).parent.parent
    weed_bin = (
        str(REPO / ".venv/bin/weed") if (REPO / ".venv/bin/weed").exists() else shutil.which("weed")
    )
    ctx: dict[str, Any] = {
        "env": env,
        "manifest": manifest,
        "local_dir": (args.data / "tree").resolve(),
        "sftp_host": sftp_url.hostname,
        "sftp_port": sftp_url.port or 22,
        "sftp_user": sftp_url.username,
        "rclone": rclone,
        "weed_bin": weed_bin,
        "pids": {
            "weed": pid_from(test_dir / "s3/weed.pid"),
            "sshd": pid_from(test_dir / "sftp/sshd.pid"),
        },
    }
    if "sftp" in sources:
        ctx["sftp_dir"] = str(sftp_tree(args, env, manifest))
    s3 = s3_client(env)
    work = Path(tempfile.mkdtemp(prefix="migrate-bench-files-"))
    ctx["migrate_env"], code_info = snapshot_code(args.code, work)
    info = machine_info(ctx)
    info.update(code_info)
    if rclone and "sftp" in sources:  # which hashes rclone can get from this SFTP server
        feat = subprocess.run(
            [rclone, "backend", "features", "benchsftp:"],
            capture_output=True,
            text=True,
            env=rclone_env(ctx, work),
        )
        try:
            info["rclone_sftp_hashes"] = json.loads(feat.stdout).get("Hashes")
        except ValueError:
            info["rclone_sftp_hashes"] = feat.stderr.strip()[-300:]
    print(
        f"{n_files:,} files, {total / 1e6:.1f} MB; {info['nproc']} CPUs; rclone"
        f" {info['rclone']}; migrate {info['migrate_commit']}"
        f"{' + working tree changes' if info.get('migrate_tree_changes') else ''}",
        flush=True,
    )

    samples: list[Sample] = []
    runners = {"migrate": run_migrate, "rclone": run_rclone}
    buckets: list[str] = []
    try:
        for rnd in range(1, args.rounds + 1):
            order = tools if rnd % 2 == 1 else list(reversed(tools))
            for source in sources:
                pair: dict[str, dict[str, tuple[int, str]]] = {}
                for pos, tool in enumerate(order, 1):
                    bucket = f"bench-files-{source}-{tool}-r{rnd}"
                    fresh_bucket(s3, bucket)
                    buckets.append(bucket)
                    tdir = work / f"r{rnd}-{source}-{tool}"
                    tdir.mkdir()
                    time.sleep(2)  # let the machine settle after the previous run's cleanup
                    load = os.getloadavg()
                    print(
                        f"[{rnd}/{args.rounds}] {source} -> s3, {tool} (load {load[0]:.2f}) ...",
                        end=" ",
                        flush=True,
                    )
                    seconds, usage, detail, srv = runners[tool](tdir, source, bucket, ctx, args)
                    sample = Sample(
                        round=rnd,
                        source=source,
                        tool=tool,
                        position=pos,
                        workers=workers_for(source, args),
                        seconds=round(seconds, 3),
                        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
                        cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
                        weed_cpu_s=None if srv["weed"] is None else round(srv["weed"], 2),
                        sshd_cpu_s=None
                        if srv["sshd"] is None or source != "sftp"
                        else round(srv["sshd"], 2),
                        other_cpu_s=None if srv["other"] is None else round(srv["other"], 2),
                        load_before=load,
                        detail=detail,
                    )
                    samples.append(sample)
                    print(
                        f"{seconds:.2f} s, {total / 1e6 / seconds:.1f} MB/s, peak RSS"
                        f" {sample.peak_rss_mb:.0f} MB, CPU {sample.cpu_s:.1f} s (weed"
                        f" {sample.weed_cpu_s}, sshd {sample.sshd_cpu_s}, other"
                        f" {sample.other_cpu_s})",
                        flush=True,
                    )
                    if detail.get("busiest_processes"):
                        print(f"    busiest processes: {detail['busiest_processes']}", flush=True)
                    pair[tool] = check_bucket(s3, bucket, manifest)
                if len(pair) == 2 and pair["migrate"] != pair["rclone"]:
                    die(f"round {rnd}, {source}: the two buckets differ")
                print(
                    f"  verified: {len(pair)} bucket(s), each exactly {n_files:,} keys with the"
                    " expected sizes and ETags"
                    + (", equal to each other" if len(pair) == 2 else ""),
                    flush=True,
                )
                last = rnd == args.rounds and source == sources[-1]
                if not (args.keep and last):
                    for tool in order:
                        drop_bucket(s3, f"bench-files-{source}-{tool}-r{rnd}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # -- results ----------------------------------------------------------------------------
    def med(source: str, tool: str, attr: str) -> float | None:
        vals = [getattr(s, attr) for s in samples if s.source == source and s.tool == tool]
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    summary = []
    for source in sources:
        base = med(source, "rclone", "seconds")
        for tool in tools:
            secs = med(source, tool, "seconds")
            assert secs is not None
            all_s = [s.seconds for s in samples if s.source == source and s.tool == tool]
            summary.append(
                {
                    "source": source,
                    "tool": tool,
                    "workers": workers_for(source, args),
                    "seconds": round(secs, 2),
                    "min_seconds": round(min(all_s), 2),
                    "max_seconds": round(max(all_s), 2),
                    "mb_per_s": round(total / 1e6 / secs, 1),
                    "files_per_s": round(n_files / secs),
                    "ratio_to_rclone": round(secs / base, 2) if base else None,
                    "peak_rss_mb": round(med(source, tool, "peak_rss_mb") or 0, 1),
                    "max_peak_rss_mb": max(
                        s.peak_rss_mb for s in samples if s.source == source and s.tool == tool
                    ),
                    "cpu_s": round(med(source, tool, "cpu_s") or 0, 1),
                    "weed_cpu_s": _r(med(source, tool, "weed_cpu_s")),
                    "sshd_cpu_s": _r(med(source, tool, "sshd_cpu_s")),
                    "other_cpu_s": _r(med(source, tool, "other_cpu_s")),
                }
            )
    headers = ["source", "tool", "workers", "seconds", "min–max", "MB/s", "files/s", "x rclone",
               "peak RSS MB", "CPU s", "weed CPU s", "sshd CPU s", "other CPU s"]  # fmt: skip

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.2f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    table = [
        [
            r["source"],
            r["tool"],
            cell(r["workers"]),
            cell(r["seconds"]),
            f"{r['min_seconds']:.2f}–{r['max_seconds']:.2f}",
            f"{r['mb_per_s']:.1f}",
            cell(r["files_per_s"]),
            cell(r["ratio_to_rclone"]),
            f"{r['peak_rss_mb']:.1f}",
            f"{r['cpu_s']:.1f}",
            cell(r["weed_cpu_s"]),
            cell(r["sshd_cpu_s"]),
            cell(r["other_cpu_s"]),
        ]
        for r in summary
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    print()
    print(
        f"{n_files:,} files, {total / 1e6:.1f} MB -> SeaweedFS S3,"
        f" {info['nproc']} CPUs, median of {args.rounds} round(s)"
    )
    for line in [headers, *table]:
        print(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )

    info["load_average_at_end"] = os.getloadavg()
    out = {
        "note": args.note,
        "data": {
            "files": n_files,
            "bytes": total,
            "params": manifest["params"],
            "generate_seconds": manifest.get("generate_seconds"),
            "path": str(args.data),
        },
        "settings": {
            "rounds": args.rounds,
            "workers": args.workers,
            "sftp_workers": args.sftp_workers,
            "sources": sources,
            "tools": tools,
            "migrate_validate": args.migrate_validate,
            "part_size_mib": args.part_mib,
            "multipart_threshold_mib": args.threshold_mib,
            "rclone_flags": [
                "--transfers",
                "<workers>",
                "--checkers",
                "<workers>",
                "--s3-chunk-size",
                f"{args.part_mib}M",
                "--s3-upload-cutoff",
                f"{args.threshold_mib}M",
                *args.rclone_extra,
            ],
            "profiled": args.profile,
        },
        "machine": info,
        "results": summary,
        "samples": [asdict(s) for s in samples],
    }
    path = args.out or BENCH_DIR / "results" / "files_441m.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"wrote {path}")


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


if __name__ == "__main__":
    main()
