"""Order a plan into waves, and a database step's tables into foreign-key order.

Steps run by batch (file order), then layer (application, platform, data: the data layer
last), then ``after`` dependencies, then file order. A wave is one (batch, layer) pair.
An ``after`` that points at a step of a later wave contradicts that order; the plan
checker (``migrate/plan.py``) refuses it. Inside a database step, tables load parents
first; foreign keys are created after every table is loaded, so a cycle only changes the
order, never blocks the load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from migrate.errors import PlanError
from migrate.plan import LAYERS, Plan, Step
from migrate.schema import TableSchema


@dataclass(frozen=True)
class Wave:
    batch: str
    layer: str
    steps: tuple[Step, ...]

    @property
    def label(self) -> str:
        return f"batch {self.batch} · layer {self.layer}"


def waves(plan: Plan) -> list[Wave]:
    """The plan's steps grouped and ordered into waves (see the module docstring)."""

    def rank(step: Step) -> tuple[int, int]:
        return plan.batches.index(step.batch), LAYERS.index(step.layer)

    out = []
    groups: dict[tuple[int, int], list[Step]] = {}
    for step in plan.steps:
        groups.setdefault(rank(step), []).append(step)
    for r in sorted(groups):
        members = groups[r]
        names = {s.name for s in members}
        ordered: list[Step] = []
        placed: set[str] = set()
        while len(ordered) < len(members):
            for step in members:  # file order among the ready ones
                if step.name in placed:
                    continue
                if all(d in placed or d not in names for d in step.after):
                    ordered.append(step)
                    placed.add(step.name)
                    break
        out.append(Wave(plan.batches[r[0]], LAYERS[r[1]], tuple(ordered)))
    return out


def select_steps(
    plan: Plan,
    batches: Sequence[str] = (),
    steps: Sequence[str] = (),
    shown: str | Path | None = None,
) -> tuple[str, ...]:
    """The step names ``--batch`` and ``--step`` choose: ``()`` means every step, and
    ``("",)`` a choice that leaves none (a batch without any of the given steps). A name
    the plan lacks is a :class:`PlanError` naming the plan file as ``shown`` (default:
    its path) and the names it has."""
    where = shown if shown is not None else plan.path
    names = [s.name for s in plan.steps]
    for name in steps:
        if name not in names:
            raise PlanError(f"--step {name}: no such step in {where} (steps: {', '.join(names)})")
    for name in batches:
        if name not in plan.batches:
            raise PlanError(
                f"--batch {name}: no such batch in {where} (batches: {', '.join(plan.batches)})"
            )
    if not batches:
        return tuple(steps)
    in_batches = [s.name for s in plan.steps if s.batch in batches]
    return tuple(s for s in in_batches if not steps or s in steps) or ("",)


def foreign_key_order(schemas: list[TableSchema]) -> tuple[list[TableSchema], list[str]]:
    """Parents before children, otherwise name order; returns the order and any cycles.

    When every remaining table waits on another, the tables of one foreign-key cycle (a
    strongly connected group that waits on nothing outside itself) are placed in name
    order and reported as ``"a, b"``; tables that merely depend on a cycle are not named.
    """
    by_name = {s.name: s for s in schemas}
    deps = {
        s.name: {
            fk.ref_table
            for fk in s.foreign_keys
            if fk.ref_table in by_name and fk.ref_table != s.name
        }
        for s in schemas
    }
    ordered: list[TableSchema] = []
    placed: set[str] = set()
    cycles: list[str] = []
    remaining = sorted(by_name)
    while remaining:
        ready = [n for n in remaining if deps[n] <= placed]
        if not ready:
            group = _first_closed_cycle(remaining, deps, placed)
            cycles.append(", ".join(group))
            ready = group
        for n in ready:
            ordered.append(by_name[n])
            placed.add(n)
        remaining = [n for n in remaining if n not in placed]
    return ordered, cycles


def _first_closed_cycle(
    remaining: list[str], deps: dict[str, set[str]], placed: set[str]
) -> list[str]:
    """The first (by name) strongly connected group whose unplaced deps are all inside it."""
    waiting = {n: deps[n] - placed for n in remaining}

    def reach(start: str) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for d in waiting[todo.pop()]:
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen

    reachable = {n: reach(n) for n in remaining}
    for n in remaining:  # name order
        group = sorted(m for m in reachable[n] if n in reachable[m])
        if len(group) > 1 and all(reachable[m] <= set(group) for m in group):
            return group
    return [remaining[0]]  # unreachable for a finite graph; keeps the loop total
