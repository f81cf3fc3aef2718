"""Plotly figures of a what-if: every layer against every alternative at a glance, then a
chart per layer with the original's bar and each alternative's.

Pure builders like ``figures.py``: a ``WhatIf`` in, ``go.Figure`` out. Module paths come
from the model and are HTML-escaped before they reach a label or a hover.
"""

from __future__ import annotations

import html
import math

import plotly.graph_objects as go

from costlens import metrics
from costlens.alternatives import LayerWhatIf, Priced, WhatIf
from costlens.report.figures import LAYOUT, _title
from costlens.report.grid import ratio_words

ORIGINAL_COLOR = "#555555"
# One hue per entry of costlens.alternatives.ALTERNATIVES; its variants (r=2, 4, 8; 2, 4, 8, 32 groups) in shades.
FAMILY_COLORS = {
    "bottleneck": ("#08519c", "#3182bd", "#6baed6", "#9ecae1"),
    "depthwise": ("#e6550d",),
    "grouped": ("#006d2c", "#31a354", "#74c476", "#a1d99b", "#c7e9c0"),
    "factorized": ("#756bb1",),
    "asymmetric": ("#c51b7d",),
}
ROW_HEIGHT = 26  # pixels per bar or heatmap row: room for a 12 px label
MIN_HEATMAP_HEIGHT = 360  # room for the color bar's ticks when there are few layers


def _e(text: str) -> str:
    return html.escape(text or "<root>")


def spec_names(result: WhatIf) -> list[str]:
    """Every alternative priced, in the catalogue's order as the layers list them."""
    return list(dict.fromkeys(priced.spec for layer in result.layers for priced in layer.alternatives))


def spec_colors(names: list[str]) -> dict[str, str]:
    """A color per alternative: its family's hue, a shade per variant."""
    colors, used = {}, {family: 0 for family in FAMILY_COLORS}
    for name in names:
        family = name.split("(")[0]
        shades = FAMILY_COLORS.get(family, ("#999999",))
        colors[name] = shades[min(used.get(family, 0), len(shades) - 1)]
        used[family] = used.get(family, 0) + 1
    return colors


def _ratio(layer: LayerWhatIf, priced: Priced) -> float | None:
    return priced.macs / layer.macs if priced.macs is not None and layer.macs else None


def overview(result: WhatIf) -> go.Figure:
    """A heatmap: a row per layer (costliest first), a column per alternative, each cell the
    alternative's MACs as a multiple of the layer's (green: cheaper, red: costlier; blank: not
    applicable, with the reason on hover)."""
    names = spec_names(result)
    z, text, hover = [], [], []
    for layer in result.layers:
        by_spec = {priced.spec: priced for priced in layer.alternatives}
        row_z: list[float | None] = []
        row_text, row_hover = [], []
        for name in names:
            priced = by_spec.get(name)
            ratio = _ratio(layer, priced) if priced else None
            row_z.append(math.log2(ratio) if ratio else None)
            row_text.append(f"{ratio:.2f}x" if ratio else "")
            reason = (priced.reason if priced else None) or layer.reason or "not priced"
            row_hover.append(f"<b>{_e(layer.path)}</b> · {_e(name)}<br>" + (
                f"{_e(priced.parts)}<br>MACs {metrics.get('macs').format(priced.macs)} · {ratio_words(ratio)}"
                f"<br>the model saves {priced.saved_of_model:.1%}" if ratio and priced and priced.saved_of_model is not None
                else f"not applicable: {_e(reason)}"))
        z.append(row_z)
        text.append(row_text)
        hover.append(row_hover)
    reach = max((abs(v) for row in z for v in row if v is not None), default=1.0) or 1.0
    ticks = [t for t in range(-math.ceil(reach), math.ceil(reach) + 1)]
    fig = go.Figure(go.Heatmap(
        z=z, x=[_e(n) for n in names], y=[_e(layer.path) for layer in result.layers], text=text,
        texttemplate="%{text}", textfont={"size": 11}, hovertext=hover, hoverinfo="text", zmid=0, zmin=-reach,
        zmax=reach, colorscale="RdYlGn", reversescale=True, xgap=2, ygap=2,
        colorbar={"title": {"text": "MACs<br>vs layer"}, "tickvals": ticks,
                  "ticktext": [f"{2.0 ** t:g}x" if t >= 0 else f"1/{2 ** -t}x" for t in ticks]},
    ))
    longest = max((len(layer.path) for layer in result.layers), default=10)
    fig.update_layout(
        title=_title("MACs of each alternative as a multiple of its layer's<br><sup>rows: the layers, costliest "
                     "first; blank: not applicable (hover for why)</sup>"),
        xaxis={"side": "top", "tickangle": 0, "tickfont": {"size": 11}},
        yaxis={"autorange": "reversed", "tickfont": {"size": 11}},
        **{**LAYOUT, "height": max(MIN_HEATMAP_HEIGHT, 160 + ROW_HEIGHT * len(result.layers)),
           "margin": {"l": 20 + 7 * min(longest, 60), "r": 20, "t": 110, "b": 20}})
    return fig


def layer_chart(result: WhatIf, layer: LayerWhatIf) -> go.Figure:
    """The layer's original and each alternative as horizontal bars of MACs, labelled with
    their MACs and multiple of the original; a row that does not apply says so."""
    colors = spec_colors(spec_names(result))
    macs = metrics.get("macs")
    rows = ["original", *(priced.spec for priced in layer.alternatives)]
    values: list[int | None] = [layer.macs, *(priced.macs for priced in layer.alternatives)]
    labels = [f"{macs.short(layer.macs)} (the layer)"]
    hovers = [f"<b>{_e(layer.path)}</b> · original {_e(layer.conv)}<br>MACs {macs.format(layer.macs)} · "
              f"params {metrics.get('params').format(layer.params)}"]
    for priced in layer.alternatives:
        ratio = _ratio(layer, priced)
        labels.append(f"{macs.short(priced.macs)} ({ratio:.2f}x)" if ratio is not None
                      else f"not applicable: {priced.reason}")
        hovers.append(f"<b>{_e(priced.spec)}</b>: {_e(priced.parts)}<br>MACs {macs.format(priced.macs)} · params "
                      f"{metrics.get('params').format(priced.params)}<br>{ratio_words(ratio)}" if ratio is not None
                      else f"<b>{_e(priced.spec)}</b>: not applicable: {_e(priced.reason or '')}")
    fig = go.Figure(go.Bar(
        y=[_e(r) for r in rows], x=[v if v is not None else 0 for v in values], orientation="h",
        marker_color=[ORIGINAL_COLOR, *(colors.get(p.spec, "#999") for p in layer.alternatives)],
        text=[_e(label) for label in labels], textposition="outside", cliponaxis=False, textfont={"size": 11},
        hovertext=hovers, hoverinfo="text",
    ))
    reason = f"<br><sup>cannot rewrite: {_e(layer.reason)}</sup>" if layer.reason else (
        f"<br><sup>{_e(layer.conv)} · {layer.share_of_model:.1%} of the model's MACs</sup>")
    widest = max((v for v in values if v is not None), default=0) or 1
    fig.update_layout(
        title=_title(f"{_e(layer.path)}{reason}"), xaxis={"title": "MACs", "range": [0, widest * 1.45]},
        yaxis={"autorange": "reversed", "tickfont": {"size": 11}}, showlegend=False, bargap=0.25,
        **{**LAYOUT, "height": 110 + ROW_HEIGHT * len(rows), "margin": {"l": 120, "r": 30, "t": 70, "b": 45}})
    return fig


def whatif_figures(result: WhatIf) -> list[tuple[str, go.Figure]]:
    """The page's charts with their ids: the overview, then one per layer in the table's order."""
    if not result.layers:
        return []
    return [("overview", overview(result)),
            *((f"layer-{index}", layer_chart(result, layer)) for index, layer in enumerate(result.layers))]
