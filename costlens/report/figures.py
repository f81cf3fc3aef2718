"""Pure plotly figure builders: Profile or Comparison in, ``go.Figure`` out, no I/O.

Every name that came from a model (module paths, types) is HTML-escaped before it
goes into a hover label, so a module called ``<img src=x onerror=...>`` shows as text.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go

from costlens import metrics
from costlens.comparison import Comparison
from costlens.records import LayerCost, Profile
from costlens.units import format_shape

if TYPE_CHECKING:
    from costlens.sweep import Sweep

PALETTE = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00"]
# One color per block (stage) of the per-layer charts: ten that stay apart side by side.
BLOCK_COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                "#9c755f", "#6b6ecf"]
LAYOUT: dict[str, Any] = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 80, "b": 40}, "height": 420}
# The scale switch sits at the top left, under the title: plotly's toolbar (top right) covers nothing.
BUTTONS_Y = 1.02
SUNBURST_LABELLED = 0.03  # blocks with at least this share of MACs show it on their slice


def _name(text: str) -> str:
    return html.escape(text or "<root>")


def _hover(layer: LayerCost) -> str:
    ins = " ".join(format_shape(s) for s in layer.input_shapes) or "-"
    call = f" (call {layer.call + 1})" if layer.call else ""
    values = [f"{m.label} {m.cell(layer.get(m.key))}" for m in metrics.columns() if m.key in layer.values]
    lines = [" · ".join(values[i:i + 2]) for i in range(0, len(values), 2)]
    return (f"<b>{_name(layer.path)}</b>{call} · {_name(layer.type)}<br>"
            f"in {ins} → out {layer.output}<br>" + "<br>".join(lines))


def _title(text: str) -> dict[str, Any]:
    """A chart title at the top left, above the switches."""
    return {"text": text, "x": 0.01, "xanchor": "left", "y": 1, "yref": "container", "yanchor": "top",
            "pad": {"t": 12}}


def _label(key: str) -> str:
    metric = metrics.get(key)
    return f"{metric.label} ({metric.unit})" if metric.unit == "bytes" else metric.label


def _scale_buttons(axis: str = "yaxis", x: float = 0.0, active: int = 0) -> list[dict]:
    """A linear/log switch for one axis, at the top left under the title."""
    return [{
        "type": "buttons", "direction": "right", "x": x, "xanchor": "left", "y": BUTTONS_Y, "yanchor": "bottom",
        "showactive": True, "active": active, "pad": {"l": 0, "r": 0, "t": 0, "b": 0},
        "buttons": [
            {"label": "linear", "method": "relayout", "args": [{f"{axis}.type": "linear"}]},
            {"label": "log", "method": "relayout", "args": [{f"{axis}.type": "log"}]},
        ],
    }]


def _block(layer: LayerCost) -> str:
    """The top-level block a call belongs to: 'layer3' for 'layer3.4.conv2'."""
    return layer.path.split(".")[0]


def axis_labels(rows: list[LayerCost]) -> tuple[list[str], list[str]]:
    """Block names (outer) and layer names (inner) for a two-level axis over ``rows``.

    A layer is named by the largest module that holds it alone among ``rows``
    ('branch2.reduce' for 'inception3a.branch2.reduce.conv' when the ReLU beside it
    carries nothing); a block with one bar names it directly, and the block names of
    a run of such blocks are left blank, so that short names never overprint.
    """
    paths = [r.path for r in rows]
    per_block: dict[str, int] = {}
    for r in rows:
        per_block[_block(r)] = per_block.get(_block(r), 0) + 1
    outer: list[str] = []
    inner: list[str] = []
    blanks = 0
    for r in rows:
        block = _block(r)
        call = f" (call {r.call + 1})" if r.call and r.name != "(self)" else ""
        if per_block[block] == 1:
            if not outer or outer[-1].strip("\u200b"):
                blanks += 1
            outer.append("\u200b" * blanks)  # invisible, one per run of single-bar blocks
            inner.append(_name(block) + call)
            continue
        name = r.path
        while "." in name:
            parent = name.rsplit(".", 1)[0]
            if parent == block or sum(1 for p in paths if p == parent or p.startswith(parent + ".")) > 1:
                break
            name = parent
        outer.append(_name(block))
        inner.append(_name(name.removeprefix(block + ".")) + call)
    return outer, inner


def chart_rows(profile: Profile, keep: Callable[[LayerCost], bool]) -> list[LayerCost]:
    """The leaf calls that ``keep`` accepts, in execution order, and each parent's own ops
    ("(self)", after its last child) where ``keep`` accepts them: what per-layer charts draw."""
    deepest = max(layer.depth for layer in profile.layers)
    return [layer for layer in profile.rows(deepest) if layer.leaf and keep(layer)]


def block_axis() -> dict[str, Any]:
    """A two-level category axis: the block (stage) under its layers' names."""
    return {"type": "multicategory", "tickangle": -90, "tickfont": {"size": 10}, "dividercolor": "#bbb"}


def _block_colors(profile: Profile, rows: list[LayerCost]) -> list[str]:
    """One color per top-level block, the same in every chart of the page."""
    order = list(dict.fromkeys(_block(layer) for layer in profile.at_depth(1)))
    return [BLOCK_COLORS[order.index(_block(r)) % len(BLOCK_COLORS)] if _block(r) in order else "#999" for r in rows]


def _bottom_margin(names: list[str], blocks: bool = True) -> int:
    """Room under the plot for rotated names (about 6 px a character at 10 px), and the block names below them."""
    longest = max((len(name) for name in names), default=4)
    return (36 if blocks else 12) + 7 * min(longest, 40)


def _room_below(layout: dict[str, Any], bottom: int, plot_height: int = 340) -> dict[str, Any]:
    """``layout`` with ``bottom`` pixels under the plot, the plot itself keeping ``plot_height``."""
    return {**layout, "height": plot_height + bottom, "margin": {**layout["margin"], "b": bottom}}


def layer_bars(profile: Profile, metric: str, title: str) -> go.Figure:
    """One bar per layer call that carries ``metric`` (macs or params), in execution order,
    labelled, colored by its block, with the block names on the axis."""
    rows = chart_rows(profile, lambda layer: bool(layer.get(metric)))
    fig = go.Figure(go.Bar(
        x=list(axis_labels(rows)), y=[r.get(metric) for r in rows],
        marker_color=_block_colors(profile, rows), hovertext=[_hover(r) for r in rows], hoverinfo="text",
        name=metrics.get(metric).label,
    ))
    hidden = sum(1 for layer in profile.leaves() if not layer.get(metric))
    note = f"{len(rows)} layers carry {metrics.get(metric).label}; {hidden} without are left out"
    fig.update_layout(title=_title(f"{title}<br><sup>{note}</sup>"), updatemenus=_scale_buttons(),
                      xaxis=block_axis(), yaxis_title=_label(metric), bargap=0.15,
                      **_room_below(LAYOUT, _bottom_margin(axis_labels(rows)[1])))
    return fig


def cumulative(profile: Profile) -> go.Figure:
    """Running share of MACs and params through the network's depth (leaf calls in order)."""
    rows = profile.leaves()
    fig = go.Figure()
    # params dashed over MACs: where the curves coincide (every conv at one resolution) both stay visible
    for metric, color, dash in (("macs", PALETTE[0], "solid"), ("params", PALETTE[3], "dash")):
        total = sum(layer.get(metric) or 0 for layer in rows) or 1
        running, ys = 0.0, []
        for layer in rows:
            running += layer.get(metric) or 0
            ys.append(100 * running / total)
        fig.add_trace(go.Scatter(
            x=list(range(len(rows))), y=ys, mode="lines", name=metrics.get(metric).label, line={"color": color, "dash": dash},
            hovertext=[_hover(layer) for layer in rows], hoverinfo="text+y",
        ))
    fig.update_layout(title=_title("Cumulative share of MACs and params over depth"), xaxis_title="leaf layer (execution order)",
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
    views = {"type": "buttons", "direction": "right", "x": 0, "xanchor": "left", "y": BUTTONS_Y, "yanchor": "bottom",
             "pad": {"l": 0, "r": 0, "t": 0, "b": 0}, "buttons": [
                 {"label": "by layer type", "method": "update", "args": [{"visible": [True, False]}]},
                 {"label": "by op", "method": "update", "args": [{"visible": [False, True]}]},
             ]}
    fig.update_layout(title=_title("Share of FLOPs"), xaxis_title=_label("flops"),
                      updatemenus=[views, *_scale_buttons("xaxis", x=0.42)], **LAYOUT)
    return fig


def sunburst(profile: Profile) -> go.Figure:
    """MACs over the module hierarchy: each ring one level deeper, a parent's own MACs as
    its "(self)" slice, the largest blocks labelled with their share."""
    ids, parents, labels, values, hovers = [], [], [], [], []
    total = profile.totals.get("macs") or 1
    stack: list[tuple[int, str]] = []

    def add(node: str, parent: str, layer: LayerCost) -> None:
        ids.append(node)
        parents.append(parent)
        labels.append(_name(layer.name))
        values.append(layer.get("macs") or 0)
        hovers.append(_hover(layer) + f"<br>{100 * (layer.get('macs') or 0) / total:.1f}% of the model's MACs")

    for i, layer in enumerate(profile.layers):
        while stack and stack[-1][0] >= layer.depth:
            stack.pop()
        add(f"{i}", stack[-1][1] if stack else "", layer)
        stack.append((layer.depth, f"{i}"))
        own = profile.own_record(i)
        if own is not None and own.get("macs"):
            add(f"{i}-self", f"{i}", own)
    shares = [f"{100 * v / total:.1f}%" if v / total >= SUNBURST_LABELLED and p else "" for v, p in zip(values, parents)]
    fig = go.Figure(go.Sunburst(
        ids=ids, parents=parents, labels=labels, values=values, branchvalues="total", text=shares,
        texttemplate="%{label}<br>%{text}", hovertext=hovers, hoverinfo="text", maxdepth=3,
        insidetextorientation="horizontal",
    ))
    fig.update_layout(title=_title("MACs by block, with the largest shares (click a block to zoom in)"),
                      **{**LAYOUT, "height": 560, "margin": {**LAYOUT["margin"], "t": 60}})
    return fig


def _feature_map(layer: LayerCost) -> bool:
    return bool(layer.output_shapes) and len(layer.output_shapes[0]) == 4


def branches(profile: Profile) -> list[int]:
    """Indices of the root's children that run side by side on the model's input (an
    Inception module's branches); empty when the model is a chain."""
    kids = profile.children(0)
    side_by_side = [k for k in kids if profile.layers[k].input_shapes[:1] == profile.root.input_shapes[:1]]
    return side_by_side if len(side_by_side) >= 2 and len(side_by_side) == len(kids) else []


def _steps(profile: Profile, index: int) -> list[LayerCost]:
    """The steps along one branch: its leaves that compute (MACs), pool, or change the
    shape; activations and norms, which keep it, are left out."""
    depth = profile.layers[index].depth
    inside = []
    for layer in profile.layers[index + 1:]:
        if layer.depth <= depth:
            break
        inside.append(layer)
    chain = [layer for layer in (inside or [profile.layers[index]]) if layer.leaf and _feature_map(layer)]
    return [layer for layer in chain if _is_step(layer)] or chain[-1:]


def _is_step(layer: LayerCost) -> bool:
    """A call worth a point on a shape walk: it computes (MACs), pools, or changes the
    shape; activations and norms, which keep it, are not."""
    return (bool(layer.get("macs")) or "pool" in layer.type.lower()
            or layer.output_shapes[:1] != layer.input_shapes[:1])


def _step_name(branch: LayerCost, step: LayerCost) -> str:
    """'reduce' for 'branch2.reduce.conv': the step's module inside the branch, without the
    leaf's own name when a wrapper (a conv-ReLU pair) names it already."""
    parts = step.path.removeprefix(branch.path + ".").split(".") if step.path != branch.path else [step.name]
    return ".".join(parts[:-1] if len(parts) > 1 else parts)


def shape_walk(profile: Profile) -> go.Figure:
    """Feature-map size n_H·n_W and channels n_C along the main path; for a model of
    parallel branches, channels along each branch from the shared input."""
    lanes = branches(profile)
    if lanes:
        return _branch_walk(profile, lanes)
    trunk = [r for r in profile.trunk() if _feature_map(r)]
    rows = [r for r in trunk if _is_step(r)] or trunk
    outer, inner = axis_labels(rows)
    nested = any(r.depth > 1 for r in rows)
    x = [outer, inner] if nested else inner
    hovers = [_hover(layer) for layer in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=[r.output_shapes[0][2] * r.output_shapes[0][3] for r in rows],
                             name="n_H·n_W (pixels)", mode="lines+markers", line={"color": PALETTE[0]},
                             hovertext=hovers, hoverinfo="text+y"))
    fig.add_trace(go.Scatter(x=x, y=[r.output_shapes[0][1] for r in rows], name="n_C (channels)", yaxis="y2",
                             mode="lines+markers", line={"color": PALETTE[1]}, hovertext=hovers, hoverinfo="text+y"))
    fig.update_layout(
        title=_title("Shape along the main path: feature-map size n_H·n_W and channels n_C"),
        xaxis=block_axis() if nested else {"tickangle": -90, "tickfont": {"size": 10}},
        yaxis={"title": "n_H·n_W (pixels, log)", "type": "log", "dtick": 1},
        yaxis2={"title": "n_C (channels)", "overlaying": "y", "side": "right", "rangemode": "tozero",
                "tickmode": "auto", "showgrid": False},
        legend={"x": 0, "y": BUTTONS_Y, "yanchor": "bottom", "orientation": "h"},
        **_room_below({**LAYOUT, "margin": {**LAYOUT["margin"], "r": 60}}, _bottom_margin(inner, blocks=nested), 300),
    )
    return fig


def _branch_walk(profile: Profile, lanes: list[int]) -> go.Figure:
    """One line per branch: channels from the shared input through each step that changes the shape."""
    root = profile.root
    start = root.input_shapes[0]
    fig = go.Figure()
    pixels = {start[2] * start[3]}
    for n, index in enumerate(lanes):
        branch = profile.layers[index]
        steps = [step for step in _steps(profile, index) if _feature_map(step)]
        pixels.update(s.output_shapes[0][2] * s.output_shapes[0][3] for s in steps)
        fig.add_trace(go.Scatter(
            x=["input", *(f"step {i + 1}" for i in range(len(steps)))],
            y=[start[1], *(s.output_shapes[0][1] for s in steps)], name=_name(branch.path),
            mode="lines+markers+text", text=["", *(_name(_step_name(branch, s)) for s in steps)],
            textposition="top center" if n % 2 == 0 else "bottom center", line={"color": PALETTE[n % len(PALETTE)]},
            hovertext=[f"input {format_shape(start)}", *(_hover(s) for s in steps)], hoverinfo="text",
        ))
    spatial = (f"n_H·n_W stays {pixels.pop()}" if len(pixels) == 1 else "n_H·n_W changes: see the hover")
    fig.update_layout(
        title=_title(f"Channels n_C along each of the {len(lanes)} parallel branches<br>"
                     f"<sup>{spatial}; the branches are concatenated to {root.output}</sup>"),
        xaxis_title="step along the branch (convolutions and pools)", yaxis_title="n_C (channels)",
        yaxis={"rangemode": "tozero"}, legend={"x": 0, "y": BUTTONS_Y, "yanchor": "bottom", "orientation": "h"},
        **LAYOUT,
    )
    return fig


def _memory_row(layer: LayerCost) -> bool:
    """Layers worth a bar: they compute (MACs), change the shape (pooling), or write more
    than they return (max-pool's indices, local response norm's temporaries)."""
    if layer.name == "(self)":
        return bool(layer.get("activation_bytes"))
    changes = layer.output_shapes[:1] != layer.input_shapes[:1]
    return bool(layer.get("macs")) or changes or (layer.get("activation_bytes") or 0) > (layer.get("output_bytes") or 0)


def memory(profile: Profile) -> go.Figure:
    """Per layer call: the size of its output against every tensor it wrote, and the
    forward's peak of tensors alive at once (weights aside) as a line."""
    rows = chart_rows(profile, _memory_row)
    x = list(axis_labels(rows))
    hovers = [_hover(layer) for layer in rows]
    fig = go.Figure([
        go.Bar(x=x, y=[r.get(key) for r in rows], name=metrics.get(key).label, marker_color=color,
               hovertext=hovers, hoverinfo="text+y")
        for key, color in (("output_bytes", PALETTE[0]), ("activation_bytes", PALETTE[2]))
    ])
    peak, weights = profile.totals.get("peak_bytes"), profile.totals.get("weight_bytes") or 0
    if peak is not None:
        alive = peak - weights
        fig.add_hline(y=alive, line={"dash": "dot", "color": PALETTE[1]},
                      annotation={"text": f"peak alive at once, weights aside: {metrics.get('peak_bytes').short(alive)}",
                                  "xanchor": "right", "x": 1, "font": {"color": PALETTE[1]}})
    fig.update_layout(title=_title("Activation memory per layer: the output kept vs every tensor written"),
                      barmode="group", updatemenus=_scale_buttons(), xaxis=block_axis(), yaxis_title="bytes",
                      legend={"x": 0.2, "y": BUTTONS_Y, "yanchor": "bottom", "orientation": "h"},
                      **_room_below(LAYOUT, _bottom_margin(axis_labels(rows)[1])))
    return fig


STEP_PARTS = (("flops", "forward", PALETTE[0]), ("backward_flops", "backward", PALETTE[1]),
              ("update_flops", "update", PALETTE[3]))


def training_step(profile: Profile) -> go.Figure:
    """Per layer call of a training step: forward, backward and update FLOPs stacked."""
    rows = chart_rows(profile, lambda layer: any(layer.get(key) for key, _, _ in STEP_PARTS))
    x = list(axis_labels(rows))
    hovers = [_hover(layer) for layer in rows]
    fig = go.Figure([go.Bar(x=x, y=[r.get(key) or 0 for r in rows], name=name, marker_color=color,
                            hovertext=hovers, hoverinfo="text+y+name") for key, name, color in STEP_PARTS])
    t = profile.totals
    split = " · ".join(f"{name} {metrics.get('flops').short(t.get(key, 0))}" for key, name, _ in STEP_PARTS)
    fig.update_layout(title=_title(f"One training step per layer: forward, backward and update FLOPs<br>"
                                   f"<sup>{split}; a parent's own ops (residual adds) are in the totals only</sup>"),
                      barmode="stack", updatemenus=_scale_buttons(), xaxis=block_axis(), yaxis_title="FLOPs",
                      legend={"x": 0.2, "y": BUTTONS_Y, "yanchor": "bottom", "orientation": "h"},
                      **_room_below(LAYOUT, _bottom_margin(axis_labels(rows)[1])))
    return fig


STEP_MEMORY = (("weight_bytes", "weights", PALETTE[0]), ("grad_bytes", "gradients", PALETTE[1]),
               ("optimizer_state_bytes", "optimizer state", PALETTE[2]),
               ("saved_activation_bytes", "saved activations", PALETTE[3]))
LABELLED_SHARE = 8  # percent: narrower parts of a bar are named in their hover label only
STEP_TIME = (("step_forward_ms", "forward", PALETTE[0]), ("step_backward_ms", "backward", PALETTE[1]),
             ("step_update_ms", "update", PALETTE[3]))


def training_totals(profile: Profile) -> go.Figure:
    """A training step's memory when backward starts, and (when timed) its measured time, each
    split into its parts as shares of one bar."""
    t = profile.totals
    bars: list[tuple[str, tuple[tuple[str, str, str], ...], str]] = [
        ("memory when<br>backward starts", STEP_MEMORY, "bytes")]
    if "step_ms" in t:
        bars.append(("time (measured)", STEP_TIME, "ms"))
    fig = go.Figure()
    for label, parts, unit in bars:
        whole = sum(t.get(key, 0) for key, _, _ in parts) or 1
        for key, name, color in parts:
            value, share = t.get(key, 0), 100 * t.get(key, 0) / whole
            fig.add_trace(go.Bar(y=[label], x=[share], orientation="h", name=name, marker_color=color,
                                 text=[f"{name} {metrics.UNITS[unit].short(value)}" if share >= LABELLED_SHARE else ""],
                                 textposition="inside",
                                 hovertext=[f"{name}: {metrics.UNITS[unit].exact(value)} ({share:.1f}%)"],
                                 hoverinfo="text", showlegend=False))
    fig.update_layout(title=_title("Where a training step's memory (and time) goes"), barmode="stack",
                      xaxis_title="% of the whole", xaxis_range=[0, 100], **{**LAYOUT, "height": 140 + 70 * len(bars)})
    return fig


WIDE_FROM = 16  # bars from which a per-layer chart takes the page's full width


def is_wide(fig: go.Figure) -> bool:
    """Whether a chart needs the page's full width: a bar chart over many layers."""
    return any(isinstance(trace, go.Bar) and trace.orientation != "h" and len(trace.y or ()) >= WIDE_FROM
               for trace in fig.data)


def profile_figures(profile: Profile) -> list[tuple[str, go.Figure]]:
    """Every chart of a profile page, with a short id for each."""
    timed: list[tuple[str, go.Figure]] = []
    if profile.timing and profile.timing.get("device") and ("time_ms" in profile.totals or "traced_time_ms" in profile.totals):
        from costlens.report import timing_figures

        timed = [("roofline", timing_figures.roofline_chart(profile)), ("time-bars", timing_figures.time_bars(profile))]
    step: list[tuple[str, go.Figure]] = []
    if "backward_flops" in profile.totals:
        step = [("training-step", training_step(profile)), ("training-totals", training_totals(profile))]
    return timed + step + [
        ("macs-bars", layer_bars(profile, "macs", "MACs per layer (execution order)")),
        ("params-bars", layer_bars(profile, "params", "Parameters per layer (execution order)")),
        ("sunburst", sunburst(profile)),
        ("by-type", share_of_flops(profile)),
        ("cumulative", cumulative(profile)),
        *([("shape-walk", shape_walk(profile))] if _walks_feature_maps(profile) else []),
        ("memory", memory(profile)),
    ]


def _walks_feature_maps(profile: Profile) -> bool:
    """The shape walk follows feature maps (N×C×H×W): a model fed an image, through layers that keep one."""
    root = profile.root
    return bool(root.input_shapes) and len(root.input_shapes[0]) == 4 and any(
        _feature_map(layer) for layer in profile.trunk())


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
    fig.update_layout(title=_title(f"Totals relative to {_name(comparison.names[0])}"), barmode="group",
                      yaxis_title="× baseline", legend={"x": 0, "y": BUTTONS_Y, "yanchor": "bottom", "orientation": "h"},
                      **LAYOUT)
    return fig


def comparison_blocks(comparison: Comparison, metric: str = "macs") -> go.Figure:
    """Grouped bars per matched block, one color per model; nested blocks ('features.conv1_1')
    stand under their top-level block's name."""
    blocks = comparison.blocks_with(metric)
    labels = [_name(b.label) for b in blocks]
    nested = any("." in b.path for b in blocks)
    inner = [_name(b.label.partition(".")[2] or b.label) for b in blocks]
    x: list[Any] = [[_name(b.path.partition(".")[0]) for b in blocks], inner] if nested else labels
    label = metrics.get(metric).label
    fig = go.Figure()
    for i, name in enumerate(comparison.names):
        ys = [b.values[metric][i] for b in blocks]
        fig.add_trace(go.Bar(
            x=x, y=ys, name=_name(name), marker_color=PALETTE[i % len(PALETTE)],
            hovertext=[f"{_name(name)} · {lab}<br>{label}: {metrics.get(metric).format(y) if y is not None else 'absent'}"
                       for lab, y in zip(labels, ys)], hoverinfo="text",
        ))
    axis = block_axis() if nested else {}
    fig.update_layout(title=_title(f"{label} by matched block"), barmode="group", yaxis_title=_label(metric),
                      updatemenus=_scale_buttons(), xaxis=axis,
                      legend={"x": 0.2, "y": BUTTONS_Y, "yanchor": "bottom", "orientation": "h"},
                      **(_room_below(LAYOUT, _bottom_margin(inner)) if nested else LAYOUT))
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


# --- sweeps ----------------------------------------------------------------------


def sweep_chart(result: Sweep) -> go.Figure:
    """Each metric against the swept variable on log-log axes, relative to the first point,
    with a tick at every point: a straight line's slope is the growth exponent."""
    fig = go.Figure(layout={**LAYOUT, "title": f"Cost against {result.variable} (log-log)",
                            "xaxis": {"type": "log", "title": result.variable,
                                      "tickvals": [p.x for p in result.points],
                                      "ticktext": [f"{p.x:g}" for p in result.points]},
                            "yaxis": {"type": "log", "title": "value / value at the first point"}})
    for i, key in enumerate(result.metrics()):
        first = result.points[0].totals[key] or 1
        fig.add_trace(go.Scatter(x=[p.x for p in result.points], y=[p.totals[key] / first for p in result.points],
                                 mode="lines+markers", name=metrics.get(key).label,
                                 line={"color": PALETTE[i % len(PALETTE)]}))
    return fig
