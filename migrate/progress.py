"""Progress while a run copies: a rich live display on a terminal, plain lines elsewhere,
and the run log (``--log-file`` / ``--log-format``).

The plain renderer writes one line when a table starts and finishes, and at most one
progress line per table every ``interval`` seconds, so a cron mail stays readable. The
run log receives the same events, as those text lines or as JSON lines (:class:`RunLog`).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

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
from migrate.errors import PlanError
from migrate.plan import redact
from migrate.state import now

#: The formats of ``--log-format``.
LOG_FORMATS = ("text", "json")
#: The levels a log record carries.
LEVELS = ("info", "warning", "error")


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


class RunLog:
    """A run's log: records appended to a file (``--log-file``) or written to a stream.

    Contract:

    - ``text`` format: every line is ``<UTC timestamp> <text>``, the lines the plain
      progress renderer writes (a record's text may span lines; each gets the stamp).
    - ``json`` format: one object per line, ``{"ts": ISO-8601 UTC, "level": "info" |
      "warning" | "error", "event": ..., "pid": ..., **fields}``.
    - Every value in :attr:`secrets` is replaced by ``***`` before anything is written
      (in text, in every JSON string, and in the final line as a whole).
    - A record is one ``write`` on a file opened with ``O_APPEND``: records of two
      processes sharing the file never interleave inside a line. The file is opened per
      run, so logrotate needs no ``copytruncate``.
    - A write that fails (disk full) prints one warning on stderr and turns the log off;
      the run goes on.
    """

    def __init__(
        self,
        fmt: str,
        *,
        stream: TextIO | None = None,
        fd: int | None = None,
        path: Path | None = None,
    ) -> None:
        if fmt not in LOG_FORMATS:
            raise ValueError(f"log format {fmt!r} is not one of {LOG_FORMATS}")
        if (stream is None) == (fd is None):
            raise ValueError("a RunLog writes to exactly one of a stream or a file descriptor")
        self.format = fmt
        self.stream, self.fd, self.path = stream, fd, path
        self.secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._broken = False

    @classmethod
    def open(cls, path: str | os.PathLike[str], fmt: str) -> RunLog:
        """Open ``path`` for appending (creating it and its folders); a path that cannot be
        written is a usage error (exit 2) naming it."""
        p = Path(path).absolute()
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise PlanError(f"--log-file {p}: cannot open it for appending: {reason}") from None
        return cls(fmt, fd=fd, path=p)

    @classmethod
    def to_stream(cls, stream: TextIO, fmt: str) -> RunLog:
        """A log written to ``stream`` (stderr for ``--log-format`` without a file)."""
        return cls(fmt, stream=stream)

    def is_stream(self, stream: TextIO) -> bool:
        """Whether ``stream`` is where this log goes (the same stream, or the same file,
        as when a cron line sends the command's output to its own log file)."""
        if stream is self.stream:
            return True
        if self.fd is None:
            return False
        try:
            mine, theirs = os.fstat(self.fd), os.fstat(stream.fileno())
        except (OSError, ValueError, AttributeError):
            return False
        return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)

    def write(self, level: str, event: str, text: str, **fields: Any) -> None:
        """Record one event: ``text`` (one or more lines, written as given) in the text
        format, ``fields`` in the JSON format."""
        if level not in LEVELS:
            raise ValueError(f"log level {level!r} is not one of {LEVELS}")
        ts = now()
        if self.format == "json":
            record = {"ts": ts, "level": level, "event": event, "pid": os.getpid(), **fields}
            data = json.dumps(self._redact(record), ensure_ascii=False, default=str) + "\n"
        else:
            data = "".join(f"{ts} {line}\n" for line in text.splitlines() or [""])
        self._emit(redact(data, self.secrets))

    def _redact(self, value: Any) -> Any:
        if isinstance(value, str):
            return redact(value, self.secrets)
        if isinstance(value, dict):
            return {self._redact(str(k)): self._redact(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._redact(v) for v in value]
        return value

    def _emit(self, data: str) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                if self.fd is not None:
                    raw = data.encode("utf-8")
                    while raw:
                        raw = raw[os.write(self.fd, raw) :]
                else:
                    assert self.stream is not None
                    with _WRITE:
                        self.stream.write(data)
                        self.stream.flush()
            except (OSError, ValueError) as exc:
                self._broken = True
                where = self.path or "the log stream"
                print(
                    f"migrate: warning: cannot write the log {where}: {exc}; going on without it",
                    file=sys.stderr,
                )

    def close(self) -> None:
        """Close the file (a stream is left open); later writes are dropped."""
        with self._lock:
            self._broken = True
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None


class LogProgress(Progress):
    """Plain log lines for files and cron mail, or the same events as JSON records.

    ``stream`` is a text stream (text lines, as before) or a :class:`RunLog` (its format).
    """

    def __init__(
        self,
        stream: TextIO | RunLog | None = None,
        interval: float = 15.0,
        verbs: tuple[str, str] = ("copying", "copied"),
    ) -> None:
        """``verbs``: what a table's start and end lines say (``migrate validate`` says
        validating, validated)."""
        self.verbs = verbs
        if isinstance(stream, RunLog):
            self.log = stream
        else:
            self.log = RunLog.to_stream(stream or sys.stderr, "text")
        self.interval = interval
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], int] = {}
        self._total: dict[tuple[str, str], int | None] = {}
        self._started: dict[tuple[str, str], float] = {}
        self._last: dict[tuple[str, str], float] = {}

    def table_started(self, step: str, table: str, total: int | None, done: int) -> None:
        with self._lock:
            key = (step, table)
            self._rows[key], self._total[key] = done, total
            self._started[key] = self._last[key] = time.monotonic()
        resumed = f" (resuming after {done} rows)" if done else ""
        self.log.write(
            "info",
            "table_started",
            f"step={step} table={table} {self.verbs[0]}{resumed}",
            step=step,
            table=table,
            total=total,
            done=done,
        )

    def advance(self, step: str, table: str, rows: int) -> None:
        with self._lock:
            key = (step, table)
            self._rows[key] = self._rows.get(key, 0) + rows
            t = time.monotonic()
            if t - self._last.get(key, 0) < self.interval:
                return
            self._last[key] = t
            rate = self._rows[key] / max(t - self._started.get(key, t), 1e-6)
            copied, total = self._rows[key], self._total.get(key)
        self.log.write(
            "info",
            "progress",
            f"step={step} table={table} rows={copied} rate={rate:.0f}/s",
            step=step,
            table=table,
            rows=copied,
            total=total,
            rate=round(rate),
        )

    def table_finished(self, step: str, table: str, rows: int, seconds: float) -> None:
        rate = rows / seconds if seconds > 0 else 0.0
        self.log.write(
            "info",
            "table_finished",
            f"step={step} table={table} {self.verbs[1]} rows={rows} in {seconds:.1f}s"
            f" ({rate:.0f} rows/s)",
            step=step,
            table=table,
            rows=rows,
            seconds=round(seconds, 3),
            rate=round(rate),
        )

    def message(self, text: str) -> None:
        """Messages are things to notice (a chunk copied again after a crash, a failed
        step): ``warning`` records."""
        self.log.write("warning", "message", text, message=text)


class TeeProgress(Progress):
    """Sends every event to each of ``targets`` (the console display and the run log)."""

    def __init__(self, *targets: Progress) -> None:
        self.targets = targets

    def table_started(self, step: str, table: str, total: int | None, done: int) -> None:
        for t in self.targets:
            t.table_started(step, table, total, done)

    def advance(self, step: str, table: str, rows: int) -> None:
        for t in self.targets:
            t.advance(step, table, rows)

    def table_finished(self, step: str, table: str, rows: int, seconds: float) -> None:
        for t in self.targets:
            t.table_finished(step, table, rows, seconds)

    def message(self, text: str) -> None:
        for t in self.targets:
            t.message(text)

    @contextmanager
    def live(self) -> Iterator[TeeProgress]:
        """Starts and stops the rich displays among the targets."""
        displays = [t for t in self.targets if isinstance(t, RichProgressDisplay)]
        for d in displays:
            d.__enter__()
        try:
            yield self
        finally:
            for d in displays:
                d.__exit__(None, None, None)


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
