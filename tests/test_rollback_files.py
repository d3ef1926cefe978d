"""Rollback of file steps on the real servers: a local folder, SFTP, NFS and S3 targets.

Each test runs a plan through the CLI (source: a local folder), then undoes its runs
from the undo records the runs kept (migrate/filecopy.py), two ways at once: the tool's
own operations (``fileundo.apply_ops`` on the target's endpoint, newest record first) on
the target, and the script a DBA would run (the shell script for file systems, run with
``sh`` — over ``sftp -b`` for SFTP; the JSON list for S3, applied by the small
interpreter below through the S3 endpoint's own methods) on a copy of the target taken
before the rollback. Both must give back exactly what the target held before the undone
runs: every file by SHA-256, every folder, and the ``.migrate-backup`` folder (gone when
every backup was put back). What is compared is read through each server's own side
(the local folder an sftp or NFS server exports, boto3 for S3).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import pytest
from edge_data import run_cli, run_json

from connectors.files.base import BACKUP_DIR
from connectors.files.local import LocalEndpoint
from connectors.files.nfs import NFSEndpoint
from connectors.files.s3 import S3Endpoint
from connectors.files.sftp import SFTPEndpoint
from migrate import fileundo
from migrate.cli import main
from migrate.copier import Progress
from migrate.errors import ConnectorError, MigrateError
from migrate.filecopy import FileCopier, FileStepResult
from migrate.fileundo import Op
from migrate.plan import load_plan
from migrate.runner import Endpoints
from migrate.state import State

PAST = 1_600_000_000_000_000_000
SECRET_VAR = "MT_ROLLBACK_S3_SECRET"
#: a snapshot: files (relative path → SHA-256, backups included) and folders
Snapshot = tuple[dict[str, str], frozenset[str]]


# -- targets ------------------------------------------------------------------------------
class Target:
    """One place on one server: how a plan names it, how a test plants files there and
    reads it back, copies it, and runs an undo script on it."""

    kind = ""
    connection = ""  # the plan's inline table

    def endpoint(self) -> Any:
        raise NotImplementedError

    def plant(self, path: str, data: bytes) -> None:
        raise NotImplementedError

    def plant_dir(self, path: str) -> None:
        raise NotImplementedError

    def snapshot(self) -> Snapshot:
        raise NotImplementedError

    def copy(self) -> Target:
        """A new place holding what this one holds now."""
        raise NotImplementedError

    def run_script(self, ops: list[Op]) -> str:
        """Write the script of ``ops`` for this place, run it; returns its text."""
        raise NotImplementedError


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sh(script: str, folder: Path, env: dict[str, str] | None = None) -> None:
    path = folder / f"undo-{uuid.uuid4().hex[:8]}.sh"
    path.write_text(script, encoding="utf-8")
    proc = subprocess.run(
        ["sh", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**{k: v for k, v in os.environ.items() if k != "ROOT"}, **(env or {})},
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\n{script}"


class DirTarget(Target):
    """A folder this machine sees: a ``file://`` target, or the folder an sftp or NFS
    server serves."""

    def __init__(self, root: Path, scripts: Path, owner: Path | None = None) -> None:
        self.root, self.scripts, self.owner = root, scripts, owner

    def _own(self, path: Path) -> None:
        if self.owner is not None:  # the sftp user must be able to write and rename there
            st = self.owner.stat()
            for p in [path, *path.relative_to(self.root).parents]:
                os.chown(self.root / p, st.st_uid, st.st_gid)

    def plant(self, path: str, data: bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self._own(target)

    def plant_dir(self, path: str) -> None:
        (self.root / path).mkdir(parents=True, exist_ok=True)
        self._own(self.root / path)

    def snapshot(self) -> Snapshot:
        files, dirs = {}, set()
        for dirpath, dirnames, filenames in os.walk(self.root):
            here = Path(dirpath)
            for d in dirnames:
                dirs.add((here / d).relative_to(self.root).as_posix())
            for f in filenames:
                files[(here / f).relative_to(self.root).as_posix()] = _sha((here / f).read_bytes())
        return files, frozenset(dirs)

    def _twin_root(self) -> Path:
        twin = self.root.with_name(f"{self.root.name}-twin-{uuid.uuid4().hex[:6]}")
        shutil.copytree(self.root, twin, symlinks=True)
        if self.owner is not None:
            st = self.owner.stat()
            for p in [twin, *twin.rglob("*")]:
                os.chown(p, st.st_uid, st.st_gid)
        return twin


class LocalTarget(DirTarget):
    kind = "file"

    def __init__(self, root: Path, scripts: Path) -> None:
        super().__init__(root, scripts)
        self.connection = f"{{ url = {_toml(f'file://{root}')} }}"

    def endpoint(self) -> LocalEndpoint:
        return LocalEndpoint("dst", f"file://{self.root}", {}, base_dir=self.root)

    def copy(self) -> LocalTarget:
        return LocalTarget(self._twin_root(), self.scripts)

    def run_script(self, ops: list[Op]) -> str:
        text = fileundo.shell_script(ops, self.endpoint())
        _sh(text, self.scripts)  # ROOT unset: the endpoint's root
        return text


class SFTPTarget(DirTarget):
    kind = "sftp"

    def __init__(self, root: Path, scripts: Path, server: dict[str, str], base: Path) -> None:
        super().__init__(root, scripts, owner=base)
        self.server = server
        netloc = urlsplit(server["url"]).netloc  # user@host:port
        self.url = f"sftp://{netloc}{root}"
        self.options = {"key_file": server["key"], "known_hosts": server["known_hosts"]}
        self.connection = (
            f"{{ url = {_toml(self.url)}, key_file = {_toml(server['key'])},"
            f" known_hosts = {_toml(server['known_hosts'])} }}"
        )

    def endpoint(self) -> SFTPEndpoint:
        return SFTPEndpoint("dst", self.url, dict(self.options), base_dir=self.scripts)

    def copy(self) -> SFTPTarget:
        return SFTPTarget(self._twin_root(), self.scripts, self.server, self.owner)  # type: ignore[arg-type]

    def run_script(self, ops: list[Op]) -> str:
        text = fileundo.shell_script(ops, self.endpoint())
        opts = (
            f"-i {self.server['key']} -o UserKnownHostsFile={self.server['known_hosts']}"
            " -o BatchMode=yes"
        )
        _sh(text, self.scripts, {"SFTP_OPTS": opts})
        return text


class NFSTarget(DirTarget):
    kind = "nfs3"

    def __init__(self, root: Path, scripts: Path, server: dict[str, str]) -> None:
        super().__init__(root, scripts)
        self.server = server
        parts = urlsplit(server["url"])
        self.export = parts.path
        self.url = f"nfs://{parts.netloc}{root}?{parts.query}"
        self.connection = f"{{ url = {_toml(self.url)}, export = {_toml(self.export)} }}"

    def endpoint(self) -> NFSEndpoint:
        return NFSEndpoint("dst", self.url, {"export": self.export}, base_dir=self.scripts)

    def copy(self) -> NFSTarget:
        return NFSTarget(self._twin_root(), self.scripts, self.server)

    def run_script(self, ops: list[Op]) -> str:
        text = fileundo.shell_script(ops, self.endpoint())
        # the folder the server exports stands for the place it is mounted on
        _sh(text, self.scripts, {"ROOT": self.server["dir"]})
        return text


class S3Target(Target):
    kind = "s3"

    def __init__(self, bucket: str, prefix: str, server: dict[str, str], admin: Any) -> None:
        self.bucket, self.prefix, self.server, self.admin = bucket, prefix, server, admin
        self.connection = (
            f'{{ url = "s3://{bucket}/{prefix}", endpoint = {_toml(server["endpoint"])},'
            f' provider = "seaweedfs", access_key = {_toml(server["access_key"])},'
            f' secret_key = "${{{SECRET_VAR}}}" }}'
        )

    def endpoint(self) -> S3Endpoint:
        return _s3(self.server, f"s3://{self.bucket}/{self.prefix}")

    def _keys(self) -> Iterator[str]:
        for page in self.admin.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + "/"
        ):
            for item in page.get("Contents", []):
                yield item["Key"]

    def plant(self, path: str, data: bytes) -> None:
        self.admin.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{path}", Body=data)

    def plant_dir(self, path: str) -> None:
        self.admin.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{path}/", Body=b"")

    def snapshot(self) -> Snapshot:
        files, dirs = {}, set()
        for key in self._keys():
            rel = key[len(self.prefix) + 1 :]
            if rel.endswith("/"):
                dirs.add(rel.rstrip("/"))
            else:
                body = self.admin.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                files[rel] = _sha(body)
        return files, frozenset(dirs)

    def copy(self) -> S3Target:
        twin = S3Target(
            self.bucket, f"{self.prefix}-twin-{uuid.uuid4().hex[:6]}", self.server, self.admin
        )
        for key in self._keys():  # (through the client: the copy is not under test)
            body = self.admin.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            self.admin.put_object(
                Bucket=self.bucket, Key=twin.prefix + key[len(self.prefix) :], Body=body
            )
        return twin

    def run_script(self, ops: list[Op]) -> str:
        text = fileundo.object_ops_json(ops, self.endpoint())
        apply_object_ops(text, self.server)
        return text


def _s3(server: dict[str, str], url: str, endpoint: str | None = None) -> S3Endpoint:
    options = {
        "endpoint": endpoint or server["endpoint"],
        "provider": "seaweedfs",
        "access_key": server["access_key"],
        "secret_key": server["secret_key"],
    }
    return S3Endpoint("dba", url, options, base_dir=Path("/nonexistent"))


def apply_object_ops(text: str, server: dict[str, str]) -> None:
    """What a DBA's client does with the JSON list: each operation on the bucket and
    endpoint it names, with full keys (here through an S3 endpoint on the bucket's root,
    the credentials given separately, as they are not in the list)."""
    stores: dict[tuple[str, str], S3Endpoint] = {}
    for op in json.loads(text):
        where = (op["endpoint"], op["bucket"])
        if where not in stores:
            stores[where] = _s3(server, f"s3://{op['bucket']}", op["endpoint"])
        store = stores[where]
        if op["op"] == "copy":
            info = store.stat(op["from"])
            assert info is not None, f"no object {op['from']}"
            store.put(
                op["to"],
                store.open_read(op["from"]),
                info.size,
                part_size=8 << 20,
                multipart_threshold=64 << 20,
            )
        elif op["op"] == "delete":
            store.delete(op["key"].rstrip("/"))  # the object and its folder marker
        elif op["op"] == "put":
            assert op["key"].endswith("/") and op["body"] == ""
            store.make_dir(op["key"].rstrip("/"))
        else:
            raise AssertionError(f"unknown operation {op}")
    for store in stores.values():
        store.close()


@pytest.fixture(scope="module")
def s3_admin(s3_server: dict[str, str]) -> Any:
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=s3_server["endpoint"],
        aws_access_key_id=s3_server["access_key"],
        aws_secret_access_key=s3_server["secret_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def make_target(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str], Target]]:
    """``make_target(kind)`` for kind in file, sftp, nfs3, s3: a fresh, empty place on
    that server (the servers' fixtures are asked for only when a test needs them)."""
    cleanup: list[Callable[[], None]] = []
    scripts = tmp_path / "scripts"
    scripts.mkdir()

    def make(kind: str) -> Target:
        tag = uuid.uuid4().hex[:10]
        if kind == "file":
            root = tmp_path / f"local-{tag}"
            root.mkdir()
            return LocalTarget(root, scripts)
        if kind == "sftp":
            server = request.getfixturevalue("sftp_server")
            base = Path(server["dir"])
            root = base / f"rb-{tag}"
            root.mkdir()
            st = base.stat()
            os.chown(root, st.st_uid, st.st_gid)
            cleanup.append(lambda: _remove(root))
            return SFTPTarget(root, scripts, server, base)
        if kind == "nfs3":
            server = request.getfixturevalue("nfs_server")
            root = Path(server["dir"]) / f"rb-{tag}"
            root.mkdir()
            cleanup.append(lambda: _remove(root))
            return NFSTarget(root, scripts, server)
        assert kind == "s3"
        server = request.getfixturevalue("s3_server")
        admin = request.getfixturevalue("s3_admin")
        monkeypatch.setenv(SECRET_VAR, server["secret_key"])
        bucket = f"mt-{secrets.token_hex(6)}"
        admin.create_bucket(Bucket=bucket)

        def drop() -> None:
            for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    admin.delete_object(Bucket=bucket, Key=item["Key"])
            admin.delete_bucket(Bucket=bucket)

        cleanup.append(drop)
        return S3Target(bucket, "share/data", server, admin)

    yield make
    for fn in reversed(cleanup):
        fn()


def _remove(root: Path) -> None:
    """Remove a place on a server's folder and the copies taken of it."""
    for path in [root, *root.parent.glob(f"{root.name}-twin-*")]:
        shutil.rmtree(path, ignore_errors=True)


# -- plans, runs and records ----------------------------------------------------------------
def write(root: Path, rel: str, data: bytes, mtime_ns: int) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def file_plan(tmp_path: Path, target: Target, deletes: str = "propagate") -> Path:
    plan = tmp_path / "rollback.toml"
    plan.write_text(
        f"""version = 1
name = "rollback"
state = "rollback-state.db"
[connections]
src = {{ url = {_toml(f"file://{tmp_path / 'src'}")} }}
dst = {target.connection}
[[steps]]
name = "share"
source = "src"
target = "dst"
mode = "full+incremental"
deletes = "{deletes}"
empty_dirs = "keep"
workers = 4
validate = []
""",
        encoding="utf-8",
    )
    return plan


def records(plan: Path, run_id: int | None = None) -> list[dict[str, Any]]:
    """The undo records of one run (every run: None), newest first, as a rollback reads
    them (``detail`` parsed)."""
    db = sqlite3.connect(plan.with_name("rollback-state.db"))
    db.row_factory = sqlite3.Row
    try:
        sql = "SELECT * FROM undo" + (" WHERE run_id=?" if run_id is not None else "")
        rows = db.execute(sql + " ORDER BY id DESC", () if run_id is None else (run_id,))
        out = []
        for r in rows.fetchall():
            rec = dict(r)
            rec["detail"] = json.loads(rec["detail"]) if rec["detail"] else {}
            out.append(rec)
        return out
    finally:
        db.close()


def tool_rollback(target: Target, recs: list[dict[str, Any]]) -> list[str]:
    """Undo ``recs`` (newest first) through the target's endpoint, as the tool does."""
    endpoint = target.endpoint()
    notes = []
    try:
        for rec in recs:
            notes += fileundo.apply_ops(endpoint, fileundo.undo_ops(rec))
    finally:
        endpoint.close()
    return notes


def script_ops(recs: list[dict[str, Any]]) -> list[Op]:
    return [op for rec in recs for op in fileundo.undo_ops(rec)]


def without_backups(snap: Snapshot) -> dict[str, str]:
    return {p: h for p, h in snap[0].items() if not p.startswith(BACKUP_DIR + "/")}


def roll_back_both(
    target: Target, twin: Target, recs: list[dict[str, Any]], expected: Snapshot
) -> str:
    """Undo ``recs`` with the tool on ``target`` and with the script on ``twin`` (which
    holds the same); both must then hold ``expected``. Returns the script."""
    assert twin.snapshot() == target.snapshot()
    assert tool_rollback(target, recs) == []
    assert target.snapshot() == expected
    text = twin.run_script(script_ops(recs))
    assert twin.snapshot() == expected
    return text


KINDS = ["file", "sftp", "nfs3", "s3"]


# -- 1. a first sync into an empty target ---------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_rollback_of_a_first_sync_leaves_the_target_empty(
    tmp_path: Path, make_target: Callable[[str], Target], capsys: Any, kind: str
) -> None:
    src = tmp_path / "src"
    tree = {
        "a.txt": b"alpha",
        "d/e/f/deep.bin": os.urandom(5000),
        "名 字 %+#&=?'.txt": "中文".encode(),
        'q"uote*[1].txt': b"shell and sftp specials",
        "zero": b"",
    }
    if kind != "s3":  # SeaweedFS turns a backslash in a key into a slash
        tree["back\\slash.txt"] = b"a backslash"
    if kind in ("file", "nfs3"):  # (an sftp batch leaves such a name to the tool)
        tree["-n/new\nline $(x) `y`.txt"] = b"a line break, a leading dash, shell specials"
    for i, (rel, data) in enumerate(tree.items()):
        write(src, rel, data, PAST + i)
    (src / "kept" / "empty").mkdir(parents=True)
    target = make_target(kind)
    plan = file_plan(tmp_path, target)
    code, result = run_json(plan, capsys)
    assert code == 0, result
    got = target.snapshot()
    assert without_backups(got) == {p: _sha(d) for p, d in tree.items()}
    assert "kept/empty" in got[1]
    recs = records(plan, result["run_id"])
    assert sorted((r["action"], r["object"]) for r in recs) == sorted(
        [("delete_file", p) for p in tree] + [("delete_dir", "kept/empty")]
    )
    assert all(r["detail"] == {"manifest": None} for r in recs)  # nothing was there before

    twin = target.copy()
    text = roll_back_both(target, twin, recs, ({}, frozenset()))  # nothing left, no backups
    if kind != "s3":
        assert text.startswith("#!/bin/sh\n") and "\nset -eu\n" in text
        for rec in recs:  # a comment saying what each command undoes
            assert f"# #{rec['id']} run {rec['run_id']}, step share: " in text


# -- 2. catch-up with overwrites and deletes, into a target that held files ------------------
@pytest.mark.parametrize("kind", KINDS)
def test_rollback_of_overwrites_and_deletes_gives_back_each_earlier_state(
    tmp_path: Path, make_target: Callable[[str], Target], capsys: Any, kind: str
) -> None:
    src = tmp_path / "src"
    target = make_target(kind)
    # the target before any run: files of its own, one in the way of the copy
    target.plant("a.txt", b"the target's own a.txt")
    target.plant("d/x.txt", b"the target's own, beside a copied file")
    target.plant("keep/mine.txt", b"never touched")
    target.plant_dir("old/empty")
    before = target.snapshot()

    write(src, "a.txt", b"a v1", PAST)
    write(src, "d/y.txt", b"y v1", PAST)
    write(src, "n/deep/z.txt", b"z v1", PAST)
    write(src, "b.txt", b"b v1", PAST)
    (src / "e" / "empty").mkdir(parents=True)
    plan = file_plan(tmp_path, target)
    code, result = run_json(plan, capsys)
    assert code == 0, result
    first = result["run_id"]
    files = result["steps"][0]["files"]
    assert (files["copied"], files["backed_up"]) == (4, 1)
    after_first = target.snapshot()

    # the source changes: two files rewritten (one of them first the target's own), one
    # added, one file and one kept empty folder removed
    write(src, "a.txt", b"a v2, longer", PAST + 10**9)
    write(src, "d/y.txt", b"y v2, longer", PAST + 10**9)
    write(src, "new/f.txt", b"added", PAST)
    (src / "n" / "deep" / "z.txt").unlink()
    (src / "e" / "empty").rmdir()
    code, result = run_json(plan, capsys)
    assert code == 0, result
    second = result["run_id"]
    files = result["steps"][0]["files"]
    assert (files["copied"], files["backed_up"], files["deleted"]) == (3, 2, 2)
    after_second = target.snapshot()
    assert without_backups(after_second) == {
        "a.txt": _sha(b"a v2, longer"),
        "b.txt": _sha(b"b v1"),
        "d/x.txt": _sha(b"the target's own, beside a copied file"),
        "d/y.txt": _sha(b"y v2, longer"),
        "keep/mine.txt": _sha(b"never touched"),
        "new/f.txt": _sha(b"added"),
    }
    recs = records(plan, second)
    assert sorted((r["action"], r["object"]) for r in recs) == [
        ("delete_file", "new/f.txt"),
        ("make_dir", "e/empty"),
        ("restore_file", "a.txt"),
        ("restore_file", "d/y.txt"),
        ("restore_file", "n/deep/z.txt"),
    ]
    for rec in recs:  # the manifest row each path had before, for the state's rollback
        row = rec["detail"]["manifest"]
        assert (row is None) == (rec["object"] == "new/f.txt")
        if row is not None:
            assert row["path"] == rec["object"] and row["run_id"] == first

    twin = target.copy()
    # the second run only: exactly what the first left, its backups included
    text = roll_back_both(target, twin, recs, after_first)
    # then the first: what the target held before, and no backup folder left
    roll_back_both(target, twin, records(plan, first), before)
    assert not any(p.startswith(BACKUP_DIR) for p in before[0])

    if kind == "s3":  # the JSON's shape: full keys on the plan's bucket and endpoint
        entries = json.loads(text)
        assert {(e["bucket"], e["endpoint"]) for e in entries} == {
            (target.bucket, target.server["endpoint"])  # type: ignore[attr-defined]
        }
        assert "secret" not in text and target.server["secret_key"] not in text  # type: ignore[attr-defined]
        prefix = twin.prefix + "/"  # type: ignore[attr-defined]
        shape = [
            (e["op"], *(e[k][len(prefix) :] for k in ("from", "to", "key") if k in e))
            for e in entries
        ]
        backup = {r["object"]: r["detail"]["backup"] for r in recs if "backup" in r["detail"]}
        expected_shape = []
        for rec in recs:  # newest first; a move is a copy, then a delete of its source
            obj = rec["object"]
            expected_shape += {
                "delete_file": [("delete", obj)],
                "make_dir": [("put", obj + "/")],
                "restore_file": [
                    ("copy", backup.get(obj, ""), obj),
                    ("delete", backup.get(obj, "")),
                ],
            }[rec["action"]]
        assert shape == expected_shape
    elif kind == "sftp":
        server = target.server  # type: ignore[attr-defined]
        assert server["password"] not in text and server["key"] not in text
        assert "sftp $SFTP_OPTS -b - -P " in text


def test_undo_everything_at_once_then_cleanup_after_undoing_the_last_run(
    tmp_path: Path, make_target: Callable[[str], Target], capsys: Any
) -> None:
    """Every run's records in one list (newest first) give back the target before the
    first run; after undoing only the last run, cleanup (the first run accepted)
    deletes the backups and their folder, and nothing else."""
    src = tmp_path / "src"
    target = make_target("file")
    target.plant("a.txt", b"theirs")
    before = target.snapshot()
    write(src, "a.txt", b"ours v1", PAST)
    write(src, "b.txt", b"b", PAST)
    plan = file_plan(tmp_path, target)
    code, result = run_json(plan, capsys)
    assert code == 0, result
    first = result["run_id"]
    after_first = target.snapshot()
    write(src, "a.txt", b"ours v2!", PAST + 10**9)
    (src / "b.txt").unlink()
    code, result = run_json(plan, capsys)
    assert code == 0, result
    copy = target.copy()
    roll_back_both(copy, copy.copy(), records(plan), before)

    assert tool_rollback(target, records(plan, result["run_id"])) == []
    assert target.snapshot() == after_first
    cleanup = [op for rec in records(plan, first) for op in fileundo.cleanup_ops(rec)]
    assert [op.kind for op in cleanup] == ["delete"]  # the backup of the target's own a.txt
    twin = target.copy()
    assert fileundo.apply_ops(target.endpoint(), cleanup) == []
    twin.run_script(cleanup)
    files, dirs = target.snapshot()
    assert files == without_backups(after_first) == {"a.txt": _sha(b"ours v1"), "b.txt": _sha(b"b")}
    assert dirs == frozenset()  # the backup folder went with its last file
    assert twin.snapshot() == (files, dirs)


# -- 3. the scripts' own contracts ------------------------------------------------------------
def test_a_local_script_runs_on_the_folder_root_names(
    tmp_path: Path, make_target: Callable[[str], Target], capsys: Any
) -> None:
    """``ROOT`` moves a file system script to another folder (a copy, another mount);
    the endpoint's root is the default."""
    write(tmp_path / "src", "x/a.txt", b"a", PAST)
    target = make_target("file")
    plan = file_plan(tmp_path, target)
    code, result = run_json(plan, capsys)
    assert code == 0, result
    twin = target.copy()
    text = fileundo.shell_script(script_ops(records(plan)), target.endpoint())
    _sh(text, tmp_path, {"ROOT": str(twin.root) + "/"})  # type: ignore[attr-defined]
    assert twin.snapshot() == ({}, frozenset())
    assert without_backups(target.snapshot()) == {"x/a.txt": _sha(b"a")}  # untouched


def test_an_nfs_script_needs_root(
    tmp_path: Path, make_target: Callable[[str], Target], capsys: Any
) -> None:
    """An NFS share is reached where the user mounted it: the script refuses to run
    until ROOT says where, and changes nothing."""
    write(tmp_path / "src", "a.txt", b"a", PAST)
    target = make_target("nfs3")
    plan = file_plan(tmp_path, target)
    assert run_json(plan, capsys)[0] == 0
    before = target.snapshot()
    text = fileundo.shell_script(script_ops(records(plan)), target.endpoint())
    server = target.server  # type: ignore[attr-defined]
    assert f"# ROOT: where 127.0.0.1:{urlsplit(server['url']).path} is mounted" in text
    path = tmp_path / "undo.sh"
    path.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "ROOT"}
    proc = subprocess.run(["sh", str(path)], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "set ROOT to where the share is mounted" in proc.stderr
    assert target.snapshot() == before


def test_missing_backups_and_full_folders_are_noted_not_fatal(tmp_path: Path) -> None:
    """A backup that is not there (the run stopped between recording the move and making
    it) is skipped with a note; a folder the run made that now holds someone's files is
    left in place with a note; the tool and the shell script agree."""
    root = tmp_path / "dst"
    twin_root = tmp_path / "twin"
    for r in (root, twin_root):
        (r / "made").mkdir(parents=True)
        (r / "made" / "theirs.txt").write_bytes(b"put there by someone since")
        (r / "a.txt").write_bytes(b"never moved away")
    recs = [
        {"id": 2, "run_id": 1, "step": "s", "action": "delete_dir", "object": "made"},
        {
            "id": 1,
            "run_id": 1,
            "step": "s",
            "action": "restore_file",
            "object": "a.txt",
            "detail": {"backup": f"{BACKUP_DIR}/x/a.txt", "manifest": None},
        },
    ]
    ops = script_ops(recs)
    notes = fileundo.apply_ops(LocalEndpoint("dst", f"file://{root}", {}, base_dir=root), ops)
    assert len(notes) == 2, notes
    assert notes[0].startswith("made: folder left in place")
    assert notes[1].startswith(f"{BACKUP_DIR}/x/a.txt is not there")
    twin = LocalTarget(twin_root, tmp_path)
    assert LocalTarget(root, tmp_path).snapshot() == twin.snapshot()  # nothing changed
    path = tmp_path / "undo.sh"
    path.write_text(fileundo.shell_script(ops, twin.endpoint()), encoding="utf-8")
    proc = subprocess.run(["sh", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "is not empty: left in place" in proc.stderr and "is not there" in proc.stderr
    assert LocalTarget(root, tmp_path).snapshot() == twin.snapshot()


def test_ops_of_each_record_and_what_cannot_be_scripted(sftp_server: dict[str, str]) -> None:
    rec = {"id": 7, "run_id": 3, "step": "s", "object": "d/a.txt"}
    assert fileundo.undo_ops({**rec, "action": "delete_file", "detail": None}) == [
        Op("delete", "d/a.txt", why="#7 run 3, step s: d/a.txt was created by run 3: delete it")
    ]
    restore = {**rec, "action": "restore_file", "detail": {"backup": "b/d/a.txt"}}
    (op,) = fileundo.undo_ops(restore)
    assert (op.kind, op.path, op.to) == ("move", "b/d/a.txt", "d/a.txt")
    (op,) = fileundo.cleanup_ops(restore)
    assert (op.kind, op.path) == ("delete", "b/d/a.txt")
    for action, kind in (("make_dir", "mkdir"), ("delete_dir", "rmdir")):
        assert [o.kind for o in fileundo.undo_ops({**rec, "action": action})] == [kind]
        assert fileundo.cleanup_ops({**rec, "action": action}) == []
    with pytest.raises(MigrateError, match="'drop_table' is not a file undo action"):
        fileundo.undo_ops({**rec, "action": "drop_table"})
    # a name with a line break cannot go in an sftp batch: the script leaves it out and
    # says so (the tool undoes it itself); the other operations are in the batch
    endpoint = SFTPEndpoint("dst", sftp_server["url"], {}, base_dir=Path("/nonexistent"))
    text = fileundo.shell_script(
        [Op("delete", "two\nlines.txt", why="x\ny"), Op("delete", "one.txt")], endpoint
    )
    assert "lines.txt" not in text.split("<<")[1] and '-rm "' in text.split("<<")[1]
    assert "#   x?y\n" in text
    assert "echo 'note: 1 operation(s) on names with a line break are not in this" in text
    with pytest.raises(ConnectorError, match="holds a line break"):
        fileundo._sftp_quote("two\nlines.txt")


# -- 4. through the command: the state is put back too -----------------------------------------
def rollback_json(plan: Path, capsys: Any, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["rollback", str(plan), "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_migrate_rollback_undoes_a_run_and_the_next_run_does_it_again(
    tmp_path: Path, make_target: Callable[[str], Target], capsys: Any
) -> None:
    """``migrate rollback --run N`` applies the same operations and puts the manifest
    back, so the next run copies and deletes again what run N did."""
    src = tmp_path / "src"
    target = make_target("file")
    target.plant("a.txt", b"theirs")
    before = target.snapshot()
    write(src, "a.txt", b"ours v1", PAST)
    write(src, "b.txt", b"b", PAST)
    plan = file_plan(tmp_path, target)
    assert run_json(plan, capsys)[0] == 0
    after_first = target.snapshot()
    write(src, "a.txt", b"ours v2!", PAST + 10**9)
    (src / "b.txt").unlink()
    code, result = run_json(plan, capsys)
    assert code == 0, result
    after_second = without_backups(target.snapshot())
    recs = records(plan, result["run_id"])

    code, out = rollback_json(plan, capsys, "--run", str(result["run_id"]))
    assert code == 0, out
    assert target.snapshot() == after_first
    (script,) = out["scripts"].values()
    text = Path(script).read_text(encoding="utf-8").splitlines()
    expected = fileundo.shell_script(script_ops(recs), target.endpoint()).splitlines()
    assert text[1].startswith("# migrate rollback of plan ")  # the title line
    assert text[:1] + text[2:] == expected[:1] + expected[2:]
    code, result = run_json(plan, capsys)
    assert code == 0, result
    files = result["steps"][0]["files"]
    assert (files["copied"], files["deleted"]) == (1, 1)
    assert without_backups(target.snapshot()) == after_second
    code, out = rollback_json(plan, capsys)
    assert code == 0, out
    assert target.snapshot() == before


# -- 5. a copy that fails after the target's copy was moved aside ------------------------------
class _RemovedAtSource(Progress):
    """A display that removes a source file as the copy starts, after both sides were
    listed: someone deleting it at the source while the run goes on."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def table_started(self, step: str, table: str, total: int | None, done: int) -> None:
        self.path.unlink()


def copier_run(plan_path: Path, progress: Progress) -> FileStepResult:
    """One run of the plan's file step through :class:`FileCopier`, shown on ``progress``."""
    plan = load_plan(plan_path)
    state = State(plan.state_path, plan.name)
    endpoints = Endpoints(plan, 1, dry_run=False)
    try:
        step = plan.steps[0]
        run_id = state.start_run("test")
        source, target = endpoints.get(step.source), endpoints.get(step.target)
        copier = FileCopier(step, source, target, state, run_id, progress, threading.Event())
        res = copier.run()
        state.finish_run(run_id, res.status)
        return res
    finally:
        endpoints.close()
        state.close()


def manifest(plan: Path) -> dict[str, tuple[int, str]]:
    db = sqlite3.connect(plan.with_name("rollback-state.db"))
    try:
        return {p: (s, m) for p, s, m in db.execute("SELECT path, size, md5 FROM files")}
    finally:
        db.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_that_cannot_be_copied_keeps_its_previous_copy(
    tmp_path: Path, make_target: Callable[[str], Target], capsys: Any, kind: str
) -> None:
    """An overwrite moves the target's copy aside first; when the new copy then fails
    (the file is removed at the source during the run, and ``deletes = "ignore"`` keeps
    it on the target), the previous copy is put back: the target and the manifest are
    as before the run, and no record is left for a rollback to trip over."""
    src = tmp_path / "src"
    target = make_target(kind)
    before = target.snapshot()
    write(src, "a.txt", b"a v1", PAST)
    write(src, "b.txt", b"b v1", PAST)
    plan = file_plan(tmp_path, target, deletes="ignore")
    code, result = run_json(plan, capsys)
    assert code == 0, result
    after_first, rows = target.snapshot(), manifest(plan)

    write(src, "a.txt", b"a v2, longer", PAST + 10**9)
    res = copier_run(plan, _RemovedAtSource(src / "a.txt"))
    assert res.status == "failed" and [p for p, _ in res.failed] == ["a.txt"], res
    assert "the previous copy was put back" in res.failed[0][1]
    assert target.snapshot() == after_first  # a.txt v1, no backup folder
    assert manifest(plan) == rows
    assert [r["action"] for r in records(plan) if r["status"] is None] == [
        "delete_file",
        "delete_file",
    ]  # the first run's; the move aside is recorded as undone by the run itself
    code, result = run_json(plan, capsys)  # the next run leaves a.txt (deletes = "ignore")
    assert code == 0, result
    assert target.snapshot() == after_first
    code, out = rollback_json(plan, capsys)
    assert code == 0, out
    assert target.snapshot() == before


# -- 6. a run killed while it sets a file aside: resume, then roll back run by run ------------
@pytest.mark.parametrize("point", ["before-aside:1", "during-put:1"])
def test_a_run_killed_around_a_move_aside_resumes_and_rolls_back(
    tmp_path: Path, make_target: Callable[[str], Target], capsys: Any, point: str
) -> None:
    """SIGKILL between recording a ``restore_file`` and the move (``before-aside``), or
    between the move and the end of the put (``during-put``): the next run copies the
    file, and rolling back that run and then the killed one gives back the first run's
    file (nothing lost); a run after that copies the new content again."""
    src = tmp_path / "src"
    target = make_target("file")
    write(src, "a.txt", b"a v1", PAST)
    plan = file_plan(tmp_path, target)
    plan.write_text(plan.read_text().replace("workers = 4", "workers = 1"))
    code, result = run_json(plan, capsys)
    assert code == 0, result
    after_first = target.snapshot()

    write(src, "a.txt", b"a v2, a longer content", PAST + 10**9)
    code, _out, err = run_cli(plan, "--quiet", env={"MIGRATE_FAILPOINT": point})
    assert code == -signal.SIGKILL, err
    (killed,) = {r["run_id"] for r in records(plan) if r["action"] == "restore_file"}
    moved = point.startswith("during-put")
    assert ("a.txt" in target.snapshot()[0]) is not moved
    code, result = run_json(plan, capsys)  # resume
    assert code == 0, result
    resumed = result["run_id"]
    assert without_backups(target.snapshot()) == {"a.txt": _sha(b"a v2, a longer content")}

    capsys.readouterr()
    code = main(["rollback", str(plan), "--run", str(killed)])
    assert code == 2  # the later run goes first
    assert f"run {resumed} changed step share after it" in capsys.readouterr().err
    code, out = rollback_json(plan, capsys, "--run", str(resumed))
    assert code == 0, out
    code, out = rollback_json(plan, capsys, "--run", str(killed))
    assert code == 0, out
    assert bool(out["notes"]) is not moved  # the move never made: noted
    assert target.snapshot() == after_first
    code, result = run_json(plan, capsys)
    assert code == 0, result
    assert result["steps"][0]["files"]["copied"] == 1
    assert without_backups(target.snapshot()) == {"a.txt": _sha(b"a v2, a longer content")}
    code, out = rollback_json(plan, capsys)
    assert code == 0, out
    assert target.snapshot() == ({}, frozenset())


# -- 7. sftp batches: names sftp would read as flags, names that hold a line break -------------
class HomeSFTPTarget(SFTPTarget):
    """An sftp target named relative to the login folder (``sftp://user@host/~/NAME``;
    the test server's login folder is the folder it serves)."""

    def __init__(self, root: Path, scripts: Path, server: dict[str, str], base: Path) -> None:
        super().__init__(root, scripts, server, base)
        netloc = urlsplit(server["url"]).netloc
        self.url = f"sftp://{netloc}/~/{root.relative_to(base).as_posix()}"
        self.connection = (
            f"{{ url = {_toml(self.url)}, key_file = {_toml(server['key'])},"
            f" known_hosts = {_toml(server['known_hosts'])} }}"
        )

    def copy(self) -> HomeSFTPTarget:
        return HomeSFTPTarget(self._twin_root(), self.scripts, self.server, self.owner)  # type: ignore[arg-type]


@pytest.fixture
def home_sftp(tmp_path: Path, sftp_server: dict[str, str]) -> Iterator[HomeSFTPTarget]:
    """A fresh folder ``-rb-<tag>`` in the sftp login folder (its name starts with '-')."""
    base = Path(sftp_server["dir"])
    root = base / f"-rb-{uuid.uuid4().hex[:10]}"
    root.mkdir()
    st = base.stat()
    os.chown(root, st.st_uid, st.st_gid)
    (tmp_path / "scripts").mkdir()
    yield HomeSFTPTarget(root, tmp_path / "scripts", sftp_server, base)
    _remove(root)


def test_an_sftp_batch_never_passes_a_name_sftp_reads_as_a_flag(
    tmp_path: Path, home_sftp: HomeSFTPTarget, capsys: Any
) -> None:
    """Relative to the login folder, a path starting with '-' is an option to sftp's
    rm, rename, mkdir and rmdir ("Invalid flag"): every path in the batch starts with
    ``./`` or ``/``. Deletes, a move back over a file and folders, by the tool and by
    the script, give back the target before the run."""
    target = home_sftp
    target.plant("-lead.txt", b"the target's own")
    target.plant_dir("-kept")
    before = target.snapshot()
    src = tmp_path / "src"
    write(src, "-lead.txt", b"ours", PAST)
    write(src, "-d/-x.txt", b"x", PAST)
    (src / "-e").mkdir()
    plan = file_plan(tmp_path, target)
    code, result = run_json(plan, capsys)
    assert code == 0, result
    recs = records(plan)
    assert sorted(r["action"] for r in recs) == [
        "delete_dir",
        "delete_file",
        "restore_file",
    ]
    text = roll_back_both(target, target.copy(), recs, before)
    assert '-rm "./-rb-' in text and 'rename "./-rb-' in text


def test_a_name_with_a_line_break_is_rolled_back_by_the_tool_and_noted_in_the_batch(
    tmp_path: Path, home_sftp: HomeSFTPTarget, capsys: Any
) -> None:
    """A name holding a line break cannot be written in an sftp batch: the script leaves
    it out with a note, and ``migrate rollback`` still undoes everything."""
    target = home_sftp
    src = tmp_path / "src"
    write(src, "two\nlines.txt", b"a", PAST)
    write(src, "one line.txt", b"b", PAST)
    plan = file_plan(tmp_path, target)
    code, result = run_json(plan, capsys)
    assert code == 0, result
    assert without_backups(target.snapshot()) == {
        "two\nlines.txt": _sha(b"a"),
        "one line.txt": _sha(b"b"),
    }
    code, out = rollback_json(plan, capsys)
    assert code == 0, out
    assert target.snapshot() == ({}, frozenset())
    (script,) = out["scripts"].values()
    text = Path(script).read_text(encoding="utf-8")
    assert "names with a line break are not in this batch" in text
    assert '-rm "./-rb-' in text and "one line.txt" in text


# -- 8. S3: a move is a server-side copy, then a delete -------------------------------------
def test_an_s3_move_of_an_object_past_the_single_copy_limit_keeps_it_whole(
    make_target: Callable[[str], Target],
) -> None:
    """An object larger than one CopyObject may copy (5 GiB on S3; made 5 MiB here) is
    moved by a multipart UploadPartCopy: the same bytes and the same Content-Type, as
    one restored by a rollback must be."""
    target = make_target("s3")
    assert isinstance(target, S3Target)
    endpoint = target.endpoint()
    try:
        endpoint.provider = dataclasses.replace(endpoint.provider, max_single_put=5 << 20)
        data = os.urandom((12 << 20) + 5)
        key = f"{target.prefix}/v/clip.mp4"
        target.admin.put_object(
            Bucket=target.bucket, Key=key, Body=data, ContentType="video/x-migrate-test"
        )
        endpoint.move("v/clip.mp4", f"{BACKUP_DIR}/r/v/clip.mp4")
        endpoint.move(f"{BACKUP_DIR}/r/v/clip.mp4", "v/clip.mp4")
    finally:
        endpoint.close()
    assert target.snapshot() == ({"v/clip.mp4": _sha(data)}, frozenset())
    after = target.admin.head_object(Bucket=target.bucket, Key=key)
    assert after["ContentType"] == "video/x-migrate-test"


def test_a_folder_where_a_file_goes_back_stops_the_tool_and_the_script(tmp_path: Path) -> None:
    """A folder made since at the path of a file to put back: the tool's move fails and
    the script stops, both leaving the folder and the backup as they are (``mv`` alone
    would put the file inside the folder)."""
    ops = [Op("move", f"{BACKUP_DIR}/r/a.txt", "a.txt", why="put back a.txt")]
    roots = [tmp_path / "tool", tmp_path / "script"]
    for root in roots:
        (root / BACKUP_DIR / "r").mkdir(parents=True)
        (root / BACKUP_DIR / "r" / "a.txt").write_bytes(b"kept")
        (root / "a.txt").mkdir()
        (root / "a.txt" / "theirs.txt").write_bytes(b"someone's")
    snap = LocalTarget(roots[0], tmp_path).snapshot()
    with pytest.raises(ConnectorError):
        fileundo.apply_ops(LocalEndpoint("dst", f"file://{roots[0]}", {}, base_dir=roots[0]), ops)
    assert LocalTarget(roots[0], tmp_path).snapshot() == snap
    path = tmp_path / "undo.sh"
    twin = LocalTarget(roots[1], tmp_path)
    path.write_text(fileundo.shell_script(ops, twin.endpoint()), encoding="utf-8")
    proc = subprocess.run(["sh", str(path)], capture_output=True, text=True)
    assert proc.returncode == 1 and "a.txt is a folder: cannot put" in proc.stderr
    assert twin.snapshot() == snap


# -- 9. a path deleted and made again as the other kind, in one run --------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_a_file_that_becomes_a_folder_and_back_rolls_back_run_by_run(
    tmp_path: Path, make_target: Callable[[str], Target], capsys: Any, kind: str
) -> None:
    """``x`` a file, then a folder holding ``x/y`` (the file is kept aside by the
    propagated delete, then the folder made), then a file again: each run rolled back
    on its own gives back what the run before left."""
    src = tmp_path / "src"
    target = make_target(kind)
    write(src, "x", b"x as a file", PAST)
    plan = file_plan(tmp_path, target)
    snaps = [target.snapshot()]
    runs = []
    for change in (
        lambda: ((src / "x").unlink(), write(src, "x/y", b"y in folder x", PAST)),
        lambda: (shutil.rmtree(src / "x"), write(src, "x", b"x a file again", PAST)),
        None,
    ):
        code, result = run_json(plan, capsys)
        assert code == 0, result
        runs.append(result["run_id"])
        snaps.append(target.snapshot())
        if change is not None:
            change()
    assert without_backups(snaps[1]) == {"x": _sha(b"x as a file")}
    assert without_backups(snaps[2]) == {"x/y": _sha(b"y in folder x")}
    assert without_backups(snaps[3]) == {"x": _sha(b"x a file again")}
    for run_id, expected in zip(reversed(runs), reversed(snaps[:-1]), strict=True):
        code, out = rollback_json(plan, capsys, "--run", str(run_id))
        assert code == 0 and out["notes"] == [], out
        assert target.snapshot() == expected


def test_a_restore_record_of_an_older_version_forgets_the_manifest_row(
    tmp_path: Path, make_target: Callable[[str], Target], capsys: Any
) -> None:
    """A ``restore_file`` record written before records kept the manifest row (its
    detail ``{"backup", "overwritten"}``): once the file is put back, the run's row would
    describe a file that is no longer there; it is forgotten, so the next run copies
    the file again even when the file put back has the same size and mtime."""
    src = tmp_path / "src"
    target = make_target("file")
    target.plant("a.txt", b"theirs")  # same size and mtime as the source's a.txt
    os.utime(target.root / "a.txt", ns=(PAST, PAST))  # type: ignore[attr-defined]
    write(src, "a.txt", b"ours!!", PAST)
    plan = file_plan(tmp_path, target)
    code, result = run_json(plan, capsys)
    assert code == 0, result
    (rec,) = [r for r in records(plan) if r["action"] == "restore_file"]
    legacy = json.dumps({"backup": rec["detail"]["backup"], "overwritten": True})
    db = sqlite3.connect(plan.with_name("rollback-state.db"))
    with db:
        db.execute("UPDATE undo SET detail=? WHERE id=?", (legacy, rec["id"]))
    db.close()
    code, out = rollback_json(plan, capsys)
    assert code == 0, out
    assert (target.root / "a.txt").read_bytes() == b"theirs"  # type: ignore[attr-defined]
    assert manifest(plan) == {}
    code, result = run_json(plan, capsys)
    assert code == 0 and result["steps"][0]["files"]["copied"] == 1, result
    assert without_backups(target.snapshot()) == {"a.txt": _sha(b"ours!!")}


# -- 10. no secret in a script ----------------------------------------------------------------
def test_scripts_and_output_hold_no_password_or_key(
    tmp_path: Path, make_target: Callable[[str], Target], capsys: Any
) -> None:
    """An sftp target whose password is in its URL and an S3 target whose secret key
    comes from the environment: the rollback and cleanup scripts and what the commands
    print name the places, never the password, the secret key or the access key."""
    src = tmp_path / "src"
    write(src, "a.txt", b"a", PAST)
    sftp = make_target("sftp")
    s3 = make_target("s3")
    assert isinstance(sftp, SFTPTarget) and isinstance(s3, S3Target)
    sftp.plant("a.txt", b"theirs")  # a backup, so cleanup has a script too
    s3.plant("a.txt", b"theirs")
    parts = urlsplit(sftp.url)
    password = sftp.server["password"]
    netloc = f"{parts.username}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    with_password = parts._replace(netloc=netloc).geturl()
    plan = tmp_path / "secrets.toml"
    plan.write_text(
        f"""version = 1
name = "secrets"
state = "rollback-state.db"
[connections]
src = {{ url = {_toml(f"file://{src}")} }}
box = {{ url = {_toml(with_password)}, known_hosts = {_toml(sftp.server["known_hosts"])} }}
bucket = {s3.connection}
[[steps]]
name = "to-sftp"
source = "src"
target = "box"
validate = []
[[steps]]
name = "to-s3"
source = "src"
target = "bucket"
validate = []
""",
        encoding="utf-8",
    )
    code, result = run_json(plan, capsys)
    assert code == 0, json.dumps(result, indent=1)
    secrets_ = [
        password,
        quote(password, safe=""),
        s3.server["secret_key"],
        s3.server["access_key"],
    ]
    for argv in (["rollback", "--dry-run"], ["cleanup", "--dry-run"], ["rollback"]):
        capsys.readouterr()
        code = main([argv[0], str(plan), *argv[1:]])
        out = capsys.readouterr()
        assert code == 0, out
        texts = [out.out, out.err]
        folder = plan.with_name(f"rollback-state.{argv[0]}")
        texts += [p.read_text(encoding="utf-8") for p in folder.rglob("*.*")]
        assert len(texts) >= 4
        for text in texts:
            for secret in secrets_:
                assert secret not in text
    assert sftp.snapshot()[0] == {"a.txt": _sha(b"theirs")}
    assert s3.snapshot()[0] == {"a.txt": _sha(b"theirs")}
