"""An ensemble beside its single model, in words under the ensemble's table."""

from __future__ import annotations

from collections.abc import Sequence

from costlens.metrics import get
from costlens.records import Profile
from costlens.report.grid import grid

SUMMARY_KEYS = ("macs", "flops", "params", "weight_bytes", "latency_ms")


def summary(ensemble: Profile, single: Profile, members: Sequence[str], crops: int) -> str:
    """Single model on one crop, the ensemble on every crop, and the factor between them."""
    keys = [k for k in SUMMARY_KEYS if k in ensemble.totals and k in single.totals]
    rows: list[tuple[str, ...]] = [("", *(get(k).label for k in keys))]
    images = single.input_shape[0] if single.input_shape else 1
    rows.append((f"{single.model}, 1 crop, batch {images}", *(get(k).short(single.totals[k]) for k in keys)))
    who = f"{len(members)} x {members[0]}" if len(set(members)) == 1 else ", ".join(members)
    rows.append((f"ensemble of {who}, {crops} crops", *(get(k).short(ensemble.totals[k]) for k in keys)))
    rows.append(("factor", *(_factor(ensemble.totals[k], single.totals[k]) for k in keys)))
    note = (f"Crops are batched: each member runs once on {images} x {crops} images; "
            "probabilities are averaged over members, then over crops.")
    return "\n".join([*grid(rows, set(range(1, len(keys) + 1))), note]) + "\n"


def _factor(value: float, base: float) -> str:
    return f"{value / base:.3g}x" if base else "-"
