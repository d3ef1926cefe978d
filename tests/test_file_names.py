"""Pure tests of the helpers in ``connectors/files/base.py`` (no endpoint, no I/O)."""

from __future__ import annotations

import hashlib
import io
import itertools
import random

import pytest

from connectors.files.base import (
    BACKUP_DIR,
    MIB,
    TMP_PREFIX,
    FileCapabilities,
    HashingReader,
    PutResult,
    check_options,
    effective_part_size,
    expected_etag,
    multipart_etag,
    option,
    reserved,
    unsafe_name,
)
from migrate.errors import PlanError

DATA = random.Random(42).randbytes(1_000_003)


def md5(data: bytes) -> hashlib._Hash:
    return hashlib.md5(data, usedforsecurity=False)


def s3_etag(data: bytes, part_size: int) -> str:
    """The S3 multipart ETag computed from scratch by slicing the bytes."""
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    joined = md5(b"".join(md5(p).digest() for p in parts)).hexdigest()
    return f"{joined}-{len(parts)}"


def read_irregularly(reader: HashingReader) -> bytes:
    sizes = itertools.cycle([1, 7, 4096, 65_537, 3, 100_000, 0, 13])
    out = bytearray()
    while True:
        n = next(sizes)
        block = reader.read(n)
        if n and not block:
            return bytes(out)
        out += block


# -- unsafe_name ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty name"),
        ("/etc/passwd", "absolute"),
        ("/", "absolute"),
        ("..", "'..'"),
        ("../up.txt", "'..'"),
        ("a/../../up.txt", "'..'"),
        ("a/..", "'..'"),
        (".", "'.'"),
        ("./a.txt", "'.'"),
        ("a/./b", "'.'"),
        ("a//b", "empty"),
        ("a/", "empty"),
        ("a\x00b", "NUL"),
        ("dir/\x00", "NUL"),
    ],
)
def test_unsafe_names_are_refused_with_a_reason(name: str, why: str) -> None:
    reason = unsafe_name(name)
    assert reason is not None and why in reason


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "a/b/c.txt",
        "中文/文件名.txt",
        "..foo",
        "foo..",
        "a/..b/c..",
        "...",
        ".hidden/.x",
        "with space/%20+#'&=?.txt",
        "back\\slash",
        "x" * 300,
        ".migrate-tmp-abc",  # reserved, but a well-formed name
    ],
)
def test_fine_names_pass(name: str) -> None:
    assert unsafe_name(name) is None


# -- reserved ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"{TMP_PREFIX}0123abcd", True),
        (f"deep/dir/{TMP_PREFIX}x", True),
        (BACKUP_DIR, True),
        (f"{BACKUP_DIR}/2024/a.txt", True),
        (f"{BACKUP_DIR}x", False),
        (f"{BACKUP_DIR}x/a.txt", False),
        (".migrate-tmp", False),  # the prefix is ".migrate-tmp-"
        ("x.migrate-tmp-1", False),
        (f"{TMP_PREFIX}dir/file.txt", False),  # only the last segment counts
        ("normal.txt", False),
        ("中文.txt", False),
    ],
)
def test_reserved(name: str, expected: bool) -> None:
    assert reserved(name) is expected


# -- effective_part_size -------------------------------------------------------------------
S3 = FileCapabilities(scheme="s3", filesystem=False, multipart=True)


def test_part_size_raised_to_the_store_minimum() -> None:
    assert effective_part_size(12 * MIB, 1 * MIB, S3) == 5 * MIB
    assert effective_part_size(12 * MIB, 0, S3) == 5 * MIB
    assert effective_part_size(0, 1, S3) == 5 * MIB
    big_min = FileCapabilities(scheme="s3", filesystem=False, min_part_size=8 * MIB)
    assert effective_part_size(12 * MIB, 5 * MIB, big_min) == 8 * MIB


def test_part_size_kept_when_it_fits() -> None:
    assert effective_part_size(12 * MIB, 5 * MIB, S3) == 5 * MIB
    assert effective_part_size(12 * MIB, 7 * MIB, S3) == 7 * MIB


def test_part_size_doubles_beyond_max_parts() -> None:
    three = FileCapabilities(scheme="s3", filesystem=False, max_parts=3)
    assert effective_part_size(15 * MIB, 5 * MIB, three) == 5 * MIB  # exactly 3 parts
    assert effective_part_size(15 * MIB + 1, 5 * MIB, three) == 10 * MIB
    assert effective_part_size(100 * MIB, 5 * MIB, three) == 40 * MIB  # 5→10→20→40
    # AWS: 100 GiB in 5 MiB parts would be 20480 parts; 20 MiB parts make 5120
    assert effective_part_size(100 * 1024 * MIB, 5 * MIB, S3) == 20 * MIB
    assert effective_part_size(10_000 * 5 * MIB, 5 * MIB, S3) == 5 * MIB
    assert effective_part_size(10_000 * 5 * MIB + 1, 5 * MIB, S3) == 10 * MIB


# -- HashingReader -------------------------------------------------------------------------
def test_hashing_reader_whole_content_hashes() -> None:
    reader = HashingReader(io.BytesIO(DATA))
    assert read_irregularly(reader) == DATA
    assert reader.bytes_read == len(DATA)
    assert reader.md5 == md5(DATA).hexdigest()
    assert reader.sha256 == hashlib.sha256(DATA).hexdigest()
    assert reader.part_digests == []


def test_hashing_reader_read_all_and_readinto() -> None:
    reader = HashingReader(io.BytesIO(DATA), part_size=250_000)
    assert reader.read() == DATA
    assert reader.read() == b""
    assert reader.md5 == md5(DATA).hexdigest()

    reader = HashingReader(io.BytesIO(DATA))
    buf = bytearray(70_001)
    out = bytearray()
    while n := reader.readinto(buf):
        out += buf[:n]
    assert out == DATA and reader.sha256 == hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize("part_size", [1, 1000, 65_536, 333_333, 500_000, 1_000_003, 2 * MIB])
def test_hashing_reader_part_digests_across_boundaries(part_size: int) -> None:
    data = DATA[:5000] if part_size == 1 else DATA  # one digest per byte: keep it small
    reader = HashingReader(io.BytesIO(data), part_size=part_size)
    assert read_irregularly(reader) == data
    full = [data[i : i + part_size] for i in range(0, len(data) - part_size + 1, part_size)]
    assert reader.part_digests == [md5(p).digest() for p in full]  # complete parts only
    assert reader.multipart_etag() == s3_etag(data, part_size)
    # asking twice does not change anything (the open part is not closed by asking)
    assert reader.multipart_etag() == s3_etag(data, part_size)


def test_multipart_etag_of_exact_multiple_has_no_empty_part() -> None:
    data = DATA[:900_000]
    reader = HashingReader(io.BytesIO(data), part_size=300_000)
    read_irregularly(reader)
    assert len(reader.part_digests) == 3
    assert reader.multipart_etag() == s3_etag(data, 300_000)
    assert reader.multipart_etag().endswith("-3")


def test_multipart_etag_known_value() -> None:
    data = b"a" * 10 + b"b" * 10 + b"c" * 3
    parts = [b"a" * 10, b"b" * 10, b"c" * 3]
    digests = [hashlib.md5(p, usedforsecurity=False).digest() for p in parts]
    want = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest() + "-3"
    assert multipart_etag(digests) == want
    reader = HashingReader(io.BytesIO(data), part_size=10)
    reader.read(4)
    reader.read(13)  # crosses the first boundary
    reader.read()
    assert reader.multipart_etag() == want
    # and one fixed value, in case hashlib and this code ever agree on a mistake
    assert multipart_etag([hashlib.md5(b"", usedforsecurity=False).digest()]) == (
        "59adb24ef3cdbe0297f05b395827453f-1"
    )


def test_expected_etag_follows_the_put_result() -> None:
    reader = HashingReader(io.BytesIO(DATA), part_size=300_000)
    reader.read()
    assert expected_etag(reader, PutResult(size=len(DATA))) == md5(DATA).hexdigest()
    multi = PutResult(size=len(DATA), parts=4, part_size=300_000)
    assert expected_etag(reader, multi) == s3_etag(DATA, 300_000)


def test_hashing_reader_close_closes_the_stream() -> None:
    stream = io.BytesIO(b"x")
    HashingReader(stream).close()
    assert stream.closed


# -- options -------------------------------------------------------------------------------
def test_option_returns_value_or_default() -> None:
    opts = {"port": 2222, "key": "id_ed25519", "verify": False, "nothing": None}
    assert option(opts, "port", int, 22, "nas") == 2222
    assert option(opts, "key", str, None, "nas") == "id_ed25519"
    assert option(opts, "verify", bool, True, "nas") is False
    assert option(opts, "missing", int, 22, "nas") == 22
    assert option(opts, "missing", str, None, "nas") is None
    assert option(opts, "nothing", int, 5, "nas") is None


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("22", int, "must be a int"),
        (True, int, "must be a number"),
        (22, str, "must be a str"),
        ("yes", bool, "must be a bool"),
    ],
)
def test_option_of_the_wrong_type_is_a_plan_error(value: object, kind: type, message: str) -> None:
    with pytest.raises(PlanError) as info:
        option({"port": value}, "port", kind, None, "nas")
    assert str(info.value) == f"connections.nas.options.port: {message}"


def test_check_options() -> None:
    check_options({}, set(), "nas")
    check_options({"port": 1}, {"port", "key"}, "nas")
    with pytest.raises(PlanError) as info:
        check_options({"port": 1, "zeta": 1, "alpha": 2}, {"port", "key"}, "nas")
    assert str(info.value) == (
        "connections.nas.options: unknown option 'alpha' (allowed: key, port)"
    )
    with pytest.raises(PlanError, match=r"unknown option 'x' \(allowed: none\)$"):
        check_options({"x": 1}, set(), "nas")
