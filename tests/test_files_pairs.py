"""File steps between every kind of endpoint, through the CLI, on the real test servers.

Each pair copies one tree (Unicode and special names, a 0-byte file, a deep path, a file
large enough for a multipart upload), validates it by content, then changes the source
(one file changed, one added, one removed) and runs again with deletes = "propagate".
What arrives is read back through each server's own side (the local folder an sftp or
NFS server exports, boto3 for S3), not through the connector that wrote it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from edge_data import run_json

BIG = 9 * 1024 * 1024 + 12345  # above the 6MiB threshold below: 2 parts of 5MiB
TREE: dict[str, bytes] = {
    "a/b/c.txt": b"hello\n",
    "名 字 %+#&=.txt": "中文内容\n".encode(),
    "zero": b"",
    "/".join(f"d{i}" for i in range(12)) + "/leaf.bin": os.urandom(3000),
    "big.bin": os.urandom(BIG),
}
SECRET_VAR = "MT_PAIRS_S3_SECRET"


class Side:
    """One end of a pair: how the plan names it and how a test plants and reads files."""

    def __init__(
        self,
        connection: str,
        plant: Callable[[str, bytes], None],
        remove: Callable[[str], None],
        read_all: Callable[[], dict[str, bytes]],
    ) -> None:
        self.connection, self.plant, self.remove, self.read_all = (
            connection,
            plant,
            remove,
            read_all,
        )


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _dir_side(url: str, root: Path, extra: str = "", owner: Path | None = None) -> Side:
    def plant(path: str, data: bytes) -> None:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if owner is not None:  # the sftp user must be able to write and rename there
            st = owner.stat()
            for p in [target, *target.relative_to(root).parents]:
                os.chown(root / p, st.st_uid, st.st_gid)

    def remove(path: str) -> None:
        (root / path).unlink()

    def read_all() -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and ".migrate-" not in p.as_posix()
        }

    conn = f"{{ url = {_toml(url)}{extra} }}"
    return Side(conn, plant, remove, read_all)


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
def make_side(
    tmp_path: Path,
    s3_server: dict[str, str],
    s3_admin: Any,
    sftp_server: dict[str, str],
    nfs_server: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str], Side]]:
    """``make_side(kind)`` for kind in file, sftp, nfs3, nfs4, s3, s3-localhost: a fresh,
    empty place on that server."""
    monkeypatch.setenv(SECRET_VAR, s3_server["secret_key"])
    cleanup: list[Callable[[], None]] = []

    def make(kind: str) -> Side:
        tag = uuid.uuid4().hex[:10]
        if kind == "file":
            root = tmp_path / f"local-{tag}"
            root.mkdir()
            return _dir_side(f"file://{root}", root)
        if kind == "sftp":
            base = Path(sftp_server["dir"])
            root = base / f"p-{tag}"
            root.mkdir()
            st = base.stat()
            os.chown(root, st.st_uid, st.st_gid)
            cleanup.append(lambda: shutil.rmtree(root, ignore_errors=True))
            netloc = urlsplit(sftp_server["url"]).netloc  # user@host:port
            extra = (
                f", key_file = {_toml(sftp_server['key'])},"
                f" known_hosts = {_toml(sftp_server['known_hosts'])}"
            )
            return _dir_side(f"sftp://{netloc}{root}", root, extra, owner=base)
        if kind in ("nfs3", "nfs4"):
            server_url = nfs_server["url"] if kind == "nfs3" else nfs_server["url_v4"]
            parts = urlsplit(server_url)
            root = Path(nfs_server["dir"]) / f"p-{tag}"
            root.mkdir()
            cleanup.append(lambda: shutil.rmtree(root, ignore_errors=True))
            url = f"nfs://{parts.netloc}{root}?{parts.query}"
            return _dir_side(url, root, f", export = {_toml(parts.path)}")
        assert kind in ("s3", "s3-localhost")
        bucket = f"mt-{secrets.token_hex(6)}"
        s3_admin.create_bucket(Bucket=bucket)

        def drop() -> None:
            for page in s3_admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    s3_admin.delete_object(Bucket=bucket, Key=item["Key"])
            s3_admin.delete_bucket(Bucket=bucket)

        cleanup.append(drop)
        prefix = "share/data"
        endpoint = s3_server["endpoint"]
        if kind == "s3-localhost":  # the same server under another endpoint URL
            endpoint = endpoint.replace("127.0.0.1", "localhost")

        def plant(path: str, data: bytes) -> None:
            s3_admin.put_object(Bucket=bucket, Key=f"{prefix}/{path}", Body=data)

        def remove(path: str) -> None:
            s3_admin.delete_object(Bucket=bucket, Key=f"{prefix}/{path}")

        def read_all() -> dict[str, bytes]:
            out = {}
            for page in s3_admin.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix + "/"
            ):
                for item in page.get("Contents", []):
                    rel = item["Key"][len(prefix) + 1 :]
                    if rel.startswith(".migrate-") or rel.endswith("/"):
                        continue
                    body = s3_admin.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                    out[rel] = body
            return out

        conn = (
            f'{{ url = "s3://{bucket}/{prefix}", endpoint = {_toml(endpoint)},'
            f' provider = "seaweedfs", access_key = {_toml(s3_server["access_key"])},'
            f' secret_key = "${{{SECRET_VAR}}}" }}'
        )
        return Side(conn, plant, remove, read_all)

    yield make
    for fn in reversed(cleanup):
        fn()


def _plan(tmp_path: Path, source: Side, target: Side) -> Path:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f"""version = 1
name = "pairs"

[connections]
src = {source.connection}
dst = {target.connection}

[[steps]]
name = "share"
source = "src"
target = "dst"
mode = "full+incremental"
deletes = "propagate"
workers = 4
part_size = "5MiB"
multipart_threshold = "6MiB"
validate = ["count", "checksum"]
""",
        encoding="utf-8",
    )
    return plan


def _digest(tree: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in tree.items()}


PAIRS = [
    ("file", "s3"),
    ("sftp", "s3"),
    ("nfs3", "s3"),
    ("s3", "file"),
    ("s3", "s3"),
    ("s3", "s3-localhost"),
    ("file", "sftp"),
    ("file", "nfs3"),
    ("sftp", "nfs4"),
    ("nfs4", "file"),
]


@pytest.mark.parametrize(("src_kind", "dst_kind"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_pair_full_then_incremental(
    tmp_path: Path,
    make_side: Callable[[str], Side],
    capsys: pytest.CaptureFixture[str],
    s3_server: dict[str, str],
    src_kind: str,
    dst_kind: str,
) -> None:
    source, target = make_side(src_kind), make_side(dst_kind)
    for path, data in TREE.items():
        source.plant(path, data)
    plan = _plan(tmp_path, source, target)

    code, result = run_json(plan, capsys)
    files = result["steps"][0]["files"]
    assert code == 0, result
    assert files["copied"] == len(TREE) == files["source_files"]
    assert files["copied_bytes"] == sum(len(v) for v in TREE.values())
    assert files["check"] is None  # a live source is compared at cut-over
    assert _digest(target.read_all()) == _digest(TREE)
    same_endpoint = src_kind == dst_kind == "s3"
    assert files["server_side"] == (len(TREE) if same_endpoint else 0)
    if dst_kind.startswith("s3") and not same_endpoint:
        assert files["verified"] == {"etag": len(TREE)}  # every upload checked by its ETag

    # the source changes: one file rewritten, one added, one removed
    changed = dict(TREE)
    changed["a/b/c.txt"] = b"hello, changed\n"
    changed["new/添加.txt"] = b"added"
    del changed["zero"]
    source.plant("a/b/c.txt", changed["a/b/c.txt"])
    source.plant("new/添加.txt", changed["new/添加.txt"])
    source.remove("zero")
    code, result = run_json(plan, capsys)
    files = result["steps"][0]["files"]
    assert code == 0, result
    assert (files["copied"], files["deleted"], files["unchanged"]) == (2, 1, len(TREE) - 2)
    assert _digest(target.read_all()) == _digest(changed)

    # the cut-over run: nothing left to copy, every file compared by content
    code, result = run_json(plan, capsys, "--cutover")
    files = result["steps"][0]["files"]
    assert code == 0, result
    assert files["copied"] == 0
    assert files["check"]["status"] == "equal"
    assert files["check"]["hashed"] == len(changed)

    # nothing changed: nothing copied
    code, result = run_json(plan, capsys)
    assert code == 0
    assert result["steps"][0]["files"]["copied"] == 0
    # the S3 secret never reaches the output or the state
    state = tmp_path / ".migrate" / "pairs.db"
    dump = "\n".join(str(r) for r in sqlite3.connect(state).iterdump())
    assert s3_server["secret_key"] not in dump
    assert s3_server["secret_key"] not in json.dumps(result)


def test_a_run_killed_during_a_multipart_upload_leaves_nothing_visible(
    tmp_path: Path,
    make_side: Callable[[str], Side],
    capsys: pytest.CaptureFixture[str],
    s3_admin: Any,
) -> None:
    """SIGKILL half-way through the multipart upload of the big file: no object under its
    key (only an incomplete upload, invisible), and the next run finishes the tree."""
    import re
    import signal

    from edge_data import run_cli

    source, target = make_side("file"), make_side("s3")
    tree = {"a.txt": b"a", "big.bin": TREE["big.bin"], "z.txt": b"z"}
    for path, data in tree.items():
        source.plant(path, data)
    plan = _plan(tmp_path, source, target)
    text = plan.read_text().replace("workers = 4", "workers = 1")
    plan.write_text(text)  # one file at a time, in name order: big.bin is the 2nd put
    code, _, err = run_cli(plan, "--quiet", env={"MIGRATE_FAILPOINT": "during-put:2"})
    assert code == -signal.SIGKILL, err
    assert set(target.read_all()) == {"a.txt"}  # big.bin: not visible, not even partly
    bucket = re.search(r's3://([^/"]+)', text).group(1)  # type: ignore[union-attr]
    uploads = s3_admin.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"].rsplit("/", 1)[-1] for u in uploads] == ["big.bin"]

    code, result = run_json(plan, capsys)
    assert code == 0, result
    files = result["steps"][0]["files"]
    # big.bin and z.txt at least (a.txt too when the kill came before its manifest flush)
    assert files["copied"] + files["unchanged"] == 3 and files["copied"] >= 2
    assert _digest(target.read_all()) == _digest(tree)
