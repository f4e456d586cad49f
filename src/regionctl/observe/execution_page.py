"""One runbook execution as a page: its steps on a timeline (start, end, attempts, the time spent waiting for an
approval), the recovery time marked, each step's outputs and the reconciliation reports it produced.

Rendered on the server from the runbook API's view and journal events; a pure function, unit-tested.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

STATUS_COLOURS = {"succeeded": "#2ca02c", "failed": "#d62728", "running": "#1f77b4", "waiting": "#ff7f0e",
                  "skipped": "#bbb", "cancelled": "#7f7f7f"}
ROW, LEFT, WIDTH = 22, 190, 900


def _when(at: float | None) -> str:
    return "" if at is None else time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d} UTC"


def waits(events: Sequence[Mapping[str, Any]], steps: Sequence[Mapping[str, Any]], now: float
          ) -> dict[str, tuple[float, float]]:
    """step -> (waiting since, until): from its ``step.waiting`` event to its end (now while it still waits)."""
    ended = {s["step"]: s.get("ended_at") for s in steps}
    out = {}
    for e in events:
        if e.get("kind") == "step.waiting" and e.get("step") and e["step"] not in out:
            out[e["step"]] = (float(e["at"]), float(ended.get(e["step"]) or now))
    return out


def reports_of(view: Mapping[str, Any]) -> list[str]:
    """Report ids the execution's steps put out (``report_id``, ``report_ids``), in step order, once each."""
    found: list[str] = []
    for step in view.get("steps", []):
        outputs = step.get("outputs") or {}
        for value in (outputs.get("report_id"), *(outputs.get("report_ids") or ())):
            if value and value not in found:
                found.append(str(value))
    return found


def timeline(view: Mapping[str, Any], events: Sequence[Mapping[str, Any]], now: float) -> str:
    steps = [s for s in view.get("steps", []) if s.get("started_at")]
    if not steps:
        return "<p>no step has started yet</p>"
    start = float(view.get("started_at") or steps[0]["started_at"])
    end = max([float(s.get("ended_at") or now) for s in steps] + [float(view.get("ended_at") or start)])
    scale = (WIDTH - LEFT - 10) / max(end - start, 0.001)
    waited = waits(events, steps, now)
    height = ROW * len(steps) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="timeline" viewBox="0 0 {WIDTH} {height}" '
             f'width="{WIDTH}" height="{height}">']
    for i, s in enumerate(steps):
        y = 4 + i * ROW
        x0 = LEFT + (float(s["started_at"]) - start) * scale
        x1 = LEFT + (float(s.get("ended_at") or now) - start) * scale
        attempts = f", {s['attempt']} attempts" if (s.get("attempt") or 1) > 1 else ""
        parts.append(f'<text x="4" y="{y + 14}" font-size="12">{html.escape(s["step"])}</text>'
                     f'<rect data-step="{html.escape(s["step"])}" data-status="{html.escape(s["status"])}" '
                     f'x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 2):.1f}" height="{ROW - 6}" '
                     f'fill="{STATUS_COLOURS.get(s["status"], "#999")}"><title>{html.escape(s["step"])}: '
                     f'{html.escape(s["status"])} {s.get("duration_s") or ""} s{attempts}</title></rect>')
        if s["step"] in waited:
            w0, w1 = waited[s["step"]]
            parts.append(f'<rect data-wait="{html.escape(s["step"])}" x="{LEFT + (w0 - start) * scale:.1f}" '
                         f'y="{y + 4}" width="{max((w1 - w0) * scale, 2):.1f}" height="{ROW - 14}" fill="#ffbb78">'
                         f'<title>waited {w1 - w0:.1f} s for approval</title></rect>')
    recovery = view.get("recovery") or {}
    if recovery.get("recovered_at"):
        x = LEFT + (float(recovery["recovered_at"]) - start) * scale
        parts.append(f'<line id="recovered" x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height - 20}" stroke="#2ca02c" '
                     f'stroke-width="2"/><text x="{x + 3:.1f}" y="{height - 6}" font-size="11">recovered after '
                     f'{recovery.get("recovery_s")} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def page(view: Mapping[str, Any], events: Sequence[Mapping[str, Any]], now: float | None = None) -> str:
    now = time.time() if now is None else now
    e = html.escape
    rows = "".join(
        f'<tr data-step="{e(s["step"])}"><td>{e(s["step"])}</td><td>{e(s["status"])}</td><td>{s.get("attempt") or ""}'
        f'</td><td>{_when(s.get("started_at"))}</td><td>{_when(s.get("ended_at"))}</td>'
        f'<td>{s.get("duration_s") if s.get("duration_s") is not None else ""}</td>'
        f'<td><code>{e(json.dumps(s.get("outputs") or {}, default=str)[:400])}</code></td>'
        f'<td>{e(s.get("error") or "")}</td></tr>' for s in view.get("steps", []))
    reports = "".join(f'<li data-report="{e(r)}"><code>{e(r)}</code>: <code>regionctl reconcile show {e(r)}</code>'
                      "</li>" for r in reports_of(view)) or "<li>none</li>"
    recovery = view.get("recovery_s")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{e(view["runbook"])} {e(view["id"])}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:3px 6px;font-size:13px;text-align:left;vertical-align:top}}code{{font-size:12px}}</style></head><body>
<p><a href="../">&larr; console</a></p>
<h1>{e(view["runbook"])} <small>{e(view["id"])}</small></h1>
<p id="summary">status <b>{e(view["status"])}</b> · actor {e(str(view.get("actor") or ""))} · started
{_when(view.get("started_at"))} · ended {_when(view.get("ended_at"))} · duration {view.get("duration_s") or "-"} s ·
recovery <b id="recovery">{"-" if recovery is None else f"{recovery} s"}</b>{
    f' · error: {e(view["error"])}' if view.get("error") else ""}</p>
<h2>Timeline</h2>{timeline(view, events, now)}
<h2>Steps</h2><table id="steps"><tr><th>step</th><th>status</th><th>attempt</th><th>started</th><th>ended</th>
<th>seconds</th><th>outputs</th><th>error</th></tr>{rows}</table>
<h2>Reconciliation reports</h2><ul id="reports">{reports}</ul>
</body></html>"""
