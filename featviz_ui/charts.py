"""Activation curves, one trace per channel and one colour per layer: a static SVG picture that shows at
once (svg_chart.py), or the interactive plotly figure."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from featviz_core import ChannelResult

from .svg_chart import curves_svg

PALETTE = qualitative.D3


def layer_colours(layers: Sequence[str]) -> dict[str, str]:
    return {layer: PALETTE[i % len(PALETTE)] for i, layer in enumerate(dict.fromkeys(layers))}


def named_traces(results: Sequence[ChannelResult], values: Sequence[Sequence[float]] | None = None,
                 models: Sequence[str] | None = None) -> list[tuple[str, str, str, Sequence[float]]]:
    """(name, legend group, colour, values) per result: coloured by layer; with `models` (each result's
    model, for curves of two models), the model's name starts each name and group."""
    named = [f"{m} · " for m in models] if models is not None else [""] * len(results)
    groups = [prefix + r.layer for prefix, r in zip(named, results)]
    colours = layer_colours(groups)
    values = values if values is not None else [r.curve for r in results]
    return [(prefix + r.label, group, colours[group], ys)
            for r, ys, prefix, group in zip(results, values, named, groups)]


def curves_picture(results: Sequence[ChannelResult], values: Sequence[Sequence[float]] | None = None,
                   y_title: str = "activation", marker_step: int | None = None, height: int = 420,
                   models: Sequence[str] | None = None) -> str:
    """The curves as a static SVG (svg_chart.py): what every page shows first."""
    traces = [(name, colour, ys) for name, _, colour, ys in named_traces(results, values, models)]
    return curves_svg(traces, y_title, marker_step, height)


def curves_figure(results: Sequence[ChannelResult], values: Sequence[Sequence[float]] | None = None,
                  y_title: str = "activation", marker_step: int | None = None, height: int = 420,
                  models: Sequence[str] | None = None) -> go.Figure:
    """The interactive chart: activation (or z-score) against iteration; legend grouped by layer, hover
    names the channel."""
    fig = go.Figure()
    shown_layers: set[str] = set()
    traces = named_traces(results, values, models)
    for name, group, colour, ys in traces:
        steps = np.arange(1, len(ys) + 1)
        fig.add_trace(go.Scatter(
            x=steps, y=list(map(float, ys)), mode="lines+markers", marker={"size": 3}, name=name,
            legendgroup=group, legendgrouptitle_text=None if group in shown_layers else group,
            line={"color": colour, "width": 1.6},
            hovertemplate=f"<b>{name}</b><br>step %{{x}}<br>{y_title} %{{y:.3f}}<extra></extra>"))
        shown_layers.add(group)
    if marker_step is not None:
        fig.add_vline(x=marker_step, line={"color": "#d62728", "dash": "dot"})
        for _, _, _, ys in traces:
            if 1 <= marker_step <= len(ys):
                fig.add_trace(go.Scatter(x=[marker_step], y=[float(ys[marker_step - 1])], mode="markers",
                                         showlegend=False, marker={"size": 11, "color": "#d62728"},
                                         name=f"step {marker_step}",
                                         hovertemplate=f"step {marker_step}<br>{y_title} %{{y:.3f}}<extra></extra>"))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_title="iteration",
                      yaxis_title=y_title, hovermode="closest", legend={"groupclick": "toggleitem"})
    return fig
