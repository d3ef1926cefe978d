"""File step validation (``validators.files``) and its console rendering.

Steps come from a real plan file (``load_plan``) with ``file://`` connections; both sides
are real directories under ``tmp_path`` read through ``LocalEndpoint``. The ETag logic
(plain and multipart ETags, part sizes from the manifest) runs against ``MemStore``, a
small in-memory endpoint defined here that implements the file endpoint protocol and
reports the ETags an S3 store would give (computed with ``HashingReader``): it stands in
for no server, it is the input the comparison logic works on.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from rich.console import Console

from connectors.files.base import (
    FileCapabilities,
    FileInfo,
    HashingReader,
    PutResult,
)
from connectors.files.local import LocalEndpoint
from migrate.errors import ConnectorError, InterruptedRun
from migrate.file_report import print_file_check, summary_line
from migrate.plan import Step, load_plan
from migrate.state import State
from validators.files import (
    KEEP_ENTRIES,
    FileCheck,
    FileDiff,
    check_files,
    file_check_to_json,
)


# -- helpers -----------------------------------------------------------------------------
def make_step(tmp_path: Path, extra: str = "") -> Step:
    """The single file step of a plan copying ``tmp_path/src`` to ``tmp_path/tgt``;
    ``extra`` holds more TOML lines for the step."""
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f"""\
version = 1
name = "files-validate"

[connections]
src = {{ url = "{(tmp_path / "src").as_uri()}" }}
tgt = {{ url = "{(tmp_path / "tgt").as_uri()}" }}

[[steps]]
name = "share"
source = "src"
target = "tgt"
workers = 3
{extra}
""",
        encoding="utf-8",
    )
    step = load_plan(plan).step("share")
    assert step.kind == "file"
    return step


def local(tmp_path: Path, side: str) -> LocalEndpoint:
    root = tmp_path / side
    root.mkdir(exist_ok=True)
    return LocalEndpoint(side, root.as_uri(), {}, base_dir=tmp_path)


def write(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        p = root / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def tree(tmp_path: Path, src: dict[str, bytes], tgt: dict[str, bytes]) -> tuple[Any, Any]:
    s, t = local(tmp_path, "src"), local(tmp_path, "tgt")
    write(tmp_path / "src", src)
    write(tmp_path / "tgt", tgt)
    return s, t


FILES = {
    "a.txt": b"alpha\n",
    "docs/b.bin": bytes(range(256)) * 40,
    "docs/deep/c.txt": b"gamma " * 1000,
    "[odd] name.txt": b"brackets",
    "empty.dat": b"",
}


class MemStore:
    """An in-memory object store implementing the file endpoint protocol.

    Objects at or above ``multipart_threshold`` get the multipart ETag of ``part_size``
    parts, the others the MD5 (what S3 reports); ``list_sha`` lists SHA-256s,
    ``stat_sha`` gives them from ``stat`` only. ``reads`` and ``stats`` count the calls;
    ``broken`` paths fail to open with a ConnectorError."""

    kind = "file"

    def __init__(
        self,
        name: str,
        files: dict[str, bytes] | None = None,
        *,
        part_size: int = 0,
        multipart_threshold: int = 1 << 40,
        etags: bool = True,
        list_sha: bool = False,
        stat_sha: bool = False,
        broken: frozenset[str] = frozenset(),
    ) -> None:
        free = (("etag",) if etags else ()) + (("sha256",) if list_sha or stat_sha else ())
        self.name = name
        self.capabilities = FileCapabilities(
            scheme="s3", filesystem=False, free_hashes=free, multipart=True, min_part_size=1000
        )
        self.list_sha, self.stat_sha, self.broken = list_sha, stat_sha, broken
        self.objects: dict[str, tuple[bytes, FileInfo]] = {}
        self.reads = self.stats = 0
        self._lock = threading.Lock()
        for path, data in (files or {}).items():
            self.store(path, data, part_size if len(data) >= multipart_threshold else 0)

    def store(self, path: str, data: bytes, part_size: int = 0) -> None:
        """Keep ``data`` as uploaded in parts of ``part_size`` (0: one request)."""
        reader = HashingReader(io.BytesIO(data), part_size)
        while reader.read(333):
            pass
        etag = reader.multipart_etag() if part_size else reader.md5
        info = FileInfo(path, len(data), 1, etag=etag, sha256=reader.sha256)
        self.objects[path] = (data, info)

    def _shown(self, info: FileInfo, *, listing: bool) -> FileInfo:
        free = self.capabilities.free_hashes
        return FileInfo(
            info.path,
            info.size,
            info.mtime_ns,
            etag=info.etag if "etag" in free else None,
            sha256=info.sha256 if (self.list_sha or (self.stat_sha and not listing)) else None,
        )

    def describe(self) -> str:
        return f"memory store {self.name}"

    def list(self, *, follow_symlinks: bool = False) -> Iterator[FileInfo]:
        for _, info in list(self.objects.values()):
            yield self._shown(info, listing=True)

    def stat(self, path: str) -> FileInfo | None:
        with self._lock:
            self.stats += 1
        got = self.objects.get(path)
        return None if got is None else self._shown(got[1], listing=False)

    def open_read(self, path: str) -> BinaryIO:
        with self._lock:
            self.reads += 1
        if path in self.broken:
            raise ConnectorError(f"{self.name}: cannot read {path}: access denied")
        return io.BytesIO(self.objects[path][0])

    def put(
        self,
        path: str,
        stream: BinaryIO,
        size: int,
        *,
        part_size: int,
        multipart_threshold: int,
        mtime_ns: int | None = None,
    ) -> PutResult:
        data = stream.read()
        self.store(path, data, part_size if size >= multipart_threshold else 0)
        info = self.objects[path][1]
        return PutResult(size=len(data), etag=info.etag, parts=0, part_size=part_size)

    def delete(self, path: str) -> None:
        self.objects.pop(path, None)

    def make_dir(self, path: str) -> None:
        self.objects[path] = (b"", FileInfo(path, 0, 1, is_dir=True))

    def move(self, path: str, new_path: str) -> None:
        data, _ = self.objects.pop(path)
        self.store(new_path, data)

    def close(self) -> None:
        pass


# -- lists and sizes ---------------------------------------------------------------------
def test_equal_trees_are_equal_by_count_and_by_checksum(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    src, tgt = tree(tmp_path, FILES, FILES)
    count = check_files(step, src, tgt, {}, checksum=False)
    assert (count.status, count.method, count.hashed) == ("equal", "count", 0)
    assert count.source_files == count.target_files == len(FILES)
    assert count.source_bytes == count.target_bytes == sum(len(v) for v in FILES.values())
    full = check_files(step, src, tgt, {}, checksum=True)
    assert full.status == "equal", full
    assert full.method == "count+checksum (sha256)"
    assert full.hashed == len(FILES)
    assert full.hash_methods == {"sha256": len(FILES)}
    assert (full.missing, full.extra, full.different, full.error) == ([], [], [], None)


def test_missing_extra_and_size_differences(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    tgt_files = dict(FILES)
    del tgt_files["docs/deep/c.txt"]
    tgt_files["docs/new.txt"] = b"only here"
    tgt_files["a.txt"] = b"alpha, longer\n"
    src, tgt = tree(tmp_path, FILES, tgt_files)
    for checksum in (False, True):
        check = check_files(step, src, tgt, {}, checksum=checksum)
        assert check.status == "differences"
        assert check.missing == ["docs/deep/c.txt"]
        assert check.extra == ["docs/new.txt"]
        assert check.different == [FileDiff("a.txt", "size", 6, 14)]
        # files of another size are not read; the others are
        assert check.hashed == (len(FILES) - 2 if checksum else 0)


def test_same_size_content_difference_found_only_by_checksum(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    changed = dict(FILES, **{"docs/b.bin": bytes(range(256)) * 39 + bytes(256)})
    src, tgt = tree(tmp_path, FILES, changed)
    assert check_files(step, src, tgt, {}, checksum=False).status == "equal"
    check = check_files(step, src, tgt, {}, checksum=True)
    assert check.status == "differences"
    assert [(d.path, d.what) for d in check.different] == [("docs/b.bin", "sha256")]
    diff = check.different[0]
    assert len(diff.source) == len(diff.target) == 64 and diff.source != diff.target
    assert (check.missing, check.extra) == ([], [])


def test_empty_directories_compared_only_when_kept(tmp_path: Path) -> None:
    src, tgt = tree(tmp_path, {"a.txt": b"a", "full/x.txt": b"x"}, {"a.txt": b"a"})
    for d in ("src/empty", "src/gone", "src/kind", "tgt/other", "tgt/full"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "tgt/empty").mkdir()
    (tmp_path / "tgt/kind").write_bytes(b"")  # a file where the source has a directory
    (tmp_path / "tgt/holds").mkdir()
    (tmp_path / "tgt/holds/y.txt").write_bytes(b"y")  # a non-empty dir is present
    (tmp_path / "src/holds").mkdir()

    skip = check_files(make_step(tmp_path), src, tgt, {}, checksum=True)
    assert skip.missing == ["full/x.txt"]
    assert skip.extra == ["holds/y.txt", "kind"]
    assert skip.different == [] and skip.source_dirs == skip.target_dirs == 0

    keep = check_files(make_step(tmp_path, 'empty_dirs = "keep"'), src, tgt, {}, checksum=True)
    assert keep.missing == ["full/x.txt", "gone"]
    # tgt/full is empty while the source's "full" holds a file: not extra, the file is missing
    assert keep.extra == ["holds/y.txt", "other"]
    assert keep.different == [FileDiff("kind", "kind", "directory", "file")]
    assert (keep.source_dirs, keep.target_dirs) == (4, 3)


def test_include_exclude_apply_to_both_sides(tmp_path: Path) -> None:
    globs = 'include = ["**/*.txt"]\nexclude = ["tmp/**"]'
    step = make_step(tmp_path, globs)
    src_files = {"a.txt": b"a", "d/b.txt": b"b", "c.log": b"c", "tmp/t.txt": b"t"}
    tgt_files = {
        "a.txt": b"a",
        "d/b.txt": b"b",
        "other.log": b"not the step's",  # outside the include globs
        "tmp/junk.txt": b"excluded",  # excluded
    }
    src, tgt = tree(tmp_path, src_files, tgt_files)
    check = check_files(step, src, tgt, {}, checksum=True)
    assert check.status == "equal", check
    assert (check.source_files, check.target_files, check.hashed) == (2, 2, 2)
    (tmp_path / "tgt/d/z.txt").write_bytes(b"z")
    (tmp_path / "src/x.txt").write_bytes(b"x")
    check = check_files(step, src, tgt, {}, checksum=True)
    assert (check.missing, check.extra) == (["x.txt"], ["d/z.txt"])


def test_reserved_names_are_ignored(tmp_path: Path) -> None:
    step = make_step(tmp_path, 'empty_dirs = "keep"')
    reserved = {
        ".migrate-tmp-0123456789abcdef": b"half a file",
        "docs/.migrate-tmp-feedfacecafebeef": b"half",
        ".migrate-backup/run-3/a.txt": b"old alpha",
    }
    src, tgt = tree(tmp_path, FILES, {**FILES, **reserved})
    (tmp_path / "tgt/.migrate-backup/run-4").mkdir()
    check = check_files(step, src, tgt, {}, checksum=True)
    assert check.status == "equal", check
    assert check.target_files == len(FILES)
    assert any("2 temporary file(s)" in n for n in check.notes), check.notes


def test_symlinks_follow_the_step_setting(tmp_path: Path) -> None:
    src, tgt = tree(tmp_path, {"a.txt": b"alpha"}, {"a.txt": b"alpha"})
    os.symlink("a.txt", tmp_path / "src/link.txt")
    skip = check_files(make_step(tmp_path), src, tgt, {}, checksum=True)
    assert skip.status == "equal" and skip.source_files == 1
    follow_step = make_step(tmp_path, 'symlinks = "follow"')
    follow = check_files(follow_step, src, tgt, {}, checksum=True)
    assert follow.missing == ["link.txt"]
    # the copy writes the link's content as a file; a link on the target is never followed
    os.symlink("a.txt", tmp_path / "tgt/link.txt")
    assert check_files(follow_step, src, tgt, {}, checksum=True).missing == ["link.txt"]
    (tmp_path / "tgt/link.txt").unlink()
    (tmp_path / "tgt/link.txt").write_bytes(b"alpha")
    assert check_files(follow_step, src, tgt, {}, checksum=True).status == "equal"
    assert check_files(make_step(tmp_path), src, tgt, {}, checksum=True).extra == ["link.txt"]


# -- how content is compared -------------------------------------------------------------
def test_plain_etag_compared_with_the_source_md5_without_reading_the_target(
    tmp_path: Path,
) -> None:
    step = make_step(tmp_path)
    src, _ = tree(tmp_path, FILES, {})
    tgt = MemStore("tgt", FILES)
    check = check_files(step, src, tgt, {}, checksum=True)
    assert check.status == "equal", check
    assert check.hash_methods == {"etag": len(FILES)}
    assert check.method == "count+checksum (etag)"
    assert tgt.reads == 0
    tgt.store("a.txt", b"ALPHA\n")
    check = check_files(step, src, tgt, {}, checksum=True)
    assert [(d.path, d.what) for d in check.different] == [("a.txt", "md5/etag")]
    assert check.different[0].target == tgt.objects["a.txt"][1].etag
    assert tgt.reads == 0


def test_two_stores_with_md5_etags_compare_without_reading(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    src, tgt = MemStore("src", FILES), MemStore("tgt", FILES)
    assert check_files(step, src, tgt, {}, checksum=True).status == "equal"
    tgt.store("docs/b.bin", bytes(len(FILES["docs/b.bin"])))
    check = check_files(step, src, tgt, {}, checksum=True)
    assert [(d.path, d.what) for d in check.different] == [("docs/b.bin", "md5/etag")]
    assert (src.reads, tgt.reads) == (0, 0)


def test_target_sha256_in_listing_is_used(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    src, _ = tree(tmp_path, FILES, {})
    tgt = MemStore("tgt", FILES, etags=False, list_sha=True)
    check = check_files(step, src, tgt, {}, checksum=True)
    assert check.status == "equal" and check.hash_methods == {"sha256": len(FILES)}
    assert (tgt.reads, tgt.stats) == (0, 0)
    tgt.store("a.txt", b"ALPHA\n")
    check = check_files(step, src, tgt, {}, checksum=True)
    assert [(d.path, d.what) for d in check.different] == [("a.txt", "sha256")]
    assert (tgt.reads, tgt.stats) == (0, 0)
    # both listings give SHA-256s: nothing is read on either side
    src_store = MemStore("src", FILES, etags=False, list_sha=True)
    check = check_files(step, src_store, tgt, {}, checksum=True)
    assert [(d.path, d.what) for d in check.different] == [("a.txt", "sha256")]
    assert (src_store.reads, tgt.reads, tgt.stats) == (0, 0, 0)
    # ... also when the target has an MD5 ETag too (which would need the source's MD5)
    both = MemStore("tgt", FILES, list_sha=True)
    assert check_files(step, src_store, both, {}, checksum=True).status == "equal"
    assert (src_store.reads, both.reads, both.stats) == (0, 0, 0)


def test_target_sha256_from_stat_is_used(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    src, _ = tree(tmp_path, FILES, {})
    tgt = MemStore("tgt", FILES, etags=False, stat_sha=True)
    check = check_files(step, src, tgt, {}, checksum=True)
    assert check.status == "equal" and check.hash_methods == {"sha256": len(FILES)}
    assert (tgt.reads, tgt.stats) == (0, len(FILES))
    no_hashes = MemStore("tgt", FILES, etags=False)
    assert check_files(step, src, no_hashes, {}, checksum=True).status == "equal"
    assert no_hashes.reads == len(FILES)  # nothing kept: the target is read


BIG = {f"big/{i}.bin": os.urandom(5000 + i) for i in range(4)} | {"small.txt": b"tiny"}


def test_multipart_etag_recomputed_with_the_manifest_part_size(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    src, _ = tree(tmp_path, BIG, {})
    tgt = MemStore("tgt", BIG, part_size=1000, multipart_threshold=2000)
    assert tgt.objects["big/0.bin"][1].etag.endswith("-5")  # type: ignore[union-attr]
    manifest = {p: {"path": p, "part_size": 1000} for p in BIG if p.startswith("big/")}
    check = check_files(step, src, tgt, manifest, checksum=True)
    assert check.status == "equal", check
    assert check.hash_methods == {"etag": len(BIG)}
    assert check.notes == [] and tgt.reads == 0
    # the same content in the wrong place is found (and confirmed by reading the target)
    data = bytearray(BIG["big/2.bin"])
    data[4321] ^= 1
    tgt.store("big/2.bin", bytes(data), 1000)
    check = check_files(step, src, tgt, manifest, checksum=True)
    assert [(d.path, d.what) for d in check.different] == [("big/2.bin", "sha256")]


def test_multipart_without_manifest_part_size_falls_back_to_reading(tmp_path: Path) -> None:
    step = make_step(tmp_path)  # part_size 5MiB+: one part where the store has five
    src, _ = tree(tmp_path, BIG, {})
    tgt = MemStore("tgt", BIG, part_size=1000, multipart_threshold=2000)
    check = check_files(step, src, tgt, {}, checksum=True)
    assert check.status == "equal", check
    assert check.hash_methods == {"sha256": 4, "etag": 1}
    assert check.method == "count+checksum (sha256, etag)"
    assert tgt.reads == 4
    assert len(check.notes) == 1 and "another part count" in check.notes[0]
    assert check.notes[0].startswith("4 file(s)")


def test_multipart_part_size_with_the_same_count_is_not_a_false_difference(
    tmp_path: Path,
) -> None:
    step = make_step(tmp_path)
    src, _ = tree(tmp_path, BIG, {})
    tgt = MemStore("tgt", BIG, part_size=1000, multipart_threshold=2000)
    # 1001-byte parts also make 5 (or 6) parts of these files: the ETag alone would differ
    manifest = {p: {"path": p, "part_size": 1001} for p in BIG}
    check = check_files(step, src, tgt, manifest, checksum=True)
    assert check.status == "equal", check
    assert any("another part size" in n for n in check.notes), check.notes


def test_manifest_rows_from_the_state_store(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    src, _ = tree(tmp_path, BIG, {})
    tgt = MemStore("tgt", BIG, part_size=1000, multipart_threshold=2000)
    state = State(tmp_path / "state.db", "files-validate")
    try:
        rows = [
            {"path": p, "kind": "file", "size": len(d), "md5": "0" * 32, "part_size": 1000}
            for p, d in BIG.items()
        ]
        state.record_files(step.name, 1, rows)
        manifest = state.manifest(step.name)
    finally:
        state.close()
    check = check_files(step, src, tgt, manifest, checksum=True)
    # the manifest's (wrong) md5 is not used for the verdict, its part size is
    assert check.status == "equal", check
    assert check.hash_methods == {"etag": len(BIG)} and tgt.reads == 0


def test_unreadable_file_is_a_difference_and_the_others_are_compared(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    src, _ = tree(tmp_path, FILES, {})
    tgt = MemStore("tgt", FILES, etags=False, broken=frozenset({"docs/b.bin"}))
    check = check_files(step, src, tgt, {}, checksum=True)
    assert check.status == "differences"
    assert check.different == [
        FileDiff("docs/b.bin", "unreadable", None, "tgt: cannot read docs/b.bin: access denied")
    ]
    assert check.hashed == len(FILES) - 1


def test_a_file_that_changes_while_it_is_compared_is_reported(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    src, _ = tree(tmp_path, FILES, {})
    tgt = MemStore("tgt", FILES, etags=False)
    data, info = tgt.objects["a.txt"]
    tgt.objects["a.txt"] = (data + b"more", info)  # listed with the old size
    check = check_files(step, src, tgt, {}, checksum=True)
    assert [(d.path, d.what, d.source) for d in check.different] == [("a.txt", "unreadable", None)]
    assert "changed while it was compared" in check.different[0].target


def test_a_listing_that_fails_is_an_error(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    (tmp_path / "src").write_bytes(b"not a directory")
    src = LocalEndpoint("src", (tmp_path / "src").as_uri(), {}, base_dir=tmp_path)
    check = check_files(step, src, local(tmp_path, "tgt"), {}, checksum=True)
    assert check.status == "error"
    assert check.error is not None and "is not a directory" in check.error
    assert check.error.startswith("cannot list the source")


def test_stop_interrupts(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    src, tgt = tree(tmp_path, FILES, FILES)
    stop = threading.Event()
    stop.set()
    with pytest.raises(InterruptedRun):
        check_files(step, src, tgt, {}, checksum=True, stop=stop)


# -- JSON and console --------------------------------------------------------------------
def test_json_caps_lists_and_counts_the_rest() -> None:
    check = FileCheck(
        "s",
        "a",
        "b",
        status="differences",
        missing=[f"m{i:05}" for i in range(KEEP_ENTRIES + 7)],
        extra=["x"],
        different=[FileDiff("d", "size", 1, 2)],
    )
    data = file_check_to_json(check)
    assert len(data["missing"]) == KEEP_ENTRIES
    assert data["counts"] == {"missing": KEEP_ENTRIES + 7, "extra": 1, "different": 1}
    assert data["more"] == {"missing": 7, "extra": 0, "different": 0}
    assert data["different"] == [{"path": "d", "what": "size", "source": 1, "target": 2}]
    assert file_check_to_json(check, masked=True) == data


def test_console_report(tmp_path: Path) -> None:
    step = make_step(tmp_path)
    tgt_files = {k: v for k, v in FILES.items() if k != "a.txt"}
    tgt_files["[red]x[/red].txt"] = b"extra"
    tgt_files["docs/b.bin"] = bytes(len(FILES["docs/b.bin"]))
    tgt_files["docs/deep/c.txt"] = b"short"
    src, tgt = tree(tmp_path, FILES, tgt_files)
    data = file_check_to_json(check_files(step, src, tgt, {}, checksum=True))
    console = Console(record=True, width=300, color_system=None)
    print_file_check(console, data, rows_shown=3)
    out = console.export_text()
    assert "step share: 5 files" in out
    assert "differences: 1 missing, 1 extra, 2 different" in out
    assert "checksums of 3 files compared (sha256 3)" in out
    assert "missing    a.txt" in out
    assert "extra      [red]x[/red].txt" in out  # shown as is, not as markup
    assert "sha256     docs/b.bin  " in out
    assert "… and 1 more" in out
    assert "docs/deep/c.txt" not in out
    print_file_check(console, data)
    out = console.export_text()
    assert "size       docs/deep/c.txt  6,000 -> 5 bytes" in out
    assert "more" not in out

    equal = file_check_to_json(check_files(step, src, src, {}, checksum=True))
    assert summary_line(equal) == (
        "step share: 5 files, 15.9 KiB on both sides; checksums of 5 files compared"
        " (sha256 5): equal"
    )
    count = file_check_to_json(check_files(step, src, src, {}, checksum=False))
    assert summary_line(count).endswith("lists and sizes compared (no checksums): equal")


# -- a real S3 store ---------------------------------------------------------------------
@pytest.fixture
def s3_bucket(s3_server: dict[str, str]) -> Iterator[tuple[Any, str]]:
    """A new empty bucket on the test S3 server: (boto3 client, name); emptied and
    removed afterwards."""
    import secrets

    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=s3_server["endpoint"],
        aws_access_key_id=s3_server["access_key"],
        aws_secret_access_key=s3_server["secret_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    bucket = f"mt-{secrets.token_hex(6)}"
    client.create_bucket(Bucket=bucket)
    try:
        yield client, bucket
    finally:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)


def test_against_a_real_s3_store(
    tmp_path: Path,
    s3_server: dict[str, str],
    s3_bucket: tuple[Any, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Copy a tree to S3 with ``migrate run`` (one multipart object), then validate what
    the store really holds: ETags (plain and multipart, with the manifest's part size),
    a same-size change, and an object re-uploaded with other parts."""
    from edge_data import run_json

    from migrate.plan import load_plan as load
    from migrate.registry import endpoint_class

    client, bucket = s3_bucket
    big = os.urandom(11 << 20)  # 3 parts of 5 MiB
    files = {"a.txt": b"alpha\n", "d/b.txt": b"beta " * 100, "big.bin": big, "skip.tmp": b"x"}
    write(tmp_path / "src", files)
    (tmp_path / "src/empty").mkdir()
    plan = tmp_path / "s3.toml"
    plan.write_text(
        f"""\
version = 1
name = "s3-validate"
state = "s3-state.db"
[connections]
src = {{ url = "file:src" }}
[connections.obs]
url = "s3://{bucket}/pre"
endpoint = "{s3_server["endpoint"]}"
provider = "seaweedfs"
access_key = "{s3_server["access_key"]}"
secret_key = "{s3_server["secret_key"]}"
[[steps]]
name = "share"
source = "src"
target = "obs"
mode = "full"
exclude = ["**/*.tmp"]
empty_dirs = "keep"
part_size = "5MiB"
multipart_threshold = "5MiB"
validate = ["count", "checksum"]
""",
        encoding="utf-8",
    )
    code, result = run_json(plan, capsys)
    assert code == 0, result
    (step_json,) = result["steps"]
    check_json = step_json["files"]["check"]
    assert check_json["status"] == "equal", check_json
    assert check_json["hash_methods"] == {"etag": 3}
    assert (check_json["source_dirs"], check_json["target_dirs"]) == (1, 1)

    loaded = load(plan)
    step = loaded.step("share")
    conn = loaded.connections["obs"]
    target = endpoint_class(conn.url)(conn.name, conn.url, conn.options, base_dir=tmp_path)
    source = local(tmp_path, "src")
    state = State(tmp_path / "s3-state.db", "s3-validate", readonly=True)
    try:
        manifest = state.manifest("share")
    finally:
        state.close()
    assert manifest["big.bin"]["parts"] == 3
    try:
        assert check_files(step, source, target, manifest, checksum=True).status == "equal"
        # outside the globs, engine-reserved: not extra; a same-size change: found
        client.put_object(Bucket=bucket, Key="pre/other.tmp", Body=b"not the step's")
        client.put_object(Bucket=bucket, Key="pre/d/.migrate-tmp-0011223344556677", Body=b"")
        client.put_object(Bucket=bucket, Key="pre/d/b.txt", Body=b"BETA " * 100)
        check = check_files(step, source, target, manifest, checksum=True)
        assert [(d.path, d.what) for d in check.different] == [("d/b.txt", "md5/etag")]
        assert (check.missing, check.extra) == ([], [])
        assert check_files(step, source, target, manifest, checksum=False).status == "equal"
        client.put_object(Bucket=bucket, Key="pre/d/b.txt", Body=b"beta " * 100)
        # the same content uploaded in 6 MiB parts: another ETag, still equal
        up = client.create_multipart_upload(Bucket=bucket, Key="pre/big.bin")
        parts = []
        for n, lo in enumerate(range(0, len(big), 6 << 20), 1):
            got = client.upload_part(
                Bucket=bucket,
                Key="pre/big.bin",
                UploadId=up["UploadId"],
                PartNumber=n,
                Body=big[lo : lo + (6 << 20)],
            )
            parts.append({"PartNumber": n, "ETag": got["ETag"]})
        client.complete_multipart_upload(
            Bucket=bucket,
            Key="pre/big.bin",
            UploadId=up["UploadId"],
            MultipartUpload={"Parts": parts},
        )
        check = check_files(step, source, target, manifest, checksum=True)
        assert check.status == "equal", check
        assert check.hash_methods == {"etag": 2, "sha256": 1}
        assert any("another part count" in n and "big.bin" in n for n in check.notes)
        client.delete_object(Bucket=bucket, Key="pre/empty/")
        assert check_files(step, source, target, manifest, checksum=False).missing == ["empty"]
    finally:
        target.close()
