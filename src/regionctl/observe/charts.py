"""Time-series charts as SVG, rendered on the server: no charting library, no CDN, nothing for the browser to
load but the picture. Pure functions of the series and the annotations, so what a chart shows is unit-tested.

Each series is a ``<polyline data-series=LABEL data-points=N>``; each annotation (a runbook execution, a drill) a
dashed ``<line data-annotation=LABEL>`` with its name, so a test (or a person hovering) can tell what happened.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 560, 200, 56, 36, 24


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[tuple[float, float], ...]  # (epoch seconds, value), in time order


@dataclass(frozen=True)
class Annotation:
    at: float  # epoch seconds
    label: str


def _ticks(top: float) -> list[float]:
    """Three round values from 0 to at least ``top`` for the y axis."""
    if top <= 0:
        return [0.0, 0.5, 1.0]
    step = 10 ** math.floor(math.log10(top / 2))
    for mult in (1, 2, 2.5, 5, 10):
        if top / (step * mult) <= 2:
            step *= mult
            break
    return [0.0, step, 2 * step]


def _number(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:g}{unit}"
    return f"{value:.3g}"


def render(title: str, unit: str, series: Sequence[Series], annotations: Sequence[Annotation], start: float,
           end: float) -> str:
    """One chart from ``start`` to ``end``: the series as lines, the annotations as dashed verticals."""
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    span = max(end - start, 1.0)
    top = max((v for s in series for _, v in s.points if math.isfinite(v)), default=0.0)
    ticks = _ticks(top)
    scale = ticks[-1] or 1.0

    def x(t: float) -> float:
        return LEFT + (t - start) / span * plot_w

    def y(v: float) -> float:
        return TOP + plot_h - v / scale * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{html.escape(title)}">',
             f'<title>{html.escape(title)} ({html.escape(unit)})</title>',
             f'<text x="4" y="14" font-size="12" font-weight="600">{html.escape(title)} '
             f'<tspan font-weight="400" fill="#667">({html.escape(unit)})</tspan></text>']
    for tick in ticks:
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - 8}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
                     f'<text x="{LEFT - 4}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end">'
                     f'{_number(tick)}</text>')
    for at, anchor in ((start, "start"), (end, "end")):
        parts.append(f'<text x="{x(at):.1f}" y="{HEIGHT - 20}" font-size="10" text-anchor="{anchor}">'
                     f'{time.strftime("%H:%M:%S", time.gmtime(at))} UTC</text>')
    for n, s in enumerate(series):
        shown = [(t, v) for t, v in s.points if start <= t <= end and math.isfinite(v)]
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in shown)
        parts.append(f'<polyline data-series="{html.escape(s.label)}" data-points="{len(shown)}" points="{points}" '
                     f'fill="none" stroke="{COLOURS[n % len(COLOURS)]}" stroke-width="1.5">'
                     f'<title>{html.escape(s.label)}</title></polyline>')
    for a in annotations:
        if start <= a.at <= end:
            parts.append(f'<line data-annotation="{html.escape(a.label)}" x1="{x(a.at):.1f}" x2="{x(a.at):.1f}" '
                         f'y1="{TOP}" y2="{TOP + plot_h}" stroke="#555" stroke-dasharray="3,3">'
                         f'<title>{html.escape(a.label)} at {time.strftime("%H:%M:%S", time.gmtime(a.at))} UTC'
                         '</title></line>')
    legend = "".join(f'<tspan fill="{COLOURS[n % len(COLOURS)]}">&#9632; {html.escape(s.label)}  </tspan>'
                     for n, s in enumerate(series))
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 4}" font-size="10">{legend or "no data in this range"}'
                 '</text></svg>')
    return "".join(parts)
