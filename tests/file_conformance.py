"""One conformance suite for every file connector (rclone's ``fstests.Run``).

It checks the contract written in ``connectors/files/base.py`` through the public methods
of an endpoint only. A connector's test module runs it with a small stub::

    class TestLocalConformance(FileConformance):
        @pytest.fixture
        def local_dir(self, tmp_path):
            (root := tmp_path / "root").mkdir()
            return root

        @pytest.fixture
        def endpoint(self, local_dir):
            ep = LocalEndpoint("conf", local_dir.as_uri(), {}, base_dir=local_dir)
            yield ep
            ep.close()

Fixtures the subclass provides:

- ``endpoint``: a fresh, empty endpoint (the ``FileEndpoint`` protocol) for each test;
  the fixture closes it afterwards. Tests use it from several threads at once.
- ``local_dir``: a ``pathlib.Path`` that *is* the endpoint's root seen from this machine
  (what the test writes there, the endpoint lists), or ``None`` when there is no such
  directory (object stores). Tests that plant files, empty directories or symlinks
  directly are skipped when it is ``None``.

Class attributes a subclass may override:

- ``mtime_tolerance_ns``: how far a kept mtime may be from the one given to ``put``
  (default 1 s, for stores that keep seconds; file systems that keep ns set 0);
- ``secrets``: strings (passwords, keys) that must appear neither in ``describe()`` nor
  in an error message;
- ``memory_slack``: bytes allowed on top of 3 x part size in the bounded-memory tests;
- ``churn_rounds``: put+delete rounds per thread (8 threads) in the race test (150: it
  found a race in the local connector 4 runs out of 5 at 40).

The suite's streams are not seekable and have no ``tell`` (like the engine's
``HashingReader`` over a source stream): ``put`` must read them front to back.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import random
import shutil
import threading
import tracemalloc
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from connectors.files.base import (
    BLOCK,
    MIB,
    FileCapabilities,
    FileInfo,
    HashingReader,
    PutResult,
    effective_part_size,
    reserved,
    unsafe_name,
)
from migrate.errors import ConnectorError

PART = 5 * MIB  # part size asked for in every put
THRESHOLD = 8 * MIB  # multipart threshold asked for in every put
BIG = 64 * MIB  # the bounded-memory cases
TIMEOUT = 60.0  # seconds before a listing or a helper thread counts as hung

#: a pseudo-random pattern, not a power of two long, so consecutive parts differ
PATTERN = random.Random(20240601).randbytes(MIB + 7)

#: a short list of names with URL specials, for connector tests that also check them on
#: the server's own disk
URL_SPECIAL_NAMES = [
    "中文/文件 名.txt",
    "space dir/a b.txt",
    "pct/100%.txt",
    "pct/%41%2F.txt",
    "plus/a+b.txt",
    "hash/#1.txt",
    "q/why?.txt",
]

#: names that have broken connectors before: URL quoting, unicode forms, shell specials
SPECIAL_NAMES = [
    "unicodé/naïve résumé.txt",
    "中文目录/文件名.txt",
    "日本語/ファイル.bin",
    "emoji/😀 smile.txt",
    unicodedata.normalize("NFD", "nfd/café.txt"),  # decomposed é: must not be normalised
    "with space/a b  c.txt",
    " leading space.txt",
    "trailing space .txt",
    "percent/100%.txt",
    "percent/%20literal%2F.txt",
    "plus/a+b+c.txt",
    "hash/#tag#.txt",
    "quote/it's.txt",
    'dquote/say "hi".txt',
    "amp/a&b.txt",
    "eq/k=v.txt",
    "question/why?.txt",
    "mixed/?a=1&b=2#frag+x%y.txt",
    "semi/a;b,c@d:e.txt",
    "brackets/[x]{y}(z)!$~.txt",
    "star/*.txt",
    "backslash/a\\b.txt",
    "..foo/bar..",
    ".hidden/.dotfile",
    "tab/a\tb.txt",
]


class SourceFailed(Exception):
    """Raised by a test stream to simulate a source that breaks in the middle."""


# -- streams ------------------------------------------------------------------------------
def pattern_chunks(size: int, chunk: int = 256 * 1024) -> Iterator[memoryview]:
    """``size`` bytes of :data:`PATTERN`, as views (no copies: nothing allocated)."""
    view = memoryview(PATTERN)
    pos = 0
    while pos < size:
        start = pos % len(PATTERN)
        take = min(chunk, len(PATTERN) - start, size - pos)
        yield view[start : start + take]
        pos += take


def pattern_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for piece in pattern_chunks(size):
        digest.update(piece)
    return digest.hexdigest()


def bytes_chunks(data: bytes, chunk: int = 256 * 1024) -> Iterator[memoryview]:
    view = memoryview(data)
    for start in range(0, len(data), chunk):
        yield view[start : start + chunk]


def failing(chunks: Iterable[memoryview], after: int) -> Iterator[memoryview]:
    """The chunks up to ``after`` bytes, then :class:`SourceFailed`."""
    sent = 0
    for piece in chunks:
        if sent + len(piece) >= after:
            yield piece[: after - sent]
            raise SourceFailed(f"source broke after {after} bytes")
        sent += len(piece)
        yield piece
    raise SourceFailed(f"source broke after {sent} bytes")


class IterStream:
    """A non-seekable binary stream over an iterator of chunks (a generator).

    ``read(n)`` returns exactly ``n`` bytes until the end, like a buffered file;
    ``short=True`` returns at most one chunk per call instead, like a socket. After
    ``trigger`` bytes were read, ``on_trigger()`` runs once before the read returns.
    ``sha256``/``bytes_read`` describe what went out.
    """

    def __init__(
        self,
        chunks: Iterable[memoryview | bytes],
        *,
        short: bool = False,
        trigger: int | None = None,
        on_trigger: Callable[[], None] | None = None,
    ) -> None:
        self._it = iter(chunks)
        self._cur = memoryview(b"")
        self._short = short
        self._trigger = trigger
        self._on_trigger = on_trigger
        self._sha = hashlib.sha256()
        self.bytes_read = 0
        self.closed = False

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        while not self._cur:
            try:
                self._cur = memoryview(next(self._it))
            except StopIteration:
                return False
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read of a closed stream")
        want = -1 if n is None or n < 0 else n
        pieces: list[memoryview] = []
        got = 0
        while (want < 0 or got < want) and self._next():
            take = self._cur if want < 0 else self._cur[: want - got]
            pieces.append(take)
            got += len(take)
            self._cur = self._cur[len(take) :]
            if self._short:
                break
        data = b"".join(pieces)
        self._sha.update(data)
        before = self.bytes_read
        self.bytes_read += len(data)
        if (
            self._trigger is not None
            and self._on_trigger is not None
            and before < self._trigger <= self.bytes_read
        ):
            self._on_trigger()
        return data

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.closed = True

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


# -- helpers ------------------------------------------------------------------------------
def put_bytes(
    endpoint: Any,
    path: str,
    data: bytes,
    *,
    mtime_ns: int | None = None,
    **stream_kw: Any,
) -> PutResult:
    stream = IterStream(bytes_chunks(data), **stream_kw)
    result = endpoint.put(
        path, stream, len(data), part_size=PART, multipart_threshold=THRESHOLD, mtime_ns=mtime_ns
    )
    assert isinstance(result, PutResult)
    if result.size is not None:
        assert result.size == len(data), f"put({path!r}) reports size {result.size}"
    return result


def read_stream(stream: Any, block: int = BLOCK) -> Iterator[bytes]:
    try:
        while True:
            data = stream.read(block)
            if not data:
                return
            yield bytes(data)
    finally:
        stream.close()


def read_bytes(endpoint: Any, path: str, block: int = BLOCK) -> bytes:
    return b"".join(read_stream(endpoint.open_read(path), block))


def listing(endpoint: Any, *, follow_symlinks: bool = False) -> dict[str, FileInfo]:
    """The endpoint's listing by path; checks every entry is well formed and unique."""
    out: dict[str, FileInfo] = {}
    for info in endpoint.list(follow_symlinks=follow_symlinks):
        assert isinstance(info, FileInfo), info
        assert isinstance(info.path, str)
        assert unsafe_name(info.path) is None, f"malformed path in listing: {info.path!r}"
        assert info.path not in out, f"listed twice: {info.path!r}"
        assert info.mtime_ns is None or isinstance(info.mtime_ns, int)
        if not info.is_dir:
            assert isinstance(info.size, int) and info.size >= 0, info
        out[info.path] = info
    return out


def files_of(entries: dict[str, FileInfo]) -> dict[str, int]:
    return {p: i.size for p, i in entries.items() if not i.is_dir}


def dirs_of(entries: dict[str, FileInfo]) -> set[str]:
    return {p for p, i in entries.items() if i.is_dir}


def unreserved(entries: dict[str, FileInfo]) -> dict[str, FileInfo]:
    return {p: i for p, i in entries.items() if not reserved(p)}


def in_thread(fn: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """Run ``fn`` in another thread; fail (instead of hanging) when it does not finish."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not finish within {timeout:.0f} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


class PeakMemory:
    """Peak of Python allocations (tracemalloc, every thread) made inside the block."""

    def __enter__(self) -> PeakMemory:
        self._was_tracing = tracemalloc.is_tracing()
        if not self._was_tracing:
            tracemalloc.start()
        self._base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = tracemalloc.get_traced_memory()[1] - self._base
        if not self._was_tracing:
            tracemalloc.stop()


def one_line_naming(exc: BaseException, *words: str) -> None:
    text = str(exc)
    assert "\n" not in text, f"error spans lines: {text!r}"
    for word in words:
        assert word in text, f"error {text!r} does not name {word!r}"


# -- the suite ----------------------------------------------------------------------------
class FileConformance:
    """Every clause of the file endpoint contract; subclass it with ``endpoint`` and
    ``local_dir`` fixtures (see the module docstring)."""

    mtime_tolerance_ns: int = 1_000_000_000
    secrets: tuple[str, ...] = ()
    memory_slack: int = 8 * MIB
    churn_rounds: int = 150

    # -- helpers that need the fixtures --------------------------------------------------
    @staticmethod
    def need_local_dir(local_dir: Path | None) -> Path:
        if local_dir is None:
            pytest.skip("the endpoint's root is not a local directory")
        return local_dir

    def assert_no_secrets(self, text: str) -> None:
        for secret in self.secrets:
            assert secret not in text, "a secret leaked into a message"

    # -- identity ------------------------------------------------------------------------
    def test_declares_kind_name_and_capabilities(self, endpoint: Any) -> None:
        assert type(endpoint).kind == "file"
        assert isinstance(endpoint.name, str) and endpoint.name
        caps = endpoint.capabilities
        assert isinstance(caps, FileCapabilities)
        assert caps.scheme in ("file", "nfs", "sftp", "s3")
        assert set(caps.free_hashes) <= {"etag", "sha256"}
        text = endpoint.describe()
        assert isinstance(text, str) and text and "\n" not in text
        self.assert_no_secrets(text)

    def test_fresh_endpoint_is_empty(self, endpoint: Any) -> None:
        assert listing(endpoint) == {}
        assert endpoint.stat("anything.txt") is None

    # -- the root ------------------------------------------------------------------------
    def test_root_exists_on_a_fresh_endpoint(self, endpoint: Any) -> None:
        assert endpoint.root_exists() is True
        put_bytes(endpoint, "a/b.txt", b"b")
        endpoint.delete("a/b.txt")
        assert endpoint.root_exists() is True, "a root emptied by deletes is still there"

    def test_root_exists_is_false_for_a_missing_root(
        self, endpoint: Any, local_dir: Path | None
    ) -> None:
        """Asked again each time: a root that goes away (an unmounted share) is seen."""
        root = self.need_local_dir(local_dir)
        aside = root.with_name(root.name + ".aside")
        root.rename(aside)
        try:
            assert endpoint.root_exists() is False
            root.write_bytes(b"a file, not a folder")
            try:
                assert endpoint.root_exists() is False
            finally:
                root.unlink()
        finally:
            aside.rename(root)
        assert endpoint.root_exists() is True

    def test_root_exists_after_use_sees_the_root_go(
        self, endpoint: Any, local_dir: Path | None
    ) -> None:
        root = self.need_local_dir(local_dir)
        put_bytes(endpoint, "f.txt", b"f")
        assert listing(endpoint).keys() == {"f.txt"}
        assert endpoint.root_exists() is True
        aside = root.with_name(root.name + ".aside")
        root.rename(aside)
        try:
            assert endpoint.root_exists() is False
        finally:
            aside.rename(root)

    # -- put / stat / list / open_read ---------------------------------------------------
    def test_put_then_stat_list_read(self, endpoint: Any) -> None:
        data = random.Random(1).randbytes(300_001)
        result = put_bytes(endpoint, "hello.bin", data)
        assert result.parts == 0  # far below the multipart threshold
        info = endpoint.stat("hello.bin")
        assert info is not None and info.path == "hello.bin"
        assert info.size == len(data) and not info.is_dir
        entries = listing(endpoint)
        assert files_of(entries) == {"hello.bin": len(data)} and not dirs_of(entries)
        assert read_bytes(endpoint, "hello.bin") == data
        # short, irregular reads give the same bytes
        assert read_bytes(endpoint, "hello.bin", block=4093) == data

    def test_put_creates_parent_directories(self, endpoint: Any) -> None:
        put_bytes(endpoint, "a/b/c/file.txt", b"deep")
        put_bytes(endpoint, "a/other.txt", b"x")
        entries = listing(endpoint)
        assert files_of(entries) == {"a/b/c/file.txt": 4, "a/other.txt": 1}
        assert not dirs_of(entries)  # a directory holding something has no entry
        assert read_bytes(endpoint, "a/b/c/file.txt") == b"deep"

    def test_put_empty_file(self, endpoint: Any) -> None:
        put_bytes(endpoint, "empty.txt", b"")
        put_bytes(endpoint, "sub/empty", b"")
        info = endpoint.stat("empty.txt")
        assert info is not None and info.size == 0 and not info.is_dir
        entries = listing(endpoint)
        assert files_of(entries) == {"empty.txt": 0, "sub/empty": 0} and not dirs_of(entries)
        assert read_bytes(endpoint, "empty.txt") == b""

    def test_overwrite_replaces_content(self, endpoint: Any) -> None:
        long = random.Random(2).randbytes(200_000)
        put_bytes(endpoint, "f.bin", long)
        put_bytes(endpoint, "f.bin", b"short")
        assert read_bytes(endpoint, "f.bin") == b"short"
        assert endpoint.stat("f.bin").size == 5
        put_bytes(endpoint, "f.bin", long + b"!")
        assert read_bytes(endpoint, "f.bin") == long + b"!"
        assert files_of(listing(endpoint)) == {"f.bin": len(long) + 1}

    def test_list_is_recursive_and_exact(self, endpoint: Any) -> None:
        rng = random.Random(3)
        want = {}
        for path in (
            "top.txt",
            "a/1.txt",
            "a/2.txt",
            "a/b/3.txt",
            "a/b/c/4.txt",
            "z/y/x/w/5.txt",
            "a.txt",  # a file beside a directory named like its prefix
            "ab/6.txt",
        ):
            data = rng.randbytes(rng.randrange(0, 5000))
            put_bytes(endpoint, path, data)
            want[path] = len(data)
        entries = listing(endpoint)
        assert files_of(entries) == want
        assert not dirs_of(entries)
        for path, size in want.items():
            info = endpoint.stat(path)
            assert info is not None and info.size == size and not info.is_dir

    def test_stat_of_missing_is_none(self, endpoint: Any) -> None:
        put_bytes(endpoint, "file.txt", b"x")
        assert endpoint.stat("missing.txt") is None
        assert endpoint.stat("missing/deeper.txt") is None
        assert endpoint.stat("file.txt/child") is None  # below a file
        assert endpoint.stat("file.tx") is None  # a prefix of a name is not the name

    # -- directories ---------------------------------------------------------------------
    def test_make_dir_lists_empty_directories(self, endpoint: Any) -> None:
        endpoint.make_dir("empty")
        endpoint.make_dir("x/y/z")
        entries = listing(endpoint)
        assert dirs_of(entries) == {"empty", "x/y/z"}
        assert not files_of(entries)
        info = endpoint.stat("empty")
        assert info is None or info.is_dir

    def test_make_dir_twice_and_on_a_full_directory(self, endpoint: Any) -> None:
        endpoint.make_dir("d")
        endpoint.make_dir("d")  # already there: not an error
        put_bytes(endpoint, "d/f.txt", b"f")
        endpoint.make_dir("d")
        entries = listing(endpoint)
        assert files_of(entries) == {"d/f.txt": 1}
        assert not dirs_of(entries), "a directory that holds a file is not listed as empty"

    def test_planted_empty_directories_are_listed(
        self, endpoint: Any, local_dir: Path | None
    ) -> None:
        root = self.need_local_dir(local_dir)
        (root / "p" / "q").mkdir(parents=True)
        (root / "e").mkdir()
        (root / "p" / "f.txt").write_bytes(b"abc")
        entries = listing(endpoint)
        assert dirs_of(entries) == {"p/q", "e"}
        assert files_of(entries) == {"p/f.txt": 3}

    def test_planted_files_with_special_names(self, endpoint: Any, local_dir: Path | None) -> None:
        root = self.need_local_dir(local_dir)
        for name in SPECIAL_NAMES:
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(name.encode())
        entries = listing(endpoint)
        assert files_of(entries) == {n: len(n.encode()) for n in SPECIAL_NAMES}
        for name in SPECIAL_NAMES:
            assert read_bytes(endpoint, name) == name.encode()

    # -- delete --------------------------------------------------------------------------
    def test_delete_file(self, endpoint: Any) -> None:
        put_bytes(endpoint, "a.txt", b"a")
        put_bytes(endpoint, "b.txt", b"b")
        endpoint.delete("a.txt")
        assert endpoint.stat("a.txt") is None
        assert files_of(listing(endpoint)) == {"b.txt": 1}
        assert read_bytes(endpoint, "b.txt") == b"b"

    def test_delete_missing_is_not_an_error(self, endpoint: Any) -> None:
        endpoint.delete("never-there.txt")
        endpoint.delete("no/such/dir/file.txt")
        put_bytes(endpoint, "once.txt", b"1")
        endpoint.delete("once.txt")
        endpoint.delete("once.txt")
        assert listing(endpoint) == {}

    def test_delete_directory_marker(self, endpoint: Any) -> None:
        endpoint.make_dir("m")
        endpoint.make_dir("keep")
        endpoint.delete("m")
        assert dirs_of(listing(endpoint)) == {"keep"}
        info = endpoint.stat("m")
        assert info is None

    def test_delete_in_subdirectory(self, endpoint: Any) -> None:
        put_bytes(endpoint, "d/f.txt", b"f")
        put_bytes(endpoint, "d/g.txt", b"g")
        endpoint.delete("d/f.txt")
        entries = listing(endpoint)
        assert files_of(entries) == {"d/g.txt": 1} and not dirs_of(entries)
        endpoint.delete("d/g.txt")
        entries = listing(endpoint)
        # a file system may keep (and then list) the emptied folder, or prune it
        assert not files_of(entries) and dirs_of(entries) <= {"d"}

    # -- move ----------------------------------------------------------------------------
    def test_move(self, endpoint: Any) -> None:
        data = random.Random(4).randbytes(70_000)
        put_bytes(endpoint, "src.bin", data)
        put_bytes(endpoint, "other.txt", b"o")
        endpoint.move("src.bin", "x/y/dst.bin")
        assert endpoint.stat("src.bin") is None
        assert endpoint.stat("x/y/dst.bin").size == len(data)
        assert read_bytes(endpoint, "x/y/dst.bin") == data
        assert files_of(listing(endpoint)) == {"x/y/dst.bin": len(data), "other.txt": 1}
        endpoint.move("x/y/dst.bin", "back.bin")
        entries = listing(endpoint)
        assert files_of(entries) == {"back.bin": len(data), "other.txt": 1}
        assert dirs_of(entries) <= {"x/y", "x"}  # the emptied folder may be kept
        assert read_bytes(endpoint, "back.bin") == data

    def test_move_replaces_an_existing_file(self, endpoint: Any) -> None:
        """A rollback moves a backup back over the file a run wrote (file systems
        rename over it, object stores copy over it)."""
        put_bytes(endpoint, "kept/a.txt", b"the previous content")
        put_bytes(endpoint, "a.txt", b"what the run wrote, longer than before")
        endpoint.move("kept/a.txt", "a.txt")
        assert read_bytes(endpoint, "a.txt") == b"the previous content"
        assert endpoint.stat("kept/a.txt") is None
        assert files_of(listing(endpoint)) == {"a.txt": len(b"the previous content")}

    def test_move_of_a_missing_file_fails_and_changes_nothing(self, endpoint: Any) -> None:
        """A rollback (or a copy putting a file back) moves a backup that may not be
        there: the move fails, and the file it would have replaced stays."""
        put_bytes(endpoint, "a.txt", b"what is there")
        with pytest.raises(ConnectorError):
            endpoint.move("kept/missing.txt", "a.txt")
        assert read_bytes(endpoint, "a.txt") == b"what is there"
        assert files_of(listing(endpoint)) == {"a.txt": len(b"what is there")}

    # -- names ---------------------------------------------------------------------------
    def test_special_names_round_trip(self, endpoint: Any) -> None:
        for name in SPECIAL_NAMES:
            put_bytes(endpoint, name, name.encode())
        entries = listing(endpoint)
        assert set(entries) == set(SPECIAL_NAMES), "names must come back exactly"
        assert files_of(entries) == {n: len(n.encode()) for n in SPECIAL_NAMES}
        for name in SPECIAL_NAMES:
            info = endpoint.stat(name)
            assert info is not None and info.path == name and info.size == len(name.encode())
            assert read_bytes(endpoint, name) == name.encode()
        moved = "moved/?&=+#%' 中.txt"
        endpoint.move(SPECIAL_NAMES[0], moved)
        assert read_bytes(endpoint, moved) == SPECIAL_NAMES[0].encode()
        for name in [*SPECIAL_NAMES[1:], moved]:
            endpoint.delete(name)
        assert not files_of(listing(endpoint))

    def test_long_names(self, endpoint: Any) -> None:
        ascii_name = "L" * 196 + ".txt"
        chinese = "中" * 66 + "ab"
        folder = "目" * 66 + "xy"
        names = [ascii_name, chinese, f"{folder}/{ascii_name}", f"{folder}/{chinese}"]
        for segment in (ascii_name, chinese, folder):
            assert len(segment.encode()) == 200
        for name in names:
            put_bytes(endpoint, name, name.encode())
        assert files_of(listing(endpoint)) == {n: len(n.encode()) for n in names}
        for name in names:
            assert read_bytes(endpoint, name) == name.encode()
        # overwrite (a temporary name beside a 200-byte name must still fit)
        put_bytes(endpoint, chinese, b"again")
        assert read_bytes(endpoint, chinese) == b"again"
        endpoint.move(ascii_name, f"{folder}/{'M' * 200}")
        assert endpoint.stat(f"{folder}/{'M' * 200}").size == len(ascii_name)

    def test_deep_tree(self, endpoint: Any) -> None:
        deep = "/".join(f"level{i:02d}" for i in range(20))
        put_bytes(endpoint, f"{deep}/leaf.txt", b"leaf")
        endpoint.make_dir(f"{deep}/empty")
        entries = listing(endpoint)
        assert files_of(entries) == {f"{deep}/leaf.txt": 4}
        assert dirs_of(entries) == {f"{deep}/empty"}
        assert read_bytes(endpoint, f"{deep}/leaf.txt") == b"leaf"
        endpoint.delete(f"{deep}/leaf.txt")
        assert endpoint.stat(f"{deep}/leaf.txt") is None

    # -- atomic put ----------------------------------------------------------------------
    @pytest.mark.parametrize("path", ["new.bin", "fresh/dir/new.bin"])
    def test_failed_put_leaves_nothing(self, endpoint: Any, path: str) -> None:
        stream = IterStream(failing(pattern_chunks(6 * MIB), after=3 * MIB))
        with pytest.raises(Exception) as info:
            endpoint.put(path, stream, 6 * MIB, part_size=PART, multipart_threshold=THRESHOLD)
        assert isinstance(info.value, SourceFailed | ConnectorError), info.value
        assert endpoint.stat(path) is None
        assert listing(endpoint) == {}, "a failed put must leave no entry at all"

    def test_failed_put_keeps_previous_content(self, endpoint: Any) -> None:
        put_bytes(endpoint, "keep/f.bin", b"previous")
        stream = IterStream(failing(pattern_chunks(6 * MIB), after=3 * MIB))
        with pytest.raises(Exception):  # noqa: B017 - any error; the state is what matters
            endpoint.put(
                "keep/f.bin", stream, 6 * MIB, part_size=PART, multipart_threshold=THRESHOLD
            )
        assert read_bytes(endpoint, "keep/f.bin") == b"previous"
        entries = listing(endpoint)
        assert files_of(entries) == {"keep/f.bin": 8} and not dirs_of(entries)

    def test_failed_large_put_leaves_nothing(self, endpoint: Any) -> None:
        size = 12 * MIB  # above the threshold: a multipart upload where the store has one
        put_bytes(endpoint, "old.bin", b"old")
        stream = IterStream(failing(pattern_chunks(size), after=11 * MIB))
        with pytest.raises(Exception):  # noqa: B017
            endpoint.put("big.bin", stream, size, part_size=PART, multipart_threshold=THRESHOLD)
        stream = IterStream(failing(pattern_chunks(size), after=11 * MIB))
        with pytest.raises(Exception):  # noqa: B017
            endpoint.put("old.bin", stream, size, part_size=PART, multipart_threshold=THRESHOLD)
        assert endpoint.stat("big.bin") is None
        assert read_bytes(endpoint, "old.bin") == b"old"
        assert files_of(listing(endpoint)) == {"old.bin": 3}
        assert not dirs_of(listing(endpoint))

    def test_readers_see_old_content_during_put(self, endpoint: Any) -> None:
        put_bytes(endpoint, "doc.txt", b"old")
        seen: dict[str, Any] = {}

        def look() -> None:  # in another thread: a reader while the put is running
            info = endpoint.stat("doc.txt")
            seen["size"] = info.size if info else None
            seen["data"] = read_bytes(endpoint, "doc.txt")
            seen["names"] = set(unreserved(listing(endpoint)))

        new = random.Random(5).randbytes(3 * MIB)
        put_bytes(endpoint, "doc.txt", new, trigger=MIB, on_trigger=lambda: in_thread(look))
        assert seen == {"size": 3, "data": b"old", "names": {"doc.txt"}}
        assert read_bytes(endpoint, "doc.txt") == new

    # -- large objects and hashes --------------------------------------------------------
    def test_large_put(self, endpoint: Any) -> None:
        caps = endpoint.capabilities
        data = random.Random(6).randbytes(12 * MIB)
        put_bytes(endpoint, "big.bin", b"old")
        seen: dict[str, Any] = {}

        def look() -> None:  # parts are being uploaded: the old object is still there
            seen["data"] = read_bytes(endpoint, "big.bin")

        result = put_bytes(
            endpoint, "big.bin", data, trigger=9 * MIB, on_trigger=lambda: in_thread(look)
        )
        assert seen == {"data": b"old"}
        eff = effective_part_size(len(data), PART, caps)
        expected = HashingReader(io.BytesIO(data), part_size=eff)
        expected.read()
        if caps.multipart:
            assert result.parts == -(-len(data) // eff)
            if eff == PART:
                assert result.parts == 3
            assert result.part_size == eff
            assert result.etag == expected.multipart_etag()
        else:
            assert result.parts == 0
        info = endpoint.stat("big.bin")
        assert info is not None and info.size == len(data)
        if "etag" in caps.free_hashes:
            want = expected.multipart_etag() if result.parts else expected.md5
            assert info.etag == want
            assert listing(endpoint)["big.bin"].etag == want
        if "sha256" in caps.free_hashes:
            assert info.sha256 == expected.sha256
        assert read_bytes(endpoint, "big.bin") == data

    def test_single_part_hashes(self, endpoint: Any) -> None:
        caps = endpoint.capabilities
        if not {"etag", "sha256"} & set(caps.free_hashes):
            pytest.skip("the store gives no hash for free")
        for path, data in (("one.bin", random.Random(7).randbytes(MIB + 3)), ("zero", b"")):
            result = put_bytes(endpoint, path, data)
            assert result.parts == 0
            info = endpoint.stat(path)
            entry = listing(endpoint)[path]
            if "etag" in caps.free_hashes:
                md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
                assert result.etag == md5
                assert info.etag == md5 and entry.etag == md5
            if "sha256" in caps.free_hashes:
                sha = hashlib.sha256(data).hexdigest()
                assert info.sha256 == sha and entry.sha256 == sha

    def test_put_from_short_reads(self, endpoint: Any) -> None:
        """A source that returns less than asked (a socket, an SFTP file) loses nothing."""
        data = random.Random(8).randbytes(9 * MIB + 12_345)  # above the threshold
        sizes = itertools.cycle([1, 4093, 65_536, 100_003, 777])
        pieces, pos = [], 0
        while pos < len(data):
            step = next(sizes)
            pieces.append(data[pos : pos + step])
            pos += step
        stream = IterStream(pieces, short=True)
        result = endpoint.put(
            "short.bin", stream, len(data), part_size=PART, multipart_threshold=THRESHOLD
        )
        assert stream.bytes_read == len(data)
        assert endpoint.stat("short.bin").size == len(data)
        assert read_bytes(endpoint, "short.bin") == data
        if result.parts:
            eff = effective_part_size(len(data), PART, endpoint.capabilities)
            digests = [
                hashlib.md5(data[i : i + eff], usedforsecurity=False).digest()
                for i in range(0, len(data), eff)
            ]
            assert result.parts == len(digests)
            joined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
            assert result.etag == f"{joined}-{len(digests)}"

    # -- mtime ---------------------------------------------------------------------------
    def test_mtime_is_kept(self, endpoint: Any) -> None:
        if not endpoint.capabilities.mtime_settable:
            pytest.skip("the endpoint does not keep a given mtime")
        tolerance = self.mtime_tolerance_ns
        for path, data, mtime in (
            ("m.txt", b"mtime", 1_600_000_000_123_456_789),
            ("sub/zero", b"", 1_500_000_000_987_654_321),
            ("m.txt", b"again", 1_300_000_000_000_000_001),  # an overwrite sets it too
        ):
            put_bytes(endpoint, path, data, mtime_ns=mtime)
            info = endpoint.stat(path)
            assert info is not None and info.mtime_ns is not None
            assert abs(info.mtime_ns - mtime) <= tolerance, (path, info.mtime_ns, mtime)
            listed = listing(endpoint)[path].mtime_ns
            assert listed is not None and abs(listed - mtime) <= tolerance

    # -- bounded memory ------------------------------------------------------------------
    def test_put_of_a_large_stream_uses_bounded_memory(self, endpoint: Any) -> None:
        limit = 3 * PART + self.memory_slack
        stream = IterStream(pattern_chunks(BIG))
        with PeakMemory() as mem:
            endpoint.put("huge.bin", stream, BIG, part_size=PART, multipart_threshold=THRESHOLD)
        assert stream.bytes_read == BIG  # the whole stream went through
        assert mem.peak < limit, f"put held {mem.peak / MIB:.1f} MiB (limit {limit / MIB} MiB)"
        assert endpoint.stat("huge.bin").size == BIG
        digest = hashlib.sha256()
        for block in read_stream(endpoint.open_read("huge.bin")):
            digest.update(block)
        assert digest.hexdigest() == stream.sha256

    def test_read_of_a_large_object_uses_bounded_memory(
        self, endpoint: Any, local_dir: Path | None
    ) -> None:
        limit = 2 * PART + self.memory_slack
        if local_dir is not None:  # planting is faster than a put
            with open(local_dir / "huge.bin", "wb") as out:
                for piece in pattern_chunks(BIG):
                    out.write(piece)
        else:
            endpoint.put(
                "huge.bin",
                IterStream(pattern_chunks(BIG)),
                BIG,
                part_size=PART,
                multipart_threshold=THRESHOLD,
            )
        digest = hashlib.sha256()
        total = 0
        with PeakMemory() as mem:
            stream = endpoint.open_read("huge.bin")
            try:
                while block := stream.read(BLOCK):
                    assert len(block) <= BLOCK
                    digest.update(block)
                    total += len(block)
            finally:
                stream.close()
        assert total == BIG
        assert mem.peak < limit, f"read held {mem.peak / MIB:.1f} MiB (limit {limit / MIB} MiB)"
        assert digest.hexdigest() == pattern_sha256(BIG)

    # -- symbolic links ------------------------------------------------------------------
    def plant_links(self, endpoint: Any, local_dir: Path | None, outside: Path) -> Path:
        if not endpoint.capabilities.symlinks:
            pytest.skip("the endpoint has no symbolic links")
        root = self.need_local_dir(local_dir)
        (outside / "secret.txt").write_bytes(b"secret")
        (outside / "dir").mkdir()
        (outside / "dir" / "inside-outside.txt").write_bytes(b"no")
        (root / "real.txt").write_bytes(b"real")
        (root / "sub").mkdir()
        (root / "sub" / "inner.txt").write_bytes(b"inner!")
        os.symlink("real.txt", root / "link_file")  # relative, to a file inside
        os.symlink(root / "sub", root / "link_dir")  # absolute, to a directory inside
        os.symlink(outside / "secret.txt", root / "out_abs_file")
        os.symlink(outside / "dir", root / "out_abs_dir")
        rel = os.path.relpath(outside / "secret.txt", root)
        os.symlink(rel, root / "out_rel_file")
        os.symlink("../..", root / "sub" / "up")  # ../.. from sub: above the root
        os.symlink("missing-target", root / "dangling")
        return root

    def test_symlinks_skipped_without_follow(
        self, endpoint: Any, local_dir: Path | None, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        self.plant_links(endpoint, local_dir, tmp_path_factory.mktemp("outside"))
        entries = in_thread(lambda: listing(endpoint, follow_symlinks=False))
        assert files_of(entries) == {"real.txt": 4, "sub/inner.txt": 6}
        assert not dirs_of(entries)

    def test_symlinks_followed_inside_the_root_only(
        self, endpoint: Any, local_dir: Path | None, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        self.plant_links(endpoint, local_dir, tmp_path_factory.mktemp("outside"))
        entries = in_thread(lambda: listing(endpoint, follow_symlinks=True))
        assert files_of(entries) == {
            "real.txt": 4,
            "sub/inner.txt": 6,
            "link_file": 4,
            "link_dir/inner.txt": 6,
        }
        assert not dirs_of(entries)
        assert read_bytes(endpoint, "link_file") == b"real"
        assert read_bytes(endpoint, "link_dir/inner.txt") == b"inner!"

    def test_writes_never_follow_a_link_out_of_the_root(
        self, endpoint: Any, local_dir: Path | None
    ) -> None:
        """A link in the *target* tree that leads out of the root (absolute or relative)
        is never written, deleted or stat'ed through; links inside the root still work."""
        if not endpoint.capabilities.symlinks:
            pytest.skip("the endpoint has no symbolic links")
        root = self.need_local_dir(local_dir)
        # beside the root (so inside an NFS export too), writable by anyone (an SFTP user)
        outside = root.parent / f"{root.name}-outside"
        outside.mkdir()
        try:
            outside.chmod(0o777)
            (outside / "victim.txt").write_bytes(b"precious")
            (outside / "victim.txt").chmod(0o666)
            os.symlink(outside, root / "abs")
            os.symlink(os.path.relpath(outside, root), root / "rel")
            (root / "inside").mkdir()
            (root / "inside").chmod(0o777)
            os.symlink("inside", root / "ok")
            put_bytes(endpoint, "real.txt", b"real")
            for link in ("abs", "rel"):
                for path in (f"{link}/new.txt", f"{link}/victim.txt", f"{link}/deep/new.txt"):
                    with pytest.raises(ConnectorError) as info:
                        put_bytes(endpoint, path, b"overwritten")
                    one_line_naming(info.value, endpoint.name, path)
                with pytest.raises(ConnectorError):
                    endpoint.make_dir(f"{link}/newdir")
                with pytest.raises(ConnectorError):
                    endpoint.delete(f"{link}/victim.txt")
                with pytest.raises(ConnectorError):
                    endpoint.move("real.txt", f"{link}/moved.txt")
                assert endpoint.stat(f"{link}/victim.txt") is None
            assert sorted(os.listdir(outside)) == ["victim.txt"]
            assert (outside / "victim.txt").read_bytes() == b"precious"
            assert read_bytes(endpoint, "real.txt") == b"real"
            put_bytes(endpoint, "ok/through.txt", b"fine")  # a link inside the root
            assert (root / "inside" / "through.txt").read_bytes() == b"fine"
            info = endpoint.stat("ok/through.txt")
            assert info is not None and info.size == 4
        finally:
            shutil.rmtree(outside, ignore_errors=True)

    def test_symlink_loops_do_not_hang(self, endpoint: Any, local_dir: Path | None) -> None:
        if not endpoint.capabilities.symlinks:
            pytest.skip("the endpoint has no symbolic links")
        root = self.need_local_dir(local_dir)
        (root / "a" / "b").mkdir(parents=True)
        (root / "a" / "b" / "f.txt").write_bytes(b"f")
        os.symlink("self", root / "self")  # a link to itself
        os.symlink("ping", root / "pong")  # two links to each other
        os.symlink("pong", root / "ping")
        os.symlink("..", root / "a" / "b" / "parent")  # a directory link to an ancestor
        os.symlink(".", root / "a" / "here")
        os.symlink(str(root), root / "a" / "root")
        for follow in (False, True):
            entries = in_thread(lambda follow=follow: listing(endpoint, follow_symlinks=follow))
            assert "a/b/f.txt" in entries
            assert not {"self", "ping", "pong"} & set(entries)
            assert len(entries) < 50  # finite, and not grown through the loops
            if not follow:
                assert files_of(entries) == {"a/b/f.txt": 1}

    # -- concurrency ---------------------------------------------------------------------
    def test_concurrent_puts_and_reads(self, endpoint: Any) -> None:
        threads = 8
        barrier = threading.Barrier(threads)

        def work(i: int) -> dict[str, int]:
            rng = random.Random(100 + i)
            mine: dict[str, int] = {}
            barrier.wait(TIMEOUT)
            for j in range(3):
                path = f"t{i}/f{j}.bin" if j else f"shared/{i}.bin"
                data = rng.randbytes(rng.randrange(1, 300_000))
                put_bytes(endpoint, path, data)
                assert read_bytes(endpoint, path) == data
                assert endpoint.stat(path).size == len(data)
                mine[path] = len(data)
            listed = files_of(unreserved(listing(endpoint)))
            assert mine.items() <= listed.items()
            return mine

        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(work, range(threads), timeout=TIMEOUT))
        want = {k: v for r in results for k, v in r.items()}
        entries = listing(endpoint)
        assert files_of(entries) == want and not dirs_of(entries)

    def test_concurrent_puts_deletes_and_lists_in_one_directory(self, endpoint: Any) -> None:
        """Deleting the last file of a folder while another thread puts into it (or lists
        it) must not fail either of them."""
        threads = 8
        barrier = threading.Barrier(threads + 1)

        def churn(i: int) -> None:
            barrier.wait(TIMEOUT)
            for j in range(self.churn_rounds):
                put_bytes(endpoint, f"s/t/{i}-{j}", b"x")
                endpoint.delete(f"s/t/{i}-{j}")

        def lists() -> None:
            barrier.wait(TIMEOUT)
            for _ in range(self.churn_rounds // 4):
                listing(endpoint)

        with ThreadPoolExecutor(threads + 1) as pool:
            futures = [pool.submit(churn, i) for i in range(threads)] + [pool.submit(lists)]
            for future in futures:
                future.result(timeout=TIMEOUT)
        entries = listing(endpoint)
        assert not files_of(entries) and dirs_of(entries) <= {"s", "s/t"}

    def test_listing_survives_concurrent_removal(
        self, endpoint: Any, local_dir: Path | None
    ) -> None:
        """The source stays online: files and folders removed while a listing runs are
        simply not listed."""
        root = self.need_local_dir(local_dir)
        names = {f"d{i}/sub/f.txt" for i in range(10)}
        for name in names:
            (root / name).parent.mkdir(parents=True)
            (root / name).write_bytes(b"f")
        it = iter(endpoint.list())
        first = next(it)
        for name in names - {first.path}:  # remove every other folder
            (root / name).unlink()
            (root / name).parent.rmdir()
            (root / name).parent.parent.rmdir()
        rest = [first, *in_thread(lambda: list(it))]
        assert {i.path for i in rest if not i.is_dir} <= names

    # -- errors --------------------------------------------------------------------------
    def test_errors_name_the_connection_and_path(self, endpoint: Any) -> None:
        with pytest.raises(ConnectorError) as info:
            stream = endpoint.open_read("no-such-file.txt")
            try:  # a store may only find out on the first read
                stream.read(1)
            finally:
                stream.close()
        one_line_naming(info.value, endpoint.name, "no-such-file.txt")
        self.assert_no_secrets(str(info.value))
        with pytest.raises(ConnectorError) as info:
            endpoint.move("no-such-source.txt", "dest.txt")
        one_line_naming(info.value, endpoint.name, "no-such-source.txt")
        self.assert_no_secrets(str(info.value))
        assert listing(endpoint) == {}

    def test_filesystem_write_conflicts_are_connector_errors(self, endpoint: Any) -> None:
        if not endpoint.capabilities.filesystem:
            pytest.skip("object stores have no such conflicts")
        put_bytes(endpoint, "file.txt", b"f")
        put_bytes(endpoint, "dir/inner.txt", b"i")
        with pytest.raises(ConnectorError) as info:
            put_bytes(endpoint, "file.txt/child.txt", b"c")  # below a file
        one_line_naming(info.value, endpoint.name, "file.txt/child.txt")
        with pytest.raises(ConnectorError) as info:
            put_bytes(endpoint, "dir", b"d")  # over a directory
        one_line_naming(info.value, endpoint.name, "dir")
        entries = listing(endpoint)
        assert files_of(entries) == {"file.txt": 1, "dir/inner.txt": 1}
        assert not dirs_of(entries)

    @pytest.mark.parametrize(
        "bad",
        ["../escape.txt", "/abs-escape.txt", "a/../../escape.txt", "a//b.txt", "./a.txt", ""],
    )
    def test_filesystem_refuses_unsafe_names(
        self, endpoint: Any, local_dir: Path | None, bad: str
    ) -> None:
        if not endpoint.capabilities.filesystem:
            pytest.skip("object store keys may hold any of these")
        put_bytes(endpoint, "ok.txt", b"ok")
        with pytest.raises(ConnectorError):
            put_bytes(endpoint, bad, b"bad")
        if bad:
            with pytest.raises(ConnectorError):
                endpoint.make_dir(bad)
            with pytest.raises(ConnectorError):
                endpoint.move("ok.txt", bad)
        with pytest.raises(ConnectorError):
            endpoint.delete(bad)
        assert files_of(listing(endpoint)) == {"ok.txt": 2}
        if local_dir is not None:
            assert not list(local_dir.parent.glob("escape*"))
            assert not list(local_dir.parent.parent.glob("escape*"))
