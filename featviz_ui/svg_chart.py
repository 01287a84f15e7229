"""Activation curves drawn on the server as a small SVG picture: it shows as soon as the page does,
where a plotly chart first makes the browser fetch and compile 4.7 MB of script (about 1.5 s on two
CPU cores, bench/pageload.py). The interactive plotly chart (charts.curves_figure) is one switch away
on the Curves page.

Each trace is a `<polyline>` whose `data-name` and `data-y` (the values, as plotted) say what it shows,
so a test reads the chart as a person would read its legend and lines."""
from __future__ import annotations

import math
from html import escape
from typing import Sequence

WIDTH = 900
LEGEND_W, LEFT, TOP, BOTTOM = 215, 70, 16, 50
FONT = 'font-family="sans-serif" font-size="15" fill="#31333f"'
MARKER_COLOUR = "#d62728"
MAX_LEGEND, ROW = 20, 19  # legend rows (more traces are summed up in one last row), their spacing


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values spanning [low, high] (1, 2 or 5 times a power of ten apart)."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) + 0.0 for i in range(int((high - first) / step + 1e-9) + 1)]  # + 0.0: no "-0"


class Frame:
    """The plot area and its scales: iteration 1..steps across, value low..high upwards."""

    def __init__(self, steps: int, low: float, high: float, height: int):
        pad = (high - low) * 0.05 or 0.5
        self.steps, self.low, self.high = max(2, steps), low - pad, high + pad
        self.x0, self.x1, self.y0, self.y1 = LEFT, WIDTH - LEGEND_W, height - BOTTOM, TOP

    def x(self, step: float) -> float:
        return self.x0 + (step - 1) / (self.steps - 1) * (self.x1 - self.x0)

    def y(self, value: float) -> float:
        return self.y0 - (value - self.low) / (self.high - self.low) * (self.y0 - self.y1)


def _axes(frame: Frame, y_title: str, x_title: str = "iteration", x_labels: Sequence[str] | None = None) -> list[str]:
    parts = [f'<rect x="{frame.x0}" y="{frame.y1}" width="{frame.x1 - frame.x0}" height="{frame.y0 - frame.y1}" '
             'fill="#f8f9fb" stroke="#d0d3da"/>']
    for value in nice_ticks(frame.low, frame.high):
        y = frame.y(value)
        parts.append(f'<line x1="{frame.x0}" x2="{frame.x1}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e6eb"/>'
                     f'<text x="{frame.x0 - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{value:g}</text>')
    ticks = [(s, f"{s:g}") for s in nice_ticks(1, frame.steps) if s >= 1] if x_labels is None \
        else list(enumerate(x_labels, 1))
    for step, text in ticks:
        parts.append(f'<text x="{frame.x(step):.1f}" y="{frame.y0 + 19}" text-anchor="middle" {FONT}>'
                     f'{escape(text)}</text>')
    parts.append(f'<text x="{(frame.x0 + frame.x1) / 2:.0f}" y="{frame.y0 + 42}" text-anchor="middle" {FONT}>'
                 f'{escape(x_title)}</text>')
    parts.append(f'<text transform="translate(14 {(frame.y0 + frame.y1) / 2:.0f}) rotate(-90)" text-anchor="middle" '
                 f'{FONT}>{escape(y_title)}</text>')
    return parts


def _legend(traces: Sequence[tuple[str, str, Sequence[float]]], frame: Frame) -> list[str]:
    parts, x = [], frame.x1 + 14
    for i, (name, colour, _) in enumerate(traces[:MAX_LEGEND]):
        y = frame.y1 + 10 + i * ROW
        parts.append(f'<line x1="{x}" x2="{x + 18}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="3"/>'
                     f'<text x="{x + 24}" y="{y + 4}" {FONT}>{escape(name)}</text>')
    if len(traces) > MAX_LEGEND:
        parts.append(f'<text x="{x}" y="{frame.y1 + 14 + MAX_LEGEND * ROW}" {FONT}>'
                     f'and {len(traces) - MAX_LEGEND} more</text>')
    return parts


def curves_svg(traces: Sequence[tuple[str, str, Sequence[float]]], y_title: str = "activation",
               marker_step: int | None = None, height: int = 420, x_title: str = "iteration",
               x_labels: Sequence[str] | None = None) -> str:
    """An SVG line chart of `traces` ((name, colour, value per iteration), iteration 1 first), with a
    dotted line and a dot on each curve at `marker_step`. `x_labels`: the points' names along the x
    axis, one per value, evenly spaced (the k of an R² curve), instead of iteration numbers."""
    values = [float(v) for _, _, ys in traces for v in ys if math.isfinite(float(v))] or [0.0]
    frame = Frame(max((len(ys) for _, _, ys in traces), default=2), min(values), max(values), height)
    parts = _axes(frame, y_title, x_title, x_labels)
    for name, colour, ys in traces:
        points = " ".join(f"{frame.x(i):.1f},{frame.y(float(v)):.1f}" for i, v in enumerate(ys, 1))
        parts.append(f'<polyline data-name="{escape(name)}" data-y="{",".join(f"{float(v):.6g}" for v in ys)}" '
                     f'points="{points}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
    if marker_step is not None:
        x = frame.x(marker_step)
        parts.append(f'<line data-marker-step="{marker_step}" x1="{x:.1f}" x2="{x:.1f}" y1="{frame.y1}" '
                     f'y2="{frame.y0}" stroke="{MARKER_COLOUR}" stroke-dasharray="3 3"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{frame.y(float(ys[marker_step - 1])):.1f}" r="4.5" '
                  f'fill="{MARKER_COLOUR}"/>' for _, _, ys in traces if 1 <= marker_step <= len(ys)]
    parts += _legend(traces, frame)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
            f'height="{height}">' + "".join(parts) + "</svg>")
