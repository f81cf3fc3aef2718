"""Page assembly: one self-contained, offline HTML file per profile or comparison.

plotly.js is embedded (or, with ``plotlyjs_src``, loaded from a file beside the
reports); nothing else is fetched: a Content-Security-Policy forbids connections.
Every model-given string is escaped with ``html.escape``.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from pathlib import Path

import plotly.graph_objects as go

from costlens.compare import Comparison, ratio_row
from costlens.files import write_atomic
from costlens.profile import LayerCost, Profile
from costlens.report import figures
from costlens.report.text import METRIC_LABELS, metric_value, ratio_words
from costlens.units import format_shape, grouped, human, human_bytes

PLOTLY_FILE = "plotly.min.js"

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f2a44;color:#fff;padding:18px 28px}header h1{margin:0 0 6px;font-size:24px}
header .meta{font-size:13px;opacity:.9}header .convention{font-size:12px;opacity:.8;margin-top:6px}
main{padding:18px 28px;max-width:1400px}section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;
margin:0 0 18px;padding:12px 16px}h2{font-size:17px;margin:4px 0 10px}
.totals{display:flex;flex-wrap:wrap;gap:12px}.total{border:1px solid #dde;border-radius:6px;padding:8px 14px;
min-width:150px;background:#f5f7fc}.total .label{display:block;font-size:12px;color:#556}
.total .value{font-size:18px;font-weight:600}.total .short{font-size:12px;color:#556}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:12px}.chart{min-width:0}
table{border-collapse:collapse;font-size:13px;width:100%}th,td{padding:3px 8px;border-bottom:1px solid #eee;
text-align:left;white-space:nowrap}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f0f2f7;position:sticky;top:0;cursor:pointer;user-select:none}th.sorted-asc:after{content:" ▲"}
th.sorted-desc:after{content:" ▼"}.scroll{max-height:640px;overflow:auto}
input.filter{padding:5px 8px;width:320px;margin-bottom:8px;border:1px solid #ccd;border-radius:4px}
.none{color:#2a7;font-weight:600}.warn{color:#b50}.depth1{font-weight:600}
"""

SCRIPT = """
window.addEventListener('load', function () {
  document.querySelectorAll('.chart .plotly-graph-div').forEach(function (div) { Plotly.Plots.resize(div); });
});
document.querySelectorAll('table.sortable').forEach(function (table) {
  var body = table.tBodies[0];
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var asc = !th.classList.contains('sorted-asc');
      table.querySelectorAll('th').forEach(function (h) { h.classList.remove('sorted-asc', 'sorted-desc'); });
      th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
        var nx = parseFloat(x), ny = parseFloat(y);
        var cmp = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
        return asc ? cmp : -cmp;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.querySelectorAll('input.filter').forEach(function (box) {
  var table = document.getElementById(box.dataset.table);
  box.addEventListener('input', function () {
    var needle = box.value.toLowerCase();
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      row.style.display = row.textContent.toLowerCase().indexOf(needle) >= 0 ? '' : 'none';
    });
  });
});
"""

# No request may leave the page: only inline code, data: images, and plotly.js from a file.
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval' 'self' file:; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; connect-src 'none'")


def _e(text: object) -> str:
    return html.escape(str(text))


def _plotly_tag(plotlyjs_src: str | None) -> str:
    if plotlyjs_src is not None:
        return f'<script src="{_e(plotlyjs_src)}"></script>'
    from plotly.offline import get_plotlyjs

    return f"<script>{get_plotlyjs()}</script>"


def _figure_div(fig_id: str, fig: go.Figure) -> str:
    body = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{fig_id}",
                       config={"displaylogo": False, "responsive": True})
    return f'<div class="chart" data-chart="{_e(fig_id)}">{body}</div>'


def _document(title: str, header: str, sections: list[str], plotlyjs_src: str | None) -> str:
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{_e(title)}</title><style>{STYLE}</style>", _plotly_tag(plotlyjs_src), "</head><body>",
        header, "<main>", *sections, "</main>", f"<script>{SCRIPT}</script>", "</body></html>",
    ])


def _section(title: str, body: str, section_id: str) -> str:
    return f'<section id="{_e(section_id)}"><h2>{_e(title)}</h2>{body}</section>'


def _header(profile: Profile) -> str:
    env, device = profile.environment, profile.device
    cite = f'<div class="meta">{_e(profile.citation)}</div>' if profile.citation else ""
    return (
        f'<header><h1>costlens · {_e(profile.model)}</h1>{cite}'
        f'<div class="meta">input {_e(format_shape(profile.input_shape))} · {_e(profile.dtype)} · '
        f'device {_e(device.get("type"))} · torch {_e(env.get("torch"))} · costlens {_e(env.get("costlens"))} · '
        f'python {_e(env.get("python"))}</div>'
        f'<div class="convention">Convention: {_e(profile.convention)}</div></header>'
    )


def _totals(profile: Profile) -> str:
    t = profile.totals
    cards = [
        ("params", "Params", grouped(t["params"]), human(t["params"])),
        ("trainable_params", "Trainable params", grouped(t["trainable_params"]), human(t["trainable_params"])),
        ("macs", "MACs", grouped(t["macs"]), human(t["macs"])),
        ("flops", "FLOPs", grouped(t["flops"]), human(t["flops"])),
        ("activation_bytes", "Activations", grouped(t["activation_bytes"]) + " B", human_bytes(t["activation_bytes"])),
        ("weight_bytes", "Weights", grouped(t["weight_bytes"]) + " B", human_bytes(t["weight_bytes"])),
        ("bytes", "Bytes moved", grouped(t["bytes"]) + " B", human_bytes(t["bytes"])),
        ("buffers", "Buffers", grouped(t["buffers"]), human(t["buffers"])),
    ]
    if profile.timing and "median_ms" in profile.timing:
        ms = profile.timing["median_ms"]
        cards.append(("latency_ms", "Latency (median)", f"{ms:.3f} ms", str(profile.timing.get("device", ""))))
    return '<div class="totals">' + "".join(
        f'<div class="total" data-metric="{key}" data-value="{t.get(key, "")}"><span class="label">{label}</span>'
        f'<span class="value">{_e(value)}</span> <span class="short">{_e(short)}</span></div>'
        for key, label, value, short in cards) + "</div>"


def _formula_table(profile: Profile) -> str:
    rows = [layer for layer in profile.layers if layer.formula]
    if not rows:
        return "<p>No convolution, linear or matmul ran.</p>"
    body = "".join(
        f"<tr><td>{_e(layer.path or '<root>')}</td><td>{_e(layer.type)}</td><td>{_e(layer.formula)}</td>"
        f'<td class="num" data-value="{layer.macs}">{grouped(layer.macs)}</td></tr>' for layer in rows)
    return ('<div class="scroll"><table class="sortable" id="formulas"><thead><tr><th>Layer</th><th>Type</th>'
            f'<th>Formula (output × kernel)</th><th class="num">MACs</th></tr></thead><tbody>{body}</tbody></table></div>')


def _uncounted(profile: Profile) -> str:
    if not profile.uncounted:
        return '<p class="none">None: every op that ran has a formula.</p>'
    body = "".join(f"<tr><td>{_e(u.op)}</td><td class='num'>{u.count}</td><td>{_e(', '.join(u.paths))}</td></tr>"
                   for u in profile.uncounted)
    return ('<p class="warn">These ops have no formula and count 0 FLOPs:</p><table><thead><tr><th>Op</th>'
            f'<th class="num">Count</th><th>Where</th></tr></thead><tbody>{body}</tbody></table>')


def _layer_row(index: int, layer: LayerCost) -> str:
    def num(value: int | float, text: str) -> str:
        return f'<td class="num" data-value="{value}">{_e(text)}</td>'

    indent = "&nbsp;&nbsp;" * max(layer.depth - 1, 0)
    return (
        f'<tr class="depth{layer.depth}"><td class="num" data-value="{index}">{index}</td>'
        f'<td data-value="{_e(layer.path)}">{indent}{_e(layer.path or "<root>")}</td>'
        f'<td data-value="{_e(layer.type)}">{_e(layer.type)}</td>'
        f'<td class="num" data-value="{layer.call}">{layer.call}</td>'
        f'<td data-value="{_e(layer.input_shapes)}">{_e(" ".join(format_shape(s) for s in layer.input_shapes))}</td>'
        f'<td data-value="{_e(layer.output_shapes)}">{_e(" ".join(format_shape(s) for s in layer.output_shapes))}</td>'
        + num(layer.params, grouped(layer.params)) + num(layer.macs, grouped(layer.macs))
        + num(layer.flops, grouped(layer.flops)) + num(layer.activation_bytes, human_bytes(layer.activation_bytes))
        + num(layer.weight_bytes, human_bytes(layer.weight_bytes)) + num(layer.intensity, f"{layer.intensity:.1f}")
        + "</tr>"
    )


def _layer_table(profile: Profile) -> str:
    heads = ["#", "Layer", "Type", "Call", "Input", "Output", "Params", "MACs", "FLOPs", "Activations",
             "Weights", "FLOPs/byte"]
    numeric = {"#", "Call", "Params", "MACs", "FLOPs", "Activations", "Weights", "FLOPs/byte"}
    head = "".join(f'<th class="{"num" if h in numeric else ""}">{h}</th>' for h in heads)
    body = "".join(_layer_row(i, layer) for i, layer in enumerate(profile.layers))
    return ('<input class="filter" data-table="layers" placeholder="Filter layers by name or type">'
            f'<div class="scroll"><table class="sortable" id="layers"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def profile_page(profile: Profile, plotlyjs_src: str | None = None) -> str:
    """The profile's page: header, totals, charts, formulas, uncounted ops, layer table."""
    charts = '<div class="charts">' + "".join(_figure_div(i, f) for i, f in figures.profile_figures(profile)) + "</div>"
    sections = [
        _section("Totals", _totals(profile), "totals"),
        _section("Where the cost goes", charts, "charts"),
        _section("Formulas of convolution, linear and matmul layers", _formula_table(profile), "formulas"),
        _section("Uncounted ops", _uncounted(profile), "uncounted"),
        _section("Every module call", _layer_table(profile), "layer-table"),
    ]
    return _document(f"costlens · {profile.model}", _header(profile), sections, plotlyjs_src)


def _comparison_header(comparison: Comparison) -> str:
    first = comparison.profiles[0]
    models = "".join(
        f'<div class="meta">{_e(p.model)} — input {_e(format_shape(p.input_shape))} · {_e(p.dtype)} · '
        f'device {_e(p.device.get("type"))}{" · " + _e(p.citation) if p.citation else ""}</div>'
        for p in comparison.profiles)
    env = first.environment
    return (f'<header><h1>costlens · {_e(" vs ".join(comparison.names))}</h1>{models}'
            f'<div class="meta">torch {_e(env.get("torch"))} · costlens {_e(env.get("costlens"))}</div>'
            f'<div class="convention">Convention: {_e(first.convention)}</div></header>')


def _ratio_table(comparison: Comparison) -> str:
    names = comparison.names
    head = "<th>Metric</th>" + "".join(f'<th class="num">{_e(n)}</th>' for n in names)
    metrics = ["params", "macs", "flops", "activation_bytes", "weight_bytes"] + (
        ["latency_ms"] if comparison.has_timing else [])
    rows = []
    for metric in metrics:
        values, ratios = comparison.total(metric), comparison.ratios(metric)
        cells = "".join(
            f'<td class="num" data-model="{_e(n)}" data-metric="{metric}" data-value="{v}">{_e(metric_value(metric, v))}'
            + (f"<br><small>{_e(ratio_words(r))}</small>" if i else "") + "</td>"
            for i, (n, v, r) in enumerate(zip(names, values, ratios)))
        rows.append(f"<tr><td>{METRIC_LABELS[metric]}</td>{cells}</tr>")
    return f'<table id="ratios"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _block_table(comparison: Comparison) -> str:
    names = comparison.names
    head = "<th>Block</th>" + "".join(
        f'<th class="num">{_e(n)} MACs</th><th class="num">{_e(n)} params</th>' for n in names)
    rows = []
    for block in comparison.blocks:
        macs, params = list(block.values["macs"]), list(block.values["params"])
        macs_r, params_r = ratio_row(macs), ratio_row(params)
        cells = ""
        for i in range(len(names)):
            for metric, vals, rats in (("macs", macs, macs_r), ("params", params, params_r)):
                note = f"<br><small>{_e(ratio_words(rats[i]))}</small>" if i and vals[i] is not None else ""
                cells += (f'<td class="num" data-metric="{metric}" data-value="{vals[i] if vals[i] is not None else ""}">'
                          f'{_e(metric_value(metric, vals[i]))}{note}</td>')
        indent = "&nbsp;&nbsp;" * (block.depth - 1)
        rows.append(f'<tr data-block="{_e(block.label)}"><td data-value="{_e(block.label)}">{indent}'
                    f"{_e(block.label)}</td>{cells}</tr>")
    return (f'<div class="scroll"><table class="sortable" id="blocks"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def comparison_page(comparison: Comparison, plotlyjs_src: str | None = None) -> str:
    """The comparison's page: ratio table, grouped bars, matched blocks."""
    charts = '<div class="charts">' + "".join(
        _figure_div(i, f) for i, f in figures.comparison_figures(comparison)) + "</div>"
    sections = [
        _section(f"Totals, with ratios to {comparison.names[0]}", _ratio_table(comparison), "totals"),
        _section("Side by side", charts, "charts"),
        _section("Matched blocks", _block_table(comparison), "blocks"),
    ]
    title = "costlens · " + " vs ".join(comparison.names)
    return _document(title, _comparison_header(comparison), sections, plotlyjs_src)


def write_page(path: str | Path, render: Callable[[str | None], str], plotly_dir: str | Path | None = None) -> Path:
    """Write a page atomically; with ``plotly_dir``, plotly.js goes there once, shared.

    ``render`` is ``profile_page`` or ``comparison_page`` bound to its data: a callable
    taking the ``plotlyjs_src`` to reference (None embeds plotly.js).
    """
    target = Path(path)
    src = None
    if plotly_dir is not None:
        shared = Path(plotly_dir) / PLOTLY_FILE
        if not shared.exists():
            from plotly.offline import get_plotlyjs

            write_atomic(shared, get_plotlyjs())
        src = Path(os.path.relpath(shared.resolve(), target.parent.resolve())).as_posix()
    return write_atomic(target, render(src))
