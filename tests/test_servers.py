"""The server fixtures of conftest.py give fresh, working databases and
working S3, SFTP and NFS servers."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

TEXT = "zażółć 😀"  # a 4-byte character needs utf8mb4 on MariaDB


@pytest.mark.parametrize("fixture", ["mysql_db", "mysql2_db", "pg_db"])
def test_fresh_database_round_trip(request: pytest.FixtureRequest, fixture: str):
    url = sa.make_url(request.getfixturevalue(fixture))
    assert url.database.startswith("mt_")
    engine = sa.create_engine(url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1, :s)"), {"s": TEXT})
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT id, s FROM t")).all() == [(1, TEXT)]
            if url.get_backend_name() == "mysql":
                port = conn.execute(sa.text("SELECT @@port")).scalar()
                assert port == url.port  # mysql_db and mysql2_db: distinct servers
    finally:
        engine.dispose()


def _s3_client(endpoint: str, access_key: str | None, secret_key: str | None, **config):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, **config),
    )


def test_s3_round_trip(s3_server: dict[str, str]):
    s3 = _s3_client(s3_server["endpoint"], s3_server["access_key"], s3_server["secret_key"])
    bucket = f"mt-{secrets.token_hex(6)}"
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key="dir/object.txt", Body=TEXT.encode())
        got = s3.get_object(Bucket=bucket, Key="dir/object.txt")["Body"].read()
        assert got.decode() == TEXT
        listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
        assert [o["Key"] for o in listed] == ["dir/object.txt"]
        assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    finally:
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)


def test_s3_refuses_wrong_or_missing_credentials(s3_server: dict[str, str]):
    import botocore
    from botocore.exceptions import ClientError

    endpoint = s3_server["endpoint"]
    wrong = _s3_client(endpoint, s3_server["access_key"], s3_server["secret_key"] + "x")
    with pytest.raises(ClientError) as exc:
        wrong.list_buckets()
    assert exc.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied")
    unknown = _s3_client(endpoint, "nosuchkey", s3_server["secret_key"])
    with pytest.raises(ClientError) as exc:
        unknown.list_buckets()
    assert exc.value.response["Error"]["Code"] in ("InvalidAccessKeyId", "AccessDenied")
    anonymous = _s3_client(endpoint, None, None, signature_version=botocore.UNSIGNED)
    with pytest.raises(ClientError) as exc:
        anonymous.list_buckets()
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def _sftp_connect(sftp_server: dict[str, str], **auth):
    import paramiko

    url = urlsplit(sftp_server["url"])
    assert url.scheme == "sftp"
    client = paramiko.SSHClient()
    client.load_host_keys(sftp_server["known_hosts"])  # [127.0.0.1]:32222
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        url.hostname,
        port=url.port,
        username=url.username,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
        **auth,
    )
    return client, url.path


def test_sftp_key_round_trip(sftp_server: dict[str, str]):
    client, remote_dir = _sftp_connect(sftp_server, key_filename=sftp_server["key"])
    local_dir = Path(sftp_server["dir"])
    assert remote_dir == str(local_dir)
    name = f"mt_{secrets.token_hex(6)}"
    try:
        with client.open_sftp() as sftp:
            sftp.mkdir(f"{remote_dir}/{name}")
            with sftp.open(f"{remote_dir}/{name}/file.txt", "wb") as f:
                f.write(TEXT.encode())
            with sftp.open(f"{remote_dir}/{name}/file.txt", "rb") as f:
                assert f.read().decode() == TEXT
            assert sftp.listdir(f"{remote_dir}/{name}") == ["file.txt"]
        assert (local_dir / name / "file.txt").read_text() == TEXT
    finally:
        client.close()
        shutil.rmtree(local_dir / name, ignore_errors=True)


def test_sftp_password_login(sftp_server: dict[str, str]):
    import paramiko

    client, remote_dir = _sftp_connect(sftp_server, password=sftp_server["password"])
    try:
        with client.open_sftp() as sftp:
            sftp.listdir(remote_dir)
    finally:
        client.close()
    with pytest.raises(paramiko.AuthenticationException):
        _sftp_connect(sftp_server, password=sftp_server["password"] + "x")


def test_sftp_host_key_is_checked(sftp_server: dict[str, str], tmp_path: Path):
    import paramiko

    (tmp_path / "known_hosts").write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        _sftp_connect(
            {**sftp_server, "known_hosts": str(tmp_path / "known_hosts")},
            key_filename=sftp_server["key"],
        )


@pytest.mark.parametrize("version", ["url", "url_v4"])
def test_nfs_round_trip(nfs_server: dict[str, str], version: str):
    import libnfs

    # libnfs.NFS ignores a failed mount (later calls then crash or hang):
    # mount explicitly first, so that a broken server fails the test.
    ctx = libnfs.nfs_init_context()
    parsed = libnfs.nfs_parse_url_dir(ctx, nfs_server[version])
    try:
        assert parsed is not None, libnfs.nfs_get_error(ctx)
        assert libnfs.nfs_mount(ctx, parsed.server, parsed.path) == 0, libnfs.nfs_get_error(ctx)
    finally:
        if parsed is not None:
            libnfs.nfs_destroy_url(parsed)
        libnfs.nfs_destroy_context(ctx)

    nfs = libnfs.NFS(nfs_server[version])
    local_dir = Path(nfs_server["dir"])
    name = f"mt_{secrets.token_hex(6)}"
    try:
        nfs.mkdir(f"/{name}")
        f = nfs.open(f"/{name}/file.txt", "w")
        f.write(TEXT)
        f.close()
        f = nfs.open(f"/{name}/file.txt", "r")
        assert f.read() == TEXT
        f.close()
        assert "file.txt" in nfs.listdir(f"/{name}")
        local = local_dir / name / "file.txt"
        assert local.read_text() == TEXT
        assert local.stat().st_uid == os.getuid()  # no root squash
    finally:
        shutil.rmtree(local_dir / name, ignore_errors=True)
