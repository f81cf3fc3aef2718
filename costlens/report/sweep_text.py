"""A sweep as text: terminal table, markdown, CSV (its page is in costlens/report/html.py)."""

from __future__ import annotations

from costlens import metrics
from costlens.report.grid import grid, md_escape
from costlens.sweep import Sweep


def rows_of(result: Sweep) -> list[tuple[str, ...]]:
    keys = result.metrics()
    rows = [("Input" if result.swept == "input" or result.variable == "pixels (H·W)" else result.variable.capitalize(),
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


def title(result: Sweep) -> str:
    cut = " (interrupted: the points measured before Ctrl-C)" if result.interrupted else ""
    return f"{result.model}: cost against {result.variable}, {len(result.points)} points{cut}"


def table(result: Sweep) -> str:
    """The terminal table and, under it, the fitted growth exponents."""
    rows = rows_of(result)
    return "\n".join([title(result), "", *grid(rows, set(range(1, len(rows[0])))), "", *fit_lines(result)]) + "\n"


def markdown(result: Sweep) -> str:
    rows = rows_of(result)
    lines = [f"**{md_escape(title(result))}**", "", "| " + " | ".join(rows[0]) + " |",
             "|:---|" + "---:|" * (len(rows[0]) - 1)]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows[1:]]
    return "\n".join([*lines, "", *(f"- {md_escape(line)}" for line in fit_lines(result))]) + "\n"


def csv(result: Sweep) -> str:
    keys = result.metrics()
    lines = [",".join(["label", "x", *keys])]
    lines += [",".join([f'"{p.label}"', repr(p.x), *(repr(p.totals[k]) for k in keys)]) for p in result.points]
    return "\n".join(lines) + "\n"
