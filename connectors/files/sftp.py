"""``sftp://user@host:port/path``: a directory tree on an SSH server, through paramiko.

The URL path is absolute on the server (``sftp://backup@nas/srv/share``); ``/~/data``
is relative to the login directory. The port defaults to 22. A password may sit in the
URL (``sftp://user:${PW}@host/path``), but the ``password`` option is the usual place.

Options (``[connections.NAME.options]``):

- ``key_file``: a private key (``~`` expanded, relative to the plan's folder);
  ``key_passphrase`` when it is encrypted
- ``password``: password (or keyboard-interactive) authentication, tried after the keys
- ``allow_agent`` (default true): also try the keys of a running ssh-agent
- ``known_hosts`` (default ``~/.ssh/known_hosts``): the server's key must be listed
  there; an unknown server is refused, a *changed* key is always refused
- ``accept_new_host_key`` (default false): trust an unknown server on first use, append
  its key to ``known_hosts`` and leave one warning line in :attr:`SFTPEndpoint.notes`
- ``timeout`` (seconds, default 30): connecting, and any single request

One SSH connection per endpoint, opened on first use; each thread gets its own SFTP
channel on it. A dropped connection is reopened once, after that the operation fails
with a :class:`~migrate.errors.TransientError`. Puts write ``<dir>/.migrate-tmp-<random>``
and rename it over the final name (``posix-rename@openssh.com``, else remove + rename),
keeping the source's modification time (SFTP keeps whole seconds).
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import socket
import stat as stat_mod
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, TypeVar
from urllib.parse import unquote, urlsplit

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

if TYPE_CHECKING:  # pragma: no cover
    import paramiko

T = TypeVar("T")

#: SFTP read/write request size: paramiko's own limit, and what OpenSSH accepts per write
REQUEST = 32 * 1024
#: SSH channel window: measured best for paramiko on loopback (larger windows were slower)
WINDOW = 2 * 1024 * 1024
#: files larger than this are read with paramiko's prefetch (a thread that pipelines every
#: request); smaller ones with plain requests, cheaper than starting that thread
PREFETCH_ABOVE = 2 * REQUEST
#: ciphers tried first: AES-GCM needs no separate MAC pass (cheaper in paramiko)
FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr")


def _paramiko() -> Any:
    try:
        import paramiko
    except ImportError:
        raise MissingDriverError("paramiko", "sftp") from None
    return paramiko


class _NotFound(ConnectorError):
    """Nothing at that path (a ConnectorError the endpoint also checks for)."""


class SFTPEndpoint:
    """A directory tree on an SFTP server (one SSH connection, one channel per thread)."""

    kind = "file"
    OPTIONS: ClassVar[dict[str, type]] = {
        "key_file": str,
        "key_passphrase": str,
        "password": str,
        "allow_agent": bool,
        "known_hosts": str,
        "accept_new_host_key": bool,
        "timeout": int,
    }
    capabilities = FileCapabilities(
        scheme="sftp", filesystem=True, symlinks=True, mtime_settable=True
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
        if parts.scheme != "sftp" or not parts.hostname:
            raise PlanError(f"connections.{name}.url: expected sftp://user@host[:port]/path")
        try:
            port = parts.port or 22
        except ValueError:
            raise PlanError(f"connections.{name}.url: the port is not a number") from None
        if parts.query or parts.fragment:
            raise PlanError(
                f"connections.{name}.url: an sftp URL takes no '?' or '#' part"
                " (quote them as %3F / %23 in the path)"
            )
        self.name = name
        self.host = parts.hostname
        self.port = port
        self.user = unquote(parts.username or "") or _local_user()
        path = unquote(parts.path) or "/"
        self._home_relative = path == "/~" or path.startswith("/~/")
        self.root = posixpath.normpath(path[2:].lstrip("/") if self._home_relative else path)
        if self._home_relative and self.root == ".":
            self.root = ""
        self.dry_run = dry_run
        self.workers = workers

        def opt(key: str, default: Any = None) -> Any:
            return option(options, key, self.OPTIONS[key], default, name)

        self._password: str | None = opt("password") or (
            unquote(parts.password) if parts.password else None
        )
        self._passphrase: str | None = opt("key_passphrase")
        key_file = opt("key_file")
        self._key_file = _local_path(key_file, base_dir) if key_file else None
        self._allow_agent: bool = opt("allow_agent", True)
        known = opt("known_hosts")
        self.known_hosts = _local_path(known or "~/.ssh/known_hosts", base_dir)
        self._accept_new: bool = opt("accept_new_host_key", False)
        self.timeout: int = opt("timeout", 30)
        self._secrets = {s for s in (*secrets, self._password, self._passphrase) if s}
        #: warnings for the run's report (a host key that was added, ...)
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self._transport: paramiko.Transport | None = None
        self._generation = 0
        self._local = threading.local()
        self._clients: list[paramiko.SFTPClient] = []
        self._real_root: str | None = None
        self._abs_root: str | None = None

    def describe(self) -> str:
        path = f"~/{self.root}" if self._home_relative else self.root
        return f"sftp {self.user}@{self.host}:{self.port} {path}"

    # -- connection --------------------------------------------------------------------
    @property
    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _clean(self, text: str) -> str:
        """One line, no secret in it."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return " ".join(text.split()) or "unknown error"

    def _connect(self) -> paramiko.Transport:
        """Open and authenticate the SSH connection (host key checked first)."""
        paramiko = _paramiko()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except socket.gaierror as exc:
            raise ConnectorError(
                f"{self.name}: cannot resolve sftp host {self.host}: {exc.strerror or exc}"
            ) from None
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            if isinstance(exc, socket.timeout):
                reason = f"no answer within {self.timeout} s"
            raise TransientError(
                f"{self.name}: cannot connect to sftp {self._where}: {self._clean(reason)}"
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # many small requests
        transport = paramiko.Transport(
            sock, default_window_size=WINDOW, default_max_packet_size=REQUEST
        )
        try:
            transport.banner_timeout = self.timeout
            transport.auth_timeout = self.timeout
            host_keys = self._load_known_hosts()
            known = host_keys.lookup(self._host_key_name()) or {}
            sec = transport.get_security_options()
            fast = [c for c in FAST_CIPHERS if c in sec.ciphers]
            sec.ciphers = tuple(fast + [c for c in sec.ciphers if c not in fast])
            if known:  # ask for a key type we know, as OpenSSH does
                ours = [k for k in known if k in sec.key_types]
                sec.key_types = tuple(ours + [k for k in sec.key_types if k not in ours])
            transport.start_client(timeout=self.timeout)
            self._check_host_key(transport.get_remote_server_key(), known)
            self._authenticate(transport)
        except ConnectorError:
            transport.close()
            raise
        except (paramiko.SSHException, EOFError, OSError) as exc:
            transport.close()
            raise TransientError(
                f"{self.name}: ssh connection to {self._where} failed:"
                f" {self._clean(str(exc) or type(exc).__name__)}"
            ) from None
        transport.set_keepalive(30)
        return transport

    def _host_key_name(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def _load_known_hosts(self) -> paramiko.HostKeys:
        paramiko = _paramiko()
        keys = paramiko.HostKeys()
        try:
            keys.load(str(self.known_hosts))
        except FileNotFoundError:
            pass
        except (OSError, paramiko.SSHException) as exc:
            raise ConnectorError(
                f"{self.name}: cannot read known_hosts file {self.known_hosts}: {exc}"
            ) from None
        return keys

    def _check_host_key(self, key: paramiko.PKey, known: Any) -> None:
        """Refuse unknown (unless accept_new_host_key) and changed server keys."""
        name = self._host_key_name()
        kind, fingerprint = key.get_name(), key.fingerprint
        if known:
            if kind in known and known[kind] == key:
                return
            old = ", ".join(f"{k} {v.fingerprint}" for k, v in known.items())
            raise ConnectorError(
                f"{self.name}: the host key of sftp {self._where} has CHANGED (server sends"
                f" {kind} {fingerprint}, {self.known_hosts} has {old}); refusing to connect."
                f" If the change is expected: ssh-keygen -R '{name}' -f {self.known_hosts}"
            )
        if not self._accept_new:
            port = f"-p {self.port} " if self.port != 22 else ""
            raise ConnectorError(
                f"{self.name}: the host key of sftp {self._where} is unknown ({kind}"
                f" {fingerprint}); check it, then add it with: ssh-keyscan {port}{self.host}"
                f" >> {self.known_hosts} (or set accept_new_host_key = true)"
            )
        paramiko = _paramiko()
        line = paramiko.hostkeys.HostKeyEntry([name], key).to_line()
        try:
            self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(self.known_hosts, "a", encoding="utf-8") as out:
                out.write(line)
        except OSError as exc:
            raise ConnectorError(
                f"{self.name}: cannot add the host key of {self._where} to"
                f" {self.known_hosts}: {exc.strerror or exc}"
            ) from None
        self.notes.append(
            f"{self.name}: new host key of sftp {self._where} ({kind} {fingerprint})"
            f" accepted and added to {self.known_hosts}"
        )

    def _authenticate(self, transport: paramiko.Transport) -> None:
        paramiko = _paramiko()
        tried: list[str] = []
        keys: list[tuple[str, Any]] = []
        if self._key_file is not None:
            try:
                keys.append(("key file", paramiko.PKey.from_path(self._key_file, self._passphrase)))
            except paramiko.PasswordRequiredException:
                raise ConnectorError(
                    f"{self.name}: key file {self._key_file} is encrypted: set key_passphrase"
                ) from None
            except (OSError, paramiko.SSHException, ValueError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                raise ConnectorError(
                    f"{self.name}: cannot load key file {self._key_file}: {self._clean(reason)}"
                ) from None
        if self._allow_agent:
            try:
                keys.extend(("ssh-agent", k) for k in paramiko.Agent().get_keys())
            except paramiko.SSHException:
                pass  # no usable agent
        for label, key in keys:
            try:
                transport.auth_publickey(self.user, key)
            except paramiko.BadAuthenticationType as exc:
                tried.append(f"{label} (server allows only {', '.join(exc.allowed_types)})")
                break
            except paramiko.AuthenticationException:
                tried.append(label)
                continue
            if transport.is_authenticated():
                return
        if self._password is not None:
            password = self._password
            try:
                transport.auth_password(self.user, password)
            except paramiko.BadAuthenticationType as exc:
                if "keyboard-interactive" not in exc.allowed_types:
                    tried.append("password (not allowed by the server)")
                else:
                    try:
                        transport.auth_interactive(
                            self.user, lambda _t, _i, prompts: [password for _ in prompts]
                        )
                    except paramiko.AuthenticationException:
                        tried.append("password")
            except paramiko.AuthenticationException:
                tried.append("password")
            if transport.is_authenticated():
                return
        what = ", ".join(dict.fromkeys(tried)) or "nothing: set key_file or password"
        raise ConnectorError(
            f"{self.name}: authentication failed for user {self.user} on sftp {self._where}"
            f" (tried {what})"
        )

    def _client(self) -> tuple[int, paramiko.SFTPClient]:
        """This thread's SFTP channel (opened on first use, and after a reconnect)."""
        mine = getattr(self._local, "client", None)
        if mine is not None and mine[0] == self._generation:
            return mine
        with self._lock:
            if self._transport is None or not self._transport.is_active():
                self._reopen()
            transport, generation = self._transport, self._generation
        paramiko = _paramiko()
        assert transport is not None
        try:
            client = paramiko.SFTPClient.from_transport(
                transport, window_size=WINDOW, max_packet_size=REQUEST
            )
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransientError(
                f"{self.name}: cannot open an sftp channel on {self._where}:"
                f" {self._clean(str(exc) or type(exc).__name__)}"
            ) from None
        if client is None:  # pragma: no cover - paramiko returns None on a closed transport
            raise TransientError(f"{self.name}: cannot open an sftp channel on {self._where}")
        client.get_channel().settimeout(self.timeout)
        with self._lock:
            self._clients.append(client)
        self._local.client = (generation, client)
        return generation, client

    def _reopen(self) -> None:
        """Replace the transport (the lock is held)."""
        if self._transport is not None:
            self._transport.close()
        self._transport = self._connect()
        self._generation += 1

    def _dropped(self, generation: int) -> None:
        """The connection of ``generation`` broke: forget it (the next call reconnects)."""
        self._local.client = None
        with self._lock:
            if self._generation == generation and self._transport is not None:
                self._transport.close()

    def _is_drop(self, exc: BaseException) -> bool:
        paramiko = _paramiko()
        if isinstance(exc, (EOFError, paramiko.SSHException, socket.timeout)):
            return True
        if isinstance(exc, OSError) and exc.errno is None and not exc.args[1:]:
            # paramiko's "Socket is closed" / "Server connection dropped"
            transport = self._transport
            return transport is None or not transport.is_active()
        return isinstance(exc, OSError) and exc.errno in (
            errno.ECONNRESET,
            errno.EPIPE,
            errno.ETIMEDOUT,
        )

    def _run(self, what: str, path: str, fn: Callable[[paramiko.SFTPClient], T]) -> T:
        """``fn(client)``; a dropped connection is reopened once and ``fn`` retried.
        SFTP errors become :class:`ConnectorError` naming ``what`` and ``path``."""
        for attempt in (0, 1):
            generation, client = self._client()
            try:
                return fn(client)
            except UnicodeError as exc:  # a name on the server that is not UTF-8
                self._local.client = None  # the channel may hold half a reply: use a new one
                raise self._error(what, path, exc) from None
            except (OSError, EOFError, _paramiko().SSHException) as exc:
                if not self._is_drop(exc):
                    raise self._error(what, path, exc) from None
                self._dropped(generation)
                if attempt:
                    raise TransientError(
                        f"{self.name}: cannot {what} {path or '/'}: the connection to sftp"
                        f" {self._where} dropped: {self._clean(str(exc) or type(exc).__name__)}"
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, what: str, path: str, exc: BaseException) -> ConnectorError:
        kind = ConnectorError
        if isinstance(exc, OSError) and exc.errno == errno.ENOENT:
            reason, kind = "no such file or directory", _NotFound
        elif isinstance(exc, OSError) and exc.errno == errno.EACCES:
            reason = "permission denied"
        elif isinstance(exc, UnicodeError):
            reason = "a name there is not UTF-8"
        else:
            reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        return kind(
            f"{self.name}: cannot {what} {path or '/'} on sftp {self._where}:"
            f" {self._clean(reason or type(exc).__name__)}"
        )

    # -- paths -------------------------------------------------------------------------
    def _root(self) -> str:
        """The absolute root on the server (resolves ``~`` once)."""
        if self._abs_root is None:
            if self._home_relative:
                home = self._run("find home of", "", lambda c: c.normalize("."))
                self._abs_root = posixpath.join(home, self.root) if self.root else home
            else:
                self._abs_root = self.root
        return self._abs_root

    def _abs(self, path: str) -> str:
        root = self._root()
        return posixpath.join(root, path) if path else root

    def _writable(self, what: str, path: str) -> str:
        why = unsafe_name(path)
        if why:
            raise ConnectorError(f"{self.name}: cannot {what} {path!r}: {why}")
        return self._abs(path)

    # -- reading -----------------------------------------------------------------------
    def list(self, *, follow_symlinks: bool = False) -> Iterator[FileInfo]:
        root = self._root()
        try:
            st = self._run("list", "", lambda c: c.stat(root))
        except _NotFound:
            return
        if not stat_mod.S_ISDIR(st.st_mode or 0):
            raise ConnectorError(f"{self.name}: {root} on sftp {self._where} is not a directory")
        real_root = self._real(root) or root
        yield from self._walk(root, "", follow_symlinks, real_root, {real_root})

    def _real(self, abs_path: str) -> str | None:
        """The server's canonical path (links resolved), or None when it cannot be
        resolved (dangling link, loop, vanished)."""
        try:
            return self._run("resolve", abs_path, lambda c: c.normalize(abs_path))
        except TransientError:
            raise
        except ConnectorError:
            return None

    def _walk(
        self, directory: str, rel: str, follow: bool, real_root: str, seen: set[str]
    ) -> Iterator[FileInfo]:
        try:
            entries = self._run("list", rel, lambda c: c.listdir_attr(directory))
        except _NotFound:
            return  # removed (or replaced by a file) while we listed
        shown = 0
        for entry in entries:
            name = entry.filename
            if name in (".", ".."):
                continue
            path = f"{rel}/{name}" if rel else name
            full = posixpath.join(directory, name)
            st: Any = entry
            if stat_mod.S_ISLNK(entry.st_mode or 0):
                if not follow:
                    continue
                target = self._real(full)
                if target is None:
                    continue  # dangling, or a loop
                if target != real_root and not target.startswith(real_root.rstrip("/") + "/"):
                    continue  # never leave the root
                try:
                    st = self._run("stat", path, lambda c, full=full: c.stat(full))
                except TransientError:
                    raise
                except ConnectorError:
                    continue  # vanished, or a loop the server refuses to follow
                if stat_mod.S_ISDIR(st.st_mode or 0):
                    if target in seen:
                        continue  # a loop
                    before = shown
                    for info in self._walk(full, path, follow, real_root, seen | {target}):
                        shown += 1
                        yield info
                    if shown == before:
                        shown += 1
                        yield FileInfo(path, 0, _mtime_ns(st), is_dir=True)
                    continue
            mode = st.st_mode or 0
            if stat_mod.S_ISDIR(mode):
                before = shown
                for info in self._walk(full, path, follow, real_root, seen):
                    shown += 1
                    yield info
                if shown == before and self._is_dir(full):
                    shown += 1
                    yield FileInfo(path, 0, _mtime_ns(st), is_dir=True)
            elif stat_mod.S_ISREG(mode):
                shown += 1
                yield FileInfo(path, st.st_size or 0, _mtime_ns(st))

    def _is_dir(self, abs_path: str) -> bool:
        try:
            st = self._run("stat", abs_path, lambda c: c.stat(abs_path))
        except TransientError:
            raise
        except ConnectorError:
            return False
        return stat_mod.S_ISDIR(st.st_mode or 0)

    def stat(self, path: str) -> FileInfo | None:
        target = self._abs(path)
        try:
            st = self._run("stat", path, lambda c: c.stat(target))
        except _NotFound:
            return None
        if stat_mod.S_ISDIR(st.st_mode or 0):
            return FileInfo(path, 0, _mtime_ns(st), is_dir=True)
        return FileInfo(path, st.st_size or 0, _mtime_ns(st))

    def open_read(self, path: str) -> BinaryIO:
        """A stream over the remote file with read-ahead (paramiko's prefetch): requests
        are pipelined, and what is buffered stays within the SSH channel's window."""
        target = self._abs(path)

        def opener(client: paramiko.SFTPClient) -> _Reader:
            handle = client.open(target, "rb")
            try:
                size = handle.stat().st_size or 0
                if size > PREFETCH_ABOVE:
                    handle.prefetch(size)
            except BaseException:
                handle.close()
                raise
            return _Reader(self, path, handle, size)

        return self._run("read", path, opener)  # type: ignore[return-value]

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
        final = self._writable("write", path)
        directory = posixpath.dirname(final)
        tmp = posixpath.join(directory, f"{TMP_PREFIX}{uuid.uuid4().hex[:16]}")
        made: list[str] = []
        state = {"opened": False}

        def write(client: paramiko.SFTPClient) -> int:
            for attempt in range(5):
                try:
                    handle = client.open(tmp, "wbx")
                    break
                except OSError as exc:
                    if exc.errno != errno.ENOENT or attempt == 4:
                        raise
                    # the folder is missing (or a delete pruned it meanwhile)
                    made.extend(self._mkdirs(client, directory, path))
            state["opened"] = True
            with handle:
                handle.set_pipelined(True)
                while True:
                    block = stream.read(BLOCK)
                    if not block:
                        break
                    handle.write(bytes(block))
            if mtime_ns is not None:
                seconds = mtime_ns // 1_000_000_000
                client.utime(tmp, (seconds, seconds))
            try:
                client.posix_rename(tmp, final)
            except OSError as exc:
                if self._is_drop(exc):
                    raise
                self._rename_fallback(client, tmp, final, path, exc)
            return client.stat(final).st_size or 0

        try:
            written = self._run_once("write", path, write)
        except BaseException:
            self._discard(tmp, made, state["opened"])
            raise
        return PutResult(size=written)

    def _rename_fallback(
        self, client: paramiko.SFTPClient, tmp: str, final: str, path: str, exc: OSError
    ) -> None:
        """posix-rename failed: over a directory is an error; without the extension
        (or on a server that refuses), remove the old file and rename."""
        try:
            old = client.lstat(final)
        except OSError:
            old = None
        if old is not None and stat_mod.S_ISDIR(old.st_mode or 0):
            raise ConnectorError(f"{self.name}: cannot write {path}: a directory has that name")
        if old is not None:
            client.remove(final)
        try:
            client.rename(tmp, final)
        except OSError:
            raise exc from None

    def _run_once(self, what: str, path: str, fn: Callable[[paramiko.SFTPClient], T]) -> T:
        """Like :meth:`_run` without the retry (``fn`` consumed a stream)."""
        generation, client = self._client()
        try:
            return fn(client)
        except (OSError, EOFError, _paramiko().SSHException) as exc:
            if not self._is_drop(exc):
                raise self._error(what, path, exc) from None
            self._dropped(generation)
            raise TransientError(
                f"{self.name}: cannot {what} {path}: the connection to sftp {self._where}"
                f" dropped: {self._clean(str(exc) or type(exc).__name__)}"
            ) from None

    def _mkdirs(self, client: paramiko.SFTPClient, directory: str, path: str) -> list[str]:
        """Create ``directory`` and its missing parents; return those created, deepest
        first. A file in the way is an error naming ``path``."""
        made: list[str] = []
        todo = [directory]
        while todo:
            current = todo[-1]
            try:
                client.mkdir(current)
            except OSError as exc:
                if exc.errno == errno.ENOENT and current not in ("/", ""):
                    todo.append(posixpath.dirname(current))
                    continue
                try:
                    st = client.stat(current)
                except OSError:
                    raise exc from None
                if not stat_mod.S_ISDIR(st.st_mode or 0):
                    raise ConnectorError(
                        f"{self.name}: cannot write {path}: {self._rel(current)} is a file"
                    ) from None
            else:
                made.insert(0, current)
            todo.pop()
        return made

    def _rel(self, abs_path: str) -> str:
        root = self._root()
        return posixpath.relpath(abs_path, root) if abs_path != root else "/"

    def _discard(self, tmp: str, made: list[str], opened: bool) -> None:
        """After a failed put: remove its temporary file and the folders it created."""
        try:
            _, client = self._client()
            if opened:
                try:
                    client.remove(tmp)
                except OSError:
                    pass
            for directory in made:  # deepest first
                try:
                    client.rmdir(directory)
                except OSError:
                    break
        except (ConnectorError, EOFError, OSError, _paramiko().SSHException):
            pass  # the connection is gone: the temporary name stays (reserved, skipped)

    def delete(self, path: str) -> None:
        target = self._writable("delete", path)

        def remove(client: paramiko.SFTPClient) -> bool:
            try:
                client.remove(target)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return False
                try:
                    st = client.lstat(target)
                except OSError:
                    raise exc from None
                if not stat_mod.S_ISDIR(st.st_mode or 0):
                    raise
                try:
                    client.rmdir(target)
                except OSError as rm_exc:
                    if rm_exc.errno == errno.ENOENT:
                        return False
                    raise
            return True

        if self._run("delete", path, remove):
            self._prune(posixpath.dirname(target))

    def _prune(self, directory: str) -> None:
        """Remove directories a delete left empty, up to (not including) the root."""
        root = self._root().rstrip("/")

        def prune(client: paramiko.SFTPClient) -> None:
            current = directory
            while current.startswith(root + "/"):
                try:
                    client.rmdir(current)
                except OSError:
                    return
                current = posixpath.dirname(current)

        self._run("delete", self._rel(directory), prune)

    def make_dir(self, path: str) -> None:
        target = self._writable("create directory", path)
        self._run("create directory", path, lambda c: self._mkdirs(c, target, path))

    def move(self, path: str, new_path: str) -> None:
        source = self._writable("move", path)
        dest = self._writable("move to", new_path)

        def rename(client: paramiko.SFTPClient) -> None:
            client.stat(source)  # a missing source names the source, not the target
            self._mkdirs(client, posixpath.dirname(dest), new_path)
            try:
                client.posix_rename(source, dest)
            except OSError as exc:
                if self._is_drop(exc):
                    raise
                self._rename_fallback(client, source, dest, new_path, exc)

        self._run("move", path, rename)
        self._prune(posixpath.dirname(source))

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
            transport, self._transport = self._transport, None
            self._generation += 1
        for client in clients:
            try:
                client.close()
            except Exception:  # closing a broken channel
                pass
        if transport is not None:
            transport.close()


class _Reader(io.RawIOBase):
    """A read-only binary stream over an :class:`paramiko.SFTPFile`.

    ``read(n)`` returns up to ``n`` bytes (less only at the end), gathered from the
    prefetched 32 KiB responses without paramiko's quadratic buffer growth. The stream
    ends at the size the file had when it was opened (a file that grows meanwhile is
    noticed by the engine through its size and mtime). Errors are
    :class:`ConnectorError`; a dropped connection is a :class:`TransientError`.
    """

    def __init__(self, endpoint: SFTPEndpoint, path: str, handle: Any, size: int) -> None:
        super().__init__()
        self._endpoint = endpoint
        self._path = path
        self._handle = handle
        self._left = size  # bytes the open file had: no request is spent on reading EOF

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read of a closed stream")
        want = BLOCK * 1024 if n is None or n < 0 else n
        pieces: list[bytes] = []
        got = 0
        try:
            while got < want and self._left > 0:
                piece = self._handle.read(min(REQUEST, want - got, self._left))
                if not piece:
                    break  # the file shrank
                pieces.append(piece)
                got += len(piece)
                self._left -= len(piece)
        except (OSError, EOFError, _paramiko().SSHException) as exc:
            ep = self._endpoint
            if ep._is_drop(exc):
                raise TransientError(
                    f"{ep.name}: cannot read {self._path}: the connection to sftp {ep._where}"
                    f" dropped: {ep._clean(str(exc) or type(exc).__name__)}"
                ) from None
            raise ep._error("read", self._path, exc) from None
        return b"".join(pieces)

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._handle.close()
            except (OSError, EOFError, _paramiko().SSHException):
                pass  # nothing to keep: the read is over
        super().close()


def _mtime_ns(st: Any) -> int | None:
    mtime = getattr(st, "st_mtime", None)
    return None if mtime is None else int(mtime) * 1_000_000_000


def _local_path(value: str, base_dir: Path) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else base_dir / path


def _local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no user name at all
        return "root"
