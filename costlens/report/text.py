"""Terminal table, markdown and CSV renderings of a Profile."""

from __future__ import annotations

from dataclasses import dataclass

from costlens.budget import Verdict
from costlens.compare import METRICS, Comparison, ratio_row
from costlens.profile import LayerCost, Profile
from costlens.units import format_shape, grouped, human, human_bytes
from costlens.zoo.registry import ZooEntry

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


def grid(rows: list[tuple[str, ...]], right: set[int], footer_rows: int = 0) -> list[str]:
    """Aligned columns: a header row, a rule, the body, and a rule above the last
    ``footer_rows`` rows; columns in ``right`` are right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(r) for r in rows[1:]]
    if footer_rows:
        body.insert(len(body) - footer_rows, rule)
    return [line(rows[0]), rule] + body


def table(profile: Profile, depth: int = 1) -> str:
    """The per-layer terminal table, indented by depth, with totals and convention under it."""
    total = profile.totals["macs"]
    rows = [COLUMNS] + [_cells(layer, total, "  ") for layer in visible_layers(profile, depth)]
    rows.append(_total_cells(profile))
    right = {i for i, c in enumerate(COLUMNS) if c in RIGHT}
    return "\n".join([header(profile), ""] + grid(rows, right, footer_rows=1) + ["", footer(profile)]) + "\n"


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
    cells: list[tuple[str, ...]] = [("Model", "Input", "Params", "MACs", "Citation")]
    cells += [
        (e.name, format_shape(e.input), human(p.totals["params"]), human(p.totals["macs"]), e.cite)
        for e, p in rows
    ]
    lines = grid(cells, {2, 3})
    lines.append("")
    lines.append("Any nn.Module works too: costlens profile package.module:factory --input 1x3x224x224")
    return "\n".join(lines) + "\n"


# --- comparisons -----------------------------------------------------------------

METRIC_LABELS = {
    "params": "Params", "macs": "MACs", "flops": "FLOPs", "activation_bytes": "Activations",
    "weight_bytes": "Weights", "latency_ms": "Latency (ms)",
}


def ratio_words(ratio: float | None) -> str:
    """0.1033 -> '0.10x (9.7x less)'; 1.27 -> '1.27x (1.3x more)'; None -> '-'."""
    if ratio is None:
        return "-"
    if abs(ratio - 1) < 5e-4:
        return "1.00x (same)"
    if ratio == 0:
        return "0x"
    factor = 1 / ratio if ratio < 1 else ratio
    digits = 1 if factor >= 2 else (2 if factor >= 1.1 else 3)  # near 1, show the small difference
    return f"{ratio:.{max(digits, 2)}f}x ({factor:.{digits}f}x {'less' if ratio < 1 else 'more'})"


def metric_value(metric: str, value: int | float | None) -> str:
    """A total as people read it: bytes in binary units, counts with separators, '-' if absent."""
    if value is None:
        return "-"
    if metric.endswith("_bytes"):
        return human_bytes(value)
    if metric == "latency_ms":
        return f"{value:.3f} ms"
    return grouped(int(value))


def _compare_metrics(comparison: Comparison) -> list[str]:
    return list(METRICS) + (["latency_ms"] if comparison.has_timing else [])


def totals_rows(comparison: Comparison) -> list[tuple[str, ...]]:
    """Header and one row per metric: each model's total, then its ratio to the first."""
    names = comparison.names
    head = ("Metric", names[0]) + tuple(x for n in names[1:] for x in (n, "vs " + names[0]))
    rows: list[tuple[str, ...]] = [head]
    for metric in _compare_metrics(comparison):
        values, ratios = comparison.total(metric), comparison.ratios(metric)
        cells = [METRIC_LABELS[metric], metric_value(metric, values[0])]
        for value, ratio in zip(values[1:], ratios[1:]):
            cells += [metric_value(metric, value), ratio_words(ratio)]
        rows.append(tuple(cells))
    return rows


def block_rows(comparison: Comparison, metric: str = "macs") -> list[tuple[str, ...]]:
    """Header and one row per aligned block where some model has ``metric``, with ratios."""
    names = comparison.names
    label = METRIC_LABELS[metric]
    head = ("Block", f"{names[0]} {label}") + tuple(
        x for n in names[1:] for x in (f"{n} {label}", "vs " + names[0]))
    rows: list[tuple[str, ...]] = [head]
    for block in comparison.blocks:
        values = list(block.values[metric])
        if not any(values):  # a ReLU or pool has no MACs and no params anywhere: no row
            continue
        ratios = ratio_row(values)
        cells = ["  " * (block.depth - 1) + block.label, metric_value(metric, values[0])]
        for value, ratio in zip(values[1:], ratios[1:]):
            cells += [metric_value(metric, value), ratio_words(ratio)]
        rows.append(tuple(cells))
    return rows


def comparison_table(comparison: Comparison) -> str:
    """Totals side by side, then MACs and params block by block."""
    right = set(range(1, 2 * len(comparison.names)))
    lines = ["Totals (ratios to " + comparison.names[0] + ")", ""] + grid(totals_rows(comparison), right)
    for metric in ("macs", "params"):
        lines += ["", f"{METRIC_LABELS[metric]} by matched block", ""] + grid(block_rows(comparison, metric), right)
    lines += ["", f"Convention: {comparison.profiles[0].convention}"]
    for profile in comparison.profiles:
        if profile.uncounted:
            lines.append(f"{profile.model}: {uncounted_line(profile)}")
    return "\n".join(lines) + "\n"


def _md_table(rows: list[tuple[str, ...]]) -> list[str]:
    head, *body = rows
    lines = ["| " + " | ".join(_md_escape(c) for c in head) + " |",
             "|:---|" + "|".join("---:" for _ in head[1:]) + "|"]
    lines += ["| " + " | ".join(_md_escape(c.strip()) if i == 0 else c for i, c in enumerate(r)) + " |" for r in body]
    return lines


def comparison_markdown(comparison: Comparison) -> str:
    """Totals and MACs by block as pipe tables for a pull-request comment."""
    lines = [f"**{' vs '.join(_md_escape(n) for n in comparison.names)}**", ""]
    lines += _md_table(totals_rows(comparison)) + ["", "MACs by matched block:", ""]
    lines += _md_table(block_rows(comparison, "macs"))
    lines += ["", f"_{comparison.profiles[0].convention}_"]
    return "\n".join(lines) + "\n"


def comparison_csv(comparison: Comparison) -> str:
    """One row per block and model: tidy data for pandas."""
    import pandas as pd

    rows = []
    for block in comparison.blocks:
        for i, name in enumerate(comparison.names):
            if block.types[i] is None:
                continue
            row: dict[str, object] = {"block": block.path, "call": block.call, "depth": block.depth,
                                      "model": name, "type": block.types[i]}
            row.update({m: block.values[m][i] for m in METRICS})
            rows.append(row)
    return str(pd.DataFrame(rows).to_csv(index=False))


# --- budgets ---------------------------------------------------------------------


def _margin(verdict: Verdict) -> str:
    margin = verdict.margin
    if margin is None:
        return "-"
    if verdict.rule.op == "==":
        return "exact" if verdict.passed else f"off by {abs(margin) * 100:.2f}%"
    return f"{margin * 100:+.1f}%"


def budget_rows(verdicts: list[Verdict]) -> list[tuple[str, ...]]:
    """Header and one row per rule: rule, measured, limit, margin, verdict."""
    rows: list[tuple[str, ...]] = [("Line", "Rule", "Measured", "Limit", "Margin", "Verdict")]
    for v in verdicts:
        rows.append((str(v.rule.line), v.rule.text, grouped(round(v.measured)),
                     f"{v.rule.op} {grouped(round(v.limit))}", _margin(v), "pass" if v.passed else "FAIL"))
    return rows


def budget_summary(verdicts: list[Verdict]) -> str:
    """'12 rules: 12 passed, 0 failed'."""
    failed = sum(not v.passed for v in verdicts)
    return f"{len(verdicts)} rules: {len(verdicts) - failed} passed, {failed} failed"


def budget_table(verdicts: list[Verdict], path: str) -> str:
    """The terminal table of ``costlens check``, with its summary line."""
    lines = [f"Budgets in {path}", ""] + grid(budget_rows(verdicts), {0, 2, 4})
    return "\n".join(lines + ["", budget_summary(verdicts)]) + "\n"


def budget_markdown(verdicts: list[Verdict], path: str) -> str:
    """A markdown summary (for GITHUB_STEP_SUMMARY)."""
    rows = budget_rows(verdicts)
    lines = [f"### costlens budgets ({_md_escape(path)})", "",
             "| " + " | ".join(rows[0]) + " |", "|---:|:---|---:|:---|---:|:---|"]
    for r in rows[1:]:
        cells = list(r)
        cells[1] = f"`{cells[1]}`"
        cells[5] = "✅ pass" if cells[5] == "pass" else "❌ **FAIL**"
        lines.append("| " + " | ".join(_md_escape(c) if i in (3,) else c for i, c in enumerate(cells)) + " |")
    return "\n".join(lines + ["", f"**{budget_summary(verdicts)}**"]) + "\n"
