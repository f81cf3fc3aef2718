"""Several Profiles side by side: aligned totals, ratios to the first, matched blocks.

Blocks are matched by module path and call index: the zoo names shared structure
alike (``branch1``..``branch4``, ``layer1``..``layer4``, ``features``/``classifier``),
so ``inception-naive`` and ``inception`` align branch by branch and ``resnet34`` and
``plain34`` stage by stage. A block present in only some models is kept, with gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from costlens.profile import Profile

METRICS = ("params", "macs", "flops", "activation_bytes", "weight_bytes")
SCHEMA = "costlens.comparison/1"


@dataclass(frozen=True)
class Block:
    """One aligned block: its path and each model's record values (None where absent)."""

    path: str
    call: int
    depth: int
    types: tuple[str | None, ...]
    values: dict[str, tuple[int | None, ...]]

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

    def total(self, metric: str) -> list[int | float | None]:
        """Each model's total of ``metric``; latency only when the profile carries timing."""
        if metric == "latency_ms":
            return [(p.timing or {}).get("median_ms") for p in self.profiles]
        return [p.totals[metric] for p in self.profiles]

    def ratios(self, metric: str) -> list[float | None]:
        """Each model's ``metric`` divided by the baseline's (None when undefined)."""
        return ratio_row(self.total(metric))

    @property
    def has_timing(self) -> bool:
        return all(p.timing for p in self.profiles)

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready data (schema ``costlens.comparison/1``)."""
        metrics = list(METRICS) + (["latency_ms"] if self.has_timing else [])
        return {
            "schema": SCHEMA,
            "models": self.names,
            "baseline": self.names[0],
            "totals": {m: self.total(m) for m in metrics},
            "ratios": {m: self.ratios(m) for m in metrics},
            "blocks": [
                {"path": b.path, "call": b.call, "depth": b.depth, "types": list(b.types),
                 **{m: list(v) for m, v in b.values.items()},
                 "ratios": {m: ratio_row(list(v)) for m, v in b.values.items()}}
                for b in self.blocks
            ],
            "profiles": [p.to_dict() for p in self.profiles],
        }


def ratio_row(values: Sequence[int | float | None]) -> list[float | None]:
    """values[i] / values[0], None where either is missing or the baseline is 0."""
    base = values[0]
    return [None if (v is None or not base) else v / base for v in values]


def _aligned_keys(profiles: tuple[Profile, ...], depth: int) -> list[tuple[str, int, int]]:
    """Union of (path, call, depth) at 1..depth, in the baseline's order, others merged in."""
    order: list[tuple[str, int, int]] = []
    for profile in profiles:
        previous = -1
        for layer in profile.layers:
            if not 1 <= layer.depth <= depth:
                continue
            key = (layer.path, layer.call, layer.depth)
            if key in order:
                previous = order.index(key)
            else:
                previous += 1
                order.insert(previous, key)
    return order


def auto_depth(profile: Profile, minimum: int = 3) -> int:
    """The shallowest depth at which at least ``minimum`` blocks carry MACs: 1 for
    ResNet's stages or Inception's branches, 2 for VGG's layers under ``features``."""
    deepest = max(layer.depth for layer in profile.layers)
    for depth in range(1, deepest + 1):
        if sum(1 for layer in profile.layers if layer.depth == depth and layer.macs) >= minimum:
            return depth
    return 1


def compare(profiles: list[Profile] | tuple[Profile, ...], depth: int | None = None) -> Comparison:
    """Align ``profiles`` block by block down to module depth ``depth`` (None: ``auto_depth``
    of the first profile)."""
    profiles = tuple(profiles)
    if len(profiles) < 2:
        raise ValueError("a comparison needs at least two profiles")
    if depth is None:
        depth = auto_depth(profiles[0])
    indexed = [{(layer.path, layer.call): layer for layer in p.layers} for p in profiles]
    blocks = []
    for path, call, level in _aligned_keys(profiles, depth):
        found = [records.get((path, call)) for records in indexed]
        values = {m: tuple(getattr(r, m) if r else None for r in found) for m in METRICS}
        blocks.append(Block(path, call, level, tuple(r.type if r else None for r in found), values))
    return Comparison(profiles, tuple(blocks))
