"""``nfs://`` connector against the NFS-Ganesha test server (NFSv3 and NFSv4, through
libnfs, no kernel mount): the file conformance suite, plus URL forms, atomic puts,
symbolic links and error messages.

Every test works in a fresh directory below the export (``MIGRATE_TEST_NFS_DIR``), named
through the ``export`` option, so files the tests plant there are seen by the server."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from connectors.files.base import TMP_PREFIX
from connectors.files.nfs import NFSEndpoint
from migrate.errors import ConnectorError, PlanError, TransientError
from tests.file_conformance import (
    URL_SPECIAL_NAMES,
    FileConformance,
    IterStream,
    SourceFailed,
    bytes_chunks,
    failing,
    listing,
    put_bytes,
    read_bytes,
)

VERSIONS = [3, 4]


def server_url(server: dict[str, str], version: int) -> str:
    return server["url"] if version == 3 else server["url_v4"]


def url_below(server: dict[str, str], version: int, directory: Path) -> str:
    """The server's URL for ``directory`` (somewhere below the export), query kept."""
    parts = urlsplit(server_url(server, version))
    rel = directory.relative_to(server["dir"])
    return f"nfs://{parts.hostname}{quote(parts.path)}/{quote(str(rel))}?{parts.query}"


def make(
    server: dict[str, str], version: int, directory: Path, name: str = "nas", **options: Any
) -> NFSEndpoint:
    opts: dict[str, Any] = {"export": urlsplit(server["url"]).path, **options}
    return NFSEndpoint(name, url_below(server, version, directory), opts, base_dir=directory)


@pytest.fixture
def workdir(nfs_server: dict[str, str]) -> Iterator[Path]:
    path = Path(nfs_server["dir"]) / f"t-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=VERSIONS, ids=lambda v: f"v{v}")
def version(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture
def ep(nfs_server: dict[str, str], version: int, workdir: Path) -> Iterator[NFSEndpoint]:
    endpoint = make(nfs_server, version, workdir)
    yield endpoint
    endpoint.close()


class TestNFSv3Conformance(FileConformance):
    mtime_tolerance_ns = 1000  # libnfs sets times in microseconds
    nfs_version = 3

    @pytest.fixture
    def local_dir(self, workdir: Path) -> Path:
        return workdir

    @pytest.fixture
    def endpoint(self, nfs_server: dict[str, str], workdir: Path) -> Iterator[NFSEndpoint]:
        endpoint = make(nfs_server, self.nfs_version, workdir, name="conf")
        yield endpoint
        endpoint.close()


class TestNFSv4Conformance(TestNFSv3Conformance):
    nfs_version = 4


# -- URL forms ------------------------------------------------------------------------------
def test_whole_url_path_is_the_export(nfs_server: dict[str, str], version: int) -> None:
    """The test server's URL as it is: the export itself is the root."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    local = Path(nfs_server["dir"]) / name
    ep = NFSEndpoint("nas", server_url(nfs_server, version), {}, base_dir=Path("/"))
    try:
        assert ep.root == "/" and ep.export == nfs_server["dir"]
        put_bytes(ep, f"{name}/a.txt", b"a")
        assert (local / "a.txt").read_bytes() == b"a"
        assert read_bytes(ep, f"{name}/a.txt") == b"a"
        ep.delete(f"{name}/a.txt")
        assert not local.exists()  # pruned, up to (not including) the export
    finally:
        ep.close()
        shutil.rmtree(local, ignore_errors=True)


def test_version_and_ports_as_options(
    nfs_server: dict[str, str], version: int, workdir: Path
) -> None:
    parts = urlsplit(server_url(nfs_server, version))
    query = dict(p.split("=") for p in parts.query.split("&"))
    options: dict[str, Any] = {"version": version, "nfsport": int(query["nfsport"])}
    if "mountport" in query:
        options["mountport"] = int(query["mountport"])
    options["export"] = parts.path
    url = f"nfs://{parts.hostname}{quote(str(workdir))}"
    ep = NFSEndpoint("nas", url, options, base_dir=workdir)
    try:
        assert ep.version == version
        assert ep.describe() == f"nfs v{version} 127.0.0.1:{parts.path}/{workdir.name}"
        (workdir / "f.txt").write_bytes(b"f")
        assert read_bytes(ep, "f.txt") == b"f"
    finally:
        ep.close()


def test_special_characters_in_the_root(
    nfs_server: dict[str, str], version: int, workdir: Path
) -> None:
    root = workdir / "根 dir %+#?"
    root.mkdir()
    (root / "f.txt").write_bytes(b"f")
    ep = make(nfs_server, version, root)
    try:
        assert set(listing(ep)) == {"f.txt"}
        put_bytes(ep, "g.txt", b"g")
        assert (root / "g.txt").read_bytes() == b"g"
    finally:
        ep.close()


def test_unknown_export_is_one_line(nfs_server: dict[str, str], version: int) -> None:
    parts = urlsplit(server_url(nfs_server, version))
    url = f"nfs://{parts.hostname}/no/such/export?{parts.query}"
    ep = NFSEndpoint("nas", url, {}, base_dir=Path("/"))
    with pytest.raises(ConnectorError) as info:
        ep.stat("x")
    text = str(info.value)
    assert text.startswith(f"nas: cannot mount /no/such/export from 127.0.0.1 (NFSv{version})")
    assert "\n" not in text


def test_refused_port_is_transient(version: int) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"nfs://127.0.0.1/export?version={version}&nfsport={port}&mountport={port}"
    ep = NFSEndpoint("nas", url, {"timeout": 5}, base_dir=Path("/"))
    with pytest.raises(TransientError) as info:
        ep.stat("x")
    assert str(info.value).startswith("nas: cannot mount /export from 127.0.0.1")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("nfs://h/e?bogus=1", {}, r"url: unknown query argument 'bogus'"),
        ("nfs://h/e?version=x", {}, r"url: version must be a number"),
        ("nfs://h/e", {"version": 2}, r"options\.version: must be 3 or 4"),
        ("nfs://h/e/sub", {"export": "/other"}, r"options\.export: /other is not a prefix"),
        ("nfs://h/e", {"bogus": 1}, r"options: unknown option 'bogus'"),
        ("nfs://u@h/e", {}, r"url: an nfs URL has no user or port"),
        ("nfs:///e", {}, r"url: expected nfs://host/export/path"),
        ("nfs://h/e/share#2024?version=3", {}, r"url: an nfs URL takes no '#' part.*%23"),
        ("nfs://h/e/share#", {}, r"url: an nfs URL takes no '#' part"),
    ],
)
def test_plan_errors(url: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError, match=r"^connections\.nas\." + message):
        NFSEndpoint("nas", url, options, base_dir=Path("/"))


def test_export_option_splits_the_path() -> None:
    ep = NFSEndpoint(
        "nas",
        "nfs://10.0.0.9/export/share/a%20b?version=4",
        {"export": "/export"},
        base_dir=Path("/"),
    )
    assert (ep.export, ep.root, ep.version) == ("/export", "/share/a b", 4)
    assert ep.describe() == "nfs v4 10.0.0.9:/export/share/a b"
    whole = NFSEndpoint("nas", "nfs://10.0.0.9/export/share/", {}, base_dir=Path("/"))
    assert (whole.export, whole.root, whole.version) == ("/export/share", "/", 3)


def test_registry_finds_the_nfs_connector() -> None:
    from migrate.registry import endpoint_class, endpoint_kind

    assert endpoint_kind("nfs://h/e") == "file"
    assert endpoint_class("nfs://h/e") is NFSEndpoint


# -- puts -----------------------------------------------------------------------------------
@pytest.mark.parametrize("overwrite", [False, True])
def test_put_is_atomic(ep: NFSEndpoint, workdir: Path, overwrite: bool) -> None:
    """A source that breaks midway: the final name never shows partial content, and no
    temporary file remains."""
    if overwrite:
        put_bytes(ep, "d/final.bin", b"old content")
    seen: list[bool] = []

    def during() -> None:  # the put is half done: a temp file exists, the final name not
        seen.append((workdir / "d" / "final.bin").exists())
        seen.append(any(p.name.startswith(TMP_PREFIX) for p in (workdir / "d").iterdir()))

    data = os.urandom(300_000)
    stream = IterStream(
        failing(bytes_chunks(data, 50_000), 250_000),
        short=True,
        trigger=100_000,
        on_trigger=during,
    )
    with pytest.raises(SourceFailed):
        ep.put("d/final.bin", stream, len(data), part_size=0, multipart_threshold=0)
    assert seen == [overwrite, True]
    if overwrite:
        assert sorted(p.name for p in (workdir / "d").iterdir()) == ["final.bin"]
        assert read_bytes(ep, "d/final.bin") == b"old content"
    else:
        assert not (workdir / "d").exists()  # the folder the put made is gone too


NAMES = URL_SPECIAL_NAMES  # names a URL or path quoting step could mangle


def test_special_names_and_mtime_round_trip(ep: NFSEndpoint, workdir: Path) -> None:
    for i, name in enumerate(NAMES):
        put_bytes(ep, name, name.encode() * (i + 1), mtime_ns=1_500_000_000_123_456_000 + i)
    for i, name in enumerate(NAMES):
        assert (workdir / name).read_bytes() == name.encode() * (i + 1)
        assert (workdir / name).stat().st_mtime_ns == 1_500_000_000_123_456_000
        assert read_bytes(ep, name) == name.encode() * (i + 1)
    assert set(listing(ep)) == set(NAMES)


def test_put_without_mtime_gets_a_current_one(ep: NFSEndpoint, workdir: Path) -> None:
    """NFSv4 exclusive creates store a verifier in the times: it must not stay there."""
    import time

    before = time.time_ns() - 5 * 10**9
    put_bytes(ep, "empty", b"")
    put_bytes(ep, "full", b"x" * 10_000)
    for name in ("empty", "full"):
        mtime = (workdir / name).stat().st_mtime_ns
        assert before < mtime < time.time_ns() + 5 * 10**9, name


def test_large_put_crosses_many_requests(ep: NFSEndpoint, workdir: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 12_345)  # not a multiple of any request size
    put_bytes(ep, "big.bin", data, short=True)
    assert (workdir / "big.bin").read_bytes() == data
    assert read_bytes(ep, "big.bin", block=100_003) == data


def test_deep_tree_and_empty_dirs(ep: NFSEndpoint, workdir: Path) -> None:
    deep = "/".join(f"d{i}" for i in range(25))
    put_bytes(ep, f"{deep}/leaf.txt", b"leaf")
    ep.make_dir("e1/e2")
    (workdir / "planted-empty").mkdir()
    entries = listing(ep)
    assert {p for p, i in entries.items() if not i.is_dir} == {f"{deep}/leaf.txt"}
    assert {p for p, i in entries.items() if i.is_dir} == {"e1/e2", "planted-empty"}
    ep.delete(f"{deep}/leaf.txt")  # prunes the emptied folders up to the root
    assert not (workdir / "d0").exists()


def test_write_conflicts_name_the_path(ep: NFSEndpoint, workdir: Path) -> None:
    put_bytes(ep, "file.txt", b"f")
    with pytest.raises(ConnectorError, match=r"^nas: cannot write file\.txt/x .*: a parent is not"):
        put_bytes(ep, "file.txt/x", b"x")
    with pytest.raises(ConnectorError, match=r"^nas: cannot create directory file\.txt/d"):
        ep.make_dir("file.txt/d")


# -- symbolic links --------------------------------------------------------------------------
def test_symlinks_absolute_relative_and_chained(
    ep: NFSEndpoint, workdir: Path, tmp_path: Path
) -> None:
    (workdir / "sub").mkdir()
    (workdir / "sub" / "in.txt").write_bytes(b"in")
    (tmp_path / "secret").write_bytes(b"secret")
    os.symlink(workdir / "sub", workdir / "abs_dir")  # absolute, inside
    os.symlink("sub/in.txt", workdir / "rel_file")  # relative, inside
    os.symlink(tmp_path / "secret", workdir / "hop2")  # absolute, outside the export
    os.symlink("hop2", workdir / "hop1")  # a chain that leaves
    os.symlink(Path(workdir).parent, workdir / "export_root")  # inside the export, not root
    os.symlink("/etc", workdir / "etc")
    followed = listing(ep, follow_symlinks=True)
    assert set(followed) == {"sub/in.txt", "abs_dir/in.txt", "rel_file"}
    assert set(listing(ep)) == {"sub/in.txt"}
    assert read_bytes(ep, "abs_dir/in.txt") == b"in"
    assert read_bytes(ep, "rel_file") == b"in"
    assert ep.stat("abs_dir/in.txt").size == 2


def test_symlinks_of_the_test_server_export_path(
    nfs_server: dict[str, str], version: int, workdir: Path
) -> None:
    """The root itself reached through a link: links are resolved against the export."""
    (workdir / "real").mkdir()
    (workdir / "real" / "f.txt").write_bytes(b"f")
    os.symlink("real", workdir / "alias")
    ep = make(nfs_server, version, workdir / "alias")
    try:
        assert set(listing(ep, follow_symlinks=True)) == {"f.txt"}
    finally:
        ep.close()


# -- errors ---------------------------------------------------------------------------------
def test_missing_file_error_is_one_line(ep: NFSEndpoint) -> None:
    with pytest.raises(ConnectorError) as info:
        ep.open_read("nope/none.txt")
    text = str(info.value)
    assert text.startswith("nas: cannot read nope/none.txt on nfs 127.0.0.1:")
    assert text.endswith(": no such file or directory") and "\n" not in text


def test_surrogate_names_are_refused_cleanly(ep: NFSEndpoint) -> None:
    with pytest.raises(ConnectorError, match="not valid UTF-8"):
        ep.stat("bad\udcff.txt")


def test_non_utf8_names_make_listing_fail_loudly(ep: NFSEndpoint, workdir: Path) -> None:
    (workdir / "ok.txt").write_bytes(b"ok")
    os.mkdir(os.path.join(os.fsencode(workdir), b"bad\xff"))
    with pytest.raises(ConnectorError, match=r"^nas: cannot list / on nfs .*not valid UTF-8"):
        listing(ep)


def test_missing_root_lists_nothing_and_put_creates_it(
    nfs_server: dict[str, str], version: int, workdir: Path
) -> None:
    ep = make(nfs_server, version, workdir / "not-yet")
    try:
        assert listing(ep) == {}
        put_bytes(ep, "x/y.txt", b"y")
        assert (workdir / "not-yet" / "x" / "y.txt").read_bytes() == b"y"
    finally:
        ep.close()


def test_close_then_reuse_reconnects(ep: NFSEndpoint, workdir: Path) -> None:
    put_bytes(ep, "a.txt", b"a")
    ep.close()
    assert read_bytes(ep, "a.txt") == b"a"  # a closed endpoint mounts again on use


def test_quoted_hash_and_question_mark_in_the_path() -> None:
    ep = NFSEndpoint("nas", "nfs://h/e/a%23b%3Fc?version=4", {"export": "/e"}, base_dir=Path("/"))
    assert (ep.export, ep.root, ep.version) == ("/e", "/a#b?c", 4)


def test_stat_through_links_resolves_them_itself(ep: NFSEndpoint, workdir: Path) -> None:
    """libnfs (NFSv3) follows an absolute link in a path from the export's root and so
    reported the link's folder: stat resolves the links itself, and a path through a link
    that leaves the root is nothing."""
    outside = workdir.parent / f"{workdir.name}-out"
    outside.mkdir()
    try:
        (outside / "victim.txt").write_bytes(b"precious")
        (workdir / "sub").mkdir()
        (workdir / "sub" / "in.txt").write_bytes(b"inside")
        os.symlink(workdir / "sub", workdir / "abs_in")
        os.symlink(outside, workdir / "abs_out")
        os.symlink(f"../{outside.name}", workdir / "rel_out")
        os.symlink(workdir / "sub" / "in.txt", workdir / "abs_file")
        for path in ("abs_in/in.txt", "abs_file"):
            info = ep.stat(path)
            assert info is not None and not info.is_dir and info.size == 6, (path, info)
        assert ep.stat("abs_in").is_dir
        for path in ("abs_out/victim.txt", "rel_out/victim.txt", "abs_out", "rel_out"):
            assert ep.stat(path) is None, path
        assert ep.stat("sub/missing.txt") is None and ep.stat("missing/x") is None
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def test_contexts_are_shared_by_thread_pools(ep: NFSEndpoint, workdir: Path) -> None:
    """The engine makes a new thread pool per step while the endpoint lives for the run:
    NFSv3 contexts (one TCP connection each) are pooled, not kept per thread."""
    from concurrent.futures import ThreadPoolExecutor

    from connectors.files import nfs as nfs_mod

    (workdir / "f.txt").write_bytes(b"x")
    for _step in range(6):
        with ThreadPoolExecutor(6) as pool:
            sizes = list(pool.map(lambda _i: ep.stat("f.txt").size, range(60)))
        assert sizes == [1] * 60
        assert len(ep._contexts) <= nfs_mod.MAX_CONTEXTS
    for i in range(3):
        (workdir / f"{i}.txt").write_bytes(b"%d" % i)
    readers = [ep.open_read(f"{i}.txt") for i in range(3)]  # each keeps its context
    assert [r.read() for r in readers] == [b"0", b"1", b"2"]
    for reader in readers:
        reader.close()
    assert len(ep._contexts) <= nfs_mod.MAX_CONTEXTS
    ep.close()
    assert ep._contexts == [] and ep._open == 0
    assert read_bytes(ep, "f.txt") == b"x"


def test_root_exists(nfs_server: dict[str, str], version: int, workdir: Path) -> None:
    (workdir / "sub").mkdir()
    (workdir / "plain.txt").write_bytes(b"not a dir")
    (workdir / "alias").symlink_to("sub")
    cases = {"sub": True, "alias": True, "missing": False, "missing/deeper": False}
    cases |= {"plain.txt": False}
    for rel, expected in cases.items():
        ep = make(nfs_server, version, workdir / rel)
        try:
            assert ep.root_exists() is expected, rel
        finally:
            ep.close()
