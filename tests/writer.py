"""A source writer process for the catch-up tests: inserts, updates and deletes rows of a
MariaDB table continuously until told to stop.

Run as ``python tests/writer.py URL TABLE STOP_FILE PROGRESS_FILE SEED``. The table must
have the shape of :data:`WRITER_DDL`. Each loop commits one small transaction (one insert,
one update, one delete, or an update of a few rows together) in autocommit-free
transactions through PyMySQL; every few operations the number done so far is written to
PROGRESS_FILE (replaced atomically), so a test can wait until the writer has really
changed the source between two runs. The writer stops when STOP_FILE exists and prints a
JSON summary ``{"inserts": N, "updates": N, "deletes": N}`` on stdout.

Updates change ``qty``, ``amount`` or ``note`` and leave ``updated_at`` to its ``ON UPDATE
CURRENT_TIMESTAMP(6)``, as an application would.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import pymysql
import sqlalchemy as sa

#: ``{table}`` is the table name.
WRITER_DDL = """CREATE TABLE {table} (
    id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(60) NOT NULL,
    amount DECIMAL(12,2) NULL,
    qty INT NOT NULL DEFAULT 0,
    note TEXT NULL,
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
        ON UPDATE CURRENT_TIMESTAMP(6),
    INDEX {table}_updated_ix (updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
WRITER_COLUMNS = ["id", "name", "amount", "qty", "note", "updated_at"]
WRITER_KINDS = ["int", "text", "decimal:2", "int", "text", "datetime"]


def _connect(url: str) -> pymysql.connections.Connection:
    u = sa.make_url(url)
    return pymysql.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 3306,
        user=u.username,
        password=u.password or "",
        database=u.database,
        charset="utf8mb4",
        autocommit=False,
    )


def _note(rng: random.Random) -> str | None:
    return None if rng.random() < 0.3 else f"備考 {rng.randrange(10**6)} tab\t'q'"


def main(url: str, table: str, stop: Path, progress: Path, seed: int) -> None:
    rng = random.Random(seed)
    conn = _connect(url)
    cur = conn.cursor()
    done = {"inserts": 0, "updates": 0, "deletes": 0}
    ops = 0
    while not stop.exists():
        cur.execute(f"SELECT MIN(id), MAX(id) FROM {table}")
        lo, hi = cur.fetchone()
        lo, hi = lo or 1, hi or 1
        roll = rng.random()
        if roll < 0.35:
            cur.execute(
                f"INSERT INTO {table} (name, amount, qty, note) VALUES (%s, %s, %s, %s)",
                (
                    f"新 {rng.randrange(10**6)}",
                    f"{rng.randrange(10**6)}.{rng.randrange(100):02d}",
                    rng.randrange(1000),
                    _note(rng),
                ),
            )
            done["inserts"] += 1
        elif roll < 0.7:
            cur.execute(
                f"UPDATE {table} SET qty = qty + 1, note = %s WHERE id = %s",
                (_note(rng), rng.randint(lo, hi)),
            )
            done["updates"] += cur.rowcount
        elif roll < 0.85:
            cur.execute(f"DELETE FROM {table} WHERE id = %s", (rng.randint(lo, hi),))
            done["deletes"] += cur.rowcount
        else:  # several rows in one transaction
            for _ in range(5):
                cur.execute(
                    f"UPDATE {table} SET amount = %s WHERE id = %s",
                    (f"{rng.randrange(10**5)}.{rng.randrange(100):02d}", rng.randint(lo, hi)),
                )
                done["updates"] += cur.rowcount
        conn.commit()
        ops += 1
        if ops % 20 == 0:
            tmp = progress.with_suffix(".tmp")
            tmp.write_text(str(ops))
            os.replace(tmp, progress)
        time.sleep(0.002)
    conn.close()
    print(json.dumps(done))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
