"""Each formula against hand arithmetic, through the real tracer on tiny modules."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from costlens.count import formulas
from costlens.count.tracer import trace


class Lambda(nn.Module):
    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.fn = fn

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(*xs)


def cost(fn, *shapes: tuple[int, ...], device: str = "meta"):  # type: ignore[no-untyped-def]
    """The root record of tracing ``fn`` (a function or module) on random inputs."""
    inputs = [torch.randn(s, device=device) for s in shapes]
    return trace(Lambda(fn), inputs).layers[0]


def test_lecture_conv_5x5_same() -> None:
    w = torch.empty(32, 192, 5, 5, device="meta")
    root = cost(lambda x: F.conv2d(x, w, padding=2), (1, 192, 28, 28))
    assert root.macs == 120_422_400  # 28*28*32 * 5*5*192
    assert root.flops == 2 * 120_422_400  # no bias: 2 x MACs
    assert root.formula == "28·28·32 × 5·5·192 = 120,422,400"


def test_conv_bias_adds_one_flop_per_output() -> None:
    conv = nn.Conv2d(3, 8, 3, device="meta")
    root = cost(conv, (2, 3, 10, 10))
    macs = 2 * 8 * 8 * 8 * 3 * 3 * 3  # N·H'·W'·C_out × k·k·C_in = 2·8·8·8 × 27 = 27,648
    assert root.macs == macs
    assert root.flops == 2 * macs + 2 * 8 * 8 * 8  # + bias: one add per output element (1,024)


def test_grouped_and_strided_conv() -> None:
    conv = nn.Conv2d(96, 256, 5, padding=2, groups=2, bias=False, device="meta")
    root = cost(conv, (1, 96, 27, 27))
    assert root.macs == 27 * 27 * 256 * 5 * 5 * 48  # each filter sees 96/2 = 48 maps: 223,948,800
    conv1 = nn.Conv2d(3, 96, 11, stride=4, bias=False, device="meta")
    assert cost(conv1, (1, 3, 227, 227)).macs == 55 * 55 * 96 * 11 * 11 * 3  # 105,415,200


def test_transposed_conv_counts_per_input_element() -> None:
    deconv = nn.ConvTranspose2d(16, 8, 4, stride=2, bias=False, device="meta")
    # each of 16·5·5 input elements is multiplied into 8·4·4 outputs: 400 × 128 = 51,200
    assert cost(deconv, (1, 16, 5, 5)).macs == 51_200


def test_linear_addmm_and_matmul() -> None:
    fc = nn.Linear(4096, 1000, device="meta")
    root = cost(fc, (1, 4096))
    assert root.macs == 4_096_000  # 1000 × 4096
    assert root.flops == 2 * 4_096_000 + 1000  # bias: one add per output
    assert trace(fc, [torch.randn(1, 4096, device="meta")]).layers[0].formula == "1000 × 4096 = 4,096,000"
    batched = cost(nn.Linear(10, 5, bias=False, device="meta"), (3, 7, 10))  # 3·7·5 × 10 = 1,050
    assert batched.macs == 1050
    assert cost(lambda a, b: a @ b, (6, 4), (4, 9)).macs == 6 * 9 * 4  # 216
    assert cost(lambda a, b: torch.bmm(a, b), (2, 3, 4), (2, 4, 5)).macs == 2 * 3 * 5 * 4  # 120


def test_elementwise_and_activation_rules() -> None:
    assert cost(F.relu, (2, 3, 4, 4)).flops == 96  # one per element: 2·3·4·4
    assert cost(lambda a, b: a + b, (8, 8), (8, 8)).flops == 64  # residual add: one per element
    assert cost(lambda a: torch.softmax(a, -1), (4, 10)).flops == 5 * 40  # max, sub, exp, sum, div


def test_pooling_rules() -> None:
    # 3×3 max over each of 1·2·4·4 outputs: 8 comparisons each = 256
    assert cost(lambda x: F.max_pool2d(x, 3, 2, 1), (1, 2, 8, 8)).flops == 32 * 8
    # 2×2 average: 3 adds + 1 divide = 4 per output; 1·2·4·4 = 32 outputs -> 128
    assert cost(lambda x: F.avg_pool2d(x, 2), (1, 2, 8, 8)).flops == 128
    # global average over 7×7: 49 per output, 512 outputs -> 25,088
    assert cost(lambda x: F.adaptive_avg_pool2d(x, 1), (1, 512, 7, 7)).flops == 25_088
    # adaptive 5 -> 3 windows are [0,2), [1,4), [3,5): lengths 2+3+2 = 7 per axis; 7·7 = 49 per plane
    assert cost(lambda x: F.adaptive_avg_pool2d(x, 3), (1, 1, 5, 5)).flops == 49


def test_batch_norm_eval_is_scale_and_shift() -> None:
    bn = nn.BatchNorm2d(4, device="meta").eval()
    assert cost(bn, (1, 4, 5, 5)).flops == 2 * 100  # x·scale + shift per element


def test_meta_and_cpu_counts_agree_for_formulas() -> None:
    conv = nn.Conv2d(3, 4, 3)
    on_cpu = cost(conv, (1, 3, 9, 9), device="cpu")
    assert on_cpu.macs == 7 * 7 * 4 * 3 * 3 * 3  # 5,292


def test_duplicate_registration_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):
        formulas.formula(torch.ops.aten.convolution)(lambda a, k, o: formulas.FREE)


def test_bytes_and_activations_of_views_in_place_and_fresh_ops() -> None:
    x_shape = (1, 4, 8, 8)  # 256 floats = 1,024 bytes
    fresh = cost(F.relu, x_shape)
    assert (fresh.bytes, fresh.activation_bytes) == (2 * 1024, 1024)  # read x, write a new tensor
    in_place = cost(lambda x: F.relu(x, inplace=True), x_shape)
    assert (in_place.bytes, in_place.activation_bytes) == (2 * 1024, 0)  # read and rewrite x, nothing new
    view = cost(lambda x: x.view(1, -1), x_shape)
    assert (view.bytes, view.activation_bytes) == (0, 0)  # a view moves no data
