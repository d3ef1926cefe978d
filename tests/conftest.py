"""Test-server fixtures for the test suite.

Contract:

* ``mysql_url``, ``mysql2_url``, ``pg_url`` (session): SQLAlchemy URLs of the
  two MariaDB servers (no database) and of PostgreSQL (``postgres`` database),
  from ``MIGRATE_TEST_MYSQL_URL``, ``MIGRATE_TEST_MYSQL2_URL`` and
  ``MIGRATE_TEST_PG_URL``. If one is unset, ``scripts/test-servers start mysql
  mysql2 pg`` runs once per session and the URLs come from
  ``scripts/test-servers env``; the servers it had to start are stopped at
  session end (not under xdist, where another worker may still use them).
* ``s3_server``, ``sftp_server``, ``nfs_server`` (session): the same for the
  S3, SFTP and NFS servers, each started on its own when one of its variables
  is unset (see ``SERVER_VARS``). ``s3_server`` is a dict with ``endpoint``,
  ``access_key``, ``secret_key``; ``sftp_server`` with ``url``
  (``sftp://migrate-sftp@127.0.0.1:32222/<dir>``), ``key`` (private key file),
  ``password``, ``known_hosts`` (file with the server's host key) and ``dir``
  (the local path of the URL's directory, writable by root, owned by the SFTP
  user); ``nfs_server`` with ``url`` (NFSv3 libnfs URL), ``url_v4`` and
  ``dir`` (the local path of the export).
* If the servers cannot be had, the test fails when ``CI`` or
  ``MIGRATE_TEST_REQUIRE_SERVERS`` is set, and is skipped otherwise.
* ``mysql_db``, ``mysql2_db``, ``pg_db`` (function): a new empty database
  ``mt_<random hex>`` (utf8mb4 on MariaDB), yielded as a URL string; it is
  dropped afterwards, killing connections the test left open to it.
* ``mssql_db``, ``oracle_db`` (function): the same on SQL Server (a new database)
  and Oracle (a new user, which is a schema), from ``MIGRATE_TEST_MSSQL_URL``
  (an administrator such as ``sa``) and ``MIGRATE_TEST_ORACLE_URL`` (such as
  ``system``). These servers cannot run on the machines this project is built
  on, so without the variable the test is skipped with that reason, in CI too;
  ``tests/compose.yaml`` starts both for anyone with Docker (see the README).
"""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

SERVERS_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "test-servers"
# Per server of scripts/test-servers: the variables its `env` prints for it.
SERVER_VARS: dict[str, tuple[str, ...]] = {
    "mysql": ("MIGRATE_TEST_MYSQL_URL",),
    "mysql2": ("MIGRATE_TEST_MYSQL2_URL",),
    "pg": ("MIGRATE_TEST_PG_URL",),
    "s3": (
        "MIGRATE_TEST_S3_ENDPOINT",
        "MIGRATE_TEST_S3_ACCESS_KEY",
        "MIGRATE_TEST_S3_SECRET_KEY",
    ),
    "sftp": (
        "MIGRATE_TEST_SFTP_URL",
        "MIGRATE_TEST_SFTP_KEY",
        "MIGRATE_TEST_SFTP_PASSWORD",
        "MIGRATE_TEST_SFTP_KNOWN_HOSTS",
        "MIGRATE_TEST_SFTP_DIR",
    ),
    "nfs": ("MIGRATE_TEST_NFS_URL", "MIGRATE_TEST_NFS4_URL", "MIGRATE_TEST_NFS_DIR"),
}
DB_SERVERS = ("mysql", "mysql2", "pg")
URL_VARS = tuple(var for server in DB_SERVERS for var in SERVER_VARS[server])


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> NoReturn:
    if _flag("CI") or _flag("MIGRATE_TEST_REQUIRE_SERVERS"):
        pytest.fail(f"test servers are required but unavailable: {reason}", pytrace=False)
    pytest.skip(f"test servers unavailable: {reason}")


def _servers(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(SERVERS_SCRIPT), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def _server_env(request: pytest.FixtureRequest, servers: tuple[str, ...]) -> dict[str, str]:
    """SERVER_VARS of ``servers``: from the environment, else (all of them)
    from ``scripts/test-servers env`` after starting them. Call it from a
    session-scoped fixture: the servers it had to start are stopped when that
    fixture is torn down."""
    wanted = [var for server in servers for var in SERVER_VARS[server]]
    if all(os.environ.get(var) for var in wanted):
        return {var: os.environ[var] for var in wanted}
    try:
        not_running = [s for s in servers if _servers("status", s).returncode]
        if not_running and "PYTEST_XDIST_WORKER" not in os.environ:
            # Registered first: a partial start is stopped too.
            request.addfinalizer(lambda: _servers("stop", *not_running))
        start = _servers("start", *servers)
        if start.returncode:
            _unavailable(f"{SERVERS_SCRIPT} start {' '.join(servers)} failed:\n{start.stderr}")
        env = _servers("env").stdout
    except (OSError, subprocess.SubprocessError) as exc:
        _unavailable(f"{SERVERS_SCRIPT}: {exc}")
    found = dict(
        word.split("=", 1)
        for line in env.splitlines()
        for word in shlex.split(line)[1:]  # export NAME=VALUE
    )
    values = {var: os.environ.get(var) or found.get(var, "") for var in wanted}
    missing = [var for var, value in values.items() if not value]
    if missing:
        _unavailable(f"{SERVERS_SCRIPT} env gave no value for {', '.join(missing)}")
    return values


@pytest.fixture(scope="session")
def _server_urls(request: pytest.FixtureRequest) -> dict[str, str]:
    return _server_env(request, DB_SERVERS)


@pytest.fixture(scope="session")
def mysql_url(_server_urls: dict[str, str]) -> str:
    return _server_urls["MIGRATE_TEST_MYSQL_URL"]


@pytest.fixture(scope="session")
def mysql2_url(_server_urls: dict[str, str]) -> str:
    return _server_urls["MIGRATE_TEST_MYSQL2_URL"]


@pytest.fixture(scope="session")
def pg_url(_server_urls: dict[str, str]) -> str:
    return _server_urls["MIGRATE_TEST_PG_URL"]


@pytest.fixture(scope="session")
def s3_server(request: pytest.FixtureRequest) -> dict[str, str]:
    env = _server_env(request, ("s3",))
    return {
        "endpoint": env["MIGRATE_TEST_S3_ENDPOINT"],
        "access_key": env["MIGRATE_TEST_S3_ACCESS_KEY"],
        "secret_key": env["MIGRATE_TEST_S3_SECRET_KEY"],
    }


@pytest.fixture(scope="session")
def sftp_server(request: pytest.FixtureRequest) -> dict[str, str]:
    env = _server_env(request, ("sftp",))
    return {
        "url": env["MIGRATE_TEST_SFTP_URL"],
        "key": env["MIGRATE_TEST_SFTP_KEY"],
        "password": env["MIGRATE_TEST_SFTP_PASSWORD"],
        "known_hosts": env["MIGRATE_TEST_SFTP_KNOWN_HOSTS"],
        "dir": env["MIGRATE_TEST_SFTP_DIR"],
    }


@pytest.fixture(scope="session")
def nfs_server(request: pytest.FixtureRequest) -> dict[str, str]:
    env = _server_env(request, ("nfs",))
    return {
        "url": env["MIGRATE_TEST_NFS_URL"],
        "url_v4": env["MIGRATE_TEST_NFS4_URL"],
        "dir": env["MIGRATE_TEST_NFS_DIR"],
    }


def _fresh_mysql_db(server_url: str) -> Iterator[str]:
    name = f"mt_{secrets.token_hex(6)}"
    admin = sa.create_engine(server_url, poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    url = sa.make_url(server_url).set(database=name)
    url = url.update_query_dict({"charset": "utf8mb4", "local_infile": "1"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # A session left inside a transaction on the database would make
            # DROP DATABASE wait for its metadata lock: kill such sessions.
            leftover = conn.exec_driver_sql(
                "SELECT id FROM information_schema.processlist"
                " WHERE db = %s AND id <> CONNECTION_ID()",
                (name,),
            ).scalars()
            for session_id in leftover.all():
                try:
                    conn.exec_driver_sql(f"KILL {int(session_id)}")
                except sa.exc.DBAPIError:
                    pass  # it ended meanwhile
            conn.exec_driver_sql("SET SESSION lock_wait_timeout = 60")
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()


@pytest.fixture
def mysql_db(mysql_url: str) -> Iterator[str]:
    yield from _fresh_mysql_db(mysql_url)


@pytest.fixture
def mysql2_db(mysql2_url: str) -> Iterator[str]:
    yield from _fresh_mysql_db(mysql2_url)


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[str]:
    yield from fresh_pg_db(pg_url)


def fresh_pg_db(pg_url: str) -> Iterator[str]:
    """A new PostgreSQL database's URL, dropped afterwards (for fixtures of any scope)."""
    name = f"mt_{secrets.token_hex(6)}"
    admin = sa.create_engine(pg_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


LIVE_SKIP = (
    "{var} is not set: {engine} cannot run on this machine; start one with"
    " `docker compose -f tests/compose.yaml up -d` and set {var} (see the README)"
)


def _live_url(var: str, engine: str) -> str:
    url = os.environ.get(var)
    if not url:
        pytest.skip(LIVE_SKIP.format(var=var, engine=engine))
    return url


@pytest.fixture
def mssql_db() -> Iterator[str]:
    """A new SQL Server database (``mt_<hex>``) as a URL; dropped afterwards."""
    server = _live_url("MIGRATE_TEST_MSSQL_URL", "SQL Server")
    name = f"mt_{secrets.token_hex(6)}"
    admin = sa.create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {name} SET SINGLE_USER WITH ROLLBACK IMMEDIATE")
            conn.exec_driver_sql(f"DROP DATABASE {name}")
        admin.dispose()


@pytest.fixture
def oracle_db() -> Iterator[str]:
    """A new Oracle user (a schema, ``MT_<HEX>``) as a URL; dropped afterwards."""
    server = _live_url("MIGRATE_TEST_ORACLE_URL", "Oracle")
    name = f"mt_{secrets.token_hex(6)}"
    password = f"P{secrets.token_hex(8)}"
    admin = sa.create_engine(server, poolclass=NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(
            f'CREATE USER {name} IDENTIFIED BY "{password}" QUOTA UNLIMITED ON USERS'
        )
        conn.exec_driver_sql(
            f"GRANT CREATE SESSION, CREATE TABLE, CREATE SEQUENCE, SELECT ANY DICTIONARY,"
            f" FLASHBACK ANY TABLE TO {name}"
        )
    url = sa.make_url(server).set(username=name, password=password)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            for sid, serial in conn.exec_driver_sql(
                f"SELECT sid, serial# FROM v$session WHERE username = '{name.upper()}'"
            ):
                try:
                    conn.exec_driver_sql(f"ALTER SYSTEM KILL SESSION '{sid},{serial}' IMMEDIATE")
                except sa.exc.DBAPIError:
                    pass  # it ended meanwhile
            conn.exec_driver_sql(f"DROP USER {name} CASCADE")
        admin.dispose()
