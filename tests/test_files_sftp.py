"""``sftp://`` connector against the OpenSSH test server: the file conformance suite, plus
authentication, host keys, atomic puts and reconnects.

Every test works in a fresh directory below ``MIGRATE_TEST_SFTP_DIR`` (owned by the SFTP
user, so the server can write there; files the tests plant as root stay readable)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from connectors.files.base import TMP_PREFIX
from connectors.files.sftp import SFTPEndpoint
from migrate.errors import ConnectorError, PlanError, TransientError
from tests.file_conformance import (
    URL_SPECIAL_NAMES,
    FileConformance,
    IterStream,
    SourceFailed,
    bytes_chunks,
    failing,
    files_of,
    listing,
    put_bytes,
    read_bytes,
)


def fresh_dir(server: dict[str, str]) -> Path:
    """A new directory below the server's data directory, owned by the SFTP user."""
    base = Path(server["dir"])
    path = base / f"t-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    st = base.stat()
    os.chown(path, st.st_uid, st.st_gid)
    return path


def url_for(server: dict[str, str], directory: Path, *, password: str | None = None) -> str:
    """The server's URL pointing at ``directory`` (a password put into it on request)."""
    base = server["url"]
    head, _, _ = base.partition("@")
    user = head.split("://", 1)[1]
    host = base.split("@", 1)[1].split("/", 1)[0]
    auth = f"{user}:{password}" if password is not None else user
    return f"sftp://{auth}@{host}{directory}"


def make(
    server: dict[str, str], directory: Path, name: str = "nas", **options: Any
) -> SFTPEndpoint:
    opts: dict[str, Any] = {"known_hosts": server["known_hosts"], "allow_agent": False}
    if "password" not in options:
        opts["key_file"] = server["key"]
    opts.update(options)
    opts = {k: v for k, v in opts.items() if v is not None}
    secrets = frozenset({server["password"]})
    return SFTPEndpoint(name, url_for(server, directory), opts, base_dir=directory, secrets=secrets)


@pytest.fixture
def workdir(sftp_server: dict[str, str]) -> Iterator[Path]:
    path = fresh_dir(sftp_server)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ep(sftp_server: dict[str, str], workdir: Path) -> Iterator[SFTPEndpoint]:
    endpoint = make(sftp_server, workdir)
    yield endpoint
    endpoint.close()


class TestSFTPConformance(FileConformance):
    # SFTP (protocol version 3) keeps whole seconds: the default 1 s tolerance applies

    @pytest.fixture
    def local_dir(self, workdir: Path) -> Path:
        return workdir

    @pytest.fixture
    def endpoint(self, ep: SFTPEndpoint) -> SFTPEndpoint:
        return ep

    @pytest.fixture(autouse=True)
    def _secrets(self, sftp_server: dict[str, str]) -> None:
        self.secrets = (sftp_server["password"],)


# -- authentication ---------------------------------------------------------------------
def test_password_auth_round_trip(sftp_server: dict[str, str], workdir: Path) -> None:
    ep = make(sftp_server, workdir, password=sftp_server["password"])
    try:
        put_bytes(ep, "pw/a.txt", b"by password")
        assert read_bytes(ep, "pw/a.txt") == b"by password"
        assert (workdir / "pw" / "a.txt").read_bytes() == b"by password"
        assert sftp_server["password"] not in ep.describe()
    finally:
        ep.close()


def test_password_in_the_url(sftp_server: dict[str, str], workdir: Path) -> None:
    url = url_for(sftp_server, workdir, password=sftp_server["password"])
    opts = {"known_hosts": sftp_server["known_hosts"], "allow_agent": False}
    ep = SFTPEndpoint("nas", url, opts, base_dir=workdir)
    try:
        (workdir / "x.txt").write_bytes(b"x")
        assert read_bytes(ep, "x.txt") == b"x"
        assert sftp_server["password"] not in ep.describe()
    finally:
        ep.close()


def test_wrong_password_is_one_line_without_the_password(
    sftp_server: dict[str, str], workdir: Path
) -> None:
    wrong = "Wr0ng-" + uuid.uuid4().hex
    ep = SFTPEndpoint(
        "nas",
        url_for(sftp_server, workdir),
        {"password": wrong, "known_hosts": sftp_server["known_hosts"], "allow_agent": False},
        base_dir=workdir,
        secrets=frozenset({wrong}),
    )
    with pytest.raises(ConnectorError) as info:
        ep.stat("x")
    text = str(info.value)
    assert "\n" not in text and wrong not in text
    assert not isinstance(info.value, TransientError)  # a retry cannot help
    assert text.startswith("nas: authentication failed for user migrate-sftp on sftp 127.0.0.1:")
    assert "password" in text
    ep.close()


def test_no_credentials_at_all(sftp_server: dict[str, str], workdir: Path) -> None:
    ep = make(sftp_server, workdir, key_file=None, password=None)
    with pytest.raises(ConnectorError, match=r"^nas: authentication failed .*set key_file"):
        ep.stat("x")


def test_key_file_relative_to_base_dir(
    sftp_server: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    shutil.copy(sftp_server["key"], tmp_path / "id_test")
    ep = SFTPEndpoint(
        "nas",
        url_for(sftp_server, workdir),
        {"key_file": "id_test", "known_hosts": sftp_server["known_hosts"], "allow_agent": False},
        base_dir=tmp_path,
    )
    try:
        put_bytes(ep, "k.txt", b"key")
        assert (workdir / "k.txt").read_bytes() == b"key"
    finally:
        ep.close()


def test_missing_key_file(sftp_server: dict[str, str], workdir: Path, tmp_path: Path) -> None:
    ep = make(sftp_server, workdir, key_file=str(tmp_path / "nope"))
    with pytest.raises(ConnectorError, match=r"^nas: cannot load key file .*nope"):
        ep.stat("x")


# -- host keys ----------------------------------------------------------------------------
def server_key_line(server: dict[str, str]) -> str:
    return Path(server["known_hosts"]).read_text().strip()


def test_unknown_host_key_is_refused(
    sftp_server: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    ep = make(sftp_server, workdir, known_hosts=str(empty))
    with pytest.raises(ConnectorError) as info:
        ep.stat("x")
    text = str(info.value)
    assert "\n" not in text and not isinstance(info.value, TransientError)
    assert "is unknown" in text and "ssh-keyscan -p" in text and "accept_new_host_key" in text
    assert empty.read_text() == ""  # nothing added
    assert ep.notes == []


def test_missing_known_hosts_file_is_unknown_host(
    sftp_server: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    ep = make(sftp_server, workdir, known_hosts=str(tmp_path / "none" / "known_hosts"))
    with pytest.raises(ConnectorError, match="is unknown"):
        ep.stat("x")


def test_accept_new_host_key_writes_known_hosts(
    sftp_server: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    known = tmp_path / "ssh" / "known_hosts"  # the folder does not exist yet
    ep = make(sftp_server, workdir, known_hosts=str(known), accept_new_host_key=True)
    try:
        (workdir / "f.txt").write_bytes(b"f")
        assert read_bytes(ep, "f.txt") == b"f"
    finally:
        ep.close()
    assert len(ep.notes) == 1 and "\n" not in ep.notes[0]
    assert "new host key" in ep.notes[0] and str(known) in ep.notes[0]
    # the line written is the server's key, under the name OpenSSH uses for the port
    host, key_type, key = known.read_text().split()
    want_host, want_type, want_key = server_key_line(sftp_server).split()
    assert (host, key_type, key) == (want_host, want_type, want_key)
    # known now: a second endpoint connects without accept_new_host_key and adds nothing
    again = make(sftp_server, workdir, known_hosts=str(known))
    try:
        assert again.stat("f.txt") is not None
    finally:
        again.close()
    assert again.notes == []
    assert len(known.read_text().splitlines()) == 1


def other_key_line(server: dict[str, str], key_type: str = "ssh-ed25519") -> str:
    host = server_key_line(server).split()[0]
    other = paramiko.Ed25519Key.from_private_key_file(server["key"])  # any other ed25519 key
    return f"{host} {key_type} {other.get_base64()}\n"


@pytest.mark.parametrize("accept_new", [False, True])
def test_changed_host_key_is_always_refused(
    sftp_server: dict[str, str], workdir: Path, tmp_path: Path, accept_new: bool
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(other_key_line(sftp_server))
    before = known.read_text()
    ep = make(sftp_server, workdir, known_hosts=str(known), accept_new_host_key=accept_new)
    with pytest.raises(ConnectorError) as info:
        ep.stat("x")
    text = str(info.value)
    assert "\n" not in text and "CHANGED" in text and "ssh-keygen -R" in text
    assert known.read_text() == before
    assert ep.notes == []


def test_hashed_known_hosts_entry_is_recognised(
    sftp_server: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    host, key_type, key = server_key_line(sftp_server).split()
    hashed = paramiko.HostKeys.hash_host(host)
    known = tmp_path / "known_hosts"
    known.write_text(f"{hashed} {key_type} {key}\n")
    ep = make(sftp_server, workdir, known_hosts=str(known))
    try:
        assert ep.stat("nothing") is None
    finally:
        ep.close()


# -- connection errors --------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused_port_is_transient(tmp_path: Path) -> None:
    port = free_port()
    ep = SFTPEndpoint("nas", f"sftp://u@127.0.0.1:{port}/x", {}, base_dir=tmp_path)
    with pytest.raises(TransientError) as info:
        list(ep.list())
    text = str(info.value)
    assert text.startswith(f"nas: cannot connect to sftp 127.0.0.1:{port}: ")
    assert "refused" in text.lower() and "\n" not in text


def test_reconnects_once_after_a_dropped_connection(
    sftp_server: dict[str, str], ep: SFTPEndpoint, workdir: Path
) -> None:
    put_bytes(ep, "a.txt", b"a")
    assert ep._conns
    for conn in ep._conns:
        conn.transport.sock.close()  # the network drops the connection
    assert read_bytes(ep, "a.txt") == b"a"  # reopened on its own
    put_bytes(ep, "b.txt", b"b")
    assert (workdir / "b.txt").read_bytes() == b"b"


def test_drop_during_a_put_is_transient_and_leaves_no_final_name(
    ep: SFTPEndpoint, workdir: Path
) -> None:
    put_bytes(ep, "warm.txt", b"w")

    def drop() -> None:
        assert ep._conns
        for conn in ep._conns:
            conn.transport.sock.close()

    data = os.urandom(3 << 20)
    stream = IterStream(bytes_chunks(data), trigger=1 << 20, on_trigger=drop)
    with pytest.raises(TransientError, match=r"^nas: cannot write big\.bin: .*dropped"):
        ep.put("big.bin", stream, len(data), part_size=0, multipart_threshold=0)
    assert not (workdir / "big.bin").exists()
    assert ep.stat("big.bin") is None  # and the endpoint works again


# -- puts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("overwrite", [False, True])
def test_put_is_atomic(ep: SFTPEndpoint, workdir: Path, overwrite: bool) -> None:
    """A source that breaks midway: the final name never shows partial content, and no
    temporary file remains."""
    if overwrite:
        put_bytes(ep, "d/final.bin", b"old content")
    seen: list[bool] = []

    def during() -> None:  # the put is half done: a temp file exists, the final name not
        seen.append((workdir / "d" / "final.bin").exists())
        seen.append(any(p.name.startswith(TMP_PREFIX) for p in (workdir / "d").iterdir()))

    data = os.urandom(2 << 20)
    stream = IterStream(failing(bytes_chunks(data), 1_500_000), trigger=1 << 20, on_trigger=during)
    with pytest.raises(SourceFailed):
        ep.put("d/final.bin", stream, len(data), part_size=0, multipart_threshold=0)
    assert seen == [overwrite, True]
    if overwrite:
        assert sorted(p.name for p in (workdir / "d").iterdir()) == ["final.bin"]
        assert read_bytes(ep, "d/final.bin") == b"old content"
    else:
        assert not (workdir / "d").exists()  # the folder the put made is gone too


NAMES = URL_SPECIAL_NAMES  # names a URL or path quoting step could mangle


def test_special_names_round_trip(ep: SFTPEndpoint, workdir: Path) -> None:
    for i, name in enumerate(NAMES):
        put_bytes(ep, name, name.encode() * (i + 1), mtime_ns=1_500_000_000_000_000_000 + i)
    for i, name in enumerate(NAMES):
        assert (workdir / name).read_bytes() == name.encode() * (i + 1)
        assert (workdir / name).stat().st_mtime_ns == (1_500_000_000 * 10**9)
        assert read_bytes(ep, name) == name.encode() * (i + 1)
    assert set(listing(ep)) == set(NAMES)


def test_url_with_special_characters_in_the_root(
    sftp_server: dict[str, str], workdir: Path
) -> None:
    root = workdir / "根 dir %+"
    root.mkdir()
    os.chown(root, workdir.stat().st_uid, workdir.stat().st_gid)
    (root / "f.txt").write_bytes(b"f")
    base = url_for(sftp_server, workdir)
    from urllib.parse import quote

    ep = SFTPEndpoint(
        "nas",
        base + "/" + quote("根 dir %+"),
        {"key_file": sftp_server["key"], "known_hosts": sftp_server["known_hosts"]},
        base_dir=workdir,
    )
    try:
        assert set(listing(ep)) == {"f.txt"}
        assert "根 dir %+" in ep.describe()
    finally:
        ep.close()


def test_deep_tree_and_empty_dirs(ep: SFTPEndpoint, workdir: Path) -> None:
    deep = "/".join(f"d{i}" for i in range(25))
    put_bytes(ep, f"{deep}/leaf.txt", b"leaf")
    ep.make_dir("e1/e2")
    (workdir / "planted-empty").mkdir()
    entries = listing(ep)
    assert {p for p, i in entries.items() if not i.is_dir} == {f"{deep}/leaf.txt"}
    assert {p for p, i in entries.items() if i.is_dir} == {"e1/e2", "planted-empty"}
    ep.delete(f"{deep}/leaf.txt")  # prunes the emptied folders up to the root
    assert not (workdir / "d0").exists()


def test_permission_denied_names_the_path(ep: SFTPEndpoint, workdir: Path) -> None:
    locked = workdir / "locked"
    locked.mkdir(mode=0o755)  # owned by root: the SFTP user may not write there
    with pytest.raises(ConnectorError) as info:
        put_bytes(ep, "locked/f.txt", b"f")
    text = str(info.value)
    assert text.startswith("nas: cannot write locked/f.txt") and "permission denied" in text
    assert list(locked.iterdir()) == []


def test_mtime_is_kept_in_whole_seconds(ep: SFTPEndpoint, workdir: Path) -> None:
    put_bytes(ep, "m.txt", b"m", mtime_ns=1_234_567_890_999_999_999)
    assert (workdir / "m.txt").stat().st_mtime_ns == 1_234_567_890 * 10**9
    assert ep.stat("m.txt").mtime_ns == 1_234_567_890 * 10**9


def test_symlink_escaping_by_a_chain_is_skipped(
    ep: SFTPEndpoint, workdir: Path, tmp_path: Path
) -> None:
    """A link inside the root that points at another link that leaves it."""
    (tmp_path / "secret").write_bytes(b"secret")
    os.symlink(tmp_path / "secret", workdir / "hop2")
    os.symlink("hop2", workdir / "hop1")
    (workdir / "ok.txt").write_bytes(b"ok")
    os.symlink("ok.txt", workdir / "ok-link")
    assert set(listing(ep, follow_symlinks=True)) == {"ok.txt", "ok-link"}
    assert set(listing(ep)) == {"ok.txt"}


def test_missing_root_lists_nothing_and_put_creates_it(
    sftp_server: dict[str, str], workdir: Path
) -> None:
    ep = make(sftp_server, workdir / "not-yet")
    try:
        assert listing(ep) == {}
        put_bytes(ep, "x/y.txt", b"y")
        assert (workdir / "not-yet" / "x" / "y.txt").read_bytes() == b"y"
    finally:
        ep.close()


def test_root_that_is_a_file(sftp_server: dict[str, str], workdir: Path) -> None:
    (workdir / "plain").write_bytes(b"p")
    ep = make(sftp_server, workdir / "plain")
    try:
        with pytest.raises(ConnectorError, match=r"^nas: .*plain on sftp .* is not a directory$"):
            list(ep.list())
    finally:
        ep.close()


# -- plan checks ----------------------------------------------------------------------------
def test_unknown_option_and_bad_types_are_plan_errors(tmp_path: Path) -> None:
    url = "sftp://u@127.0.0.1:22/x"
    with pytest.raises(PlanError, match=r"connections\.nas\.options: unknown option 'bogus'"):
        SFTPEndpoint("nas", url, {"bogus": 1}, base_dir=tmp_path)
    with pytest.raises(PlanError, match=r"connections\.nas\.options\.accept_new_host_key"):
        SFTPEndpoint("nas", url, {"accept_new_host_key": "yes"}, base_dir=tmp_path)
    with pytest.raises(PlanError, match=r"connections\.nas\.url"):
        SFTPEndpoint("nas", "sftp:///x", {}, base_dir=tmp_path)


def test_describe_and_defaults(tmp_path: Path) -> None:
    ep = SFTPEndpoint("nas", "sftp://bob:s3cret@files.example:2200/srv/a", {}, base_dir=tmp_path)
    assert ep.describe() == "sftp bob@files.example:2200 /srv/a"
    assert ep.known_hosts == Path(os.path.expanduser("~/.ssh/known_hosts"))
    home = SFTPEndpoint("nas", "sftp://bob@files.example/~/data", {}, base_dir=tmp_path)
    assert home.describe() == "sftp bob@files.example:22 ~/data"


def test_registry_finds_the_sftp_connector() -> None:
    from migrate.registry import endpoint_class, endpoint_kind

    assert endpoint_kind("sftp://u@h/x") == "file"
    assert endpoint_class("sftp://u@h/x") is SFTPEndpoint


def test_non_utf8_names_make_listing_fail_loudly(ep: SFTPEndpoint, workdir: Path) -> None:
    (workdir / "ok.txt").write_bytes(b"ok")
    os.mkdir(os.path.join(os.fsencode(workdir), b"bad\xff"))
    with pytest.raises(ConnectorError, match=r"^nas: cannot list / on sftp .*not UTF-8"):
        listing(ep)
    assert read_bytes(ep, "ok.txt") == b"ok"  # the endpoint still works


# -- failed writes (an in-process SFTP server: OpenSSH cannot be made to fail on demand) ----
class _FailingServer:
    """A paramiko SFTP server on 127.0.0.1 over a local folder whose writes past
    ``limit`` bytes fail (``mode="fail"``: a failure status, like a full disk) or are
    silently dropped while OK is answered (``mode="drop"``: a broken server); its read
    replies hold at most ``read_cap`` bytes."""

    def __init__(
        self, root: Path, tmp: Path, mode: str, limit: int = 64 * 1024, read_cap: int = 1 << 20
    ) -> None:
        server = self

        class Handle(paramiko.SFTPHandle):
            def read(self, offset: int, length: int) -> bytes:
                self.f.seek(offset)
                return self.f.read(min(length, read_cap))

            def write(self, offset: int, data: bytes) -> int:
                if offset + len(data) > limit:
                    return paramiko.SFTP_FAILURE if mode == "fail" else paramiko.SFTP_OK
                self.f.seek(offset)
                self.f.write(data)
                return paramiko.SFTP_OK

            def stat(self) -> Any:
                return paramiko.SFTPAttributes.from_stat(os.fstat(self.f.fileno()))

            def close(self) -> int:
                self.f.close()
                return paramiko.SFTP_OK

        class Files(paramiko.SFTPServerInterface):
            def _p(self, path: str) -> str:
                return str(root) + self.canonicalize(path)

            def canonicalize(self, path: str) -> str:
                return os.path.normpath("/" + path)

            def open(self, path: str, flags: int, attr: Any) -> Any:
                try:
                    fd = os.open(self._p(path), flags, 0o644)
                except OSError as exc:
                    return paramiko.SFTPServer.convert_errno(exc.errno)
                handle = Handle(flags)
                mode = "r+b" if flags & os.O_RDWR else "wb" if flags & os.O_WRONLY else "rb"
                handle.f = os.fdopen(fd, mode)
                return handle

            def stat(self, path: str) -> Any:
                try:
                    return paramiko.SFTPAttributes.from_stat(os.stat(self._p(path)))
                except OSError as exc:
                    return paramiko.SFTPServer.convert_errno(exc.errno)

            lstat = stat

            def posix_rename(self, old: str, new: str) -> int:
                os.replace(self._p(old), self._p(new))
                return paramiko.SFTP_OK

            def remove(self, path: str) -> int:
                os.remove(self._p(path))
                return paramiko.SFTP_OK

            def chattr(self, path: str, attr: Any) -> int:
                return paramiko.SFTP_OK

        class Auth(paramiko.ServerInterface):
            def check_auth_password(self, user: str, password: str) -> int:
                return paramiko.AUTH_SUCCESSFUL

            def get_allowed_auths(self, user: str) -> str:
                return "password"

            def check_channel_request(self, kind: str, chanid: int) -> int:
                return paramiko.OPEN_SUCCEEDED

        self.key = paramiko.RSAKey.generate(2048)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.transports: list[Any] = []

        def serve() -> None:
            while True:
                try:
                    conn, _ = self.listener.accept()
                except OSError:
                    return
                transport = paramiko.Transport(conn)
                transport.add_server_key(server.key)
                transport.set_subsystem_handler("sftp", paramiko.SFTPServer, Files)
                transport.start_server(server=Auth())
                server.transports.append(transport)

        threading.Thread(target=serve, daemon=True).start()
        self.known_hosts = tmp / "known_hosts"
        self.known_hosts.write_text(
            f"[127.0.0.1]:{self.port} {self.key.get_name()} {self.key.get_base64()}\n"
        )

    def endpoint(self) -> SFTPEndpoint:
        return SFTPEndpoint(
            "fake",
            f"sftp://u@127.0.0.1:{self.port}/",
            {"password": "p", "known_hosts": str(self.known_hosts), "allow_agent": False},
            base_dir=self.known_hosts.parent,
        )

    def close(self) -> None:
        self.listener.close()
        for transport in self.transports:
            transport.close()


@pytest.mark.parametrize("mode", ["fail", "drop"])
def test_a_failed_write_never_replaces_the_file(tmp_path: Path, mode: str) -> None:
    """Pipelined writes: a write the server refuses (or loses) fails the put; the short
    temporary file is removed, never renamed over the old content."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "doc.bin").write_bytes(b"OLD GOOD CONTENT")
    server = _FailingServer(root, tmp_path, mode)
    ep = server.endpoint()
    try:
        data = os.urandom(1 << 20)
        with pytest.raises(ConnectorError) as info:
            ep.put("doc.bin", io.BytesIO(data), len(data), part_size=0, multipart_threshold=0)
        text = str(info.value)
        assert "\n" not in text and text.startswith("fake: cannot write doc.bin")
        if mode == "drop":
            assert "kept 65536 of the 1048576 bytes" in text
        assert (root / "doc.bin").read_bytes() == b"OLD GOOD CONTENT"
        assert os.listdir(root) == ["doc.bin"]  # no temporary file left
        put_bytes(ep, "small.txt", b"fits")  # the channel still works
        assert (root / "small.txt").read_bytes() == b"fits"
    finally:
        ep.close()
        server.close()


def test_reads_adapt_to_a_server_with_smaller_replies(tmp_path: Path) -> None:
    """Read requests are larger than some servers answer: a short reply is not the end,
    the rest is asked for again in the size the server answers."""
    root = tmp_path / "root"
    root.mkdir()
    data = os.urandom(3 * (1 << 20) + 12_345)
    (root / "f.bin").write_bytes(data)
    server = _FailingServer(root, tmp_path, "fail", read_cap=20_000)
    ep = server.endpoint()
    try:
        assert read_bytes(ep, "f.bin") == data
        assert read_bytes(ep, "f.bin", block=4093) == data
    finally:
        ep.close()
        server.close()


# -- the channel pool -----------------------------------------------------------------------
def test_channels_are_shared_by_thread_pools(ep: SFTPEndpoint, workdir: Path) -> None:
    """The engine makes a new thread pool per step while the endpoint lives for the run:
    channels are pooled, not kept per thread (OpenSSH allows 10 per connection)."""
    from concurrent.futures import ThreadPoolExecutor

    from connectors.files import sftp as sftp_mod

    (workdir / "f.txt").write_bytes(b"x")
    for _step in range(5):
        with ThreadPoolExecutor(6) as pool:
            sizes = list(pool.map(lambda _i: ep.stat("f.txt").size, range(60)))
        assert sizes == [1] * 60
        assert ep._open <= sftp_mod.MAX_CHANNELS


def test_readers_hold_their_channel_until_closed(ep: SFTPEndpoint, workdir: Path) -> None:
    from connectors.files import sftp as sftp_mod

    for i in range(sftp_mod.MAX_CHANNELS + 3):
        (workdir / f"{i}.txt").write_bytes(b"%d" % i)
    readers = [ep.open_read(f"{i}.txt") for i in range(sftp_mod.MAX_CHANNELS)]
    # this thread holds every channel of the pool: it may still open a few more
    extra = [ep.open_read(f"{i}.txt") for i in range(sftp_mod.MAX_CHANNELS, len(readers) + 2)]
    assert [r.read() for r in readers + extra] == [b"%d" % i for i in range(len(readers) + 2)]
    for reader in readers + extra:
        reader.close()
    assert ep._open <= sftp_mod.HARD_MAX_CHANNELS
    assert ep.stat("0.txt") is not None


def test_non_utf8_names_do_not_leak_channels(ep: SFTPEndpoint, workdir: Path) -> None:
    (workdir / "ok.txt").write_bytes(b"ok")
    os.mkdir(os.path.join(os.fsencode(workdir), b"bad\xff"))
    for _ in range(12):  # more than OpenSSH's MaxSessions
        with pytest.raises(ConnectorError, match="not UTF-8"):
            listing(ep)
    assert read_bytes(ep, "ok.txt") == b"ok"


def test_closing_a_reader_early_waits_for_little(ep: SFTPEndpoint, workdir: Path) -> None:
    """Only the requests in flight are waited for, not the rest of the file."""
    import time
    import tracemalloc

    with open(workdir / "big.bin", "wb") as out:
        for _ in range(64):
            out.write(os.urandom(1 << 20))
    reader = ep.open_read("big.bin")
    assert len(reader.read(1 << 20)) == 1 << 20
    time.sleep(0.3)  # the server has answered what was asked for
    tracemalloc.start()
    try:
        started = time.perf_counter()
        reader.close()
        took = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"closing held {peak / (1 << 20):.1f} MiB"
    assert took < 2.0
    assert ep._open == 1 and len(ep._idle) == 1  # the channel went back to the pool
    assert read_bytes(ep, "big.bin", block=1 << 20)[:16] == (workdir / "big.bin").read_bytes()[:16]


# -- known_hosts markers ----------------------------------------------------------------------
def _record_sockets(monkeypatch: pytest.MonkeyPatch) -> list[socket.socket]:
    made: list[socket.socket] = []
    real = socket.create_connection

    def create_connection(*args: Any, **kwargs: Any) -> socket.socket:
        sock = real(*args, **kwargs)
        made.append(sock)
        return sock

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return made


def test_revoked_host_key_is_refused(
    sftp_server: dict[str, str], workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = server_key_line(sftp_server)
    sockets = _record_sockets(monkeypatch)
    for text in (f"@revoked {line}\n{line}\n", f"@revoked {line}\n"):
        known = tmp_path / "known_hosts"
        known.write_text(text)
        ep = make(sftp_server, workdir, known_hosts=str(known), accept_new_host_key=True)
        with pytest.raises(ConnectorError) as info:
            ep.stat("x")
        message = str(info.value)
        assert "\n" not in message and "@revoked" in message and str(known) in message
        assert not isinstance(info.value, TransientError)
        assert known.read_text() == text  # accept_new_host_key added nothing
        ep.close()
    assert sockets and all(s.fileno() == -1 for s in sockets)  # no connection left open


def test_cert_authority_and_bad_lines_are_skipped(
    sftp_server: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    other = other_key_line(sftp_server).split(None, 1)[1].strip()
    known = tmp_path / "known_hosts"
    known.write_text(
        f"@cert-authority *.example.com {other}\n"
        "garbage-host ssh-ed25519 not-base64!!\n"
        f"{server_key_line(sftp_server)}\n"
    )
    ep = make(sftp_server, workdir, known_hosts=str(known))
    try:
        assert ep.stat("nothing") is None
    finally:
        ep.close()


def test_url_with_a_bare_fragment_or_query_is_a_plan_error(tmp_path: Path) -> None:
    for url in ("sftp://u@h/data#2024", "sftp://u@h/data?x", "sftp://u@h/data#"):
        with pytest.raises(PlanError, match=r"connections\.nas\.url: .*%3F / %23"):
            SFTPEndpoint("nas", url, {}, base_dir=tmp_path)


def test_root_exists(sftp_server: dict[str, str], workdir: Path) -> None:
    (workdir / "sub").mkdir()
    (workdir / "plain.txt").write_bytes(b"not a dir")
    (workdir / "alias").symlink_to("sub")
    cases = {"sub": True, "alias": True, "missing": False, "missing/deeper": False}
    cases |= {"plain.txt": False, "plain.txt/x": False}
    for rel, expected in cases.items():
        ep = make(sftp_server, workdir / rel)
        try:
            assert ep.root_exists() is expected, rel
        finally:
            ep.close()


# -- several connections, size hints, reads without a stat ------------------------------------
def make_workers(server: dict[str, str], directory: Path, workers: int, **options: Any) -> Any:
    opts: dict[str, Any] = {"known_hosts": server["known_hosts"], "allow_agent": False}
    opts["key_file"] = server["key"]
    opts.update(options)
    return SFTPEndpoint(
        "nas", url_for(server, directory), opts, base_dir=directory, workers=workers
    )


def test_channels_spread_over_several_connections(
    sftp_server: dict[str, str], workdir: Path
) -> None:
    from connectors.files import sftp as sftp_mod

    per = sftp_mod.CHANNELS_PER_CONNECTION
    ep = make_workers(sftp_server, workdir, 16)
    assert ep.max_channels == 16 and ep.max_connections == -(-16 // per)
    try:
        for i in range(20):
            (workdir / f"{i}.txt").write_bytes(b"%d" % i)
        readers = [ep.open_read(f"{i}.txt") for i in range(16)]
        assert len(ep._conns) == ep.max_connections
        assert all(c.open <= per for c in ep._conns)
        # this thread holds every channel: a few more go on the connections there are
        extra = [ep.open_read(f"{i}.txt") for i in range(16, 18)]
        assert len(ep._conns) == ep.max_connections
        assert all(c.open <= sftp_mod.HARD_MAX_CHANNELS for c in ep._conns)
        got = [r.read() for r in readers + extra]
        assert got == [b"%d" % i for i in range(18)]
        for reader in readers + extra:
            reader.close()
        assert ep._open == 18 and len(ep._idle) == 18 and not ep._held
    finally:
        ep.close()
    assert ep._open == 0 and not ep._conns


def test_many_threads_share_the_connections(sftp_server: dict[str, str], workdir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    for i in range(100):
        (workdir / f"{i}.bin").write_bytes(os.urandom(1000 + i * 997))
    ep = make_workers(sftp_server, workdir, 12)
    try:
        entries = listing(ep)
        with ThreadPoolExecutor(24) as pool:  # more threads than channels: some wait
            datas = dict(pool.map(lambda p: (p, read_bytes(ep, p)), sorted(entries)))
        assert datas == {p: (workdir / p).read_bytes() for p in entries}
        assert ep._open <= ep.max_channels and len(ep._conns) <= ep.max_connections
    finally:
        ep.close()


def test_first_connection_alone_adds_the_host_key_once(
    sftp_server: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    """Several threads start at once: one connection checks the unknown key and adds it;
    the others are opened after it (known by then)."""
    from concurrent.futures import ThreadPoolExecutor

    known = tmp_path / "known_hosts"
    (workdir / "f.txt").write_bytes(b"f")
    ep = make_workers(sftp_server, workdir, 16, known_hosts=str(known), accept_new_host_key=True)
    try:
        barrier = threading.Barrier(12)

        def hold() -> Any:
            reader = ep.open_read("f.txt")
            barrier.wait(30)  # every thread holds a channel: several connections
            data = reader.read()
            reader.close()
            return data

        with ThreadPoolExecutor(12) as pool:
            assert list(pool.map(lambda _i: hold(), range(12))) == [b"f"] * 12
        assert len(ep._conns) > 1
    finally:
        ep.close()
    assert len(ep.notes) == 1
    assert len(known.read_text().splitlines()) == 1


def test_a_listed_file_is_opened_without_a_stat_and_read_to_its_size_only(
    ep: SFTPEndpoint, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors.files import base
    from connectors.files import sftp as sftp_mod

    data = os.urandom(700_000)
    (workdir / "f.bin").write_bytes(data)
    assert files_of(listing(ep)) == {"f.bin": len(data)}
    sent: list[tuple[int, int]] = []
    real_send = sftp_mod._Pipe.send

    def send(self: Any, kind: int, *args: Any) -> int:
        sent.append((kind, args[1] + args[2] if kind == sftp_mod._sftp().CMD_READ else 0))
        return real_send(self, kind, *args)

    monkeypatch.setattr(sftp_mod._Pipe, "send", send)
    sftp = sftp_mod._sftp()
    reader = base.HashingReader(ep.open_read("f.bin"), limit=len(data))  # as the engine reads
    while reader.read(1 << 20):
        pass
    reader.close()
    assert reader.bytes_read == len(data) and reader.md5 == hashlib.md5(data).hexdigest()
    kinds = {kind for kind, _ in sent}
    assert sftp.CMD_STAT not in kinds and sftp.CMD_FSTAT not in kinds
    assert max(end for kind, end in sent if kind == sftp.CMD_READ) == len(data)
    # the size was used once: a second open asks the server (with the open, no round trip)
    sent.clear()
    assert read_bytes(ep, "f.bin") == data
    assert sftp.CMD_STAT in {kind for kind, _ in sent}


@pytest.mark.parametrize("change", ["grew", "shrank", "was empty"])
def test_a_file_changed_after_the_listing_is_read_to_its_real_end(
    ep: SFTPEndpoint, workdir: Path, change: str
) -> None:
    """The listing's size only says how far to ask ahead: a reader that wants more finds
    where the file really ends."""
    from connectors.files import sftp as sftp_mod

    big = sftp_mod.READ_REQUEST * 3 + 11
    before = b"" if change == "was empty" else os.urandom(big)
    (workdir / "f.bin").write_bytes(before)
    assert files_of(listing(ep)) == {"f.bin": len(before)}
    after = {
        "grew": before + os.urandom(big),
        "shrank": before[: sftp_mod.READ_REQUEST + 5],
        "was empty": os.urandom(big),
    }[change]
    (workdir / "f.bin").write_bytes(after)
    assert read_bytes(ep, "f.bin") == after
    assert read_bytes(ep, "f.bin", block=4093) == after  # (no listing size this time)


def test_stray_replies_of_a_closed_reader_do_not_reach_the_next_user(
    ep: SFTPEndpoint, workdir: Path
) -> None:
    """Closing sends CLOSE and leaves the replies in flight to whoever takes the channel
    next: its own replies are still the ones it gets."""
    big = os.urandom(8 << 20)
    (workdir / "big.bin").write_bytes(big)
    (workdir / "small.txt").write_bytes(b"small")
    for round_ in range(5):
        reader = ep.open_read("big.bin")
        assert reader.read(100_000) == big[:100_000]
        reader.close()  # 4 MiB asked for, unread
        assert ep._open == 1  # one channel: the next calls use the same one
        assert ep.stat("small.txt").size == 5
        put_bytes(ep, f"out{round_}.txt", b"out %d" % round_)
        assert read_bytes(ep, "small.txt") == b"small"
        assert (workdir / f"out{round_}.txt").read_bytes() == b"out %d" % round_
    assert read_bytes(ep, "big.bin", block=1 << 20) == big


def test_an_extra_connection_that_fails_is_not_an_error(
    sftp_server: dict[str, str], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sshd drops connections beyond MaxStartups: the operation shares the connections
    there are, and no other is tried for a while."""
    ep = make_workers(sftp_server, workdir, 16)
    real_connect = ep._connect
    calls: list[int] = []

    def connect() -> Any:
        calls.append(1)
        if len(calls) > 1:
            raise TransientError("nas: ssh connection to x failed: Error reading SSH banner")
        return real_connect()

    monkeypatch.setattr(ep, "_connect", connect)
    try:
        for i in range(6):
            (workdir / f"{i}.txt").write_bytes(b"%d" % i)
        readers = [ep.open_read(f"{i}.txt") for i in range(6)]
        assert [r.read() for r in readers] == [b"%d" % i for i in range(6)]
        for reader in readers:
            reader.close()
        assert len(ep._conns) == 1 and len(calls) == 2
    finally:
        ep.close()
