"""The README's quick start works from a clean checkout in a fresh virtualenv.

The command is taken from README.md itself (the ```bash block after the
``<!-- quickstart -->`` marker), so the test and the documentation cannot drift apart.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def quickstart_command() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- quickstart -->\s*```bash\n(.+?)```", text, re.S)
    assert m, "README.md has no ```bash block after <!-- quickstart -->"
    return m.group(1).strip()


def clean_checkout(dest: Path) -> Path:
    """The files git tracks, as they are in the work tree (no venv, no state, no caches)."""
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def test_readme_quickstart_runs_the_demo_in_a_fresh_venv(tmp_path: Path) -> None:
    repo = clean_checkout(tmp_path / "migrate")
    assert not (repo / ".venv").exists()
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", quickstart_command()],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every count and checksum matches" in proc.stdout
    for table in ("customers", "products", "orders", "order_items", "audit_log"):
        assert re.search(rf"^\s*{table}\s.*\bmatch\b", proc.stdout, re.M), table
    # the chunk listing shows per-chunk counts on both sides
    assert re.search(r"#2 \(500, 1000\] 500 = 500", proc.stdout)
    legacy = sqlite3.connect(repo / "plans/.demo/legacy.db")
    cloud = sqlite3.connect(repo / "plans/.demo/cloud.db")
    for table in ("customers", "products", "orders", "order_items", "audit_log"):
        q = f"SELECT * FROM {table} ORDER BY 1, 2"
        assert _numbers(cloud.execute(q).fetchall()) == _numbers(legacy.execute(q).fetchall())


def _numbers(rows: list[tuple]) -> list[tuple]:
    """Decimals as numbers: the legacy file's DECIMAL stores 41428.3 as a REAL, the target
    keeps the text '41428.30' (every digit, see connectors/sql/sqlite.py)."""

    def norm(v: object) -> object:
        if isinstance(v, float):
            return Decimal(repr(v)).normalize()
        if isinstance(v, str) and re.fullmatch(r"-?\d+\.\d+", v):
            return Decimal(v).normalize()
        return v

    return [tuple(norm(v) for v in row) for row in rows]
