"""The type matrix (connectors/sql/type_matrix.py) is the contract of every engine module.

For each source row: the source engine reads the native type as the listed portable type,
with the listed loss. For each row and each target engine: the DDL type the target
creates is the matrix's cell, and its loss notes are the cell's, exactly. No server is
needed: types are built as reflection builds them and compiled with each dialect. The
README's matrix must be the generated one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlrecorder import offline

from connectors.sql import type_matrix as tm
from migrate.registry import endpoint_class
from migrate.schema import Column, TableSchema

URLS = {
    "mysql": "mysql+pymysql://u@127.0.0.1/db",
    "mssql": "mssql+pyodbc://u@127.0.0.1:1433/db?driver=FreeTDS",
    "oracle": "oracle+oracledb://u@127.0.0.1:1521/?service_name=FREEPDB1",
    "postgresql": "postgresql+psycopg://u@127.0.0.1/db",
}
VERSIONS = {"mysql": (10, 11, 9), "mssql": (16, 0), "oracle": (23, 0), "postgresql": (15, 0)}
CAPS_ENGINE = {"mysql": "mysql", "mssql": "mssql", "oracle": "oracle", "postgresql": "postgresql"}


def endpoint(engine: str):
    ep, _ = offline(endpoint_class(URLS[engine]), URLS[engine], VERSIONS[engine])
    return ep


def _id(s: tm.Source) -> str:
    return f"{s.engine}:{s.native}"


@pytest.mark.parametrize("source", tm.SOURCES, ids=_id)
def test_source_type_reads_as_its_portable_type(source: tm.Source) -> None:
    ep = endpoint(source.engine)
    ptype, note = ep.portable_type(tm.parse_native(source.engine, source.native))
    assert str(ptype) == source.ptype
    assert (note or "") == source.loss


def _portable(source: tm.Source):
    ep = endpoint(source.engine)
    ptype, note = ep.portable_type(tm.parse_native(source.engine, source.native))
    col = Column("c", ptype, nullable=True)
    if note:
        col.notes.append(note)
    return TableSchema("t", [col]), ep.capabilities


@pytest.mark.parametrize("target", tm.ENGINES)
@pytest.mark.parametrize("source", tm.SOURCES, ids=_id)
def test_target_creates_the_matrix_type(source: tm.Source, target: str) -> None:
    schema, caps = _portable(source)
    ep = endpoint(target)
    tschema = ep.target_schema(schema, caps, "t")
    col = tschema.columns[0]
    ddl = str(ep.native_type_for(col).compile(dialect=ep.dialect))
    want_ddl, want_loss = tm.cell(source, target)
    assert (ddl, "; ".join(col.notes)) == (want_ddl, want_loss)


def test_every_portable_type_a_source_gives_has_a_target_row() -> None:
    for s in tm.SOURCES:
        assert tm.target_for(s.ptype).stored.keys() == set(tm.ENGINES), s


def test_readme_matrix_is_the_generated_one() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- type-matrix:begin -->\n(.*?)<!-- type-matrix:end -->", readme, re.S)
    assert m, "README.md has no type-matrix section"
    assert m.group(1) == tm.markdown(), (
        "README.md's type matrix is stale: paste `python -m connectors.sql.type_matrix`"
    )
