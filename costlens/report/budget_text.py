"""Budget verdicts as text: the terminal table of ``costlens check`` and its markdown summary."""

from __future__ import annotations

from costlens import metrics
from costlens.budget import Verdict
from costlens.report.grid import grid, md_escape


def _format(verdict: Verdict, value: float) -> str:
    metric = metrics.get(verdict.rule.left.metric)
    return metric.format(round(value) if metric.unit in ("count", "bytes") else value)


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
        rows.append((str(v.rule.line), v.rule.text, _format(v, v.measured),
                     f"{v.rule.op} {_format(v, v.limit)}", _margin(v), "pass" if v.passed else "FAIL"))
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
    lines = [f"### costlens budgets ({md_escape(path)})", "",
             "| " + " | ".join(rows[0]) + " |", "|---:|:---|---:|:---|---:|:---|"]
    for r in rows[1:]:
        cells = [md_escape(c) for c in r]
        cells[1] = f"`{cells[1]}`"
        cells[5] = "✅ pass" if r[5] == "pass" else "❌ **FAIL**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", f"**{budget_summary(verdicts)}**"]) + "\n"
