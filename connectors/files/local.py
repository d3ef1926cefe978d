"""``file:///path``: a directory on a local or mounted file system.

``file:///mnt/nas/share`` is absolute; ``file:data/in`` is relative to the plan's folder.
Puts write a temporary name in the target directory, fsync it and rename it over the
final name (atomic on POSIX file systems), and keep the source's modification time. The
file is on disk before its name appears: after a power loss the final name holds the old
content or the new, never a new file's unwritten blocks (the rename itself may be lost,
then the next run copies the file again).

A URL holds no ``?`` or ``#`` part: a folder whose name has one is written ``%3F`` / ``%23``.
Writes never go through a symbolic link that leads out of the root (the folder written to
is resolved first, cached per folder); ``stat`` reports nothing for such a path.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar
from urllib.parse import unquote, urlsplit

from connectors.files.base import (
    BLOCK,
    TMP_PREFIX,
    FileCapabilities,
    FileInfo,
    PutResult,
    check_options,
    unsafe_name,
)
from migrate.errors import ConnectorError, PlanError

#: folders known to lie inside the root, forgotten past this many
SAFE_DIRS_CACHE = 100_000


class LocalEndpoint:
    """A directory tree on a mounted file system."""

    kind = "file"
    OPTIONS: ClassVar[dict[str, type]] = {}
    capabilities = FileCapabilities(
        scheme="file", filesystem=True, symlinks=True, mtime_settable=True
    )

    def __init__(
        self,
        name: str,
        url: str,
        options: dict[str, Any],
        *,
        base_dir: Path,
        workers: int = 4,
        secrets: frozenset[str] = frozenset(),
        dry_run: bool = False,
    ) -> None:
        check_options(options, set(self.OPTIONS), name)
        if "?" in url or "#" in url:
            raise PlanError(
                f"connections.{name}.url: a file URL takes no '?' or '#' part; a folder"
                " whose name holds one is written with %3F / %23"
            )
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise PlanError(
                f"connections.{name}.url: file URLs name a local path (file:///path);"
                " use nfs:// or sftp:// for a remote host"
            )
        path = Path(unquote(parts.path))
        self.name = name
        self.root = path if path.is_absolute() else base_dir / path
        self.dry_run = dry_run
        self._real_root: str | None = None
        self._safe_dirs: set[str] = set()  # folders known to resolve inside the root

    def describe(self) -> str:
        return f"local directory {self.root}"

    # -- helpers ---------------------------------------------------------------------
    def _abs(self, path: str) -> Path:
        return self.root / path if path else self.root

    def _error(self, what: str, path: str, exc: OSError) -> ConnectorError:
        reason = exc.strerror or str(exc)
        return ConnectorError(f"{self.name}: cannot {what} {path or '/'!s}: {reason}")

    def _writable(self, what: str, path: str) -> Path:
        """The absolute path for a write; names that would leave the root (``..``, a
        leading ``/``) or that are not canonical are refused."""
        why = unsafe_name(path)
        if why:
            raise ConnectorError(f"{self.name}: cannot {what} {path!r}: {why}")
        return self.root / path

    def _real_root_now(self) -> str:
        """The root with its links resolved (kept once the root exists)."""
        if self._real_root is not None:
            return self._real_root
        real = os.path.realpath(self.root)
        if os.path.isdir(real):
            self._real_root = real
        return real

    def _inside(self, real: str) -> bool:
        root = self._real_root_now()
        return real == root or real.startswith(root.rstrip(os.sep) + os.sep)

    def _check_dir(self, directory: Path, what: str, path: str) -> None:
        """Refuse to write in ``directory`` when a symbolic link takes it out of the root
        (folders that do not exist yet resolve through their existing parents)."""
        key = str(directory)
        if key in self._safe_dirs:
            return
        if not self._inside(os.path.realpath(directory)):
            rel = os.path.relpath(directory, self.root)
            raise ConnectorError(
                f"{self.name}: cannot {what} {path}: {rel} is a symbolic link that leads out"
                " of the root"
            )
        if os.path.isdir(directory):
            if len(self._safe_dirs) >= SAFE_DIRS_CACHE:
                self._safe_dirs = set()
            self._safe_dirs.add(key)

    def _make_parents(self, directory: Path) -> Path | None:
        """Create ``directory`` and its missing parents below the root; return the
        topmost one created (None when it existed), so a failed put can remove them."""
        top = None
        probe = directory
        while probe != self.root and self.root in probe.parents and not os.path.lexists(probe):
            top = probe
            probe = probe.parent
        directory.mkdir(parents=True, exist_ok=True)
        return top

    def _unmake_parents(self, directory: Path, top: Path | None) -> None:
        """Remove the directories a failed put created, while they are empty."""
        if top is None:
            return
        while True:
            try:
                directory.rmdir()
            except OSError:
                return
            self._safe_dirs.discard(str(directory))
            if directory == top:
                return
            directory = directory.parent

    # -- reading ---------------------------------------------------------------------
    def list(self, *, follow_symlinks: bool = False) -> Iterator[FileInfo]:
        if not self.root.is_dir():
            if self.root.exists():
                raise ConnectorError(f"{self.name}: {self.root} is not a directory")
            return
        real_root = os.path.realpath(self.root)
        yield from self._walk(self.root, "", follow_symlinks, real_root, {real_root})

    def _walk(
        self, directory: Path, rel: str, follow: bool, real_root: str, seen: set[str]
    ) -> Iterator[FileInfo]:
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return  # removed (or replaced) while we listed
        except OSError as exc:
            raise self._error("list", rel, exc) from None
        shown = 0
        for entry in entries:
            name = entry.name
            path = f"{rel}/{name}" if rel else name
            try:
                if entry.is_symlink():
                    if not follow:
                        continue
                    target = os.path.realpath(entry.path)
                    if target != real_root and not target.startswith(real_root + os.sep):
                        continue  # never leave the root
                    st = os.stat(entry.path)
                    if stat_mod.S_ISDIR(st.st_mode):
                        if target in seen:  # a loop
                            continue
                        before = shown
                        for info in self._walk(
                            Path(entry.path), path, follow, real_root, seen | {target}
                        ):
                            shown += 1
                            yield info
                        if shown == before and os.path.isdir(entry.path):
                            shown += 1
                            yield FileInfo(path, 0, st.st_mtime_ns, is_dir=True)
                        continue
                else:
                    st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we listed (or a dangling link)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    continue  # a link loop (a -> b -> a): nothing to copy, like a dangling link
                raise self._error("stat", path, exc) from None
            if stat_mod.S_ISDIR(st.st_mode):
                before = shown
                for info in self._walk(Path(entry.path), path, follow, real_root, seen):
                    shown += 1
                    yield info
                if shown == before and os.path.isdir(entry.path):
                    shown += 1
                    yield FileInfo(path, 0, st.st_mtime_ns, is_dir=True)
            elif stat_mod.S_ISREG(st.st_mode):
                shown += 1
                yield FileInfo(path, st.st_size, st.st_mtime_ns)
            # sockets, fifos, devices: not files to copy

    def root_exists(self) -> bool:
        """Whether the root is an existing directory (a link to one counts)."""
        try:
            return stat_mod.S_ISDIR(os.stat(self.root).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return False
            raise self._error("stat", "", exc) from None

    def stat(self, path: str) -> FileInfo | None:
        """The entry at ``path``; None when nothing is there, or when a symbolic link
        takes the path out of the root (list skips those too)."""
        target = self._abs(path)
        try:
            st = os.lstat(target)
            if path:
                if str(target.parent) not in self._safe_dirs:
                    try:
                        self._check_dir(target.parent, "stat", path)
                    except ConnectorError:
                        return None
                if stat_mod.S_ISLNK(st.st_mode):
                    if not self._inside(os.path.realpath(target)):
                        return None
                    st = os.stat(target)
            elif stat_mod.S_ISLNK(st.st_mode):
                st = os.stat(target)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                return None
            raise self._error("stat", path, exc) from None
        if stat_mod.S_ISDIR(st.st_mode):
            return FileInfo(path, 0, st.st_mtime_ns, is_dir=True)
        return FileInfo(path, st.st_size, st.st_mtime_ns)

    def open_read(self, path: str) -> BinaryIO:
        try:
            return open(self._abs(path), "rb", buffering=BLOCK)
        except OSError as exc:
            raise self._error("read", path, exc) from None

    # -- writing ---------------------------------------------------------------------
    def put(
        self,
        path: str,
        stream: BinaryIO,
        size: int,
        *,
        part_size: int = 0,
        multipart_threshold: int = 0,
        mtime_ns: int | None = None,
    ) -> PutResult:
        final = self._writable("write", path)
        self._check_dir(final.parent, "write", path)
        tmp = final.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:16]}")
        made: Path | None = None
        try:
            for attempt in range(5):
                try:
                    made = self._make_parents(final.parent) or made
                    out = open(tmp, "xb")  # noqa: SIM115 - closed by the with below
                    break
                except (FileNotFoundError, FileExistsError):
                    # a delete in another thread pruned a folder we were making (or a
                    # parent is a file: the last attempt reports it)
                    if attempt == 4:
                        raise
            with out:
                while True:
                    block = stream.read(BLOCK)
                    if not block:
                        break
                    out.write(block)
                out.flush()
                if mtime_ns is not None:
                    os.utime(out.fileno(), ns=(mtime_ns, mtime_ns))
                # on disk before the rename: a crash never leaves the final name with
                # content the manifest did not see
                os.fsync(out.fileno())
            if final.is_dir() and not final.is_symlink():
                raise ConnectorError(f"{self.name}: cannot write {path}: a directory has that name")
            os.replace(tmp, final)
            written = os.stat(final).st_size
        except OSError as exc:
            self._discard(tmp, made)
            raise self._error("write", path, exc) from None
        except BaseException:
            self._discard(tmp, made)
            raise
        return PutResult(size=written)

    def _discard(self, tmp: Path, made: Path | None) -> None:
        """After a failed put: remove its temporary file and the folders it created."""
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # never there (its folder could not be made)
        self._unmake_parents(tmp.parent, made)

    def delete(self, path: str) -> None:
        target = self._writable("delete", path)
        self._check_dir(target.parent, "delete", path)
        try:
            if target.is_dir() and not target.is_symlink():
                target.rmdir()
            else:
                target.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._error("delete", path, exc) from None
        self._prune(target.parent)

    def _prune(self, directory: Path) -> None:
        """Remove directories a delete left empty, up to (not including) the root."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            self._safe_dirs.discard(str(directory))
            directory = directory.parent

    def make_dir(self, path: str) -> None:
        target = self._writable("create directory", path)
        self._check_dir(target.parent, "create directory", path)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error("create directory", path, exc) from None

    def move(self, path: str, new_path: str) -> None:
        source = self._writable("move", path)
        dest = self._writable("move to", new_path)
        self._check_dir(source.parent, "move", path)
        self._check_dir(dest.parent, "move to", new_path)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, dest)
        except OSError as exc:
            raise self._error("move", path, exc) from None
        self._prune(source.parent)

    def close(self) -> None:
        pass
