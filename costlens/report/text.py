"""Terminal table, markdown and CSV renderings of a Profile."""

from __future__ import annotations

from dataclasses import dataclass

from costlens.profile import LayerCost, Profile
from costlens.zoo.registry import ZooEntry
from costlens.units import format_shape, grouped, human, human_bytes

COLUMNS = ("Layer", "Type", "Output", "Params", "MACs", "% MACs", "FLOPs", "Activations", "Weights")
RIGHT = {"Params", "MACs", "% MACs", "FLOPs", "Activations", "Weights"}


@dataclass(frozen=True)
class Row:
    """One rendered line of the per-layer table."""

    cells: tuple[str, ...]


def visible_layers(profile: Profile, depth: int) -> list[LayerCost]:
    """Records from depth 1 down to ``depth`` (the root is the totals row)."""
    return [layer for layer in profile.layers if 1 <= layer.depth <= depth]


def _label(layer: LayerCost, indent: str) -> str:
    call = f" (call {layer.call + 1})" if layer.call else ""
    return indent * (layer.depth - 1) + layer.name + call


def _share(macs: int, total: int) -> str:
    return f"{100 * macs / total:.1f}%" if total else "-"


def _cells(layer: LayerCost, total_macs: int, indent: str) -> tuple[str, ...]:
    output = " ".join(format_shape(s) for s in layer.output_shapes) or "-"
    return (
        _label(layer, indent), layer.type, output, grouped(layer.params), grouped(layer.macs),
        _share(layer.macs, total_macs), human(layer.flops), human_bytes(layer.activation_bytes),
        human_bytes(layer.weight_bytes),
    )


def _total_cells(profile: Profile) -> tuple[str, ...]:
    t = profile.totals
    output = " ".join(format_shape(s) for s in profile.root.output_shapes)
    return (
        "Total", profile.root.type, output, grouped(t["params"]), grouped(t["macs"]),
        "100.0%" if t["macs"] else "-", human(t["flops"]), human_bytes(t["activation_bytes"]),
        human_bytes(t["weight_bytes"]),
    )


def header(profile: Profile) -> str:
    """What was measured: model, input, dtype, device, versions, citation."""
    env = profile.environment
    lines = [
        f"{profile.model}  input {format_shape(profile.input_shape)}  {profile.dtype}  "
        f"device {profile.device.get('type')}  torch {env.get('torch')}  costlens {env.get('costlens')}"
    ]
    if profile.citation:
        lines.append(profile.citation)
    return "\n".join(lines)


def footer(profile: Profile) -> str:
    """Totals in words, the counting convention, and what was not counted."""
    t = profile.totals
    frozen = t["params"] - t["trainable_params"]
    lines = [
        f"params {grouped(t['params'])}"
        + (f" ({grouped(frozen)} frozen)" if frozen else "")
        + f"  buffers {grouped(t['buffers'])}  MACs {grouped(t['macs'])} ({human(t['macs'])})"
        + f"  FLOPs {grouped(t['flops'])} ({human(t['flops'])})",
        f"activations {human_bytes(t['activation_bytes'])}  weights {human_bytes(t['weight_bytes'])}"
        f"  bytes moved {human_bytes(t['bytes'])}",
        f"Convention: {profile.convention}",
        uncounted_line(profile),
    ]
    return "\n".join(lines)


def uncounted_line(profile: Profile) -> str:
    """'Uncounted ops: none' or each op with its count and where it ran."""
    if not profile.uncounted:
        return "Uncounted ops: none"
    parts = [f"{u.op} x{u.count} in {', '.join(p or '<root>' for p in u.paths[:3])}"
             + (" ..." if len(u.paths) > 3 else "") for u in profile.uncounted]
    return "Uncounted ops (no formula, counted as 0 FLOPs): " + "; ".join(parts)


def table(profile: Profile, depth: int = 1) -> str:
    """The per-layer terminal table, indented by depth, with totals and convention under it."""
    total = profile.totals["macs"]
    rows = [COLUMNS] + [_cells(layer, total, "  ") for layer in visible_layers(profile, depth)]
    rows.append(_total_cells(profile))
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if COLUMNS[i] in RIGHT else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(rows[0]), rule] + [line(r) for r in rows[1:-1]] + [rule, line(rows[-1])]
    return "\n".join([header(profile), ""] + body + ["", footer(profile)]) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def markdown(profile: Profile, depth: int = 1) -> str:
    """A compact pipe table fit for a pull-request comment or a README."""
    total = profile.totals["macs"]
    align = ["---:" if c in RIGHT else ":---" for c in COLUMNS]
    lines = [
        f"**{_md_escape(profile.model)}** — input `{format_shape(profile.input_shape)}`, {profile.dtype}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(align) + "|",
    ]
    for layer in visible_layers(profile, depth):
        cells = list(_cells(layer, total, "&nbsp;&nbsp;"))
        cells[0] = cells[0].replace(layer.name, f"`{_md_escape(layer.name)}`", 1)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| " + " | ".join(f"**{c}**" for c in _total_cells(profile)) + " |")
    lines += ["", f"_{profile.convention}_", "", _md_escape(uncounted_line(profile))]
    return "\n".join(lines) + "\n"


def csv(profile: Profile) -> str:
    """One row per module call, every depth, for spreadsheets and pandas."""
    return str(profile.to_frame().to_csv(index=False))


def zoo_table(rows: list[tuple[ZooEntry, Profile]]) -> str:
    """``costlens list``: name, default input, params, MACs and citation of each model."""
    cells = [("Model", "Input", "Params", "MACs", "Citation")]
    cells += [
        (e.name, format_shape(e.input), human(p.totals["params"]), human(p.totals["macs"]), e.cite)
        for e, p in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(4)]
    lines = []
    for r in cells:
        lines.append("  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]),
                                r[2].rjust(widths[2]), r[3].rjust(widths[3]), r[4]]))
    lines.append("")
    lines.append("Any nn.Module works too: costlens profile package.module:factory --input 1x3x224x224")
    return "\n".join(lines) + "\n"
