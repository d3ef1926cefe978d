"""``migrate check PLAN --pilot N``: copy a little of everything for real, then undo it.

Contracts:

- The pilot copies the first N rows (in key order) of every selected table and N files
  of every selected file step into the real targets — the final tables and paths, or
  scratch ones with ``prefix`` (tables ``<prefix><name>``, files under ``<prefix>/``) —
  checks them (chunk counts and a checksum of the copied key range inside each database;
  each file's hash as it is written), then rolls the pilot run back through the same
  undo records a run keeps (:mod:`migrate.rollback`), so the targets are as before.
- The plan's own state is never touched: the pilot works on a copy of it in a temporary
  folder (so tables an earlier run created are known as the plan's), removed afterwards.
- A file prefix is a folder below the target's root (``..`` segments are refused); the
  prefix folders the pilot made on a file system are removed with its copies.
- An interrupt (Ctrl-C, SIGTERM) stops the pilot: what it copied is removed, then
  :class:`~migrate.errors.InterruptedRun` is raised (exit 5); one during that removal
  keeps the pilot's state and rollback scripts, and the error says where.
- A ``mode = "incremental"`` step adopts target tables loaded some other way: without a
  prefix it is left out of the pilot (its tables are not the plan's to copy into), with
  the reason; with a prefix its rows go into the scratch tables like any other step's.
- The measured speed (rows and bytes per second, per step) is returned for the survey's
  estimates; anything that stopped the pilot is returned as a blocker.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from migrate.copier import Progress
from migrate.errors import InterruptedRun, MigrateError, PlanError
from migrate.plan import Plan, Step, TableOverride, redact
from migrate.progress import LogProgress


def pilot_plan(plan: Plan, state_path: Path, prefix: str | None) -> Plan:
    """The plan a pilot runs: full copies only, its own state, scratch names if asked."""
    if prefix is not None and any(part in ("", ".", "..") for part in prefix.strip("/").split("/")):
        raise PlanError(
            f"--pilot-prefix {prefix!r}: give a name, or folders below the target's root"
            " (no empty, . or .. parts)"
        )
    steps = []
    connections = dict(plan.connections)
    for step in plan.steps:
        changes: dict[str, Any] = {
            "mode": "full",
            # tables: chunk counts (and the runner's pilot checksum); files: each file's
            # hash is checked as it is written, a comparison of whole trees means nothing
            "validate": ("count",) if step.kind == "table" else (),
            "deletes": "ignore",
        }
        if prefix and step.kind == "table":
            overrides = dict(step.overrides)
            changes["overrides"] = _prefixed(step, overrides, prefix)
        if prefix and step.kind == "file":  # (two steps may share a target)
            conn = plan.connections[step.target]
            connections[step.target] = replace(conn, url=_under(conn.url, prefix))
        steps.append(replace(step, **changes))
    return replace(plan, state_path=state_path, steps=tuple(steps), connections=connections)


def _prefixed(step: Step, overrides: dict[str, TableOverride], prefix: str) -> Any:
    """Overrides renaming every table of the step to ``prefix + name`` (the table list is
    known only from the source, so a mapping that renames on lookup)."""

    class Renaming(dict):  # type: ignore[type-arg]
        def get(self, name: str, default: Any = None) -> Any:
            base = overrides.get(name) or TableOverride()
            return replace(base, rename=prefix + (base.rename or name))

    return Renaming(overrides)


def _under(url: str, prefix: str) -> str:
    """``url`` with ``prefix`` appended to its path (the root the file step writes to).

    Written out by hand: ``urlunsplit`` makes a relative ``file:`` path absolute
    (``file:archive`` would become ``file:///archive``)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + "/" + quote(prefix.strip("/"), safe="/")
    authority = url[len(parts.scheme) + 1 :].startswith("//")
    return (
        f"{parts.scheme}:"
        + (f"//{parts.netloc}" if authority else "")
        + path
        + (f"?{parts.query}" if parts.query else "")
        + (f"#{parts.fragment}" if parts.fragment else "")
    )


def _adopting(plan: Plan, steps: tuple[str, ...], prefix: str | None) -> list[str]:
    """The selected ``mode = "incremental"`` steps a pilot without a prefix leaves out."""
    if prefix:
        return []
    return [
        s.name
        for s in plan.steps
        if s.kind == "table" and s.mode == "incremental" and (not steps or s.name in steps)
    ]


def _prefix_folders(
    plan: Plan, endpoints: Any, steps: tuple[str, ...], prefix: str | None
) -> list[tuple[str, list[str]]]:
    """Per file target the selected steps write to: the prefix folders (``a``, ``a/b``)
    that are not there yet, so the pilot removes those it made."""
    if not prefix:
        return []
    parts = prefix.strip("/").split("/")
    levels = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    out = []
    targets = {s.target for s in plan.steps if s.kind == "file" and (not steps or s.name in steps)}
    for name in sorted(targets):
        try:
            missing = [p for p in levels if endpoints.get(name).stat(p) is None]
        except MigrateError:
            continue  # unreachable: the pilot's own run reports it
        if missing:
            out.append((name, missing))
    return out


def _remove_prefix_folders(endpoints: Any, made: list[tuple[str, list[str]]]) -> None:
    """Remove the prefix folders the pilot made, deepest first, while they are empty
    folders (one that holds something else now stays)."""
    for name, folders in made:
        for folder in reversed(folders):
            try:
                ep = endpoints.get(name)
                info = ep.stat(folder)
                if info is not None and info.is_dir:  # object stores have no folders
                    ep.delete(folder)
            except MigrateError:
                break


def _copy_state(src: Path, dst: Path) -> None:
    if not src.exists():
        return
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()


def pilot_run(
    plan: Plan,
    rows: int,
    *,
    steps: tuple[str, ...] = (),
    prefix: str | None = None,
    quiet: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the pilot (see the module contract); returns ``{"rows": N, "prefix": ...,
    "run": <the run's summary>, "measured": {step: {"rows", "bytes", "seconds"}},
    "rolled_back": bool, "blockers": [...]}``."""
    from migrate.report import run_to_json
    from migrate.rollback import rollback
    from migrate.runner import Endpoints, Runner
    from migrate.state import RunLock, State

    out: dict[str, Any] = {
        "rows": rows,
        "prefix": prefix,
        "measured": {},
        "rolled_back": False,
        "blockers": [],
        "steps": {},
    }
    lock = RunLock(plan.state_path)  # no run may change the targets meanwhile
    plan.state_path.parent.mkdir(parents=True, exist_ok=True)
    lock.acquire()
    folder = Path(tempfile.mkdtemp(prefix="migrate-pilot-"))
    try:
        state_path = folder / "pilot.db"
        pplan = pilot_plan(plan, state_path, prefix)
        _copy_state(plan.state_path, state_path)
        state = State(state_path, plan.name)
        real = Endpoints(plan, workers=1, dry_run=False)  # the targets, without the prefix
        try:
            made = _prefix_folders(plan, real, steps, prefix)
            shown = progress or (Progress() if quiet else LogProgress())
            adopted = _adopting(plan, steps, prefix)
            for name in adopted:
                out["steps"][name] = {
                    "status": "skipped",
                    "error": 'mode = "incremental": its tables exist on the target and are'
                    " not the plan's to copy into; --pilot-prefix P pilots it into scratch"
                    " tables",
                    "tables": [],
                    "files": None,
                }
            only = steps
            if adopted:
                chosen = (s.name for s in plan.steps if not steps or s.name in steps)
                only = tuple(n for n in chosen if n not in adopted) or ("",)
            runner = Runner(
                pplan,
                state,
                shown,
                only_steps=only,
                continue_on_error=True,
                pilot=rows,
            )
            result = runner.run(f"migrate check --pilot {rows}")
            summary = run_to_json(result)
            for s in result.steps:
                entry = _measured(s)
                if entry is not None:
                    out["measured"][s.name] = entry
                out["steps"][s.name] = {
                    "status": s.status,
                    "error": redact(s.error, plan.secrets) if s.error else None,
                    "tables": [
                        {
                            "table": t.name,
                            "target_table": t.target_name,
                            "rows": t.target_rows,
                            "seconds": round(t.seconds, 3),
                            "status": t.status,
                            "notes": [n for n in t.notes if n.startswith("pilot")],
                        }
                        for t in s.tables
                    ],
                    "files": (
                        {
                            "copied": s.files.copied,
                            "bytes": s.files.copied_bytes,
                            "seconds": round(s.files.seconds, 3),
                        }
                        if s.files is not None
                        else None
                    ),
                }
                if s.status in ("failed", "differences"):
                    why = s.error or next(
                        (t.error or "; ".join(t.notes) for t in s.tables if t.status != "done"),
                        "the pilot's check found differences",
                    )
                    out["blockers"].append(
                        {
                            "level": "blocker",
                            "kind": "pilot",
                            "where": f"step {s.name}",
                            "message": f"pilot {s.status}: {redact(why, plan.secrets)}",
                        }
                    )
            out["status"] = summary["status"]
            endpoints = Endpoints(pplan, workers=1, dry_run=False)
            try:
                undone = rollback(pplan, state, endpoints, run_id=result.run_id)
            except KeyboardInterrupt:
                raise InterruptedRun(
                    "interrupted while the pilot removed what it copied: its state and"
                    f" rollback scripts are kept in {folder}"
                ) from None
            finally:
                endpoints.close()
            out["rolled_back"] = undone.error is None
            out["undone"] = len(undone.done)
            if undone.error is None:
                _remove_prefix_folders(real, made)
            else:
                out["blockers"].append(
                    {
                        "level": "blocker",
                        "kind": "pilot",
                        "where": "pilot",
                        "message": f"the pilot could not remove what it copied: {undone.error};"
                        f" its state and rollback scripts are kept in {folder}",
                        "scripts": undone.scripts,
                    }
                )
            if result.status == "interrupted":
                removed = (
                    "what it had copied was removed"
                    if undone.error is None
                    else out["blockers"][-1]["message"]
                )
                raise InterruptedRun(f"interrupted: the pilot stopped; {removed}")
        finally:
            real.close()
            state.close()
    finally:
        lock.release()
        if out["rolled_back"] or "status" not in out:
            shutil.rmtree(folder, ignore_errors=True)
    return out


def _measured(step: Any) -> dict[str, Any] | None:
    """Rows, bytes and seconds the pilot measured for one step (None: nothing copied)."""
    if step.files is not None:
        f = step.files
        if not f.copied or not f.seconds:
            return None
        return {"rows": 0, "files": f.copied, "bytes": f.copied_bytes, "seconds": f.seconds}
    copied = [t for t in step.tables if t.target_rows and t.seconds]
    if not copied:
        return None
    return {
        "rows": sum(t.target_rows or 0 for t in copied),
        "bytes": None,
        "seconds": sum(t.seconds for t in copied),
    }
