"""A Profile as text: the terminal table, markdown, CSV, and the zoo listing.

Columns follow the metric catalogue (``costlens/metrics.py``): every metric with a
per-layer value and ``column=True`` is a column, with its share of the total beside
it when the metric asks for one.
"""

from __future__ import annotations

from collections.abc import Sequence

from costlens import metrics
from costlens.records import LayerCost, Profile
from costlens.report.grid import grid, md_escape
from costlens.units import format_shape, human
from costlens.zoo.registry import NamedModel


def _columns() -> list[tuple[str, metrics.Metric | None]]:
    """(heading, metric) per numeric column; a share column has metric None after its metric."""
    found: list[tuple[str, metrics.Metric | None]] = []
    for metric in metrics.columns():
        found.append((metric.label, metric))
        if metric.share:
            found.append((f"% {metric.label}", None))
    return found


def headings() -> tuple[str, ...]:
    """The table's column headings."""
    return ("Layer", "Type", "Output", *(heading for heading, _ in _columns()))


def _numbers(values: dict[str, float], totals: dict[str, float]) -> list[str]:
    cells, previous = [], None
    for _, metric in _columns():
        if metric is None and previous is not None:
            total = totals.get(previous.key)
            value = values.get(previous.key)
            cells.append(f"{100 * value / total:.1f}%" if total and value is not None else "-")
        elif metric is not None:
            cells.append(metric.cell(values.get(metric.key)))
            previous = metric
    return cells


def _label(layer: LayerCost, indent: str) -> str:
    call = f" (call {layer.call + 1})" if layer.call else ""
    return indent * (layer.depth - 1) + layer.name + call


def _cells(layer: LayerCost, totals: dict[str, float], indent: str) -> tuple[str, ...]:
    return (_label(layer, indent), layer.type, layer.output, *_numbers(layer.values, totals))


def _total_cells(profile: Profile) -> tuple[str, ...]:
    return ("Total", profile.root.type, profile.root.output, *_numbers(profile.totals, profile.totals))


def _right() -> set[int]:
    return set(range(3, len(headings())))


def header(profile: Profile) -> str:
    """What was measured: model, input, dtype, device, versions, citation."""
    env = profile.environment
    lines = [
        f"{profile.model}  input {profile.input_text}  {profile.dtype}  "
        f"device {profile.device.get('type')}  torch {env.get('torch')}  costlens {env.get('costlens')}"
    ]
    if profile.citation:
        lines.append(profile.citation)
    return "\n".join(lines)


def totals_line(profile: Profile) -> str:
    """Every total in words: 'Params 163,696 (164K) · MACs 128,049,152 (128M) · ...', wrapped."""
    parts = []
    for metric in metrics.catalogue():
        value = profile.totals.get(metric.key)
        if value is None:
            continue
        exact, short = metric.format(value), metric.short(value)
        parts.append(f"{metric.label} {exact}" + (f" ({short})" if short != exact else ""))
    lines, line = [], ""
    for part in parts:
        if line and len(line) + len(part) + 2 > 100:
            lines.append(line)
            line = ""
        line = f"{line}  {part}" if line else part
    return "\n".join(lines + [line])


def footer(profile: Profile) -> str:
    """Totals in words, the counting convention, and what was not counted."""
    return "\n".join([totals_line(profile), f"Convention: {profile.convention}", uncounted_line(profile)])


def uncounted_line(profile: Profile) -> str:
    """'Uncounted ops: none' or each op with its count and where it ran."""
    if not profile.uncounted:
        return "Uncounted ops: none"
    parts = [f"{u.op} x{u.count} in {', '.join(p or '<root>' for p in u.paths[:3])}"
             + (" ..." if len(u.paths) > 3 else "") for u in profile.uncounted]
    return "Uncounted ops (no formula, counted as 0 FLOPs): " + "; ".join(parts)


def table(profile: Profile, depth: int = 1) -> str:
    """The per-layer terminal table, indented by depth, with totals and convention under it."""
    rows = [headings()] + [_cells(layer, profile.totals, "  ") for layer in profile.blocks(depth)]
    rows.append(_total_cells(profile))
    return "\n".join([header(profile), ""] + grid(rows, _right(), footer_rows=1) + ["", footer(profile)]) + "\n"


def markdown(profile: Profile, depth: int = 1) -> str:
    """A compact pipe table fit for a pull-request comment or a README."""
    right = _right()
    lines = [
        f"**{md_escape(profile.model)}** — input `{profile.input_text}`, {profile.dtype}",
        "",
        "| " + " | ".join(headings()) + " |",
        "|" + "|".join("---:" if i in right else ":---" for i in range(len(headings()))) + "|",
    ]
    for layer in profile.blocks(depth):
        cells = [md_escape(c) for c in _cells(layer, profile.totals, "&nbsp;&nbsp;")]
        cells[0] = cells[0].replace(md_escape(layer.name), f"`{md_escape(layer.name)}`", 1)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| " + " | ".join(f"**{md_escape(c)}**" for c in _total_cells(profile)) + " |")
    lines += ["", md_escape(totals_line(profile)).replace("\n", " "), "",
              f"_{profile.convention}_", "", md_escape(uncounted_line(profile))]
    return "\n".join(lines) + "\n"


def csv(profile: Profile) -> str:
    """One row per module call, every depth, for spreadsheets and pandas."""
    return str(profile.to_frame().to_csv(index=False))


def zoo_table(rows: Sequence[tuple[NamedModel, Profile]]) -> str:
    """``costlens list``: name, default input, params, MACs and citation of each model."""
    cells: list[tuple[str, ...]] = [("Model", "Input", "Params", "MACs", "Citation")]
    cells += [
        (e.name, format_shape(e.input or ()), human(p.totals["params"]), human(p.totals["macs"]), e.cite or "")
        for e, p in rows
    ]
    lines = grid(cells, {2, 3})
    lines.append("")
    lines.append("Any nn.Module works too: costlens profile package.module:factory --input 1x3x224x224")
    return "\n".join(lines) + "\n"
