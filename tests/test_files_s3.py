"""``s3://`` connector: the file conformance suite on the SeaweedFS test server, plus what
only an object store has (credentials, buckets, multipart, markers, server-side copies,
stale uploads, provider data, options).

Setup and checks go through boto3, an independent client: what the connector wrote is
checked as another S3 client sees it.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import http.server
import io
import random
import secrets
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from connectors.files import s3 as s3mod
from connectors.files.base import MIB, HashingReader, effective_part_size
from connectors.files.local import LocalEndpoint
from connectors.files.s3 import S3Endpoint
from connectors.files.s3_providers import PROVIDERS
from migrate.errors import ConnectorError, MissingDriverError, PlanError, TransientError
from tests import file_conformance as conformance
from tests.file_conformance import (
    FileConformance,
    IterStream,
    SourceFailed,
    bytes_chunks,
    failing,
    listing,
    one_line_naming,
    pattern_chunks,
    put_bytes,
    read_bytes,
)


# -- fixtures -----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_admin(s3_server: dict[str, str]) -> Any:
    """A plain boto3 client on the test server (setup and independent checks)."""
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=s3_server["endpoint"],
        aws_access_key_id=s3_server["access_key"],
        aws_secret_access_key=s3_server["secret_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def _empty_bucket(admin: Any, bucket: str) -> None:
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            admin.delete_object(Bucket=bucket, Key=item["Key"])
    for upload in admin.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        admin.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def _new_bucket(admin: Any) -> Iterator[str]:
    bucket = f"mt-{secrets.token_hex(6)}"
    admin.create_bucket(Bucket=bucket)
    try:
        yield bucket
    finally:
        _empty_bucket(admin, bucket)
        admin.delete_bucket(Bucket=bucket)


@pytest.fixture
def bucket(s3_admin: Any) -> Iterator[str]:
    yield from _new_bucket(s3_admin)


@pytest.fixture
def bucket2(s3_admin: Any) -> Iterator[str]:
    yield from _new_bucket(s3_admin)


def make(s3_server: dict[str, str], url: str, name: str = "obs", **options: Any) -> S3Endpoint:
    opts: dict[str, Any] = {
        "endpoint": s3_server["endpoint"],
        "provider": "seaweedfs",
        "access_key": s3_server["access_key"],
        "secret_key": s3_server["secret_key"],
    }
    opts.update(options)
    opts = {k: v for k, v in opts.items() if v is not None}
    return S3Endpoint(name, url, opts, base_dir=Path("/nonexistent"))


def keys(admin: Any, bucket: str) -> dict[str, int]:
    out = {}
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            out[item["Key"]] = item["Size"]
    return out


def uploads(admin: Any, bucket: str) -> list[str]:
    return [u["Key"] for u in admin.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the conformance suite ------------------------------------------------------------------
class TestS3Conformance(FileConformance):
    @pytest.fixture
    def local_dir(self) -> None:
        return None  # an object store: nothing to plant

    @pytest.fixture
    def endpoint(self, s3_server: dict[str, str], bucket: str) -> Iterator[S3Endpoint]:
        self.secrets = (s3_server["secret_key"],)
        ep = make(s3_server, f"s3://{bucket}/conf/root dir %", name="conf", checksum="sha256")
        yield ep
        ep.close()

    def test_special_names_round_trip(self, endpoint: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """SeaweedFS (the test server) itself stores ``a\\b`` as ``a/b``, whatever the
        client (boto3 sees the same): that one name is left out here, and
        :func:`test_backslash_names_on_seaweedfs` pins the server's behaviour."""
        names = [n for n in conformance.SPECIAL_NAMES if "\\" not in n]
        assert len(names) == len(conformance.SPECIAL_NAMES) - 1
        monkeypatch.setattr(conformance, "SPECIAL_NAMES", names)
        super().test_special_names_round_trip(endpoint)


def test_backslash_names_on_seaweedfs(
    s3_server: dict[str, str], bucket: str, s3_admin: Any
) -> None:
    """The connector sends ``\\`` as ``%5C``; SeaweedFS turns it into a ``/``. When this
    test fails, the server keeps backslashes: drop the exclusion above."""
    ep = make(s3_server, f"s3://{bucket}")
    put_bytes(ep, "a\\b.txt", b"x")
    assert set(keys(s3_admin, bucket)) == {"a/b.txt"}
    s3_admin.put_object(Bucket=bucket, Key="c\\d.txt", Body=b"y")
    assert set(keys(s3_admin, bucket)) == {"a/b.txt", "c/d.txt"}


# -- credentials, buckets, reachability -----------------------------------------------------
def test_wrong_secret_is_refused_with_one_clear_line(
    s3_server: dict[str, str], bucket: str
) -> None:
    wrong = "wrong-" + secrets.token_hex(8)
    ep = make(s3_server, f"s3://{bucket}/p", name="cloud", secret_key=wrong)
    for action in (lambda: list(ep.list()), lambda: put_bytes(ep, "f.txt", b"f")):
        with pytest.raises(ConnectorError) as info:
            action()
        assert not isinstance(info.value, TransientError)  # a retry cannot help
        one_line_naming(
            info.value, "cloud", bucket, "access denied: check the access key and secret"
        )
        assert wrong not in str(info.value)
        assert s3_server["secret_key"] not in str(info.value)
    with pytest.raises(ConnectorError, match=r"cloud: .*s3://.*/p/f\.txt.*access denied"):
        put_bytes(ep, "f.txt", b"f")


def test_unknown_access_key_is_refused(s3_server: dict[str, str], bucket: str) -> None:
    ep = make(s3_server, f"s3://{bucket}", name="cloud", access_key="NOSUCHKEY")
    with pytest.raises(ConnectorError, match="access denied: check the access key and secret"):
        ep.stat("x")


def test_missing_bucket(s3_server: dict[str, str], s3_admin: Any) -> None:
    """(No put here: SeaweedFS creates a missing bucket on the first PUT into it.)"""
    missing = f"mt-missing-{secrets.token_hex(4)}"
    ep = make(s3_server, f"s3://{missing}/p", name="cloud")
    with pytest.raises(ConnectorError) as info:
        list(ep.list())
    one_line_naming(info.value, "cloud", f"bucket '{missing}' does not exist on http://127.0.0.1")
    assert not isinstance(info.value, TransientError)
    with pytest.raises(ConnectorError) as info:
        ep.open_read("f.txt").close()
    one_line_naming(info.value, "cloud", f"s3://{missing}/p/f.txt", "does not exist")
    with pytest.raises(ConnectorError, match="does not exist"):
        ep.abort_stale_uploads()
    assert missing not in [b["Name"] for b in s3_admin.list_buckets()["Buckets"]]


def test_unreachable_endpoint_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S3Endpoint, "_backoff", staticmethod(lambda attempt: None))
    port = free_port()  # nothing listens there
    ep = S3Endpoint(
        "cloud",
        "s3://bucket/p",
        {"endpoint": f"http://127.0.0.1:{port}", "access_key": "a", "secret_key": "sssecret"},
        base_dir=Path("."),
    )
    with pytest.raises(TransientError) as info:
        list(ep.list())
    one_line_naming(info.value, "cloud", f"127.0.0.1:{port}", "unreachable")
    assert "sssecret" not in str(info.value)


class _Canned(http.server.BaseHTTPRequestHandler):
    """Answers every request with a canned S3 error (a fake store for retry tests)."""

    status = 503
    code = "SlowDown"
    hits = 0

    def _answer(self) -> None:
        type(self).hits += 1
        body = f"<Error><Code>{self.code}</Code><Message>Reduce your rate</Message></Error>"
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [(503, "SlowDown", True), (500, "InternalError", True), (400, "InvalidArgument", False)],
)
def test_throttling_and_5xx_are_retried_then_transient(
    monkeypatch: pytest.MonkeyPatch, status: int, code: str, transient: bool
) -> None:
    monkeypatch.setattr(S3Endpoint, "_backoff", staticmethod(lambda attempt: None))
    handler = type("H", (_Canned,), {"status": status, "code": code, "hits": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ep = S3Endpoint(
            "cloud",
            "s3://bucket/p",
            {
                "endpoint": f"http://127.0.0.1:{server.server_port}",
                "access_key": "a",
                "secret_key": "not-in-messages",
            },
            base_dir=Path("."),
        )
        with pytest.raises(ConnectorError) as info:
            put_bytes(ep, "k.txt", b"data")
        assert isinstance(info.value, TransientError) is transient
        one_line_naming(info.value, "cloud", "s3://bucket/p/k.txt", code)
        assert handler.hits == (s3mod.ATTEMPTS if transient else 1)
    finally:
        server.shutdown()
        server.server_close()


def test_missing_botocore_names_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = S3Endpoint(
        "cloud",
        "s3://bucket",
        {"access_key": "a", "secret_key": "not-in-messages"},
        base_dir=Path("."),
    )  # constructing needs no driver
    monkeypatch.setitem(sys.modules, "botocore.session", None)
    with pytest.raises(MissingDriverError, match=r"pip install 'migrate\[s3\]'"):
        ep.stat("x")


def test_credentials_from_the_environment(
    s3_server: dict[str, str], bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server["access_key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server["secret_key"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    ep = make(s3_server, f"s3://{bucket}", access_key=None, secret_key=None)
    put_bytes(ep, "env.txt", b"from env")
    assert read_bytes(ep, "env.txt") == b"from env"


# -- the object-store specifics ---------------------------------------------------------------
def test_put_list_stat_get_delete_as_another_client_sees_them(
    s3_server: dict[str, str], bucket: str, s3_admin: Any
) -> None:
    ep = make(s3_server, f"s3://{bucket}/base/dir")
    data = random.Random(1).randbytes(100_000)
    result = put_bytes(ep, "a/b.bin", data)
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert result.etag == md5 and result.parts == 0 and result.size == len(data)
    assert keys(s3_admin, bucket) == {"base/dir/a/b.bin": len(data)}
    head = s3_admin.head_object(Bucket=bucket, Key="base/dir/a/b.bin")
    assert head["ETag"].strip('"') == md5
    info = ep.stat("a/b.bin")
    assert info is not None and info.size == len(data) and info.etag == md5
    assert info.mtime_ns == int(head["LastModified"].timestamp()) * 1_000_000_000
    assert [(i.path, i.size, i.etag) for i in ep.list()] == [("a/b.bin", len(data), md5)]
    assert read_bytes(ep, "a/b.bin") == data
    # objects beside the prefix are not the endpoint's
    s3_admin.put_object(Bucket=bucket, Key="base/dirty.txt", Body=b"x")
    s3_admin.put_object(Bucket=bucket, Key="base/dir", Body=b"x")
    assert set(listing(ep)) == {"a/b.bin"}
    ep.delete("a/b.bin")
    assert keys(s3_admin, bucket) == {"base/dirty.txt": 1, "base/dir": 1}


def test_names_reach_the_store_unchanged(
    s3_server: dict[str, str], bucket: str, s3_admin: Any
) -> None:
    ep = make(s3_server, f"s3://{bucket}/中文 前缀")
    names = ["中文/文件 名.txt", "sp ace/a+b%2B%.txt", "hash/#1?x=y&z.txt", "tab\tand\x01ctl"]
    for name in names:
        put_bytes(ep, name, name.encode())
    assert set(keys(s3_admin, bucket)) == {f"中文 前缀/{n}" for n in names}
    assert set(listing(ep)) == set(names)
    for name in names:
        got = s3_admin.get_object(Bucket=bucket, Key=f"中文 前缀/{name}")["Body"].read()
        assert got == name.encode()


def test_multipart_etag_matches_hashing_reader(
    s3_server: dict[str, str], bucket: str, s3_admin: Any
) -> None:
    ep = make(s3_server, f"s3://{bucket}/mp")
    data = random.Random(2).randbytes(12 * MIB)
    part = effective_part_size(len(data), 5 * MIB, ep.capabilities)
    reader = HashingReader(IterStream(bytes_chunks(data)), part_size=part)
    result = ep.put("big.bin", reader, len(data), part_size=5 * MIB, multipart_threshold=8 * MIB)
    assert (result.parts, result.part_size, result.size) == (3, 5 * MIB, len(data))
    assert result.etag == reader.multipart_etag()
    assert s3_admin.head_object(Bucket=bucket, Key="mp/big.bin")["ETag"].strip('"') == result.etag
    assert ep.stat("big.bin").etag == result.etag
    assert read_bytes(ep, "big.bin") == data
    assert uploads(s3_admin, bucket) == []


@pytest.mark.parametrize("error", [SourceFailed, KeyboardInterrupt])
def test_upload_failing_midway_leaves_nothing(
    s3_server: dict[str, str], bucket: str, s3_admin: Any, error: type[BaseException]
) -> None:
    ep = make(s3_server, f"s3://{bucket}/fail")
    chunks = failing(pattern_chunks(20 * MIB), after=2 * 5 * MIB + 1000)  # after 2 parts

    def raising() -> Iterator[memoryview]:
        try:
            yield from chunks
        except SourceFailed as exc:
            raise error("source broke") from exc

    stream = IterStream(raising())
    with pytest.raises(error):
        ep.put("x.bin", stream, 20 * MIB, part_size=5 * MIB, multipart_threshold=8 * MIB)
    assert stream.bytes_read == 2 * 5 * MIB  # two parts went up before the failure
    assert keys(s3_admin, bucket) == {}
    assert uploads(s3_admin, bucket) == []
    assert ep.stat("x.bin") is None


def test_single_put_refuses_a_longer_stream(s3_server: dict[str, str], bucket: str) -> None:
    ep = make(s3_server, f"s3://{bucket}")
    with pytest.raises(ConnectorError, match="more than the 3 bytes announced"):
        ep.put("f", io.BytesIO(b"abcd"), 3, part_size=5 * MIB, multipart_threshold=8 * MIB)
    assert ep.stat("f") is None


def test_sha256_checksum_is_kept_and_reported(
    s3_server: dict[str, str], bucket: str, s3_admin: Any
) -> None:
    data = b"checksummed content"
    sha = hashlib.sha256(data).hexdigest()
    ep = make(s3_server, f"s3://{bucket}", checksum="sha256")
    result = put_bytes(ep, "c.txt", data)
    assert result.sha256 == sha
    assert ep.stat("c.txt").sha256 == sha
    head = s3_admin.head_object(Bucket=bucket, Key="c.txt", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == __import__("base64").b64encode(bytes.fromhex(sha)).decode()
    plain = make(s3_server, f"s3://{bucket}", checksum="none")
    assert put_bytes(plain, "p.txt", data).sha256 is None
    assert plain.stat("c.txt").sha256 is None  # not asked for


def test_storage_class_is_sent(s3_server: dict[str, str], bucket: str, s3_admin: Any) -> None:
    ep = make(s3_server, f"s3://{bucket}", storage_class="STANDARD_IA")
    put_bytes(ep, "cold.txt", b"c")
    put_bytes(ep, "big.bin", random.Random(3).randbytes(9 * MIB))
    for key in ("cold.txt", "big.bin"):
        assert s3_admin.head_object(Bucket=bucket, Key=key).get("StorageClass") == "STANDARD_IA"


def test_directory_markers(s3_server: dict[str, str], bucket: str, s3_admin: Any) -> None:
    ep = make(s3_server, f"s3://{bucket}/m")
    ep.make_dir("empty")
    ep.make_dir("full")
    put_bytes(ep, "full/f.txt", b"f")
    s3_admin.put_object(Bucket=bucket, Key="m/", Body=b"")  # the prefix's own marker
    assert keys(s3_admin, bucket) == {"m/": 0, "m/empty/": 0, "m/full/": 0, "m/full/f.txt": 1}
    entries = listing(ep)
    assert {p for p, i in entries.items() if i.is_dir} == {"empty"}
    assert {p for p, i in entries.items() if not i.is_dir} == {"full/f.txt"}
    info = ep.stat("empty")
    assert info is not None and info.is_dir and info.size == 0
    ep.delete("empty")
    assert "m/empty/" not in keys(s3_admin, bucket)


def test_server_side_copy_between_buckets(
    s3_server: dict[str, str], bucket: str, bucket2: str, s3_admin: Any
) -> None:
    src = make(s3_server, f"s3://{bucket}/src", name="src")
    dst = make(s3_server, f"s3://{bucket2}/dst", name="dst")
    data = random.Random(4).randbytes(300_000)
    put = put_bytes(src, "d/f 中.bin", data)
    assert dst.can_copy_from(src)
    result = dst.copy_from(src, "d/f 中.bin", len(data), part_size=8 * MIB)
    assert result.etag == put.etag and result.parts == 0 and result.size == len(data)
    assert keys(s3_admin, bucket2) == {"dst/d/f 中.bin": len(data)}
    assert read_bytes(dst, "d/f 中.bin") == data
    # a large object goes through UploadPartCopy (the single-request limit made small)
    big = random.Random(5).randbytes(12 * MIB)
    put_bytes(src, "big.bin", big)
    dst.provider = dataclasses.replace(dst.provider, max_single_put=5 * MIB)
    result = dst.copy_from(src, "big.bin", len(big), part_size=5 * MIB)
    assert (result.parts, result.part_size) == (3, 5 * MIB)
    assert read_bytes(dst, "big.bin") == big
    assert uploads(s3_admin, bucket2) == []
    with pytest.raises(ConnectorError, match=r"dst: .*s3://.*dst/missing"):
        dst.copy_from(src, "missing", 10, part_size=8 * MIB)


def test_can_copy_from_needs_same_endpoint_and_credentials(
    s3_server: dict[str, str], bucket: str, tmp_path: Path
) -> None:
    ep = make(s3_server, f"s3://{bucket}/a")
    assert ep.can_copy_from(make(s3_server, "s3://other-bucket/b"))
    assert not ep.can_copy_from(make(s3_server, "s3://other-bucket/b", secret_key="x"))
    assert not ep.can_copy_from(make(s3_server, "s3://other-bucket/b", access_key="y"))
    assert not ep.can_copy_from(
        make(s3_server, "s3://other-bucket/b", endpoint="http://127.0.0.2:9")
    )
    assert not ep.can_copy_from(LocalEndpoint("l", tmp_path.as_uri(), {}, base_dir=tmp_path))


def test_abort_stale_uploads_under_the_prefix_only(
    s3_server: dict[str, str], bucket: str, s3_admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("pre/a.bin", "pre/sub/b 中.bin", "other/c.bin"):
        s3_admin.create_multipart_upload(Bucket=bucket, Key=key)
    ep = make(s3_server, f"s3://{bucket}/pre")
    assert ep.abort_stale_uploads() == 0  # a day younger than STALE_UPLOAD_AGE
    assert len(uploads(s3_admin, bucket)) == 3
    # as if a day had passed (the store's Date header has whole seconds: a margin)
    monkeypatch.setattr(s3mod, "STALE_UPLOAD_AGE", -5)
    assert ep.abort_stale_uploads() == 2
    assert uploads(s3_admin, bucket) == ["other/c.bin"]
    assert ep.abort_stale_uploads() == 0


def test_abort_stale_uploads_spares_running_ones(
    s3_server: dict[str, str], bucket: str, s3_admin: Any
) -> None:
    ep = make(s3_server, f"s3://{bucket}")
    counts: list[int] = []
    stream = IterStream(
        pattern_chunks(12 * MIB),
        trigger=7 * MIB,  # the first part is uploaded: the upload exists
        on_trigger=lambda: counts.append(ep.abort_stale_uploads()),
    )
    result = ep.put("run.bin", stream, 12 * MIB, part_size=5 * MIB, multipart_threshold=8 * MIB)
    assert counts == [0] and result.parts == 3
    assert keys(s3_admin, bucket) == {"run.bin": 12 * MIB}


def test_describe_has_no_secret(s3_server: dict[str, str]) -> None:
    ep = make(s3_server, "s3://bkt/some/prefix", session_token="tok-SECRET")
    text = ep.describe()
    assert "bkt" in text and "some/prefix" in text and s3_server["endpoint"] in text
    assert s3_server["secret_key"] not in text and "tok-SECRET" not in text


def test_signer_matches_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    when = datetime.datetime(2024, 6, 1, 12, 30, 45)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: when)
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok")
    body = b"some body"
    key = "dir/中 文 a+b%.txt"
    path = "/bucket/" + s3mod._uri_encode(key, "-_.~/")
    query = s3mod.canonical_query({"partNumber": "3", "uploadId": "a/b=c+d"})
    ours = s3mod._Signer(creds, "eu-west-1").sign(
        "PUT",
        path,
        query,
        {
            "host": "s3.example.com:9000",
            "content-length": str(len(body)),
            "x-amz-storage-class": "STANDARD",
        },
        hashlib.sha256(body).hexdigest(),
        now=when.replace(tzinfo=datetime.UTC).timestamp(),
    )
    request = AWSRequest(
        method="PUT",
        url=f"http://s3.example.com:9000{path}?{query}",
        data=body,
        headers={"content-length": str(len(body)), "x-amz-storage-class": "STANDARD"},
    )
    botocore.auth.S3SigV4Auth(creds, "s3", "eu-west-1").add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-security-token"] == "tok"


# -- provider data and options ------------------------------------------------------------
def test_provider_data_is_sane() -> None:
    assert set(PROVIDERS) == {"aws", "obs", "oss", "minio", "seaweedfs", "ceph", "other"}
    for name, p in PROVIDERS.items():
        assert p.addressing in ("path", "virtual"), name
        assert p.max_parts == 10_000, name
        assert 64 * 1024 <= p.min_part_size <= 5 * MIB, name
        assert p.max_single_put == 5 << 30 and p.max_part_size == 5 << 30, name
        if p.storage_classes is not None:
            assert p.storage_classes[0].upper() == "STANDARD", name
            assert len(set(p.storage_classes)) == len(p.storage_classes), name
    assert PROVIDERS["aws"].storage_classes == (
        "STANDARD",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER_IR",
        "GLACIER",
        "DEEP_ARCHIVE",
    )
    assert PROVIDERS["obs"].storage_classes == ("STANDARD", "WARM", "COLD", "DEEP_ARCHIVE")
    assert PROVIDERS["oss"].storage_classes == (
        "Standard",
        "IA",
        "Archive",
        "ColdArchive",
        "DeepColdArchive",
    )
    assert PROVIDERS["oss"].min_part_size == 100 * 1024
    assert PROVIDERS["oss"].addressing == "virtual" and PROVIDERS["minio"].addressing == "path"
    assert PROVIDERS["aws"].sha256_checksums and not PROVIDERS["obs"].sha256_checksums


def test_capabilities_follow_provider_and_options() -> None:
    def caps(**options: Any) -> Any:
        return S3Endpoint("c", "s3://bkt", options, base_dir=Path(".")).capabilities

    plain = caps()
    assert (plain.scheme, plain.filesystem, plain.multipart, plain.server_copy) == (
        "s3",
        False,
        True,
        True,
    )
    assert plain.free_hashes == ("etag",) and plain.min_part_size == 5 * MIB
    assert caps(provider="oss", endpoint="https://oss-cn-hangzhou.aliyuncs.com").min_part_size == (
        100 * 1024
    )
    # sha256 is checked on put and by stat, but a listing never carries it
    assert caps(checksum="sha256").free_hashes == ("etag",)


def test_defaults_and_addressing() -> None:
    aws = S3Endpoint(
        "c",
        "s3://bkt/p/",
        {"region": "eu-west-1", "access_key": "a", "secret_key": "not-in-messages"},
        base_dir=Path("."),
    )
    assert (aws.provider_name, aws.addressing, aws.prefix) == ("aws", "virtual", "p/")
    aws._setup()
    assert aws._host_header == "bkt.s3.eu-west-1.amazonaws.com" and aws._bucket_path == ""
    other = S3Endpoint(
        "c",
        "s3://bkt",
        {"endpoint": "http://127.0.0.1:9000", "access_key": "a", "secret_key": "not-in-messages"},
        base_dir=Path("."),
    )
    assert (other.provider_name, other.addressing) == ("other", "path")
    auto = S3Endpoint(
        "c",
        "s3://bkt",
        {
            "endpoint": "https://store.example.com",
            "addressing": "auto",
            "access_key": "a",
            "secret_key": "b",
        },
        base_dir=Path("."),
    )
    auto._setup()
    assert auto._host_header == "bkt.store.example.com"


@pytest.mark.parametrize(
    ("options", "url", "where"),
    [
        ({"bogus": 1}, "s3://bkt", "options: unknown option 'bogus'"),
        ({"provider": "azure"}, "s3://bkt", "options.provider: must be one of aws"),
        ({"addressing": "dns"}, "s3://bkt", "options.addressing: must be path, virtual or auto"),
        ({"checksum": "md5"}, "s3://bkt", "options.checksum: must be sha256 or none"),
        ({"storage_class": "COLD"}, "s3://bkt", "options.storage_class: Amazon S3 knows"),
        (
            {"provider": "oss", "storage_class": "STANDARD"},
            "s3://bkt",
            "options.storage_class: Aliyun OSS knows Standard",
        ),
        ({"verify_tls": "yes"}, "s3://bkt", "options.verify_tls: must be a true/false"),
        ({"region": 5}, "s3://bkt", "options.region: must be a string"),
        ({"region": " "}, "s3://bkt", "options.region: must not be empty"),
        ({"access_key": "a"}, "s3://bkt", "options.secret_key: access_key and secret_key go"),
        ({"session_token": "t"}, "s3://bkt", "options.session_token: needs access_key"),
        ({"endpoint": "ftp://host"}, "s3://bkt", "options.endpoint: expected http(s)://"),
        ({"endpoint": "http://u:p@host"}, "s3://bkt", "options.endpoint: give only scheme"),
        ({"endpoint": "http://host/path"}, "s3://bkt", "options.endpoint: give only scheme"),
        ({}, "s3:///prefix", "url: expected s3://BUCKET"),
        ({}, "s3://a/p?x=1", "url: s3 URLs hold only the bucket"),
        ({}, "s3://bad_bucket!/p", "url: 'bad_bucket!' is not a valid bucket name"),
    ],
)
def test_bad_options_are_plan_errors(options: dict[str, Any], url: str, where: str) -> None:
    with pytest.raises(PlanError) as info:
        S3Endpoint("cloud", url, options, base_dir=Path("."))
    assert str(info.value).startswith("connections.cloud."), str(info.value)
    assert where in str(info.value), str(info.value)


def test_good_options_are_accepted(tmp_path: Path) -> None:
    ceph = S3Endpoint(
        "c",
        "s3://bkt",
        {"provider": "ceph", "endpoint": "http://h:7480", "storage_class": "FAST_SSD"},
        base_dir=tmp_path,
    )
    assert ceph.storage_class == "FAST_SSD"  # administrators define Ceph's classes
    other = S3Endpoint(
        "c", "s3://bkt", {"endpoint": "h:9000", "storage_class": "ANY"}, base_dir=tmp_path
    )
    assert other.storage_class == "ANY" and other._endpoint_url == "https://h:9000"
    tls = S3Endpoint(
        "c", "s3://bkt", {"verify_tls": False, "ca_bundle": "ca.pem"}, base_dir=tmp_path
    )
    assert tls.verify_tls is False and tls.ca_bundle == str(tmp_path / "ca.pem")


def test_registry_finds_the_s3_connector() -> None:
    from migrate import registry

    found = [v for k, v in vars(registry).items() if isinstance(v, dict) and "s3" in v]
    assert any("connectors.files.s3:S3Endpoint" in str(v["s3"]) for v in found)


def test_content_type_from_the_extension(
    s3_server: dict[str, str], bucket: str, s3_admin: Any
) -> None:
    ep = make(s3_server, f"s3://{bucket}")
    put_bytes(ep, "page.html", b"<p>")
    put_bytes(ep, "big.json", b"[" + b"0," * (5 * MIB) + b"0]")  # multipart
    put_bytes(ep, "blob.unknownext", b"?")
    types = {
        k: s3_admin.head_object(Bucket=bucket, Key=k)["ContentType"] for k in keys(s3_admin, bucket)
    }
    assert types == {
        "page.html": "text/html",
        "big.json": "application/json",
        "blob.unknownext": "application/octet-stream",
    }


def test_abort_stale_uploads_spares_other_processes_uploads(
    s3_server: dict[str, str], bucket: str, s3_admin: Any
) -> None:
    """Another plan writing below this prefix (another endpoint, another process) and
    another tool's upload are young: a step starting on the bucket leaves them alone."""
    other = make(s3_server, f"s3://{bucket}/hr")
    mine = make(s3_server, f"s3://{bucket}")
    s3_admin.create_multipart_upload(Bucket=bucket, Key="backup-tool/x")
    counts: list[int] = []
    stream = IterStream(
        pattern_chunks(12 * MIB),
        trigger=6 * MIB,
        on_trigger=lambda: counts.append(mine.abort_stale_uploads()),
    )
    result = other.put("f.bin", stream, 12 * MIB, part_size=5 * MIB, multipart_threshold=8 * MIB)
    assert counts == [0] and result.parts == 3
    assert keys(s3_admin, bucket) == {"hr/f.bin": 12 * MIB}
    assert uploads(s3_admin, bucket) == ["backup-tool/x"]


# -- Amazon S3 host names ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bucket", "region", "options", "host", "path"),
    [
        ("bkt", "eu-west-1", {}, "bkt.s3.eu-west-1.amazonaws.com", ""),
        # a dot: *.s3.amazonaws.com does not cover it over https
        ("logs.example.com", "eu-west-1", {}, "s3.eu-west-1.amazonaws.com", "/logs.example.com"),
        # not a DNS name (legacy us-east-1 buckets)
        ("Legacy_Bucket", "us-east-1", {}, "s3.us-east-1.amazonaws.com", "/Legacy_Bucket"),
        ("data", "cn-north-1", {}, "data.s3.cn-north-1.amazonaws.com.cn", ""),
        ("a.b", "cn-northwest-1", {}, "s3.cn-northwest-1.amazonaws.com.cn", "/a.b"),
        # asked for explicitly: kept
        ("logs.example.com", "eu-west-1", {"addressing": "virtual"},
         "logs.example.com.s3.eu-west-1.amazonaws.com", ""),
        ("bkt", "eu-west-1", {"addressing": "path"}, "s3.eu-west-1.amazonaws.com", "/bkt"),
    ],
)  # fmt: skip
def test_aws_host_names(
    bucket: str, region: str, options: dict[str, str], host: str, path: str
) -> None:
    ep = S3Endpoint(
        "aws",
        f"s3://{bucket}/p",
        {"access_key": "AKIA", "secret_key": "s", "region": region, **options},
        base_dir=Path("."),
    )
    ep._setup()
    assert (ep._pool.scheme, ep._host_header, ep._bucket_path) == ("https", host, path)


def test_dotted_bucket_over_http_stays_virtual() -> None:
    ep = S3Endpoint(
        "c",
        "s3://a.b/p",
        {"endpoint": "http://store.example", "provider": "obs", "access_key": "a",
         "secret_key": "b"},
        base_dir=Path("."),
    )  # fmt: skip
    ep._setup()
    assert (ep._host_header, ep._bucket_path) == ("a.b.store.example", "")


# -- lost replies and unreadable ones (a relay in front of the test server) ----------------
class _Relay:
    """An HTTP relay on 127.0.0.1 in front of the test server: as a reverse proxy (the
    endpoint's URL) or as a forwarding proxy (``HTTP_PROXY``, absolute request URLs).
    ``rule(method, path)`` may answer ``"drop_after"`` (forward, then close without a
    reply), or ``(status, body)`` (answer that instead of forwarding), or
    ``("replace", body)`` (forward, then answer 200 with ``body``)."""

    def __init__(self, upstream: str, rule: Any = None, need_auth: str | None = None) -> None:
        import http.client
        from urllib.parse import urlsplit

        up = urlsplit(upstream)
        relay = self
        self.log: list[tuple[str, str]] = []
        self.rule = rule or (lambda method, path: None)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, headers: Any = ()) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def handle_one(self) -> None:
                target = self.path
                if target.startswith("http://"):
                    target = target.split("/", 3)[3] if target.count("/") >= 3 else ""
                    target = "/" + target
                relay.log.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if need_auth is not None and self.headers.get("Proxy-Authorization") != need_auth:
                    self._reply(407, b"proxy authentication required")
                    return
                action = relay.rule(self.command, target)
                if isinstance(action, tuple) and action[0] != "replace":
                    self._reply(action[0], action[1])
                    return
                conn = http.client.HTTPConnection(up.hostname, up.port)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() != "proxy-authorization"
                }
                sent = body if (body or self.command in ("PUT", "POST")) else None
                conn.request(self.command, target, body=sent, headers=headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
                if action == "drop_after":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(action, tuple):
                    self._reply(200, action[1])
                    return
                self._reply(response.status, data, response.getheaders())

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def relay(s3_server: dict[str, str]) -> Iterator[_Relay]:
    r = _Relay(s3_server["endpoint"])
    yield r
    r.close()


def _first(method: str, marker: str, action: Any) -> Any:
    """A rule acting on the first request of ``method`` whose path holds ``marker``."""
    seen: list[int] = []

    def rule(m: str, path: str) -> Any:
        if m == method and marker in path and (marker != "uploads=" or "uploadId" not in path):
            seen.append(1)
            if len(seen) == 1:
                return action
        return None

    return rule


def test_lost_create_upload_reply_leaves_no_orphan(
    s3_server: dict[str, str], bucket: str, s3_admin: Any, relay: _Relay
) -> None:
    relay.rule = _first("POST", "uploads=", "drop_after")  # the store starts an upload
    ep = make(s3_server, f"s3://{bucket}/pre", endpoint=relay.url)
    data = random.Random(5).randbytes(12 * MIB)
    result = put_bytes(ep, "big.bin", data)
    assert result.parts == 3
    assert [m for m, p in relay.log if m == "POST" and "uploadId" not in p] == ["POST"] * 2
    assert keys(s3_admin, bucket) == {"pre/big.bin": len(data)}
    assert uploads(s3_admin, bucket) == []  # the first, unanswered one was aborted


def test_lost_complete_reply_is_checked_by_the_etag(
    s3_server: dict[str, str], bucket: str, s3_admin: Any, relay: _Relay
) -> None:
    """The store completed the upload but its reply was lost; the retry finds no upload
    (as Amazon S3 answers): the object's ETag shows the first request did it."""
    completes: list[int] = []

    def rule(method: str, path: str) -> Any:
        if method == "POST" and "uploadId=" in path:
            completes.append(1)
            if len(completes) == 1:
                return "drop_after"
            body = b"<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>"
            return (404, body)
        return None

    relay.rule = rule
    ep = make(s3_server, f"s3://{bucket}", endpoint=relay.url)
    data = random.Random(6).randbytes(12 * MIB)
    reader = HashingReader(io.BytesIO(data), 5 * MIB)
    result = ep.put("big.bin", reader, len(data), part_size=5 * MIB, multipart_threshold=8 * MIB)
    assert len(completes) == 2
    assert result.etag == reader.multipart_etag()
    assert keys(s3_admin, bucket) == {"big.bin": len(data)}
    assert uploads(s3_admin, bucket) == []


def test_replies_that_are_not_xml_are_transient(
    s3_server: dict[str, str], bucket: str, s3_admin: Any, relay: _Relay
) -> None:
    ep = make(s3_server, f"s3://{bucket}/pre", name="cloud", endpoint=relay.url)
    relay.rule = lambda m, p: (200, b"<html>proxy login</html") if "list-type=2" in p else None
    with pytest.raises(TransientError) as info:
        list(ep.list())
    one_line_naming(info.value, "cloud", bucket, "not S3 XML", "proxy login")
    # a CompleteMultipartUpload answered with nothing: the upload is aborted
    relay.rule = lambda m, p: (200, b"") if m == "POST" and "uploadId=" in p else None
    with pytest.raises(TransientError) as info:
        put_bytes(ep, "big.bin", random.Random(7).randbytes(9 * MIB))
    one_line_naming(info.value, "cloud", f"s3://{bucket}/pre/big.bin", "is empty")
    # a CreateMultipartUpload the store ran but whose reply is garbled: no upload left
    relay.rule = _first("POST", "uploads=", ("replace", b"<Initiate"))
    with pytest.raises(TransientError) as info:
        put_bytes(ep, "big2.bin", random.Random(8).randbytes(9 * MIB))
    one_line_naming(info.value, "cloud", f"s3://{bucket}/pre/big2.bin", "not S3 XML")
    assert keys(s3_admin, bucket) == {} and uploads(s3_admin, bucket) == []
    relay.rule = lambda m, p: (
        (200, b"<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
              b"</ListMultipartUploadsResult>")
        if m == "GET" and "uploads=" in p else None
    )  # fmt: skip
    with pytest.raises(ConnectorError, match=r"^cloud: .*no marker to continue from$"):
        ep.abort_stale_uploads()


def test_truncated_listing_without_a_token_is_an_error(
    s3_server: dict[str, str], bucket: str, relay: _Relay
) -> None:
    page = (
        b'<?xml version="1.0"?><ListBucketResult><IsTruncated>true</IsTruncated>'
        b"<Contents><Key>pre/a</Key><Size>1</Size></Contents></ListBucketResult>"
    )
    relay.rule = lambda m, p: (200, page) if "list-type=2" in p else None
    ep = make(s3_server, f"s3://{bucket}/pre", name="cloud", endpoint=relay.url)
    with pytest.raises(ConnectorError) as info:
        list(ep.list())
    one_line_naming(info.value, "cloud", bucket, "no continuation token")
    assert not isinstance(info.value, TransientError)


# -- proxies from the environment ------------------------------------------------------------
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_http_proxy_from_the_environment(
    s3_server: dict[str, str], bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    _no_proxy_env(monkeypatch)
    password = "pr0xy-" + secrets.token_hex(4)
    auth = "Basic " + base64.b64encode(f"me:{password}".encode()).decode()
    proxy = _Relay(s3_server["endpoint"], need_auth=auth)
    try:
        monkeypatch.setenv(
            "HTTP_PROXY", f"http://me:{password}@127.0.0.1:{proxy.server.server_port}"
        )
        ep = make(s3_server, f"s3://{bucket}/px", name="cloud")
        data = random.Random(9).randbytes(9 * MIB)  # multipart: POSTs through the proxy too
        put_bytes(ep, "a.bin", data)
        assert read_bytes(ep, "a.bin") == data
        assert set(listing(ep)) == {"a.bin"}
        assert {m for m, _ in proxy.log} >= {"PUT", "POST", "GET"}
        assert all(p.startswith(s3_server["endpoint"] + "/") for _, p in proxy.log)
        ep.close()
        # NO_PROXY: straight to the store
        before = len(proxy.log)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        direct = make(s3_server, f"s3://{bucket}/px")
        assert read_bytes(direct, "a.bin") == data
        assert len(proxy.log) == before
        direct.close()
        # a wrong proxy password: refused by the proxy, and not in the message
        monkeypatch.delenv("NO_PROXY")
        monkeypatch.setenv(
            "HTTP_PROXY", f"http://me:wrong-{password}@127.0.0.1:{proxy.server.server_port}"
        )
        bad = make(s3_server, f"s3://{bucket}/px", name="cloud")
        with pytest.raises(ConnectorError) as info:
            bad.stat("a.bin")
        assert password not in str(info.value) and "\n" not in str(info.value)
        bad.close()
    finally:
        proxy.close()


def test_https_proxy_is_used_for_https_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_proxy_env(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    ep = S3Endpoint(
        "aws", "s3://bkt/p", {"access_key": "a", "secret_key": "b", "region": "eu-west-1"},
        base_dir=Path("."),
    )  # fmt: skip
    ep._setup()
    assert ep._pool.proxy is not None and ep._pool.proxy.host == "proxy.internal"
    assert (ep._pool.host, ep._target_prefix) == ("bkt.s3.eu-west-1.amazonaws.com", "")
    monkeypatch.setenv("NO_PROXY", ".amazonaws.com")
    direct = S3Endpoint(
        "aws", "s3://bkt/p", {"access_key": "a", "secret_key": "b", "region": "eu-west-1"},
        base_dir=Path("."),
    )  # fmt: skip
    direct._setup()
    assert direct._pool.proxy is None


def test_root_exists_is_the_bucket(s3_server: dict[str, str], bucket: str) -> None:
    """A prefix is part of the keys, not a folder: a bucket without it still exists."""
    assert make(s3_server, f"s3://{bucket}").root_exists() is True
    assert make(s3_server, f"s3://{bucket}/no/such/prefix").root_exists() is True
    missing = f"mt-missing-{secrets.token_hex(4)}"
    assert make(s3_server, f"s3://{missing}/p").root_exists() is False
    with pytest.raises(ConnectorError) as info:
        make(s3_server, f"s3://{bucket}", secret_key="wrong-secret").root_exists()
    one_line_naming(info.value, "obs", "access denied")
