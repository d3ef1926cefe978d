"""``sftp://`` connector against the OpenSSH test server: the file conformance suite, plus
authentication, host keys, atomic puts and reconnects.

Every test works in a fresh directory below ``MIGRATE_TEST_SFTP_DIR`` (owned by the SFTP
user, so the server can write there; files the tests plant as root stay readable)."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.files.base import TMP_PREFIX
from migrate.errors import ConnectorError, PlanError, TransientError
from tests.file_conformance import (
    FileConformance,
    IterStream,
    SourceFailed,
    bytes_chunks,
    failing,
    listing,
    put_bytes,
    read_bytes,
)

paramiko = pytest.importorskip("paramiko")

from connectors.files.sftp import SFTPEndpoint  # noqa: E402 - after the importorskip


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
    assert ep._transport is not None
    ep._transport.sock.close()  # the network drops the connection
    assert read_bytes(ep, "a.txt") == b"a"  # reopened on its own
    put_bytes(ep, "b.txt", b"b")
    assert (workdir / "b.txt").read_bytes() == b"b"


def test_drop_during_a_put_is_transient_and_leaves_no_final_name(
    ep: SFTPEndpoint, workdir: Path
) -> None:
    put_bytes(ep, "warm.txt", b"w")

    def drop() -> None:
        assert ep._transport is not None
        ep._transport.sock.close()

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


NAMES = [
    "中文/文件 名.txt",
    "space dir/a b.txt",
    "pct/100%.txt",
    "pct/%41%2F.txt",
    "plus/a+b.txt",
    "hash/#1.txt",
    "q/why?.txt",
]


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
