"""A second opinion: fvcore's JIT-trace counter on real CPU tensors.

fvcore counts one fused multiply-add as one "flop", so its conv/linear/matmul counts
are MACs in costlens's convention. Its public ``by_module_and_operator()`` is filtered
to those ops; every module's MACs must then agree exactly with the tracer's.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch

from costlens import memory
from costlens.errors import CostlensError, ModelError
from costlens.inputs import prepare
from costlens.models import first_line, resolve, user_code
from costlens.units import grouped

# fvcore's names (in by_module_and_operator) of the products that carry MACs.
MAC_OPS = frozenset({"conv", "linear", "matmul", "addmm", "mm", "bmm", "einsum"})
_JIT_DEPRECATED = r"`torch\.jit\.\w+` is deprecated"


def _import_fvcore() -> Any:
    with warnings.catch_warnings():
        # fvcore's import and trace touch torch.jit, which torch 2.x deprecates.
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATED, category=DeprecationWarning)
        import fvcore.nn

    return fvcore.nn


# Ops fvcore counts that are not multiply-accumulates in costlens' convention, and why the two differ.
WHY_THEY_DIFFER = {
    "batch_norm": "fvcore counts one per input element, two with an affine scale and shift; costlens counts "
                  "normalization as FLOPs (per element, costlens/count/formulas.py), not MACs",
    "group_norm": "fvcore counts one per input element; costlens counts normalization as FLOPs, not MACs",
    "layer_norm": "fvcore counts one per input element; costlens counts normalization as FLOPs, not MACs",
    "instance_norm": "fvcore counts one per input element; costlens counts normalization as FLOPs, not MACs",
    "adaptive_avg_pool2d": "fvcore counts one per input element; costlens counts pooling's additions as FLOPs, not MACs",
    "upsample_nearest2d": "fvcore counts per output element; costlens counts nearest upsampling as data movement",
    "upsample_bilinear2d": "fvcore counts 4 per output element; costlens counts interpolation as FLOPs, not MACs",
    "einsum": "fvcore counts einsum by its own rule; costlens counts the aten ops it lowers to (bmm, or mul over "
              "a length-1 axis, which has no MACs)",
}
OTHERWISE = "fvcore counts it by its own rule; costlens counts it as FLOPs, or lists it as uncounted"


@dataclass(frozen=True)
class Crosscheck:
    """Per-module MACs from both counters, the modules where they disagree, and what fvcore
    counts beyond conv/linear/matmul, each op explained."""

    model: str
    ours: dict[str, int]
    fvcore: dict[str, int]
    other_ops: dict[str, int] = field(default_factory=dict)  # fvcore's counts of its other ops, whole model

    @property
    def explanations(self) -> list[str]:
        """One line per op fvcore counts that costlens does not count as MACs."""
        return [f"{op}: fvcore {grouped(count)}, costlens 0 MACs: {WHY_THEY_DIFFER.get(op, OTHERWISE)}"
                for op, count in sorted(self.other_ops.items()) if count]

    def to_dict(self) -> dict[str, Any]:
        """What the profile's JSON and page carry (key ``crosscheck``)."""
        return {"tool": "fvcore", "agrees": self.agrees, "macs": self.ours.get("", 0),
                "disagreements": [{"path": p, "costlens": a, "fvcore": b} for p, a, b in self.disagreements],
                "other_ops": dict(sorted(self.other_ops.items())), "explanations": self.explanations}

    @property
    def disagreements(self) -> list[tuple[str, int, int]]:
        paths = sorted(set(self.ours) | set(self.fvcore))
        return [(p, self.ours.get(p, 0), self.fvcore.get(p, 0)) for p in paths
                if self.ours.get(p, 0) != self.fvcore.get(p, 0)]

    @property
    def agrees(self) -> bool:
        return not self.disagreements

    def summary(self) -> str:
        """One line when they agree; the differing modules when not."""
        total = self.ours.get("", 0)
        if self.agrees:
            return f"fvcore agrees: {grouped(total)} MACs in {self.model}, module by module ({len(self.ours)} modules)"
        lines = [f"fvcore disagrees on {len(self.disagreements)} modules of {self.model}:"]
        lines += [f"  {p or '<root>'}: costlens {grouped(a)}, fvcore {grouped(b)}" for p, a, b in self.disagreements[:20]]
        return "\n".join(lines)

    def report(self) -> str:
        """The summary, then why fvcore's totals differ, op by op."""
        return "\n".join([self.summary(), *(f"  {line}" for line in self.explanations)])


def fvcore_macs(model: torch.nn.Module, example: torch.Tensor) -> tuple[dict[str, int], dict[str, int]]:
    """fvcore's MACs per module path (conv/linear/matmul ops only), and its counts of every other op."""
    fvnn = _import_fvcore()
    analysis = fvnn.FlopCountAnalysis(model, example)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATED, category=DeprecationWarning)
        by_module = analysis.by_module_and_operator()
    macs = {path: int(sum(count for op, count in ops.items() if op in MAC_OPS)) for path, ops in by_module.items()}
    other = {op: int(count) for op, count in by_module.get("", {}).items() if op not in MAC_OPS}
    return macs, other


def crosscheck(spec: str, shape: tuple[int, ...]) -> Crosscheck:
    """Count ``spec`` with costlens and with fvcore on real CPU tensors and compare.

    The memory it needs is estimated on meta first, so an input too large for real
    tensors is refused before anything is allocated.
    """
    from costlens.request import Request
    from costlens.run import build, run

    counted = run(Request(spec, shape))
    memory.refuse_unless_run_fits(counted, torch.device("cpu"), f"--crosscheck runs {counted.model} on real CPU tensors")
    named = resolve(spec)
    model = build(named, torch.device("cpu")).eval()
    example = prepare(shape, batch=None, device=torch.device("cpu"), dtype=torch.float32, argument="--input").args[0]
    try:
        with user_code(f"the forward of {named.name}"):
            theirs, other = fvcore_macs(model, example)
    except CostlensError:
        raise
    except Exception as error:  # fvcore's JIT trace runs the user's forward: it can raise anything
        raise ModelError(f"fvcore cannot count {named.name}: {type(error).__name__}: {first_line(error)}") from error
    ours_profile = run(Request(model, shape, device="cpu"))
    ours: Counter = Counter()
    for layer in ours_profile.layers:
        ours[layer.path] += int(layer.values["macs"])
    called = {p: v for p, v in theirs.items() if p in ours}
    return Crosscheck(named.name, dict(ours), called, other)
