"""What a dry run asks a file endpoint: round trips, a read probe and the rights it can see.

Works on any file endpoint (:mod:`connectors.files.base`), with what each kind of store
lets a reader find out without writing (``endpoint.capabilities.scheme``):

- :func:`latency` — the median of ``samples`` timed ``root_exists()`` calls (a stat of
  the root; the bucket's HEAD on object stores) after one warm-up; seconds.
- :func:`read_probe` — reads the first bytes of the given files, largest first, for at
  most about ``seconds`` or ``max_bytes`` in all; returns files, bytes, seconds, bytes/s.
- :func:`privileges` — a source needs *list* and *read*, a target *list*, *put* and
  *delete*. *list* is proven by listing the root; *read* by the probe. *put* and *delete*
  cannot be proven without writing, so they are reported as not checked (``held`` None:
  "not checked by a dry run (the pilot checks them)") except where a read-only check
  exists: ``file://`` asks ``os.access`` for write and search rights on the root (or the
  nearest folder that exists, where the root will be made); ``sftp://`` compares the
  root's mode bits with the login's uid, taken as the owner of the login's home folder
  (root may do anything; a folder writable only by its group is "cannot tell": group
  membership is not visible over SFTP). Only the root is looked at: a sub-folder with
  other rights is found by the pilot or the run.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as stat_mod
import statistics
import time
from pathlib import Path
from typing import Any

from migrate.errors import ConnectorError

NOT_CHECKED = "not checked by a dry run (the pilot checks them)"


def latency(endpoint: Any, samples: int = 5) -> float:
    """The median time of ``endpoint.root_exists()`` in seconds (module contract)."""
    times = []
    for i in range(samples + 1):
        started = time.perf_counter()
        endpoint.root_exists()
        if i:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def read_probe(
    endpoint: Any,
    files: list[tuple[str, int]],
    *,
    seconds: float = 2.0,
    max_bytes: int = 8 << 20,
) -> dict[str, Any] | None:
    """Read the first bytes of ``files`` (``(path, size)``, largest first) until about
    ``seconds`` or ``max_bytes`` in all; None when there is nothing to read.
    Returns ``{"files", "paths", "bytes", "seconds", "bytes_per_s"}``."""
    todo = sorted((f for f in files if f[1] > 0), key=lambda f: -f[1])
    if not todo:
        return None
    read = 0
    paths = []
    started = time.perf_counter()
    for path, _size in todo:
        paths.append(path)
        stream = endpoint.open_read(path)
        try:
            while read < max_bytes:
                block = stream.read(min(1 << 20, max_bytes - read))
                if not block:
                    break
                read += len(block)
                if time.perf_counter() - started >= seconds:
                    break
        finally:
            stream.close()
        if read >= max_bytes or time.perf_counter() - started >= seconds:
            break
    elapsed = time.perf_counter() - started
    return {
        "files": len(paths),
        "paths": paths,
        "bytes": read,
        "seconds": round(elapsed, 4),
        "bytes_per_s": round(read / elapsed, 1) if elapsed > 0 and read else None,
    }


def can_list(endpoint: Any) -> tuple[bool, str]:
    """List the root (the first entry is enough): (True, how) or (False, the error)."""
    try:
        next(iter(endpoint.list()), None)
    except ConnectorError as exc:
        return False, str(exc)
    return True, "proven by listing the root"


def privileges(
    endpoint: Any, roles: set[str], *, read: bool | None = None, read_how: str = ""
) -> list[dict[str, Any]]:
    """The rights a ``source`` / ``target`` (``roles``) needs, with whether they are
    held (rows as :func:`connectors.sql.survey.privileges` gives them). ``read``: what
    the read probe proved (None: nothing was read)."""
    where = "root"
    out = []
    listed, how = can_list(endpoint)
    out.append(_row("list", where, "finding the files", listed, how))
    if "source" in roles:
        out.append(
            _row(
                "read",
                where,
                "reading the files",
                read,
                read_how or ("nothing to read" if read is None else "proven by the read probe"),
            )
        )
    if "target" in roles:
        held, how = write_rights(endpoint)
        out.append(
            _row("put", where, "writing files (and the backups of overwritten ones)", held, how)
        )
        out.append(_row("delete", where, "deleting files (deletes, rollback)", held, how))
    return out


def _row(privilege: str, where: str, why: str, held: bool | None, how: str) -> dict[str, Any]:
    return {
        "privilege": privilege,
        "on": where,
        "needed_for": why,
        "held": held,
        "missing_on": [where] if held is False else [],
        "how": how,
        "blocking": True,
    }


def write_rights(endpoint: Any) -> tuple[bool | None, str]:
    """Whether the root can be written, as far as a reader can tell (module contract)."""
    scheme = endpoint.capabilities.scheme
    if scheme == "file":
        return _local_write(Path(endpoint.root))
    if scheme == "sftp":
        try:
            return _sftp_write(endpoint)
        except ConnectorError as exc:
            return None, f"{NOT_CHECKED}: {exc}"
    return None, NOT_CHECKED


def _local_write(root: Path) -> tuple[bool, str]:
    folder = root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    ok = os.access(folder, os.W_OK | os.X_OK)
    made = "" if folder == root else f" (the root does not exist yet: {folder} is where it is made)"
    return ok, f"os.access(W_OK | X_OK) on {folder}{made}"


def _sftp_write(endpoint: Any) -> tuple[bool | None, str]:
    root = endpoint._root()

    def look(client: Any) -> tuple[int | None, str, Any]:
        try:
            me = client.stat(client.normalize(".")).st_uid
        except OSError:
            me = None
        path = root
        while True:
            try:
                return me, path, client.stat(path)
            except OSError as exc:
                if exc.errno != errno.ENOENT or posixpath.dirname(path) == path:
                    raise
                path = posixpath.dirname(path)

    me, path, st = endpoint._run("stat", "", look)
    mode = stat_mod.S_IMODE(st.st_mode or 0)
    shown = f"mode {mode:04o} of {path} (owner uid {st.st_uid}"
    if me is None:
        return None, f"{NOT_CHECKED}: the login's uid is unknown ({shown})"
    shown += f"; the login is uid {me}, the owner of its home folder)"
    if me == 0:
        return True, shown
    if st.st_uid == me:
        return mode & 0o300 == 0o300, shown
    if mode & 0o003 == 0o003:
        return True, shown
    if mode & 0o030 == 0o030:
        return None, f"cannot tell: writable by its group only, {shown}"
    return False, shown
