"""The database fixtures of conftest.py give fresh, working databases."""

from __future__ import annotations

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
