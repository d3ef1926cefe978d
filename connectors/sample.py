"""``sample:///path/legacy.db``: a SQLite source that builds itself the first time.

It lets the demo (and anyone trying the tool) run with no server: when the file is
missing, a small "legacy ERP" database is generated into it, deterministically: related
tables with foreign keys, a composite key, a table without a key, NULLs, Chinese text,
decimals and microsecond timestamps. After that it is an ordinary SQLite source. Under
``--dry-run`` nothing is written: the database is built in a temporary folder instead.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.sql.sqlite import SQLiteEndpoint, format_datetime
from migrate.errors import ConnectorError

SCHEMA = """
CREATE TABLE customers (
    id INTEGER NOT NULL PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(200),
    city VARCHAR(50) NOT NULL DEFAULT '北京',
    credit_limit DECIMAL(12,2),
    created_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX ux_customers_email ON customers (email);
CREATE TABLE products (
    sku VARCHAR(20) NOT NULL PRIMARY KEY,
    title VARCHAR(200) NOT NULL,
    price DECIMAL(10,2) NOT NULL,
    weight_kg REAL,
    stock INTEGER NOT NULL DEFAULT 0,
    picture BLOB
);
CREATE TABLE orders (
    id INTEGER NOT NULL PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    ordered_at DATETIME NOT NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'new',
    total DECIMAL(14,2) NOT NULL,
    note TEXT
);
CREATE INDEX ix_orders_customer ON orders (customer_id);
CREATE INDEX ix_orders_ordered_at ON orders (ordered_at);
CREATE TABLE order_items (
    order_id INTEGER NOT NULL REFERENCES orders (id),
    line_no INTEGER NOT NULL,
    sku VARCHAR(20) NOT NULL REFERENCES products (sku),
    quantity INTEGER NOT NULL,
    unit_price DECIMAL(10,2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE audit_log (
    happened_at DATETIME NOT NULL,
    actor VARCHAR(50),
    action TEXT NOT NULL
);
"""

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰"]
CITIES = ["北京", "上海", "广州", "深圳", "杭州", "成都", "Wuhan", "Xi'an", "Hong Kong"]
WORDS = [
    "钢笔",
    "笔记本",
    "茶杯",
    "Desk lamp",
    "Stapler",
    "打印纸",
    "文件夹",
    "USB cable",
    "显示器",
    "Keyboard",
    "鼠标垫",
    "白板笔",
]
STATUSES = ["new", "paid", "shipped", "delivered", "cancelled"]


def build(path: Path, scale: int = 1) -> None:
    """Write the sample database to ``path`` (atomically: a temp file, then a rename)."""
    rng = random.Random(20261123)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".building")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    db.executescript(SCHEMA)
    start = dt.datetime(2019, 1, 1, 8, 0, 0)

    def stamp() -> str:
        return format_datetime(
            start
            + dt.timedelta(
                seconds=rng.randrange(0, 5 * 365 * 86400), microseconds=rng.randrange(0, 1_000_000)
            )
        )

    n_customers, n_products, n_orders = 500 * scale, 120 * scale, 3000 * scale
    customers = []
    for i in range(1, n_customers + 1):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        email = None if i % 7 == 0 else f"user{i}@example.com"
        credit = None if i % 11 == 0 else f"{rng.randrange(0, 5_000_000) / 100:.2f}"
        customers.append((i, name, email, rng.choice(CITIES), credit, stamp()))
    db.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?)", customers)
    products = []
    for i in range(1, n_products + 1):
        sku = f"SKU-{i:05d}"
        title = f"{rng.choice(WORDS)} {rng.choice(['A', 'B', 'Pro', '经典款', '2.0'])}"
        picture = None if i % 3 else bytes(rng.randrange(256) for _ in range(64))
        weight = None if i % 5 == 0 else round(rng.uniform(0.01, 20), 3)
        products.append(
            (
                sku,
                title,
                f"{rng.randrange(50, 99999) / 100:.2f}",
                weight,
                rng.randrange(0, 1000),
                picture,
            )
        )
    db.executemany("INSERT INTO products VALUES (?,?,?,?,?,?)", products)
    orders, items = [], []
    for i in range(1, n_orders + 1):
        lines = rng.randrange(1, 5)
        total = 0
        for line in range(1, lines + 1):
            price_cents = rng.randrange(50, 99999)
            qty = rng.randrange(1, 10)
            total += price_cents * qty
            items.append(
                (
                    i,
                    line,
                    f"SKU-{rng.randrange(1, n_products + 1):05d}",
                    qty,
                    f"{price_cents / 100:.2f}",
                )
            )
        note = rng.choice(
            [
                None,
                None,
                "",
                "请尽快发货",
                "Leave at the door\tthanks",
                "line one\nline two",
                "quote ' and \\ backslash",
            ]
        )
        orders.append(
            (
                i,
                rng.randrange(1, n_customers + 1),
                stamp(),
                rng.choice(STATUSES),
                f"{total / 100:.2f}",
                note,
            )
        )
    db.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?)", orders)
    db.executemany("INSERT INTO order_items VALUES (?,?,?,?,?)", items)
    audit = [
        (
            stamp(),
            rng.choice([None, "admin", "批处理", "cron"]),
            rng.choice(["login", "export", "price change", "删除草稿"]),
        )
        for _ in range(1000 * scale)
    ]
    db.executemany("INSERT INTO audit_log VALUES (?,?,?)", audit)
    db.commit()
    db.close()
    os.replace(tmp, path)


class SampleEndpoint(SQLiteEndpoint):
    """A SQLite source built from :func:`build` when its file does not exist yet."""

    engine_label = "SQLite (sample)"

    def known_options(self) -> set[str]:
        return {"scale"}

    def resolve_url(self, url: sa.URL) -> sa.URL:
        url = url.set(drivername="sqlite")
        db = url.database
        path = Path(db) if db and Path(db).is_absolute() else self.base_dir / (db or "")
        if self.dry_run and not path.exists():  # build a throw-away copy to describe
            self._tmp = tempfile.TemporaryDirectory(prefix="migrate-sample-")
            scratch = Path(self._tmp.name) / "sample.db"
            build(scratch, self._scale())
            self.dry_run = False
            try:
                return super().resolve_url(url.set(database=str(scratch)))
            finally:
                self.dry_run = True
        return super().resolve_url(url)

    def _scale(self) -> int:
        scale: Any = self.options.get("scale", 1)
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ConnectorError(
                f"connections.{self.name}.options.scale: must be a whole"
                f" number of at least 1, not {scale!r}"
            )
        return scale

    @property
    def engine(self) -> sa.Engine:
        path = self.path
        if self._engine is None and path is not None and not path.exists():
            build(path, self._scale())
        return super().engine
