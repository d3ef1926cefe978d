"""The file endpoint contract shared by every file connector (file, nfs, sftp, s3).

A file endpoint sees one tree of files under a root (a directory, an NFS export path, an
SFTP path, a bucket prefix). Paths are relative to that root, ``/``-separated, never
start with ``/`` and never contain empty, ``.`` or ``..`` segments; names are ``str``
(UTF-8 on the wire). Core (``migrate/filecopy.py``) uses only what is defined here.

Contract of every connector (checked by ``tests/file_conformance.py``):

- ``list()`` yields every regular file under the root (recursively, any order) and, for
  directories that hold nothing, one entry with ``is_dir=True`` (object stores: a marker
  object whose key ends in ``/``). Names the engine reserves (:func:`reserved`) may be
  yielded; the engine skips them. Symbolic links are followed or skipped as
  ``symlinks`` says; a link that resolves outside the root is always skipped.
- ``stat(path)`` returns the entry or None when nothing is there.
- ``open_read(path)`` returns a binary stream read in blocks; memory stays bounded.
- ``put(path, stream, size, part_size=...)`` writes the whole stream so that a reader of
  ``path`` sees the old object (or nothing) until the new one is complete: file systems
  write a temporary name beside it and rename; object stores upload in one request, or
  in parts completed at the end (an interrupted upload is aborted). Parent directories
  are created. Returns a :class:`PutResult` with what the target reports.
- ``delete(path)``: removes a file (or a directory marker); a missing path is not an error.
- ``make_dir(path)`` keeps an empty directory (a marker object on object stores).
- ``move(path, new_path)`` renames within the endpoint (object stores: copy + delete).
- ``root_exists()`` tells whether the root is there: file systems, that it exists and is
  a directory; object stores, that the bucket exists and answers (a prefix is not a
  folder: a missing prefix is fine). The engine asks when the source lists nothing, so
  that an unmounted share or a mistyped path is an error rather than an empty copy. A
  failure to find out (connection, permission) is an error, not False.
- Errors are :class:`~migrate.errors.ConnectorError` (``TransientError`` when a retry can
  help) with one line naming the connection and the path, never a secret.
- One instance per connection per run, used from several threads at once.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

#: reserved name prefix: temporary files of an unfinished put and the backup folder
RESERVED_PREFIX = ".migrate-"
TMP_PREFIX = ".migrate-tmp-"
BACKUP_DIR = ".migrate-backup"
BLOCK = 1 << 20  # read size for streaming copies
MIB = 1 << 20


@dataclass(frozen=True)
class FileInfo:
    """One entry of a listing.

    - ``path``: relative, ``/``-separated (a directory entry has no trailing ``/``)
    - ``size``: bytes; ``mtime_ns``: modification time in ns since the epoch (object
      stores: the upload time, second precision) or None when unknown
    - ``etag``: an object store's ETag without quotes (``<md5>`` for single-part objects,
      ``<md5-of-part-md5s>-<parts>`` for multipart ones); None for file systems
    - ``sha256``: hex SHA-256 of the whole content when the store keeps one, else None
    - ``is_dir``: an empty directory (or a marker object)
    """

    path: str
    size: int
    mtime_ns: int | None = None
    etag: str | None = None
    sha256: str | None = None
    is_dir: bool = False


@dataclass(frozen=True)
class PutResult:
    """What the target reported for a finished put.

    ``parts`` is 0 for a single request / a plain file write, else the number of parts;
    ``etag``/``sha256`` are what the store returned (None when it returns nothing); ``size``
    is the size the target reports after the write (None if it reports none).
    """

    size: int | None
    etag: str | None = None
    sha256: str | None = None
    parts: int = 0
    part_size: int = 0


@dataclass(frozen=True)
class FileCapabilities:
    """What a file endpoint can do, negotiated by the copy engine.

    - ``scheme``: ``file``, ``nfs``, ``sftp``, ``s3``
    - ``filesystem``: names are paths on a file system (``..`` and absolute names are
      refused when writing); False for object stores
    - ``free_hashes``: hashes a listing or stat gives without reading the content
      (``"etag"``, ``"sha256"``)
    - ``multipart``: ``put`` uploads large objects in parts; ``max_parts``/``min_part_size``
      bound the part size
    - ``server_copy``: the store copies objects within itself (``copy_from``)
    - ``symlinks``: the endpoint has symbolic links
    - ``mtime_settable``: ``put`` keeps the source's mtime when given one
    - ``max_single_put``: above this size a multipart store uploads in parts whatever
      the step's threshold (the engine then expects a multipart ETag)
    """

    scheme: str
    filesystem: bool
    free_hashes: tuple[str, ...] = ()
    multipart: bool = False
    max_parts: int = 10_000
    min_part_size: int = 5 * MIB
    server_copy: bool = False
    symlinks: bool = False
    mtime_settable: bool = False
    #: the largest object one request may write; bigger files always go in parts
    max_single_put: int = 5 << 30


class FileEndpoint(Protocol):
    """A file tree. Constructed as ``cls(name, url, options, *, base_dir, workers,
    secrets, dry_run)`` like table endpoints; ``kind = "file"`` on the class."""

    name: str
    capabilities: FileCapabilities

    def describe(self) -> str:
        """Kind and address, no secrets: ``sftp 127.0.0.1:22 /data``."""
        ...

    def list(self, *, follow_symlinks: bool = False) -> Iterator[FileInfo]: ...

    def stat(self, path: str) -> FileInfo | None: ...

    def open_read(self, path: str) -> BinaryIO: ...

    def put(
        self,
        path: str,
        stream: BinaryIO,
        size: int,
        *,
        part_size: int,
        multipart_threshold: int,
        mtime_ns: int | None = None,
    ) -> PutResult: ...

    def delete(self, path: str) -> None: ...

    def make_dir(self, path: str) -> None: ...

    def move(self, path: str, new_path: str) -> None: ...

    def root_exists(self) -> bool:
        """Whether the root exists: a directory (file systems), the bucket (object
        stores, whatever the prefix holds)."""
        ...

    def close(self) -> None: ...


def reserved(path: str) -> bool:
    """Whether ``path`` is a name the engine itself writes (temporary or backup)."""
    if path == BACKUP_DIR or path.startswith(BACKUP_DIR + "/"):
        return True
    return posixpath.basename(path).startswith(TMP_PREFIX)


def unsafe_name(path: str) -> str | None:
    """Why ``path`` cannot be written to a file system target, or None when it can.

    Refused: a leading ``/``, empty, ``.`` or ``..`` segments, NUL bytes.
    """
    if not path:
        return "empty name"
    if "\x00" in path:
        return "NUL byte in name"
    if path.startswith("/"):
        return "absolute name (leading '/')"
    parts = path.split("/")
    if ".." in parts:
        return "'..' in name"
    if "." in parts or "" in parts:
        return "empty or '.' path segment"
    return None


def effective_part_size(size: int, part_size: int, caps: FileCapabilities) -> int:
    """The part size an upload of ``size`` bytes uses: ``part_size`` raised to the store's
    minimum and, when the file would need more than ``max_parts`` parts, doubled until it
    fits. The copy engine and the connectors both call this, so the expected multipart
    ETag is computed with the same parts the upload used."""
    ps = max(part_size, caps.min_part_size)
    while (size + ps - 1) // ps > caps.max_parts:
        ps *= 2
    return ps


class HashingReader:
    """Wraps a binary stream; computes MD5, SHA-256 and per-part MD5s while it is read.

    ``part_size`` > 0 records the MD5 of each consecutive ``part_size`` slice, whatever
    sizes the reader asks for, so the multipart ETag can be recomputed without a second
    read. ``bytes_read`` counts what went through. With ``limit``, reads stop after that
    many bytes (a file that grows while it is copied is copied up to its listed size; the
    engine notices the change by its size and mtime afterwards).
    """

    def __init__(self, stream: BinaryIO, part_size: int = 0, limit: int | None = None) -> None:
        self._stream = stream
        self._left = limit  # read at most this many bytes (None: to the end)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha = hashlib.sha256()
        self._part_size = part_size
        self._part = hashlib.md5(usedforsecurity=False) if part_size else None
        self._in_part = 0
        self.part_digests: list[bytes] = []
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        if self._left is not None:
            if self._left <= 0:
                return b""
            n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._stream.read(n)
        if self._left is not None:
            self._left -= len(data)
        if data:
            self._update(data)
        return data

    def readinto(self, buf: Any) -> int:  # pragma: no cover - used by some clients
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def _update(self, data: bytes) -> None:
        self._md5.update(data)
        self._sha.update(data)
        self.bytes_read += len(data)
        if self._part is None:
            return
        view = memoryview(data)
        while view:
            room = self._part_size - self._in_part
            piece = view[:room]
            self._part.update(piece)
            self._in_part += len(piece)
            view = view[len(piece) :]
            if self._in_part == self._part_size:
                self.part_digests.append(self._part.digest())
                self._part = hashlib.md5(usedforsecurity=False)
                self._in_part = 0

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def multipart_etag(self) -> str:
        """The S3 ETag of this content uploaded in parts of ``part_size``."""
        digests = list(self.part_digests)
        if self._part is not None and self._in_part:
            digests.append(self._part.digest())
        return multipart_etag(digests)

    def close(self) -> None:
        self._stream.close()


def multipart_etag(part_md5s: list[bytes]) -> str:
    """``md5(concatenated part digests)-<count>``, the ETag S3 gives a multipart object."""
    joined = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
    return f"{joined}-{len(part_md5s)}"


def expected_etag(reader: HashingReader, result: PutResult) -> str:
    """The ETag the store should report for what ``reader`` streamed into ``result``."""
    return reader.multipart_etag() if result.parts else reader.md5


def option(options: dict[str, Any], name: str, kind: type, default: Any, where: str) -> Any:
    """A connection option of the expected type, or ``default``; a wrong type is an error
    naming the connection and option (raised as PlanError by the caller's contract)."""
    from migrate.errors import PlanError

    value = options.get(name, default)
    if value is not None and kind is int and isinstance(value, bool):
        raise PlanError(f"connections.{where}.options.{name}: must be a number")
    if value is not None and not isinstance(value, kind):
        raise PlanError(f"connections.{where}.options.{name}: must be a {kind.__name__}")
    return value


def check_options(options: dict[str, Any], allowed: set[str], where: str) -> None:
    """Unknown connection options are errors (plans are strict)."""
    from migrate.errors import PlanError

    unknown = sorted(set(options) - allowed)
    if unknown:
        raise PlanError(
            f"connections.{where}.options: unknown option {unknown[0]!r}"
            f" (allowed: {', '.join(sorted(allowed)) or 'none'})"
        )
