"""File steps end to end: ``migrate run`` on local ``file:`` trees (migrate/filecopy.py).

Every test drives the real command (``migrate.cli.main`` in this process, or its own
process where it must be killed) on directories under ``tmp_path``; the endpoints written
here (subclasses of the local connector) only change what a source lists or how it
behaves while it is read, to reach what a plain directory cannot show.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import pytest
from edge_data import REPO, run_cli, run_json, run_text

from connectors.files.base import BACKUP_DIR, TMP_PREFIX, FileInfo, unsafe_name
from connectors.files.local import LocalEndpoint
from migrate.cli import main
from migrate.globs import PathFilter, glob_regex
from migrate.registry import BUILTIN

PAST = 1_600_000_000_123_456_789  # a source mtime no copy could get by accident (2020)


# -- helpers ------------------------------------------------------------------------------
def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)  # a TOML basic string


def file_plan(
    tmp_path: Path,
    *,
    name: str = "files",
    src: str = "file:src",
    dst: str = "file:dst",
    **keys: Any,
) -> Path:
    """A one-step plan copying ``tmp_path/src`` to ``tmp_path/dst`` (state
    ``<name>-state.db``); ``keys`` are step keys (``mode`` defaults to full+incremental,
    ``validate`` to [] until file validation exists)."""
    keys = {"mode": "full+incremental", "validate": [], **keys}
    body = "".join(f"{k} = {_toml(v)}\n" for k, v in keys.items())
    plan = tmp_path / f"{name}.toml"
    plan.write_text(
        f"""version = 1
name = "{name}"
state = "{name}-state.db"
[connections]
src = {{ url = {_toml(src)} }}
dst = {{ url = {_toml(dst)} }}
[[steps]]
name = "share"
source = "src"
target = "dst"
{body}""",
        encoding="utf-8",
    )
    return plan


def state_of(plan: Path) -> Path:
    return plan.with_name(f"{plan.stem}-state.db")


def query(plan: Path, sql: str, *args: Any) -> list[tuple]:
    db = sqlite3.connect(state_of(plan))
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def manifest_paths(plan: Path) -> set[str]:
    return {p for (p,) in query(plan, "SELECT path FROM files WHERE step='share'")}


def write(root: Path, rel: str, data: bytes, mtime_ns: int | None = PAST) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (not following links) with its content, leaving
    out the engine's backup folder."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            full = Path(dirpath) / f
            rel = full.relative_to(root).as_posix()
            if rel.startswith(BACKUP_DIR + "/") or full.is_symlink():
                continue
            out[rel] = full.read_bytes()
    return out


def leftovers(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.name.startswith(TMP_PREFIX)
    )


def files_of(result: dict) -> dict:
    """The ``files`` part of the only step of a ``--json`` run result."""
    (step,) = result["steps"]
    assert step["files"] is not None, step
    return step["files"]


def one_line_error(capsys: pytest.CaptureFixture[str], plan: Path) -> str:
    """Run the plan (expecting a plan error): its one stderr line."""
    capsys.readouterr()
    assert main(["run", str(plan)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


# -- 1. first run, second run -------------------------------------------------------------
NAMES = {
    "中文目录/报告 2024.txt": "中文内容\n".encode(),
    "naïve café/résumé.md": b"accents",
    "with space/and more spaces .txt": b"spaces",
    "odd/%+#&=?'.txt": b"percent plus hash amp eq question quote",
    "odd/a%20b": b"not a space",
    "empty.bin": b"",
    "nested/zero/0": b"",
    "top.txt": b"top\n",
}
DEEP = "/".join(f"d{i}" for i in range(20)) + "/deep.txt"


@pytest.fixture
def first_tree(tmp_path: Path) -> dict[str, bytes]:
    src = tmp_path / "src"
    files = dict(NAMES)
    files[DEEP] = b"twenty levels down"
    files["big/twenty.bin"] = os.urandom(20 << 20)
    for i, (rel, data) in enumerate(sorted(files.items())):
        write(src, rel, data, PAST + i * 1_000_000_007)
    return files


def test_first_run_copies_everything_then_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], first_tree: dict[str, bytes]
) -> None:
    plan = file_plan(tmp_path)
    src, dst = tmp_path / "src", tmp_path / "dst"
    total = sum(len(d) for d in first_tree.values())
    code, result = run_json(plan, capsys)
    assert code == 0, result
    assert result["status"] == "done" and result["exit_code"] == 0
    f = files_of(result)
    assert f["status"] == "done"
    assert (f["source_files"], f["source_bytes"]) == (len(first_tree), total)
    assert (f["copied"], f["copied_bytes"], f["unchanged"]) == (len(first_tree), total, 0)
    assert f["verified"] == {"size": len(first_tree)}  # a file system reports sizes
    assert f["refused"] == [] and f["failed"] == [] and f["cleaned"] == 0
    assert tree(dst) == first_tree
    assert leftovers(dst) == []
    for rel in first_tree:  # the source's modification times are kept, to the ns
        assert (dst / rel).stat().st_mtime_ns == (src / rel).stat().st_mtime_ns, rel
    assert manifest_paths(plan) == set(first_tree)
    hashes = {p: (m, s) for p, m, s in query(plan, "SELECT path, md5, sha256 FROM files")}
    assert hashes == {
        rel: (hashlib.md5(d).hexdigest(), hashlib.sha256(d).hexdigest())
        for rel, d in first_tree.items()
    }

    code, result = run_json(plan, capsys)
    assert code == 0
    f = files_of(result)
    assert (f["copied"], f["copied_bytes"], f["unchanged"]) == (0, 0, len(first_tree))
    assert (f["source_files"], f["source_bytes"]) == (len(first_tree), total)
    assert tree(dst) == first_tree

    code, out = run_text(plan, capsys)
    assert code == 0, out
    assert "copied 0 (0 B" in out and f"unchanged {len(first_tree)}" in out
    assert "Traceback" not in out


# -- 2. incremental runs ------------------------------------------------------------------
def _seed(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for rel in ("same.txt", "grows.txt", "touched.txt", "rewritten.txt", "gone-at-target.txt"):
        write(src, rel, f"{rel} v1".encode())
    write(src, "altered-at-target.txt", b"0123456789")
    return src


def test_incremental_copies_new_changed_and_target_damaged_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = _seed(tmp_path), tmp_path / "dst"
    plan = file_plan(tmp_path)
    assert run_json(plan, capsys)[0] == 0
    write(src, "new/fresh.txt", b"fresh")
    write(src, "grows.txt", b"grows.txt v1 and more")  # size changed, mtime kept
    os.utime(src / "touched.txt", ns=(PAST + 10**9, PAST + 10**9))  # only the mtime
    write(src, "rewritten.txt", b"rewritten.txt v2", PAST + 2 * 10**9)  # same size, new mtime
    (dst / "gone-at-target.txt").unlink()
    (dst / "altered-at-target.txt").write_bytes(b"short")
    code, result = run_json(plan, capsys)
    assert code == 0, result
    f = files_of(result)
    assert f["copied"] == 6 and f["unchanged"] == 1  # all but same.txt
    assert tree(dst) == tree(src)
    for rel in tree(src):
        assert (dst / rel).stat().st_mtime_ns == (src / rel).stat().st_mtime_ns, rel
    assert run_json(plan, capsys)[1]["steps"][0]["files"]["copied"] == 0


def test_same_size_file_altered_on_the_target_is_copied_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(tmp_path)
    dst = tmp_path / "dst"
    plan = file_plan(tmp_path)
    assert run_json(plan, capsys)[0] == 0
    (dst / "altered-at-target.txt").write_bytes(b"abcdefghij")  # same size, mtime now
    code, result = run_json(plan, capsys)
    assert code == 0
    assert files_of(result)["copied"] == 1
    assert (dst / "altered-at-target.txt").read_bytes() == b"0123456789"


def test_compare_hash_looks_at_content_not_mtime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = _seed(tmp_path), tmp_path / "dst"
    plan = file_plan(tmp_path, compare="hash")
    assert run_json(plan, capsys)[0] == 0
    os.utime(src / "touched.txt", ns=(PAST + 10**9, PAST + 10**9))  # content unchanged
    before = (src / "rewritten.txt").stat()
    (src / "rewritten.txt").write_bytes(b"REWRITTEN.TXT V1")  # same size ...
    os.utime(src / "rewritten.txt", ns=(before.st_atime_ns, before.st_mtime_ns))  # ... mtime
    code, result = run_json(plan, capsys)
    assert code == 0, result
    f = files_of(result)
    assert (f["copied"], f["unchanged"]) == (1, 5)
    assert (dst / "rewritten.txt").read_bytes() == b"REWRITTEN.TXT V1"
    assert (dst / "touched.txt").read_bytes() == b"touched.txt v1"
    # size-mtime would have missed the rewrite and copied the touched file instead
    plan2 = file_plan(tmp_path, name="mtime", dst="file:dst2")
    assert run_json(plan2, capsys)[0] == 0
    (src / "rewritten.txt").write_bytes(b"rewritten.txt v1")
    os.utime(src / "rewritten.txt", ns=(before.st_atime_ns, before.st_mtime_ns))
    os.utime(src / "touched.txt", ns=(PAST + 3 * 10**9, PAST + 3 * 10**9))
    f = files_of(run_json(plan2, capsys)[1])
    assert f["copied"] == 1
    assert (tmp_path / "dst2" / "rewritten.txt").read_bytes() == b"REWRITTEN.TXT V1"


# -- 3. deletes = "propagate" -------------------------------------------------------------
def test_propagated_delete_moves_the_file_to_the_backup_with_an_undo_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write(src, "keep.txt", b"keep")
    write(src, "dir/old.txt", b"old content")
    write(src, "scratch.tmp", b"a temp file the plan later excludes")
    plan = file_plan(tmp_path, deletes="propagate")
    assert run_json(plan, capsys)[0] == 0
    (src / "dir" / "old.txt").unlink()
    plan = file_plan(tmp_path, deletes="propagate", exclude=["*.tmp"])
    code, result = run_json(plan, capsys)
    assert code == 0, result
    run_id = result["run_id"]
    f = files_of(result)
    assert f["deleted"] == 1 and f["copied"] == 0
    (backup_root,) = (dst / BACKUP_DIR).iterdir()  # one folder per run and step
    assert backup_root.name.endswith(tuple(f"-share-{h}" for h in [backup_root.name[-8:]]))
    backup = f"{BACKUP_DIR}/{backup_root.name}/dir/old.txt"
    assert not (dst / "dir" / "old.txt").exists()
    assert (dst / backup).read_bytes() == b"old content"
    # a file the new exclude pattern hides is still at the source: not deleted
    assert (dst / "scratch.tmp").read_bytes() == b"a temp file the plan later excludes"
    rows = query(
        plan,
        "SELECT connection, action, object, detail FROM undo WHERE run_id=? AND step='share'",
        run_id,
    )
    assert [(c, a, o) for c, a, o, _ in rows] == [("dst", "restore_file", "dir/old.txt")]
    detail = json.loads(rows[0][3])
    assert detail["backup"] == backup
    # the manifest row the path had before, for the rollback to put back
    assert detail["manifest"]["path"] == "dir/old.txt"
    assert detail["manifest"]["size"] == len(b"old content")
    assert detail["manifest"]["md5"] == hashlib.md5(b"old content").hexdigest()
    assert manifest_paths(plan) == {"keep.txt", "scratch.tmp"}
    # the backup folder is the engine's own: never listed, copied or deleted
    code, result = run_json(plan, capsys)
    assert code == 0
    f = files_of(result)
    assert (f["copied"], f["deleted"], f["source_files"]) == (0, 0, 1)
    assert (dst / backup).exists()


@pytest.mark.parametrize("how", ["emptied", "removed"])
def test_a_source_that_lists_nothing_deletes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(3):
        write(src, f"d/f{i}.txt", b"x" * i)
    plan = file_plan(tmp_path, deletes="propagate")
    assert run_json(plan, capsys)[0] == 0
    before = tree(dst)
    for p in (src / "d").iterdir():
        p.unlink()
    (src / "d").rmdir()
    if how == "removed":  # an unmounted share: the root itself is missing
        src.rmdir()
    code, result = run_json(plan, capsys)
    assert code == 1, result
    assert result["status"] == "failed"
    step = result["steps"][0]
    assert step["status"] == "failed"
    if how == "removed":  # the missing root is named before any delete is considered
        assert "does not exist (is the share mounted, the path right?)" in step["error"]
    else:
        assert "the source lists nothing, so 3 file(s) were not deleted" in step["error"]
    assert files_of(result)["deleted"] == 0
    assert tree(dst) == before and not (dst / BACKUP_DIR).exists()
    assert len(manifest_paths(plan)) == 3
    code, out = run_text(plan, capsys)
    assert code == 1
    if how == "emptied":
        assert "the source lists nothing" in out and "check that the source is reachable" in out


def test_deletes_with_mode_full_is_a_plan_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "src", "a.txt", b"a")
    plan = file_plan(tmp_path, mode="full", deletes="propagate")
    err = one_line_error(capsys, plan)
    assert re.match(r"^migrate: error: .*files\.toml:\d+: steps\.share\.deletes: ", err), err
    assert 'needs mode = "full+incremental"' in err
    assert not (tmp_path / "dst").exists() and not state_of(plan).exists()


# -- 4. mode = "full" ---------------------------------------------------------------------
def test_mode_full_second_run_has_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write(src, "a.txt", b"aaa")
    write(src, "b/c.txt", b"cc")
    plan = file_plan(tmp_path, mode="full")
    code, result = run_json(plan, capsys)
    assert code == 0 and files_of(result)["copied"] == 2
    write(src, "later.txt", b"not copied: mode full copies once")
    code, result = run_json(plan, capsys)
    assert code == 0, result
    f = files_of(result)
    assert f["status"] == "skipped" and f["copied"] == 0
    assert (f["source_files"], f["source_bytes"]) == (2, 5)
    assert "nothing to do" in " ".join(f["notes"])
    assert not (dst / "later.txt").exists()
    code, out = run_text(plan, capsys)
    assert code == 0 and "nothing to do" in out
    # --restart copies again
    code, result = run_json(plan, capsys, "--restart")
    assert code == 0 and files_of(result)["copied"] == 3
    assert (dst / "later.txt").exists()


# -- 5. include / exclude -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("glob", "matches", "misses"),
    [
        ("**", ["a", "a/b/c.txt", ".hidden", "x y/z"], []),
        ("*.log", ["a.log", ".log"], ["logs/a.log", "a.log/x", "a.logx"]),
        ("**/*.tmp", ["a.tmp", "x/a.tmp", "x/y/z/a.tmp"], ["a.tmpx", "x/a.tmp/b", "atmp"]),
        ("docs/**", ["docs/a", "docs/x/y/z.md"], ["docs", "docsx/a", "a/docs/b"]),
        ("**/.snapshot/**", [".snapshot/a", "x/.snapshot/y/z"], ["x/.snapshotx/y"]),
        ("a?c", ["abc", "a.c"], ["a/c", "abbc"]),
        ("[ab]*.txt", ["a1.txt", "b.txt"], ["c.txt", "x/a.txt"]),
        ("[!ab]*.txt", ["c.txt"], ["a.txt", "b1.txt"]),
        ("data/*/x", ["data/1/x"], ["data/1/2/x", "data/x"]),
        ("**/~$*", ["~$doc.docx", "a/~$b"], ["a~$b"]),
        ("a+b (1).txt", ["a+b (1).txt"], ["aab (1).txt", "a+b 1.txt"]),
        ("中文/*.txt", ["中文/报告.txt"], ["中文/子/报告.txt"]),
        ("[a", ["[a"], ["a"]),
    ],
)
def test_glob_regex(glob: str, matches: list[str], misses: list[str]) -> None:
    rx = glob_regex(glob)
    for path in matches:
        assert rx.match(path), (glob, path)
    for path in misses:
        assert not rx.match(path), (glob, path)


def test_path_filter_is_include_minus_exclude() -> None:
    keep = PathFilter(["**"], ["**/*.tmp", "docs/**", "*.log"])
    assert keep("a.txt") and keep("x/b.log") and keep("docsx/a")
    assert not keep("b.log") and not keep("t.tmp") and not keep("x/y/t.tmp")
    assert not keep("docs/r.md")
    only_docs = PathFilter(["docs/**", "README*"], ["**/*.draft"])
    assert only_docs("docs/a/b.md") and only_docs("README.md")
    assert not only_docs("src/a.py") and not only_docs("docs/x.draft")
    assert not PathFilter([], [])("a")  # nothing included


def test_include_and_exclude_select_what_is_copied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for rel in (
        "keep.txt",
        "a.tmp",
        "x/b.tmp",
        "x/y/c.tmp",
        "docs/readme.md",
        "docs/sub/d.txt",
        "docsx/e.txt",
        "top.log",
        "logs/a.log",
        "x/y/keep.tmpx",
    ):
        write(src, rel, rel.encode())
    plan = file_plan(tmp_path, exclude=["**/*.tmp", "docs/**", "*.log"])
    code, result = run_json(plan, capsys)
    assert code == 0, result
    want = {"keep.txt", "docsx/e.txt", "logs/a.log", "x/y/keep.tmpx"}
    assert set(tree(dst)) == want
    assert files_of(result)["source_files"] == len(want)
    assert manifest_paths(plan) == want
    plan = file_plan(tmp_path, name="docs", dst="file:docs-only", include=["docs/**"])
    assert run_json(plan, capsys)[0] == 0
    assert set(tree(tmp_path / "docs-only")) == {"docs/readme.md", "docs/sub/d.txt"}


# -- 6. names a file system cannot hold -----------------------------------------------------
EVIL = ("../evil", "/abs", "a/../b")


class EvilEndpoint(LocalEndpoint):
    """A source whose listing holds names no directory could: a remote store's keys."""

    def list(self, *, follow_symlinks: bool = False) -> Iterator[FileInfo]:
        yield from super().list(follow_symlinks=follow_symlinks)
        for name in EVIL:
            yield FileInfo(name, 4, PAST)

    def stat(self, path: str) -> FileInfo | None:
        return FileInfo(path, 4, PAST) if path in EVIL else super().stat(path)

    def open_read(self, path: str) -> BinaryIO:
        return io.BytesIO(b"evil") if path in EVIL else super().open_read(path)


@pytest.fixture
def scheme(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Register an endpoint class of this module under a URL scheme for one test."""

    def register(name: str, cls: type) -> None:
        monkeypatch.setitem(BUILTIN, name, (f"{__name__}:{cls.__name__}", "file"))

    return register


def test_unsafe_source_names_are_refused_and_nothing_leaves_the_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scheme: Any
) -> None:
    scheme("evil", EvilEndpoint)
    work = tmp_path / "work"
    write(work / "src", "fine.txt", b"fine")
    write(work / "src", "a/ok.txt", b"ok")
    plan = file_plan(work, src="evil:src")
    code, result = run_json(plan, capsys)
    assert code == 1, result
    assert result["status"] == "failed"
    step = result["steps"][0]
    f = step["files"]
    assert {r["path"]: r["reason"] for r in f["refused"]} == {
        "../evil": "'..' in name",
        "/abs": "absolute name (leading '/')",
        "a/../b": "'..' in name",
    }
    assert f["failed"] == [] and f["copied"] == 2
    assert step["status"] == "failed" and "3 file(s) refused" in step["error"]
    assert tree(work / "dst") == {"fine.txt": b"fine", "a/ok.txt": b"ok"}
    assert not (work / "evil").exists() and not (work / "b").exists()
    assert not (work / "dst" / "b").exists() and not Path("/abs").exists()
    assert manifest_paths(plan) == {"fine.txt", "a/ok.txt"}
    code, out = run_text(plan, capsys)
    assert code == 1
    assert "refused ../evil: '..' in name" in out and "refused /abs" in out
    # the dry run names them too, and says they would stop the run
    capsys.readouterr()
    assert main(["run", str(plan), "--dry-run"]) == 2
    out = capsys.readouterr().out
    assert "STOP: ../evil: '..' in name" in out and "problem(s) would stop the run" in out


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil", "'..' in name"),
        ("a/../b", "'..' in name"),
        ("a/..", "'..' in name"),
        ("/abs", "absolute name (leading '/')"),
        ("a//b", "empty or '.' path segment"),
        ("./a", "empty or '.' path segment"),
        ("a/", "empty or '.' path segment"),
        ("", "empty name"),
        ("a\x00b", "NUL byte in name"),
        ("..a/b..", None),
        ("中文/%+#&=?'", None),
    ],
)
def test_unsafe_name(name: str, why: str | None) -> None:
    assert unsafe_name(name) == why


# -- 7. symbolic links ----------------------------------------------------------------------
def _links(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    write(src, "real.txt", b"real")
    write(src, "realdir/inner.txt", b"inner")
    write(tmp_path / "outside", "secret.txt", b"outside the root")
    (src / "link.txt").symlink_to("real.txt")
    (src / "linkdir").symlink_to("realdir", target_is_directory=True)
    (src / "escape.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    (src / "escapedir").symlink_to(tmp_path / "outside", target_is_directory=True)
    (src / "up.txt").symlink_to("../outside/secret.txt")
    (src / "dangling").symlink_to("nowhere")
    (src / "loop").symlink_to(".", target_is_directory=True)
    return src


@pytest.mark.parametrize("symlinks", ["skip", "follow"])
def test_symlinks_skipped_or_followed_never_out_of_the_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], symlinks: str
) -> None:
    _links(tmp_path)
    dst = tmp_path / "dst"
    plan = file_plan(tmp_path, symlinks=symlinks)
    code, result = run_json(plan, capsys)
    assert code == 0, result
    want = {"real.txt": b"real", "realdir/inner.txt": b"inner"}
    if symlinks == "follow":
        want |= {"link.txt": b"real", "linkdir/inner.txt": b"inner"}
    assert tree(dst) == want
    assert not any(p.is_symlink() for p in dst.rglob("*"))
    assert files_of(result)["copied"] == len(want)
    assert b"outside the root" not in b"".join(tree(dst).values())


# -- 8. empty directories -----------------------------------------------------------------
@pytest.mark.parametrize("empty_dirs", ["skip", "keep"])
def test_empty_directories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], empty_dirs: str
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write(src, "a/file.txt", b"f")
    (src / "empty").mkdir()
    (src / "a" / "b" / "c").mkdir(parents=True)
    plan = file_plan(tmp_path, empty_dirs=empty_dirs)
    code, result = run_json(plan, capsys)
    assert code == 0, result
    f = files_of(result)
    assert tree(dst) == {"a/file.txt": b"f"}
    kept = empty_dirs == "keep"
    assert (dst / "empty").is_dir() is kept
    assert (dst / "a" / "b" / "c").is_dir() is kept
    assert f["dirs_created"] == (2 if kept else 0)
    if kept:
        rows = query(plan, "SELECT path FROM files WHERE kind='dir'")
        assert {p for (p,) in rows} == {"empty", "a/b/c"}
        undo = query(plan, "SELECT object FROM undo WHERE action='delete_dir'")
        assert {p for (p,) in undo} == {"empty", "a/b/c"}
        code, result = run_json(plan, capsys)  # kept once: nothing to do the next time
        assert code == 0 and files_of(result)["dirs_created"] == 0


def test_kept_empty_directories_and_propagated_deletes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write(src, "f.txt", b"f")
    (src / "box").mkdir()
    (src / "gone").mkdir()
    plan = file_plan(tmp_path, empty_dirs="keep", deletes="propagate")
    assert run_json(plan, capsys)[0] == 0
    assert (dst / "box").is_dir() and (dst / "gone").is_dir()
    write(src, "box/new.txt", b"the empty folder gained a file")
    (src / "gone").rmdir()
    code, result = run_json(plan, capsys)
    assert code == 0, result
    f = files_of(result)
    assert (f["copied"], f["deleted"]) == (1, 1)
    assert (dst / "box" / "new.txt").read_bytes() == b"the empty folder gained a file"
    assert not (dst / "gone").exists()
    undo = query(plan, "SELECT action, object FROM undo WHERE run_id=?", result["run_id"])
    assert sorted(undo) == [("delete_file", "box/new.txt"), ("make_dir", "gone")]
    assert tree(dst) == tree(src)


# -- 9. files that change while they are copied ---------------------------------------------
class GrowingEndpoint(LocalEndpoint):
    """A source whose files grow while they are read: ``once*`` files the first time they
    are opened, ``always*`` files every time (a log being written)."""

    opened: ClassVar[collections.Counter[str]] = collections.Counter()

    def open_read(self, path: str) -> BinaryIO:
        stream = super().open_read(path)
        GrowingEndpoint.opened[path] += 1
        name = path.rsplit("/", 1)[-1]
        if name.startswith("always") or (name.startswith("once") and self.opened[path] == 1):
            with open(self.root / path, "ab") as f:
                f.write(b" +appended while read")
        return stream


def test_a_file_changed_while_copied_is_copied_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scheme: Any
) -> None:
    scheme("growing", GrowingEndpoint)
    GrowingEndpoint.opened.clear()
    src, dst = tmp_path / "src", tmp_path / "dst"
    write(src, "plain.txt", b"plain")
    write(src, "d/once.log", b"first version")
    plan = file_plan(tmp_path, src="growing:src")
    code, result = run_json(plan, capsys)
    assert code == 0, result
    f = files_of(result)
    assert (f["copied"], f["copied_again"]) == (2, 1)
    assert (dst / "d" / "once.log").read_bytes() == b"first version +appended while read"
    assert tree(dst) == tree(src)
    size = dict(query(plan, "SELECT path, size FROM files"))
    assert size["d/once.log"] == (src / "d" / "once.log").stat().st_size
    assert GrowingEndpoint.opened == {"plain.txt": 1, "d/once.log": 2}


def test_a_file_that_changes_at_every_read_fails_after_three_attempts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scheme: Any
) -> None:
    scheme("growing", GrowingEndpoint)
    GrowingEndpoint.opened.clear()
    src = tmp_path / "src"
    write(src, "plain.txt", b"plain")
    write(src, "always.log", b"busy")
    plan = file_plan(tmp_path, src="growing:src")
    code, result = run_json(plan, capsys)
    assert code == 1, result
    f = files_of(result)
    assert f["copied"] == 1
    assert f["failed"] == [
        {
            "path": "always.log",
            "error": "always.log: changed at the source while it was copied (3 attempts)",
        }
    ]
    assert GrowingEndpoint.opened["always.log"] == 3
    error = result["steps"][0]["error"]
    assert error.startswith("1 file(s) could not be copied; first: always.log")
    assert error.endswith("always.log: changed at the source while it was copied (3 attempts)")
    assert manifest_paths(plan) == {"plain.txt"}


def test_step_error_names_the_failed_file_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scheme: Any
) -> None:
    scheme("growing", GrowingEndpoint)
    write(tmp_path / "src", "always.log", b"busy")
    code, result = run_json(file_plan(tmp_path, src="growing:src"), capsys)
    assert code == 1
    assert result["steps"][0]["error"].count("always.log") == 1, result["steps"][0]["error"]


class ShortReadEndpoint(LocalEndpoint):
    """A source whose ``short*`` files give half their bytes (a flaky mount), while their
    size and mtime stay what the listing said."""

    def open_read(self, path: str) -> BinaryIO:
        stream = super().open_read(path)
        if not path.rsplit("/", 1)[-1].startswith("short"):
            return stream
        with stream:
            data = stream.read()
        return io.BytesIO(data[: len(data) // 2])


class LyingTarget(LocalEndpoint):
    """A target that reports one byte less than it wrote for ``lie*`` files."""

    def put(self, path: str, stream: BinaryIO, size: int, **kw: Any) -> Any:
        result = super().put(path, stream, size, **kw)
        if path.rsplit("/", 1)[-1].startswith("lie"):
            return type(result)(size=result.size - 1)
        return result


def test_short_reads_and_wrong_target_sizes_are_not_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scheme: Any
) -> None:
    scheme("short", ShortReadEndpoint)
    scheme("lying", LyingTarget)
    src = tmp_path / "src"
    write(src, "plain.txt", b"plain")
    write(src, "short.bin", b"s" * 1000)
    write(src, "lie.bin", b"l" * 1000)
    plan = file_plan(tmp_path, src="short:src", dst="lying:dst")
    code, result = run_json(plan, capsys)
    assert code == 1, result
    f = files_of(result)
    assert f["copied"] == 1
    assert {x["path"]: x["error"] for x in f["failed"]} == {
        "short.bin": "short.bin: changed at the source while it was copied (3 attempts)",
        "lie.bin": "lie.bin: the target holds 999 bytes after writing 1000 (3 attempts)",
    }
    assert manifest_paths(plan) == {"plain.txt"}  # a failed file is copied again next run


# -- 10. resume after SIGKILL, the lock -----------------------------------------------------
BIG = "many/f0550-big.bin"


def _many(tmp_path: Path) -> tuple[dict[str, bytes], int]:
    """600 small files (more than one manifest flush) and a 4 MiB one; the put number of
    the big one when one worker copies in path order."""
    files = {f"many/f{i:04d}.txt": f"file {i}\n".encode() for i in range(600)}
    files[BIG] = os.urandom(4 << 20)
    for rel, data in files.items():
        write(tmp_path / "src", rel, data)
    return files, sorted(files).index(BIG) + 1


def _assert_no_torn_file(dst: Path, files: dict[str, bytes]) -> None:
    for rel, data in tree(dst).items():
        if not rel.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
            assert data == files[rel], f"{rel} is not the source's content"


@pytest.mark.slow
def test_killed_during_a_put_resumes_and_cleans_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files, seq = _many(tmp_path)
    dst = tmp_path / "dst"
    plan = file_plan(tmp_path, workers=1)
    code, _out, err = run_cli(
        plan, "--json", "--quiet", env={"MIGRATE_FAILPOINT": f"during-put:{seq}"}
    )
    assert code == -signal.SIGKILL, err
    assert not (dst / BIG).exists()  # half written, but never under its final name
    (tmp,) = leftovers(dst)
    assert 0 < (dst / tmp).stat().st_size < len(files[BIG])
    _assert_no_torn_file(dst, files)
    recorded = len(manifest_paths(plan))
    assert 0 < recorded < seq  # the manifest was flushed part way, not at the end
    code, result = run_json(plan, capsys)
    assert code == 0, result
    f = files_of(result)
    assert f["cleaned"] >= 1
    assert f["copied"] == len(files) - recorded < len(files)
    assert leftovers(dst) == []
    assert tree(dst) == files
    assert manifest_paths(plan) == set(files)


@pytest.mark.slow
def test_killed_after_a_put_before_the_manifest_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files, seq = _many(tmp_path)
    dst = tmp_path / "dst"
    plan = file_plan(tmp_path, workers=1)
    code, _out, err = run_cli(
        plan, "--json", "--quiet", env={"MIGRATE_FAILPOINT": f"after-file:{seq}"}
    )
    assert code == -signal.SIGKILL, err
    assert (dst / BIG).read_bytes() == files[BIG]  # the put finished ...
    assert BIG not in manifest_paths(plan)  # ... and was not recorded
    assert leftovers(dst) == []
    _assert_no_torn_file(dst, files)
    recorded = len(manifest_paths(plan))
    code, result = run_json(plan, capsys)
    assert code == 0, result
    f = files_of(result)
    assert f["copied"] == len(files) - recorded < len(files)
    assert tree(dst) == files


def test_a_second_run_while_one_holds_the_lock_exits_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "src", "a.txt", b"a")
    plan = file_plan(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from migrate.state import RunLock;"
            " RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(60)",
            str(state_of(plan)),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        started = time.monotonic()
        assert main(["run", str(plan)]) == 4
        assert time.monotonic() - started < 10
        err = capsys.readouterr().err.strip()
        assert err.startswith("migrate: error: another run holds") and len(err.splitlines()) == 1
        assert not (tmp_path / "dst").exists()
    finally:
        holder.kill()
        holder.wait()
    assert run_json(plan, capsys)[0] == 0
    assert tree(tmp_path / "dst") == {"a.txt": b"a"}


# -- 11. --dry-run --------------------------------------------------------------------------
def test_dry_run_surveys_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write(src, "a.txt", b"a" * 1000)
    write(src, "sub/largest.bin", b"b" * 5000)
    write(src, "sub/skip.tmp", b"excluded")
    (src / "hollow").mkdir()
    plan = file_plan(tmp_path, exclude=["**/*.tmp"])
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out = run_text(plan, capsys, "--dry-run")
    assert code == 0, out
    assert "2 files, 5.9 KiB, 1 empty directories, largest sub/largest.bin (4.9 KiB)" in out
    assert "a first run copies 2 files, 5.9 KiB; 0 unchanged; 0 to delete on the target" in out
    assert "Traceback" not in out
    capsys.readouterr()
    assert main(["run", str(plan), "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (wave,) = report["waves"]
    (step,) = wave["steps"]
    assert step["error"] is None and report["problems"] == 0
    assert step["files"] == {
        "files": 2,
        "bytes": 6000,
        "dirs": 1,
        "largest": {"path": "sub/largest.bin", "size": 5000},
        "refused": [],
        "copy_files": 2,
        "copy_bytes": 6000,
        "hash_checks": 0,
        "unchanged": 0,
        "delete_files": 0,
        "target_files": 0,
        "first_run": True,
        "notes": [],
        "set_aside": 0,
    }
    # no state, no target: only the survey's HTML report beside where the state would be
    after = sorted(p.name for p in tmp_path.iterdir())
    assert after == sorted([*before, state_of(plan).with_suffix(".survey.html").name])
    assert not dst.exists() and not state_of(plan).exists()
    # after a run, the dry run reads the state: what the next run would copy and delete
    plan = file_plan(tmp_path, exclude=["**/*.tmp"], deletes="propagate")
    assert run_json(plan, capsys)[0] == 0
    (src / "a.txt").unlink()
    write(src, "new.txt", b"n" * 10)
    listing = tree(dst)
    mtime = state_of(plan).stat().st_mtime_ns
    capsys.readouterr()
    assert main(["run", str(plan), "--dry-run", "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["waves"][0]["steps"][0]["files"]
    assert (files["copy_files"], files["unchanged"], files["delete_files"]) == (1, 1, 1)
    assert files["first_run"] is False
    assert tree(dst) == listing and state_of(plan).stat().st_mtime_ns == mtime


# -- 12. migrate status ---------------------------------------------------------------------
def test_status_shows_the_file_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "src", "a.txt", b"a" * 2048)
    write(tmp_path / "src", "b/c.txt", b"c" * 1024)
    plan = file_plan(tmp_path)
    assert run_json(plan, capsys)[0] == 0
    write(tmp_path / "src", "d.txt", b"d")
    assert run_json(plan, capsys)[0] == 0
    capsys.readouterr()
    assert main(["status", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "file steps" in out
    row = next(line for line in out.splitlines() if line.lstrip().startswith("share"))
    cells = [c.strip() for c in re.split(r"[│┃]", row)]
    assert cells[:5] == ["share", "done", "3", "3.0 KiB", "2"], cells
    assert "1 copied (1 B), 0 deleted" in row
    assert main(["status", str(plan), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    (fs,) = status["file_steps"]
    assert fs["step"] == "share" and fs["status"] == "done"
    assert (fs["files"], fs["bytes"], fs["runs"]) == (3, 3073, 2)
    assert (fs["last_copied"], fs["last_bytes"], fs["last_deleted"]) == (1, 1, 0)
    assert fs["as_of"] and fs["last_run_at"] and fs["lag_seconds"] >= 0
    assert status["tables"] == []


# -- 13. plan errors ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("keys", "where", "message"),
    [
        ({"tables": ["*"]}, "steps.share.tables", "unknown key 'tables'"),
        ({"cursor": "mtime"}, "steps.share.cursor", "unknown key 'cursor'"),
        ({"chunk_rows": 10}, "steps.share.chunk_rows", "unknown key 'chunk_rows'"),
        ({"part_size": "12 bananas"}, "steps.share.part_size", "'12 bananas' is not a size"),
        ({"multipart_threshold": "-1MiB"}, "steps.share.multipart_threshold", "is not a size"),
        ({"part_size": 0}, "steps.share.part_size", "must be a positive number of bytes"),
        ({"part_size": "4MiB"}, "steps.share.part_size", "must be at least 5MiB"),
        ({"mode": "cdc"}, "steps.share.mode", "'cdc' is not one of: full, full+incremental"),
        ({"mode": "incremental"}, "steps.share.mode", "is not one of"),
        ({"deletes": "detect"}, "steps.share.deletes", "'detect' is not one of"),
        ({"compare": "md5"}, "steps.share.compare", "is not one of"),
        ({"symlinks": "yes"}, "steps.share.symlinks", "is not one of"),
        ({"empty_dirs": True}, "steps.share.empty_dirs", "must be a string, not a boolean"),
        ({"workers": 0}, "steps.share.workers", "must be at least 1, not 0"),
        ({"include": ["/abs/**"]}, "steps.share.include", "relative to the source root"),
        ({"exclude": [""]}, "steps.share.exclude", "relative to the source root"),
        ({"validate": ["rows"]}, "steps.share.validate", "'rows' is not one of: count"),
    ],
)
def test_file_step_plan_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: dict, where: str, message: str
) -> None:
    write(tmp_path / "src", "a.txt", b"a")
    plan = file_plan(tmp_path, **keys)
    err = one_line_error(capsys, plan)
    assert re.match(rf"^migrate: error: .*files\.toml:\d+: {re.escape(where)}: ", err), err
    assert message in err
    assert not (tmp_path / "dst").exists() and not state_of(plan).exists()


def test_size_strings_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "src", "a.txt", b"a")
    plan = file_plan(tmp_path, part_size="16MiB", multipart_threshold="1.5GB")
    assert run_json(plan, capsys)[0] == 0
    plan = file_plan(tmp_path, name="ints", part_size=5 << 20, multipart_threshold=1)
    assert run_json(plan, capsys)[0] == 0


def _two_connection_plan(tmp_path: Path, conn: str, step: str) -> Path:
    plan = tmp_path / "mixed.toml"
    plan.write_text(
        f"""version = 1
name = "mixed"
[connections]
{conn}
[[steps]]
name = "s"
{step}
""",
        encoding="utf-8",
    )
    return plan


@pytest.mark.parametrize(
    ("conn", "step", "where", "message"),
    [
        (  # file-only keys in a database step
            'a = { url = "sqlite:///a.db" }\nb = { url = "sqlite:///b.db" }',
            'source = "a"\ntarget = "b"\ntables = ["*"]\ninclude = ["**"]',
            "steps.s.include",
            "unknown key 'include'",
        ),
        (
            'a = { url = "sqlite:///a.db" }\nb = { url = "sqlite:///b.db" }',
            'source = "a"\ntarget = "b"\ntables = ["*"]\npart_size = "8MiB"',
            "steps.s.part_size",
            "unknown key 'part_size'",
        ),
        (  # a file source, a table target
            'a = { url = "file:src" }\nb = { url = "sqlite:///b.db" }',
            'source = "a"\ntarget = "b"',
            "steps.s",
            "cannot copy from a file endpoint (a) to a table endpoint (b)",
        ),
        (  # and the other way round
            'a = { url = "sqlite:///a.db" }\nb = { url = "file:dst" }',
            'source = "a"\ntarget = "b"\ntables = ["*"]',
            "steps.s",
            "cannot copy from a table endpoint (a) to a file endpoint (b)",
        ),
        (  # file: takes no options, beside the url or in options
            'a = { url = "file:src", bogus = 1 }\nb = { url = "file:dst" }',
            'source = "a"\ntarget = "b"',
            "connections.a.bogus",
            "unknown key 'bogus'",
        ),
        (
            'a = { url = "file:src" }\nb = { url = "file:dst", options = { bogus = 1 } }',
            'source = "a"\ntarget = "b"',
            "connections.b",
            "unknown option 'bogus' (allowed: none)",
        ),
    ],
)
def test_mixed_and_connection_plan_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    conn: str,
    step: str,
    where: str,
    message: str,
) -> None:
    (tmp_path / "src").mkdir()
    plan = _two_connection_plan(tmp_path, conn, step)
    err = one_line_error(capsys, plan)
    assert re.match(rf"^migrate: error: .*mixed\.toml(:\d+)?: {re.escape(where)}", err), err
    assert message in err
    assert not (tmp_path / "dst").exists() and not (tmp_path / "b.db").exists()


def test_unknown_option_in_the_options_table_names_its_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _two_connection_plan(
        tmp_path,
        'a = { url = "file:src" }\nb = { url = "file:dst", options = { bogus = 1 } }',
        'source = "a"\ntarget = "b"',
    )
    err = one_line_error(capsys, plan)
    assert "connections.b.options.bogus: unknown option 'bogus'" in err, err


def test_a_file_url_with_a_host_is_a_plan_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _two_connection_plan(
        tmp_path,
        'a = { url = "file://fileserver/share" }\nb = { url = "file:dst" }',
        'source = "a"\ntarget = "b"\nvalidate = []',
    )
    code, result = run_json(plan, capsys)
    assert code == 2
    assert result["status"] == "plan error"
    assert "mixed.toml: connections.a.url: file URLs name a local path" in result["message"]
    assert "use nfs:// or sftp:// for a remote host" in result["message"]
    assert not (tmp_path / "dst").exists()


def test_a_connector_plan_error_names_the_plan_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _two_connection_plan(
        tmp_path,
        'a = { url = "file://fileserver/share" }\nb = { url = "file:dst" }',
        'source = "a"\ntarget = "b"\nvalidate = []',
    )
    code, result = run_json(plan, capsys)
    assert code == 2
    assert "mixed.toml" in result["message"], result["message"]


# -- 14. undo records -----------------------------------------------------------------------
def test_undo_records_for_every_file_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    names = ["a.txt", "中文/b.txt", "x y/%+#&=?'.txt", "d/e/f/g.bin"]
    for rel in names:
        write(src, rel, rel.encode())
    plan = file_plan(tmp_path)
    code, result = run_json(plan, capsys)
    assert code == 0
    first = result["run_id"]
    rows = query(plan, "SELECT run_id, step, connection, action, object, detail FROM undo")
    no_row = '{"manifest": null}'  # the path had no manifest row before
    assert sorted(rows) == sorted((first, "share", "dst", "delete_file", n, no_row) for n in names)
    before = query(plan, "SELECT size, md5 FROM files WHERE path='a.txt'")
    write(src, "a.txt", b"changed: overwritten, not created")
    write(src, "new.txt", b"new")
    code, result = run_json(plan, capsys)
    assert code == 0 and files_of(result)["copied"] == 2
    # the plan's own earlier copy is kept aside too before it is overwritten
    assert files_of(result)["backed_up"] == 1
    rows = query(
        plan, "SELECT action, object, detail FROM undo WHERE run_id=? ORDER BY id", result["run_id"]
    )
    assert [(a, o) for a, o, _ in rows] == [("delete_file", "new.txt"), ("restore_file", "a.txt")]
    detail = json.loads(rows[1][2])
    assert detail["backup"].startswith(BACKUP_DIR + "/") and detail["backup"].endswith("/a.txt")
    assert (tmp_path / "dst" / detail["backup"]).read_bytes() == b"a.txt"
    assert (detail["manifest"]["size"], detail["manifest"]["md5"]) == before[0]


def test_a_name_that_is_not_utf8_is_reported_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    write(src, "ok.txt", b"ok")
    try:
        with open(bytes(src) + b"/caf\xe9.txt", "wb") as f:
            f.write(b"a Latin-1 name from an old share")
    except OSError:  # pragma: no cover - a file system that insists on UTF-8
        pytest.skip("this file system does not take non-UTF-8 names")
    code, out = run_text(file_plan(tmp_path), capsys)
    assert "internal error" not in out and "Traceback" not in out, out
    assert code == 1 and "caf" in out
    assert (tmp_path / "dst" / "ok.txt").read_bytes() == b"ok"


def test_a_target_file_the_plan_did_not_create_can_be_restored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "src", "a.txt", b"from the source")
    write(tmp_path / "dst", "a.txt", b"precious, not ours")
    plan = file_plan(tmp_path)
    code, _out = run_text(plan, capsys, "--quiet")
    kept = (tmp_path / "dst" / "a.txt").read_bytes() == b"precious, not ours"
    backups = [p.read_bytes() for p in (tmp_path / "dst").rglob("a.txt")]
    undo = query(plan, "SELECT action FROM undo WHERE object='a.txt'")
    refused = kept and code != 0  # like if_exists = "fail" for tables
    restorable = b"precious, not ours" in backups and ("restore_file",) in undo
    assert refused or restorable, (code, backups, undo)


# -- file validation (validators/files.py) --------------------------------------------------
def test_run_with_count_and_checksum_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    files = {"a.txt": b"a", "中文/b.bin": os.urandom(3000), "z/empty": b""}
    for rel, data in files.items():
        write(src, rel, data)
    plan = file_plan(tmp_path, mode="full", validate=["count", "checksum"])
    code, out = run_text(plan, capsys)  # a full step compares right after its copy
    assert code == 0 and "every count and checksum matches" in out, out
    code, result = run_json(plan, capsys, "--restart")
    assert code == 0, result
    check = files_of(result)["check"]
    assert check["status"] == "equal"
    assert check["method"].startswith("count+checksum")
    assert (check["source_files"], check["target_files"]) == (3, 3)
    assert check["source_bytes"] == check["target_bytes"] == 3001
    assert check["hashed"] == 3
    assert check["missing"] == check["extra"] == check["different"] == []


def test_validation_finds_what_the_copy_did_not_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write(src, "same-size.txt", b"0123456789")
    write(src, "ok.txt", b"ok")
    plan = file_plan(tmp_path, validate=["count", "checksum"])
    code, result = run_json(plan, capsys)
    assert code == 0 and files_of(result)["check"] is None  # live source: not compared
    assert "compared in the cut-over run" in " ".join(files_of(result)["notes"])
    # altered on the target keeping its size and mtime, and a file only the target has
    write(dst, "same-size.txt", b"abcdefghij", (src / "same-size.txt").stat().st_mtime_ns)
    write(dst, "stray.txt", b"only on the target")
    code, result = run_json(plan, capsys, "--cutover")
    assert code == 3, result
    assert result["status"] == "differences"
    assert result["message"] == "file validation found missing, extra or different files"
    f = files_of(result)
    assert f["copied"] == 0 and f["status"] == "differences"
    check = f["check"]
    assert check["status"] == "differences"
    assert check["extra"] == ["stray.txt"] and check["missing"] == []
    assert [(d["path"], d["what"]) for d in check["different"]] == [("same-size.txt", "sha256")]
    # count alone sees the stray file, not the content
    plan = file_plan(tmp_path, validate=["count"])
    code, result = run_json(plan, capsys, "--cutover")
    assert code == 3
    check = files_of(result)["check"]
    assert check["extra"] == ["stray.txt"] and check["different"] == []
    code, out = run_text(plan, capsys, "--cutover")
    assert code == 3 and "files differ (exit 3)" in out, out


def test_count_only_validation_does_not_claim_checksums(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "src", "a.txt", b"a")
    plan = file_plan(tmp_path, mode="full", validate=["count"])
    code, out = run_text(plan, capsys)
    assert code == 0, out
    assert "every count matches" in out, out
    assert "every count and checksum matches" not in out, out


def test_no_validation_does_not_claim_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "src", "a.txt", b"a")
    code, out = run_text(file_plan(tmp_path), capsys)
    assert code == 0, out
    assert "count matches" not in out, out


# -- after the review ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("src", "dst", "why"),
    [
        ("file:share", "file:share", "the same place"),
        ("file:share", "file:share/mirror", "one lies inside the other"),
        ("file:share/mirror", "file:share", "one lies inside the other"),
    ],
)
def test_overlapping_source_and_target_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], src: str, dst: str, why: str
) -> None:
    write(tmp_path / "share", "a.txt", b"precious")
    plan = file_plan(tmp_path, src=src, dst=dst)
    err = one_line_error(capsys, plan)
    assert f"steps.share.target: the target 'dst' and the source 'src' overlap ({why})" in err
    assert (tmp_path / "share" / "a.txt").read_bytes() == b"precious"
    assert not (tmp_path / "share" / ".migrate-backup").exists()


def test_siblings_with_a_common_name_prefix_do_not_overlap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "share", "a.txt", b"a")
    plan = file_plan(tmp_path, src="file:share", dst="file:share2")
    assert run_json(plan, capsys)[0] == 0
    assert (tmp_path / "share2" / "a.txt").read_bytes() == b"a"


@pytest.mark.parametrize("glob", ["[z-a]", "a[b-a]"])
def test_an_invalid_glob_is_a_plan_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], glob: str
) -> None:
    write(tmp_path / "src", "a.txt", b"a")
    err = one_line_error(capsys, file_plan(tmp_path, exclude=[glob]))
    assert f"steps.share.exclude: {glob!r} is not a valid glob" in err


def test_excluding_a_folder_excludes_what_is_inside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for rel in (".snapshot/hourly/a", "x/.snapshot/b", "logs/1.log", "keep/c", "logsx/d"):
        write(src, rel, b"1")
    plan = file_plan(tmp_path, exclude=[".snapshot", "**/.snapshot", "logs/"])
    code, result = run_json(plan, capsys)
    assert code == 0, result
    got = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    assert got == ["keep/c", "logsx/d"]


def test_a_missing_source_folder_is_an_error_not_an_empty_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = file_plan(tmp_path, src="file:not-mounted", mode="full")
    code, result = run_json(plan, capsys)
    assert code == 1, result
    assert "does not exist" in result["message"], result
    # mounted later: the step was never marked done, so the copy happens
    write(tmp_path / "not-mounted", "a.txt", b"a")
    code, result = run_json(plan, capsys)
    assert code == 0 and files_of(result)["copied"] == 1


def test_an_empty_selection_is_not_marked_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "src").mkdir()
    plan = file_plan(tmp_path, mode="full")
    code, result = run_json(plan, capsys)
    assert code == 0
    assert "lists no file" in " ".join(files_of(result)["notes"])
    write(tmp_path / "src", "late.txt", b"late")
    code, result = run_json(plan, capsys)
    assert code == 0 and files_of(result)["copied"] == 1


def test_backups_never_replace_earlier_backups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write(dst, "a.txt", b"the original, not ours")
    write(src, "a.txt", b"new-a")
    plan = file_plan(tmp_path)
    assert run_json(plan, capsys)[0] == 0
    state_of(plan).unlink()  # a lost state file: run ids start again at 1
    write(src, "a.txt", b"newer-a", PAST + 10**9)
    assert run_json(plan, capsys)[0] == 0
    backups = sorted(p.read_bytes() for p in (dst / BACKUP_DIR).rglob("a.txt"))
    assert backups == [b"new-a", b"the original, not ours"]
    assert (dst / "a.txt").read_bytes() == b"newer-a"


def test_file_steps_take_the_default_workers_and_a_part_size_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from migrate.plan import load_plan

    plan = file_plan(tmp_path)
    text = plan.read_text()
    plan.write_text(text.replace("[connections]", "[defaults]\nworkers = 3\n[connections]"))
    assert load_plan(plan).step("share").workers == 3
    plan.write_text(text)
    assert load_plan(plan).step("share").workers == 8
    err = one_line_error(capsys, file_plan(tmp_path, part_size="6GiB"))
    assert "steps.share.part_size: must be at most 5GiB" in err


def test_dry_run_says_what_the_run_would_refuse_or_keep_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write(src, "a.txt", b"a")
    plan = file_plan(tmp_path, deletes="propagate")
    assert run_json(plan, capsys)[0] == 0
    write(dst, "b.txt", b"someone else's")
    write(src, "b.txt", b"ours")
    code, out = run_text(plan, capsys, "--dry-run")
    assert code == 0 and "1 file(s) already on the target would be kept under" in out
    for p in src.iterdir():
        p.unlink()
    code, out = run_text(plan, capsys, "--dry-run")
    assert code == 2 and "STOP: the source lists nothing; the run refuses to delete" in out
    full = file_plan(tmp_path, name="full", mode="full")
    write(src, "c.txt", b"c")
    assert run_json(full, capsys)[0] == 0
    code, out = run_text(full, capsys, "--dry-run")
    assert "copied by an earlier run (mode full): nothing to do" in out, out
