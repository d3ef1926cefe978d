"""A validation report as one self-contained HTML file (no script, no network).

Contract: :func:`validation_html` takes the JSON of a validation (``result_to_json``) and
returns a complete document: per step and table the rows on each side, chunks, method,
status and time; then each table's differing rows (every one the validation kept), the
rules used and the notes. Every value is HTML-escaped.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from migrate.report import check_status, rules_used

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.equal{color:#176b1e;font-weight:600}.differences,.failed{color:#b00020;font-weight:600}
code{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
.muted{color:#666}
"""


def _v(value: Any) -> str:
    if value is None:
        return '<span class="muted">NULL</span>'
    if value == "":
        return '<span class="muted">(empty string)</span>'
    return f"<code>{escape(str(value))}</code>"


def _status(t: dict[str, Any]) -> str:
    return f'<span class="{escape(t["status"])}">{escape(check_status(t))}</span>'


def validation_html(data: dict[str, Any], title: str | None = None) -> str:
    """The report for ``data`` (see the module docstring)."""
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title or 'migrate validation: ' + data['plan'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Validation of plan {escape(data['plan'])}</h1>",
        f'<p><span class="{escape(data["status"])}">{escape(data["status"])}</span>:'
        f" {escape(data.get('message') or '')}<br>"
        f'<span class="muted">{escape(when)}; {data.get("seconds", 0):.1f} s;'
        f" values {'masked' if _masked(data) else 'shown'}</span></p>",
        "<table><tr><th>step</th><th>table</th><th>source rows</th><th>target rows</th>"
        "<th>chunks</th><th>differing chunks</th><th>method</th><th>status</th>"
        "<th>time</th></tr>",
    ]
    for t in data["tables"]:
        name = (
            t["table"]
            if t["table"] == t["target_table"]
            else (f"{t['table']} → {t['target_table']}")
        )
        out.append(
            f"<tr><td>{escape(t['step'])}</td><td>{escape(name)}</td>"
            f'<td class="n">{t["source_rows"]:,}</td><td class="n">{t["target_rows"]:,}</td>'
            f'<td class="n">{t["chunks"]:,}</td><td class="n">{t["chunks_differing"]:,}</td>'
            f"<td>{escape(t['method'] or '')}</td><td>{_status(t)}</td>"
            f'<td class="n">{t["seconds"]:.2f} s</td></tr>'
        )
    out.append("</table>")
    for t in data["tables"]:
        out.extend(_table_section(t))
    for f in data.get("files", []):
        out.extend(_file_section(f))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _file_section(f: dict[str, Any]) -> list[str]:
    """A file step's check: counts and bytes per side, then every listed difference."""
    out = [
        f"<h2>files: {escape(f['step'])} ({escape(f['source'])} → {escape(f['target'])})</h2>",
        f'<p><span class="{escape(f["status"])}">{escape(f["status"])}</span>;'
        f" {escape(f.get('method') or '')}; {f['source_files']:,} / {f['target_files']:,}"
        f" files, {f['source_bytes']:,} / {f['target_bytes']:,} bytes (source / target);"
        f" {f['hashed']:,} compared by content</p>",
    ]
    if f.get("error"):
        out.append(f'<p class="failed">{escape(f["error"])}</p>')
    for note in f.get("notes", []):
        out.append(f'<p class="muted">{escape(note)}</p>')
    rows = [("missing", p, "not on the target", "") for p in f["missing"]]
    rows += [("extra", p, "not on the source", "") for p in f["extra"]]
    rows += [
        (d["what"], d["path"], str(d["source"] or ""), str(d["target"] or ""))
        for d in f["different"]
    ]
    if rows:
        out.append("<table><tr><th>kind</th><th>path</th><th>source</th><th>target</th></tr>")
        for kind, path, a, b in rows:
            out.append(
                f"<tr><td>{escape(kind)}</td><td><code>{escape(path)}</code></td>"
                f"<td>{escape(a)}</td><td>{escape(b)}</td></tr>"
            )
        out.append("</table>")
        more = sum(f.get("more", {}).values())
        if more:
            out.append(f'<p class="muted">… and {more:,} more not listed</p>')
    return out


def _masked(data: dict[str, Any]) -> bool:
    return any(t.get("values_masked") for t in data["tables"])


def _table_section(t: dict[str, Any]) -> list[str]:
    if not (t["diffs"] or t["rules"] or t["notes"] or t["error"]):
        return []
    out = [f"<h2>{escape(t['step'])} / {escape(t['table'])}</h2>"]
    if t["error"]:
        out.append(f'<p class="failed">{escape(t["error"])}</p>')
    if t["rules"]:
        out.append(f"<p>Rules: {escape('; '.join(t['rules']))}; {escape(rules_used(t))}.</p>")
    for note in t["notes"]:
        out.append(f'<p class="muted">{escape(note)}</p>')
    if t["diffs"]:
        total = t["missing"] + t["extra"] + t["changed"]
        shown = len(t["diffs"])
        head = f"{total:,} differing row(s)" + (
            f", the first {shown:,} listed" if shown < total else ""
        )
        key = ", ".join(t["key"])
        out.append(f"<p>{escape(head)}; key ({escape(key)}).</p>")
        out.append(
            "<table><tr><th>kind</th><th>key</th><th>column</th><th>source</th><th>target</th></tr>"
        )
        for d in t["diffs"]:
            k = ", ".join("NULL" if v is None else str(v) for v in d["key"])
            if d["kind"] != "changed":
                where = "not on the target" if d["kind"] == "missing" else "not on the source"
                out.append(
                    f"<tr><td>{escape(d['kind'])}</td><td><code>{escape(k)}</code></td>"
                    f'<td colspan="3" class="muted">{where}</td></tr>'
                )
                continue
            for c in d["columns"]:
                out.append(
                    f"<tr><td>changed</td><td><code>{escape(k)}</code></td>"
                    f"<td>{escape(c['column'])}</td><td>{_v(c['source'])}</td>"
                    f"<td>{_v(c['target'])}</td></tr>"
                )
        out.append("</table>")
    return out
