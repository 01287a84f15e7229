"""The static curves chart (featviz_ui/svg_chart.py): round ticks, every trace drawn with its values,
a long legend summed up, and values that are not finite (a dead channel's NaN) drawn around."""
from __future__ import annotations

import math
from xml.etree import ElementTree

from featviz_ui.svg_chart import MAX_LEGEND, curves_svg, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"


def test_ticks_are_round_and_span_the_range():
    assert nice_ticks(0, 63) == [0, 20, 40, 60]
    assert nice_ticks(-0.013, 0.042) == [0.0, 0.02, 0.04] and str(nice_ticks(-0.013, 0.042)[0]) == "0.0"  # not -0
    assert nice_ticks(5, 5) == [5.0, 5.2, 5.4, 5.6, 5.8, 6.0]  # a flat curve still gets an axis


def test_every_trace_is_a_line_with_its_values_and_a_long_legend_is_summed_up():
    traces = [(f"blocks.1:{i}", "#1f77b4", [i + s / 10 for s in range(8)]) for i in range(MAX_LEGEND + 5)]
    svg = ElementTree.fromstring(curves_svg(traces, marker_step=3))
    lines = list(svg.iter(f"{SVG}polyline"))
    assert [e.get("data-name") for e in lines] == [name for name, _, _ in traces]
    assert [float(v) for v in lines[2].get("data-y").split(",")] == traces[2][2]
    texts = [e.text for e in svg.iter(f"{SVG}text")]
    assert "and 5 more" in texts and f"blocks.1:{MAX_LEGEND}" not in texts
    assert [e.get("data-marker-step") for e in svg.iter(f"{SVG}line") if e.get("data-marker-step")] == ["3"]


def test_values_that_are_not_finite_do_not_break_the_scale():
    svg = ElementTree.fromstring(curves_svg([("a", "#000", [0.0, math.nan, 1.0]), ("b", "#111", [math.inf, 2.0])]))
    ticks = [float(e.text) for e in svg.iter(f"{SVG}text") if e.text and e.text.replace(".", "").isdigit()]
    assert ticks and max(ticks) <= 3


def test_named_points_label_the_x_axis_evenly():
    """An R² curve over k = 1, 2, 4, 8, 16: one tick per point, named by its k, evenly spaced."""
    svg = ElementTree.fromstring(curves_svg([("blocks.3", "#000", [0.1, 0.2, 0.3, 0.5, 0.7])], "R²",
                                            x_title="concepts learned (k)", x_labels=["1", "2", "4", "8", "16"]))
    ticks = [e for e in svg.iter(f"{SVG}text") if e.get("text-anchor") == "middle" and e.get("transform") is None]
    names = [e.text for e in ticks]
    assert names == ["1", "2", "4", "8", "16", "concepts learned (k)"]
    xs = [float(e.get("x")) for e in ticks[:5]]
    assert max(abs((b - a) - (xs[1] - xs[0])) for a, b in zip(xs, xs[1:])) < 0.2
    points = [float(p.split(",")[0]) for p in next(svg.iter(f"{SVG}polyline")).get("points").split()]
    assert max(abs(p - x) for p, x in zip(points, xs)) < 0.2  # each value sits over its name
