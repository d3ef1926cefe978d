"""The canonical text form of a row, defined once and rendered per engine.

A checksum compares two tables inside their databases: each side computes, per key range,
the row count and the sum of a 60-bit hash of every row's canonical text. Only that small
row crosses the network. The canonical text is the same on every engine for the same
values, so the sums agree when the rows do.

The canonical form (:func:`canonical_value` is the reference implementation; each
``*Render`` class writes the same thing in its engine's SQL):

- a row is its columns' parts joined by ``|``, in the order of the compared columns;
- NULL is ``N``; every other part starts with a digit, a sign or a letter of a hex
  string, or is a length-prefixed text, so ``N`` is never a value;
- boolean: ``0`` or ``1``; integers: decimal digits, ``-`` for negatives;
- decimal: fixed point at the column's scale (``1.50``), never an exponent; a decimal
  without a declared scale drops trailing zeros (``1.5``);
- float64: the shortest decimal that reads back as the same double, written positionally
  (``1e+16`` is ``10000000000000000``, ``1.5e-07`` is ``0.00000015``, ``100.0`` is
  ``100``, ``-0.0`` is ``0``); float32: six significant digits, as MySQL shows a FLOAT,
  written the same way;
- text kinds (char, varchar, text, enum, json, uuid): ``<length in characters>:<text>``
  (uuid in lower case), hashed as UTF-8;
- binary kinds: lower-case hex;
- date ``YYYY-MM-DD``; time ``HH:MM:SS.ffffff`` (MySQL's TIME may be negative or over
  24 hours: ``-838:59:59.000000``); datetime ``YYYY-MM-DD HH:MM:SS.ffffff``; timestamptz
  the same, in UTC.

The row hash is the MD5 of the UTF-8 row text; its last 15 hex digits (60 bits) are the
number summed. A chunk's checksum is ``(rows, sum)``, both exact integers.

Known differences (:class:`Rules`) change a column's rendering so that values a rule calls
equal mostly hash alike (trailing blanks trimmed, ``''`` as NULL, lower case, timestamps
truncated, floats rounded to half the tolerance); the final word on any row is always
:func:`values_equal`, run in Python on rows fetched from both sides. A rendering can
therefore only cost time (a chunk compared row by row), never hide a difference the rules
do not allow.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from migrate.schema import BINARY_KINDS, INT_KINDS, TEXT_KINDS, PType

FLOAT_KINDS = frozenset({"float32", "float64"})
TIME_KINDS = frozenset({"datetime", "timestamptz"})

NULL = "N"
#: decimals of any declared precision are quantized without rounding to 28 digits
_WIDE = Context(prec=200)
SEP = "|"
#: the hash's last 15 hex digits: a 60-bit number whose sum over a chunk is exact
HASH_HEX_FROM = 17  # 0-based; SQL's SUBSTRING(…, 18)
HASH_BITS = 60


@dataclass(frozen=True)
class Rules:
    """Known differences for one table, each off by default (see the README).

    - ``float_abs`` / ``float_rel``: floats equal when ``|a - b| <= float_abs`` or
      ``|a - b| <= float_rel * max(|a|, |b|)``
    - ``timestamp_precision``: ``"s"`` or ``"ms"``: date-times (and times) equal when they
      differ by less than that unit (one side stored fewer digits, rounded or cut)
    - ``trailing_blanks``: text equal after removing trailing spaces
    - ``empty_is_null``: the empty string equals NULL (Oracle stores '' as NULL)
    - ``case_insensitive``: text equal in lower case
    - ``ignore_columns``: columns left out of the comparison
    """

    float_abs: float | None = None
    float_rel: float | None = None
    timestamp_precision: str | None = None
    trailing_blanks: bool = False
    empty_is_null: bool = False
    case_insensitive: bool = False
    ignore_columns: tuple[str, ...] = ()

    def merged(self, other: Rules | None) -> Rules:
        """These rules with every rule ``other`` sets (a table's own over its step's)."""
        if other is None:
            return self
        return Rules(
            float_abs=other.float_abs if other.float_abs is not None else self.float_abs,
            float_rel=other.float_rel if other.float_rel is not None else self.float_rel,
            timestamp_precision=other.timestamp_precision or self.timestamp_precision,
            trailing_blanks=other.trailing_blanks or self.trailing_blanks,
            empty_is_null=other.empty_is_null or self.empty_is_null,
            case_insensitive=other.case_insensitive or self.case_insensitive,
            ignore_columns=tuple(dict.fromkeys(self.ignore_columns + other.ignore_columns)),
        )

    def names(self) -> list[str]:
        """The rules that are on, as the report names them."""
        out = []
        if self.float_abs is not None:
            out.append(f"float tolerance {self.float_abs:g} (absolute)")
        if self.float_rel is not None:
            out.append(f"float tolerance {self.float_rel:g} (relative)")
        if self.timestamp_precision:
            out.append(f"timestamp precision {self.timestamp_precision}")
        if self.trailing_blanks:
            out.append("trailing blanks ignored")
        if self.empty_is_null:
            out.append("empty string = NULL")
        if self.case_insensitive:
            out.append("case-insensitive text")
        if self.ignore_columns:
            out.append("ignored columns: " + ", ".join(self.ignore_columns))
        return out


@dataclass(frozen=True)
class ColumnSpec:
    """One compared column: its name on each side, the kind and scale both sides agree on,
    and the rules that apply to it (only those that can change its kind's values)."""

    name: str
    kind: str
    scale: int | None = None
    float_abs: float | None = None
    float_rel: float | None = None
    time_unit: str | None = None  # "s" | "ms"
    rtrim: bool = False
    empty_null: bool = False
    lower: bool = False
    target_name: str | None = None
    #: a decimal's declared scale on this side (``scale`` is the one compared at)
    own_scale: int | None = None

    @property
    def ruled(self) -> bool:
        return bool(
            self.float_abs is not None
            or self.float_rel is not None
            or self.time_unit
            or self.rtrim
            or self.empty_null
            or self.lower
        )

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, False)}


def column_spec(name: str, ptype: PType, rules: Rules, scale: int | None = None) -> ColumnSpec:
    """The spec of a column of ``ptype`` under ``rules`` (only the rules for its kind);
    ``scale`` is the decimal scale both sides are compared at."""
    kind = ptype.kind
    text = kind in TEXT_KINDS and kind != "uuid"
    own = ptype.scale if kind == "decimal" else None
    return ColumnSpec(
        name=name,
        kind=kind,
        scale=scale if kind == "decimal" else None,
        own_scale=own,
        float_abs=rules.float_abs if kind in FLOAT_KINDS else None,
        float_rel=rules.float_rel if kind in FLOAT_KINDS and rules.float_abs is None else None,
        time_unit=rules.timestamp_precision if kind in TIME_KINDS | {"time"} else None,
        rtrim=rules.trailing_blanks and text,
        empty_null=rules.empty_is_null and text,
        lower=rules.case_insensitive and text,
    )


# -- the reference implementation ----------------------------------------------------------
def positional(text: str) -> str:
    """A decimal number's text without exponent or trailing fractional zeros; ``-0`` is 0."""
    try:
        d = Decimal(text)
    except InvalidOperation:
        return text
    if not d.is_finite():
        return {"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}.get(str(d), str(d))
    if d == 0:
        return "0"
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def float_text(value: float, kind: str) -> str:
    """float64: the shortest round-trip digits; float32: six significant digits."""
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return positional(repr(v) if kind == "float64" else f"{v:.6g}")


#: a float rule leaves values this large (relative to its step) as they are: dividing
#: them by the step would overflow a double
FLOAT_RULE_LIMIT = 1e300


def _round_half(value: float, step: float) -> float:
    """``value / step`` rounded half to even, as MariaDB's and PostgreSQL's ROUND of a
    double do (``rint``)."""
    return float(round(value / step))


def _time_text(value: Any) -> str:
    if isinstance(value, dt.timedelta):  # MySQL TIME: may be negative or over 24 hours
        total = value.days * 86400_000000 + value.seconds * 1000000 + value.microseconds
        sign = "-" if total < 0 else ""
        total = abs(total)
        secs, us = divmod(total, 1000000)
        h, rest = divmod(secs, 3600)
        m, s = divmod(rest, 60)
        return f"{sign}{h:02d}:{m:02d}:{s:02d}.{us:06d}"
    if isinstance(value, dt.time):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    return str(value)


def _utc_naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _cut(text: str, unit: str | None) -> str:
    """A ``…SS.ffffff`` text cut to whole seconds (``s``) or milliseconds (``ms``)."""
    if unit == "s":
        return text[: text.rindex(".")]
    if unit == "ms":
        return text[:-3]
    return text


def canonical_value(spec: ColumnSpec, value: Any) -> str:
    """The canonical text of one portable value (see the module docstring)."""
    if value is None:
        return NULL
    kind = spec.kind
    if kind in TEXT_KINDS:
        text = value.decode() if isinstance(value, (bytes, bytearray)) else str(value)
        if kind == "uuid":
            text = text.lower()
        elif kind == "char":  # CHAR(n) pads with blanks that no engine compares
            text = text.rstrip(" ")
        if spec.rtrim:
            text = text.rstrip(" ")
        if spec.empty_null and text == "":
            return NULL
        if spec.lower:
            text = text.lower()
        return f"{len(text)}:{text}"
    if kind == "boolean":
        return "1" if value else "0"
    if kind in INT_KINDS:
        if isinstance(value, (bytes, bytearray)):  # a MySQL BIT read raw
            return str(int.from_bytes(value, "big"))
        return str(int(value))
    if kind == "decimal":
        d = value if isinstance(value, Decimal) else Decimal(str(value))
        if spec.scale is not None:
            if spec.scale >= 0:
                d = d.quantize(Decimal(1).scaleb(-spec.scale), ROUND_HALF_UP, _WIDE)
            text = format(d, "f")
            return "0" + text[2:] if text.startswith("-0") and d == 0 else text
        return positional(str(d))
    if kind in FLOAT_KINDS:
        v = float(value)
        if spec.float_abs is not None and abs(v) < FLOAT_RULE_LIMIT * spec.float_abs:
            return float_text(_round_half(v, spec.float_abs / 2), "float64")
        if spec.float_rel is not None and 0 < abs(v) < FLOAT_RULE_LIMIT:
            e = math.floor(math.log2(abs(v)))
            return f"{e}:" + float_text(_round_half(v / 2.0**e, spec.float_rel / 2), "float64")
        return float_text(v, kind)
    if kind in BINARY_KINDS:
        return bytes(value).hex()
    if kind == "date":
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if kind in TIME_KINDS:
        if isinstance(value, dt.datetime):
            text = _utc_naive(value).isoformat(sep=" ", timespec="microseconds")
        else:
            text = str(value)
        return _cut(text, spec.time_unit)
    if kind == "time":
        return _cut(_time_text(value), spec.time_unit)
    return str(value)


def comparable(spec: ColumnSpec, value: Any) -> str:
    """A value as two rows that :func:`values_equal` calls equal mostly share it (JSON
    with sorted keys; the rules' rendering otherwise)."""
    if spec.kind == "json" and value is not None:
        try:
            return _json_form(value)
        except ValueError:
            pass
    return canonical_value(spec, value)


def row_text(specs: Sequence[ColumnSpec], row: Sequence[Any]) -> str:
    """The canonical text of a row of portable values (one value per spec)."""
    return SEP.join(canonical_value(s, v) for s, v in zip(specs, row, strict=True))


def hash60(text: str) -> int:
    """The 60-bit number a row contributes to its chunk's sum."""
    return int(hashlib.md5(text.encode("utf-8")).hexdigest()[HASH_HEX_FROM:], 16)


# -- value comparison (the final word) ------------------------------------------------------
def _as_float(value: Any) -> float:
    return float(value)


def _time_micros(value: Any) -> int | None:
    if isinstance(value, dt.datetime):
        v = _utc_naive(value)
        return (v - dt.datetime(1, 1, 1)) // dt.timedelta(microseconds=1)
    if isinstance(value, dt.timedelta):
        return value // dt.timedelta(microseconds=1)
    if isinstance(value, dt.time):
        return (value.hour * 3600 + value.minute * 60 + value.second) * 1000000 + value.microsecond
    return None


_UNIT_MICROS = {"s": 1000000, "ms": 1000}


def _json_form(value: Any) -> str:
    """A JSON document written with sorted keys and no spaces (types kept apart)."""
    return json.dumps(json.loads(str(value)), sort_keys=True, separators=(",", ":"))


def values_equal(spec: ColumnSpec, a: Any, b: Any) -> tuple[bool, bool]:
    """Whether two portable values are equal, and whether a rule was needed to say so."""
    plain = plain_spec(spec) if spec.ruled else spec
    if canonical_value(plain, a) == canonical_value(plain, b):
        return True, False
    if spec.kind == "json" and a is not None and b is not None:
        try:  # the same document: key order and spacing aside (true is not 1)
            if _json_form(a) == _json_form(b):
                return True, False
        except ValueError:
            pass
    if not spec.ruled:
        return False, False
    if spec.kind in FLOAT_KINDS and a is not None and b is not None:
        x, y = _as_float(a), _as_float(b)
        if spec.float_abs is not None and abs(x - y) <= spec.float_abs:
            return True, True
        if spec.float_rel is not None and abs(x - y) <= spec.float_rel * max(abs(x), abs(y)):
            return True, True
        return False, False
    if spec.time_unit and a is not None and b is not None:
        ma, mb = _time_micros(a), _time_micros(b)
        if ma is not None and mb is not None:
            within = abs(ma - mb) < _UNIT_MICROS[spec.time_unit]
            return within, within
        return False, False
    if canonical_value(spec, a) == canonical_value(spec, b):
        return True, True
    return False, False


@functools.lru_cache(maxsize=1024)
def plain_spec(spec: ColumnSpec) -> ColumnSpec:
    """The same column without rules (what "equal without a rule" means)."""
    return ColumnSpec(spec.name, spec.kind, spec.scale, target_name=spec.target_name)


# -- rendering per engine -------------------------------------------------------------------
@dataclass
class Render:
    """Writes the canonical form in one engine's SQL. ``q`` quotes an identifier.

    Subclasses override the per-kind methods whose SQL differs; every method returns an
    expression that is NULL when the column is NULL (:meth:`part` turns that into ``N``).
    """

    q: Callable[[str], str]
    engine: str = ""
    #: the MD5-based aggregate is the canonical one; engines may offer cheaper ones for
    #: comparing with themselves (see :meth:`fast_select`)
    notes: list[str] = field(default_factory=list)

    # row and aggregate
    def concat(self, parts: Sequence[str]) -> str:
        return "CONCAT(" + ", ".join(parts) + ")"

    def lit(self, text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    def row(self, specs: Sequence[ColumnSpec]) -> str:
        parts: list[str] = []
        for i, spec in enumerate(specs):
            if i:
                parts.append(self.lit(SEP))
            parts.append(self.part(spec))
        return self.concat(parts) if len(parts) > 1 else parts[0]

    def part(self, spec: ColumnSpec) -> str:
        return f"COALESCE({self.value(spec)}, {self.lit(NULL)})"

    def count(self) -> str:
        return "COUNT(*)"

    def hash_sum(self, row_sql: str) -> str:
        raise NotImplementedError

    def bucket(self, key_specs: Sequence[ColumnSpec], parts: int) -> str:
        """The group (0 to ``parts`` - 1) of a row: its key's canonical text hashed."""
        raise NotImplementedError

    def select(self, specs: Sequence[ColumnSpec], plain: Sequence[ColumnSpec] | None = None) -> str:
        """The select list of a chunk checksum: ``rows, sum of the 60-bit row hashes``
        and, with ``plain``, the sum of the hashes of those specs (every column, no rules)."""
        out = f"{self.count()}, {self.hash_sum(self.row(specs))}"
        return out + (f", {self.hash_sum(self.row(plain))}" if plain else "")

    # values
    def value(self, spec: ColumnSpec) -> str:
        c = self.q(spec.name)
        kind = spec.kind
        if kind in TEXT_KINDS:
            return self.text(spec, c)
        if kind == "boolean":
            return self.boolean(c)
        if kind in INT_KINDS:
            return self.integer(c)
        if kind == "decimal":
            own, scale = spec.own_scale, spec.scale
            if own is not None and scale is not None and own < scale:
                return self.pad_decimal(c, own, scale)
            if own is not None and own == scale:
                return self.decimal_declared(c, scale)
            return self.decimal(c, scale)
        if kind in FLOAT_KINDS:
            if spec.float_abs is not None:
                return self.float_abs(c, spec.float_abs / 2)
            if spec.float_rel is not None:
                return self.float_rel(c, spec.float_rel / 2)
            return self.float(c, kind)
        if kind in BINARY_KINDS:
            return self.hex(c)
        if kind == "date":
            return self.date(c)
        if kind == "datetime":
            return self.cut(self.datetime(c), spec.time_unit)
        if kind == "timestamptz":
            return self.cut(self.timestamptz(c), spec.time_unit)
        if kind == "time":
            return self.cut(self.time(c), spec.time_unit)
        return self.text(spec, c)

    def text(self, spec: ColumnSpec, c: str) -> str:
        v = self.to_text(c)
        if spec.kind == "uuid":
            v = f"LOWER({v})"
        if spec.rtrim:
            v = self.rtrim(v)
        if spec.empty_null:  # not NULLIF: a PAD SPACE collation finds '  ' = ''
            v = f"CASE WHEN {self.is_empty(v)} THEN NULL ELSE {v} END"
        if spec.lower:
            v = f"LOWER({v})"
        return self.concat([self.char_length(v), self.lit(":"), v])

    def to_text(self, c: str) -> str:
        return c

    def rtrim(self, v: str) -> str:
        return f"RTRIM({v})"

    def char_length(self, v: str) -> str:
        return f"CHAR_LENGTH({v})"

    def boolean(self, c: str) -> str:
        return f"CASE WHEN {c} <> 0 THEN '1' WHEN {c} = 0 THEN '0' END"

    def integer(self, c: str) -> str:
        raise NotImplementedError

    def decimal(self, c: str, scale: int | None) -> str:
        raise NotImplementedError

    def decimal_declared(self, c: str, scale: int) -> str:
        """A decimal compared at the scale it is declared with (no cast needed where the
        engine writes it at that scale anyway)."""
        return self.decimal(c, scale)

    def pad_decimal(self, c: str, own: int, scale: int) -> str:
        """A decimal stored at scale ``own`` written at the larger ``scale``: its own text
        and zeros (exact, and within every engine's limit on a cast's scale)."""
        point = "." if own == 0 else ""
        text = self.concat([self.decimal(c, own), self.lit(point + "0" * (scale - own))])
        return f"CASE WHEN {c} IS NULL THEN NULL ELSE {text} END"  # Oracle: NULL || 'x' is 'x'

    def is_empty(self, v: str) -> str:
        """SQL true when the text ``v`` is the empty string (not merely blank)."""
        return f"CHAR_LENGTH({v}) = 0"

    def float(self, c: str, kind: str) -> str:
        raise NotImplementedError

    def float_abs(self, c: str, step: float) -> str:
        raise NotImplementedError

    def float_rel(self, c: str, step: float) -> str:
        raise NotImplementedError

    def hex(self, c: str) -> str:
        raise NotImplementedError

    def date(self, c: str) -> str:
        raise NotImplementedError

    def datetime(self, c: str) -> str:
        raise NotImplementedError

    def timestamptz(self, c: str) -> str:
        return self.datetime(c)

    def time(self, c: str) -> str:
        raise NotImplementedError

    def cut(self, v: str, unit: str | None) -> str:
        """A ``…SS.ffffff`` text cut to seconds or milliseconds."""
        if unit == "s":
            return f"SUBSTRING({v}, 1, CHAR_LENGTH({v}) - 7)"
        if unit == "ms":
            return f"SUBSTRING({v}, 1, CHAR_LENGTH({v}) - 3)"
        return v

    def positional(self, s: str) -> str:
        """A number's shortest text ``s`` (maybe with an exponent) written positionally.

        Only texts with an exponent take the long branch; ``s`` is an expression that may
        be evaluated several times.
        """
        raise NotImplementedError


def _num(x: float) -> str:
    """A double as a SQL literal (an overflowing bound becomes the largest double)."""
    x = float(x)
    if math.isinf(x):
        x = math.copysign(sys.float_info.max, x)
    return repr(x)


class MySQLRender(Render):
    """MySQL and MariaDB. Sessions run with ``time_zone = '+00:00'``."""

    def hash_sum(self, row_sql: str) -> str:
        return f"SUM(CAST(CONV(SUBSTRING(MD5({row_sql}), 18), 16, 10) AS UNSIGNED))"

    def bucket(self, key_specs: Sequence[ColumnSpec], parts: int) -> str:
        row = self.row(key_specs)
        return f"CAST(CONV(SUBSTRING(MD5({row}), 1, 8), 16, 10) AS UNSIGNED) % {int(parts)}"

    def to_text(self, c: str) -> str:
        return f"CONVERT({c} USING utf8mb4)"

    def rtrim(self, v: str) -> str:
        return f"TRIM(TRAILING ' ' FROM {v})"

    def integer(self, c: str) -> str:
        return f"CAST({c} + 0 AS CHAR)"  # + 0: a BIT column as its number, not its bytes

    def decimal(self, c: str, scale: int | None) -> str:
        if scale is None:
            return f"CAST({c} AS CHAR)"
        return f"CAST(CAST({c} AS DECIMAL(65, {scale})) AS CHAR)"

    def decimal_declared(self, c: str, scale: int) -> str:
        return f"CAST({c} + 0 AS CHAR)"  # + 0: no ZEROFILL padding

    def float(self, c: str, kind: str) -> str:
        # MariaDB/MySQL write a DOUBLE as its shortest round-trip digits and a FLOAT
        # with six significant digits, either positionally or with an exponent
        return f"CASE WHEN {c} = 0 THEN '0' ELSE {self.positional(f'CAST({c} AS CHAR)')} END"

    def float_abs(self, c: str, step: float) -> str:
        return (
            f"CASE WHEN ABS({c}) < {_num(FLOAT_RULE_LIMIT * step * 2)} THEN"
            f" {self.float(f'ROUND({c} / {_num(step)})', 'float64')}"
            f" ELSE {self.float(c, 'float64')} END"
        )

    def float_rel(self, c: str, step: float) -> str:
        e = f"FLOOR(LOG2(ABS({c})))"
        return (
            f"CASE WHEN {c} = 0 THEN '0' WHEN ABS({c}) >= {_num(FLOAT_RULE_LIMIT)} THEN"
            f" {self.float(c, 'float64')} ELSE CONCAT({e}, ':',"
            f" {self.float(f'ROUND({c} / POW(2, {e}) / {_num(step)})', 'float64')}) END"
        )

    def positional(self, s: str) -> str:
        m = f"SUBSTRING_INDEX({s}, 'e', 1)"
        am = f"TRIM(LEADING '-' FROM {m})"
        digits = f"REPLACE({am}, '.', '')"
        ip = f"IF(LOCATE('.', {am}) > 0, LOCATE('.', {am}) - 1, CHAR_LENGTH({am}))"
        pp = f"({ip} + CAST(SUBSTRING_INDEX({s}, 'e', -1) AS SIGNED))"
        body = (
            f"CASE WHEN {pp} >= CHAR_LENGTH({digits}) THEN CONCAT({digits},"
            f" REPEAT('0', {pp} - CHAR_LENGTH({digits}))) WHEN {pp} <= 0 THEN"
            f" CONCAT('0.', REPEAT('0', -{pp}), {digits}) ELSE CONCAT(LEFT({digits}, {pp}),"
            f" '.', SUBSTRING({digits}, {pp} + 1)) END"
        )
        return (
            f"CASE WHEN LOCATE('e', {s}) = 0 THEN {s} ELSE"
            f" CONCAT(IF(LEFT({m}, 1) = '-', '-', ''), {body}) END"
        )

    def hex(self, c: str) -> str:
        return f"LOWER(HEX({c}))"

    def date(self, c: str) -> str:
        return f"DATE_FORMAT({c}, '%Y-%m-%d')"

    def datetime(self, c: str) -> str:
        return f"DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s.%f')"

    def time(self, c: str) -> str:
        return f"TIME_FORMAT({c}, '%H:%i:%s.%f')"


class PostgresRender(Render):
    """PostgreSQL. Sessions run with ``TimeZone = UTC`` and ``extra_float_digits = 1``."""

    def concat(self, parts: Sequence[str]) -> str:
        return "(" + " || ".join(parts) + ")"

    def char_length(self, v: str) -> str:
        return f"length({v})::text"

    def is_empty(self, v: str) -> str:
        return f"length({v}) = 0"

    def hash_sum(self, row_sql: str) -> str:
        return f"sum(('x' || substr(md5({row_sql}), 18))::bit(60)::bigint)"

    def bucket(self, key_specs: Sequence[ColumnSpec], parts: int) -> str:
        row = self.row(key_specs)
        return f"(('x' || substr(md5({row}), 1, 8))::bit(32)::bigint % {int(parts)})"

    def to_text(self, c: str) -> str:
        return f"{c}::text"

    def rtrim(self, v: str) -> str:
        return f"rtrim({v}, ' ')"

    def boolean(self, c: str) -> str:
        return f"CASE WHEN {c} THEN '1' WHEN NOT {c} THEN '0' END"

    def integer(self, c: str) -> str:
        return f"{c}::text"

    def decimal(self, c: str, scale: int | None) -> str:
        if scale is None:
            return f"trim_scale({c})::text"
        return f"round({c}, {scale})::text"

    def decimal_declared(self, c: str, scale: int) -> str:
        return f"{c}::text"

    def float(self, c: str, kind: str) -> str:
        if kind == "float32":  # real -> numeric is %.6g: six significant digits
            return (
                f"CASE WHEN {c} = 0 THEN '0' WHEN {c} = 'NaN'::real THEN 'nan' WHEN {c} ="
                f" 'Infinity'::real THEN 'inf' WHEN {c} = '-Infinity'::real THEN '-inf'"
                f" ELSE {c}::numeric::text END"
            )
        s = f"{c}::float8::text"
        return (
            f"CASE WHEN {c} = 0 THEN '0' WHEN {c} = 'NaN'::float8 THEN 'nan' WHEN {c} ="
            f" 'Infinity'::float8 THEN 'inf' WHEN {c} = '-Infinity'::float8 THEN '-inf'"
            f" ELSE {self.positional(s)} END"
        )

    def float_abs(self, c: str, step: float) -> str:
        return (
            f"CASE WHEN abs({c}) < {_num(FLOAT_RULE_LIMIT * step * 2)} THEN"
            f" {self.float(f'round({c}::float8 / {_num(step)})', 'float64')}"
            f" ELSE {self.float(c, 'float64')} END"
        )

    def float_rel(self, c: str, step: float) -> str:
        e = f"floor(log(2.0, abs({c})::numeric))::int"
        scaled = f"round({c}::float8 / power(2::float8, {e}) / {_num(step)})"
        return (
            f"CASE WHEN {c} = 0 THEN '0' WHEN abs({c}) >= {_num(FLOAT_RULE_LIMIT)} THEN"
            f" {self.float(c, 'float64')} ELSE {e}::text || ':' ||"
            f" {self.float(scaled, 'float64')} END"
        )

    def positional(self, s: str) -> str:
        m = f"split_part({s}, 'e', 1)"
        am = f"ltrim({m}, '-')"
        digits = f"replace({am}, '.', '')"
        ip = f"(CASE WHEN strpos({am}, '.') > 0 THEN strpos({am}, '.') - 1 ELSE length({am}) END)"
        pp = f"({ip} + split_part({s}, 'e', 2)::int)"
        body = (
            f"CASE WHEN {pp} >= length({digits}) THEN {digits} || repeat('0', {pp} -"
            f" length({digits})) WHEN {pp} <= 0 THEN '0.' || repeat('0', -{pp}) || {digits}"
            f" ELSE left({digits}, {pp}) || '.' || substr({digits}, {pp} + 1) END"
        )
        return (
            f"CASE WHEN strpos({s}, 'e') = 0 THEN {s} ELSE"
            f" (CASE WHEN left({m}, 1) = '-' THEN '-' ELSE '' END) || ({body}) END"
        )

    def hex(self, c: str) -> str:
        return f"encode({c}, 'hex')"

    def date(self, c: str) -> str:
        return f"to_char({c}, 'YYYY-MM-DD')"

    def datetime(self, c: str) -> str:
        return f"to_char({c}, 'YYYY-MM-DD HH24:MI:SS.US')"

    def timestamptz(self, c: str) -> str:
        return f"to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"

    def time(self, c: str) -> str:
        # to_char has no time with time zone: a time is written as the time of a day
        return f"to_char(DATE '2000-01-01' + {c}::time, 'HH24:MI:SS.US')"

    def cut(self, v: str, unit: str | None) -> str:
        if unit == "s":
            return f"left({v}, -7)"
        if unit == "ms":
            return f"left({v}, -3)"
        return v


class MSSQLRender(Render):
    """SQL Server 2019 or later (the row text is hashed as UTF-8 through a ``_UTF8``
    collation). Not run live here: compile tests assert its SQL.

    Date-times and times go through DATETIME2(7) / TIME(7) (exact for every such type)
    and are cut, not rounded, to six fractional digits, as reads cut the seventh
    (connectors/sql/mssql.py); with :attr:`full_fraction` (SQL Server to SQL Server) all
    seven are kept. Floats: see :meth:`float`.
    """

    #: keep the seventh fractional digit (a hash compared with SQL Server only)
    full_fraction: bool = False

    def concat(self, parts: Sequence[str]) -> str:
        # CONCAT takes 2 to 254 arguments: a wide row is nested
        if len(parts) > 254:
            chunks = [parts[i : i + 254] for i in range(0, len(parts), 254)]
            return self.concat([c[0] if len(c) == 1 else self.concat(c) for c in chunks])
        return "CONCAT(" + ", ".join(parts) + ")"

    def count(self) -> str:
        return "COUNT_BIG(*)"

    def hash_sum(self, row_sql: str) -> str:
        return self.md5_sum(self.utf8(row_sql))

    def utf8(self, text_sql: str) -> str:
        """The text as UTF-8 bytes (VARCHAR in a _UTF8 collation: SQL Server 2019+)."""
        return (
            f"CAST(CAST({text_sql} AS NVARCHAR(MAX)) COLLATE Latin1_General_100_BIN2_UTF8"
            " AS VARCHAR(MAX))"
        )

    def md5_sum(self, data_sql: str) -> str:
        """The sum of the low 60 bits of the MD5 of ``data_sql`` (bytes 9-16, big-endian)."""
        return (
            f"SUM(CAST(CONVERT(BIGINT, SUBSTRING(HASHBYTES('MD5', {data_sql}), 9, 8))"
            " & CAST(1152921504606846975 AS BIGINT) AS DECIMAL(38, 0)))"
        )

    def to_text(self, c: str) -> str:
        return f"CAST({c} AS NVARCHAR(MAX))"

    def text(self, spec: ColumnSpec, c: str) -> str:
        # CONCAT turns NULL into '': keep a NULL (or an '' the rule made NULL) a NULL
        v = self.to_text(c)
        if spec.kind == "uuid":
            v = f"LOWER({v})"
        if spec.rtrim or spec.kind == "char":
            v = self.rtrim(v)
        if spec.empty_null:
            v = f"CASE WHEN DATALENGTH({v}) = 0 THEN NULL ELSE {v} END"
        if spec.lower:
            v = f"LOWER({v})"
        return f"CASE WHEN {v} IS NULL THEN NULL ELSE CONCAT({self.char_length(v)}, ':', {v}) END"

    def char_length(self, v: str) -> str:
        # LEN ignores trailing blanks (the dot keeps them) and counts a surrogate pair as
        # one character only under a supplementary-character (_SC) collation
        return f"LEN(({v}) COLLATE Latin1_General_100_CI_AS_SC + N'.') - 1"

    def boolean(self, c: str) -> str:
        return f"CAST({c} AS CHAR(1))"

    def integer(self, c: str) -> str:
        return f"CAST({c} AS VARCHAR(20))"

    def decimal(self, c: str, scale: int | None) -> str:
        if scale is None:
            return f"CAST({c} AS VARCHAR(50))"
        return f"CAST(CAST({c} AS DECIMAL(38, {scale})) AS VARCHAR(50))"

    def float(self, c: str, kind: str) -> str:
        """The canonical float text (SQL Server has no NaN or infinity).

        From style 3 (17 significant digits, ``d.ddd…E±xxx``) as a 17-digit integer
        ``m17``: float64 takes the first of these that reads back as the same double:
        ``m17`` rounded to 15 digits, style 2 (16 digits), ``m17`` itself; that is the
        shortest round trip when SQL Server's styles 2 and 3 are correctly rounded and
        its text-to-float conversion is exact (rounding 17 digits to 15 cannot pick a
        wrong 15-digit text that reads back: a 15-digit tie never does). float32: ``m17``
        of the value as a double, rounded half to even to 6 digits. Then written
        positionally (:meth:`place`). A value whose text still differs costs a
        row-by-row comparison of its chunk, never a hidden difference.
        """
        a = f"ABS(CAST({c} AS FLOAT))" if kind == "float32" else f"ABS({c})"
        m17, e17 = self._sci(f"CONVERT(VARCHAR(32), {a}, 3)")
        if kind == "float32":
            unit = "CAST(100000000000 AS BIGINT)"  # a bare literal beyond INT is a DECIMAL
            q, r = f"({m17} / {unit})", f"({m17} % {unit})"
            digits = (
                f"{q} + CASE WHEN {r} > 50000000000 OR {r} = 50000000000 AND {q} % 2 = 1"
                " THEN 1 ELSE 0 END"
            )
            shift = f"{e17} - 5"
        else:
            s16 = f"CONVERT(VARCHAR(32), {a}, 2)"
            m16, _ = self._sci(s16)
            r15 = f"ROUND({m17}, -2)"
            # a 16-digit text that reads back never carried into the next power of ten
            # (its 15-digit rounding would then be the same number): m16 * 10 is exact
            digits = (
                f"CASE WHEN CAST(CONCAT({r15}, 'E', {e17} - 16) AS FLOAT) = {a} THEN {r15}"
                f" WHEN CAST({s16} AS FLOAT) = {a} THEN {m16} * 10 ELSE {m17} END"
            )
            shift = f"{e17} - 16"
        text = f"CAST({digits} AS VARCHAR(20))"
        body = self.place(self._strip_zeros(text), f"(LEN({text}) + {shift})")
        return (
            f"CASE WHEN {c} = 0 THEN '0' WHEN {c} <> 0 THEN"
            f" CONCAT(CASE WHEN {c} < 0 THEN '-' END, {body}) END"
        )

    @staticmethod
    def _sci(s: str) -> tuple[str, str]:
        """A style 2/3 text ``d.ddd…E±xxx`` as its digits (a BIGINT) and its exponent."""
        p = f"PATINDEX('%[Ee]%', {s})"
        return (
            f"CAST(REPLACE(LEFT({s}, {p} - 1), '.', '') AS BIGINT)",
            f"CAST(SUBSTRING({s}, {p} + 1, 8) AS INT)",
        )

    @staticmethod
    def _strip_zeros(s: str) -> str:
        return f"REPLACE(RTRIM(REPLACE({s}, '0', ' ')), ' ', '0')"

    def place(self, d: str, pp: str) -> str:
        """Digits ``d`` (no leading or trailing zeros) with the decimal point after the
        first ``pp`` of them (``pp`` may be 0 or less, or beyond ``d``), positionally."""
        return (
            f"CASE WHEN {pp} <= 0 THEN CONCAT('0.', REPLICATE('0', -{pp}), {d})"
            f" WHEN {pp} < LEN({d}) THEN STUFF({d}, {pp} + 1, 0, '.')"
            f" ELSE CONCAT({d}, REPLICATE('0', {pp} - LEN({d}))) END"
        )

    def positional(self, s: str) -> str:
        """As the base (a mantissa ``d.ddd`` whose first digit is not 0, as SQL Server's
        float styles write it), through :meth:`place`."""
        p = f"PATINDEX('%[Ee]%', {s})"
        m = f"REPLACE(LEFT({s}, {p} - 1), '-', '')"
        point = f"CHARINDEX('.', {m})"
        ip = f"(CASE WHEN {point} > 0 THEN {point} - 1 ELSE LEN({m}) END)"
        pp = f"({ip} + CAST(SUBSTRING({s}, {p} + 1, 8) AS INT))"
        d = self._strip_zeros(f"REPLACE({m}, '.', '')")
        return (
            f"CASE WHEN {p} = 0 THEN {s} ELSE CONCAT(CASE WHEN LEFT({s}, 1) = '-' THEN '-'"
            f" END, {self.place(d, pp)}) END"
        )

    def float_abs(self, c: str, step: float) -> str:
        # values beyond the rule's limit are left as they are (dividing would overflow)
        return (
            f"CASE WHEN ABS({c}) < {_num(FLOAT_RULE_LIMIT * step * 2)} THEN"
            f" {self.float(f'ROUND({c} / {_num(step)}, 0)', 'float64')}"
            f" ELSE {self.float(c, 'float64')} END"
        )

    def float_rel(self, c: str, step: float) -> str:
        e = f"FLOOR(LOG(ABS({c}), 2))"
        scaled = f"ROUND({c} / POWER(CAST(2 AS FLOAT), {e}) / {_num(step)}, 0)"
        return (
            f"CASE WHEN {c} = 0 THEN '0' WHEN ABS({c}) >= {_num(FLOAT_RULE_LIMIT)} THEN"
            f" {self.float(c, 'float64')} ELSE CONCAT({e}, ':',"
            f" {self.float(scaled, 'float64')}) END"
        )

    def hex(self, c: str) -> str:
        return f"LOWER(CONVERT(VARCHAR(MAX), {c}, 2))"

    def date(self, c: str) -> str:
        return f"CONVERT(CHAR(10), {c}, 23)"

    def _six(self, text: str, length: int) -> str:
        """A 7-digit fraction text cut to 6 digits (kept with :attr:`full_fraction`)."""
        return text if self.full_fraction else f"LEFT({text}, {length - 1})"

    def datetime(self, c: str) -> str:
        return self._six(f"CONVERT(CHAR(27), CAST({c} AS DATETIME2(7)), 121)", 27)

    def timestamptz(self, c: str) -> str:
        return self._six(
            f"CONVERT(CHAR(27), CAST(SWITCHOFFSET({c}, '+00:00') AS DATETIME2(7)), 121)", 27
        )

    def time(self, c: str) -> str:
        return self._six(f"CONVERT(VARCHAR(16), CAST({c} AS TIME(7)))", 16)

    def cut(self, v: str, unit: str | None) -> str:
        # by the length: a date-time (26 characters) and a time (15) alike
        extra = 1 if self.full_fraction else 0
        if unit == "s":
            return f"LEFT({v}, LEN({v}) - {7 + extra})"
        if unit == "ms":
            return f"LEFT({v}, LEN({v}) - {3 + extra})"
        return v

    def rtrim(self, v: str) -> str:
        return f"RTRIM({v})"


class OracleRender(Render):
    """Oracle 12.1 or later (STANDARD_HASH). Not run live here: compile tests.

    The row text is a VARCHAR2 passed through ``TO_CHAR`` (an NCHAR / NVARCHAR2 part
    would make it national, hashed as UTF-16; a CLOB part makes it a CLOB), so it holds
    4000 bytes (32767 with MAX_STRING_SIZE = EXTENDED): a longer row raises ORA-01489 or
    ORA-22835. With :attr:`lob` the row is built as a CLOB and hashed by
    ``DBMS_CRYPTO.HASH`` (which hashes a CLOB's AL32UTF8 bytes; needs EXECUTE on
    DBMS_CRYPTO): the endpoint retries that way. Hex of a BLOB: its first 2000 bytes
    (RAWTOHEX takes no LOB); a longer one renders a value no engine writes (a random one
    without :attr:`lob`), so its chunk is compared row by row; so does a column in
    :attr:`opaque` (LONG / LONG RAW, which no SQL function may read). In a database whose
    character set is not Unicode (:attr:`utf8` off) the row's UTF-8 bytes are hashed
    (``UTL_I18N.STRING_TO_RAW``: RAW holds 2000 bytes, longer rows are retried as a
    CLOB); NCLOB parts make the CLOB form national, which ``DBMS_CRYPTO.HASH`` (``CLOB
    CHARACTER SET ANY_CS``) also hashes as UTF-8. Known gaps (time only): LENGTH of a
    CLOB counts UTF-16 code units (an emoji is 2); TO_CHAR of a BINARY_DOUBLE is
    ``5.0E-001``."""

    #: build the row as a CLOB hashed with DBMS_CRYPTO (rows over 4000 bytes)
    lob: bool = False
    #: the database character set is Unicode (AL32UTF8 / UTF8): TO_CHAR gives UTF-8
    utf8: bool = True
    #: columns rendered as a marker no engine writes (their chunks go row by row)
    opaque: frozenset[str] = frozenset()

    def concat(self, parts: Sequence[str]) -> str:
        return "(" + " || ".join(parts) + ")"

    def part(self, spec: ColumnSpec) -> str:
        return f"NVL({self.value(spec)}, {self.lit(NULL)})"

    def row(self, specs: Sequence[ColumnSpec]) -> str:
        if not self.lob:
            return super().row(specs)
        parts: list[str] = []
        for i, spec in enumerate(specs):
            if i:
                parts.append(self.lit(SEP))
            parts.append(self.part(spec))
        parts[0] = f"{'TO_CLOB' if self.utf8 else 'TO_NCLOB'}({parts[0]})"
        return self.concat(parts)

    def digest(self, row_sql: str) -> str:
        """The MD5 of the row text's UTF-8 bytes, as RAW."""
        if self.lob:
            return f"DBMS_CRYPTO.HASH({row_sql}, 2)"  # 2: DBMS_CRYPTO.HASH_MD5
        if not self.utf8:
            return f"STANDARD_HASH(UTL_I18N.STRING_TO_RAW({row_sql}, 'AL32UTF8'), 'MD5')"
        return f"STANDARD_HASH(TO_CHAR({row_sql}), 'MD5')"

    def hash_sum(self, row_sql: str) -> str:
        return f"SUM(TO_NUMBER(SUBSTR(RAWTOHEX({self.digest(row_sql)}), 18), 'XXXXXXXXXXXXXXX'))"

    def bucket(self, key_specs: Sequence[ColumnSpec], parts: int) -> str:
        digest = self.digest(self.row(key_specs))
        return f"MOD(TO_NUMBER(SUBSTR(RAWTOHEX({digest}), 1, 8), 'XXXXXXXX'), {int(parts)})"

    def value(self, spec: ColumnSpec) -> str:
        if spec.name in self.opaque:
            return "'L' || RAWTOHEX(SYS_GUID())"
        if spec.kind == "blob":
            return self.blob_hex(self.q(spec.name))
        return super().value(spec)

    def blob_hex(self, c: str) -> str:
        whole = f"LOWER(RAWTOHEX(DBMS_LOB.SUBSTR({c}, 2000, 1)))"
        longer = "RAWTOHEX(DBMS_CRYPTO.HASH({}, 2))" if self.lob else "RAWTOHEX(SYS_GUID())"
        return (
            f"CASE WHEN {c} IS NULL THEN NULL WHEN DBMS_LOB.GETLENGTH({c}) <= 2000 THEN"
            f" {whole} ELSE 'L' || {longer.format(c)} END"
        )

    def char_length(self, v: str) -> str:
        return f"TO_CHAR(LENGTH({v}))"

    def text(self, spec: ColumnSpec, c: str) -> str:
        v = c
        if spec.kind == "uuid":
            v = f"LOWER({v})"
        if spec.rtrim or spec.kind == "char":
            v = f"RTRIM({v})"
        if spec.lower:
            v = f"LOWER({v})"
        # '' is NULL in Oracle whatever the rule says: the length prefix needs a value
        prefix = self.char_length(v)
        if self.lob:  # '4000:' and a 4000-byte value would overflow a VARCHAR2
            prefix = f"TO_CLOB({prefix})"
        return f"NVL2({v}, {prefix} || ':' || {v}, NULL)"

    def boolean(self, c: str) -> str:
        return f"CASE WHEN {c} <> 0 THEN '1' WHEN {c} = 0 THEN '0' END"

    def integer(self, c: str) -> str:
        return f"TO_CHAR({c})"

    def decimal(self, c: str, scale: int | None) -> str:
        if scale is None:  # TO_CHAR writes 0.5 as .5
            return f"REGEXP_REPLACE(TO_CHAR({c}), '^(-?)\\.', '\\10.')"
        if not scale:
            return f"TO_CHAR(ROUND({c}))"
        return f"TO_CHAR({c}, 'FM{'9' * (38 - scale - 1)}0.{'0' * scale}')"

    def float(self, c: str, kind: str) -> str:
        # a NUMBER-based float's TO_CHAR is exact but writes 0.5 as .5; a BINARY_DOUBLE's
        # infinities and NaN are Inf, -Inf and Nan
        text = f"REGEXP_REPLACE(TO_CHAR({c}), '^(-?)\\.', '\\10.')"
        return f"CASE WHEN {c} = 0 THEN '0' ELSE LOWER({text}) END"

    def float_abs(self, c: str, step: float) -> str:
        return self.float(f"ROUND({c} / {_num(step)})", "float64")

    def float_rel(self, c: str, step: float) -> str:
        e = f"FLOOR(LOG(2, ABS({c})))"
        return (
            f"CASE WHEN {c} = 0 THEN '0' ELSE TO_CHAR({e}) || ':' ||"
            f" {self.float(f'ROUND({c} / POWER(2, {e}) / {_num(step)})', 'float64')} END"
        )

    def hex(self, c: str) -> str:
        return f"LOWER(RAWTOHEX({c}))"

    def date(self, c: str) -> str:
        return f"TO_CHAR({c}, 'YYYY-MM-DD')"

    # fractions are written with all nine digits and cut to six, as the driver reads
    # them (CAST AS TIMESTAMP(6) would round a TIMESTAMP(7-9); TIMESTAMP(9) widens a DATE
    # or any TIMESTAMP exactly)
    def datetime(self, c: str) -> str:
        return f"SUBSTR(TO_CHAR(CAST({c} AS TIMESTAMP(9)), 'YYYY-MM-DD HH24:MI:SS.FF9'), 1, 26)"

    def timestamptz(self, c: str) -> str:
        return f"SUBSTR(TO_CHAR(SYS_EXTRACT_UTC({c}), 'YYYY-MM-DD HH24:MI:SS.FF9'), 1, 26)"

    def time(self, c: str) -> str:
        # a time is an INTERVAL DAY(0) TO SECOND here, and TO_CHAR of an interval
        # ignores the format: it is written as the time of a day
        return f"SUBSTR(TO_CHAR(TIMESTAMP '2000-01-01 00:00:00' + {c}, 'HH24:MI:SS.FF9'), 1, 15)"

    def cut(self, v: str, unit: str | None) -> str:
        if unit == "s":
            return f"SUBSTR({v}, 1, LENGTH({v}) - 7)"
        if unit == "ms":
            return f"SUBSTR({v}, 1, LENGTH({v}) - 3)"
        return v


class SQLiteRender(Render):
    """SQLite has no MD5: the row text, its hash and the sums are computed by Python
    functions the SQLite endpoint registers on each connection (:class:`PyHasher`)."""

    def _args(self, specs: Sequence[ColumnSpec]) -> str:
        return self.lit(specs_json(specs)) + "".join(", " + self.q(s.name) for s in specs)

    def row(self, specs: Sequence[ColumnSpec]) -> str:
        return f"migrate_row_text({self._args(specs)})"

    def select(self, specs: Sequence[ColumnSpec], plain: Sequence[ColumnSpec] | None = None) -> str:
        out = f"COUNT(*), migrate_hash_sum({self._args(specs)})"
        return out + (f", migrate_hash_sum({self._args(plain)})" if plain else "")

    def bucket(self, key_specs: Sequence[ColumnSpec], parts: int) -> str:
        return f"migrate_key_bucket({int(parts)}, {self._args(key_specs)})"


class PyHasher:
    """The Python side of :class:`SQLiteRender`: raw values are turned into portable ones
    by ``converter(specs)`` (the endpoint's row converter), then written canonically."""

    def __init__(self, converter: Callable[[list[ColumnSpec]], Callable[[Any], Any] | None]):
        self._converter = converter
        self._cache: dict[str, tuple[list[ColumnSpec], Callable[[Any], Any] | None]] = {}

    def _prepare(self, spec_json: str) -> tuple[list[ColumnSpec], Callable[[Any], Any] | None]:
        got = self._cache.get(spec_json)
        if got is None:
            specs = specs_from_json(spec_json)
            got = self._cache[spec_json] = (specs, self._converter(specs))
        return got

    def row_text(self, spec_json: str, *values: Any) -> str:
        specs, conv = self._prepare(spec_json)
        row = conv(tuple(values)) if conv is not None else values
        return row_text(specs, row)

    def key_bucket(self, parts: int, spec_json: str, *values: Any) -> int:
        text = self.row_text(spec_json, *values)
        return int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16) % parts

    def aggregate(self) -> type:
        """An aggregate class for ``sqlite3.Connection.create_aggregate`` (the exact sum is
        returned as text: SQLite's integers stop at 2**63)."""
        hasher = self

        class HashSum:
            def __init__(self) -> None:
                self.total = 0

            def step(self, spec_json: str, *values: Any) -> None:
                self.total += hash60(hasher.row_text(spec_json, *values))

            def finalize(self) -> str:
                return str(self.total)

        return HashSum


RENDERS: dict[str, type[Render]] = {
    "mysql": MySQLRender,
    "postgresql": PostgresRender,
    "mssql": MSSQLRender,
    "oracle": OracleRender,
    "sqlite": SQLiteRender,
}


def specs_json(specs: Sequence[ColumnSpec]) -> str:
    """The specs as compact JSON (SQLite's hash function receives them as its argument)."""
    return json.dumps([s.to_json() for s in specs], separators=(",", ":"))


def specs_from_json(text: str) -> list[ColumnSpec]:
    return [ColumnSpec(**d) for d in json.loads(text)]
