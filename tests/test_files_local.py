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


def test_root_exists(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to("real")
    (tmp_path / "dangling").symlink_to("nowhere")
    (tmp_path / "plain.txt").write_bytes(b"not a dir")
    assert make((tmp_path / "real").as_uri(), tmp_path).root_exists() is True
    assert make((tmp_path / "alias").as_uri(), tmp_path).root_exists() is True
    assert make("file:real", tmp_path).root_exists() is True  # relative to the plan
    for missing in ("not-there", "not-there/deeper", "dangling", "plain.txt", "plain.txt/x"):
        assert make((tmp_path / missing).as_uri(), tmp_path).root_exists() is False, missing


def test_put_syncs_the_file_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power loss must not leave the final name with blocks that never reached the disk."""
    import os

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        real_fsync(fd)

    def replace(src: object, dst: object) -> None:
        events.append(("replace", os.path.basename(str(src))))
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    ep = make(tmp_path.as_uri(), tmp_path)
    put_bytes(ep, "d/f.txt", b"content")
    assert [kind for kind, _ in events] == ["fsync", "replace"]
    assert events[0][1] == events[1][1] and events[0][1].startswith(".migrate-tmp-")
    assert (tmp_path / "d" / "f.txt").read_bytes() == b"content"
