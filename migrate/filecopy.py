"""File steps: copy a tree from one file endpoint to another, then keep it in step.

Contracts:

- The first run copies every file the step selects (``include``/``exclude`` globs) and
  records each in the step's manifest (path, source size and mtime, MD5 and SHA-256 of the
  bytes copied, what the target reported). Later runs (``mode = "full+incremental"``) copy
  only files that are new, whose size or mtime changed (``compare = "hash"``: whose
  content hash changed), or that are missing or altered on the target; with
  ``deletes = "propagate"`` a file removed at the source is deleted on the target.
- Rollback: before every change to the target an undo record says how to undo it (see
  :mod:`migrate.fileundo`), each with the path's manifest row before the change
  (``detail.manifest``, null when it had none): a file the run creates → ``delete_file``;
  a file already there that the run overwrites (whoever wrote it, this plan's earlier
  runs included) or deletes → moved first to the run's backup folder
  ``.migrate-backup/<time>-<step>-<random>/<path>`` → ``restore_file``; a kept empty
  directory the run makes → ``delete_dir``, one it deletes → ``make_dir``. An overwrite
  that does not complete (the file cannot be read or written, keeps changing, does not
  verify, or the run is interrupted) moves the previous copy back and marks its record
  undone, so a failed file keeps its previous copy on the target (a run killed in
  between leaves it in the backup folder, where a rollback finds it; the next run
  copies the file again).
- Resume: the manifest is written as files finish, so a killed run copies again only the
  files that were not recorded; a put is never visible half-written under its final name
  (connectors' contract), and the temporary names or incomplete uploads a killed run left
  are removed at the next start (the run holds the plan's lock).
- Integrity: MD5 and SHA-256 are computed while the bytes stream through (no second read)
  and checked against what the target reports: the ETag of a single-part upload, the
  multipart ETag recomputed from the part size, or a SHA-256 the store returns; a file
  system target reports its size after the rename. A source file whose size or mtime
  changed while it was copied (or that did not give the listed number of bytes) is copied
  again, up to three attempts.
- Names a file system target cannot hold safely (``..``, a leading ``/``) are refused and
  reported, never written; symbolic links are followed or skipped as the step says and
  never lead outside the source root.
- Memory is bounded: each worker holds at most one part (or one file below the multipart
  threshold) at a time.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from connectors.files.base import (
    BACKUP_DIR,
    TMP_PREFIX,
    FileInfo,
    HashingReader,
    effective_part_size,
    expected_etag,
    reserved,
    unsafe_name,
)
from migrate.copier import _failpoint
from migrate.errors import ConnectorError, InterruptedRun, MigrateError
from migrate.globs import PathFilter
from migrate.plan import Step

#: attempts per file: a file that keeps changing while it is copied fails after these
ATTEMPTS = 3
#: manifest rows are committed after this many files or seconds, whichever comes first
FLUSH_FILES = 500
FLUSH_SECONDS = 2.0


# -- scanning -------------------------------------------------------------------------
@dataclass
class Scan:
    """A filtered listing of one side of a file step."""

    files: dict[str, FileInfo] = field(default_factory=dict)
    dirs: dict[str, FileInfo] = field(default_factory=dict)
    #: every path listed before include/exclude (deletes look here, so a file that a
    #: changed exclude pattern hides is not deleted from the target)
    listed: set[str] = field(default_factory=set)
    refused: list[tuple[str, str]] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # temp names of unfinished puts

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files.values())


def scan(
    step: Step, endpoint: Any, *, refuse_unsafe: bool = False, follow: bool | None = None
) -> Scan:
    """List ``endpoint`` and keep what ``step`` selects. Engine-reserved names are left
    out (their temp files are collected in ``leftovers``); with ``refuse_unsafe``, names a
    file system target could not hold safely are moved to ``refused``."""
    keep = PathFilter(step.include, step.exclude)
    out = Scan()
    follow = step.symlinks == "follow" if follow is None else follow
    for info in endpoint.list(follow_symlinks=follow):
        path = info.path
        if reserved(path):
            if path.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
                out.leftovers.append(path)
            continue
        out.listed.add(path)
        if not keep(path):
            continue
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:  # a file system name in another encoding
            shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            out.refused.append((shown, "the name is not valid UTF-8"))
            continue
        if refuse_unsafe and (why := unsafe_name(path)):
            out.refused.append((path, why))
            continue
        (out.dirs if info.is_dir else out.files)[path] = info
    return out


def plan_transfer(
    step: Step, src: Scan, tgt: Scan, manifest: dict[str, Any], target_caps: Any = None
) -> tuple[list[tuple[FileInfo, bool]], int]:
    """The files to copy (with whether only a content hash can tell), and how many are
    unchanged. A file counts as altered on the target when its size (or ETag) is not what
    the manifest recorded, or, on targets that keep the source's mtime, its mtime (to the
    second) is not."""
    keeps_mtime = bool(target_caps is not None and target_caps.mtime_settable)
    todo: list[tuple[FileInfo, bool]] = []
    unchanged = 0
    for path, info in sorted(src.files.items()):
        m, t = manifest.get(path), tgt.files.get(path)
        if (
            m is None
            or m["kind"] != "file"
            or t is None
            or t.size != m["size"]
            or info.size != m["size"]
            or (t.etag and m["etag"] and t.etag != m["etag"])
            or (keeps_mtime and _seconds(t.mtime_ns) != _seconds(m["mtime_ns"]))
        ):
            todo.append((info, False))
        elif step.compare == "hash":
            todo.append((info, True))  # the worker hashes it and copies when it differs
        elif info.mtime_ns != m["mtime_ns"]:
            todo.append((info, False))
        else:
            unchanged += 1
    return todo, unchanged


def _seconds(ns: int | None) -> int | None:
    return None if ns is None else ns // 1_000_000_000


def removed_at_source(manifest: dict[str, Any], src: Scan) -> list[str]:
    """Manifest paths the source no longer lists (a kept empty directory that has since
    gained files is still there)."""
    parents = {p.rsplit("/", i)[0] for p in src.listed for i in range(1, p.count("/") + 1)}
    return sorted(
        p
        for p, m in manifest.items()
        if p not in src.listed and not (m["kind"] == "dir" and p in parents)
    )


# -- results --------------------------------------------------------------------------
@dataclass
class FileStepResult:
    """What a file step did in one run (shown by the report, stored as JSON)."""

    status: str = "done"  # done | skipped | failed | differences | interrupted
    source_files: int = 0
    source_bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    unchanged: int = 0
    dirs: int = 0
    deleted: int = 0
    recopied: int = 0
    server_side: int = 0
    cleaned: int = 0
    #: files already on the target, moved to the backup folder before being overwritten
    backed_up: int = 0
    verified: dict[str, int] = field(default_factory=dict)
    refused: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: the file validation (``validate = ["count", "checksum"]``), as ``file_check_to_json``
    check: dict[str, Any] | None = None


class FileFailure(MigrateError):
    """One file could not be copied; the others go on. ``forget``: the target's copy may
    be wrong, so the manifest row goes and the next run copies the file again."""

    def __init__(self, message: str, *, forget: bool = False) -> None:
        super().__init__(message)
        self.forget = forget


@dataclass
class _Done:
    row: dict[str, Any]
    recopied: bool
    server_side: bool
    verified: str
    backed_up: bool = False


class FileCopier:
    """Runs one file step (see the module contract)."""

    def __init__(
        self,
        step: Step,
        source: Any,
        target: Any,
        state: Any,
        run_id: int,
        progress: Any,
        stop: threading.Event,
    ) -> None:
        self.step, self.source, self.target = step, source, target
        self.state, self.run_id, self.progress, self.stop = state, run_id, progress, stop
        self.tcaps = target.capabilities
        self.server_copy = bool(
            self.tcaps.server_copy
            and hasattr(target, "can_copy_from")
            and target.can_copy_from(source)
        )
        self.result = FileStepResult()
        #: this run's backup folder on the target: unique, so no backup ever replaces
        #: another (run ids restart with a new state file; steps may share a target)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.backup_root = f"{BACKUP_DIR}/{stamp}-{step.name}-{uuid.uuid4().hex[:8]}"
        self._pending: list[dict[str, Any]] = []
        self._undo: list[tuple[str, str, str, dict[str, Any] | None]] = []
        #: target files this run overwrites, with their manifest rows (moved aside first)
        self._existing: dict[str, dict[str, Any] | None] = {}
        #: a pilot (``migrate check --pilot N``) copies only the first N files to copy
        self.limit: int | None = None
        self._removed: list[str] = []
        self._last_flush = time.monotonic()
        self._started = 0
        self._aside = 0  # files moved aside so far (the ``before-aside:N`` test hook)
        self._new: set[str] = set()  # paths this run creates (absent on the target before)
        self._count_lock = threading.Lock()
        #: set when this step stops early (an error, an interrupt): workers start no file
        self._abort = threading.Event()

    # -- the step -------------------------------------------------------------------
    def run(self, restart: bool = False) -> FileStepResult:
        """Run the step; ``self.result`` holds what was done so far even when this raises."""
        step, state = self.step, self.state
        res = self.result
        started = time.monotonic()
        as_of = _now()  # the target holds the source as of (at least) this moment
        if restart:
            state.reset_file_step(step.name)
        row = state.file_step(step.name)
        if step.mode == "full" and row is not None and row["status"] == "done":
            res.status = "skipped"
            res.source_files, res.source_bytes = row["files"] or 0, row["bytes"] or 0
            res.notes.append("copied by an earlier run (mode full): nothing to do")
            return res
        state.set_file_step(step.name, status=row["status"] if row else "copying")
        if hasattr(self.target, "abort_stale_uploads"):
            res.cleaned += self.target.abort_stale_uploads()
        src = scan(step, self.source, refuse_unsafe=self.tcaps.filesystem)
        if not src.listed:
            exists = getattr(self.source, "root_exists", None)
            if exists is not None and not exists():
                raise ConnectorError(
                    f"{step.source}: the source {self.source.describe()} does not exist"
                    " (is the share mounted, the path right?)"
                )
        tgt = scan(step, self.target, follow=False)
        res.source_files, res.source_bytes = len(src.files), src.bytes
        res.refused = src.refused
        for path in tgt.leftovers:  # a killed run's temporary files
            self.target.delete(path)
            res.cleaned += 1
        manifest = state.manifest(step.name)
        try:
            if step.deletes == "propagate":
                self._propagate_deletes(src, tgt, manifest, res)
            todo, res.unchanged = plan_transfer(step, src, tgt, manifest, self.tcaps)
            if self.limit is not None:  # a pilot: the first files only
                todo = todo[: self.limit]
            self._copy(todo, tgt, manifest, res)
            if step.empty_dirs == "keep" and self.limit is None:
                self._keep_dirs(src, tgt, manifest, res)
        except (KeyboardInterrupt, InterruptedRun):
            self._flush(force=True)
            res.status = "interrupted"
            raise
        finally:
            self._flush(force=True)
            res.seconds = time.monotonic() - started
        if res.failed or res.refused:
            res.status = "failed"
        if not src.files and not src.dirs:
            res.notes.append(
                "the source lists no file the step selects: check the source path and the"
                " include/exclude globs (a mode full step is not marked done)"
            )
        state.set_file_step(
            step.name,
            status="done" if res.status == "done" and (src.files or src.dirs) else "copying",
            runs=(row["runs"] if row else 0) + 1,
            files=res.source_files,
            bytes=res.source_bytes,
            last_copied=res.copied,
            last_bytes=res.copied_bytes,
            last_deleted=res.deleted,
            last_seconds=round(res.seconds, 3),
            last_run_at=_now(),
            as_of=as_of,
        )
        return res

    # -- copying --------------------------------------------------------------------
    def _copy(
        self,
        todo: list[tuple[FileInfo, bool]],
        tgt: Scan,
        manifest: dict[str, Any],
        res: FileStepResult,
    ) -> None:
        step = self.step
        total = len(todo)
        # Undo records go in before the files: one per file this run will create.
        self._undo.extend(
            (step.target, "delete_file", info.path, {"manifest": _row(manifest.get(info.path))})
            for info, _ in todo
            if info.path not in tgt.files
        )
        self._flush(force=True)
        # Every file already on the target is moved aside before it is overwritten, also
        # one this plan wrote in an earlier run (each by its worker, just before its own
        # put: an error leaves the others in place); with the manifest row it had.
        self._existing = {
            info.path: _row(manifest.get(info.path)) for info, _ in todo if info.path in tgt.files
        }
        self._new = {info.path for info, _ in todo if info.path not in tgt.files}
        self.progress.table_started(step.name, "files", total, 0)
        started = time.monotonic()
        manifest_md5 = {}
        if any(check for _, check in todo):
            manifest_md5 = {p: r["md5"] for p, r in self.state.manifest(step.name).items()}
        done_files = 0
        with ThreadPoolExecutor(max_workers=step.workers, thread_name_prefix="files") as pool:
            items = iter(todo)
            running: dict[Future[_Done | None], FileInfo] = {}

            def submit_more() -> None:
                while len(running) < step.workers * 2 and not self.stop.is_set():
                    item = next(items, None)
                    if item is None:
                        return
                    info, check = item
                    fut = pool.submit(self._one, info, check, manifest_md5.get(info.path))
                    running[fut] = info

            try:
                submit_more()
                while running:
                    finished, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        info = running.pop(fut)
                        done_files += self._collect(fut, info, res)
                    self._flush()
                    if self.stop.is_set():
                        raise InterruptedRun("interrupted")
                    submit_more()
            except BaseException:
                # Workers stop at their next block; files that finished meanwhile are
                # recorded, so the next run does not copy them again.
                self._abort.set()
                for fut in running:
                    fut.cancel()
                for fut, info in running.items():
                    if not fut.cancelled():
                        self._collect(fut, info, res)  # waits for it
                raise
        self.progress.table_finished(step.name, "files", done_files, time.monotonic() - started)

    def _collect(self, fut: Future[_Done | None], info: FileInfo, res: FileStepResult) -> int:
        """Account for one finished file; returns 1 when it counts as done."""
        try:
            done = fut.result()
        except (InterruptedRun, KeyboardInterrupt):
            return 0
        except (FileFailure, ConnectorError) as exc:
            res.failed.append((info.path, str(exc)))
            self.progress.message(f"step {self.step.name}: {exc}")
            if isinstance(exc, FileFailure) and exc.forget:  # the target's copy is not known good
                self._removed.append(info.path)
            return 0
        self.progress.advance(self.step.name, "files", 1)
        if done is None:
            res.unchanged += 1
            return 1
        self._pending.append(done.row)
        res.copied += 1
        res.copied_bytes += done.row["size"]
        res.recopied += done.recopied
        res.server_side += done.server_side
        res.backed_up += done.backed_up
        res.verified[done.verified] = res.verified.get(done.verified, 0) + 1
        return 1

    def _guarded(self, reader: HashingReader, seq: int, size: int) -> Any:
        """The stream a put reads: it stops (InterruptedRun) at the next block once the run
        is interrupted or the step gives up, so a put in flight is abandoned, not waited for."""
        copier = self

        class _Guard:
            def read(self, n: int = -1) -> bytes:
                if copier.stop.is_set() or copier._abort.is_set():
                    raise InterruptedRun("interrupted")
                return reader.read(n)

            def close(self) -> None:
                reader.close()

        return _failpoint_reader(_Guard(), seq, size)

    def _set_aside(self, path: str) -> int | None:
        """Move a target file about to be overwritten to the backup folder, recording the
        undo first; returns the record's id when one was moved (None: nothing there)."""
        with self._count_lock:
            if path not in self._existing:
                return None
            before = self._existing.pop(path)
        backup = f"{self.backup_root}/{path}"
        record = self.state.record_undo(
            self.run_id,
            self.step.name,
            self.step.target,
            "restore_file",
            path,
            {"backup": backup, "manifest": before},
        )
        with self._count_lock:
            self._aside += 1
            seq = self._aside
        _failpoint("before-aside", seq)  # test hook: killed between the record and the move
        try:
            self.target.move(path, backup)
        except BaseException:
            self._put_back(path, record)
            raise
        return record

    def _put_back(self, path: str, record: int) -> bool:
        """The copy of a file moved aside did not complete: move the previous copy back
        from the backup folder (replacing whatever a failed attempt left) and mark the
        record undone, so the target and the manifest (never changed for this file)
        agree again. True when it was put back; False when it cannot be (the record
        then stays for a rollback, and the next run copies the file again)."""
        backup = f"{self.backup_root}/{path}"
        try:
            if self.target.stat(backup) is not None:
                self.target.move(backup, path)
            elif self.target.stat(path) is None:
                return False  # neither there: leave the record to say where it went
        except (ConnectorError, OSError):
            return False
        self.state.mark_undo([record], "undone")
        return True

    def _one(self, info: FileInfo, check_hash: bool, known_md5: str | None) -> _Done | None:
        """Copy one file (or, with ``check_hash``, first see whether its content changed).

        Returns None when the content hash shows nothing to copy. A read or write error
        of this file is a :class:`FileFailure` (the other files go on)."""
        if self.stop.is_set() or self._abort.is_set():
            raise InterruptedRun("interrupted")
        try:
            return self._copy_one(info, check_hash, known_md5)
        except OSError as exc:  # a stream's own read error, not wrapped by its connector
            raise FileFailure(f"{info.path}: {exc.strerror or exc}") from None

    def _copy_one(self, info: FileInfo, check_hash: bool, known_md5: str | None) -> _Done | None:
        path = info.path
        if check_hash and known_md5:
            reader = HashingReader(self.source.open_read(path))
            try:
                while reader.read(1 << 20):
                    pass
            finally:
                reader.close()
            if reader.md5 == known_md5:
                return None
        aside = self._set_aside(path)
        try:
            return self._attempts(info, aside is not None)
        except BaseException as exc:
            # An overwrite that did not complete leaves the previous copy, not nothing
            # (an interrupted run or a file that could not be read or written).
            if aside is None or not self._put_back(path, aside):
                raise
            if isinstance(exc, OSError):  # a stream's own read error
                exc = FileFailure(f"{path}: {exc.strerror or exc}")
            if isinstance(exc, (FileFailure, ConnectorError)):
                raise FileFailure(f"{exc}; the previous copy was put back") from None
            raise

    def _attempts(self, info: FileInfo, backed_up: bool) -> _Done:
        """Copy one file (its target copy, if any, already moved aside), trying again
        when it changes at the source or does not verify."""
        path = info.path
        recopied = False
        last_problem = ""
        for _attempt in range(ATTEMPTS):
            if self.server_copy:
                done, problem = self._server_copy(info)
                if done is not None:
                    done.recopied, done.backed_up = recopied, backed_up
                    return done
                recopied, last_problem = True, problem
                info = self.source.stat(path) or info
                continue
            multipart = self.tcaps.multipart and (
                info.size >= self.step.multipart_threshold or info.size > self.tcaps.max_single_put
            )
            ps = effective_part_size(info.size, self.step.part_size, self.tcaps) if multipart else 0
            reader = HashingReader(self.source.open_read(path), ps, limit=info.size)
            with self._count_lock:
                self._started += 1
                seq = self._started
            try:
                put = self.target.put(
                    path,
                    self._guarded(reader, seq, info.size),  # type: ignore[arg-type]
                    info.size,
                    part_size=self.step.part_size,
                    multipart_threshold=self.step.multipart_threshold,
                    mtime_ns=info.mtime_ns if self.tcaps.mtime_settable else None,
                )
            finally:
                reader.close()
            after = self.source.stat(path)
            if after is None and reader.bytes_read != info.size:
                self._drop_new(path)
                raise FileFailure(
                    f"{path}: removed from the source while it was copied", forget=True
                )
            if after is not None and (
                after.size != info.size
                or after.mtime_ns != info.mtime_ns
                or reader.bytes_read != info.size
            ):
                recopied = True
                last_problem = "changed at the source while it was copied"
                info = after
                continue
            problem, method = self._verify(reader, put)
            if problem:
                recopied = True
                last_problem = problem
                continue
            _failpoint("after-file", seq)
            return _Done(
                {
                    "path": path,
                    "kind": "file",
                    "size": info.size,
                    "mtime_ns": info.mtime_ns,
                    "md5": reader.md5,
                    "sha256": reader.sha256,
                    "etag": put.etag,
                    "parts": put.parts,
                    "part_size": put.part_size or ps,
                },
                recopied=recopied,
                server_side=False,
                verified=method,
                backed_up=backed_up,
            )
        self._drop_new(path)
        raise FileFailure(f"{path}: {last_problem} ({ATTEMPTS} attempts)", forget=True)

    def _drop_new(self, path: str) -> None:
        """Remove a copy this run created that is not known good (a failed file)."""
        if path in self._new:
            try:
                self.target.delete(path)
            except ConnectorError:
                pass  # the manifest forgets it either way: the next run copies it again

    def _verify(self, reader: HashingReader, put: Any) -> tuple[str | None, str]:
        """A mismatch between what was streamed and what the target reports, and the
        strongest method that checked it."""
        if put.size is not None and put.size != reader.bytes_read:
            return (
                f"the target holds {put.size} bytes after writing {reader.bytes_read}",
                "size",
            )
        if put.sha256:
            if put.sha256.lower() != reader.sha256:
                return "the target's SHA-256 differs from the bytes sent", "sha256"
            return None, "sha256"
        if put.etag and "etag" in self.tcaps.free_hashes:
            want = expected_etag(reader, put)
            if put.etag.lower().strip('"') != want:
                return "the target's ETag differs from the MD5 of the bytes sent", "etag"
            return None, "etag"
        return None, "size"

    def _server_copy(self, info: FileInfo) -> tuple[_Done | None, str]:
        """Both sides on one S3 endpoint: the store copies. The source is looked at again
        afterwards (a change during the copy means another attempt) and the copy's size,
        and for a single-part object its ETag, are checked as the target reports them."""
        put = self.target.copy_from(
            self.source, info.path, info.size, part_size=self.step.part_size
        )
        after = self.source.stat(info.path)
        if after is None or after.size != info.size or (after.etag or "") != (info.etag or ""):
            return None, "changed at the source while it was copied"
        got = self.target.stat(info.path)
        if got is None or got.size != info.size:
            held = "nothing" if got is None else f"{got.size} bytes"
            return None, f"the server-side copy holds {held}, not {info.size} bytes"
        method = "size"
        plain = info.etag is not None and "-" not in info.etag
        if plain and got.etag and "-" not in got.etag:
            if got.etag.lower() != (info.etag or "").lower():
                return None, "the server-side copy's ETag differs from the source's"
            method = "etag"
        md5 = info.etag.lower() if plain and info.etag else None
        put = replace(put, etag=got.etag or put.etag)
        return _Done(
            {
                "path": info.path,
                "kind": "file",
                "size": info.size,
                "mtime_ns": info.mtime_ns,
                "md5": md5,
                "sha256": info.sha256,
                "etag": put.etag,
                "parts": put.parts,
                "part_size": put.part_size,
            },
            recopied=False,
            server_side=True,
            verified=method,
        ), ""

    # -- deletes and directories ------------------------------------------------------
    def _propagate_deletes(
        self, src: Scan, tgt: Scan, manifest: dict[str, Any], res: FileStepResult
    ) -> None:
        gone = removed_at_source(manifest, src)
        if not gone:
            return
        if not src.listed:
            res.failed.append(
                (
                    "",
                    f"the source lists nothing, so {len(gone)} file(s) were not deleted from"
                    " the target: check that the source is reachable and mounted",
                )
            )
            return
        backup_root = self.backup_root
        for path in gone:
            if self.stop.is_set():
                raise InterruptedRun("interrupted")
            m = manifest[path]
            if m["kind"] == "dir":
                if path in tgt.dirs:
                    self._undo.append((self.step.target, "make_dir", path, {"manifest": _row(m)}))
                    self._flush(force=True)
                    self.target.delete(path)
                    res.deleted += 1
            elif path in tgt.files:
                backup = f"{backup_root}/{path}"
                self._undo.append(
                    (
                        self.step.target,
                        "restore_file",
                        path,
                        {"backup": backup, "manifest": _row(m)},
                    )
                )
                self._flush(force=True)  # the undo record is stored before the change
                self.target.move(path, backup)
                res.deleted += 1
            self._removed.append(path)
        self._flush(force=True)

    def _keep_dirs(
        self, src: Scan, tgt: Scan, manifest: dict[str, Any], res: FileStepResult
    ) -> None:
        if not src.dirs:
            return
        # folders the target has with something in them: there already, nothing to make
        # (nor to remove on rollback)
        occupied = {p.rsplit("/", i)[0] for p in tgt.listed for i in range(1, p.count("/") + 1)}
        for path, info in sorted(src.dirs.items()):
            m = manifest.get(path)
            if m is not None and m["kind"] == "dir" and path in tgt.dirs:
                continue
            if path not in tgt.dirs and path not in occupied:
                self._undo.append((self.step.target, "delete_dir", path, {"manifest": _row(m)}))
                self._flush(force=True)
                try:
                    self.target.make_dir(path)
                except ConnectorError as exc:
                    res.failed.append((path, str(exc)))
                    continue
                res.dirs += 1
            self._pending.append(
                {"path": path, "kind": "dir", "size": 0, "mtime_ns": info.mtime_ns}
            )
        self._flush(force=True)

    # -- state ----------------------------------------------------------------------
    def _flush(self, force: bool = False) -> None:
        if not (self._pending or self._undo or self._removed):
            return
        if (
            not force
            and len(self._pending) < FLUSH_FILES
            and time.monotonic() - self._last_flush < FLUSH_SECONDS
        ):
            return
        self.state.record_files(
            self.step.name, self.run_id, self._pending, self._removed, self._undo
        )
        self._pending, self._undo, self._removed = [], [], []
        self._last_flush = time.monotonic()


def _failpoint_reader(reader: Any, seq: int, size: int) -> Any:
    """Test hook: ``MIGRATE_FAILPOINT=during-put:N`` kills the process with SIGKILL after
    the N-th put (counted from 1 in this run) has streamed half of its file."""
    if os.environ.get("MIGRATE_FAILPOINT") != f"during-put:{seq}":
        return reader

    class _Killer:
        def __init__(self) -> None:
            self.bytes_read = 0

        def read(self, n: int = -1) -> bytes:
            if self.bytes_read >= size // 2:
                os.kill(os.getpid(), signal.SIGKILL)
            data = reader.read(n if 0 < n <= max(size // 2, 1) else max(size // 2, 1))
            self.bytes_read += len(data)
            return data

    return _Killer()


def _row(row: Any) -> dict[str, Any] | None:
    """A manifest row as the plain dict an undo record keeps (None: no row)."""
    return None if row is None else dict(row)


def _now() -> str:
    from migrate.state import now

    return now()


def preview(
    step: Step,
    source: Any,
    target: Any,
    manifest: dict[str, Any],
    done: bool = False,
    created: set[str] | None = None,
) -> dict[str, Any]:
    """What a run of ``step`` would do, reading both sides and writing nothing: files and
    bytes selected, the largest file, names that would be refused, files to copy (with
    ``compare = "hash"`` an upper bound: unchanged content is found only by reading) and,
    with ``deletes = "propagate"``, files to delete; ``set_aside``: files already on the
    target that would be kept under the backup folder before being overwritten (with
    ``compare = "hash"`` an upper bound). ``done``: the step's state says its full copy
    finished (a mode full step then does nothing); ``created`` is no longer used (every
    overwritten file is kept aside, whoever wrote it)."""
    src = scan(step, source, refuse_unsafe=target.capabilities.filesystem)
    tgt = scan(step, target, follow=False)
    todo, unchanged = plan_transfer(step, src, tgt, manifest, target.capabilities)
    largest = max(src.files.values(), key=lambda f: f.size, default=None)
    gone = removed_at_source(manifest, src) if step.deletes == "propagate" else []
    notes = []
    if step.mode == "full" and done:
        notes.append("copied by an earlier run (mode full): nothing to do")
        todo, unchanged, gone = [], len(src.files), []
    if gone and not src.listed:
        notes.append(
            f"STOP: the source lists nothing; the run refuses to delete {len(gone)} file(s)"
        )
        gone = []
    foreign = [f.path for f, _ in todo if f.path in tgt.files]
    if foreign:
        notes.append(
            f"{len(foreign)} file(s) already on the target would be kept under"
            " .migrate-backup/ before being overwritten (a rollback puts them back)"
        )
    return {
        "notes": notes,
        "set_aside": len(foreign),
        "files": len(src.files),
        "bytes": src.bytes,
        "dirs": len(src.dirs),
        "largest": {"path": largest.path, "size": largest.size} if largest else None,
        "refused": [{"path": p, "reason": r} for p, r in src.refused],
        "copy_files": len(todo),
        "copy_bytes": sum(f.size for f, _ in todo),
        "hash_checks": sum(1 for _, check in todo if check),
        "unchanged": unchanged,
        "delete_files": len(gone),
        "target_files": len(tgt.files),
        "first_run": not manifest,
    }


def file_step_to_json(res: FileStepResult) -> dict[str, Any]:
    """The JSON form of a file step's result (report, ``--json``)."""
    return {
        "status": res.status,
        "source_files": res.source_files,
        "source_bytes": res.source_bytes,
        "copied": res.copied,
        "copied_bytes": res.copied_bytes,
        "unchanged": res.unchanged,
        "dirs_created": res.dirs,
        "deleted": res.deleted,
        "copied_again": res.recopied,
        "server_side": res.server_side,
        "cleaned": res.cleaned,
        "backed_up": res.backed_up,
        "verified": dict(res.verified),
        "refused": [{"path": p, "reason": r} for p, r in res.refused],
        "failed": [{"path": p, "error": e} for p, e in res.failed],
        "notes": list(res.notes),
        "seconds": round(res.seconds, 3),
        "check": res.check,
    }
