"""``file://`` connector: the file conformance suite, plus what only a local path has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.files.local import LocalEndpoint
from migrate.errors import ConnectorError, PlanError
from tests.file_conformance import FileConformance, listing, put_bytes, read_bytes


class TestLocalConformance(FileConformance):
    mtime_tolerance_ns = 0  # a local file system keeps nanoseconds

    @pytest.fixture
    def local_dir(self, tmp_path: Path) -> Path:
        (root := tmp_path / "root dir %").mkdir()  # a space and a '%' in the URL too
        return root

    @pytest.fixture
    def endpoint(self, local_dir: Path) -> Iterator[LocalEndpoint]:
        ep = LocalEndpoint("conf", local_dir.as_uri(), {}, base_dir=local_dir.parent)
        yield ep
        ep.close()


def make(url: str, base_dir: Path, **options: object) -> LocalEndpoint:
    return LocalEndpoint("nas", url, dict(options), base_dir=base_dir)


def test_relative_url_is_resolved_against_base_dir(tmp_path: Path) -> None:
    (tmp_path / "data" / "in").mkdir(parents=True)
    (tmp_path / "data" / "in" / "a.txt").write_bytes(b"a")
    ep = make("file:data/in", tmp_path)
    assert ep.root == tmp_path / "data" / "in"
    assert {i.path for i in ep.list()} == {"a.txt"}
    put_bytes(ep, "b.txt", b"b")
    assert (tmp_path / "data" / "in" / "b.txt").read_bytes() == b"b"


def test_absolute_and_localhost_urls(tmp_path: Path) -> None:
    assert make(f"file://{tmp_path}", Path("/elsewhere")).root == tmp_path
    assert make(f"file://localhost{tmp_path}", Path("/elsewhere")).root == tmp_path
    quoted = make((tmp_path / "a b%c").as_uri(), Path("/elsewhere"))
    assert quoted.root == tmp_path / "a b%c"
    assert str(tmp_path) in quoted.describe()


def test_missing_root_lists_nothing_and_put_creates_it(tmp_path: Path) -> None:
    ep = make((tmp_path / "not-yet").as_uri(), tmp_path)
    assert listing(ep) == {}
    put_bytes(ep, "x/y.txt", b"y")
    assert read_bytes(ep, "x/y.txt") == b"y"


def test_root_that_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_bytes(b"not a dir")
    ep = make((tmp_path / "plain.txt").as_uri(), tmp_path)
    with pytest.raises(ConnectorError, match=r"^nas: .*plain\.txt is not a directory$"):
        list(ep.list())
    with pytest.raises(ConnectorError, match=r"^nas: cannot write f\.txt"):
        put_bytes(ep, "f.txt", b"f")
    assert (tmp_path / "plain.txt").read_bytes() == b"not a dir"


@pytest.mark.parametrize("url", ["file://fileserver/share", "file://10.0.0.9/export"])
def test_remote_host_is_a_plan_error(tmp_path: Path, url: str) -> None:
    with pytest.raises(PlanError, match=r"connections\.nas\.url: .*nfs:// or sftp://"):
        make(url, tmp_path)


def test_unknown_option_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"connections\.nas\.options: unknown option 'bogus'"):
        make(tmp_path.as_uri(), tmp_path, bogus=1)


def test_registry_finds_the_local_connector() -> None:
    from migrate.registry import endpoint_class, endpoint_kind

    assert endpoint_kind("file:///mnt/x") == "file"
    assert endpoint_class("file:///mnt/x") is LocalEndpoint


@pytest.mark.parametrize("tail", ["backup#2024", "reports?final", "a#", "b?"])
def test_hash_or_question_mark_in_the_url_is_a_plan_error(tmp_path: Path, tail: str) -> None:
    """urlsplit would drop them, and the step would run on the parent folder."""
    with pytest.raises(PlanError, match=r"^connections\.nas\.url: .*%3F / %23"):
        make(f"file://{tmp_path}/{tail}", tmp_path)


def test_quoted_hash_and_question_mark_name_the_folder(tmp_path: Path) -> None:
    ep = make(f"file://{tmp_path}/a%23b%3Fc", tmp_path)
    assert ep.root == tmp_path / "a#b?c"
    put_bytes(ep, "f.txt", b"f")
    assert (tmp_path / "a#b?c" / "f.txt").read_bytes() == b"f"


def test_root_reached_through_a_link_is_still_inside(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to("real")
    ep = make((tmp_path / "alias").as_uri(), tmp_path)
    put_bytes(ep, "d/f.txt", b"f")
    assert (tmp_path / "real" / "d" / "f.txt").read_bytes() == b"f"
    assert ep.stat("d/f.txt") is not None
    ep.delete("d/f.txt")
    assert not (tmp_path / "real" / "d").exists()
