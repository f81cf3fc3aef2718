"""The alternatives of a model's convolutions as text: terminal table, markdown, CSV
(its charts are in ``whatif_figures.py``, its page in ``html.py``)."""

from __future__ import annotations

from costlens import metrics
from costlens.alternatives import LayerWhatIf, Priced, WhatIf
from costlens.report.grid import grid, md_escape, md_table, ratio_words
from costlens.units import format_shape, grouped

HEADINGS = ("Layer", "Share", "Alternative", "Parts", "Params", "MACs", "MACs vs layer", "Model saves", "Note")
RIGHT = {1, 4, 5, 6, 7}
SAVES = ("Model saves: the share of the whole model's MACs that this one alternative, applied alone, "
         "takes away (negative: the model costs more). Share: the layer's share of the model's MACs.")


def title(result: WhatIf) -> str:
    return f"{result.model}: what the standard alternatives of its costliest convolutions would cost"


def summary(result: WhatIf) -> str:
    """'input 1x3x224x224 float32 · 6,998,552 params · 1,582,671,872 MACs · 30 of its 57 convolutions: ...'."""
    params, macs = metrics.get("params"), metrics.get("macs")
    return (f"input {result.input_text} {result.dtype} · {params.format(result.model_params)} params · "
            f"{macs.format(result.model_macs)} MACs · {len(result.layers)} of its {result.convolutions} "
            f"convolutions: {result.chosen}, costliest first")


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def _count(value: int | None) -> str:
    return "-" if value is None else grouped(value)


def _original(layer: LayerWhatIf) -> tuple[str, ...]:
    shapes = f"{format_shape(layer.input_shape)} → {format_shape(layer.output_shape)}" if layer.output_shape else ""
    calls = f"{layer.calls} calls; " if layer.calls > 1 else ""
    note = f"cannot rewrite: {layer.reason}" if layer.reason else f"{calls}{shapes}"
    return (layer.path, _percent(layer.share_of_model), "original", layer.conv or layer.type,
            _count(layer.params), _count(layer.macs), "", "", note)


def _alternative(layer: LayerWhatIf, priced: Priced) -> tuple[str, ...]:
    if priced.reason is not None:
        return ("", "", priced.spec, "", "", "", "", "", f"not applicable: {priced.reason}")
    ratio = priced.macs / layer.macs if layer.macs and priced.macs is not None else None
    return ("", "", priced.spec, priced.parts, _count(priced.params), _count(priced.macs), ratio_words(ratio),
            _percent(priced.saved_of_model), "")


def rows_of(result: WhatIf, blank_between: bool = False) -> list[tuple[str, ...]]:
    """The heading, then per layer its original row and a row per alternative (a blank row
    between layers when ``blank_between``)."""
    rows: list[tuple[str, ...]] = [HEADINGS]
    for index, layer in enumerate(result.layers):
        if blank_between and index:
            rows.append(("",) * len(HEADINGS))
        rows.append(_original(layer))
        rows += [_alternative(layer, priced) for priced in layer.alternatives]
    return rows


def notes(result: WhatIf) -> list[str]:
    """What is under every table: how savings read, how alternatives are built, and what they are not."""
    return [SAVES, result.conventions, result.note]


def nothing_to_rewrite(result: WhatIf) -> str:
    """The line a model without a priced convolution gets instead of a table."""
    return f"No convolution of {result.model} carries MACs: nothing to rewrite."


def table(result: WhatIf) -> str:
    """The terminal table, a layer and its alternatives at a time, and the notes under it."""
    body = grid(rows_of(result, blank_between=True), RIGHT) if result.layers else [nothing_to_rewrite(result)]
    return "\n".join([title(result), summary(result), "", *body, "", *notes(result)]) + "\n"


def markdown(result: WhatIf) -> str:
    """A pipe table fit for a pull-request comment, with the notes under it."""
    body = md_table(rows_of(result), RIGHT) if result.layers else [md_escape(nothing_to_rewrite(result))]
    lines = [f"**{md_escape(title(result))}**", "", md_escape(summary(result)), "", *body, ""]
    lines += [md_escape(SAVES), "", md_escape(result.conventions), "", f"_{md_escape(result.note)}_"]
    return "\n".join(lines) + "\n"


def csv(result: WhatIf) -> str:
    """One row per layer and alternative, exact numbers, for spreadsheets and pandas."""
    return str(result.to_frame().to_csv(index=False))
