"""A Profile as text: the terminal table, markdown, CSV, and the zoo listing.

Columns follow the metric catalogue (``costlens/metrics.py``): every metric with a
per-layer value and ``column=True`` is a column, with its share of the total beside
it when the metric asks for one.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from costlens import metrics
from costlens.records import LayerCost, Profile
from costlens.report.grid import grid, md_escape
from costlens.units import format_shape, human
from costlens.zoo.registry import NamedModel

WIDTH = 100  # columns of the terminal the text lines are wrapped for


def _columns(profile: Profile) -> list[tuple[str, metrics.Metric | None]]:
    """(heading, metric) per numeric column the profile has values for; a share column has
    metric None after its metric."""
    found: list[tuple[str, metrics.Metric | None]] = []
    for metric in metrics.columns():
        if metric.key not in profile.totals:
            continue  # a measured metric of a profile that was not timed
        found.append((metric.label, metric))
        if metric.share:
            found.append((f"% {metric.label}", None))
    return found


def headings(profile: Profile) -> tuple[str, ...]:
    """The table's column headings."""
    bound = ("Bound",) if _timed(profile) else ()
    return ("Layer", "Type", "Output", *(heading for heading, _ in _columns(profile)), *bound)


def _timed(profile: Profile) -> bool:
    return bool(profile.timing and profile.timing.get("device"))


def _bound(profile: Profile, layer: LayerCost | None) -> tuple[str, ...]:
    """The roofline's verdict for a layer that was timed: memory- or compute-bound."""
    if not _timed(profile):
        return ()
    if layer is None or layer.values.get("time_ms", layer.values.get("traced_time_ms")) is None \
            or not layer.values.get("bytes"):
        return ("-",)
    from costlens.timing.roofline import bound, peak_of

    device = profile.timing["device"] if profile.timing else {}
    return (bound(layer.intensity, peak_of(device, profile.dtype), device["bandwidth"]),)


def _numbers(profile: Profile, values: dict[str, float], totals: dict[str, float]) -> list[str]:
    cells, previous = [], None
    for _, metric in _columns(profile):
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


def _cells(profile: Profile, layer: LayerCost, indent: str) -> tuple[str, ...]:
    return (_label(layer, indent), layer.type, layer.output, *_numbers(profile, layer.values, profile.totals),
            *_bound(profile, layer))


def _total_cells(profile: Profile) -> tuple[str, ...]:
    return ("Total", profile.root.type, profile.root.output, *_numbers(profile, profile.totals, profile.totals),
            *_bound(profile, None))


def _right(profile: Profile) -> set[int]:
    return set(range(3, len(headings(profile)) - (1 if _timed(profile) else 0)))


def header(profile: Profile) -> str:
    """What was measured: model, input, dtype, device, versions, citation."""
    from costlens.report.timing_text import timed_where

    env = profile.environment
    timed = timed_where(profile)  # a timed profile says where it was counted and where and how it was timed
    where = timed or f"device {profile.device.get('type')}"
    first = (f"{profile.model}  input {profile.input_text}  {profile.dtype}  {where}  torch {env.get('torch')}  "
             f"costlens {env.get('costlens')}")
    lines = textwrap.wrap(first, WIDTH) if timed else [first]
    if profile.citation:
        lines += textwrap.wrap(profile.citation, WIDTH)
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
        if line and len(line) + len(part) + 2 > WIDTH:
            lines.append(line)
            line = ""
        line = f"{line}  {part}" if line else part
    return "\n".join(lines + [line])


def measured_summary(profile: Profile) -> str:
    """How the profile was timed (``timing_text.timing_summary``); '' when nothing was measured: not
    timed, or a training step whose timing Ctrl-C cut before its first round (its counts stand)."""
    from costlens.report.timing_text import timing_summary

    timing = profile.timing
    if not timing or ("step" in timing and not timing["step"]):
        return ""
    return timing_summary(profile)


def footer(profile: Profile) -> str:
    """Totals in words, how time was measured, the counting convention, and what was not counted."""
    timing = measured_summary(profile)
    convention = textwrap.wrap(f"Convention: {profile.convention}", WIDTH)
    reads = value_reads_line(profile)
    return "\n".join([totals_line(profile)] + ([timing.rstrip("\n")] if timing else [])
                     + [*convention, uncounted_line(profile)] + ([reads] if reads else []))


def value_reads_line(profile: Profile) -> str:
    """The tensor values the model read on meta: each assumed one (where, op, the value used), and
    how many were known exactly; '' when it read none."""
    if not profile.value_reads:
        return ""
    known = len(profile.value_reads) - len(profile.assumed)
    exact = f"{known} value read{'s' if known != 1 else ''} answered exactly (costlens made those inputs)"
    if not profile.assumed:
        return f"Values the model read on meta: {exact}."
    assumed = "; ".join(f"{r.where} {r.op} took {r.value}" for r in profile.assumed[:5])
    more = f" and {len(profile.assumed) - 5} more" if len(profile.assumed) > 5 else ""
    return (f"Values assumed on meta (the count follows the branch they chose; --strict refuses, --device cpu "
            f"reads them): {assumed}{more}" + (f"; {exact}" if known else ""))


def uncounted_line(profile: Profile) -> str:
    """'Uncounted ops: none' or each op with its count and where it ran."""
    if not profile.uncounted:
        return "Uncounted ops: none"
    parts = [f"{u.op} x{u.count} in {', '.join(p or '<root>' for p in u.paths[:3])}"
             + (" ..." if len(u.paths) > 3 else "") for u in profile.uncounted]
    return "Uncounted ops (no formula, counted as 0 FLOPs): " + "; ".join(parts)


@dataclass(frozen=True)
class Selection:
    """The rows a table shows, and how they were chosen (said under the table)."""

    depth: int
    automatic: bool
    rows: list[LayerCost]
    left_out: list[LayerCost]  # calls without MACs or params, left out when the depth was chosen automatically

    def note(self) -> str:
        """How deep the table goes and what it leaves out, in lines under 100 columns ('' when
        the user chose the depth: the table then shows every call down to it)."""
        if not self.automatic:
            return ""
        lines = [f"Depth {self.depth}, chosen automatically: the first level where 3 blocks carry MACs "
                 "(--depth N sets it)."]
        if self.left_out:
            types = ", ".join(dict.fromkeys(layer.type for layer in self.left_out))
            lines.append(f"Left out: {len(self.left_out)} calls without MACs or params ({types}).")
        return "\n".join(lines)


def _shows_something(layer: LayerCost) -> bool:
    return any(layer.values.get(m.key) for m in metrics.columns())


def select(profile: Profile, depth: int | None = None) -> Selection:
    """The rows down to ``depth``, or, when None, down to ``Profile.useful_depth`` without
    the calls that carry no MACs and no params (ReLU, pooling, dropout). A parent's own
    ops ("(self)") appear when they carry a value the table shows."""
    automatic = depth is None
    chosen = profile.useful_depth() if depth is None else depth
    rows: list[LayerCost] = []
    left_out: list[LayerCost] = []
    for layer in profile.rows(chosen):
        own = layer.name == "(self)"
        if own and not _shows_something(layer):
            continue
        if automatic and not own and layer.leaf and not (layer.values.get("macs") or layer.values.get("params")):
            left_out.append(layer)
            continue
        rows.append(layer)
    return Selection(chosen, automatic, rows, left_out)


def table(profile: Profile, depth: int | None = None) -> str:
    """The per-layer terminal table, indented by depth, with totals and convention under it
    (``depth`` None: chosen as ``select`` says, and said under the table)."""
    chosen = select(profile, depth)
    rows = [headings(profile)] + [_cells(profile, layer, "  ") for layer in chosen.rows]
    rows.append(_total_cells(profile))
    note = [chosen.note()] if chosen.note() else []
    return "\n".join([header(profile), ""] + grid(rows, _right(profile), footer_rows=1) + [""] + note
                     + [footer(profile)]) + "\n"


def markdown(profile: Profile, depth: int | None = None) -> str:
    """A compact pipe table fit for a pull-request comment or a README."""
    right, heads = _right(profile), headings(profile)
    chosen = select(profile, depth)
    lines = [
        f"**{md_escape(profile.model)}** — input `{profile.input_text}`, {profile.dtype}",
        "",
        "| " + " | ".join(heads) + " |",
        "|" + "|".join("---:" if i in right else ":---" for i in range(len(heads))) + "|",
    ]
    for layer in chosen.rows:
        cells = [md_escape(c) for c in _cells(profile, layer, "")]
        cells[0] = "&nbsp;&nbsp;" * (layer.depth - 1) + cells[0]  # indent after escaping: &nbsp; stays markup
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| " + " | ".join(f"**{md_escape(c)}**" for c in _total_cells(profile)) + " |")
    lines += ["", md_escape(totals_line(profile).replace("\n", "  ")), ""]
    if chosen.note():
        lines += [md_escape(chosen.note().replace("\n", " ")), ""]
    lines += [f"_{profile.convention}_", "", md_escape(uncounted_line(profile))]
    if profile.value_reads:
        lines += ["", md_escape(value_reads_line(profile))]
    return "\n".join(lines) + "\n"


def csv(profile: Profile, depth: int | None = None) -> str:
    """One row per module call, for spreadsheets and pandas: every call, or with
    ``depth`` the model's row and the calls down to that depth."""
    frame = profile.to_frame()
    if depth is not None:
        frame = frame[frame["depth"] <= depth]
    return str(frame.to_csv(index=False))


def zoo_table(rows: Sequence[tuple[NamedModel, Profile]]) -> str:
    """``costlens list``: name, default input, params, MACs and citation of each model."""
    cells: list[tuple[str, ...]] = [("Model", "Input", "Params", "MACs", "Source")]
    cells += [
        (e.name, format_shape(e.input or ()), human(p.totals["params"]), human(p.totals["macs"]), e.short_cite or "")
        for e, p in rows
    ]
    lines = grid(cells, {2, 3})
    lines.append("")
    lines.append("The full citation heads 'costlens profile NAME'.")
    lines.append("Any nn.Module works too: costlens profile package.module:factory --input 1x3x224x224")
    return "\n".join(lines) + "\n"
