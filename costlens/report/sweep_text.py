"""A sweep as text (terminal table, markdown, CSV) and as a page with a log-log chart."""

from __future__ import annotations

import html as escape

from costlens import metrics
from costlens.report.grid import grid, md_escape
from costlens.sweep import Sweep


def _rows(result: Sweep) -> list[tuple[str, ...]]:
    keys = result.metrics()
    rows = [(result.variable.split(" ")[0].capitalize() if result.variable != "pixels (H·W)" else "Input",
             *(metrics.get(k).label for k in keys))]
    rows += [(p.label, *(metrics.get(k).short(p.totals[k]) for k in keys)) for p in result.points]
    return rows


def fit_lines(result: Sweep) -> list[str]:
    """'MACs ∝ pixels (H·W)^1.000 (R² 1.0000)' per metric."""
    lines = []
    for key, found in result.fits().items():
        label = metrics.get(key).label
        lines.append(f"{label} ∝ {result.variable}^{found.exponent:.3f} (R² {found.r2:.4f})" if found
                     else f"{label}: no fit (fewer than two positive points)")
    return lines


def _title(result: Sweep) -> str:
    cut = " (interrupted: the points measured before Ctrl-C)" if result.interrupted else ""
    return f"{result.model}: cost against {result.variable}, {len(result.points)} points{cut}"


def table(result: Sweep) -> str:
    """The terminal table and, under it, the fitted growth exponents."""
    rows = _rows(result)
    return "\n".join([_title(result), "", *grid(rows, set(range(1, len(rows[0])))), "", *fit_lines(result)]) + "\n"


def markdown(result: Sweep) -> str:
    rows = _rows(result)
    lines = [f"**{md_escape(_title(result))}**", "", "| " + " | ".join(rows[0]) + " |",
             "|:---|" + "---:|" * (len(rows[0]) - 1)]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows[1:]]
    return "\n".join([*lines, "", *(f"- {md_escape(line)}" for line in fit_lines(result))]) + "\n"


def csv(result: Sweep) -> str:
    keys = result.metrics()
    lines = [",".join(["label", "x", *keys])]
    lines += [",".join([f'"{p.label}"', repr(p.x), *(repr(p.totals[k]) for k in keys)]) for p in result.points]
    return "\n".join(lines) + "\n"


def page(result: Sweep, plotlyjs_src: str | None = None) -> str:
    """The sweep's page: the table, the fits, and each metric against the variable on log-log axes."""
    import plotly.graph_objects as go

    from costlens.report.figures import LAYOUT, PALETTE
    from costlens.report.html import _document, _figure_div, _section

    figure = go.Figure(layout={**LAYOUT, "title": f"Cost against {result.variable} (log-log)",
                               "xaxis": {"type": "log", "title": result.variable,  # a tick at every point
                                         "tickvals": [p.x for p in result.points],
                                         "ticktext": [f"{p.x:g}" for p in result.points]},
                               "yaxis": {"type": "log", "title": "value / value at the first point"}})
    for i, key in enumerate(result.metrics()):
        first = result.points[0].totals[key] or 1
        figure.add_trace(go.Scatter(x=[p.x for p in result.points], y=[p.totals[key] / first for p in result.points],
                                    mode="lines+markers", name=metrics.get(key).label,
                                    line={"color": PALETTE[i % len(PALETTE)]}))
    rows = _rows(result)
    head = "".join(f"<th>{escape.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{escape.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    fits = "".join(f"<li>{escape.escape(line)}</li>" for line in fit_lines(result))
    sections = [_section("Points", f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>", "points"),
                _section("Growth exponents", f"<ul>{fits}</ul>", "fits"),
                _section("Chart", _figure_div("sweep", figure), "chart")]
    header = f"<header><h1>costlens · {escape.escape(_title(result))}</h1></header>"
    return _document(f"costlens · sweep {result.model}", header, sections, plotlyjs_src)
