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
from typing import TYPE_CHECKING

from costlens import metrics
from costlens.comparison import Comparison, ratio_row
from costlens.files import write_atomic
from costlens.records import LayerCost, Profile
from costlens.report.comparison_text import BLOCK_METRICS, NOT_COMPARED
from costlens.report.grid import ratio_words
from costlens.units import format_shape

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from costlens.alternatives import WhatIf
    from costlens.sweep import Sweep

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
.chart.wide{grid-column:1/-1}.defs{font-size:13px;color:#333;margin:10px 0 0;line-height:1.45}
.defs dt{font-weight:600;display:inline}.defs dd{display:inline;margin:0}.defs div{margin:2px 0}
tr.own td{font-style:italic;color:#445}code{white-space:nowrap;font-size:0.95em}
table{border-collapse:collapse;font-size:13px;width:100%}th,td{padding:3px 7px;border-bottom:1px solid #eee;
text-align:left;white-space:nowrap}th{white-space:normal;vertical-align:bottom}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f0f2f7;position:sticky;top:0;cursor:pointer;user-select:none}th.sorted-asc:after{content:" ▲"}
th.sorted-desc:after{content:" ▼"}.scroll{max-height:640px;overflow:auto}
input.filter{padding:5px 8px;width:320px;margin-bottom:8px;border:1px solid #ccd;border-radius:4px}
pre.timing{overflow-x:auto;font-size:12px}.none{color:#2a7;font-weight:600}.warn{color:#b50}.depth1{font-weight:600}
tr.original td{border-top:2px solid #c9cfdd;font-weight:600}p.honesty{font-weight:600;color:#6a3d00}
td.wrap{white-space:normal;min-width:240px}
"""

SCRIPT = """
window.addEventListener('load', function () {
  document.querySelectorAll('.chart .plotly-graph-div').forEach(function (div) { Plotly.Plots.resize(div); });
});
document.querySelectorAll('table.sortable').forEach(function (table) {
  var body = table.tBodies[0];
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      // numbers sort largest first on the first click, text A to Z; a second click reverses
      var first = !th.classList.contains('sorted-asc') && !th.classList.contains('sorted-desc');
      var asc = first ? !th.classList.contains('num') : th.classList.contains('sorted-desc');
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


def _figure_div(fig_id: str, fig: go.Figure, wide: bool = False) -> str:
    body = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{fig_id}",
                       config={"displaylogo": False, "responsive": True})
    return f'<div class="chart{" wide" if wide else ""}" data-chart="{_e(fig_id)}">{body}</div>'


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
    env = profile.environment
    cite = f'<div class="meta">{_e(profile.citation)}</div>' if profile.citation else ""
    return (
        f'<header><h1>costlens · {_e(profile.model)}</h1>{cite}'
        f'<div class="meta">input {_e(profile.input_text)} · {_e(profile.dtype)} · '
        f'{_e(_where(profile))} · torch {_e(env.get("torch"))} · costlens {_e(env.get("costlens"))} · '
        f'python {_e(env.get("python"))}</div>'
        f'<div class="convention">Convention: {_e(profile.convention)}</div></header>'
    )


def _where(profile: Profile) -> str:
    """'device meta', or for a timed profile where it was counted and where and how it was timed."""
    from costlens.report.timing_text import timed_where

    return timed_where(profile) or f"device {profile.device.get('type')}"


def _totals(profile: Profile) -> str:
    """One card per total in the catalogue: exact value and short form."""
    cards = []
    for metric in metrics.catalogue():
        value = profile.totals.get(metric.key)
        if value is None:
            continue
        cards.append(
            f'<div class="total" data-metric="{_e(metric.key)}" data-value="{value}" title="{_e(metric.description)}">'
            f'<span class="label">{_e(metric.label)}</span><span class="value">{_e(metric.format(value))}</span> '
            f'<span class="short">{_e(metric.short(value))}</span></div>')
    return '<div class="totals">' + "".join(cards) + "</div>" + _memory_meanings(profile)


def _memory_meanings(profile: Profile) -> str:
    """What each memory figure counts, and the peak taken apart."""
    totals = profile.totals
    items = [(m.label, m.description) for m in metrics.catalogue() if m.unit == "bytes" and m.key in totals]
    peak, weights = totals.get("peak_bytes"), totals.get("weight_bytes")
    if peak is not None and weights is not None:
        short = metrics.get("peak_bytes").short
        items.append(("Peak memory, taken apart",
                      f"{short(weights)} of weights and buffers, held throughout, plus {short(peak - weights)} of "
                      "activations alive at the worst moment (the input and the outputs not yet consumed)"))
    body = "".join(f"<div><dt>{_e(label)}</dt>: <dd>{_e(text)}.</dd></div>" for label, text in items)
    return f'<dl class="defs" id="memory-meanings">{body}</dl>'


def _measured(profile: Profile) -> bool:
    from costlens.report.profile_text import measured_summary

    return bool(measured_summary(profile))


def _timing(profile: Profile) -> str:
    """How the profile was timed, as the terminal shows it."""
    from costlens.report.profile_text import measured_summary

    return f'<pre class="timing">{_e(measured_summary(profile))}</pre>'


def _crosscheck(profile: Profile) -> str:
    """Whether fvcore agrees on MACs module by module, and why its other counts differ, op by op."""
    check = profile.crosscheck or {}
    verdict = ('<p class="none">fvcore agrees on the MACs of every module.</p>' if check.get("agrees") else
               f'<p class="warn">fvcore disagrees on {len(check.get("disagreements", []))} modules.</p>')
    rows = "".join(f"<li>{_e(line)}</li>" for line in check.get("explanations", []))
    return verdict + (f"<p>What fvcore counts beyond convolution, linear and matmul:</p><ul>{rows}</ul>" if rows else "")


def _formula_table(profile: Profile) -> str:
    rows = [layer for layer in profile.layers if layer.formula]
    if not rows:
        return "<p>No convolution, linear or matmul ran.</p>"
    body = "".join(
        f"<tr><td>{_e(layer.path or '<root>')}</td><td>{_e(layer.type)}</td><td>{_e(layer.formula)}</td>"
        f'<td class="num" data-value="{layer.get("macs")}">{_e(metrics.get("macs").format(layer.get("macs")))}</td></tr>'
        for layer in rows)
    return ('<div class="scroll"><table class="sortable" id="formulas"><thead><tr><th>Layer</th><th>Type</th>'
            f'<th>Formula (output × kernel)</th><th class="num">MACs</th></tr></thead><tbody>{body}</tbody></table></div>')


def _uncounted(profile: Profile) -> str:
    if not profile.uncounted:
        return '<p class="none">None: every op that ran has a formula.</p>'
    body = "".join(f"<tr><td>{_e(u.op)}</td><td class='num'>{u.count}</td><td>{_e(', '.join(u.paths))}</td></tr>"
                   for u in profile.uncounted)
    return ('<p class="warn">These ops have no formula and count 0 FLOPs:</p><table><thead><tr><th>Op</th>'
            f'<th class="num">Count</th><th>Where</th></tr></thead><tbody>{body}</tbody></table>')


def _value_reads(profile: Profile) -> str:
    """Each tensor value the model read on meta: where, the op, the value used, known or assumed."""
    body = "".join(f"<tr><td>{_e(r.where)}</td><td>{_e(r.op)}</td><td>{_e(r.value)}</td>"
                   f"<td>{'known' if r.known else 'assumed'}</td></tr>" for r in profile.value_reads)
    note = ('<p class="warn">A meta trace has no values: the reads marked assumed took the value shown, and the '
            'count follows the branch it chose. <code>--strict</code> (<code>strict=True</code>) refuses to assume; '
            '<code>--device cpu</code> reads real values.</p>'
            if profile.assumed else '<p class="none">Every value read was known exactly: costlens made those inputs.</p>')
    return (f'{note}<table><thead><tr><th>Where</th><th>Op</th><th>Value</th><th>Known or assumed</th></tr></thead>'
            f'<tbody>{body}</tbody></table>')


def _num(value: float | None, text: str) -> str:
    return f'<td class="num" data-value="{"" if value is None else value}">{_e(text)}</td>'


def _layer_metrics(profile: Profile) -> list[metrics.Metric]:
    """Per-layer metrics this profile has values for (measured ones only when it was timed)."""
    return [m for m in metrics.per_layer() if m.key in profile.totals or m.key in profile.root.values]


def _layer_row(index: int, layer: LayerCost, shown: list[metrics.Metric]) -> str:
    indent = "&nbsp;&nbsp;" * max(layer.depth - 1, 0)
    own = layer.name == "(self)"
    shapes = " ".join(format_shape(s) for s in layer.input_shapes) or "-"
    title = ("its forward's own ops, outside any child call: " + ", ".join(layer.ops)) if own else f"input {shapes}"
    return (
        f'<tr class="depth{layer.depth}{" own" if own else ""}" title="{_e(title)}">{_num(index, str(index))}'
        f'<td data-value="{_e(layer.path)}">{indent}{_e(layer.label)}</td>'
        f'<td data-value="{_e(layer.type)}">{_e(layer.type)}</td>'
        f'<td data-value="{_e(layer.output_shapes)}">{_e(layer.output)}</td>'
        + "".join(_num(layer.get(m.key), m.cell(layer.get(m.key))) for m in shown)
        + _num(layer.intensity, f"{layer.intensity:.1f}") + "</tr>"
    )


def table_rows(profile: Profile) -> list[LayerCost]:
    """Every module call, the model first, and each parent's own ops ("(self)") after its last child."""
    deepest = max(layer.depth for layer in profile.layers)
    return [profile.root, *profile.rows(deepest)]


def _layer_table(profile: Profile, layers: list[LayerCost] | None = None, filter_box: bool = True) -> str:
    shown = _layer_metrics(profile)
    heads = ["#", "Layer", "Type", "Output", *(m.label for m in shown), "FLOPs/byte"]
    text_columns = {"Layer", "Type", "Output"}
    head = "".join(f'<th class="{"" if h in text_columns else "num"}">{_e(h)}</th>' for h in heads)
    chosen = table_rows(profile) if layers is None else layers
    body = "".join(_layer_row(i, layer, shown) for i, layer in enumerate(chosen))
    box = '<input class="filter" data-table="layers" placeholder="Filter layers by name or type">' if filter_box else ""
    return (f'{box}<div class="scroll"><table class="sortable" id="layers"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def profile_fragment(profile: Profile, depth: int) -> str:
    """A notebook's view of a profile: header, totals and the table down to ``depth`` (no plotly)."""
    return (f'<div class="costlens"><style>{_scoped(STYLE)}</style>{_header(profile)}'
            f"{_totals(profile)}{_layer_table(profile, profile.blocks(depth), filter_box=False)}</div>")


def _scoped(style: str) -> str:
    """The page's style limited to a notebook cell's ``.costlens`` element."""
    rules = [rule for rule in style.replace("\n", "").split("}") if "{" in rule]
    scoped = []
    for rule in rules:
        selectors, body = rule.split("{", 1)
        scoped.append(",".join(f".costlens {sel.strip()}" for sel in selectors.split(",")) + "{" + body + "}")
    return "".join(scoped)


def profile_page(profile: Profile, plotlyjs_src: str | None = None) -> str:
    """The profile's page: header, totals, charts, formulas, uncounted ops, layer table."""
    from costlens.report import figures

    charts = '<div class="charts">' + "".join(
        _figure_div(i, f, wide=figures.is_wide(f)) for i, f in figures.profile_figures(profile)) + "</div>"
    sections = [
        _section("Totals", _totals(profile), "totals"),
        *([_section("Measured time", _timing(profile), "timing")] if _measured(profile) else []),
        *([_section("fvcore's second opinion", _crosscheck(profile), "crosscheck")] if profile.crosscheck else []),
        _section("Where the cost goes", charts, "charts"),
        _section("Formulas of convolution, linear and matmul layers", _formula_table(profile), "formulas"),
        _section("Uncounted ops", _uncounted(profile), "uncounted"),
        *([_section("Values read on meta", _value_reads(profile), "value-reads")] if profile.value_reads else []),
        _section("Every module call, with each parent's own ops as (self)", _layer_table(profile), "layer-table"),
    ]
    return _document(f"costlens · {profile.model}", _header(profile), sections, plotlyjs_src)


def _comparison_header(comparison: Comparison) -> str:
    first = comparison.profiles[0]
    models = "".join(
        f'<div class="meta">{_e(p.model)} — input {_e(p.input_text)} · {_e(p.dtype)} · '
        f'device {_e(p.device.get("type"))}{" · " + _e(p.citation) if p.citation else ""}</div>'
        for p in comparison.profiles)
    env = first.environment
    return (f'<header><h1>costlens · {_e(" vs ".join(comparison.names))}</h1>{models}'
            f'<div class="meta">torch {_e(env.get("torch"))} · costlens {_e(env.get("costlens"))}</div>'
            f'<div class="convention">Convention: {_e(first.convention)}</div></header>')


def _ratio_table(comparison: Comparison) -> str:
    names = comparison.names
    head = "<th>Metric</th>" + "".join(f'<th class="num">{_e(n)}</th>' for n in names)
    rows = []
    for metric in comparison.metrics:
        values, ratios = comparison.total(metric.key), comparison.ratios(metric.key)
        cells = "".join(
            f'<td class="num" data-model="{_e(n)}" data-metric="{_e(metric.key)}" data-value="{"" if v is None else v}">'
            f'{_e(metric.format(v))}' + (f"<br><small>{_e(ratio_words(r) if metric.compare else NOT_COMPARED)}</small>"
                                         if i else "") + "</td>"
            for i, (n, v, r) in enumerate(zip(names, values, ratios)))
        rows.append(f"<tr><td>{_e(metric.label)}</td>{cells}</tr>")
    return f'<table id="ratios"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _block_table(comparison: Comparison) -> str:
    names = comparison.names
    shown = [metrics.get(key) for key in BLOCK_METRICS]
    head = "<th>Block</th>" + "".join(f'<th class="num">{_e(n)} {_e(m.label)}</th>' for n in names for m in shown)
    rows = []
    drawn = {id(b) for m in shown for b in comparison.blocks_with(m.key)}  # the charts' blocks: no parent beside its children
    for block in comparison.blocks:
        if id(block) not in drawn:
            continue
        cells = ""
        for i in range(len(names)):
            for metric in shown:
                values = list(block.values[metric.key])
                ratio = ratio_row(values)[i]
                note = f"<br><small>{_e(ratio_words(ratio))}</small>" if i and ratio is not None else ""
                shown_value = "absent" if values[i] is None else metric.format(values[i])  # the block is not in this model
                cells += (f'<td class="num" data-metric="{metric.key}" data-value="{"" if values[i] is None else values[i]}">'
                          f'{_e(shown_value)}{note}</td>')
        rows.append(f'<tr data-block="{_e(block.label)}"><td data-value="{_e(block.label)}">'
                    f"{_e(block.label)}</td>{cells}</tr>")
    return (f'<div class="scroll"><table class="sortable" id="blocks"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def comparison_fragment(comparison: Comparison) -> str:
    """A notebook's view of a comparison: header, ratio table and matched blocks (no plotly)."""
    return (f'<div class="costlens"><style>{_scoped(STYLE)}</style>{_comparison_header(comparison)}'
            f"{_ratio_table(comparison)}{_block_table(comparison)}</div>")


def comparison_page(comparison: Comparison, plotlyjs_src: str | None = None) -> str:
    """The comparison's page: ratio table, grouped bars, matched blocks."""
    from costlens.report import figures

    charts = '<div class="charts">' + "".join(
        _figure_div(i, f, wide=figures.is_wide(f)) for i, f in figures.comparison_figures(comparison)) + "</div>"
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
    return write_atomic(target, render(plotly_source(plotly_dir, target.parent)))


def plotly_source(plotly_dir: str | Path | None, page_dir: str | Path) -> str | None:
    """What a page in ``page_dir`` loads plotly.js from: None (embedded) without
    ``plotly_dir``, else the shared file there, written once, as a relative path."""
    missing = plotly_file(plotly_dir)
    if missing is not None:
        write_atomic(*missing)
    return plotly_reference(plotly_dir, page_dir)


def plotly_reference(plotly_dir: str | Path | None, page_dir: str | Path) -> str | None:
    """The shared plotly.js in ``plotly_dir`` as a page in ``page_dir`` refers to it; None: embedded."""
    if plotly_dir is None:
        return None
    shared = Path(plotly_dir) / PLOTLY_FILE
    return Path(os.path.relpath(shared.resolve(), Path(page_dir).resolve())).as_posix()


def plotly_file(plotly_dir: str | Path | None) -> tuple[Path, str] | None:
    """The shared plotly.js to write into ``plotly_dir`` and its text, while it is not there yet."""
    if plotly_dir is None or (Path(plotly_dir) / PLOTLY_FILE).exists():
        return None
    from plotly.offline import get_plotlyjs

    return Path(plotly_dir) / PLOTLY_FILE, get_plotlyjs()


def sweep_page(result: Sweep, plotlyjs_src: str | None = None) -> str:
    """A sweep's page: the points, the fitted growth exponents, and the log-log chart."""
    from costlens.report import figures
    from costlens.report.sweep_text import fit_lines, rows_of, title

    rows = rows_of(result)
    head = "".join(f"<th>{_e(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    fits = "".join(f"<li>{_e(line)}</li>" for line in fit_lines(result))
    sections = [_section("Points", f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>", "points"),
                _section("Growth exponents", f"<ul>{fits}</ul>", "fits"),
                _section("Chart", _figure_div("sweep", figures.sweep_chart(result)), "chart")]
    return _document(f"costlens · sweep {result.model}", f"<header><h1>costlens · {_e(title(result))}</h1></header>",
                     sections, plotlyjs_src)


def whatif_page(result: WhatIf, plotlyjs_src: str | None = None) -> str:
    """A what-if's page: every layer against every alternative, a chart per layer, the table,
    and under each what alternatives are and are not."""
    from costlens.report import whatif_figures
    from costlens.report.whatif_text import RIGHT, notes, nothing_to_rewrite, rows_of, summary, title

    figures = whatif_figures.whatif_figures(result)
    honesty = f'<p class="honesty">{_e(result.note)}</p>'
    head, *rows = rows_of(result)
    heading = "".join(f'<th class="{"num" if i in RIGHT else ""}">{_e(c)}</th>' for i, c in enumerate(head))
    body = "".join(
        f'<tr class="{"original" if row[2] == "original" else ""}">'
        + "".join(f'<td class="{"num" if i in RIGHT else "wrap" if i == len(row) - 1 else ""}">{_e(c)}</td>'
                  for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    table = (f'<div class="scroll"><table id="whatif"><thead><tr>{heading}</tr></thead><tbody>{body}</tbody></table>'
             "</div>" + "".join(f"<p>{_e(line)}</p>" for line in notes(result)[:-1]) + honesty)
    charts = '<div class="charts">' + "".join(_figure_div(i, f) for i, f in figures[1:]) + "</div>"
    sections = [
        *([_section("Every layer against every alternative", _figure_div(*figures[0], wide=True) + honesty,
                    "overview")] if figures else []),
        *([_section("Layer by layer: the original and each alternative", charts, "layers")]
          if figures else []),
        _section("The table", table if result.layers else f"<p>{_e(nothing_to_rewrite(result))}</p>", "table"),
    ]
    header = (f"<header><h1>costlens · {_e(title(result))}</h1><div class=\"meta\">{_e(summary(result))}</div>"
              f'<div class="convention">{_e(result.conventions)}</div></header>')
    return _document(f"costlens · what if · {result.model}", header, sections, plotlyjs_src)
