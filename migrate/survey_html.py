"""The survey (``migrate check`` / ``migrate run --dry-run``) as one self-contained HTML file.

Contract: :func:`survey_html` takes the report of :func:`migrate.dryrun.dry_run` and
returns a complete document that needs no network and no script: inline CSS, and an
inline SVG chart of the volume and the estimated time of each wave (two bars per wave,
each scaled to the largest of its kind). Then blockers and warnings, connections
(latency, probe, privileges), per wave and step the tables or files, the estimate and
the rollback plan, and, after a pilot (``report["pilot"]``), what it copied per step and
table, at what rate, how it was checked and whether it was removed again. Every value
is HTML-escaped; the report holds no secret (URLs are shown with the password masked),
so neither does the page.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from migrate.dryrun import human_seconds
from migrate.file_report import human_bytes
from migrate.html_report import _CSS

_MORE_CSS = """
.blocker{color:#b00020;font-weight:600}.warning{color:#8a5a00;font-weight:600}
.ok{color:#176b1e}.no{color:#b00020;font-weight:600}.unknown{color:#8a5a00}
svg text{font:12px system-ui,sans-serif;fill:#222}
ul{margin:.3em 0 .8em 1.2em;padding:0}
"""
_BAR = 420  # the longest bar, in pixels
_ROW = 54  # height of one wave in the chart


def survey_html(report: dict[str, Any], title: str | None = None) -> str:
    """The page for ``report`` (see the module docstring)."""
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    blockers, warnings = report.get("blockers", []), report.get("warnings", [])
    est = report.get("estimate") or {}
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title or 'migrate survey: ' + report['plan'])}</title>",
        f"<style>{_CSS}{_MORE_CSS}</style></head><body>",
        f"<h1>Survey of plan {escape(report['plan'])}</h1>",
        f'<p><span class="{"blocker" if blockers else "ok"}">{len(blockers)} blocker(s)</span>,'
        f' <span class="{"warning" if warnings else "ok"}">{len(warnings)} warning(s)</span>;'
        f" estimated duration {escape(human_seconds(est.get('seconds', 0)))}"
        f" ({escape(est.get('basis', ''))}).<br>"
        f'<span class="muted">{escape(when)}; nothing was written to any target; row counts'
        f" {'exact' if report.get('exact') else 'from the statistics'};"
        f" state {escape(report.get('state', ''))}</span></p>",
        f'<p class="muted">How the estimate is made: {escape(est.get("formula", ""))}</p>',
        "<h2>Waves, in the order they run</h2>",
        _chart(report["waves"]),
        "<table><tr><th>wave</th><th>batch</th><th>layer</th><th>steps</th><th>rows</th>"
        "<th>bytes</th><th>files</th><th>estimate</th></tr>",
    ]
    for w in report["waves"]:
        out.append(
            f'<tr><td class="n">{w["wave"]}</td><td>{escape(w["batch"])}</td>'
            f"<td>{escape(w['layer'])}</td>"
            f"<td>{escape(', '.join(s['name'] for s in w['steps']))}</td>"
            f'<td class="n">{w.get("rows", 0):,}</td>'
            f'<td class="n">{escape(human_bytes(w.get("bytes", 0)))}</td>'
            f'<td class="n">{w.get("files", 0):,}</td>'
            f'<td class="n">{escape(human_seconds(w.get("estimate_s", 0)))}</td></tr>'
        )
    out.append("</table>")
    out.extend(_findings("Blockers", "blocker", blockers))
    out.extend(_findings("Warnings", "warning", warnings))
    out.extend(_connections(report.get("connections", [])))
    for w in report["waves"]:
        for s in w["steps"]:
            out.extend(_step(w, s))
    if report.get("pilot"):
        out.extend(_pilot(report["pilot"]))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _pilot(pilot: dict[str, Any]) -> list[str]:
    """What the pilot copied per step and table (rows or files, bytes, seconds, the
    measured rate, how it was checked), and whether its copies were removed again."""
    prefix = pilot.get("prefix")
    where = f" under the prefix <code>{escape(prefix)}</code>" if prefix else ""
    out = [
        '<h2 id="pilot">Pilot</h2>',
        f"<p>Up to {pilot.get('rows', 0):,} rows per table and files per file step were copied"
        f" into the real targets{where}, checked, and then removed; the plan's state was not"
        " touched. The estimates above use the rates measured here.</p>",
        "<table><tr><th>step</th><th>table / files</th><th>target</th><th>copied</th>"
        "<th>seconds</th><th>rate</th><th>status</th><th>checked by</th></tr>",
    ]
    for name, s in (pilot.get("steps") or {}).items():
        m = (pilot.get("measured") or {}).get(name) or {}
        status = s.get("status", "")
        cls = "ok" if status == "done" else "no"
        if s.get("files") is not None:
            f = s["files"]
            secs = f.get("seconds") or 0
            rate = f"{human_bytes(f['bytes'] / secs)}/s" if secs and f.get("bytes") else ""
            out.append(
                f"<tr><td>{escape(name)}</td><td>files</td><td></td>"
                f'<td class="n">{f.get("copied", 0):,} file(s),'
                f" {escape(human_bytes(f.get('bytes') or 0))}</td>"
                f'<td class="n">{secs:.2f}</td><td class="n">{escape(rate)}</td>'
                f'<td class="{cls}">{escape(status)}</td>'
                "<td>each file's hash, as it was written</td></tr>"
            )
        else:
            for t in s.get("tables") or []:
                secs = t.get("seconds") or 0
                rows = t.get("rows") or 0
                rate = f"{rows / secs:,.0f} rows/s" if secs and rows else ""
                how = "; ".join(t.get("notes") or []) or "chunk counted on both sides"
                tcls = "ok" if t.get("status") == "done" else "no"
                out.append(
                    f"<tr><td>{escape(name)}</td><td>{escape(t['table'])}</td>"
                    f"<td>{escape(t.get('target_table') or '')}</td>"
                    f'<td class="n">{rows:,} row(s)</td><td class="n">{secs:.2f}</td>'
                    f'<td class="n">{escape(rate)}</td>'
                    f'<td class="{tcls}">{escape(t.get("status") or "")}</td>'
                    f"<td>{escape(how)}</td></tr>"
                )
            if m.get("rows") and m.get("seconds"):
                out.append(
                    f'<tr><td>{escape(name)}</td><td colspan="2">step, measured</td>'
                    f'<td class="n">{m["rows"]:,} row(s)</td>'
                    f'<td class="n">{m["seconds"]:.2f}</td>'
                    f'<td class="n">{m["rows"] / m["seconds"]:,.0f} rows/s</td>'
                    f'<td class="{cls}">{escape(status)}</td><td></td></tr>'
                )
        if s.get("error"):
            out.append(
                f'<tr><td>{escape(name)}</td><td colspan="7" class="no">'
                f"{escape(s['error'])}</td></tr>"
            )
    out.append("</table>")
    if pilot.get("rolled_back"):
        out.append(
            f'<p class="ok">Removed: {pilot.get("undone", 0):,} recorded change(s) rolled'
            " back; the targets are as they were.</p>"
        )
    else:
        out.append(
            '<p class="no">The pilot\'s copies were NOT all removed: see the blockers (its'
            " rollback scripts were kept).</p>"
        )
    return out


def _chart(waves: list[dict[str, Any]]) -> str:
    """Two bars per wave: volume (bytes) and estimated time, each scaled to its maximum."""
    top_bytes = max((w.get("bytes", 0) for w in waves), default=0) or 1
    top_secs = max((w.get("estimate_s", 0) for w in waves), default=0) or 1
    left = 170
    height = max(1, len(waves)) * _ROW + 30
    width = left + _BAR + 150
    parts = [
        f'<svg width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="volume and estimated'
        ' time per wave">',
        '<rect x="0" y="4" width="12" height="12" fill="#3b6ea5"/>'
        '<text x="16" y="15">volume</text>'
        '<rect x="90" y="4" width="12" height="12" fill="#d9822b"/>'
        '<text x="106" y="15">estimated time</text>',
    ]
    if not waves:
        parts.append('<text x="0" y="40">no step selected</text>')
    for i, w in enumerate(waves):
        y = 30 + i * _ROW
        size, secs = w.get("bytes", 0), w.get("estimate_s", 0)
        bw = max(1, round(_BAR * size / top_bytes)) if size else 0
        tw = max(1, round(_BAR * secs / top_secs)) if secs else 0
        label = f"{w['wave']}. {w['batch']} · {w['layer']}"
        label = label if len(label) <= 26 else label[:25] + "…"
        parts.append(f'<text x="0" y="{y + 22}">{escape(label)}</text>')
        parts.append(
            f'<rect x="{left}" y="{y + 4}" width="{bw}" height="18" fill="#3b6ea5"/>'
            f'<text x="{left + bw + 6}" y="{y + 18}">{escape(human_bytes(size))}</text>'
        )
        parts.append(
            f'<rect x="{left}" y="{y + 26}" width="{tw}" height="18" fill="#d9822b"/>'
            f'<text x="{left + tw + 6}" y="{y + 40}">{escape(human_seconds(secs))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _findings(title: str, level: str, findings: list[dict[str, Any]]) -> list[str]:
    if not findings:
        return [f'<h2>{title}</h2><p class="ok">none</p>']
    out = [
        f"<h2>{title} ({len(findings)})</h2>",
        "<table><tr><th>where</th><th>kind</th><th>what</th></tr>",
    ]
    for f in findings:
        out.append(
            f"<tr><td>{escape(f['where'])}</td><td>{escape(f.get('kind', ''))}</td>"
            f'<td class="{level}">{escape(f["message"])}</td></tr>'
        )
    out.append("</table>")
    return out


def _held(value: bool | None) -> str:
    if value is True:
        return '<span class="ok">held</span>'
    if value is False:
        return '<span class="no">missing</span>'
    return '<span class="unknown">not checked</span>'


def _connections(conns: list[dict[str, Any]]) -> list[str]:
    if not conns:
        return []
    out = [
        "<h2>Connections</h2>",
        "<table><tr><th>name</th><th>roles</th><th>endpoint</th><th>version</th>"
        "<th>round trip</th><th>read probe</th></tr>",
    ]
    for c in conns:
        if not c["reachable"]:
            out.append(
                f"<tr><td>{escape(c['name'])}</td><td>{escape(', '.join(c['roles']))}</td>"
                f'<td colspan="4" class="no">unreachable: {escape(c["error"] or "")}</td></tr>'
            )
            continue
        p = c.get("probe")
        if p and p.get("rows_per_s"):
            probe = (
                f"{p['rows_per_s']:,.0f} rows/s, {human_bytes(p['bytes_per_s'])}/s"
                f" ({p['rows']:,} rows of {p['table']} in {p['seconds']:.2f} s)"
            )
        elif p and p.get("bytes_per_s"):
            probe = (
                f"{human_bytes(p['bytes_per_s'])}/s ({human_bytes(p['bytes'])} of"
                f" {p['files']} file(s) in {p['seconds']:.2f} s)"
            )
        else:
            probe = "nothing read"
        lat = f"{c['latency_ms']:.2f} ms" if c.get("latency_ms") is not None else ""
        out.append(
            f"<tr><td>{escape(c['name'])}</td><td>{escape(', '.join(c['roles']))}</td>"
            f"<td>{escape(c.get('endpoint') or '')}<br><code>{escape(c['url'])}</code></td>"
            f'<td>{escape(c.get("version") or "")}</td><td class="n">{escape(lat)}</td>'
            f"<td>{escape(probe)}</td></tr>"
        )
    out.append("</table>")
    for c in conns:
        rows = c.get("privileges") or []
        if not rows and not c.get("cdc"):
            continue
        out.append(f"<h3>{escape(c['name'])}: privileges needed and held</h3>")
        out.append(
            "<table><tr><th>privilege</th><th>on</th><th>needed for</th><th>held</th>"
            "<th>how it was found out</th></tr>"
        )
        for r in rows:
            out.append(
                f"<tr><td>{escape(r['privilege'])}</td><td>{escape(str(r['on']))}</td>"
                f"<td>{escape(r['needed_for'])}</td><td>{_held(r['held'])}</td>"
                f"<td>{escape(r['how'])}</td></tr>"
            )
        if c.get("cdc"):
            out.append(
                "<tr><td>binary log (cdc)</td><td>server</td><td>change capture</td>"
                f"<td>{_held(c['cdc']['ok'])}</td><td>{escape(c['cdc']['message'])}</td></tr>"
            )
        out.append("</table>")
    return out


def _step(w: dict[str, Any], s: dict[str, Any]) -> list[str]:
    out = [
        f"<h2>wave {w['wave']} · step {escape(s['name'])} ({escape(s['source'])} →"
        f" {escape(s['target'])}, mode {escape(s['mode'])})</h2>"
    ]
    if s["error"]:
        out.append(f'<p class="no">{escape(s["error"])}</p>')
        return out
    est = s.get("estimate") or {}
    out.append(
        f"<p>estimate {escape(human_seconds(est.get('seconds', 0)))}"
        f" ({escape(est.get('basis', ''))}); {s.get('rows', 0):,} rows,"
        f" {escape(human_bytes(s.get('bytes', 0)))}</p>"
    )
    if s.get("files") is not None:
        f = s["files"]
        largest = f["largest"]
        big = f"; largest {largest['path']} ({human_bytes(largest['size'])})" if largest else ""
        out.append(
            f"<p>{f['files']:,} files, {escape(human_bytes(f['bytes']))}, {f['dirs']:,} empty"
            f" directories{escape(big)}; to copy {f['copy_files']:,} files"
            f" ({escape(human_bytes(f['copy_bytes']))}), {f['unchanged']:,} unchanged,"
            f" {f['delete_files']:,} to delete</p>"
        )
        if f["refused"]:
            out.append("<table><tr><th>name the target cannot hold</th><th>why</th></tr>")
            for r in f["refused"][:200]:
                out.append(
                    f"<tr><td><code>{escape(r['path'])}</code></td>"
                    f'<td class="no">{escape(r["reason"])}</td></tr>'
                )
            out.append("</table>")
    else:
        out.append(
            "<table><tr><th>table</th><th>target</th><th>rows</th><th>bytes</th><th>key</th>"
            "<th>cursor</th><th>action</th><th>estimate</th><th>undo</th></tr>"
        )
        for t in s["tables"]:
            rows = "?" if t["rows"] is None else f"{t['rows']:,}"
            size = "" if t.get("bytes") is None else human_bytes(t["bytes"])
            cur = t.get("cursor")
            cursor = (
                f"{cur['column']} ({'indexed' if cur['indexed'] else 'NOT indexed'})" if cur else ""
            )
            out.append(
                f"<tr><td>{escape(t['table'])}</td><td>{escape(t['target_table'])}</td>"
                f'<td class="n">{escape(rows)}<br><span class="muted">'
                f"{escape(t.get('rows_from') or '')}</span></td>"
                f'<td class="n">{escape(size)}</td>'
                f"<td>{escape(', '.join(t['key']) or 'none')}</td><td>{escape(cursor)}</td>"
                f"<td>{escape(t['action'])}</td>"
                f'<td class="n">{escape(human_seconds(t.get("estimate_s") or 0))}</td>'
                f"<td>{escape(t['undo'])}</td></tr>"
            )
        out.append("</table>")
        if len(s.get("load_order", [])) > 1:
            out.append(f"<p>load order: {escape(' → '.join(s['load_order']))}</p>")
    for note in s.get("notes", []):
        out.append(f'<p class="muted">{escape(note)}</p>')
    rb = s.get("rollback") or {}
    if rb.get("can_undo") or rb.get("cannot_undo"):
        out.append("<p>Rollback plan:</p><ul>")
        out.extend(f"<li>{escape(x)}</li>" for x in rb.get("can_undo", []))
        out.extend(
            f'<li class="muted">not undone: {escape(x)}</li>' for x in rb.get("cannot_undo", [])
        )
        out.append("</ul>")
    return out
