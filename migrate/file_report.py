"""Render a file step's validation (``validators.files.file_check_to_json``) on a console.

Contract: one summary line (counts and bytes of both sides, how the content was compared,
the verdict), then at most ``rows_shown`` differing paths (missing, extra, then different),
a "… and N more" line when some were left out, the error and the notes. Paths are shown
with rich markup escaped (names can hold ``[`` and ``]``). Reads nothing but its input.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

_STYLE = {"equal": "green", "differences": "red", "error": "red"}


def human_bytes(n: float) -> str:
    """Bytes in binary units, as every report shows them: ``441.2 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns


def _files(n: int) -> str:
    return f"{n:,} file" + ("" if n == 1 else "s")


def summary_line(c: dict[str, Any]) -> str:
    """The one-line summary of a check (plain text, markup not escaped)."""
    head = f"step {c['step']}: "
    if c["status"] == "error":
        return head + f"could not be compared: {c['error']}"
    same = c["source_files"] == c["target_files"] and c["source_bytes"] == c["target_bytes"]
    if same:
        sides = f"{_files(c['source_files'])}, {human_bytes(c['source_bytes'])} on both sides"
    else:
        sides = (
            f"{_files(c['source_files'])}, {human_bytes(c['source_bytes'])} on the source;"
            f" {_files(c['target_files'])}, {human_bytes(c['target_bytes'])} on the target"
        )
    if c.get("source_dirs") or c.get("target_dirs"):
        sd, td = c.get("source_dirs", 0), c.get("target_dirs", 0)
        sides += f" (+{sd:,} empty dir(s))" if sd == td else f" (+{sd:,}/{td:,} empty dir(s))"
    if c["method"].startswith("count+checksum"):
        methods = sorted(c["hash_methods"].items(), key=lambda kv: (-kv[1], kv[0]))
        how = ", ".join(f"{m} {n:,}" for m, n in methods)
        compared = f"checksums of {_files(c['hashed'])} compared" + (f" ({how})" if how else "")
    else:
        compared = "lists and sizes compared (no checksums)"
    return f"{head}{sides}; {compared}: {_verdict(c)}"


def _verdict(c: dict[str, Any]) -> str:
    if c["status"] != "differences":
        return c["status"]
    counts = c["counts"]
    parts = [
        f"{counts[k]:,} {word}"
        for k, word in (("missing", "missing"), ("extra", "extra"), ("different", "different"))
        if counts[k]
    ]
    return "differences: " + ", ".join(parts)


def _diff_line(d: dict[str, Any]) -> str:
    what, path = d["what"], escape(d["path"])
    if what == "unreadable":
        side = "source" if d["source"] is not None else "target"
        return f"  unreadable {path}  ({side}: {escape(str(d[side]))})"
    if what == "size":
        return f"  size       {path}  {d['source']:,} -> {d['target']:,} bytes"
    return f"  {what:10} {path}  {escape(str(d['source']))} -> {escape(str(d['target']))}"


def print_file_check(console: Console, check_json: dict[str, Any], rows_shown: int = 20) -> None:
    """Print one file step's validation (``file_check_to_json``): see the module contract."""
    c = check_json
    style = _STYLE.get(c["status"], "yellow")
    console.print(f"[{style}]{escape(summary_line(c))}[/]", highlight=False)
    lines: list[str] = []
    lines += [f"  missing    {escape(p)}  (not on the target)" for p in c["missing"]]
    lines += [f"  extra      {escape(p)}  (not on the source)" for p in c["extra"]]
    lines += [_diff_line(d) for d in c["different"]]
    for line in lines[:rows_shown]:
        console.print(line, highlight=False)
    total = sum(c["counts"].values()) if "counts" in c else len(lines)
    more = total - min(len(lines), rows_shown)
    if more > 0:
        console.print(f"  … and {more:,} more", highlight=False)
    for note in c["notes"]:
        console.print(f"  [yellow]note: {escape(note)}[/]", highlight=False)
