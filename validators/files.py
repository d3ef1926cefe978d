"""Validation of a file step: lists, sizes and (optionally) content of both sides.

Contract:

- Only reads. Nothing is written to either endpoint or to the state store.
- Both sides are listed through :func:`migrate.filecopy.scan` with the step's
  ``include``/``exclude`` (the source following symbolic links as the step says, the
  target never), so engine-reserved names (temporary files of unfinished puts, the
  ``.migrate-backup`` folder) and anything on the target outside the step's globs are
  neither compared nor reported as extra.
- ``count`` compares the lists and the sizes. Empty directories are compared only when
  the step keeps them (``empty_dirs = "keep"``); a path that is a file on one side and a
  directory on the other is then a ``kind`` difference.
- ``checksum`` also compares the content of every file present on both sides with equal
  sizes, ``step.workers`` files at a time, each streamed in blocks (bounded memory), by
  the cheapest comparison that is sound, in this order:

  1. both stores give a plain MD5 ETag (or identical ETags), or both listings give a
     SHA-256: compared without reading anything;
  2. the target gives a plain (single-part) MD5 ETag: the source is read for its MD5;
  3. the target's listing gives a SHA-256: the source is read for its SHA-256;
  4. the target gives a multipart ETag ``<hex>-N``: the source is read and the ETag
     recomputed with the part size recorded in the manifest (else the one a copy would
     use, :func:`~connectors.files.base.effective_part_size`). When that gives another
     part count than N, or another ETag (a different part size can give the same count),
     the target is read too and the SHA-256s decide, with a note;
  5. the target keeps SHA-256s (``free_hashes``) not given by its listing: its ``stat``;
  6. otherwise both sides are read and their SHA-256s compared.

  The manifest's hashes are never used for the verdict (the point is to check what is
  really there); the manifest only supplies part sizes.
- A listing that fails makes the whole check ``error`` (with the one-line message). A
  file that cannot be read is a difference (``what = "unreadable"``) with the message on
  the side that failed; the others are still compared.
- ``stop`` set: the comparison stops and :class:`~migrate.errors.InterruptedRun` is
  raised (between blocks, so a large file does not delay it).
- Exit semantics are the caller's: ``equal`` -> 0, ``differences`` -> 3, ``error`` -> 1.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from connectors.files.base import BLOCK, FileInfo, HashingReader, effective_part_size
from migrate.errors import InterruptedRun, MigrateError
from migrate.filecopy import Scan, scan
from migrate.plan import Step

#: at most this many entries of each list go into the JSON form (all are counted)
KEEP_ENTRIES = 1000
#: how many paths a grouped note names
NOTE_PATHS = 3

_ETAG = re.compile(r"([0-9a-f]{32})(?:-([0-9]+))?\Z")


@dataclass
class FileDiff:
    """One differing file.

    ``what`` is ``size`` (bytes), ``md5/etag`` (the MD5 or ETag), ``sha256``, ``kind``
    (``file`` or ``directory``) or ``unreadable`` (the side that could not be read holds
    the one-line error, the other None)."""

    path: str
    what: str
    source: Any
    target: Any


@dataclass
class FileCheck:
    """The validation of one file step (see the module contract)."""

    step: str
    source: str
    target: str
    status: str = "equal"  # equal | differences | error
    method: str = "count"
    source_files: int = 0
    target_files: int = 0
    source_bytes: int = 0
    target_bytes: int = 0
    #: empty directories compared (only with ``empty_dirs = "keep"``)
    source_dirs: int = 0
    target_dirs: int = 0
    missing: list[str] = field(default_factory=list)  # on the source only
    extra: list[str] = field(default_factory=list)  # on the target only
    different: list[FileDiff] = field(default_factory=list)
    #: files whose content was compared, and how many by each method (etag, sha256)
    hashed: int = 0
    hash_methods: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def differing(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.different)


@dataclass
class _Outcome:
    method: str | None = None  # None: content not compared (unreadable)
    diff: FileDiff | None = None
    note: str | None = None  # a key of _NOTES


_NOTES = {
    "parts": (
        "the target's multipart ETag has another part count than the part size gives;"
        " compared by reading the target"
    ),
    "part_size": (
        "the target's multipart ETag was made with another part size; compared by reading"
        " the target"
    ),
}


# -- the check --------------------------------------------------------------------------
def check_files(
    step: Step,
    source: Any,
    target: Any,
    manifest: Mapping[str, Any],
    *,
    checksum: bool,
    stop: threading.Event | None = None,
) -> FileCheck:
    """Compare what ``step`` selects on ``source`` and ``target`` (module contract).

    ``manifest`` is the step's manifest (``State.manifest``: rows by path, or dicts); only
    its ``part_size`` column is used."""
    started = time.monotonic()
    stop = stop or threading.Event()
    check = FileCheck(step=step.name, source=step.source, target=step.target)
    try:
        try:
            src = scan(step, source)
        except (MigrateError, OSError) as exc:
            return _failed(check, f"cannot list the source: {exc}")
        try:
            tgt = scan(step, target, follow=False)
        except (MigrateError, OSError) as exc:
            return _failed(check, f"cannot list the target: {exc}")
        if stop.is_set():
            raise InterruptedRun("interrupted")
        both = _compare_lists(step, src, tgt, check)
        if tgt.leftovers:
            check.notes.append(
                f"{len(tgt.leftovers):,} temporary file(s) of an unfinished copy on the"
                " target (ignored; the next run removes them)"
            )
        if checksum:
            _compare_content(step, source, target, manifest, both, check, stop)
            used = sorted(check.hash_methods, key=lambda m: (-check.hash_methods[m], m))
            check.method = "count+checksum" + (f" ({', '.join(used)})" if used else "")
        check.missing.sort()
        check.extra.sort()
        check.different.sort(key=lambda d: (d.path, d.what))
        check.status = "differences" if check.differing else "equal"
        return check
    finally:
        check.seconds = time.monotonic() - started


def _failed(check: FileCheck, message: str) -> FileCheck:
    check.status = "error"
    check.error = message
    return check


def _compare_lists(
    step: Step, src: Scan, tgt: Scan, check: FileCheck
) -> list[tuple[FileInfo, FileInfo]]:
    """Fill the counts, ``missing``, ``extra`` and size/kind differences; return the pairs
    of files present on both sides with equal sizes."""
    check.source_files, check.source_bytes = len(src.files), src.bytes
    check.target_files, check.target_bytes = len(tgt.files), tgt.bytes
    keep_dirs = step.empty_dirs == "keep"
    s_dirs = src.dirs if keep_dirs else {}
    t_dirs = tgt.dirs if keep_dirs else {}
    check.source_dirs, check.target_dirs = len(s_dirs), len(t_dirs)
    both: list[tuple[FileInfo, FileInfo]] = []
    for path, s in src.files.items():
        t = tgt.files.get(path)
        if t is None:
            if path in t_dirs:
                check.different.append(FileDiff(path, "kind", "file", "directory"))
            else:
                check.missing.append(path)
        elif s.size != t.size:
            check.different.append(FileDiff(path, "size", s.size, t.size))
        else:
            both.append((s, t))
    for path in tgt.files:
        if path not in src.files and path not in s_dirs:
            check.extra.append(path)
    if keep_dirs:
        # a directory kept empty on one side and holding files on the other is present
        s_parents, t_parents = _parents(src), _parents(tgt)
        for path in s_dirs:
            if path in tgt.files:
                check.different.append(FileDiff(path, "kind", "directory", "file"))
            elif path not in t_dirs and path not in t_parents:
                check.missing.append(path)
        for path in t_dirs:
            if path not in s_dirs and path not in src.files and path not in s_parents:
                check.extra.append(path)
    return both


def _parents(side: Scan) -> set[str]:
    """Every directory that holds a selected file or directory of ``side``."""
    out: set[str] = set()
    for path in (*side.files, *side.dirs):
        while "/" in path:
            path = path.rsplit("/", 1)[0]
            if path in out:
                break
            out.add(path)
    return out


def _compare_content(
    step: Step,
    source: Any,
    target: Any,
    manifest: Mapping[str, Any],
    pairs: list[tuple[FileInfo, FileInfo]],
    check: FileCheck,
    stop: threading.Event,
) -> None:
    """Compare the content of ``pairs`` on ``step.workers`` threads (module contract)."""
    if not pairs:
        return
    halt = threading.Event()  # set on an error here; the caller's ``stop`` is only read
    cmp = _Comparer(step, source, target, manifest, stop, halt)
    noted: dict[str, list[str]] = {}
    workers = max(1, step.workers)
    items: Iterator[tuple[FileInfo, FileInfo]] = iter(sorted(pairs, key=lambda p: p[0].path))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="filecheck") as pool:
        running: dict[Future[_Outcome], str] = {}

        def submit_more() -> None:
            while len(running) < workers * 2 and not cmp.stopped():
                pair = next(items, None)
                if pair is None:
                    return
                running[pool.submit(cmp.compare, *pair)] = pair[0].path

        try:
            submit_more()
            while running:
                finished, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                for fut in finished:
                    path = running.pop(fut)
                    out = fut.result()
                    if out.method is not None:
                        check.hashed += 1
                        check.hash_methods[out.method] = check.hash_methods.get(out.method, 0) + 1
                    if out.diff is not None:
                        check.different.append(out.diff)
                    if out.note is not None:
                        noted.setdefault(out.note, []).append(path)
                if stop.is_set():
                    raise InterruptedRun("interrupted")
                submit_more()
        except BaseException:
            halt.set()  # the workers stop between blocks
            for fut in running:
                fut.cancel()
            raise
    for key, paths in sorted(noted.items()):
        paths.sort()
        shown = ", ".join(paths[:NOTE_PATHS]) + (", …" if len(paths) > NOTE_PATHS else "")
        check.notes.append(f"{len(paths):,} file(s): {_NOTES[key]} ({shown})")


class _Unreadable(Exception):
    def __init__(self, side: str, message: str) -> None:
        super().__init__(message)
        self.side, self.message = side, message


class _Comparer:
    """Chooses and runs the comparison of one file's content (thread-safe: no state
    besides the endpoints, which are used from several threads by contract)."""

    def __init__(
        self,
        step: Step,
        source: Any,
        target: Any,
        manifest: Mapping[str, Any],
        stop: threading.Event,
        halt: threading.Event,
    ) -> None:
        self.step, self.source, self.target = step, source, target
        self.manifest, self.stop, self.halt = manifest, stop, halt
        self.tcaps = target.capabilities
        self.s_etags = "etag" in source.capabilities.free_hashes
        self.t_etags = "etag" in self.tcaps.free_hashes
        self.s_shas = "sha256" in source.capabilities.free_hashes
        self.t_shas = "sha256" in self.tcaps.free_hashes

    def stopped(self) -> bool:
        return self.stop.is_set() or self.halt.is_set()

    def compare(self, s: FileInfo, t: FileInfo) -> _Outcome:
        if self.stopped():
            raise InterruptedRun("interrupted")
        try:
            return self._compare(s, t)
        except _Unreadable as exc:
            src, tgt = (exc.message, None) if exc.side == "source" else (None, exc.message)
            return _Outcome(None, FileDiff(s.path, "unreadable", src, tgt))

    def _compare(self, s: FileInfo, t: FileInfo) -> _Outcome:
        path = s.path
        t_etag = _etag(t.etag) if self.t_etags else None
        s_etag = _etag(s.etag) if self.s_etags else None
        s_sha = _sha(s.sha256) if self.s_shas else None
        t_sha = _sha(t.sha256) if self.t_shas else None
        # 1. nothing to read
        if t_etag and s_etag and (t_etag == s_etag or ("-" not in t_etag + s_etag)):
            return self._verdict(path, "md5/etag", s_etag, t_etag, "etag")
        if t_sha and s_sha:
            return self._verdict(path, "sha256", s_sha, t_sha, "sha256")
        # 2. a plain MD5 ETag: the source's MD5
        if t_etag and "-" not in t_etag:
            md5 = self._read(self.source, s).md5  # a plain source ETag was used above
            return self._verdict(path, "md5/etag", md5, t_etag, "etag")
        # 3. a SHA-256 in the target's listing
        if t_sha:
            return self._verdict(
                path, "sha256", s_sha or self._read(self.source, s).sha256, t_sha, "sha256"
            )
        # 4. a multipart ETag: recompute it from the source
        if t_etag:
            return self._multipart(s, t, t_etag)
        # 5. a SHA-256 the target keeps but does not list
        if self.t_shas:
            info = self._stat(t)
            t_sha = _sha(info.sha256) if info is not None else None
            if t_sha:
                s_sha = s_sha or self._read(self.source, s).sha256
                return self._verdict(path, "sha256", s_sha, t_sha, "sha256")
        # 6. read both
        s_sha = s_sha or self._read(self.source, s).sha256
        return self._verdict(path, "sha256", s_sha, self._read(self.target, t).sha256, "sha256")

    def _multipart(self, s: FileInfo, t: FileInfo, t_etag: str) -> _Outcome:
        parts = int(t_etag.rsplit("-", 1)[1])
        ps = self._part_size(s)
        reader = self._read(self.source, s, ps)
        mine = reader.multipart_etag()
        if mine == t_etag:
            return _Outcome("etag")
        note = "parts" if int(mine.rsplit("-", 1)[1]) != parts else "part_size"
        # The part size may not be the one the object was uploaded with: only the content
        # itself can tell (a sound verdict, never a guess).
        t_sha = self._read(self.target, t).sha256
        out = self._verdict(s.path, "sha256", reader.sha256, t_sha, "sha256")
        if out.diff is None:
            out.note = note
        return out

    def _part_size(self, s: FileInfo) -> int:
        """The part size the copy used: the manifest's, else what a copy would use now."""
        row = self.manifest.get(s.path)
        if row is not None:
            try:
                recorded = row["part_size"]
            except (KeyError, IndexError):
                recorded = None
            if isinstance(recorded, int) and recorded > 0:
                return recorded
        return effective_part_size(s.size, self.step.part_size, self.tcaps)

    @staticmethod
    def _verdict(path: str, what: str, src: str, tgt: str, method: str) -> _Outcome:
        return _Outcome(method, None if src == tgt else FileDiff(path, what, src, tgt))

    def _stat(self, t: FileInfo) -> FileInfo | None:
        try:
            return self.target.stat(t.path)  # type: ignore[no-any-return]
        except (MigrateError, OSError) as exc:
            raise _Unreadable("target", _one_line(exc)) from None

    def _read(self, endpoint: Any, info: FileInfo, part_size: int = 0) -> HashingReader:
        """Stream ``info`` from ``endpoint`` through a HashingReader, block by block."""
        side = "source" if endpoint is self.source else "target"
        try:
            reader = HashingReader(endpoint.open_read(info.path), part_size)
            try:
                while reader.read(BLOCK):
                    if self.stopped():
                        raise InterruptedRun("interrupted")
            finally:
                reader.close()
        except (MigrateError, OSError) as exc:
            if isinstance(exc, InterruptedRun):
                raise
            raise _Unreadable(side, _one_line(exc)) from None
        if reader.bytes_read != info.size:
            raise _Unreadable(
                side,
                f"{endpoint.name}: {info.path}: gave {reader.bytes_read:,} bytes, listed with"
                f" {info.size:,} (changed while it was compared?)",
            )
        return reader


def _etag(value: str | None) -> str | None:
    """An ETag as ``<md5>`` or ``<hex>-<parts>`` (quotes stripped, lower case), or None
    when it is not of that form (a store's opaque ETag says nothing about content)."""
    if not value:
        return None
    text = value.strip().strip('"').lower()
    return text if _ETAG.match(text) else None


def _sha(value: str | None) -> str | None:
    if not value:
        return None
    text = value.strip().lower()
    return text if re.fullmatch(r"[0-9a-f]{64}", text) else None


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text.strip() else type(exc).__name__


# -- JSON -------------------------------------------------------------------------------
def file_check_to_json(check: FileCheck, masked: bool = False) -> dict[str, Any]:
    """A file step's validation as JSON (what ``--json``, the state store and the reports
    hold). Each list keeps its first :data:`KEEP_ENTRIES` entries; ``counts`` has the
    totals and ``more`` how many were left out. Paths are not secret, so ``masked``
    (kept for symmetry with ``check_to_json``) hides nothing here."""
    del masked
    lists = {"missing": check.missing, "extra": check.extra, "different": check.different}
    return {
        "step": check.step,
        "source": check.source,
        "target": check.target,
        "status": check.status,
        "method": check.method,
        "source_files": check.source_files,
        "target_files": check.target_files,
        "source_bytes": check.source_bytes,
        "target_bytes": check.target_bytes,
        "source_dirs": check.source_dirs,
        "target_dirs": check.target_dirs,
        "hashed": check.hashed,
        "hash_methods": dict(check.hash_methods),
        "missing": list(check.missing[:KEEP_ENTRIES]),
        "extra": list(check.extra[:KEEP_ENTRIES]),
        "different": [
            {"path": d.path, "what": d.what, "source": d.source, "target": d.target}
            for d in check.different[:KEEP_ENTRIES]
        ],
        "counts": {k: len(v) for k, v in lists.items()},
        "more": {k: max(0, len(v) - KEEP_ENTRIES) for k, v in lists.items()},
        "error": check.error,
        "seconds": round(check.seconds, 3),
        "notes": list(check.notes),
    }
