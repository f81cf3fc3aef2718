"""A second opinion: fvcore's JIT-trace counter on real CPU tensors.

fvcore counts one fused multiply-add as one "flop", so its conv/linear/matmul counts
are MACs in costlens's convention. Only those ops are enabled here; every module's
MACs must then agree exactly with the tracer's.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass

import torch

from costlens.api import profile
from costlens.models import resolve
from costlens.units import grouped

# fvcore's op names for the products that carry MACs.
MAC_OPS = ("aten::_convolution", "aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear", "aten::einsum")


def _import_fvcore():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        # fvcore's import and trace touch torch.jit, which torch 2.x deprecates.
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning)
        import fvcore.nn

    return fvcore.nn


@dataclass(frozen=True)
class Crosscheck:
    """Per-module MACs from both counters and the modules where they disagree."""

    model: str
    ours: dict[str, int]
    fvcore: dict[str, int]

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


def fvcore_macs(model: torch.nn.Module, example: torch.Tensor) -> dict[str, int]:
    """fvcore's MACs per module path, conv/linear/matmul handles only."""
    fvnn = _import_fvcore()
    analysis = fvnn.FlopCountAnalysis(model, example)
    # Keep only the handles of ops that carry MACs (fvcore also counts batch norm and
    # pooling by default); set_op_handle(op=None) would not drop an existing handle.
    analysis._op_handles = {op: h for op, h in analysis._op_handles.items() if op in MAC_OPS}
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning)
        return {path: int(count) for path, count in analysis.by_module().items()}


def crosscheck(spec: str, shape: tuple[int, ...]) -> Crosscheck:
    """Count ``spec`` with costlens and with fvcore on real CPU tensors and compare."""
    source = resolve(spec)
    model = source.build().eval()
    example = torch.randn(shape)
    theirs = fvcore_macs(model, example)
    ours_profile = profile(model, shape, device="cpu")
    ours: Counter = Counter()
    for layer in ours_profile.layers:
        ours[layer.path] += layer.macs
    called = {p: v for p, v in theirs.items() if p in ours}
    return Crosscheck(source.name, dict(ours), called)
