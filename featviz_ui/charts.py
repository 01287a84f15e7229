"""Plotly figures of activation curves: one trace per channel, one colour per layer."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from featviz_core import ChannelResult

PALETTE = qualitative.D3


def layer_colours(layers: Sequence[str]) -> dict[str, str]:
    return {layer: PALETTE[i % len(PALETTE)] for i, layer in enumerate(dict.fromkeys(layers))}


def curves_figure(results: Sequence[ChannelResult], values: Sequence[Sequence[float]] | None = None,
                  y_title: str = "activation", marker_step: int | None = None, height: int = 420,
                  models: Sequence[str] | None = None) -> go.Figure:
    """Activation (or z-score) against iteration; legend grouped by layer, hover names the channel.
    `models`: each result's model, for curves of two models (it then starts each name and legend group)."""
    named = [f"{m} · " for m in models] if models is not None else [""] * len(results)
    groups = [prefix + r.layer for prefix, r in zip(named, results)]
    colours = layer_colours(groups)
    values = values if values is not None else [r.curve for r in results]
    fig = go.Figure()
    shown_layers: set[str] = set()
    for result, ys, prefix, group in zip(results, values, named, groups):
        steps, name = np.arange(1, len(ys) + 1), prefix + result.label
        fig.add_trace(go.Scatter(
            x=steps, y=list(map(float, ys)), mode="lines+markers", marker={"size": 3}, name=name,
            legendgroup=group, legendgrouptitle_text=None if group in shown_layers else group,
            line={"color": colours[group], "width": 1.6},
            hovertemplate=f"<b>{name}</b><br>step %{{x}}<br>{y_title} %{{y:.3f}}<extra></extra>"))
        shown_layers.add(group)
    if marker_step is not None:
        fig.add_vline(x=marker_step, line={"color": "#d62728", "dash": "dot"})
        for result, ys in zip(results, values):
            if 1 <= marker_step <= len(ys):
                fig.add_trace(go.Scatter(x=[marker_step], y=[float(ys[marker_step - 1])], mode="markers",
                                         showlegend=False, marker={"size": 11, "color": "#d62728"},
                                         name=f"step {marker_step}",
                                         hovertemplate=f"step {marker_step}<br>{y_title} %{{y:.3f}}<extra></extra>"))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_title="iteration",
                      yaxis_title=y_title, hovermode="closest", legend={"groupclick": "toggleitem"})
    return fig
