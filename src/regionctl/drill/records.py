"""Stored drills: one JSON record per drill under the state directory, and a self-contained HTML page with its
timeline (server-rendered SVG: acknowledgements per second per region, lost ones in red, the fault and each
runbook step marked)."""

from __future__ import annotations

import html
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

from regionctl.errors import InputError, NotFoundError
from regionctl.runtime.topology import Topology

DRILL_ID = re.compile(r"^drill-\d{8}-\d{6}-[0-9a-f]{4}$")
COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b")
LAG_COLOURS = ("#000000", "#7f7f7f")


def new_drill_id() -> str:
    return f"drill-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def drills_dir(topo: Topology) -> Path:
    return topo.paths.state / "drills"


def save(topo: Topology, record: dict[str, Any]) -> Path:
    root = drills_dir(topo)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{record['id']}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
    tmp.replace(path)
    (root / f"{record['id']}.html").write_text(page(record))
    return path


def load(topo: Topology, drill_id: str) -> dict[str, Any]:
    if not DRILL_ID.match(drill_id):
        raise InputError(f"{drill_id!r} is not a drill id (drill-YYYYMMDD-HHMMSS-xxxx)")
    path = drills_dir(topo) / f"{drill_id}.json"
    if not path.exists():
        raise NotFoundError(f"no drill {drill_id}; `regionctl drill list` shows the stored ones")
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def listing(topo: Topology, limit: int = 50) -> list[dict[str, Any]]:
    """Newest first: id, fault, verdict, recovery, acknowledged and lost writes."""
    rows = []
    root = drills_dir(topo)
    for path in sorted(root.glob("drill-*.json"), reverse=True)[:limit] if root.exists() else []:
        try:
            r = json.loads(path.read_text())
        except ValueError:
            continue
        f = r.get("figures", {})
        rows.append({"id": r["id"], "fault": r["spec"]["fault"], "runbook": r["spec"]["runbook"],
                     "mode": r["spec"]["mode"], "verdict": r["verdict"], "reason": r["reason"],
                     "acknowledged": f.get("acknowledged"),
                     "lost": f.get("lost"), "unreported": r["check"]["counts"].get("unreported"),
                     "recovery_s": f.get("recovery_s"), "write_outage_s": f.get("write_outage_s"),
                     "fault_at": r.get("timeline", {}).get("fault_at")})
    return rows


def stored_page(topo: Topology, drill_id: str) -> str:
    """The stored HTML page of a drill (the console serves it)."""
    load(topo, drill_id)  # checks the id and that it exists
    return (drills_dir(topo) / f"{drill_id}.html").read_text()


def page(record: dict[str, Any]) -> str:
    """The drill's HTML page: verdict, figures, the timeline plot and the accounting."""
    esc = html.escape
    figures = "".join(f"<tr><th>{esc(k)}</th><td>{esc(json.dumps(v, default=str))}</td></tr>"
                      for k, v in record["figures"].items())
    counts = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in record["check"]["counts"].items())
    listed = "".join(f"<li>{esc(x)}</li>" for x in record["check"]["unreported"] + record["check"]["reported_present"])
    colour = "#2e7d32" if record["verdict"] == "PASS" else "#c62828"
    then = ", then Failback" if record["spec"]["failback"] else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(record['id'])}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:2px 8px;text-align:left}}.verdict{{color:{colour};font-weight:bold}}</style>
</head><body><h1>{esc(record['id'])}: <span class="verdict">{esc(record['verdict'])}</span></h1>
<p>{esc(record['reason'])}</p>
<p>fault <b>{esc(record['spec']['fault'])}</b> in {esc(record['region'])}, then {esc(record['spec']['runbook'])}
({esc(record['spec']['mode'])}) to {esc(record['to_region'])}{then}</p>
{timeline_svg(record)}
<h2>Figures</h2><table>{figures}</table>
<h2>Every acknowledged write</h2><table>{counts}</table><ul>{listed}</ul>
</body></html>"""


def timeline_svg(record: dict[str, Any], width: int = 900, height: int = 220) -> str:
    """Stacked bars per second: surviving acknowledgements per region, lost ones in red on top; vertical lines
    for the fault, each runbook step's end, the revert and the failback."""
    series: dict[str, dict[str, list[int]]] = record.get("series") or {}
    seconds = max([len(s[k]) for s in series.values() for k in s] + [len(record.get("error_series") or [])],
                  default=1)
    totals = [sum((s[k][i] if i < len(s[k]) else 0) for s in series.values() for k in s) for i in range(seconds)]
    top = max(totals, default=1) or 1
    bar = width / max(seconds, 1)
    start = record["timeline"]["load_started"]
    parts = []
    for i in range(seconds):
        y = float(height)
        for n, (region, kinds) in enumerate(sorted(series.items())):
            for kind, fill in (("surviving", COLOURS[n % len(COLOURS)]), ("lost", "#d62728")):
                value = kinds[kind][i] if i < len(kinds[kind]) else 0
                if value:
                    h = value / top * (height - 20)
                    y -= h
                    parts.append(f'<rect x="{i * bar:.1f}" y="{y:.1f}" width="{max(bar - 1, 1):.1f}" height="{h:.1f}" '
                                 f'fill="{fill}"><title>{region} {kind}: {value} at +{i}s</title></rect>')
    errors = record.get("error_series") or []
    for i, value in enumerate(errors):  # client errors: a red tick under the bars
        if value:
            parts.append(f'<rect x="{i * bar:.1f}" y="{height + 2}" width="{max(bar - 1, 1):.1f}" height="8" '
                         f'fill="#ff7f0e"><title>{value} failed purchases at +{i}s</title></rect>')
    lag = record.get("lag_series") or {}
    top_lag = max((row[1] or 0 for rows in lag.values() for row in rows), default=0)
    for n, (database, rows) in enumerate(sorted(lag.items())):  # each standby's lag, scaled to the chart
        points = " ".join(f"{row[0] * bar:.1f},{height - (row[1] or 0) / top_lag * (height - 20):.1f}"
                          for row in rows if row[1] is not None) if top_lag else ""
        if points:
            parts.append(f'<polyline points="{points}" fill="none" stroke="{LAG_COLOURS[n % 2]}" stroke-width="1.5">'
                         f'<title>{html.escape(database)} standby lag (max {top_lag} B)</title></polyline>')
    marks = [("fault", record["timeline"].get("fault_at")), ("reverted", record["timeline"].get("reverted_at")),
             ("failback", record["timeline"].get("failback_started"))]
    marks += [(f"{s['what']}: {s['step']}", s.get("ended_at")) for s in record["timeline"].get("steps", [])]
    for label, at in marks:
        if at:
            x = (at - start) * bar
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" stroke="#555" stroke-dasharray="3,3">'
                         f'<title>{html.escape(label)} at +{at - start:.2f}s</title></line>')
    legend = " ".join(f'<span style="color:{COLOURS[n % len(COLOURS)]}">&#9632; {html.escape(r)}</span>'
                      for n, r in enumerate(sorted(series)))
    return (f'<h2>Timeline</h2><p>acknowledgements per second {legend} <span style="color:#d62728">&#9632; lost'
            f'</span> <span style="color:#ff7f0e">&#9632; failed purchases</span>; lines: standby lag in bytes '
            f'(orders black, catalog grey, scaled to its maximum); dashed: fault, steps, revert, '
            f'failback (hover for names)</p><svg width="{width}" height="{height + 12}" role="img">{"".join(parts)}'
            '</svg>')
