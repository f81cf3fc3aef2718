"""What a profile must not carry from one call to the next, and what its short cuts must not change.

Nothing is kept between profiles (docs/architecture.md, "What is kept"): a repeat profile of
one model object equals the first, a model changed between two profiles is counted as it is
now, and the shape rules (count/shapes.py, the one short cut of a trace) give what torch's
own meta kernels give, number for number and shape for shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from costlens import profile
from costlens.count import shapes, tracer
from costlens.count.formulas import OpCost

ROOT = Path(__file__).resolve().parents[1]


def _data(name_or_model: str | nn.Module, **options: object) -> dict:
    data = json.loads(profile(name_or_model, **options).to_json())  # type: ignore[arg-type]
    data.pop("environment")
    return data


@pytest.mark.parametrize("name, options", [
    ("resnet18", {}), ("googlenet", {}), ("lenet5-1998", {}), ("alexnet", {"train": True}),
    ("inception", {"dtype": "float16", "batch": 3}),
])
def test_a_profile_without_shape_rules_is_the_same(name: str, options: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _data(name, **options)
    tracer._op_facts.cache_clear()  # an op's facts hold its shape rule
    monkeypatch.setattr(shapes, "RULES", {})
    try:
        slow = _data(name, **options)
    finally:
        tracer._op_facts.cache_clear()  # facts read without rules must not outlive this test
    assert fast == slow


def test_a_repeat_profile_of_one_model_object_equals_the_first() -> None:
    with torch.device("meta"):
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    first, again = _data(model, inputs=(2, 3, 8, 8)), _data(model, inputs=(2, 3, 8, 8))
    assert first == again
    assert model.training  # left in the mode it was found in


def test_an_int_and_a_float_argument_are_told_apart() -> None:
    class Scale(nn.Module):
        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return torch.cat([ids * 2, (ids * 2.0).long()])  # int64 * 2 stays int64; * 2.0 is float32

    layers = profile(Scale(), ((4,), "int64")).layers
    # mul writes 4 int64 (32 B) then 4 float32 (16 B); _to_copy writes 4 int64 (32 B); cat 8 int64 (64 B)
    assert layers[0].activation_bytes == 32 + 16 + 32 + 64


def test_custom_formulas_stay_in_their_own_trace() -> None:
    def doubled(args: tuple, kwargs: dict, out: object) -> OpCost:
        return OpCost(0, 2 * out.numel())  # type: ignore[attr-defined]

    plain = profile("conv5x5").totals["flops"]
    custom = profile("conv5x5", formulas={"aten.convolution": doubled}).totals["flops"]
    assert custom == 2 * 28 * 28 * 32  # one output map of 28×28×32, two flops each
    assert profile("conv5x5").totals["flops"] == plain


class Hooked(nn.Module):
    """A conv whose own forward hook replaces its output, and a ReLU called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.conv.register_forward_hook(lambda module, args, out: out[:, :2] * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.relu(self.conv(x)))


def test_a_module_with_hooks_is_traced_with_them_and_left_as_found() -> None:
    model = Hooked()
    before = [(dict(m._forward_hooks), dict(m._forward_pre_hooks), "forward" in m.__dict__) for m in model.modules()]
    layers = profile(model, (1, 3, 8, 8)).layers
    conv = next(layer for layer in layers if layer.path == "conv")
    assert conv.output_shapes == [[1, 4, 6, 6]]  # the call's own output: its hook runs after the call closed
    assert [layer.call for layer in layers if layer.path == "relu"] == [0, 1]
    root = layers[0]
    assert root.ops["aten.slice"] == 1 and root.ops["aten.mul"] == 1  # the hook's ops count in the call around it
    after = [(dict(m._forward_hooks), dict(m._forward_pre_hooks), "forward" in m.__dict__) for m in model.modules()]
    assert after == before
    assert not torch.nn.modules.module._global_forward_hooks  # costlens's own two hooks are gone


def test_a_module_calling_itself_through_forward_is_one_call() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor, again: bool = True) -> torch.Tensor:
            x = self.fc(x)
            return self.forward(x, again=False) if again else x

    layers = profile(Twice(), (1, 4)).layers
    assert [(layer.path, layer.call) for layer in layers] == [("", 0), ("fc", 0), ("fc", 1)]


class _Pooled(nn.Module):
    """A 3×3 conv, a global mean, a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


def test_a_model_changed_between_profiles_is_profiled_as_it_is_now() -> None:
    with torch.device("meta"):
        model = _Pooled()
        totals = [profile(model, (1, 3, 6, 6)).totals for _ in range(2)]
        # conv 8×3×3×3 + 8 = 224 parameters, linear 8×4 + 4 = 36; 4×4 outputs: 16 × 8 × 27 MACs, then 32
        assert [(t["params"], t["macs"]) for t in totals] == [(260, 3456 + 32)] * 2
        model.fc = nn.Linear(8, 10)  # a layer replaced: 90 parameters, 80 MACs
        result = profile(model, (1, 3, 6, 6))
        assert (result.totals["params"], result.totals["macs"]) == (314, 3456 + 80)
        model.conv.weight.data = torch.empty(8, 3, 1, 1)  # the same parameter, a 1×1 kernel: 36 × 8 × 3 MACs
        result = profile(model, (1, 3, 6, 6))
        assert (result.totals["params"], result.totals["macs"]) == (24 + 8 + 90, 864 + 80)
        model.fc.weight.requires_grad_(False)
        assert profile(model, (1, 3, 6, 6)).totals["trainable_params"] == 24 + 8 + 10
        model.conv.register_buffer("scale", torch.empty(5, dtype=torch.float64))  # 5 × 8 bytes
        result = profile(model, (1, 3, 6, 6))
        assert (result.totals["buffers"], result.totals["weight_bytes"]) == (5, 122 * 4 + 5 * 4)
        before = profile(model, (1, 3, 6, 6))
        assert before.find("conv").flops == 2 * 864 + 288  # a MAC is 2 FLOPs, a bias add 1
        model.conv.register_forward_hook(lambda module, args, out: out * 2)  # one mul more over 1×8×6×6
        after = profile(model, (1, 3, 6, 6))
        assert after.totals["flops"] == before.totals["flops"] + 288


def test_a_forward_profile_never_imports_torch_dynamo_nor_in_eval_mode_sympy() -> None:
    # batch norm, pooling, LRN, dropout, linear, cat, float32 and float16: eval mode runs on shape
    # rules alone; training mode's in-place dropout scaling runs torch's Python meta kernel, which
    # imports sympy (a training step, whose backward runs torch's meta kernels, imports both)
    code = ("import sys\nfrom costlens import profile\n"
            "names = ('resnet18', 'googlenet', 'alexnet', 'lenet5-1998', 'nin')\n"
            "for name in names:\n    profile(name)\n"
            "profile('resnet18', dtype='float16')\n"
            "print('torch._dynamo' in sys.modules, 'sympy' in sys.modules)\n"
            "for name in names:\n    profile(name, train_mode=True)\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False"]
