"""Text tables shared by every text report: aligned columns, pipe tables, escaping, ratios.

Every cell passes through ``costlens/sanitize.py``: a module named with a newline, an
ESC sequence or a bidi override cannot break a table or reach the terminal raw.
"""

from __future__ import annotations

from costlens.sanitize import markdown_cell, terminal_text


def grid(rows: list[tuple[str, ...]], right: set[int], footer_rows: int = 0) -> list[str]:
    """Aligned columns: a header row, a rule, the body, and a rule above the last
    ``footer_rows`` rows; columns in ``right`` are right-aligned."""
    rows = [tuple(terminal_text(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(r) for r in rows[1:]]
    if footer_rows and len(body) > footer_rows:  # no rule under a rule when only the footer is left
        body.insert(len(body) - footer_rows, rule)
    return [line(rows[0]), rule] + body


def md_escape(text: str) -> str:
    """Text safe inside a markdown table cell: no control characters, nothing that formats."""
    return markdown_cell(text)


def md_table(rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    """A pipe table: the header, the alignment row, the body; every cell escaped."""
    head, *body = rows
    align = "|".join("---:" if i in right else ":---" for i in range(len(head)))
    lines = ["| " + " | ".join(md_escape(c) for c in head) + " |", f"|{align}|"]
    lines += ["| " + " | ".join(md_escape(c.strip()) for c in r) + " |" for r in body]
    return lines


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
