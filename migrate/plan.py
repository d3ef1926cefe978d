"""Parse and check a plan file.

Contract: :func:`load_plan` returns a fully checked :class:`Plan` or raises
:class:`~migrate.errors.PlanError` whose message names the file, the key path
(``steps.erp-db.mode``; an item without a usable name is ``steps[#2]``, counted from 1)
and, where it can be found, the line. Unknown keys, wrong types, unset ``${VAR}``s,
unknown connections, batches or steps, and ``after`` cycles are all errors. Nothing is
connected to here.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from migrate.errors import PlanError
from migrate.globs import glob_regex
from migrate.registry import endpoint_kind
from validators.canonical import Rules

LAYERS = ("application", "platform", "data")
MODES = ("full", "incremental", "full+incremental", "cdc")
INCREMENTAL_MODES = ("incremental", "full+incremental")
VALIDATIONS = ("count", "checksum")
IF_EXISTS = ("fail", "truncate", "replace")
DELETES = ("ignore", "detect")
# file steps (source and target are file endpoints)
FILE_MODES = ("full", "full+incremental")
FILE_DELETES = ("ignore", "propagate")
COMPARES = ("size-mtime", "hash")
SYMLINKS = ("skip", "follow")
EMPTY_DIRS = ("skip", "keep")
DEFAULT_PART_SIZE = 8 << 20
DEFAULT_MULTIPART_THRESHOLD = 16 << 20
#: connection options whose values are secrets (masked wherever they could be shown)
SECRET_OPTIONS = frozenset({"password", "secret_key", "session_token", "key_passphrase"})
#: keys only a database step takes, and keys only a file step takes
TABLE_KEYS = frozenset(
    {
        "tables",
        "exclude_tables",
        "cursor",
        "overlap",
        "start",
        "chunk_rows",
        "if_exists",
        "overrides",
        "rules",
    }
)
FILE_KEYS = frozenset(
    {"include", "exclude", "compare", "part_size", "multipart_threshold", "symlinks", "empty_dirs"}
)
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(|k|kb|kib|m|mb|mib|g|gb|gib)$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "k": 1 << 10,
    "kib": 1 << 10,
    "kb": 1000,
    "m": 1 << 20,
    "mib": 1 << 20,
    "mb": 1000**2,
    "g": 1 << 30,
    "gib": 1 << 30,
    "gb": 1000**3,
}
DEFAULT_TIME_OVERLAP = "5m"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Connection:
    """A named endpoint. ``url`` holds substituted secrets: never print it, use ``safe_url``."""

    name: str
    url: str
    options: dict[str, Any]
    safe_url: str


@dataclass(frozen=True)
class TableOverride:
    """Per-table settings inside a step (``[steps.overrides.NAME]``)."""

    chunk_rows: int | None = None
    key: tuple[str, ...] = ()
    rename: str | None = None
    cursor: str | None = None
    overlap: Overlap | None = None
    start: str | int | None = None
    rules: Rules | None = None


@dataclass(frozen=True)
class Overlap:
    """How far behind the recorded watermark a catch-up pass starts reading.

    ``seconds`` for a time cursor (``overlap = "5m"``), ``keys`` for a numeric cursor
    (``overlap = 1000``): rows committed late, or stamped by a skewed clock, inside the
    window are caught; re-reading an unchanged row is harmless.
    """

    text: str
    seconds: float | None = None
    keys: int | None = None


@dataclass(frozen=True)
class Step:
    """One unit of work: copy from ``source`` to ``target``."""

    name: str
    index: int
    batch: str
    layer: str
    source: str
    target: str
    after: tuple[str, ...]
    tables: tuple[str, ...]
    exclude_tables: tuple[str, ...]
    mode: str
    chunk_rows: int
    workers: int
    validate: tuple[str, ...]
    if_exists: str
    overrides: dict[str, TableOverride] = field(default_factory=dict)
    cursor: str | None = None
    overlap: Overlap | None = None
    start: str | int | None = None
    deletes: str = "ignore"
    rules: Rules = field(default_factory=Rules)
    #: ``"table"`` for database steps, ``"file"`` for file steps; the fields below are
    #: a file step's (globs are matched against paths relative to the source root)
    kind: str = "table"
    include: tuple[str, ...] = ("**",)
    exclude: tuple[str, ...] = ()
    compare: str = "size-mtime"
    part_size: int = DEFAULT_PART_SIZE
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD
    symlinks: str = "skip"
    empty_dirs: str = "skip"

    def table_rules(self, table: str) -> Rules:
        """The known differences that apply to ``table``: the step's, then its own."""
        override = self.overrides.get(table)
        return self.rules.merged(override.rules if override else None)

    @property
    def incremental(self) -> bool:
        """Whether later runs catch up (watermark or binlog) instead of skipping done tables."""
        return self.mode != "full"


@dataclass(frozen=True)
class Plan:
    """A checked plan. ``secrets`` are the substituted values that must never be shown."""

    path: Path
    name: str
    state_path: Path
    connections: dict[str, Connection]
    batches: tuple[str, ...]
    steps: tuple[Step, ...]
    secrets: frozenset[str]

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


class _Checker:
    """Walks the parsed TOML, reporting the first mistake with its key path and line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.secrets: set[str] = set()

    # -- error helpers -------------------------------------------------------------------
    def fail(self, key: str, message: str) -> PlanError:
        """The error to raise; any substituted secret in the message is masked."""
        return PlanError(
            redact(message, self.secrets), path=str(self.path), key=key, line=self.locate(key)
        )

    def locate(self, key: str) -> int | None:
        """Best-effort line of a key path in the file text (TOML does not report it)."""
        parts = key.split(".")
        start = 0
        if parts[0] in ("steps", "batches") and len(parts) > 1:
            header = re.compile(rf"^\s*\[\[\s*{parts[0]}\s*\]\]")
            wanted = parts[1]
            found = None
            count = 0
            for i, line in enumerate(self.lines):
                if header.match(line):
                    count += 1
                    if wanted == f"[#{count}]":
                        found = i
                        break
                    block = self._block(i)
                    if any(
                        re.match(rf'^\s*name\s*=\s*["\']{re.escape(wanted)}["\']', b) for b in block
                    ):
                        found = i
                        break
            if found is None:
                return None
            start, parts = found, parts[2:]
            if not parts:
                return start + 1
        elif parts[0] in ("connections", "defaults") and len(parts) > 1:
            sub = parts[1] if parts[0] == "connections" else None
            for i, line in enumerate(self.lines):
                if (sub and re.match(rf'^\s*"?{re.escape(sub)}"?\s*=', line)) or (
                    sub and re.match(rf"^\s*\[\s*connections\.\"?{re.escape(sub)}\"?\s*\]", line)
                ):
                    if len(parts) == 2:
                        return i + 1
                    start, parts = i, parts[2:]
                    break
                if not sub and re.match(r"^\s*\[\s*defaults\s*\]", line):
                    start, parts = i, parts[1:]
                    break
            else:
                return None
        leaf = parts[-1] if parts else None
        if leaf is None:
            return None
        for i in range(start, len(self.lines)):
            if i > start and re.match(r"^\s*\[", self.lines[i]) and not parts[:-1]:
                break
            if re.search(rf'(^|[\s{{,])"?{re.escape(leaf)}"?\s*=', self.lines[i]):
                return i + 1
        return None

    def _block(self, i: int) -> list[str]:
        out = []
        for line in self.lines[i + 1 :]:
            if re.match(r"^\s*\[", line):
                break
            out.append(line)
        return out

    # -- typed getters -------------------------------------------------------------------
    def keys(self, table: dict, allowed: set[str], key: str) -> None:
        for name in table:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                hint = ", ".join(sorted(allowed))
                raise self.fail(where, f"unknown key {name!r} (allowed: {hint})")

    def string(
        self,
        table: dict,
        name: str,
        key: str,
        *,
        required: bool = False,
        default: str | None = None,
        choices: tuple[str, ...] | None = None,
    ) -> str | None:
        where = f"{key}.{name}" if key else name
        if name not in table:
            if required:
                raise self.fail(key or name, f"missing required key {name!r}")
            return default
        value = table[name]
        if not isinstance(value, str):
            raise self.fail(where, f"must be a string, not {_tname(value)}")
        value = self.substitute(value, where)
        if choices is not None and value not in choices:
            raise self.fail(where, f"{value!r} is not one of: {', '.join(choices)}")
        return value

    def integer(self, table: dict, name: str, key: str, default: int, *, minimum: int = 1) -> int:
        where = f"{key}.{name}" if key else name
        if name not in table:
            return default
        value = table[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be an integer, not {_tname(value)}")
        if value < minimum:
            raise self.fail(where, f"must be at least {minimum}, not {value}")
        return value

    def strings(
        self,
        table: dict,
        name: str,
        key: str,
        default: tuple[str, ...] = (),
        choices: tuple[str, ...] | None = None,
    ) -> tuple[str, ...]:
        where = f"{key}.{name}" if key else name
        if name not in table:
            return default
        value = table[name]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, "must be a list of strings")
        out = tuple(self.substitute(v, where) for v in value)
        if choices is not None:
            for v in out:
                if v not in choices:
                    raise self.fail(where, f"{v!r} is not one of: {', '.join(choices)}")
        return out

    def table(self, parent: dict, name: str, key: str) -> dict:
        where = f"{key}.{name}" if key else name
        value = parent.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a table, not {_tname(value)}")
        return value

    def array_of_tables(self, parent: dict, name: str) -> list[dict]:
        value = parent.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(name, f"must be an array of tables ([[{name}]])")
        return value

    def substitute(self, value: str, where: str) -> str:
        """Replace ``${VAR}`` from the environment; an unset variable is an error."""

        def repl(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in os.environ:
                raise self.fail(where, f"environment variable ${{{var}}} is not set")
            secret = os.environ[var]
            if secret:
                self.secrets.add(secret)
            return secret

        return _VAR.sub(repl, value)


def _tname(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _item_key(kind: str, item: dict, position: int) -> str:
    name = item.get("name")
    if isinstance(name, str) and _NAME.match(name):
        return f"{kind}.{name}"
    return f"{kind}.[#{position}]"


def load_plan(path: str | os.PathLike[str]) -> Plan:
    """Read, parse and check a plan file; see the module docstring for the contract."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError("plan file not found", path=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read plan file: {exc}", path=str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column \d+\)", msg)
        line = int(m.group(1)) if m else None
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
        raise PlanError(f"invalid TOML: {msg}", path=str(p), line=line) from None
    return _check(p.resolve(), p, text, data)


def _check(resolved: Path, shown: Path, text: str, data: dict) -> Plan:
    c = _Checker(shown, text)
    c.keys(data, {"version", "name", "state", "defaults", "connections", "batches", "steps"}, "")
    version = data.get("version", 1)
    if version != 1:
        raise c.fail("version", f"unsupported plan version {version!r} (this tool reads 1)")
    name = c.string(data, "name", "", required=True)
    assert name is not None
    if not _NAME.match(name):
        raise c.fail("name", f"{name!r} may use letters, digits, '.', '_' and '-' only")
    base = resolved.parent
    state = c.string(data, "state", "", default=f".migrate/{name}.db")
    assert state is not None
    state_path = Path(state) if Path(state).is_absolute() else base / state

    defaults = c.table(data, "defaults", "")
    c.keys(defaults, {"chunk_rows", "workers", "validate", "if_exists"}, "defaults")
    d_chunk = c.integer(defaults, "chunk_rows", "defaults", 50_000)
    d_workers = c.integer(defaults, "workers", "defaults", 4)
    d_validate = c.strings(defaults, "validate", "defaults", ("count",), VALIDATIONS)
    d_if_exists = c.string(defaults, "if_exists", "defaults", default="fail", choices=IF_EXISTS)

    conns_raw = c.table(data, "connections", "")
    if not conns_raw:
        raise c.fail("connections", "at least one connection is needed")
    connections: dict[str, Connection] = {}
    for cname, craw in conns_raw.items():
        key = f"connections.{cname}"
        if not isinstance(craw, dict):
            raise c.fail(key, f'must be a table like {{ url = "..." }}, not {_tname(craw)}')
        url = c.string(craw, "url", key, required=True)
        assert url is not None
        _check_url(c, f"{key}.url", url)
        kind = endpoint_kind(url)
        if kind is None:
            raise c.fail(
                f"{key}.url",
                f"no connector for URL scheme {_scheme(url)!r}"
                f" (known: {', '.join(_known_schemes())})",
            )
        declared = _declared_options(url) if kind == "file" else None
        # a file connection may also name its options beside the url
        c.keys(craw, {"url", "options"} | set(declared or ()), key)
        options = dict(c.table(craw, "options", key))
        for k, v in craw.items():
            if k not in ("url", "options"):
                if k in options:
                    raise c.fail(f"{key}.{k}", "given both here and in options")
                options[k] = v
        options = {
            k: c.substitute(v, f"{key}.options.{k}") if isinstance(v, str) else v
            for k, v in options.items()
        }
        if declared is not None:
            inline = {k for k in craw if k not in ("url", "options")}
            _check_options(c, key, options, declared, inline)
            # a secret written into the plan itself is still never shown
            c.secrets.update(
                v for k, v in options.items() if k in SECRET_OPTIONS and isinstance(v, str) and v
            )
        connections[cname] = Connection(cname, url, options, _safe_url(url))

    batch_items = c.array_of_tables(data, "batches")
    batches: list[str] = []
    for i, braw in enumerate(batch_items, 1):
        key = _item_key("batches", braw, i)
        c.keys(braw, {"name", "description"}, key)
        bname = c.string(braw, "name", key, required=True)
        assert bname is not None
        if bname in batches:
            raise c.fail(f"batches.[#{i}]", f"batch {bname!r} is defined twice")
        batches.append(bname)

    step_items = c.array_of_tables(data, "steps")
    if not step_items:
        raise c.fail("steps", "the plan has no [[steps]]")
    steps: list[Step] = []
    allowed = {
        "name",
        "batch",
        "layer",
        "source",
        "target",
        "after",
        "tables",
        "exclude_tables",
        "mode",
        "cursor",
        "overlap",
        "start",
        "deletes",
        "chunk_rows",
        "workers",
        "validate",
        "if_exists",
        "overrides",
        "rules",
        *FILE_KEYS,
    }
    seen: set[str] = set()
    for i, sraw in enumerate(step_items, 1):
        key = _item_key("steps", sraw, i)
        src_conn = (
            connections.get(sraw.get("source")) if isinstance(sraw.get("source"), str) else None
        )
        if src_conn is not None and endpoint_kind(src_conn.url) == "file":
            c.keys(sraw, (allowed - TABLE_KEYS) | FILE_KEYS, key)
        else:
            c.keys(sraw, allowed - FILE_KEYS, key)
        sname = c.string(sraw, "name", key, required=True)
        assert sname is not None
        if not _NAME.match(sname):
            raise c.fail(f"{key}.name", f"{sname!r} may use letters, digits, '.', '_' and '-'")
        if sname in seen:
            raise c.fail(f"steps.[#{i}]", f"step {sname!r} is defined twice")
        seen.add(sname)
        source = c.string(sraw, "source", key, required=True)
        target = c.string(sraw, "target", key, required=True)
        for role, cname in (("source", source), ("target", target)):
            if cname not in connections:
                raise c.fail(
                    f"{key}.{role}",
                    f"unknown connection {cname!r} (defined: {', '.join(connections)})",
                )
        assert source is not None and target is not None
        if source == target:
            raise c.fail(f"{key}.target", "source and target are the same connection")
        if batches:
            batch = c.string(sraw, "batch", key, default=batches[0])
            if batch not in batches:
                raise c.fail(
                    f"{key}.batch", f"unknown batch {batch!r} (defined: {', '.join(batches)})"
                )
        else:
            batch = c.string(sraw, "batch", key, default="default")
            if batch != "default":
                raise c.fail(
                    f"{key}.batch",
                    f"unknown batch {batch!r} (the plan has no"
                    " [[batches]]; add one or drop this key)",
                )
        assert batch is not None
        src_kind = endpoint_kind(connections[source].url)
        tgt_kind = endpoint_kind(connections[target].url)
        if src_kind != tgt_kind:
            raise c.fail(
                key,
                f"cannot copy from a {src_kind} endpoint ({source}) to a"
                f" {tgt_kind} endpoint ({target})",
            )
        default_layer = "platform" if src_kind == "table" else "data"
        if src_kind == "file":
            overlap_at = _file_overlap(connections[source], connections[target], base)
            if overlap_at:
                raise c.fail(
                    f"{key}.target",
                    f"the target {target!r} and the source {source!r} overlap ({overlap_at}):"
                    " a copy would read what it writes",
                )
            layer = c.string(sraw, "layer", key, default=default_layer, choices=LAYERS)
            steps.append(
                _file_step(
                    c,
                    sraw,
                    key,
                    sname,
                    i,
                    batch,
                    layer or default_layer,
                    d_validate,
                    d_workers if "workers" in defaults else 8,
                )
            )
            continue
        for k in FILE_KEYS:
            if k in sraw:
                raise c.fail(f"{key}.{k}", f"{k!r} is for file steps; this step copies tables")
        layer = c.string(sraw, "layer", key, default=default_layer, choices=LAYERS)
        mode = c.string(sraw, "mode", key, default="full", choices=MODES) or "full"
        cursor = c.string(sraw, "cursor", key)
        overlap = _overlap(c, sraw, key)
        start = _start(c, sraw, key)
        deletes = c.string(sraw, "deletes", key, default="ignore", choices=DELETES) or "ignore"
        validate = c.strings(sraw, "validate", key, d_validate, VALIDATIONS)
        rules = _rules(c, sraw, key) or Rules()
        overrides_raw = c.table(sraw, "overrides", key)
        overrides: dict[str, TableOverride] = {}
        for tname, oraw in overrides_raw.items():
            okey = f"{key}.overrides.{tname}"
            if not isinstance(oraw, dict):
                raise c.fail(okey, f"must be a table, not {_tname(oraw)}")
            c.keys(
                oraw, {"chunk_rows", "key", "rename", "cursor", "overlap", "start", "rules"}, okey
            )
            overrides[tname] = TableOverride(
                chunk_rows=c.integer(oraw, "chunk_rows", okey, 0) or None,
                key=c.strings(oraw, "key", okey),
                rename=c.string(oraw, "rename", okey),
                cursor=c.string(oraw, "cursor", okey),
                overlap=_overlap(c, oraw, okey),
                start=_start(c, oraw, okey),
                rules=_rules(c, oraw, okey),
            )
        _check_mode(c, key, mode, cursor, deletes, sraw, overrides)
        steps.append(
            Step(
                name=sname,
                index=i,
                batch=batch,
                layer=layer or default_layer,
                source=source,
                target=target,
                after=c.strings(sraw, "after", key),
                tables=c.strings(sraw, "tables", key, ("*",)),
                exclude_tables=c.strings(sraw, "exclude_tables", key),
                mode=mode,
                chunk_rows=c.integer(sraw, "chunk_rows", key, d_chunk),
                workers=c.integer(sraw, "workers", key, d_workers),
                validate=validate,
                if_exists=c.string(sraw, "if_exists", key, default=d_if_exists, choices=IF_EXISTS)
                or "fail",
                overrides=overrides,
                cursor=cursor,
                overlap=overlap,
                start=start,
                deletes=deletes,
                rules=rules,
            )
        )
    names = {s.name for s in steps}
    for step in steps:
        for dep in step.after:
            if dep not in names:
                raise c.fail(f"steps.{step.name}.after", f"unknown step {dep!r}")
            if dep == step.name:
                raise c.fail(f"steps.{step.name}.after", "a step cannot come after itself")
    cycle = _find_cycle({s.name: s.after for s in steps})
    if cycle:
        raise c.fail(
            f"steps.{cycle[0]}.after", "dependency cycle: " + " -> ".join([*cycle, cycle[0]])
        )
    order = tuple(batches) or ("default",)

    def rank(step: Step) -> tuple[int, int]:
        return order.index(step.batch), LAYERS.index(step.layer)

    by_name = {s.name: s for s in steps}
    for step in steps:  # an `after` may not point into a later wave
        for dep in step.after:
            other = by_name[dep]
            if rank(other) > rank(step):
                raise c.fail(
                    f"steps.{step.name}.after",
                    f"step {dep!r} runs later ({other.batch}/{other.layer}) than this step"
                    f" ({step.batch}/{step.layer}); batches run in file order and layers"
                    " application, platform, data",
                )
    return Plan(
        path=resolved,
        name=name,
        state_path=state_path,
        connections=connections,
        batches=order,
        steps=tuple(steps),
        secrets=frozenset(c.secrets | _url_passwords(connections)),
    )


def _overlap(c: _Checker, raw: dict, key: str) -> Overlap | None:
    """``overlap = "5m"`` (a time cursor) or ``overlap = 1000`` (a numeric cursor)."""
    if "overlap" not in raw:
        return None
    value = raw["overlap"]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise c.fail(
            f"{key}.overlap",
            f'must be a duration like "5m" or a number of keys, not {_tname(value)}',
        )
    if isinstance(value, int):
        if value < 0:
            raise c.fail(f"{key}.overlap", f"must be 0 or more, not {value}")
        return Overlap(str(value), keys=value)
    m = _DURATION.match(value.strip())
    if not m:
        raise c.fail(
            f"{key}.overlap",
            f'{value!r} is not a duration: use a number and s, m, h or d ("90s", "5m")'
            " for a time cursor, or a whole number of keys for a numeric cursor",
        )
    return Overlap(value.strip(), seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])


RULE_KEYS = {
    "float_tolerance",
    "float_relative_tolerance",
    "timestamp_precision",
    "trailing_blanks",
    "empty_is_null",
    "case_insensitive",
    "ignore_columns",
}


def _rules(c: _Checker, raw: dict, key: str) -> Rules | None:
    """``[steps.rules]`` / ``[steps.overrides.NAME.rules]``: known differences that
    checksum validation accepts, each off unless set."""
    if "rules" not in raw:
        return None
    rkey = f"{key}.rules"
    table = c.table(raw, "rules", key)
    c.keys(table, RULE_KEYS, rkey)

    def number(name: str) -> float | None:
        if name not in table:
            return None
        value = table[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise c.fail(f"{rkey}.{name}", f"must be a number above 0, not {value!r}")
        return float(value)

    def flag(name: str) -> bool:
        value = table.get(name, False)
        if not isinstance(value, bool):
            raise c.fail(f"{rkey}.{name}", f"must be true or false, not {_tname(value)}")
        return value

    f_abs, f_rel = number("float_tolerance"), number("float_relative_tolerance")
    if f_abs is not None and f_rel is not None:
        raise c.fail(
            f"{rkey}.float_relative_tolerance",
            "set float_tolerance (absolute) or float_relative_tolerance, not both",
        )
    if f_rel is not None and f_rel >= 1:
        raise c.fail(f"{rkey}.float_relative_tolerance", f"must be below 1, not {f_rel!r}")
    return Rules(
        float_abs=f_abs,
        float_rel=f_rel,
        timestamp_precision=c.string(table, "timestamp_precision", rkey, choices=("s", "ms")),
        trailing_blanks=flag("trailing_blanks"),
        empty_is_null=flag("empty_is_null"),
        case_insensitive=flag("case_insensitive"),
        ignore_columns=c.strings(table, "ignore_columns", rkey),
    )


def _start(c: _Checker, raw: dict, key: str) -> str | int | None:
    """``start``: the watermark ``mode = "incremental"`` begins from (a time or a number)."""
    if "start" not in raw:
        return None
    value = raw["start"]
    if isinstance(value, bool) or not isinstance(value, (int, str, dt.datetime, dt.date)):
        raise c.fail(f"{key}.start", f"must be a date-time or a number, not {_tname(value)}")
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, str):
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            raise c.fail(
                f"{key}.start", f"{value!r} is not an ISO date-time like 2026-11-01T00:00:00"
            ) from None
    return value


def _check_mode(
    c: _Checker,
    key: str,
    mode: str,
    cursor: str | None,
    deletes: str,
    raw: dict,
    overrides: dict[str, TableOverride],
) -> None:
    """The keys that go with a step's mode, and the ones that do not."""
    table_cursors = [n for n, o in overrides.items() if o.cursor]
    if mode in INCREMENTAL_MODES:
        if cursor is None and not table_cursors:
            raise c.fail(
                key,
                f'mode = "{mode}" needs a cursor: the column whose value grows with every'
                ' change (cursor = "updated_at"), or an always-growing key for append-only'
                " tables; per table in [steps.overrides.NAME]",
            )
        if mode == "full+incremental" and (
            "start" in raw or any(o.start is not None for o in overrides.values())
        ):
            raise c.fail(
                f"{key}.start",
                '\'start\' is for mode = "incremental": "full+incremental" records its'
                " watermark when the full copy begins",
            )
        return
    if mode == "cdc":
        if cursor is not None or table_cursors:
            raise c.fail(f"{key}.cursor", 'mode = "cdc" reads the binary log and needs no cursor')
        if deletes != "ignore":
            raise c.fail(
                f"{key}.deletes",
                'mode = "cdc" applies the deletes it reads from the binary log: drop this key',
            )
    else:
        for what in ("cursor", "overlap", "start"):
            if what in raw or any(getattr(o, what) is not None for o in overrides.values()):
                raise c.fail(
                    f"{key}.{what}",
                    f'{what!r} needs mode = "full+incremental" or "incremental"'
                    f' (this step is mode = "{mode}")',
                )
        if deletes != "ignore":
            raise c.fail(
                f"{key}.deletes",
                f'deletes = "{deletes}" needs mode = "full+incremental" or "incremental"',
            )
    for what in ("overlap", "start"):
        if what in raw or any(getattr(o, what) is not None for o in overrides.values()):
            raise c.fail(f"{key}.{what}", f'{what!r} does not apply to mode = "{mode}"')


def _file_step(
    c: _Checker,
    raw: dict,
    key: str,
    name: str,
    index: int,
    batch: str,
    layer: str,
    d_validate: tuple[str, ...],
    d_workers: int,
) -> Step:
    """A step between two file endpoints: globs, modes, sizes and the file-only options."""
    for k in TABLE_KEYS:
        if k in raw:
            raise c.fail(f"{key}.{k}", f"{k!r} is for database steps; this step copies files")
    mode = c.string(raw, "mode", key, default="full", choices=FILE_MODES) or "full"
    deletes = c.string(raw, "deletes", key, default="ignore", choices=FILE_DELETES) or "ignore"
    if deletes != "ignore" and mode != "full+incremental":
        raise c.fail(
            f"{key}.deletes",
            f'deletes = "{deletes}" needs mode = "full+incremental" (this step is mode = "{mode}")',
        )
    part_size = _size(c, raw, "part_size", key, DEFAULT_PART_SIZE)
    if part_size < 5 << 20:
        raise c.fail(f"{key}.part_size", "must be at least 5MiB (the S3 minimum part size)")
    if part_size > 5 << 30:
        raise c.fail(f"{key}.part_size", "must be at most 5GiB (the S3 maximum part size)")
    include = c.strings(raw, "include", key, ("**",))
    exclude = c.strings(raw, "exclude", key)
    for where, globs in (("include", include), ("exclude", exclude)):
        for g in globs:
            if not g or g.startswith("/"):
                raise c.fail(
                    f"{key}.{where}", f"{g!r}: globs match paths relative to the source root"
                )
            try:
                glob_regex(g)
            except re.error as exc:
                raise c.fail(f"{key}.{where}", f"{g!r} is not a valid glob: {exc}") from None
    return Step(
        name=name,
        index=index,
        batch=batch,
        layer=layer,
        source=raw["source"],
        target=raw["target"],
        after=c.strings(raw, "after", key),
        tables=(),
        exclude_tables=(),
        mode=mode,
        chunk_rows=0,
        workers=c.integer(raw, "workers", key, d_workers),
        validate=c.strings(raw, "validate", key, d_validate, VALIDATIONS),
        if_exists="fail",
        deletes=deletes,
        kind="file",
        include=include,
        exclude=exclude,
        compare=c.string(raw, "compare", key, default="size-mtime", choices=COMPARES)
        or "size-mtime",
        part_size=part_size,
        multipart_threshold=_size(c, raw, "multipart_threshold", key, DEFAULT_MULTIPART_THRESHOLD),
        symlinks=c.string(raw, "symlinks", key, default="skip", choices=SYMLINKS) or "skip",
        empty_dirs=c.string(raw, "empty_dirs", key, default="skip", choices=EMPTY_DIRS) or "skip",
    )


def _file_location(conn: Connection, base: Path) -> tuple[str, str]:
    """Where a file connection's tree lives: (server identity, path), comparable between
    two connections of one scheme."""
    parts = urlsplit(conn.url)
    scheme = _scheme(conn.url).lower()
    if scheme == "file":
        path = Path(parts.path) if Path(parts.path).is_absolute() else base / parts.path
        return "file", os.path.realpath(path)
    if scheme == "s3":
        endpoint = str(conn.options.get("endpoint") or "aws").rstrip("/").lower()
        return f"s3 {endpoint}", f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
    host = (parts.hostname or "").lower()
    return f"{scheme} {host}:{parts.port or ''}", parts.path.rstrip("/") or "/"


def _file_overlap(a: Connection, b: Connection, base: Path) -> str | None:
    """A description of where two file connections share files, or None."""
    if _scheme(a.url).lower() != _scheme(b.url).lower():
        return None
    (ka, pa), (kb, pb) = _file_location(a, base), _file_location(b, base)
    if ka != kb:
        return None
    pa, pb = pa.rstrip("/") + "/", pb.rstrip("/") + "/"
    if pa.startswith(pb) or pb.startswith(pa):
        return "the same place" if pa == pb else "one lies inside the other"
    return None


def _size(c: _Checker, raw: dict, name: str, key: str, default: int) -> int:
    """A byte size: an integer, or a string such as ``"16MiB"``, ``"64MB"``, ``"1G"``."""
    where = f"{key}.{name}"
    if name not in raw:
        return default
    value = raw[name]
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise c.fail(where, "must be a positive number of bytes")
        return value
    m = _SIZE.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise c.fail(where, f'{value!r} is not a size (bytes, or like "16MiB", "64MB")')
    out = int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
    if out < 1:
        raise c.fail(where, "must be a positive number of bytes")
    return out


def _declared_options(url: str) -> dict[str, type]:
    """The options a file connector accepts (its class's ``OPTIONS``)."""
    from migrate.registry import endpoint_class

    try:
        cls = endpoint_class(url)
    except PlanError:
        return {}
    return dict(getattr(cls, "OPTIONS", {}))


def _check_options(
    c: _Checker, key: str, options: dict, declared: dict[str, type], inline: set[str]
) -> None:
    """Each option is one the connector declares, of its type. ``inline`` are those
    written beside ``url`` (the others came from ``options = {...}``)."""
    for k, v in options.items():
        where = f"{key}.{k}" if k in inline else f"{key}.options.{k}"
        if k not in declared:
            allowed = ", ".join(sorted(declared)) or "none"
            raise c.fail(where, f"unknown option {k!r} (allowed: {allowed})")
        want = declared[k]
        ok = isinstance(v, want) and not (want is int and isinstance(v, bool))
        if not ok:
            raise c.fail(
                where, f"must be a {_TYPE_NAMES.get(want, want.__name__)}, not {_tname(v)}"
            )


_TYPE_NAMES = {str: "string", int: "integer", bool: "boolean (true/false)", float: "number"}


def _check_url(c: _Checker, key: str, url: str) -> None:
    """A URL must split into its parts; the message never repeats it (it may hold secrets)."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:  # its text would quote a piece of the URL, which may be a secret
        raise c.fail(
            key,
            "not a valid URL; percent-encode special characters in"
            " the user name and password (@ as %40, : as %3A, / as %2F)",
        ) from None
    if not parts.scheme:
        raise c.fail(
            key, "not a URL: it needs a scheme such as mysql://, postgresql:// or sqlite:///"
        )


def _find_cycle(graph: dict[str, tuple[str, ...]]) -> list[str] | None:
    """Return one cycle of ``after`` edges (in dependency order), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else url.split(":", 1)[0]


def _known_schemes() -> list[str]:
    from migrate.registry import known_schemes

    return known_schemes()


def _safe_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _url_passwords(connections: dict[str, Connection]) -> set[str]:
    out = set()
    for conn in connections.values():
        m = re.search(r"://[^:/@]*:([^@/]*)@", conn.url)
        if m and m.group(1):
            out.add(m.group(1))
    return out


def redact(text: str, secrets: frozenset[str] | set[str]) -> str:
    """Replace every secret value in ``text`` by ``***`` (longest first)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return text
