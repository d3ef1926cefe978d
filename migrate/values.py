"""Portable values a Python type cannot hold alone.

A date-time or time of day with a seventh fractional digit (SQL Server's DATETIME2(7),
TIME(7) and DATETIMEOFFSET(7) hold 100 ns ticks; Python's types stop at microseconds):
:class:`DateTime7` and :class:`Time7` carry the extra ``nanos`` beyond ``microsecond``.
They compare, hash and print as the microsecond value, so every engine that stores
microseconds sees exactly what it can keep; the state store (``migrate.state``) and an
engine that keeps the digit (SQL Server) read ``nanos`` with :func:`nanos_of`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


class DateTime7(dt.datetime):
    """A date-time read from SQL Server with its seventh fractional digit: ``nanos`` (0,
    100, ..., 900) beyond ``microsecond``. It compares, hashes and prints as its
    microsecond value (other engines get microseconds); SQL Server's connector writes all
    seven digits. Arithmetic and ``replace`` give the microsecond value (``nanos`` 0)."""

    nanos: int = 0

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:  # pickled in spools
        return (_datetime7, (dt.datetime.__reduce_ex__(self, protocol), self.nanos))


class Time7(dt.time):
    """A time read from SQL Server with its seventh fractional digit (see
    :class:`DateTime7`)."""

    nanos: int = 0

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (_time7, (dt.time.__reduce_ex__(self, protocol), self.nanos))


def _rebuild(reduced: Any) -> Any:
    make, args = reduced[0], reduced[1]
    return make(*args)


def _datetime7(reduced: Any, nanos: int) -> dt.datetime:
    return with_nanos(_rebuild(reduced), nanos)


def _time7(reduced: Any, nanos: int) -> dt.time:
    return with_nanos(_rebuild(reduced), nanos)


def nanos_of(v: Any) -> int:
    """The nanoseconds beyond ``v.microsecond`` (0 for anything but a 7-digit value)."""
    return getattr(v, "nanos", 0) if isinstance(v, (DateTime7, Time7)) else 0


def with_nanos(v: Any, nanos: int) -> Any:
    """``v`` (a datetime or time) carrying ``nanos`` more nanoseconds; ``v`` itself as a
    plain datetime or time when there are none."""
    if isinstance(v, dt.datetime):
        cls: type = DateTime7 if nanos else dt.datetime
        out = cls(
            v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, v.tzinfo,
            fold=v.fold,
        )  # fmt: skip
    elif isinstance(v, dt.time):
        cls = Time7 if nanos else dt.time
        out = cls(v.hour, v.minute, v.second, v.microsecond, v.tzinfo, fold=v.fold)
    else:
        return v
    if nanos:
        out.nanos = nanos
    return out
