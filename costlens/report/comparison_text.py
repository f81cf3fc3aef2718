"""A Comparison as text: totals with ratios, matched blocks, markdown and CSV."""

from __future__ import annotations

from costlens import metrics
from costlens.comparison import Comparison, ratio_row
from costlens.report.grid import grid, md_escape, md_table, ratio_words

BLOCK_METRICS = ("macs", "params")  # the per-block tables of the terminal report
TIMED_BLOCK_METRICS = ("time_ms",)  # added when every model was timed
NOT_COMPARED = "not compared (noise)"  # the ratio cell of a metric the catalogue says not to compare


def totals_rows(comparison: Comparison) -> list[tuple[str, ...]]:
    """Header and one row per metric: each model's total, then its ratio to the first."""
    names = comparison.names
    head = ("Metric", names[0]) + tuple(x for n in names[1:] for x in (n, "vs " + names[0]))
    rows: list[tuple[str, ...]] = [head]
    for metric in comparison.metrics:
        values, ratios = comparison.total(metric.key), comparison.ratios(metric.key)
        cells = [metric.label, metric.format(values[0])]
        for value, ratio in zip(values[1:], ratios[1:]):
            cells += [metric.format(value), ratio_words(ratio) if metric.compare else NOT_COMPARED]
        rows.append(tuple(cells))
    return rows


def block_rows(comparison: Comparison, key: str = "macs") -> list[tuple[str, ...]]:
    """Header and one row per aligned block where some model has ``key``, with ratios."""
    metric = metrics.get(key)
    names = comparison.names
    head = ("Block", f"{names[0]} {metric.label}") + tuple(
        x for n in names[1:] for x in (f"{n} {metric.label}", "vs " + names[0]))
    rows: list[tuple[str, ...]] = [head]
    for block in comparison.blocks_with(key):
        values = list(block.values[key])
        ratios = ratio_row(values)
        cells = [block.label, metric.format(values[0])]
        for value, ratio in zip(values[1:], ratios[1:]):
            cells += [metric.format(value), ratio_words(ratio)]
        rows.append(tuple(cells))
    return rows


def block_metrics(comparison: Comparison) -> tuple[str, ...]:
    """The metrics compared block by block: MACs and params, and time when every model was timed."""
    timed = all("time_ms" in p.totals for p in comparison.profiles)
    return BLOCK_METRICS + (TIMED_BLOCK_METRICS if timed else ())


def comparison_table(comparison: Comparison) -> str:
    """Totals side by side, then MACs and params block by block."""
    right = set(range(1, 2 * len(comparison.names)))
    lines = ["Totals (ratios to " + comparison.names[0] + ")", ""] + grid(totals_rows(comparison), right)
    for key in block_metrics(comparison):
        lines += ["", f"{metrics.get(key).label} by matched block", ""] + grid(block_rows(comparison, key), right)
    lines += ["", f"Convention: {comparison.profiles[0].convention}"]
    for profile in comparison.profiles:
        if profile.uncounted:
            from costlens.report.profile_text import uncounted_line

            lines.append(f"{profile.model}: {uncounted_line(profile)}")
    return "\n".join(lines) + "\n"


def comparison_markdown(comparison: Comparison) -> str:
    """Totals and MACs by block as pipe tables for a pull-request comment."""
    right = set(range(1, 2 * len(comparison.names)))
    lines = [f"**{' vs '.join(md_escape(n) for n in comparison.names)}**", ""]
    lines += md_table(totals_rows(comparison), right) + ["", "MACs by matched block:", ""]
    lines += md_table(block_rows(comparison, "macs"), right)
    lines += ["", f"_{comparison.profiles[0].convention}_"]
    return "\n".join(lines) + "\n"


def comparison_csv(comparison: Comparison) -> str:
    """One row per block and model: tidy data for pandas."""
    return str(comparison.to_frame().to_csv(index=False))
