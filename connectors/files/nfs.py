"""``nfs://host/export/path``: a directory tree on an NFS server, through libnfs.

libnfs speaks NFS from user space: no kernel mount, no root. By default the whole URL
path is the export (``nfs://10.0.0.9/export/share`` mounts ``/export/share``); when the
tree to copy lies below the export, name the export: ``export = "/export"`` makes
``share`` a folder inside it.

Options (``[connections.NAME.options]``), each also accepted as a URL query argument
(``nfs://10.0.0.9/export?version=4``), the option winning:

- ``version``: 3 (default) or 4
- ``nfsport`` / ``mountport``: fixed ports instead of asking the server's portmapper
  (NFSv4 needs only ``nfsport``)
- ``export``: the exported path, when the URL's path goes deeper
- ``uid`` / ``gid``: the AUTH_SYS identity sent to the server (libnfs defaults to the
  local user's)
- ``timeout`` (seconds, default 60): the longest wait for one reply

NFSv3: a pool of libnfs contexts (they are not thread-safe), each mounted on first use and
shared by every thread: an operation takes an idle one (or mounts one, up to
:data:`MAX_CONTEXTS`; a thread that already holds one, an open reader, may go past that)
and gives it back when done; an open reader keeps its context until it is closed. NFSv4:
one context for all threads (see ``_checkout``). A context whose connection broke is
replaced once, after that the operation fails with a
:class:`~migrate.errors.TransientError`. Reads and writes go in blocks of the server's
maximum transfer size (at most 1 MiB). Puts write ``<dir>/.migrate-tmp-<random>``, set
the source's modification time (microseconds), and rename it over the final name.

Known limits of libnfs 4.0 (Debian 12): NFSv4 writes larger than 4 KiB fail (fixed in
libnfs 5), so puts over NFSv4 go in 3 KiB requests and are slow — prefer version 3 for a
target; libnfs holds Python's GIL during every call; names that are not UTF-8 cannot be
read through the Python binding (listing such a directory is an error naming it).
Absolute symbolic link targets are paths on the server: they are followed when they lie
below the export's path (libnfs does the same for NFSv3). Writes never go through a link
that leads out of the root (the folder written to is resolved first, cached per folder);
``stat`` resolves links itself and reports nothing for a path that leads out.

The URL holds no ``#`` part (a folder whose name has one is written ``%23``); its ``?``
part carries the options above.
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import stat as stat_mod
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from connectors.files.base import (
    BLOCK,
    TMP_PREFIX,
    FileCapabilities,
    FileInfo,
    PutResult,
    check_options,
    option,
    unsafe_name,
)
from migrate.errors import ConnectorError, MissingDriverError, PlanError, TransientError

T = TypeVar("T")

#: largest request of libnfs 4.0's NFSv4 WRITE (its compound buffer is 4 KiB in all)
V4_WRITE = 3 * 1024
#: symbolic links followed while resolving one path (Linux's MAXSYMLINKS)
MAX_LINKS = 40
#: NFSv3 contexts (connections) per endpoint before threads wait for an idle one
MAX_CONTEXTS = 8
#: folders known to lie inside the root, forgotten past this many
SAFE_DIRS_CACHE = 100_000
#: errnos after which the context is replaced (the connection, not the request, failed)
CONNECTION_ERRNOS = {
    errno.EIO,
    errno.ETIMEDOUT,
    errno.ENOTCONN,
    errno.ECONNRESET,
    errno.ECONNREFUSED,
    errno.EPIPE,
}
#: errnos that mean "nothing there (any more)" when looking a path up
GONE = {errno.ENOENT, errno.ENOTDIR, errno.ESTALE}
REASONS = {
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a parent is not a directory",
    errno.EISDIR: "a directory has that name",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EEXIST: "already exists",
    errno.ENOTEMPTY: "directory not empty",
    errno.ENOSPC: "no space left on the server",
    errno.EDQUOT: "quota exceeded",
    errno.EROFS: "the export is read-only",
    errno.ENAMETOOLONG: "name too long",
    errno.ESTALE: "stale file handle (changed on the server)",
    errno.ETIMEDOUT: "the server did not answer in time",
}


def _driver() -> Any:
    """The libnfs SWIG module (imported on first use)."""
    try:
        from libnfs import libnfs as driver
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("libnfs", "_libnfs"):
            raise MissingDriverError("libnfs", "nfs") from None
        raise
    except ImportError as exc:  # the module is there, its C library is not
        err = MissingDriverError("libnfs", "nfs")
        err.args = (
            f"the Python package 'libnfs' cannot load its C library ({exc}):"
            " install Debian's libnfs13 (libnfs-dev to build the package)",
        )
        raise err from None
    return driver


_C_LIB: Any = None


def _c_lib() -> Any:
    """The libnfs C library the binding is linked to, through ctypes: for the calls the
    binding cannot make (``nfs_utimes`` takes two timevals; ``nfs_set_timeout``)."""
    global _C_LIB
    if _C_LIB is None:
        import ctypes
        import ctypes.util

        _driver()  # loads libnfs.so into the process first
        path = None
        try:
            with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
                for line in maps:
                    name = line.rsplit(None, 1)[-1]
                    if os.path.basename(name).startswith("libnfs.so"):
                        path = name
                        break
        except OSError:
            pass
        lib = ctypes.CDLL(path or ctypes.util.find_library("nfs") or "libnfs.so.13")
        lib.nfs_utimes.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        lib.nfs_utimes.restype = ctypes.c_int
        lib.nfs_set_timeout.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.nfs_set_timeout.restype = None
        _C_LIB = lib
    return _C_LIB


def _timevals(mtime_ns: int) -> Any:
    import ctypes

    class Timeval(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]

    sec, usec = divmod(mtime_ns // 1000, 1_000_000)
    return (Timeval * 2)((sec, usec), (sec, usec))


class NFSError(ConnectorError):
    """A failed libnfs call; ``errno`` is the positive errno libnfs returned."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.errno = code


class _Context:
    """One libnfs context (one TCP connection, one mount) and the lock that guards it:
    libnfs contexts must not be used by two threads at once."""

    def __init__(self, endpoint: NFSEndpoint, generation: int) -> None:
        self.lock = threading.RLock()
        self.generation = generation
        self.closed = False
        self.counted = False  # counts towards the endpoint's open NFSv3 contexts
        self.owner = 0  # the thread that checked it out
        self.nfs = endpoint._mount()
        driver = _driver()
        self.readmax = driver.nfs_get_readmax(self.nfs) or BLOCK
        self.writemax = driver.nfs_get_writemax(self.nfs) or BLOCK

    def destroy(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                _driver().nfs_destroy_context(self.nfs)


class NFSEndpoint:
    """A directory tree on an NFS export, read and written with libnfs."""

    kind = "file"
    OPTIONS: ClassVar[dict[str, type]] = {
        "version": int,
        "nfsport": int,
        "mountport": int,
        "export": str,
        "uid": int,
        "gid": int,
        "timeout": int,
    }
    #: what the URL's query may carry (libnfs's own names)
    URL_ARGS: ClassVar[tuple[str, ...]] = ("version", "nfsport", "mountport", "uid", "gid")
    capabilities = FileCapabilities(
        scheme="nfs", filesystem=True, symlinks=True, mtime_settable=True
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
        parts = urlsplit(url)
        if parts.scheme != "nfs" or not parts.hostname:
            raise PlanError(f"connections.{name}.url: expected nfs://host/export/path")
        if "#" in url:
            raise PlanError(
                f"connections.{name}.url: an nfs URL takes no '#' part; a folder whose name"
                " holds one is written with %23 (and '?' with %3F)"
            )
        if parts.username or parts.password or parts.port:
            raise PlanError(
                f"connections.{name}.url: an nfs URL has no user or port"
                " (use the nfsport / mountport options)"
            )
        query: dict[str, Any] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key not in self.URL_ARGS:
                raise PlanError(
                    f"connections.{name}.url: unknown query argument {key!r}"
                    f" (allowed: {', '.join(self.URL_ARGS)})"
                )
            try:
                query[key] = int(value)
            except ValueError:
                raise PlanError(f"connections.{name}.url: {key} must be a number") from None
        for key in self.OPTIONS:
            value = option(options, key, self.OPTIONS[key], None, name)
            if value is not None:
                query[key] = value
        self.version = int(query.pop("version", 3))
        if self.version not in (3, 4):
            raise PlanError(f"connections.{name}.options.version: must be 3 or 4")
        path = posixpath.normpath("/" + unquote(parts.path).strip("/"))
        export = query.pop("export", None)
        if export is None:
            export, subdir = path, ""
        else:
            export = posixpath.normpath("/" + export.strip("/"))
            if path != export and not path.startswith(export.rstrip("/") + "/"):
                raise PlanError(
                    f"connections.{name}.options.export: {export} is not a prefix of the"
                    f" URL's path {path}"
                )
            subdir = path[len(export) :].strip("/")
        self.timeout: int = query.pop("timeout", 60)
        self.name = name
        self.host = parts.hostname
        self.export = export
        #: the root as libnfs names it after the mount: ``/`` or ``/<subdir>``
        self.root = "/" + subdir
        self._args = {k: query[k] for k in self.URL_ARGS if k in query}
        self._args["version"] = self.version
        self.dry_run = dry_run
        self.workers = workers
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._generation = 0
        self._contexts: list[_Context] = []  # every live context (close() destroys them)
        self._idle: list[_Context] = []  # NFSv3 contexts nobody holds
        self._open = 0  # NFSv3 contexts of this generation, idle or held
        self._held: dict[int, int] = {}  # contexts each thread holds
        #: folders known to resolve inside the root: their path -> the resolved path
        self._dirs: dict[str, str] = {}
        self._real_root: str | None = None  # the root with its links resolved
        #: followed links found by list(): their path -> the path they resolve to. libnfs
        #: mishandles some paths through links (absolute targets; NFSv4), so reads of a
        #: listed path go to the resolved one
        self._links: dict[str, str] = {}

    def describe(self) -> str:
        sub = self.root if self.root != "/" else ""
        return f"nfs v{self.version} {self.host}:{self.export}{sub}"

    # -- contexts ----------------------------------------------------------------------
    @property
    def _where(self) -> str:
        return f"nfs {self.host}:{self.export}"

    def _mount(self) -> Any:
        """A new libnfs context, mounted on the export (errors translated)."""
        driver = _driver()
        nfs = driver.nfs_init_context()
        if nfs is None:  # pragma: no cover - out of memory
            raise ConnectorError(f"{self.name}: cannot create an NFS context")
        ok = False
        try:
            # the URL carries only the arguments: the export is given to nfs_mount as is,
            # so libnfs never parses a path holding '?', '%' or '#'
            url = driver.nfs_parse_url_dir(nfs, f"nfs://{self.host}/?{urlencode(self._args)}")
            if url is None:
                reason = _last_error(driver, nfs)
                raise ConnectorError(f"{self.name}: libnfs refused the URL options: {reason}")
            driver.nfs_destroy_url(url)
            _c_lib().nfs_set_timeout(int(nfs), self.timeout * 1000)
            ret = driver.nfs_mount(nfs, self.host, self.export)
            if ret != 0:
                raise self._mount_error(-ret, _last_error(driver, nfs))
            ok = True
            return nfs
        finally:
            if not ok:
                driver.nfs_destroy_context(nfs)

    def _mount_error(self, code: int, message: str) -> ConnectorError:
        low = message.lower()
        prefix = f"{self.name}: cannot mount {self.export} from {self.host} (NFSv{self.version})"
        if "noent" in low or code == errno.ENOENT:
            hint = "" if self.root != "/" else " (if the path lies below the export, set export)"
            return ConnectorError(f"{prefix}: the server has no such export{hint}")
        if "acces" in low or "perm" in low or code in (errno.EACCES, errno.EPERM):
            return ConnectorError(f"{prefix}: permission denied (the export's client list)")
        return TransientError(f"{prefix}: {message or os.strerror(code)}")

    def _checkout(self) -> _Context:
        """A context for this thread's exclusive use; give it back with :meth:`_checkin`.

        NFSv4: one context for all threads, each call under its lock. libnfs 4.0 gives
        every context of a process the same NFSv4 client name, so a second context's
        SETCLIENTID makes the server expire the first one's open files (NFS4ERR_EXPIRED).
        (Nothing is lost: the binding holds the GIL during every call anyway.)
        """
        if self.version == 4:
            with self._lock:
                shared = self._contexts[0] if self._contexts else None
                if shared is None or shared.closed or shared.generation != self._generation:
                    shared = _Context(self, self._generation)
                    self._contexts[:] = [shared]
                return shared
        me = threading.get_ident()
        with self._cond:
            while True:
                while self._idle:
                    ctx = self._idle.pop()
                    if not ctx.closed and ctx.generation == self._generation:
                        ctx.owner = me
                        self._held[me] = self._held.get(me, 0) + 1
                        return ctx
                if self._open < MAX_CONTEXTS or self._held.get(me):
                    self._open += 1
                    self._held[me] = self._held.get(me, 0) + 1
                    generation = self._generation
                    break
                self._cond.wait(self.timeout)
        try:
            ctx = _Context(self, generation)
        except BaseException:
            with self._cond:
                self._unhold(me)
                if generation == self._generation:
                    self._open -= 1
                self._cond.notify()
            raise
        ctx.owner = me
        with self._cond:
            ctx.counted = generation == self._generation  # else close() ran meanwhile
            self._contexts.append(ctx)
        return ctx

    def _unhold(self, owner: int) -> None:
        count = self._held.get(owner, 0) - 1
        if count > 0:
            self._held[owner] = count
        else:
            self._held.pop(owner, None)

    def _retire(self, ctx: _Context) -> None:
        """Forget ``ctx`` (the lock is held); the caller destroys it."""
        if ctx.counted:
            ctx.counted = False
            self._open -= 1
        if ctx in self._contexts:
            self._contexts.remove(ctx)
        self._cond.notify()

    def _checkin(self, ctx: _Context, broken: bool = False) -> None:
        """Give ``ctx`` back; a broken one (or one of a closed endpoint) is destroyed."""
        if self.version == 4:
            if broken:
                self._broken(ctx)
            return
        with self._cond:
            self._unhold(ctx.owner)
            keep = not broken and not ctx.closed and ctx.generation == self._generation
            if keep:
                self._idle.append(ctx)
                self._cond.notify()
            else:
                self._retire(ctx)
        if not keep:
            ctx.destroy()

    def _broken(self, ctx: _Context) -> None:
        """``ctx``'s connection failed: destroy it (the next call mounts again). Whoever
        holds it still gives it back."""
        with self._cond:
            self._retire(ctx)
        ctx.destroy()

    def _call(
        self,
        what: str,
        path: str,
        fn: Callable[[Any, Any], T],
        *,
        retry: bool = True,
        ctx: _Context | None = None,
    ) -> T:
        """``fn(driver, ctx)`` under the context's lock, on a context of the pool (or on
        ``ctx``, which the caller holds). A :class:`NFSError` with a connection errno
        replaces the context and, with ``retry`` (and no ``ctx``), runs ``fn`` again once;
        a second failure is a :class:`TransientError`."""
        driver = _driver()
        if ctx is not None:
            with ctx.lock:
                if ctx.closed:
                    raise TransientError(f"{self.name}: cannot {what} {path}: endpoint closed")
                try:
                    return fn(driver, ctx)
                except NFSError as exc:
                    if exc.errno not in CONNECTION_ERRNOS:
                        raise
                    self._broken(ctx)
                    raise TransientError(str(exc)) from None
        for attempt in (0, 1):
            ctx = self._checkout()
            broken = False
            try:
                with ctx.lock:
                    if ctx.closed:
                        raise NFSError(f"{self.name}: the endpoint was closed", errno.EIO)
                    return fn(driver, ctx)
            except NFSError as exc:
                if exc.errno not in CONNECTION_ERRNOS:
                    raise
                broken = True
                if attempt or not retry:
                    raise TransientError(str(exc)) from None
            finally:
                self._checkin(ctx, broken)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check(self, driver: Any, ctx: _Context, ret: int, what: str, path: str) -> int:
        """``ret`` when it is not an error, else raise :class:`NFSError`."""
        if ret >= 0:
            return ret
        code = -ret
        reason = REASONS.get(code) or (f"{os.strerror(code)}: {_last_error(driver, ctx.nfs)}")
        raise NFSError(f"{self.name}: cannot {what} {path or '/'} on {self._where}: {reason}", code)

    # -- paths -------------------------------------------------------------------------
    def _p(self, path: str) -> str:
        """The path as libnfs names it (below the mounted export)."""
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise ConnectorError(
                f"{self.name}: cannot use {path!r}: the name is not valid UTF-8"
            ) from None
        base = self._base()
        return posixpath.join(base, path) if path else base

    def _base(self) -> str:
        """The root, its symbolic links resolved once it exists."""
        if self._real_root is None:
            real = self._call("resolve", "", lambda d, c: self._resolve(d, c, self.root))
            if real is None:
                return self.root  # not there (yet): a put creates it
            self._real_root = real
        return self._real_root

    def _p_read(self, path: str) -> str:
        """Like :meth:`_p`, through the links :meth:`list` followed."""
        if self._links and path:
            parts = path.split("/")
            for i in range(len(parts), 0, -1):
                target = self._links.get("/".join(parts[:i]))
                if target is not None:
                    return posixpath.join(target, *parts[i:])
        return self._p(path)

    def _rel(self, nfs_path: str) -> str:
        base = self._base()
        return posixpath.relpath(nfs_path, base) if nfs_path != base else ""

    def _writable(self, what: str, path: str) -> str:
        why = unsafe_name(path)
        if why:
            raise ConnectorError(f"{self.name}: cannot {what} {path!r}: {why}")
        return self._p(path)

    # -- staying inside the root ----------------------------------------------------------
    def _resolve_dir(self, driver: Any, ctx: _Context, directory: str) -> str | None:
        """``directory`` with its links resolved; folders missing at its end (a put creates
        them) are kept as named. None when a link in it dangles, loops or leaves the
        export. The caller holds ``ctx.lock``."""
        return self._resolve(driver, ctx, directory, missing_ok=True)

    def _real_root_on(self, driver: Any, ctx: _Context) -> str:
        """The root with its links resolved (the caller holds ``ctx.lock``)."""
        if self._real_root is not None:
            return self._real_root
        real = self._resolve(driver, ctx, self.root)
        if real is not None:
            self._real_root = real
            return real
        return self._resolve_dir(driver, ctx, self.root) or self.root

    def _inside(self, driver: Any, ctx: _Context, real: str | None) -> bool:
        if real is None:
            return False
        root = self._real_root_on(driver, ctx).rstrip("/")
        return real == root or real.startswith(root + "/") or not root

    def _check_dir(self, driver: Any, ctx: _Context, directory: str, what: str, path: str) -> str:
        """``directory`` resolved; refused when a symbolic link takes it out of the root
        (the answer is cached per folder). The caller holds ``ctx.lock``."""
        known = self._dirs.get(directory)
        if known is not None:
            return known
        real = self._resolve_dir(driver, ctx, directory)
        if real is None or not self._inside(driver, ctx, real):
            where = self._rel(directory) or "/"
            raise ConnectorError(
                f"{self.name}: cannot {what} {path} on {self._where}: {where} is a symbolic"
                " link that leads out of the root"
            )
        if len(self._dirs) >= SAFE_DIRS_CACHE:
            self._dirs = {}
        self._dirs[directory] = real
        return real

    def _from_server_path(self, target: str) -> str | None:
        """An absolute link target (a path on the server) as a path below the export, or
        None when it points elsewhere."""
        export = self.export.rstrip("/")
        if target == export or target == export + "/":
            return "/"
        if target.startswith(export + "/"):
            return target[len(export) :]
        return None

    def _resolve(
        self, driver: Any, ctx: _Context, path: str, *, missing_ok: bool = False
    ) -> str | None:
        """``path`` with every symbolic link resolved (relative to the export), or None
        when it dangles, loops or leaves the export. With ``missing_ok``, names of
        ``path`` itself that do not exist (yet) end the walk and are kept as given (a
        dangling link's target is still None). The caller holds ``ctx.lock``."""
        todo = deque((p, False) for p in path.split("/") if p)  # (name, from a link)
        done: list[str] = []
        hops = 0
        st = driver.nfs_stat_64()
        while todo:
            part, linked = todo.popleft()
            if part == ".":
                continue
            if part == "..":
                if not done:
                    return None  # above the export
                done.pop()
                continue
            current = "/" + "/".join([*done, part])
            ret = driver.nfs_lstat64(ctx.nfs, current, st)
            if ret != 0:
                if missing_ok and -ret in GONE and not linked:
                    rest = [part] + [p for p, _ in todo]
                    return "/" + "/".join([*done, *rest])
                return None
            if not stat_mod.S_ISLNK(st.nfs_mode):
                done.append(part)
                continue
            hops += 1
            if hops > MAX_LINKS:
                return None
            target = _readlink(driver, ctx, current, st.nfs_size)
            if target is None:
                return None
            if target.startswith("/"):
                mapped = self._from_server_path(target)
                if mapped is None:
                    return None
                done = []
                target = mapped
            todo.extendleft(reversed([(p, True) for p in target.split("/") if p]))
        return "/" + "/".join(done)

    # -- reading -----------------------------------------------------------------------
    def list(self, *, follow_symlinks: bool = False) -> Iterator[FileInfo]:
        info = self._stat_path("list", "", self._base())
        if info is None:
            return
        if not info[0]:
            raise ConnectorError(f"{self.name}: {self.root} on {self._where} is not a directory")
        real_root = self._base()
        yield from self._walk(real_root, "", follow_symlinks, real_root, {real_root})

    def root_exists(self) -> bool:
        """Whether the root is a directory on the export (a missing export is an error:
        the mount fails)."""
        info = self._stat_path("stat", "", self._base())
        return info is not None and info[0]

    def _stat_path(self, what: str, path: str, nfs_path: str) -> tuple[bool, int, int] | None:
        """(is_dir, size, mtime_ns) of ``nfs_path`` (links followed), or None if missing."""

        def run(driver: Any, ctx: _Context) -> tuple[bool, int, int] | None:
            st = driver.nfs_stat_64()
            ret = driver.nfs_stat64(ctx.nfs, nfs_path, st)
            if -ret in GONE or ret == -errno.ELOOP:
                # libnfs (NFSv4 above all) does not follow every link: resolve ourselves
                real = self._resolve(driver, ctx, nfs_path)
                if real is None or real == nfs_path:
                    return None
                ret = driver.nfs_stat64(ctx.nfs, real, st)
                if -ret in GONE:
                    return None
            self._check(driver, ctx, ret, what, path)
            return (
                stat_mod.S_ISDIR(st.nfs_mode),
                st.nfs_size,
                st.nfs_mtime * 1_000_000_000 + st.nfs_mtime_nsec,
            )

        return self._call(what, path, run)

    def _stat_inside(
        self, driver: Any, ctx: _Context, path: str, nfs_path: str
    ) -> tuple[bool, int, int] | None:
        """(is_dir, size, mtime_ns) of ``path``, through its parent folder resolved (and
        checked to be inside the root), then its own link if it is one."""
        try:
            parent = self._check_dir(driver, ctx, posixpath.dirname(nfs_path), "stat", path)
        except ConnectorError:
            return None  # out of the root, or through a dangling link
        full = posixpath.join(parent, posixpath.basename(nfs_path))
        st = driver.nfs_stat_64()
        ret = driver.nfs_lstat64(ctx.nfs, full, st)
        if -ret in GONE:
            return None
        self._check(driver, ctx, ret, "stat", path)
        if stat_mod.S_ISLNK(st.nfs_mode):
            real = self._resolve(driver, ctx, full)
            if real is None or not self._inside(driver, ctx, real):
                return None
            ret = driver.nfs_stat64(ctx.nfs, real, st)
            if -ret in GONE:
                return None
            self._check(driver, ctx, ret, "stat", path)
        return (
            stat_mod.S_ISDIR(st.nfs_mode),
            st.nfs_size,
            st.nfs_mtime * 1_000_000_000 + st.nfs_mtime_nsec,
        )

    def _walk(
        self, directory: str, rel: str, follow: bool, real_root: str, seen: set[str]
    ) -> Iterator[FileInfo]:
        entries = self._listdir(directory, rel)
        if entries is None:
            return  # removed (or replaced by a file) while we listed
        shown = 0
        for name, mode, size, mtime_ns in entries:
            path = f"{rel}/{name}" if rel else name
            full = posixpath.join(directory, name)
            if stat_mod.S_ISLNK(mode):
                if not follow:
                    continue
                target = self._call("list", path, lambda d, c, full=full: self._resolve(d, c, full))
                if target is None:
                    continue  # dangling, a loop, or outside the export
                if target != real_root and not target.startswith(real_root.rstrip("/") + "/"):
                    continue  # never leave the root
                info = self._stat_path("list", path, target)
                if info is None:
                    continue
                is_dir, size, mtime_ns = info
                self._links[path] = target
                if is_dir:
                    if target in seen:
                        continue  # a loop
                    before = shown
                    for item in self._walk(target, path, follow, real_root, seen | {target}):
                        shown += 1
                        yield item
                    if shown == before:
                        shown += 1
                        yield FileInfo(path, 0, mtime_ns, is_dir=True)
                else:
                    shown += 1
                    yield FileInfo(path, size, mtime_ns)
                continue
            if stat_mod.S_ISDIR(mode):
                before = shown
                for item in self._walk(full, path, follow, real_root, seen):
                    shown += 1
                    yield item
                if shown == before and self._is_dir(full, path):
                    shown += 1
                    yield FileInfo(path, 0, mtime_ns, is_dir=True)
            elif stat_mod.S_ISREG(mode):
                shown += 1
                yield FileInfo(path, size, mtime_ns)

    def _is_dir(self, nfs_path: str, path: str) -> bool:
        info = self._stat_path("list", path, nfs_path)
        return info is not None and info[0]

    def _listdir(self, directory: str, rel: str) -> list[tuple[str, int, int, int]] | None:
        """(name, mode, size, mtime_ns) of each entry (not ``.``/``..``), or None when the
        directory is gone."""

        def run(driver: Any, ctx: _Context) -> list[tuple[str, int, int, int]] | None:
            holder = driver.new_NFSDirHandle()
            try:
                ret = driver.nfs_opendir(ctx.nfs, directory, holder)
                if -ret in GONE:
                    return None
                self._check(driver, ctx, ret, "list", rel)
                handle = driver.NFSDirHandle_value(holder)
            finally:
                driver.delete_NFSDirHandle(holder)
            out: list[tuple[str, int, int, int]] = []
            bad = 0
            try:
                while (entry := driver.nfs_readdir(ctx.nfs, handle)) is not None:
                    try:
                        name = entry.name
                    except UnicodeDecodeError:
                        bad += 1
                        continue
                    if name in (".", ".."):
                        continue
                    mtime = entry.mtime.tv_sec * 1_000_000_000 + entry.mtime_nsec
                    out.append((name, entry.mode, entry.size, mtime))
            finally:
                driver.nfs_closedir(ctx.nfs, handle)
            if bad:
                raise ConnectorError(
                    f"{self.name}: cannot list {rel or '/'} on {self._where}: {bad} name(s)"
                    " there are not valid UTF-8 (libnfs's Python binding cannot read them;"
                    " rename them on the server)"
                )
            missing = [i for i, e in enumerate(out) if not stat_mod.S_IFMT(e[1])]
            for i in missing:  # a server that sent no attributes: ask for them
                name = out[i][0]
                st = driver.nfs_stat_64()
                if driver.nfs_lstat64(ctx.nfs, posixpath.join(directory, name), st) == 0:
                    mtime = st.nfs_mtime * 1_000_000_000 + st.nfs_mtime_nsec
                    out[i] = (name, st.nfs_mode, st.nfs_size, mtime)
            return out

        return self._call("list", rel, run)

    def stat(self, path: str) -> FileInfo | None:
        """The entry at ``path``, links resolved here (libnfs mishandles absolute ones);
        None when nothing is there or when a link takes the path out of the root."""
        if not path:
            info = self._stat_path("stat", path, self._base())
        else:
            nfs_path = self._p(path)
            info = self._call("stat", path, lambda d, c: self._stat_inside(d, c, path, nfs_path))
        if info is None:
            return None
        is_dir, size, mtime_ns = info
        if is_dir:
            return FileInfo(path, 0, mtime_ns, is_dir=True)
        return FileInfo(path, size, mtime_ns)

    def open_read(self, path: str) -> BinaryIO:
        nfs_path = self._p_read(path)

        def run(driver: Any, ctx: _Context) -> _Reader:
            holder = driver.new_NFSFileHandle()
            try:
                ret = driver.nfs_open(ctx.nfs, nfs_path, os.O_RDONLY, holder)
                if ret in (-errno.ENOENT, -errno.ENOTDIR):
                    real = self._resolve(driver, ctx, nfs_path)
                    if real is not None and real != nfs_path:
                        ret = driver.nfs_open(ctx.nfs, real, os.O_RDONLY, holder)
                self._check(driver, ctx, ret, "read", path)
                handle = driver.NFSFileHandle_value(holder)
            finally:
                driver.delete_NFSFileHandle(holder)
            return _Reader(self, ctx, handle, path, nfs_path)

        for attempt in (0, 1):  # the reader keeps the context until it is closed
            ctx = self._checkout()
            try:
                return self._call("read", path, run, ctx=ctx)  # type: ignore[return-value]
            except TransientError:
                self._checkin(ctx, broken=True)
                if attempt:
                    raise
            except BaseException:
                self._checkin(ctx)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- writing -----------------------------------------------------------------------
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
        given = self._writable("write", path)
        tmp_name = f"{TMP_PREFIX}{uuid.uuid4().hex[:16]}"
        made: list[str] = []
        state = {"created": False}
        names: dict[str, str] = {}  # in the folder with its links resolved
        if mtime_ns is None and self.version == 4:
            # libnfs creates NFSv4 files exclusively, storing its verifier in the times
            mtime_ns = time.time_ns()

        def create(driver: Any, ctx: _Context) -> Any:
            # the folder resolved here (libnfs mishandles links in paths), checked inside
            directory = self._check_dir(driver, ctx, posixpath.dirname(given), "write", path)
            tmp = names["tmp"] = posixpath.join(directory, tmp_name)
            names["final"] = posixpath.join(directory, posixpath.basename(given))
            holder = driver.new_NFSFileHandle()
            try:
                for attempt in range(5):
                    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
                    ret = driver.nfs_create(ctx.nfs, tmp, flags, 0o644, holder)
                    if ret != -errno.ENOENT or attempt == 4:
                        break
                    # the folder is missing (or a delete pruned it meanwhile)
                    made.extend(self._mkdirs(driver, ctx, directory, path))
                self._check(driver, ctx, ret, "write", path)
                state["created"] = True
                return driver.NFSFileHandle_value(holder)
            finally:
                driver.delete_NFSFileHandle(holder)

        def finish(driver: Any, ctx: _Context) -> int:
            tmp, final = names["tmp"], names["final"]
            if mtime_ns is not None:
                ret = _c_lib().nfs_utimes(int(ctx.nfs), tmp.encode(), _timevals(mtime_ns))
                self._check(driver, ctx, ret, "set the modification time of", path)
            ret = driver.nfs_rename(ctx.nfs, tmp, final)
            if ret == -errno.EEXIST or ret == -errno.ENOTEMPTY:
                ret = -errno.EISDIR  # NFS servers differ in how they refuse this
            self._check(driver, ctx, ret, "write", path)
            st = driver.nfs_stat_64()
            self._check(driver, ctx, driver.nfs_stat64(ctx.nfs, final, st), "write", path)
            return st.nfs_size

        ctx = self._checkout()  # one context for the whole put: the handle lives on it
        try:
            handle = self._call("write", path, create, ctx=ctx)
            # the source is read without holding the context's lock (NFSv4 shares it)
            self._write_all(ctx, handle, stream, path)
            written = self._call("write", path, finish, ctx=ctx)
        except BaseException:
            tmp = names.get("tmp", "")
            self._discard(tmp, made, state["created"], None if ctx.closed else ctx)
            raise
        finally:
            self._checkin(ctx)
        return PutResult(size=written)

    def _write_all(self, ctx: _Context, handle: Any, stream: BinaryIO, path: str) -> None:
        """Copy ``stream`` into ``handle`` (on ``ctx``) in blocks the server and libnfs
        accept, then close it. ``ctx`` is locked per block, never while the source is
        read."""
        driver = _driver()
        step = min(ctx.writemax, BLOCK)
        if self.version == 4:
            step = min(step, V4_WRITE)
        offset = 0
        try:
            while True:
                block = stream.read(BLOCK)
                if not block:
                    break
                view = memoryview(block)
                with ctx.lock:
                    if ctx.closed:
                        raise TransientError(f"{self.name}: cannot write {path}: endpoint closed")
                    while view:
                        piece = bytearray(view[:step])
                        ret = driver.nfs_pwrite(ctx.nfs, handle, offset, len(piece), piece)
                        self._check(driver, ctx, ret, "write", path)
                        if ret == 0:
                            raise NFSError(
                                f"{self.name}: cannot write {path} on {self._where}: the"
                                " server accepted no data",
                                errno.EIO,
                            )
                        offset += ret
                        view = view[ret:]
        except NFSError as exc:
            with ctx.lock:
                if not ctx.closed:
                    driver.nfs_close(ctx.nfs, handle)
            if exc.errno in CONNECTION_ERRNOS:
                self._broken(ctx)
                raise TransientError(str(exc)) from None
            raise
        except BaseException:
            with ctx.lock:
                if not ctx.closed:
                    driver.nfs_close(ctx.nfs, handle)
            raise
        with ctx.lock:
            if ctx.closed:
                raise TransientError(f"{self.name}: cannot write {path}: endpoint closed")
            ret = driver.nfs_close(ctx.nfs, handle)
            try:
                self._check(driver, ctx, ret, "write", path)
            except NFSError as exc:
                if exc.errno in CONNECTION_ERRNOS:
                    self._broken(ctx)
                    raise TransientError(str(exc)) from None
                raise

    def _mkdirs(
        self, driver: Any, ctx: _Context, directory: str, path: str, what: str = "write"
    ) -> list[str]:
        """Create ``directory`` and its missing parents; return those created, deepest
        first. A file in the way is an error naming ``path``."""
        made: list[str] = []
        todo = [directory]
        while todo:
            current = todo[-1]
            ret = driver.nfs_mkdir(ctx.nfs, current)
            if ret == -errno.ENOENT and current != "/":
                todo.append(posixpath.dirname(current))
                continue
            if ret == 0:
                made.insert(0, current)
            else:
                st = driver.nfs_stat_64()
                if driver.nfs_stat64(ctx.nfs, current, st) != 0:
                    self._check(driver, ctx, ret, what, path)
                if not stat_mod.S_ISDIR(st.nfs_mode):
                    where = self._rel(current) or "/"
                    raise ConnectorError(f"{self.name}: cannot {what} {path}: {where} is a file")
            todo.pop()
        return made

    def _discard(self, tmp: str, made: list[str], created: bool, ctx: _Context | None) -> None:
        """After a failed put: remove its temporary file and the folders it created (on
        the put's context while it works, else on one of the pool)."""
        if not created and not made:
            return

        def run(driver: Any, ctx: _Context) -> None:
            if created:
                driver.nfs_unlink(ctx.nfs, tmp)
            for directory in made:  # deepest first
                if driver.nfs_rmdir(ctx.nfs, directory) != 0:
                    break
                self._dirs.pop(directory, None)

        try:
            self._call("clean up after", tmp, run, ctx=ctx)
        except ConnectorError:
            pass  # the connection is gone: the temporary name stays (reserved, skipped)

    def delete(self, path: str) -> None:
        given = self._writable("delete", path)
        names: dict[str, str] = {}

        def run(driver: Any, ctx: _Context) -> bool:
            try:
                parent = self._check_dir(driver, ctx, posixpath.dirname(given), "delete", path)
            except ConnectorError:
                st = driver.nfs_stat_64()
                if -driver.nfs_lstat64(ctx.nfs, posixpath.dirname(given), st) in GONE:
                    return False  # nothing there to delete
                raise
            target = names["target"] = posixpath.join(parent, posixpath.basename(given))
            ret = driver.nfs_unlink(ctx.nfs, target)
            if -ret in GONE:
                return False
            if ret in (-errno.EISDIR, -errno.EPERM, -errno.ENOTEMPTY, -errno.EACCES):
                st = driver.nfs_stat_64()
                if driver.nfs_lstat64(ctx.nfs, target, st) == 0 and stat_mod.S_ISDIR(st.nfs_mode):
                    ret = driver.nfs_rmdir(ctx.nfs, target)
                    if ret == -errno.ENOENT:
                        return False
                    self._dirs.pop(target, None)
            self._check(driver, ctx, ret, "delete", path)
            return True

        if self._call("delete", path, run):
            self._prune(posixpath.dirname(names["target"]))

    def _prune(self, directory: str) -> None:
        """Remove directories a delete left empty, up to (not including) the root."""
        root = self._base().rstrip("/")

        def run(driver: Any, ctx: _Context) -> None:
            current = directory
            while current.startswith(root + "/"):
                if driver.nfs_rmdir(ctx.nfs, current) != 0:
                    return
                self._dirs.pop(current, None)
                current = posixpath.dirname(current)

        self._call("delete", self._rel(directory), run)

    def make_dir(self, path: str) -> None:
        target = self._writable("create directory", path)

        def run(driver: Any, ctx: _Context) -> None:
            what = "create directory"
            parent = self._check_dir(driver, ctx, posixpath.dirname(target), what, path)
            self._mkdirs(
                driver, ctx, posixpath.join(parent, posixpath.basename(target)), path, what
            )

        self._call("create directory", path, run)

    def move(self, path: str, new_path: str) -> None:
        given_source = self._writable("move", path)
        given_dest = self._writable("move to", new_path)
        names: dict[str, str] = {}

        def run(driver: Any, ctx: _Context) -> None:
            src_dir = self._check_dir(driver, ctx, posixpath.dirname(given_source), "move", path)
            source = names["source"] = posixpath.join(src_dir, posixpath.basename(given_source))
            st = driver.nfs_stat_64()
            self._check(driver, ctx, driver.nfs_lstat64(ctx.nfs, source, st), "move", path)
            dest_dir = self._check_dir(
                driver, ctx, posixpath.dirname(given_dest), "move to", new_path
            )
            dest = posixpath.join(dest_dir, posixpath.basename(given_dest))
            self._mkdirs(driver, ctx, dest_dir, new_path)
            ret = driver.nfs_rename(ctx.nfs, source, dest)
            self._check(driver, ctx, ret, "move", path)

        self._call("move", path, run)
        self._prune(posixpath.dirname(names["source"]))

    def close(self) -> None:
        """Destroy every context (an open reader fails on its next read); a later call
        mounts again."""
        with self._cond:
            contexts, self._contexts = self._contexts, []
            self._idle = []
            self._generation += 1
            self._open = 0
            for ctx in contexts:
                ctx.counted = False
            self._cond.notify_all()
        for ctx in contexts:
            ctx.destroy()


class _Reader(io.RawIOBase):
    """A read-only binary stream over an open libnfs file: ``read(n)`` returns up to
    ``n`` bytes (less only at the end), fetched in blocks of the server's read size. It
    holds its context (NFSv3) until it is closed."""

    def __init__(
        self, endpoint: NFSEndpoint, ctx: _Context, handle: Any, path: str, nfs_path: str
    ) -> None:
        super().__init__()
        self._endpoint = endpoint
        self._ctx = ctx
        self._handle = handle
        self._path = path
        self._nfs_path = nfs_path
        self._reopened = False
        self._offset = 0
        self._eof = False
        self._broken = False

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read of a closed stream")
        ep, ctx, driver = self._endpoint, self._ctx, _driver()
        want = 1 << 62 if n is None or n < 0 else n
        pieces: list[bytes] = []
        got = 0
        with ctx.lock:
            if ctx.closed:
                raise TransientError(f"{ep.name}: cannot read {self._path}: endpoint closed")
            while got < want and not self._eof:
                size = min(want - got, ctx.readmax, BLOCK)
                buf = bytearray(size)
                ret = driver.nfs_pread(ctx.nfs, self._handle, self._offset, size, buf)
                if ret == -errno.EFAULT and not self._offset and self._reopen(driver, ctx):
                    continue
                try:
                    ep._check(driver, ctx, ret, "read", self._path)
                except NFSError as exc:
                    if exc.errno in CONNECTION_ERRNOS:
                        self._broken = True
                        raise TransientError(str(exc)) from None
                    raise
                if ret == 0:
                    self._eof = True
                    break
                pieces.append(bytes(buf) if ret == size else bytes(memoryview(buf)[:ret]))
                self._offset += ret
                got += ret
        return b"".join(pieces)

    def _reopen(self, driver: Any, ctx: _Context) -> bool:
        """libnfs 4.0 opens a path through an absolute symbolic link, then fails to read
        it: open the resolved path instead (once). The caller holds ``ctx.lock``."""
        if self._reopened:
            return False
        self._reopened = True
        real = self._endpoint._resolve(driver, ctx, self._nfs_path)
        if real is None or real == self._nfs_path:
            return False
        holder = driver.new_NFSFileHandle()
        try:
            if driver.nfs_open(ctx.nfs, real, os.O_RDONLY, holder) != 0:
                return False
            handle = driver.NFSFileHandle_value(holder)
        finally:
            driver.delete_NFSFileHandle(holder)
        driver.nfs_close(ctx.nfs, self._handle)
        self._handle = handle
        return True

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        try:
            with self._ctx.lock:
                if not self._ctx.closed and not self._broken:
                    _driver().nfs_close(self._ctx.nfs, self._handle)
        finally:
            self._endpoint._checkin(self._ctx, broken=self._broken)
            super().close()


def _readlink(driver: Any, ctx: _Context, path: str, size: int) -> str | None:
    """The target of the link ``path`` whose lstat size is ``size``. (libnfs 4.0's NFSv4
    READLINK neither ends the target with a NUL nor accepts a buffer of exactly its
    length: the buffer is roomy and the size says where the target ends.)"""
    buf = bytearray(max(size, 0) + 4096)
    if driver.nfs_readlink(ctx.nfs, path, buf, len(buf)) != 0:
        return None
    raw = bytes(buf[:size]) if size > 0 else bytes(buf)
    raw = raw.split(b"\0", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


def _last_error(driver: Any, nfs: Any) -> str:
    """libnfs's message for the last failure, one line (it may hold stray bytes)."""
    try:
        return _one_line(driver.nfs_get_error(nfs))
    except UnicodeDecodeError:
        return "(unreadable libnfs error message)"
