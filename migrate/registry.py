"""Connector registry keyed by URL scheme.

The scheme is the part of a URL before ``://``, without a ``+driver`` suffix
(``mysql+pymysql://`` is ``mysql``). Built-in connectors are listed here as import paths
so that nothing is imported until a plan uses it; outside packages add schemes through the
``migrate.connectors`` entry-point group (``scheme = "package.module:Class"``), and say
which kind of endpoint they are with a class attribute ``kind = "table" | "file"``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from migrate.errors import PlanError

# scheme -> (import path, endpoint kind)
BUILTIN: dict[str, tuple[str, str]] = {
    "mysql": ("connectors.sql.mysql:MySQLEndpoint", "table"),
    "mariadb": ("connectors.sql.mysql:MySQLEndpoint", "table"),
    "postgresql": ("connectors.sql.postgresql:PostgreSQLEndpoint", "table"),
    "postgres": ("connectors.sql.postgresql:PostgreSQLEndpoint", "table"),
    "sqlite": ("connectors.sql.sqlite:SQLiteEndpoint", "table"),
    "mssql": ("connectors.sql.mssql:MSSQLEndpoint", "table"),
    "oracle": ("connectors.sql.oracle:OracleEndpoint", "table"),
    "sample": ("connectors.sample:SampleEndpoint", "table"),
    "file": ("connectors.files.local:LocalEndpoint", "file"),
    "nfs": ("connectors.files.nfs:NFSEndpoint", "file"),
    "sftp": ("connectors.files.sftp:SFTPEndpoint", "file"),
    "s3": ("connectors.files.s3:S3Endpoint", "file"),
}

_ENTRY_POINT_GROUP = "migrate.connectors"


def scheme_of(url: str) -> str:
    """The registry key of a URL: lower-case scheme without ``+driver``."""
    head = url.split("://", 1)[0] if "://" in url else url.split(":", 1)[0]
    return head.split("+", 1)[0].lower()


def _plugins() -> dict[str, object]:
    return {ep.name.lower(): ep for ep in entry_points(group=_ENTRY_POINT_GROUP)}


def known_schemes() -> list[str]:
    return sorted(set(BUILTIN) | set(_plugins()))


def endpoint_kind(url: str) -> str | None:
    """``"table"`` or ``"file"`` for a URL whose scheme is known, else None.

    Built-ins answer without importing anything; a plugin is loaded to read its ``kind``.
    """
    scheme = scheme_of(url)
    if scheme in BUILTIN:
        return BUILTIN[scheme][1]
    ep = _plugins().get(scheme)
    if ep is None:
        return None
    return getattr(ep.load(), "kind", "table")  # type: ignore[attr-defined]


def endpoint_class(url: str) -> type:
    """The connector class for ``url``; raises PlanError naming what could not be loaded."""
    scheme = scheme_of(url)
    if scheme in BUILTIN:
        module_name, _, attr = BUILTIN[scheme][0].partition(":")
        return getattr(importlib.import_module(module_name), attr)
    ep = _plugins().get(scheme)
    if ep is None:
        raise PlanError(
            f"no connector for URL scheme {scheme!r} (known: {', '.join(known_schemes())})"
        )
    try:
        return ep.load()  # type: ignore[attr-defined,no-any-return]
    except Exception as exc:  # a broken plugin must not look like a bug of ours
        raise PlanError(
            f"connector plugin for {scheme!r} ({ep.value}) failed to load:"  # type: ignore[attr-defined]
            f" {exc}"
        ) from None
