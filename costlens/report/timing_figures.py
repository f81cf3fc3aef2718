"""Plotly figures of measured time: the roofline, time per layer, MAC ratio against time ratio.

Pure builders like ``figures.py``: a timed Profile or Comparison in, ``go.Figure`` out.
"""

from __future__ import annotations

import html
import math

import plotly.graph_objects as go

from costlens.comparison import Comparison
from costlens.records import LayerCost, Profile
from costlens.report.figures import LAYOUT, PALETTE
from costlens.timing.roofline import bound, peak_of

BOUND_COLORS = {"memory": PALETTE[2], "compute": PALETTE[0]}


def _device(profile: Profile) -> tuple[float, float, str]:
    device = (profile.timing or {})["device"]
    return peak_of(device, profile.dtype), float(device["bandwidth"]), str(device["name"])


def measured_ms(layer: LayerCost) -> float | None:
    """A layer's measured time: replayed alone when it was, else in place (the one its roofline values use)."""
    found = layer.values.get("time_ms", layer.values.get("traced_time_ms"))
    return None if found is None else float(found)


def timed_leaves(profile: Profile) -> list[LayerCost]:
    """Leaf calls with a measured time and some arithmetic (points a log-log chart can place)."""
    return [layer for layer in profile.leaves()
            if measured_ms(layer) and layer.values.get("flops") and layer.values.get("bytes")]


def _hover(layer: LayerCost, verdict: str) -> str:
    v = layer.values
    return (f"<b>{html.escape(layer.label)}</b> · {html.escape(layer.type)}<br>"
            f"{v['flops'] / v['bytes']:.2f} FLOPs/byte · {verdict}-bound<br>"
            f"achieved {v.get('achieved_flop_s', 0) / 1e9:.2f} GFLOP/s ({100 * v.get('roof_share', 0):.0f}% of roof)<br>"
            f"time {measured_ms(layer) or 0:.3f} ms · roofline {v.get('predicted_ms', 0):.3f} ms")


def roofline_chart(profile: Profile) -> go.Figure:
    """Log-log: one point per timed leaf layer at (intensity, achieved FLOP/s), under both roofs."""
    peak, bandwidth, name = _device(profile)
    rows = timed_leaves(profile)
    fig = go.Figure()
    intensities = [r.values["flops"] / r.values["bytes"] for r in rows] or [peak / bandwidth]
    low, high = min(min(intensities), peak / bandwidth) / 4, max(max(intensities), peak / bandwidth) * 4
    ridge = peak / bandwidth
    fig.add_trace(go.Scatter(x=[low, ridge], y=[low * bandwidth, peak], mode="lines", name="memory roof",
                             line={"color": BOUND_COLORS["memory"], "dash": "dash"}, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[ridge, high], y=[peak, peak], mode="lines", name="compute roof",
                             line={"color": BOUND_COLORS["compute"], "dash": "dash"}, hoverinfo="skip"))
    for verdict in ("memory", "compute"):
        chosen = [r for r in rows if bound(r.values["flops"] / r.values["bytes"], peak, bandwidth) == verdict]
        fig.add_trace(go.Scatter(
            x=[r.values["flops"] / r.values["bytes"] for r in chosen],
            y=[r.values.get("achieved_flop_s") for r in chosen], mode="markers", name=f"{verdict}-bound layers",
            marker={"color": BOUND_COLORS[verdict], "size": [6 + 14 * math.sqrt(_share(profile, r)) for r in chosen],
                    "line": {"width": 0.5, "color": "#333"}},
            hovertext=[_hover(r, verdict) for r in chosen], hoverinfo="text"))
    fig.update_layout(
        title=f"Roofline on {html.escape(name)} (marker size: share of time)",
        xaxis={"type": "log", "title": "arithmetic intensity (FLOPs / byte)"},
        yaxis={"type": "log", "title": "achieved FLOP/s"}, **LAYOUT)
    return fig


def _share(profile: Profile, layer: LayerCost) -> float:
    total = profile.totals.get("time_ms", profile.totals.get("traced_time_ms")) or 1
    return min(1.0, (measured_ms(layer) or 0) / total)


def time_bars(profile: Profile) -> go.Figure:
    """Measured (replayed alone, in place, or both) against roofline-predicted time per timed leaf layer,
    in execution order."""
    rows = [layer for layer in profile.leaves() if measured_ms(layer) is not None]
    labels = [f"{i}:{html.escape(r.label)}" for i, r in enumerate(rows)]
    bars = []
    if any("time_ms" in r.values for r in rows):
        bars.append(go.Bar(
            x=labels, y=[r.values.get("time_ms") for r in rows], name="replayed alone (median)", marker_color=PALETTE[1],
            error_y={"type": "data", "array": [r.values.get("time_iqr_ms", 0) / 2 for r in rows], "thickness": 1},
            hovertext=[f"{html.escape(r.label)}: {r.values.get('time_ms', 0):.3f} ms replayed alone "
                       f"(IQR {r.values.get('time_iqr_ms', 0):.3f})" for r in rows], hoverinfo="text"))
    if any("traced_time_ms" in r.values for r in rows):
        bars.append(go.Bar(
            x=labels, y=[r.values.get("traced_time_ms") for r in rows], name="in place (median)",
            marker_color=PALETTE[3], hovertext=[f"{html.escape(r.label)}: {r.values.get('traced_time_ms', 0):.3f} ms "
                                                "in place" for r in rows], hoverinfo="text"))
    bars.append(go.Bar(x=labels, y=[r.values.get("predicted_ms") for r in rows], name="roofline prediction",
                       marker_color=PALETTE[5], hoverinfo="y"))
    fig = go.Figure(bars)
    fig.update_layout(title="Time per layer: measured vs what the roofline predicts", barmode="group",
                      yaxis_title="ms", xaxis={"showticklabels": len(rows) <= 60}, **LAYOUT)
    return fig


def mac_vs_time(comparison: Comparison) -> go.Figure:
    """Per matched block: MAC ratio (x) against time ratio (y) to the baseline; the diagonal is 'time follows MACs'."""
    fig = go.Figure()
    points: list[float] = []
    for i, name in enumerate(comparison.names[1:], start=1):
        xs, ys, texts = [], [], []
        for block in comparison.blocks_with("macs"):
            macs, times = block.values["macs"], block.values.get("time_ms", ())
            base_macs, base_time = macs[0], times[0] if times else None
            own_macs, own_time = macs[i], times[i] if times else None
            if not (base_macs and base_time and own_macs and own_time):
                continue
            xs.append(own_macs / base_macs)
            ys.append(own_time / base_time)
            texts.append(f"{html.escape(block.label)}<br>MACs ×{xs[-1]:.3f} · time ×{ys[-1]:.3f}")
        points += xs + ys
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers+text", name=html.escape(name), text=[
            html.escape(b) for b in (t.split("<br>")[0] for t in texts)], textposition="top center",
            marker={"size": 11, "color": PALETTE[i % len(PALETTE)]}, hovertext=texts, hoverinfo="text"))
    span = [min(points + [0.5]) / 1.5, max(points + [2.0]) * 1.5]
    fig.add_trace(go.Scatter(x=span, y=span, mode="lines", name="time ratio = MAC ratio",
                             line={"color": "#999", "dash": "dot"}, hoverinfo="skip"))
    fig.update_layout(title=f"Do fewer MACs buy less time? Ratios to {html.escape(comparison.names[0])} per block",
                      xaxis={"type": "log", "title": "MAC ratio"}, yaxis={"type": "log", "title": "time ratio"}, **LAYOUT)
    return fig
