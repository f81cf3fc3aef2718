"""The tracer: module attribution, roll-up, shared modules, uncounted ops, cleanup."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from costlens.api import profile
from costlens.count.tracer import trace
from costlens.errors import ModelError
from costlens.zoo import create, names


class SharedTwice(nn.Module):
    """One conv applied twice, plus functional ops outside any child module."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        y = self.conv(y) + x  # second call of the same module, then a residual add
        return self.head(y.mean(dim=(2, 3)))


def test_shared_module_gives_one_record_per_call_and_no_double_count() -> None:
    layers = trace(SharedTwice(), [torch.randn(1, 4, 6, 6, device="meta")]).layers
    convs = [layer for layer in layers if layer.path == "conv"]
    assert [c.call for c in convs] == [0, 1]
    per_call = 6 * 6 * 4 * 3 * 3 * 4  # 5,184 MACs each
    assert [c.macs for c in convs] == [per_call, per_call]
    root = layers[0]
    assert root.macs == 2 * per_call + 2 * 4  # + head: 2 × 4 = 8
    # functional ops count in the root: relu 144, add 144, mean 144 (one per input element)
    head = next(layer for layer in layers if layer.path == "head")
    assert root.flops == 2 * 2 * per_call + 144 + 144 + 144 + head.flops
    assert root.params == 4 * 4 * 9 + 4 * 2 + 2  # the shared conv's 144 weights count once: 154


def test_execution_order_parent_before_children() -> None:
    layers = profile("inception").layers
    assert [layer.path for layer in layers[:4]] == ["", "branch1", "branch1.conv", "branch1.relu"]
    assert all(layers[i].depth <= layers[i - 1].depth + 1 for i in range(1, len(layers)))


@pytest.mark.parametrize("name", names())
def test_every_model_rolls_up_and_matches_an_independent_counter(name: str, zoo_profile) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile(name)
    for index, layer in enumerate(result.layers):
        kids = [result.layers[j] for j in result.children(index)]
        if not kids:
            continue
        # every MAC of the zoo runs inside a leaf conv/linear, so parents sum exactly
        assert layer.macs == sum(k.macs for k in kids), layer.path
        assert layer.flops >= sum(k.flops for k in kids), layer.path
        assert layer.bytes >= sum(k.bytes for k in kids), layer.path
    # torch's own FlopCounterMode counts 2 flops per MAC of conv/mm/addmm/bmm, no bias
    with torch.device("meta"):
        model = create(name).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(result.input_shape, device="meta"))
    assert 2 * result.totals["macs"] == counter.get_total_flops()
    assert result.totals["params"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", names())
def test_meta_equals_cpu(name: str, zoo_profile) -> None:  # type: ignore[no-untyped-def]
    meta, cpu = zoo_profile(name), zoo_profile(name, "cpu")
    assert meta.totals == cpu.totals
    for a, b in zip(meta.layers, cpu.layers, strict=True):
        assert (a.path, a.macs, a.flops, a.bytes, a.output_shapes, a.ops) == (
            b.path, b.macs, b.flops, b.bytes, b.output_shapes, b.ops)


def test_uncounted_ops_are_listed_not_zeroed() -> None:
    class Bessel(nn.Module):  # an op costlens has no rule for
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.special.bessel_j0(x) * 2

    result = trace(nn.Sequential(Bessel()), [torch.randn(2, 5, device="meta")])
    assert result.uncounted == {"aten.special_bessel_j0": (1, ["0"])}
    assert result.layers[0].flops == 10  # only the multiply: one per element


def test_model_left_as_found_even_when_forward_raises() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(10, 2))
    model.train()
    model[1].eval()
    before = [(m.training, len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]
    weight = model[0].weight.detach().clone()
    with pytest.raises(ModelError, match=r"layer '3' \(Linear\) failed on input 1x72"):  # 8 maps of 3×3 = 72
        trace(model, [torch.randn(1, 3, 5, 5, device="meta")])
    after = [(m.training, len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]
    assert after == before
    assert model[0].weight.device.type == "cpu" and torch.equal(model[0].weight, weight)


def test_a_second_trace_gives_the_same_numbers() -> None:
    with torch.device("meta"):
        model = create("resnet18")
    x = torch.randn(1, 3, 224, 224, device="meta")
    first, second = trace(model, [x]), trace(model, [x])
    assert first.layers == second.layers


def test_cpu_model_traced_on_meta_without_moving_it() -> None:
    model = nn.Sequential(nn.Linear(3, 4))
    layers = trace(model, [torch.randn(2, 3, device="meta")]).layers
    assert layers[0].macs == 2 * 4 * 3  # 24
    assert model[0].weight.device.type == "cpu"


def test_tensors_made_inside_forward_join_the_meta_trace() -> None:
    class MakesTensors(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            positions = torch.arange(x.shape[1]).float()  # no device given: cpu in plain use
            mask = torch.ones(x.shape[1], dtype=x.dtype)
            return x * positions + mask

    root = trace(MakesTensors(), [torch.randn(2, 5, device="meta")]).layers[0]
    assert root.flops == 2 * 10  # one multiply and one add per output element
    assert root.output_shapes == [[2, 5]]


def test_depth_follows_calls_through_an_uncalled_module_list(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    lenet = zoo_profile("lenet5-1998")
    index = next(i for i, layer in enumerate(lenet.layers) if layer.path == "c3")
    kids = [lenet.layers[j] for j in lenet.children(index)]
    assert [k.path for k in kids[:2]] == ["c3.maps.0", "c3.maps.1"] and len(kids) == 16
    assert all(k.depth == 2 for k in kids)  # c3 (depth 1) calls maps.i directly; the ModuleList never runs
    # Table I: maps 0-5 see 3 inputs, 6-14 see 4, map 15 sees all 6: 10·10 × 5·5 × (6·3 + 9·4 + 6) = 150,000
    assert sum(k.macs for k in kids) == lenet.layers[index].macs == 150_000


def test_flops_by_op_add_up_to_the_total(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("resnet18")
    assert sum(result.flops_by_op.values()) == result.totals["flops"]
    # conv MACs are 1,814,073,344 less the fc's 512,000; no conv has a bias
    assert result.flops_by_op["aten.convolution"] == 2 * (1_814_073_344 - 512_000)
