"""Pure plotly figure builders: Profile or Comparison in, ``go.Figure`` out, no I/O.

Every name that came from a model (module paths, types) is HTML-escaped before it
goes into a hover label, so a module called ``<img src=x onerror=...>`` shows as text.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from costlens import metrics
from costlens.comparison import Comparison
from costlens.records import LayerCost, Profile
from costlens.units import format_shape

PALETTE = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00"]
LAYOUT: dict[str, Any] = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 40}, "height": 420}


def _name(text: str) -> str:
    return html.escape(text or "<root>")


def _hover(layer: LayerCost) -> str:
    ins = " ".join(format_shape(s) for s in layer.input_shapes) or "-"
    call = f" (call {layer.call + 1})" if layer.call else ""
    values = [f"{m.label} {m.cell(layer.get(m.key))}" for m in metrics.columns() if m.key in layer.values]
    lines = [" · ".join(values[i:i + 2]) for i in range(0, len(values), 2)]
    return (f"<b>{_name(layer.path)}</b>{call} · {_name(layer.type)}<br>"
            f"in {ins} → out {layer.output}<br>" + "<br>".join(lines))


def _label(key: str) -> str:
    metric = metrics.get(key)
    return f"{metric.label} ({metric.unit})" if metric.unit == "bytes" else metric.label


def _scale_buttons() -> list[dict]:
    """A linear/log switch for the y axis."""
    return [{
        "type": "buttons", "direction": "right", "x": 1, "xanchor": "right", "y": 1.15, "showactive": True,
        "buttons": [
            {"label": "linear", "method": "relayout", "args": [{"yaxis.type": "linear"}]},
            {"label": "log", "method": "relayout", "args": [{"yaxis.type": "log"}]},
        ],
    }]


def layer_bars(profile: Profile, metric: str, title: str) -> go.Figure:
    """One bar per leaf layer call, in execution order, of ``metric`` (macs or params)."""
    rows = profile.leaves()
    labels = [f"{i}:{_name(layer.path)}" for i, layer in enumerate(rows)]
    fig = go.Figure(go.Bar(
        x=labels, y=[layer.get(metric) for layer in rows], marker_color=PALETTE[0 if metric == "macs" else 3],
        hovertext=[_hover(layer) for layer in rows], hoverinfo="text", name=metrics.get(metric).label,
    ))
    fig.update_layout(title=title, updatemenus=_scale_buttons(), xaxis={"showticklabels": len(rows) <= 60},
                      yaxis_title=_label(metric), **LAYOUT)
    return fig


def cumulative(profile: Profile) -> go.Figure:
    """Running share of MACs and params through the network's depth (leaf calls in order)."""
    rows = profile.leaves()
    fig = go.Figure()
    for metric, color in (("macs", PALETTE[0]), ("params", PALETTE[3])):
        total = sum(layer.get(metric) or 0 for layer in rows) or 1
        running, ys = 0.0, []
        for layer in rows:
            running += layer.get(metric) or 0
            ys.append(100 * running / total)
        fig.add_trace(go.Scatter(
            x=list(range(len(rows))), y=ys, mode="lines", name=metrics.get(metric).label, line={"color": color},
            hovertext=[_hover(layer) for layer in rows], hoverinfo="text+y",
        ))
    fig.update_layout(title="Cumulative share of MACs and params over depth", xaxis_title="leaf layer (execution order)",
                      yaxis_title="% of total", **LAYOUT)
    return fig


def _share_bar(shares: Mapping[str, float], color: str, visible: bool) -> go.Bar:
    ordered = sorted(shares.items(), key=lambda kv: kv[1])
    total = sum(shares.values()) or 1
    return go.Bar(
        y=[_name(k) for k, _ in ordered], x=[v for _, v in ordered], orientation="h", marker_color=color,
        text=[f"{100 * v / total:.1f}%" for _, v in ordered], textposition="auto", visible=visible,
        hovertext=[f"{_name(k)}<br>{metrics.get('flops').format(v)} FLOPs ({100 * v / total:.2f}%)" for k, v in ordered],
        hoverinfo="text",
    )


def share_of_flops(profile: Profile) -> go.Figure:
    """FLOPs by layer type (a parent's own ops, like a residual add, count under its
    type) and, on a switch, by aten op."""
    by_type: dict[str, float] = defaultdict(float)
    for index, layer in enumerate(profile.layers):
        own = profile.own(index).get("flops", 0)
        if own:
            by_type[layer.type] += own
    by_op = {op: flops for op, flops in profile.flops_by_op.items() if flops}
    fig = go.Figure([_share_bar(by_type, PALETTE[5], True), _share_bar(by_op, PALETTE[6], False)])
    views = {"type": "buttons", "direction": "right", "x": 0, "xanchor": "left", "y": 1.15, "buttons": [
        {"label": "by layer type", "method": "update", "args": [{"visible": [True, False]}]},
        {"label": "by op", "method": "update", "args": [{"visible": [False, True]}]},
    ]}
    scale = {**_scale_buttons()[0], "buttons": [
        {"label": "linear", "method": "relayout", "args": [{"xaxis.type": "linear"}]},
        {"label": "log", "method": "relayout", "args": [{"xaxis.type": "log"}]},
    ]}
    fig.update_layout(title={"text": "Share of FLOPs", "y": 0.97}, xaxis_title="FLOPs",
                      updatemenus=[views, scale], **{**LAYOUT, "margin": {**LAYOUT["margin"], "t": 80}})
    return fig


def sunburst(profile: Profile) -> go.Figure:
    """MACs over the module hierarchy: each ring one level deeper."""
    ids, parents, labels, values, hovers = [], [], [], [], []
    stack: list[tuple[int, str]] = []
    for i, layer in enumerate(profile.layers):
        node = f"{i}"
        while stack and stack[-1][0] >= layer.depth:
            stack.pop()
        ids.append(node)
        parents.append(stack[-1][1] if stack else "")
        labels.append(_name(layer.name))
        values.append(layer.get("macs") or 0)
        hovers.append(_hover(layer))
        stack.append((layer.depth, node))
    fig = go.Figure(go.Sunburst(
        ids=ids, parents=parents, labels=labels, values=values, branchvalues="total",
        hovertext=hovers, hoverinfo="text", maxdepth=3,
    ))
    fig.update_layout(title="MACs by block (click a block to zoom in)", **{**LAYOUT, "height": 520})
    return fig


def shape_walk(profile: Profile) -> go.Figure:
    """Spatial size n_H·n_W falling and channels n_C rising along the main path."""
    rows = profile.trunk()
    x = [f"{i}:{_name(r.path)}" for i, r in enumerate(rows)]
    hovers = [_hover(layer) for layer in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=[r.output_shapes[0][2] * r.output_shapes[0][3] for r in rows],
                             name="n_H·n_W", mode="lines+markers", line={"color": PALETTE[0]},
                             hovertext=hovers, hoverinfo="text+y"))
    fig.add_trace(go.Scatter(x=x, y=[r.output_shapes[0][1] for r in rows], name="n_C", yaxis="y2",
                             mode="lines+markers", line={"color": PALETTE[1]}, hovertext=hovers, hoverinfo="text+y"))
    fig.update_layout(
        title="Shape walk: n_H·n_W falls, n_C rises",
        xaxis={"showticklabels": len(rows) <= 40, "tickangle": -45},
        yaxis={"title": "n_H·n_W (pixels, log)", "type": "log", "dtick": 1},
        yaxis2={"title": "n_C (channels)", "overlaying": "y", "side": "right", "rangemode": "tozero",
                "tickmode": "auto", "showgrid": False},
        legend={"x": 0.5, "y": 1.12, "orientation": "h"}, **{**LAYOUT, "margin": {**LAYOUT["margin"], "b": 110}},
    )
    return fig


def memory(profile: Profile) -> go.Figure:
    """Per leaf layer call: bytes of activations written vs bytes of weights held."""
    rows = profile.leaves()
    labels = [f"{i}:{_name(layer.path)}" for i, layer in enumerate(rows)]
    hovers = [_hover(layer) for layer in rows]
    fig = go.Figure([
        go.Bar(x=labels, y=[r.get(key) for r in rows], name=metrics.get(key).label, marker_color=color,
               hovertext=hovers, hoverinfo="text+y")
        for key, color in (("activation_bytes", PALETTE[2]), ("weight_bytes", PALETTE[4]))
    ])
    fig.update_layout(title="Memory per layer: activations written vs weights held (bytes)", barmode="group",
                      updatemenus=_scale_buttons(), xaxis={"showticklabels": len(rows) <= 60}, **LAYOUT)
    return fig


def profile_figures(profile: Profile) -> list[tuple[str, go.Figure]]:
    """Every chart of a profile page, with a short id for each."""
    timed: list[tuple[str, go.Figure]] = []
    if profile.timing and profile.timing.get("device") and "time_ms" in profile.totals:
        from costlens.report import timing_figures

        timed = [("roofline", timing_figures.roofline_chart(profile)), ("time-bars", timing_figures.time_bars(profile))]
    return timed + [
        ("macs-bars", layer_bars(profile, "macs", "MACs per layer (execution order)")),
        ("params-bars", layer_bars(profile, "params", "Parameters per layer (execution order)")),
        ("cumulative", cumulative(profile)),
        ("sunburst", sunburst(profile)),
        ("by-type", share_of_flops(profile)),
        ("shape-walk", shape_walk(profile)),
        ("memory", memory(profile)),
    ]


# --- comparisons -----------------------------------------------------------------


def comparison_totals(comparison: Comparison) -> go.Figure:
    """Grouped bars: each model's totals as a multiple of the baseline's."""
    shown = [m for m in comparison.metrics if any(comparison.total(m.key))]
    fig = go.Figure()
    for i, name in enumerate(comparison.names):
        values = [comparison.total(m.key)[i] for m in shown]
        ratios = [comparison.ratios(m.key)[i] for m in shown]
        fig.add_trace(go.Bar(
            x=[m.label for m in shown], y=ratios, name=_name(name), marker_color=PALETTE[i % len(PALETTE)],
            hovertext=[f"{_name(name)}<br>{m.label}: {m.format(v)}<br>{(r or 0):.3f}× the baseline"
                       for m, v, r in zip(shown, values, ratios)], hoverinfo="text",
        ))
    fig.update_layout(title=f"Totals relative to {_name(comparison.names[0])}", barmode="group",
                      yaxis_title="× baseline", **LAYOUT)
    return fig


def comparison_blocks(comparison: Comparison, metric: str = "macs") -> go.Figure:
    """Grouped bars per matched block, one color per model."""
    blocks = comparison.blocks_with(metric)
    labels = [_name(b.label) for b in blocks]
    label = metrics.get(metric).label
    fig = go.Figure()
    for i, name in enumerate(comparison.names):
        ys = [b.values[metric][i] for b in blocks]
        fig.add_trace(go.Bar(
            x=labels, y=ys, name=_name(name), marker_color=PALETTE[i % len(PALETTE)],
            hovertext=[f"{_name(name)} · {lab}<br>{label}: {metrics.get(metric).format(y) if y is not None else 'absent'}"
                       for lab, y in zip(labels, ys)], hoverinfo="text",
        ))
    fig.update_layout(title=f"{label} by matched block", barmode="group", yaxis_title=_label(metric),
                      updatemenus=_scale_buttons(), **LAYOUT)
    return fig


def comparison_figures(comparison: Comparison) -> list[tuple[str, go.Figure]]:
    """Every chart of a comparison page."""
    timed: list[tuple[str, go.Figure]] = []
    if all("time_ms" in p.totals for p in comparison.profiles):
        from costlens.report import timing_figures

        timed = [("mac-vs-time", timing_figures.mac_vs_time(comparison))]
    return [
        ("totals", comparison_totals(comparison)), *timed,
        ("blocks-macs", comparison_blocks(comparison, "macs")),
        ("blocks-params", comparison_blocks(comparison, "params")),
    ]
