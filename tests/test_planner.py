"""The planner: waves by batch, then layer, then ``after``, then file order; foreign-key order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate.errors import PlanError
from migrate.plan import Plan, load_plan
from migrate.planner import foreign_key_order, waves
from migrate.schema import Column, ForeignKey, PType, TableSchema

CONNECTIONS = """\
version = 1
name = "p"

[connections]
src = { url = "sqlite:///src.db" }
dst = { url = "sqlite:///dst.db" }
"""


def _plan(tmp_path: Path, batches: list[str], steps: list[dict[str, object]]) -> Plan:
    text = CONNECTIONS
    for batch in batches:
        text += f'\n[[batches]]\nname = "{batch}"\n'
    for step in steps:
        text += '\n[[steps]]\nsource = "src"\ntarget = "dst"\n'
        for key, value in step.items():
            if isinstance(value, list):
                text += f"{key} = {json.dumps(value)}\n"
            else:
                text += f'{key} = "{value}"\n'
    path = tmp_path / "plan.toml"
    path.write_text(text, encoding="utf-8")
    return load_plan(path)


def _order(plan: Plan) -> list[tuple[str, str, list[str]]]:
    return [(w.batch, w.layer, [s.name for s in w.steps]) for w in waves(plan)]


def test_batches_run_in_file_order_of_the_batches_not_of_the_steps(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        ["office", "business"],
        [
            {"name": "erp", "batch": "business"},
            {"name": "wiki", "batch": "office"},
            {"name": "crm", "batch": "business"},
            {"name": "mail", "batch": "office"},
        ],
    )
    assert _order(plan) == [
        ("office", "platform", ["wiki", "mail"]),
        ("business", "platform", ["erp", "crm"]),
    ]


def test_layers_application_then_platform_then_data_inside_a_batch(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        ["one", "two"],
        [
            {"name": "files", "batch": "one", "layer": "data"},
            {"name": "db", "batch": "one", "layer": "platform"},
            {"name": "app", "batch": "one", "layer": "application"},
            {"name": "later-app", "batch": "two", "layer": "application"},
            {"name": "db2", "batch": "one"},  # a table step defaults to platform
        ],
    )
    assert _order(plan) == [
        ("one", "application", ["app"]),
        ("one", "platform", ["db", "db2"]),
        ("one", "data", ["files"]),
        ("two", "application", ["later-app"]),
    ]
    assert waves(plan)[0].label == "batch one · layer application"


def test_after_orders_steps_inside_a_wave_then_file_order(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        [],
        [
            {"name": "a", "after": ["d"]},
            {"name": "b"},
            {"name": "c", "after": ["a", "b"]},
            {"name": "d"},
            {"name": "e"},
        ],
    )
    # d has no dependency but a needs it; b and e keep file order among the ready ones
    (wave,) = waves(plan)
    names = [s.name for s in wave.steps]
    assert names == ["b", "d", "a", "c", "e"]
    for step in wave.steps:
        for dep in step.after:
            assert names.index(dep) < names.index(step.name)
    assert (wave.batch, wave.layer) == ("default", "platform")


def test_without_after_file_order_is_kept(tmp_path: Path) -> None:
    names = ["zeta", "alpha", "mid", "beta"]
    plan = _plan(tmp_path, [], [{"name": n} for n in names])
    assert _order(plan) == [("default", "platform", names)]


def test_after_a_step_of_an_earlier_wave_is_allowed(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        ["first", "second"],
        [
            {"name": "late", "batch": "second", "after": ["early"]},
            {"name": "early", "batch": "first", "layer": "data"},
        ],
    )
    assert _order(plan) == [("first", "data", ["early"]), ("second", "platform", ["late"])]


@pytest.mark.parametrize(
    "dep, message",
    [
        (
            {"name": "dep", "batch": "second"},
            "step 'dep' runs later (second/platform) than this step (first/platform)",
        ),
        (
            {"name": "dep", "batch": "first", "layer": "data"},
            "step 'dep' runs later (first/data) than this step (first/platform)",
        ),
    ],
    ids=["later-batch", "later-layer"],
)
def test_after_a_step_of_a_later_wave_is_a_plan_error(
    tmp_path: Path, dep: dict[str, object], message: str
) -> None:
    with pytest.raises(PlanError) as info:  # refused when the plan is read, before any run
        _plan(
            tmp_path, ["first", "second"], [{"name": "s", "batch": "first", "after": ["dep"]}, dep]
        )
    assert info.value.key == "steps.s.after"
    assert info.value.exit_code == 2
    assert message in str(info.value)


# -- foreign-key order ---------------------------------------------------------------------
def _table(name: str, *refs: str) -> TableSchema:
    cols = [Column("id", PType("int64"), nullable=False)]
    fks = []
    for ref in refs:
        cols.append(Column(f"{ref}_id", PType("int64")))
        fks.append(ForeignKey(f"fk_{name}_{ref}", (f"{ref}_id",), ref, ("id",)))
    return TableSchema(name, cols, primary_key=("id",), foreign_keys=fks)


def _names(tables: list[TableSchema]) -> list[str]:
    return [t.name for t in tables]


def test_foreign_key_order_puts_parents_first() -> None:
    schemas = [
        _table("order_items", "orders", "products"),
        _table("orders", "customers"),
        _table("customers"),
        _table("products"),
    ]
    ordered, cycles = foreign_key_order(schemas)
    names = _names(ordered)
    assert cycles == []
    assert sorted(names) == sorted(_names(schemas))
    for t in ordered:
        for fk in t.foreign_keys:
            assert names.index(fk.ref_table) < names.index(t.name), (fk.ref_table, t.name)
    assert names[:2] == ["customers", "products"]
    assert names[-1] == "order_items"


def test_foreign_key_order_keeps_name_order_otherwise() -> None:
    schemas = [_table("zebra"), _table("apple"), _table("mango"), _table("banana")]
    ordered, cycles = foreign_key_order(schemas)
    assert _names(ordered) == ["apple", "banana", "mango", "zebra"]
    assert cycles == []
    # a child whose parent sorts after it still comes after the parent
    ordered, _ = foreign_key_order([_table("a_child", "z_parent"), _table("b"), _table("z_parent")])
    assert _names(ordered) == ["b", "z_parent", "a_child"]


def test_self_reference_and_tables_outside_the_step_are_not_dependencies() -> None:
    schemas = [_table("employees", "employees", "departments_elsewhere"), _table("audit")]
    ordered, cycles = foreign_key_order(schemas)
    assert _names(ordered) == ["audit", "employees"]
    assert cycles == []


def test_foreign_key_cycle_is_reported_and_every_table_is_returned() -> None:
    schemas = [
        _table("a", "b"),
        _table("b", "a"),
        _table("c"),
        _table("d", "a"),  # depends on the cycle, is not part of it
    ]
    ordered, cycles = foreign_key_order(schemas)
    names = _names(ordered)
    assert sorted(names) == ["a", "b", "c", "d"]
    assert len(names) == 4
    assert names[0] == "c"
    assert names.index("a") < names.index("d")
    assert cycles == ["a, b"]  # only the tables of the cycle are named


def test_two_separate_cycles_are_both_reported() -> None:
    schemas = [_table("a", "b"), _table("b", "a"), _table("x", "y"), _table("y", "x")]
    ordered, cycles = foreign_key_order(schemas)
    assert sorted(_names(ordered)) == ["a", "b", "x", "y"]
    assert cycles == ["a, b", "x, y"]
