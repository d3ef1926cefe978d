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

Connections: a pool of SFTP channels shared by every thread, spread over several SSH
connections (:data:`CHANNELS_PER_CONNECTION` each; each connection has its own paramiko
thread and sshd process), up to one channel per worker (at least :data:`MAX_CHANNELS`).
An operation takes an idle channel (or opens one, and a connection when the others are
full) and gives it back when it is done; an open reader keeps its channel until it is
closed; a thread finding every channel busy waits for one. The first connection is opened
alone (its host key check may add to known_hosts), the others as they are needed. A
dropped connection is left for another (the operation is retried once), after that the
operation fails with a :class:`~migrate.errors.TransientError`.

Reads and writes are pipelined without a helper thread: a reader asks for at most
:data:`READ_AHEAD` bytes ahead of what it returned, in requests of 255 KiB (OpenSSH's
largest reply; the SSH packets are as large, so one reply is one packet), and takes the
file's size from the listing (else from a stat sent with the open) to know how far to
ask. Closing a reader sends CLOSE without waiting for its reply. Puts write
``<dir>/.migrate-tmp-<random>`` with writes of 32 KiB pipelined (:data:`DEPTH`),
check the status of every one and the temporary file's size, and rename it over the
final name (``posix-rename@openssh.com``, else remove + rename), keeping the source's
modification time (SFTP keeps whole seconds).

Writes (put, make_dir, move, delete) never go through a symbolic link that leads out of
the root: the folder written to is resolved on the server first (cached per folder) and
refused when it lies outside; ``stat`` reports nothing for a path that leads out.

``known_hosts``: hashed names are understood; a key listed as ``@revoked`` is refused;
``@cert-authority`` lines are skipped (host certificates are not used).
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import socket
import stat as stat_mod
import threading
import time
import uuid
from collections import deque
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

#: SFTP write request size: paramiko's own limit, and what OpenSSH accepts per write
REQUEST = 32 * 1024
#: SSH channel window (per channel): what the server may send before it is read
WINDOW = 4 * 1024 * 1024
#: the largest SSH packet accepted: one whole read reply fits in it (OpenSSH sends
#: packets up to the size the client allows)
MAX_PACKET = 256 * 1024 + 1024
#: write requests a put may have unanswered (what is in flight is bounded by the channel
#: window: sending waits for it; a write that failed is noticed at most this many later)
DEPTH = 256
#: read request size: what OpenSSH's sftp-server answers in one reply (256 KiB less its
#: 1 KiB header room); a server that answers less is asked for what it answers from then on
READ_REQUEST = 255 * 1024
#: bytes a reader asks for ahead of what it returned (what arrives beyond the channel
#: window waits on the server)
READ_AHEAD = 4 * 1024 * 1024
#: SFTP channels per endpoint at least (more with more workers, up to CHANNEL_CEILING)
MAX_CHANNELS = 8
CHANNEL_CEILING = 64
#: channels per SSH connection: each connection has its own paramiko thread and sshd
#: process, so the work spreads (SFTP to S3 with 16 workers: 1-2 per connection 13.1-13.3
#: s, 4: 13.7 s, 8: 14.5 s; rclone opens one per transfer); far below OpenSSH's
#: MaxSessions (10), which a thread that already holds a channel (an open reader) may go
#: up to (HARD_MAX_CHANNELS)
CHANNELS_PER_CONNECTION = 2
HARD_MAX_CHANNELS = 10
#: connections opened at once at most (sshd's MaxStartups, 10 by default, drops
#: connections still authenticating beyond it), and the pause after an extra one failed
MAX_CONNECTING = 2
RECONNECT_PAUSE = 5.0
#: file sizes a listing keeps for open_read (an fstat saved per file), at most
SIZE_HINTS = 1_000_000
#: folders known to lie inside the root (resolved on the server), forgotten past this many
SAFE_DIRS_CACHE = 100_000
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
    """A directory tree on an SFTP server (a pool of channels over a few SSH connections)."""

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
        if "?" in url or "#" in url:
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
        self._cond = threading.Condition(self._lock)
        #: channels open at most (a thread that holds one may open one more), on at most
        #: max_connections SSH connections of CHANNELS_PER_CONNECTION channels each
        self.max_channels = min(max(MAX_CHANNELS, workers), CHANNEL_CEILING)
        self.max_connections = -(-self.max_channels // CHANNELS_PER_CONNECTION)
        #: the channel pool: live connections, idle channels, channels open on live
        #: connections, connections being opened, and how many channels each thread holds
        self._conns: list[_Conn] = []
        self._idle: list[tuple[_Conn, paramiko.SFTPClient]] = []
        self._open = 0
        self._connecting = 0
        self._held: dict[int, int] = {}
        self._no_connect_before = 0.0  # no extra connection before (after one failed)
        #: file sizes from the last listing (a hint for open_read: no fstat per file)
        self._sizes: dict[str, int] = {}
        self._real_root: str | None = None
        self._abs_root: str | None = None
        self._safe_dirs: set[str] = set()  # absolute folders known to resolve inside the root

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
        try:
            transport = paramiko.Transport(
                sock, default_window_size=WINDOW, default_max_packet_size=MAX_PACKET
            )
        except BaseException:
            sock.close()
            raise
        try:
            transport.banner_timeout = self.timeout
            transport.auth_timeout = self.timeout
            host_keys, revoked = self._load_known_hosts()
            known = host_keys.lookup(self._host_key_name()) or {}
            sec = transport.get_security_options()
            fast = [c for c in FAST_CIPHERS if c in sec.ciphers]
            sec.ciphers = tuple(fast + [c for c in sec.ciphers if c not in fast])
            if known:  # ask for a key type we know, as OpenSSH does
                ours = [k for k in known if k in sec.key_types]
                sec.key_types = tuple(ours + [k for k in sec.key_types if k not in ours])
            transport.start_client(timeout=self.timeout)
            self._check_host_key(transport.get_remote_server_key(), known, revoked)
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
        except BaseException:
            transport.close()
            raise
        transport.set_keepalive(30)
        return transport

    def _host_key_name(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def _load_known_hosts(self) -> tuple[paramiko.HostKeys, list[Any]]:
        """The known host keys, and the keys listed as ``@revoked``. Read line by line
        (paramiko's loader fails on marker lines): ``@cert-authority`` lines are skipped
        (host certificates are not used), so are lines that cannot be parsed, as OpenSSH
        does."""
        paramiko = _paramiko()
        keys = paramiko.HostKeys()
        revoked: list[Any] = []
        try:
            text = self.known_hosts.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return keys, revoked
        except OSError as exc:
            raise ConnectorError(
                f"{self.name}: cannot read known_hosts file {self.known_hosts}:"
                f" {exc.strerror or exc}"
            ) from None
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            marker = ""
            if line.startswith("@"):
                marker, line = [*line.split(None, 1), ""][:2]
                if marker != "@revoked":
                    continue  # @cert-authority (or an unknown marker): not a host key
            try:
                entry = paramiko.hostkeys.HostKeyEntry.from_line(line.strip(), lineno)
            except Exception:  # InvalidHostKey, a bad key blob: skipped, as OpenSSH does
                continue
            if entry is None or entry.key is None:
                continue
            if marker:
                revoked.append(entry.key)
                continue
            for host in entry.hostnames:
                keys.add(host, entry.key.get_name(), entry.key)
        return keys, revoked

    def _check_host_key(self, key: paramiko.PKey, known: Any, revoked: list[Any]) -> None:
        """Refuse revoked, unknown (unless accept_new_host_key) and changed server keys.
        A key marked ``@revoked`` is refused whatever host names its line lists."""
        name = self._host_key_name()
        kind, fingerprint = key.get_name(), key.fingerprint
        if any(key == bad for bad in revoked):
            raise ConnectorError(
                f"{self.name}: the host key of sftp {self._where} ({kind} {fingerprint}) is"
                f" marked @revoked in {self.known_hosts}; refusing to connect"
            )
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

    # -- the channel pool ---------------------------------------------------------------
    def _checkout(self) -> tuple[_Conn, paramiko.SFTPClient]:
        """An SFTP channel for this thread's exclusive use: an idle one, else a new one on
        the connection with the fewest (a new connection when each has
        :data:`CHANNELS_PER_CONNECTION` and there may be more). Give it back with
        :meth:`_checkin`. Waits while :attr:`max_channels` are in use, unless this thread
        already holds one (it would wait for itself): it may then open one more on a
        connection below :data:`HARD_MAX_CHANNELS`."""
        me = threading.get_ident()
        stale: list[Any] = []
        dead: list[_Conn] = []
        try:
            with self._cond:
                while True:
                    dead.extend(self._prune_dead())
                    while self._idle:
                        conn, client = self._idle.pop()
                        if conn.live and not client.sock.closed:
                            self._held[me] = self._held.get(me, 0) + 1
                            return conn, client
                        if conn.live:  # a channel the server closed: forget it
                            conn.open -= 1
                            self._open -= 1
                        stale.append(client)
                    mine = self._held.get(me, 0)
                    conn = None
                    if self._open < self.max_channels or mine:
                        roomy = [c for c in self._conns if c.open < CHANNELS_PER_CONNECTION]
                        if roomy:
                            conn = min(roomy, key=lambda c: c.open)
                        elif self._may_connect():
                            self._connecting += 1
                            self._open += 1
                            self._held[me] = mine + 1
                            break  # connect outside the lock
                        elif mine:
                            spare = [c for c in self._conns if c.open < HARD_MAX_CHANNELS]
                            conn = min(spare, key=lambda c: c.open) if spare else None
                    if conn is not None:
                        conn.open += 1
                        self._open += 1
                        self._held[me] = mine + 1
                        break
                    if mine and mine >= self._open and not self._connecting:
                        raise ConnectorError(
                            f"{self.name}: this thread already holds all {mine} sftp channels"
                            f" on {self._where} (open readers that were not closed?)"
                        )
                    self._cond.wait(self.timeout)
        finally:
            for old in stale:
                _close_quietly(old)
            for gone in dead:
                gone.transport.close()
        if conn is None:
            conn = self._new_connection(me)
            if conn is None:  # an extra connection failed: share the ones there are
                return self._checkout()
        return conn, self._open_channel(conn, me)

    def _prune_dead(self) -> list[_Conn]:
        """Forget the connections that dropped (the lock is held); returns them to close."""
        dead = [c for c in self._conns if not c.transport.is_active()]
        for conn in dead:
            self._forget(conn)
        return dead

    def _forget(self, conn: _Conn) -> None:
        """Take ``conn`` out of the pool (the lock is held): its channels are closed when
        given back, and no longer count."""
        if conn.live:
            conn.live = False
            self._conns.remove(conn)
            self._open -= conn.open
            self._cond.notify_all()

    def _may_connect(self) -> bool:
        """Whether one more connection may be opened (the lock is held). The first one
        is opened alone: its host key check may add to known_hosts."""
        if not self._conns:
            return not self._connecting
        return (
            len(self._conns) + self._connecting < self.max_connections
            and self._connecting < MAX_CONNECTING
            and time.monotonic() >= self._no_connect_before
        )

    def _new_connection(self, me: int) -> _Conn | None:
        """Open a connection for the channel :meth:`_checkout` reserved. When it fails
        for a reason a retry may cure (sshd's MaxStartups drops connections that arrive
        too fast, ...) while other connections work, None: no new one is tried for a
        while, the operation shares those."""
        try:
            transport = self._connect()
        except BaseException as exc:
            with self._cond:
                self._connecting -= 1
                self._open -= 1
                self._unhold(me)
                self._cond.notify_all()
                if isinstance(exc, TransientError) and self._conns:
                    self._no_connect_before = time.monotonic() + RECONNECT_PAUSE
                    return None
            raise
        conn = _Conn(transport)
        conn.open = 1
        with self._cond:
            self._connecting -= 1
            self._conns.append(conn)
            self._cond.notify_all()
        return conn

    def _open_channel(self, conn: _Conn, me: int) -> paramiko.SFTPClient:
        paramiko = _paramiko()
        try:
            client = paramiko.SFTPClient.from_transport(
                conn.transport, window_size=WINDOW, max_packet_size=MAX_PACKET
            )
            if client is None:  # pragma: no cover - paramiko returns None on a closed transport
                raise EOFError("the connection is closed")
        except BaseException as exc:
            self._release(conn, me)
            if isinstance(exc, (paramiko.SSHException, EOFError, OSError)):
                raise TransientError(
                    f"{self.name}: cannot open an sftp channel on {self._where}:"
                    f" {self._clean(str(exc) or type(exc).__name__)}"
                ) from None
            raise
        client.get_channel().settimeout(self.timeout)
        return client

    def _release(self, conn: _Conn, owner: int) -> None:
        """Forget one channel of ``conn`` held by thread ``owner`` (closed, or never
        opened)."""
        with self._cond:
            self._unhold(owner)
            if conn.live:
                conn.open -= 1
                self._open -= 1
            self._cond.notify()

    def _unhold(self, owner: int) -> None:
        count = self._held.get(owner, 0) - 1
        if count > 0:
            self._held[owner] = count
        else:
            self._held.pop(owner, None)

    def _checkin(
        self, conn: _Conn, client: paramiko.SFTPClient, owner: int, broken: bool = False
    ) -> None:
        """Give a channel back to the pool; a ``broken`` one (it may hold half a reply, or
        its connection dropped) or one of a connection that was closed is closed instead."""
        keep = not broken and not client.sock.closed
        with self._cond:
            self._unhold(owner)
            if keep and conn.live:
                self._idle.append((conn, client))
            else:
                if conn.live:
                    conn.open -= 1
                    self._open -= 1
                keep = False
            self._cond.notify()
        if not keep:
            _close_quietly(client)

    def _dropped(self, conn: _Conn) -> None:
        """``conn`` broke: close it (the next call opens another)."""
        with self._cond:
            self._forget(conn)
        conn.transport.close()

    def _is_drop(self, exc: BaseException, client: Any = None) -> bool:
        paramiko = _paramiko()
        if isinstance(exc, (EOFError, paramiko.SSHException, socket.timeout)):
            return True
        if isinstance(exc, OSError) and exc.errno is None and not exc.args[1:]:
            # paramiko's "Socket is closed" / "Server connection dropped"
            if client is None:
                return True
            transport = client.get_channel().get_transport()
            return client.sock.closed or transport is None or not transport.is_active()
        return isinstance(exc, OSError) and exc.errno in (
            errno.ECONNRESET,
            errno.EPIPE,
            errno.ETIMEDOUT,
        )

    def _run(
        self,
        what: str,
        path: str,
        fn: Callable[[paramiko.SFTPClient], T],
        *,
        retry: bool = True,
        keep: bool = False,
    ) -> T:
        """``fn(client)`` on a channel of the pool; a dropped connection is reopened once
        and ``fn`` retried (unless ``retry`` is false: ``fn`` consumed a stream). SFTP
        errors become :class:`ConnectorError` naming ``what`` and ``path``. With ``keep``,
        the channel is not given back: ``(result, lease)`` is returned, and whoever owns
        ``result`` (a reader) gives ``lease`` back with :meth:`_checkin`."""
        paramiko = _paramiko()
        for attempt in (0, 1):
            conn, client = self._checkout()
            owner = threading.get_ident()
            broken = True  # unless fn returns or fails with a proper SFTP status
            try:
                result = fn(client)
                broken = False
                if keep:
                    return result, (conn, client, owner)  # type: ignore[return-value]
            except UnicodeError as exc:  # a name on the server that is not UTF-8
                raise self._error(what, path, exc) from None  # the channel may hold half a reply
            except (OSError, EOFError, paramiko.SSHException) as exc:
                if not self._is_drop(exc, client):
                    broken = False
                    raise self._error(what, path, exc) from None
                self._dropped(conn)
                if attempt or not retry:
                    raise TransientError(
                        f"{self.name}: cannot {what} {path or '/'}: the connection to sftp"
                        f" {self._where} dropped: {self._clean(str(exc) or type(exc).__name__)}"
                    ) from None
                continue
            except ConnectorError:
                broken = False  # raised by fn after a complete reply
                raise
            finally:
                if broken or not keep:
                    self._checkin(conn, client, owner, broken)
            return result
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

    # -- staying inside the root ----------------------------------------------------------
    def _resolve_dir(self, client: paramiko.SFTPClient, abs_dir: str) -> str:
        """``abs_dir`` with its symbolic links resolved by the server; missing folders at
        its end (a put creates them) are kept as named."""
        rest: list[str] = []
        probe = abs_dir
        while True:
            try:
                real = client.normalize(probe)
                break
            except OSError as exc:
                parent = posixpath.dirname(probe)
                if exc.errno != errno.ENOENT or parent == probe:
                    raise
                rest.insert(0, posixpath.basename(probe))
                probe = parent
        return posixpath.join(real, *rest) if rest else real

    def _real_root_on(self, client: paramiko.SFTPClient) -> str:
        """The root with its links resolved (kept once the root exists)."""
        if self._real_root is not None:
            return self._real_root
        root = self._root()
        real = self._resolve_dir(client, root)
        try:
            client.stat(root)
        except OSError:
            return real  # not there yet: a put creates it
        self._real_root = real
        return real

    def _inside(self, client: paramiko.SFTPClient, real: str) -> bool:
        root = self._real_root_on(client).rstrip("/")
        return real == root or real.startswith(root + "/") or root == ""

    def _check_dir(self, client: paramiko.SFTPClient, abs_dir: str, what: str, path: str) -> None:
        """Refuse to write in ``abs_dir`` when a symbolic link takes it out of the root
        (the answer is cached per folder)."""
        if abs_dir in self._safe_dirs:
            return
        if not self._inside(client, self._resolve_dir(client, abs_dir)):
            raise ConnectorError(
                f"{self.name}: cannot {what} {path} on sftp {self._where}:"
                f" {self._rel(abs_dir)} is a symbolic link that leads out of the root"
            )
        if len(self._safe_dirs) >= SAFE_DIRS_CACHE:
            self._safe_dirs = set()
        self._safe_dirs.add(abs_dir)

    # -- reading -----------------------------------------------------------------------
    def list(self, *, follow_symlinks: bool = False) -> Iterator[FileInfo]:
        root = self._root()
        self._sizes = {}  # the sizes of this listing only
        try:
            st = self._run("list", "", lambda c: c.stat(root))
        except _NotFound:
            return
        if not stat_mod.S_ISDIR(st.st_mode or 0):
            raise ConnectorError(f"{self.name}: {root} on sftp {self._where} is not a directory")
        real_root = self._real(root) or root
        yield from self._walk(root, "", follow_symlinks, real_root, {real_root})

    def root_exists(self) -> bool:
        """Whether the root is a directory on the server (links followed)."""
        root = self._root()
        try:
            st = self._run("stat", "", lambda c: c.stat(root))
        except _NotFound:
            return False
        return stat_mod.S_ISDIR(st.st_mode or 0)

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
                if len(self._sizes) < SIZE_HINTS:
                    self._sizes[path] = st.st_size or 0
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
        """The entry at ``path``; None when nothing is there, or when a symbolic link
        takes the path out of the root (list skips those too)."""
        target = self._abs(path)

        def run(client: paramiko.SFTPClient) -> Any:
            if not path:
                return client.stat(target)
            st = client.lstat(target)  # nothing there: no need to look further
            try:
                self._check_dir(client, posixpath.dirname(target), "stat", path)
            except ConnectorError:
                return None  # through a link out of the root
            if stat_mod.S_ISLNK(st.st_mode or 0):
                if not self._inside(client, client.normalize(target)):
                    return None
                st = client.stat(target)
            return st

        try:
            st = self._run("stat", path, run)
        except _NotFound:
            return None
        if st is None:
            return None
        if stat_mod.S_ISDIR(st.st_mode or 0):
            return FileInfo(path, 0, _mtime_ns(st), is_dir=True)
        return FileInfo(path, st.st_size or 0, _mtime_ns(st))

    def open_read(self, path: str) -> BinaryIO:
        """A stream over the remote file; up to :data:`READ_AHEAD` bytes are asked for ahead
        (bounded memory), and the reader keeps its channel until it is closed. The size
        the listing gave tells it how far to ask (used once); without one, a stat goes
        with the open (one round trip for both)."""
        target = self._abs(path)
        hint = self._sizes.pop(path, None)

        def opener(client: paramiko.SFTPClient) -> tuple[bytes, int]:
            paramiko, sftp = _paramiko(), _sftp()
            pipe = _Pipe(client)
            opening = pipe.send(
                sftp.CMD_OPEN, target, sftp.SFTP_FLAG_READ, paramiko.SFTPAttributes()
            )
            asking = pipe.send(sftp.CMD_STAT, target) if hint is None else None
            kind, msg = pipe.reply(opening)
            stat_kind, stat_msg = pipe.reply(asking) if asking is not None else (None, None)
            if kind == sftp.CMD_STATUS:
                _raise_status(msg)
            if kind != sftp.CMD_HANDLE:
                raise OSError(f"unexpected reply {kind} to an open")
            handle = msg.get_binary()
            size = hint or 0
            if stat_kind == sftp.CMD_ATTRS:
                size = paramiko.SFTPAttributes._from_msg(stat_msg).st_size or 0
            return handle, size  # (a failed stat: the reads find the end)

        (handle, size), lease = self._run("read", path, opener, keep=True)
        return _Reader(self, path, handle, size, lease)  # type: ignore[return-value]

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
        """Write ``<dir>/.migrate-tmp-<random>`` with pipelined requests (every reply is
        checked), check the size the server kept, set the mtime, rename it over ``path``."""
        final = self._writable("write", path)
        directory = posixpath.dirname(final)
        tmp = posixpath.join(directory, f"{TMP_PREFIX}{uuid.uuid4().hex[:16]}")
        made: list[str] = []
        state = {"opened": False}

        def write(client: paramiko.SFTPClient) -> int:
            sftp = _sftp()
            self._check_dir(client, directory, "write", path)
            flags = sftp.SFTP_FLAG_WRITE | sftp.SFTP_FLAG_CREATE | sftp.SFTP_FLAG_TRUNC
            for attempt in range(5):
                try:
                    handle = _open_raw(client, tmp, flags | sftp.SFTP_FLAG_EXCL)
                    break
                except OSError as exc:
                    if exc.errno != errno.ENOENT or attempt == 4:
                        raise
                    # the folder is missing (or a delete pruned it meanwhile)
                    made.extend(self._mkdirs(client, directory, path))
            state["opened"] = True
            pipe = _Pipe(client)
            pending: deque[int] = deque()
            try:
                sent = _write_pipelined(pipe, handle, stream, pending)
            except BaseException:
                try:  # close the file and read every reply: the channel stays usable
                    pending.append(pipe.send(sftp.CMD_CLOSE, handle))
                    pipe.finish(pending)
                except Exception:
                    pass
                raise
            # the close goes with the last writes; then every status is read (a failed
            # write, or a failed close: a deferred write error, fails the put)
            pending.append(pipe.send(sftp.CMD_CLOSE, handle))
            failed = pipe.finish(pending)
            if failed is not None:
                raise failed
            kept = _set_mtime_and_size(pipe, tmp, mtime_ns)
            if kept != sent:
                raise ConnectorError(
                    f"{self.name}: cannot write {path} on sftp {self._where}: the server"
                    f" kept {kept} of the {sent} bytes written"
                )
            try:
                client.posix_rename(tmp, final)
            except OSError as exc:
                if self._is_drop(exc, client):
                    raise
                self._rename_fallback(client, tmp, final, path, exc)
            return kept

        try:
            written = self._run("write", path, write, retry=False)
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

    def _mkdirs(self, client: paramiko.SFTPClient, directory: str, path: str) -> list[str]:
        """Create ``directory`` and its missing parents; return those created, deepest
        first. A file in the way is an error naming ``path``."""
        made: list[str] = []
        todo = [directory]
        races = 0
        while todo:
            current = todo[-1]
            try:
                client.mkdir(current)
            except OSError as exc:
                if exc.errno == errno.ENOENT and current not in ("/", ""):
                    todo.append(posixpath.dirname(current))
                    continue
                try:  # OpenSSH answers an existing folder with a bare "Failure"
                    st = client.stat(current)
                except OSError as gone:
                    # it existed a moment ago: a delete pruned it in between; make it again
                    if gone.errno == errno.ENOENT and races < 20:
                        races += 1
                        continue
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
        if not opened and not made:
            return

        def clean(client: paramiko.SFTPClient) -> None:
            if opened:
                try:
                    client.remove(tmp)
                except OSError as exc:
                    if self._is_drop(exc, client):
                        raise
            for directory in made:  # deepest first
                try:
                    client.rmdir(directory)
                except OSError as exc:
                    if self._is_drop(exc, client):
                        raise
                    break
                self._safe_dirs.discard(directory)

        try:
            self._run("clean up after writing", self._rel(tmp), clean)
        except ConnectorError:
            pass  # the connection is gone: the temporary name stays (reserved, skipped)

    def delete(self, path: str) -> None:
        target = self._writable("delete", path)

        def remove(client: paramiko.SFTPClient) -> bool:
            self._check_dir(client, posixpath.dirname(target), "delete", path)
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
                self._safe_dirs.discard(target)
            return True

        try:
            removed = self._run("delete", path, remove)
        except _NotFound:
            return  # a parent folder is missing
        if removed:
            self._prune(posixpath.dirname(target))

    def _prune(self, directory: str) -> None:
        """Remove directories a delete left empty, up to (not including) the root."""
        root = self._root().rstrip("/")

        def prune(client: paramiko.SFTPClient) -> None:
            current = directory
            while current.startswith(root + "/"):
                try:
                    client.rmdir(current)
                except OSError as exc:
                    if self._is_drop(exc, client):
                        raise
                    return
                self._safe_dirs.discard(current)
                current = posixpath.dirname(current)

        self._run("delete", self._rel(directory), prune)

    def make_dir(self, path: str) -> None:
        target = self._writable("create directory", path)

        def mkdirs(client: paramiko.SFTPClient) -> None:
            self._check_dir(client, posixpath.dirname(target), "create directory", path)
            self._mkdirs(client, target, path)

        self._run("create directory", path, mkdirs)

    def move(self, path: str, new_path: str) -> None:
        source = self._writable("move", path)
        dest = self._writable("move to", new_path)

        def rename(client: paramiko.SFTPClient) -> None:
            client.stat(source)  # a missing source names the source, not the target
            self._check_dir(client, posixpath.dirname(source), "move", path)
            self._check_dir(client, posixpath.dirname(dest), "move to", new_path)
            self._mkdirs(client, posixpath.dirname(dest), new_path)
            try:
                client.posix_rename(source, dest)
            except OSError as exc:
                if self._is_drop(exc, client):
                    raise
                self._rename_fallback(client, source, dest, new_path, exc)

        self._run("move", path, rename)
        self._prune(posixpath.dirname(source))

    def close(self) -> None:
        """Close the idle channels and the connections; channels still held (an open
        reader) are closed when given back. A later call connects again."""
        with self._cond:
            idle, self._idle = self._idle, []
            conns = list(self._conns)
            for conn in conns:
                self._forget(conn)
            self._sizes = {}
        for _, client in idle:
            _close_quietly(client)
        for conn in conns:
            conn.transport.close()


class _Conn:
    """One SSH connection of the pool and the channels open on it."""

    __slots__ = ("live", "open", "transport")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.open = 0
        self.live = True


class _Pipe:
    """Pipelined requests on one SFTP channel: paramiko hands each reply to this object
    (``_async_response``) and it is kept by request number until asked for, whatever order
    the server answers in."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._replies: dict[int, tuple[int, Any]] = {}
        self._discarding = False

    def _async_response(self, kind: int, msg: Any, num: int) -> None:
        if not self._discarding:
            self._replies[num] = (kind, msg)

    def discard(self) -> None:
        """Drop the replies still to come (whoever uses the channel next reads past them,
        paramiko hands them here) and those kept."""
        self._discarding = True
        self._replies.clear()

    def send(self, kind: int, *args: Any) -> int:
        return self._client._async_request(self, kind, *args)

    def reply(self, num: int) -> tuple[int, Any]:
        while num not in self._replies:
            self._client._read_response()
        return self._replies.pop(num)

    def check(self, num: int) -> None:
        """Wait for the status reply of request ``num``; a failure raises OSError."""
        kind, msg = self.reply(num)
        if kind != _sftp().CMD_STATUS:
            raise OSError(f"unexpected reply {kind} to a write")
        _raise_status(msg)

    def finish(self, nums: deque[int]) -> OSError | None:
        """Read the status replies of every request in ``nums``; the first failure is
        returned once all are read (a dropped connection raises at once)."""
        first: OSError | None = None
        while nums:
            try:
                self.check(nums.popleft())
            except OSError as exc:
                first = first or exc
        return first


def _sftp() -> Any:
    from paramiko import sftp

    return sftp


def _raise_status(msg: Any) -> None:
    """Raise the OSError an SFTP status reply stands for (nothing for SFTP_OK)."""
    sftp = _sftp()
    code = msg.get_int()
    if code == sftp.SFTP_OK:
        return
    text = msg.get_text()
    if code == sftp.SFTP_NO_SUCH_FILE:
        raise OSError(errno.ENOENT, text)
    if code == sftp.SFTP_PERMISSION_DENIED:
        raise OSError(errno.EACCES, text)
    if code == sftp.SFTP_EOF:
        raise OSError(f"unexpected end of file: {text}")
    raise OSError(text or f"SFTP status {code}")


def _open_raw(client: Any, path: str, flags: int) -> bytes:
    """Open a remote file; its SFTP handle (closed by the caller with CMD_CLOSE)."""
    sftp = _sftp()
    kind, msg = client._request(sftp.CMD_OPEN, path, flags, _paramiko().SFTPAttributes())
    if kind != sftp.CMD_HANDLE:
        raise OSError(f"unexpected reply {kind} to an open")
    return msg.get_binary()


def _write_pipelined(pipe: _Pipe, handle: bytes, stream: BinaryIO, pending: deque[int]) -> int:
    """Copy ``stream`` into the open remote file ``handle``, checking the status of
    every write while at most :data:`DEPTH` are in flight; the last ones are left in
    ``pending``. Returns the bytes sent."""
    sftp = _sftp()
    offset = 0
    while True:
        block = stream.read(BLOCK)
        if not block:
            break
        view = memoryview(block)
        for start in range(0, len(view), REQUEST):
            piece = view[start : start + REQUEST]
            pending.append(pipe.send(sftp.CMD_WRITE, handle, sftp.int64(offset), piece))
            offset += len(piece)
            if len(pending) >= DEPTH:
                pipe.check(pending.popleft())
    return offset


def _set_mtime_and_size(pipe: _Pipe, path: str, mtime_ns: int | None) -> int:
    """Set ``path``'s times to ``mtime_ns`` (whole seconds) and return its size, in one
    round trip (SETSTAT and STAT of one path are answered in order)."""
    paramiko, sftp = _paramiko(), _sftp()
    setting = None
    if mtime_ns is not None:
        attrs = paramiko.SFTPAttributes()
        attrs.st_atime = attrs.st_mtime = mtime_ns // 1_000_000_000
        setting = pipe.send(sftp.CMD_SETSTAT, path, attrs)
    asking = pipe.send(sftp.CMD_STAT, path)
    failed = pipe.finish(deque([setting])) if setting is not None else None
    kind, msg = pipe.reply(asking)
    if failed is not None:
        raise failed
    if kind == sftp.CMD_STATUS:
        _raise_status(msg)
    if kind != sftp.CMD_ATTRS:
        raise OSError(f"unexpected reply {kind} to a stat")
    return paramiko.SFTPAttributes._from_msg(msg).st_size or 0


class _Reader(io.RawIOBase):
    """A read-only binary stream over an open remote file (``handle``: its SFTP handle).

    Up to :data:`READ_AHEAD` bytes are asked for ahead of what ``read`` returned, in
    requests of :data:`READ_REQUEST` (no helper thread, no unbounded queue); ``read(n)``
    returns up to ``n`` bytes (less only at the end). ``size`` (the listing's, or a stat's
    taken with the open) says how far to ask ahead: requests go up to it; only a caller
    that wants more after that sends the one at ``size`` that should find the end of the
    file (the engine reads exactly the listed size: no request is spent on the end). The
    stream ends where the server says the file ends: a file that shrank ends early, one
    that grew is read on (the engine notices the change through the size and mtime).
    Closing it waits for nothing: the CLOSE and the replies still on their way are read
    past by whoever uses the channel next (a failed CLOSE of a read loses nothing).
    Errors are :class:`ConnectorError`; a dropped connection is a :class:`TransientError`.
    """

    def __init__(
        self, endpoint: SFTPEndpoint, path: str, handle: bytes, size: int, lease: Any
    ) -> None:
        super().__init__()
        self._endpoint = endpoint
        self._path = path
        self._handle = handle
        self._lease = lease  # (connection, client, owner) of the channel it holds
        self._pipe = _Pipe(lease[1])
        self._pending: deque[tuple[int, int, int]] = deque()  # (request, offset, length)
        self._next = 0  # offset of the next request
        #: requests go up to here, then one more that should find the end of the file;
        #: None once the file proved longer: requests go on until the server says EOF
        self._end: int | None = size
        self._done = False  # the server said where the file ends
        self._buf = b""  # the rest of a reply larger than what read() asked for
        self._broken = False
        self._chunk = READ_REQUEST  # lowered to what the server answers
        self._ahead = 0  # bytes asked for and not yet answered

    def readable(self) -> bool:
        return True

    def _request_ahead(self) -> None:
        if self._done:
            return
        sftp = _sftp()
        while self._ahead < READ_AHEAD:
            if self._end is None:
                length = self._chunk  # on until the server says EOF
            elif self._next < self._end:
                length = min(self._chunk, self._end - self._next)
            elif self._next == self._end and not self._pending:
                length = self._chunk  # more is wanted: this one should find the end
            else:
                return
            num = self._pipe.send(sftp.CMD_READ, self._handle, sftp.int64(self._next), length)
            self._pending.append((num, self._next, length))
            self._next += length
            self._ahead += length

    def _drain(self) -> None:
        """Read and drop the replies of the requests in flight."""
        while self._pending:
            self._pipe.reply(self._pending.popleft()[0])
        self._ahead = 0

    def _piece(self) -> bytes:
        """The next bytes in file order, b"" at the end."""
        sftp = _sftp()
        self._request_ahead()
        if not self._pending:
            self._done = True
            return b""
        num, offset, length = self._pending.popleft()
        self._ahead -= length
        kind, msg = self._pipe.reply(num)
        if kind == sftp.CMD_DATA:
            data = msg.get_binary()
            end = offset + len(data)
            if self._end is not None and end > self._end:
                self._end = None  # the file grew since its size was taken: read to its end
            if len(data) < length:  # a short reply: go on from where it ended
                self._drain()
                self._next = end
                if not data:
                    self._done = True
                elif self._end is not None and end < self._end:  # the server's largest reply
                    self._chunk = max(len(data), 512)
            return data
        if kind != sftp.CMD_STATUS:
            raise OSError(f"unexpected reply {kind} to a read")
        code = msg.get_int()
        if code == sftp.SFTP_EOF:  # the file ends here
            self._drain()
            self._done = True
            return b""
        msg.rewind()
        msg.get_int()  # the request number
        _raise_status(msg)
        raise OSError("unexpected reply to a read")  # pragma: no cover - _raise_status raised

    def read(self, n: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read of a closed stream")
        want = BLOCK * 1024 if n is None or n < 0 else n
        pieces: list[bytes] = []
        got = 0
        try:
            if self._buf and want:
                take = self._buf[:want]
                self._buf = self._buf[len(take) :]
                pieces.append(take)
                got += len(take)
            while got < want:
                data = self._piece()
                if not data:
                    if self._done:
                        break
                    continue
                if len(data) > want - got:
                    self._buf = data[want - got :]
                    data = data[: want - got]
                pieces.append(data)
                got += len(data)
        except (OSError, EOFError, _paramiko().SSHException) as exc:
            ep = self._endpoint
            if ep._is_drop(exc, self._lease[1]):
                self._broken = True
                ep._dropped(self._lease[0])
                raise TransientError(
                    f"{ep.name}: cannot read {self._path}: the connection to sftp {ep._where}"
                    f" dropped: {ep._clean(str(exc) or type(exc).__name__)}"
                ) from None
            raise ep._error("read", self._path, exc) from None
        except BaseException:
            self._broken = True  # interrupted between a request and its reply
            raise
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        broken = self._broken
        try:
            if not broken:
                try:
                    self._pipe.discard()
                    # its reply is not waited for: a read has nothing to lose
                    self._pipe._client._async_request(type(None), _sftp().CMD_CLOSE, self._handle)
                except (OSError, EOFError, _paramiko().SSHException):
                    broken = True  # nothing to keep: the read is over
                except BaseException:
                    broken = True
                    raise
        finally:
            conn, client, owner = self._lease
            self._endpoint._checkin(conn, client, owner, broken)
            super().close()


def _close_quietly(client: Any) -> None:
    try:
        client.close()
    except Exception:  # closing a broken channel
        pass


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
