"""Undo of file steps: what ``migrate rollback`` and ``migrate cleanup`` do to a file
endpoint, and the same written as a shell script (file systems) or as a JSON list of
object operations (object stores), for a DBA to read and run without the tool.

Records (written by :mod:`migrate.filecopy` before each change; ``object`` is the path
relative to the target's root, ``detail.manifest`` the manifest row before the change):

- ``delete_file``: the run created the file. Undo: delete it.
- ``restore_file`` (``detail.backup``): the file was moved to the run's backup folder
  before it was overwritten or deleted. Undo: move the backup back over the path
  (replacing what the run put there). Cleanup: delete the backup.
- ``make_dir``: the run deleted a kept empty directory. Undo: make it again.
- ``delete_dir``: the run made an empty directory. Undo: remove it.

Operations (:class:`Op`), with the same meaning in :func:`apply_ops` and in both scripts:

- ``delete(path)``: remove the file; a missing one is not an error.
- ``move(path, to)``: put ``path`` at ``to``, replacing the file there (file systems
  rename over it; object stores copy, then delete the source), making ``to``'s folders;
  a folder at ``to`` is an error (the tool's and the shell script's: never a file put
  inside it). A source that is not there means the move was never made (the run
  stopped between recording it and making it): the tool and the shell script skip it
  with a note; an sftp batch and an object store client stop on it.
- ``mkdir(path)``: make the directory and its parents (object stores: the marker
  object ``path/``).
- ``rmdir(path)``: remove the directory; one that still holds something (files put there
  by someone else since) is left in place with a note; a missing one is not an error.

File systems remove the folders a delete or move left empty, up to (not including) the
root, as the connectors do; the scripts do the same. So a rollback that restores every
backup of a run leaves none of its ``.migrate-backup`` folder behind, and a cleanup that
deletes every backup removes the folder too.

Scripts name where the files are and never hold a password, key or secret: a file
system script works on paths under ``ROOT`` (``file://``: the endpoint's root unless
``ROOT`` is set; ``nfs://``: where the export is mounted, which the user must set), each
path one shell word whatever it holds; an sftp script runs ``sftp -b -`` as
``user@host`` (extra options such as ``-i KEY`` go in ``SFTP_OPTS``; a batch cannot type
a password), every path starting with ``/`` or ``./`` (sftp would read a leading ``-``
as a flag); an operation on a name holding a line break cannot be written in a batch:
it is left out, listed in a comment and announced when the script runs (the tool does
it). The JSON names the endpoint URL, the bucket and full keys; a ``copy`` of an object
over 5 GiB needs a multipart copy (``aws s3 cp`` and ``rclone copyto`` make one, a bare
CopyObject such as ``aws s3api copy-object`` refuses it).
"""

from __future__ import annotations

import json
import os
import posixpath
import shlex
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from migrate.errors import ConnectorError, MigrateError

#: the heredoc delimiter of an sftp batch (no batch line can be it: every path is quoted)
SFTP_EOF = "MIGRATE_UNDO_EOF"


@dataclass(frozen=True)
class Op:
    """One operation on a file endpoint: ``kind`` is ``delete``, ``move``, ``mkdir`` or
    ``rmdir``; ``path`` relative to the endpoint's root (a move's source); ``to`` a
    move's destination; ``why`` one line saying what it undoes (script comments)."""

    kind: str
    path: str
    to: str | None = None
    why: str = ""


def _label(record: dict[str, Any]) -> str:
    return f"#{record.get('id', '?')} run {record.get('run_id', '?')}, step {record.get('step')}"


def undo_ops(record: dict[str, Any]) -> list[Op]:
    """The operations that undo one file undo record (a dict with ``action``,
    ``object``, ``detail`` parsed, and ``id``/``run_id``/``step`` for the comments)."""
    action, path = record["action"], record["object"]
    detail = record.get("detail") or {}
    run = f"run {record.get('run_id', '?')}"
    label = _label(record)
    if action == "delete_file":
        return [Op("delete", path, why=f"{label}: {path} was created by {run}: delete it")]
    if action == "restore_file":
        backup = detail.get("backup")
        if not backup:
            raise MigrateError(f"undo record {label}: restore_file of {path} names no backup")
        why = f"{label}: put back {path} as it was before {run} (kept as {backup})"
        return [Op("move", backup, path, why=why)]
    if action == "make_dir":
        return [Op("mkdir", path, why=f"{label}: {run} removed the empty folder {path}: make it")]
    if action == "delete_dir":
        return [Op("rmdir", path, why=f"{label}: {run} made the empty folder {path}: remove it")]
    raise MigrateError(f"undo record {label}: {action!r} is not a file undo action")


def cleanup_ops(record: dict[str, Any]) -> list[Op]:
    """The operations that drop what a record keeps once the migration is accepted: the
    backup copy of a ``restore_file``; nothing for the other records."""
    if record["action"] != "restore_file":
        return []
    backup = (record.get("detail") or {}).get("backup")
    if not backup:
        return []
    why = f"{_label(record)}: drop the backup of {record['object']} (migration accepted)"
    return [Op("delete", backup, why=why)]


def apply_ops(endpoint: Any, ops: Iterable[Op]) -> list[str]:
    """Carry out ``ops`` in order through the endpoint's own methods (see the module
    contract); returns notes on what was skipped or left in place. An error stops at the
    failing operation (:class:`~migrate.errors.ConnectorError`)."""
    notes = []
    for op in ops:
        if op.kind == "delete":
            endpoint.delete(op.path)
        elif op.kind == "move":
            assert op.to is not None
            if endpoint.stat(op.path) is None:
                notes.append(
                    f"{op.path} is not there (the run never moved {op.to} away): nothing to"
                    " put back"
                )
                continue
            endpoint.move(op.path, op.to)
        elif op.kind == "mkdir":
            endpoint.make_dir(op.path)
        elif op.kind == "rmdir":
            try:
                endpoint.delete(op.path)
            except ConnectorError as exc:
                info = endpoint.stat(op.path)
                if info is None or not info.is_dir:
                    raise
                notes.append(f"{op.path}: folder left in place ({exc})")
        else:
            raise MigrateError(f"unknown file operation {op.kind!r}")
    return notes


def script_kind(endpoint: Any) -> str:
    """``sh`` for a file system endpoint (:func:`shell_script`), ``json`` for an object
    store (:func:`object_ops_json`)."""
    return "sh" if endpoint.capabilities.filesystem else "json"


def render(ops: list[Op], endpoint: Any, title: str = "") -> str:
    """The script of ``ops`` for ``endpoint``, of the kind :func:`script_kind` says."""
    if script_kind(endpoint) == "sh":
        return shell_script(ops, endpoint, title)
    return object_ops_json(ops, endpoint)


# -- shell scripts ---------------------------------------------------------------------------
def comment_text(text: str) -> str:
    """``text`` safe on one comment line of a script: control characters (line breaks
    included) and line or paragraph separators shown as ``?``."""
    return "".join("?" if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)


def shell_script(ops: list[Op], endpoint: Any, title: str = "") -> str:
    """A POSIX shell script doing ``ops`` on ``endpoint`` (see the module contract):
    ``file://`` and ``nfs://`` (and any other local-path scheme) as commands on paths
    under ``ROOT``, ``sftp://`` as one ``sftp -b -`` batch."""
    scheme = endpoint.capabilities.scheme
    head = [
        "#!/bin/sh",
        f"# {comment_text(title or 'migrate: undo operations')}",
        f"# target: {comment_text(endpoint.describe())}",
        "# Each command is preceded by a comment saying which recorded change it undoes;",
        "# they run newest change first. Nothing here holds a password or key.",
        "set -eu",
    ]
    if scheme == "sftp":
        return "\n".join(head + _sftp_lines(ops, endpoint)) + "\n"
    return "\n".join(head + _local_lines(ops, endpoint)) + "\n"


_SH_FUNCTIONS = """\
# prune P: remove the folders above P left empty, up to (not including) $TOP
prune() {
    d=${1%/*}
    while [ "$d" != "$TOP" ] && [ "${d#"$TOP"/}" != "$d" ] && rmdir -- "$d" 2>/dev/null; do
        d=${d%/*}
    done
}
# delete P: remove the file P (a missing one is fine)
delete() {
    if [ -e "$1" ] || [ -L "$1" ]; then
        rm -f -- "$1"
        prune "$1"
    fi
}
# move FROM TO: put FROM at TO, replacing the file there (never into a folder TO)
move() {
    if [ -e "$1" ] || [ -L "$1" ]; then
        if [ -d "$2" ] && [ ! -L "$2" ]; then
            echo "error: $2 is a folder: cannot put $1 back over it" >&2
            exit 1
        fi
        mkdir -p -- "${2%/*}"
        mv -f -- "$1" "$2"
        prune "$1"
    else
        echo "note: $1 is not there (the run never moved $2 away): nothing to put back" >&2
    fi
}
# make_dir P: make the folder P and its parents
make_dir() {
    mkdir -p -- "$1"
}
# remove_dir P: remove the folder P; one that holds something is left in place
remove_dir() {
    [ -d "$1" ] || return 0
    if rmdir -- "$1" 2>/dev/null; then
        prune "$1"
    else
        echo "note: $1 is not empty: left in place" >&2
    fi
}"""


def _local_lines(ops: list[Op], endpoint: Any) -> list[str]:
    scheme = endpoint.capabilities.scheme
    lines = []
    if scheme == "file":
        lines += [
            "# ROOT: the target folder (set ROOT to run this on a copy or another mount)",
            f"TARGET_ROOT={shlex.quote(os.path.abspath(endpoint.root))}",
            "ROOT=${ROOT:-$TARGET_ROOT}",
            "TOP=${ROOT%/}",
        ]
    else:
        sub = ""
        if scheme == "nfs":
            where = f"{endpoint.host}:{endpoint.export}"
            sub = endpoint.root.strip("/")
        else:
            where = endpoint.describe()
        lines += [
            f"# ROOT: where {comment_text(where)} is mounted on this machine (required), e.g.",
            "#   ROOT=/mnt/share sh this-script.sh",
            ': "${ROOT:?set ROOT to where the share is mounted (see the comment above)}"',
            f"TOP=${{ROOT%/}}/{shlex.quote(sub)}" if sub else "TOP=${ROOT%/}",
        ]
    lines += [
        '[ -d "$TOP" ] || { echo "$TOP is not a folder" >&2; exit 1; }',
        _SH_FUNCTIONS,
        "",
    ]
    call = {"delete": "delete", "move": "move", "mkdir": "make_dir", "rmdir": "remove_dir"}
    for op in ops:
        args = [f'"$TOP"/{shlex.quote(op.path)}']
        if op.kind == "move":
            assert op.to is not None
            args.append(f'"$TOP"/{shlex.quote(op.to)}')
        lines += [f"# {comment_text(op.why)}", f"{call[op.kind]} {' '.join(args)}"]
    return lines


def _sftp_quote(path: str) -> str:
    """A path as one argument of an sftp batch line: double quotes, ``\\`` and ``"``
    escaped (quoted glob characters are literal in OpenSSH's sftp). A name with a line
    break cannot be written in a batch (:func:`_sftp_lines` leaves such operations out)."""
    if _breaks(path):
        raise ConnectorError(f"cannot write {path!r} in an sftp batch: the name holds a line break")
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _breaks(path: str | None) -> bool:
    return path is not None and ("\n" in path or "\r" in path)


def _sftp_lines(ops: list[Op], endpoint: Any) -> list[str]:
    root = endpoint.root  # absolute, or relative to the login folder (sftp starts there)
    host = endpoint.host if ":" not in endpoint.host else f"[{endpoint.host}]"
    dest = shlex.quote(f"{endpoint.user}@{host}")
    lines = [
        "# Runs one sftp batch; SFTP_OPTS adds options, e.g. SFTP_OPTS='-i ~/.ssh/id_ed25519'",
        "# (a batch cannot type a password: use a key or an agent).",
        "# A line starting with '-' may fail without stopping the batch (a file already",
        "# gone, a folder that exists or is not empty: 'Couldn't remove directory' only",
        "# means the folder still holds files). A failing rename stops it: when its",
        "# backup is not there, the run never moved that file; remove the line, run again",
        "# (a server without OpenSSH's posix-rename cannot rename over a file: rm it first).",
        "SFTP_OPTS=${SFTP_OPTS:-}",
    ]
    # A name with a line break cannot be written in a batch line: those operations are
    # left out, and the script says so when it runs (migrate rollback does them).
    left_out = [op for op in ops if _breaks(op.path) or _breaks(op.to)]
    if left_out:
        lines += [
            f"# {len(left_out)} operation(s) on names holding a line break cannot be written"
            " in an sftp batch and are",
            "# not in it; migrate rollback / migrate cleanup carry them out:",
            *(f"#   {comment_text(op.why)}" for op in left_out),
            f"echo 'note: {len(left_out)} operation(s) on names with a line break are not in"
            " this batch (migrate rollback / cleanup does them)' >&2",
        ]
        ops = [op for op in ops if op not in left_out]
    if not ops:
        return [*lines, "# nothing to do", "exit 0"]

    def abs_(path: str) -> str:
        """The path in the batch: under the root, and starting with ``/`` or ``./`` (a
        relative one starting with ``-`` would be read by sftp as a flag)."""
        full = posixpath.join(root, path) if root else path
        return full if full.startswith("/") else "./" + full

    def parents(path: str) -> list[str]:
        """Folders above ``path`` below the root, outermost first."""
        parts = path.split("/")[:-1]
        return ["/".join(parts[: i + 1]) for i in range(len(parts))]

    batch = []
    for op in ops:
        batch.append(f"# {comment_text(op.why)}")
        target = _sftp_quote(abs_(op.path))
        if op.kind == "delete":
            batch.append(f"-rm {target}")
            batch += [f"-rmdir {_sftp_quote(abs_(d))}" for d in reversed(parents(op.path))]
        elif op.kind == "move":
            assert op.to is not None
            batch += [f"-mkdir {_sftp_quote(abs_(d))}" for d in parents(op.to)]
            batch.append(f"rename {target} {_sftp_quote(abs_(op.to))}")
            batch += [f"-rmdir {_sftp_quote(abs_(d))}" for d in reversed(parents(op.path))]
        elif op.kind == "mkdir":
            batch += [f"-mkdir {_sftp_quote(abs_(d))}" for d in parents(op.path)]
            batch.append(f"-mkdir {target}")
        elif op.kind == "rmdir":
            batch.append(f"-rmdir {target}")
            batch += [f"-rmdir {_sftp_quote(abs_(d))}" for d in reversed(parents(op.path))]
    lines += [
        "# shellcheck disable=SC2086",
        f"sftp $SFTP_OPTS -b - -P {int(endpoint.port)} {dest} <<'{SFTP_EOF}'",
        *batch,
        SFTP_EOF,
    ]
    return lines


# -- object stores ---------------------------------------------------------------------------
def object_ops_json(ops: list[Op], endpoint: Any) -> str:
    """``ops`` as a JSON list of object operations on ``endpoint``'s bucket, one object
    per operation, in order: ``{"op": "copy", "from": KEY, "to": KEY}``, ``{"op":
    "delete", "key": KEY}``, ``{"op": "put", "key": KEY, "body": ""}`` (a folder
    marker), each with ``bucket``, ``endpoint`` (its URL, null for Amazon S3),
    ``region`` (null when not set) and ``undoes`` (what it undoes). Keys are full keys
    (the connection's prefix included). A move is a copy then a delete; a delete of a
    folder is the delete of its marker ``KEY/``. No credentials."""
    where = endpoint.location()
    base = {
        "endpoint": where.get("endpoint"),
        "region": where.get("region"),
        "bucket": where["bucket"],
    }
    prefix = where.get("prefix") or ""
    out: list[dict[str, Any]] = []
    for op in ops:
        key = prefix + op.path
        if op.kind == "delete":
            out.append({"op": "delete", **base, "key": key, "undoes": op.why})
        elif op.kind == "move":
            assert op.to is not None
            out.append({"op": "copy", **base, "from": key, "to": prefix + op.to, "undoes": op.why})
            out.append({"op": "delete", **base, "key": key, "undoes": op.why})
        elif op.kind == "mkdir":
            out.append({"op": "put", **base, "key": key + "/", "body": "", "undoes": op.why})
        elif op.kind == "rmdir":
            out.append({"op": "delete", **base, "key": key + "/", "undoes": op.why})
        else:
            raise MigrateError(f"unknown file operation {op.kind!r}")
    return json.dumps(out, ensure_ascii=False, indent=2) + "\n"
