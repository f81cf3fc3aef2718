"""Several Profiles side by side: aligned totals, ratios to the first, matched blocks.

Blocks are matched by module path and call index: the zoo names shared structure
alike (``branch1``..``branch4``, ``layer1``..``layer4``, ``features``/``classifier``),
so ``inception-naive`` and ``inception`` align branch by branch and ``resnet34`` and
``plain34`` stage by stage. A block present in only some models is kept, with gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from costlens import metrics
from costlens.records import Profile

if TYPE_CHECKING:
    import plotly.graph_objects as go

SCHEMA = "costlens.comparison/1"


@dataclass(frozen=True)
class Block:
    """One aligned block: its path and each model's record values (None where absent)."""

    path: str
    call: int
    depth: int
    types: tuple[str | None, ...]
    values: dict[str, tuple[float | None, ...]]

    @property
    def label(self) -> str:
        return self.path + (f" (call {self.call + 1})" if self.call else "")

    @property
    def shared(self) -> bool:
        """Whether at least two models have this block."""
        return sum(t is not None for t in self.types) >= 2


@dataclass(frozen=True)
class Comparison:
    """Profiles in the order given; the first is the baseline of every ratio."""

    profiles: tuple[Profile, ...]
    blocks: tuple[Block, ...]

    @property
    def names(self) -> list[str]:
        return [p.model for p in self.profiles]

    @property
    def metrics(self) -> list[metrics.Metric]:
        """The catalogue's metrics that at least one profile has a total of."""
        return [m for m in metrics.catalogue() if any(m.key in p.totals for p in self.profiles)]

    def total(self, metric: str) -> list[float | None]:
        """Each model's total of ``metric`` (None where a profile lacks it)."""
        return [p.totals.get(metric) for p in self.profiles]

    def ratios(self, metric: str) -> list[float | None]:
        """Each model's ``metric`` divided by the baseline's (None when undefined, and for a metric
        whose ratio is noise: the catalogue's ``compare``)."""
        return compared_ratios(metric, self.total(metric))

    def blocks_with(self, metric: str) -> list[Block]:
        """Blocks where some model has a non-zero ``metric``, leaves of the alignment only
        when a parent and its children both carry it (one block set, no parent beside its children)."""
        carrying = [b for b in self.blocks if any(b.values.get(metric, ()))]
        paths = {b.path for b in carrying}
        return [b for b in carrying if not any(p.startswith(b.path + ".") for p in paths)]

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready data (schema ``costlens.comparison/1``)."""
        keys = [m.key for m in self.metrics]
        return {
            "schema": SCHEMA,
            "models": self.names,
            "baseline": self.names[0],
            "totals": {k: self.total(k) for k in keys},
            "ratios": {k: self.ratios(k) for k in keys},
            "blocks": [
                {"path": b.path, "call": b.call, "depth": b.depth, "types": list(b.types),
                 **{m: list(v) for m, v in b.values.items()},
                 "ratios": {m: compared_ratios(m, list(v)) for m, v in b.values.items()}}
                for b in self.blocks
            ],
            "profiles": [p.to_dict() for p in self.profiles],
        }

    def to_json(self) -> str:
        """The comparison as JSON text, schema ``costlens.comparison/1``."""
        import json

        return json.dumps(self.to_dict(), indent=1)

    def to_frame(self) -> Any:
        """One row per block and model (tidy data for pandas)."""
        import pandas as pd

        keys = [m.key for m in self.metrics if m.per_layer]
        rows = []
        for block in self.blocks:
            for i, name in enumerate(self.names):
                if block.types[i] is None:
                    continue
                row: dict[str, object] = {"block": block.path, "call": block.call, "depth": block.depth,
                                          "model": name, "type": block.types[i]}
                row.update({k: block.values[k][i] for k in keys if k in block.values})
                rows.append(row)
        return pd.DataFrame(rows)

    def figures(self) -> dict[str, go.Figure]:
        """The comparison page's plotly figures by id."""
        from costlens.report.figures import comparison_figures

        return dict(comparison_figures(self))

    def __repr__(self) -> str:
        base = self.names[0]
        parts = [f"{n}: MACs {r:.3g}x" if r is not None else f"{n}: MACs -"
                 for n, r in zip(self.names[1:], self.ratios("macs")[1:])]
        return f"<Comparison of {len(self.names)} models, baseline {base!r}: {'; '.join(parts)}; {len(self.blocks)} blocks>"

    def _repr_markdown_(self) -> str:
        from costlens.report.comparison_text import comparison_markdown

        return comparison_markdown(self)

    def _repr_html_(self) -> str:
        from costlens.report.html import comparison_fragment

        return comparison_fragment(self)


def ratio_row(values: Sequence[int | float | None]) -> list[float | None]:
    """values[i] / values[0], None where either is missing or the baseline is 0."""
    base = values[0]
    return [None if (v is None or not base) else v / base for v in values]


def compared_ratios(metric: str, values: Sequence[int | float | None]) -> list[float | None]:
    """``ratio_row`` of a metric that compares; all None for one whose ratio is noise (IQR)."""
    known = metric in metrics.all_keys()
    return ratio_row(values) if not known or metrics.get(metric).compare else [None] * len(values)


_Key = tuple[str, int, int]  # (path, call, depth) of a block


def _aligned_keys(profiles: tuple[Profile, ...], depth: int) -> list[_Key]:
    """Union of (path, call, depth) at 1..depth, in the baseline's order, others merged in:
    a key the order lacks goes right after the key that preceded it in its own profile.

    The order is a linked list (each key maps to the key after it; None is the head), so
    every lookup and insertion is O(1) and n records take O(n), not O(n^2).
    """
    following: dict[_Key | None, _Key | None] = {None: None}
    for profile in profiles:
        previous: _Key | None = None
        for layer in profile.layers:
            if not 1 <= layer.depth <= depth:
                continue
            key = (layer.path, layer.call, layer.depth)
            if key not in following:
                following[key] = following[previous]
                following[previous] = key
            previous = key
    order: list[_Key] = []
    current = following[None]
    while current is not None:
        order.append(current)
        current = following[current]
    return order


def align(profiles: list[Profile] | tuple[Profile, ...], depth: int | None = None) -> Comparison:
    """Align ``profiles`` block by block down to module depth ``depth`` (None: the first
    profile's ``useful_depth``)."""
    profiles = tuple(profiles)
    if len(profiles) < 2:
        raise ValueError("a comparison needs at least two profiles")
    if depth is None:
        depth = profiles[0].useful_depth()
    indexed = [{(layer.path, layer.call): layer for layer in p.layers} for p in profiles]
    keys = [m.key for m in metrics.per_layer() if any(m.key in p.totals for p in profiles)]
    blocks = []
    for path, call, level in _aligned_keys(profiles, depth):
        found = [records.get((path, call)) for records in indexed]
        values = {k: tuple(r.get(k) if r else None for r in found) for k in keys}
        blocks.append(Block(path, call, level, tuple(r.type if r else None for r in found), values))
    return Comparison(profiles, tuple(blocks))
