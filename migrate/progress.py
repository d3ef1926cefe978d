"""Progress while a run copies: a rich live display on a terminal, plain lines elsewhere.

The plain renderer writes one line when a table starts and finishes, and at most one
progress line per table every ``interval`` seconds, so a cron mail stays readable.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import (
    Progress as RichProgress,
)

from migrate.copier import Progress
from migrate.state import now


class QuietProgress(Progress):
    """Reports nothing (``--quiet``, ``--json``), except messages."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def message(self, text: str) -> None:
        _write_line(self.stream, text)


_WRITE = threading.Lock()


def _write_line(stream: TextIO, text: str) -> None:
    """One whole timestamped line per write, so threads never interleave."""
    with _WRITE:
        stream.write(f"{now()} {text}\n")
        stream.flush()


class LogProgress(Progress):
    """Plain log lines for files and cron mail."""

    def __init__(self, stream: TextIO | None = None, interval: float = 15.0) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], int] = {}
        self._total: dict[tuple[str, str], int | None] = {}
        self._started: dict[tuple[str, str], float] = {}
        self._last: dict[tuple[str, str], float] = {}

    def _line(self, text: str) -> None:
        _write_line(self.stream, text)

    def table_started(self, step: str, table: str, total: int | None, done: int) -> None:
        with self._lock:
            key = (step, table)
            self._rows[key], self._total[key] = done, total
            self._started[key] = self._last[key] = time.monotonic()
        resumed = f" (resuming after {done} rows)" if done else ""
        self._line(f"step={step} table={table} copying{resumed}")

    def advance(self, step: str, table: str, rows: int) -> None:
        with self._lock:
            key = (step, table)
            self._rows[key] = self._rows.get(key, 0) + rows
            t = time.monotonic()
            if t - self._last.get(key, 0) < self.interval:
                return
            self._last[key] = t
            rate = self._rows[key] / max(t - self._started.get(key, t), 1e-6)
            line = f"step={step} table={table} rows={self._rows[key]} rate={rate:.0f}/s"
        self._line(line)

    def table_finished(self, step: str, table: str, rows: int, seconds: float) -> None:
        rate = rows / seconds if seconds > 0 else 0.0
        self._line(
            f"step={step} table={table} copied rows={rows} in {seconds:.1f}s ({rate:.0f} rows/s)"
        )

    def message(self, text: str) -> None:
        self._line(text)


class RichProgressDisplay(Progress):
    """A live bar per table with rows/s and ETA, on a terminal."""

    def __init__(self, console: Console, totals: dict[tuple[str, str], int] | None = None) -> None:
        self.console = console
        self.totals = totals or {}
        self.bars = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[tuple[str, str], TaskID] = {}
        self.started: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> RichProgressDisplay:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def table_started(self, step: str, table: str, total: int | None, done: int) -> None:
        with self._lock:
            key = (step, table)
            total = total or self.totals.get(key)
            self.tasks[key] = self.bars.add_task(
                f"{step}.{table}", total=total, completed=done, rate=""
            )
            self.started[key] = time.monotonic()

    def advance(self, step: str, table: str, rows: int) -> None:
        with self._lock:
            key = (step, table)
            task = self.tasks[key]
            self.bars.advance(task, rows)
            done = self.bars.tasks[task].completed
            rate = done / max(time.monotonic() - self.started[key], 1e-6)
            self.bars.update(task, rate=f"{rate:,.0f} rows/s")

    def table_finished(self, step: str, table: str, rows: int, seconds: float) -> None:
        with self._lock:
            task = self.tasks.get((step, table))
            if task is not None:
                self.bars.update(task, total=rows, completed=rows)

    def message(self, text: str) -> None:
        self.console.print(text)
