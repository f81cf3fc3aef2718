"""Counterexamples found by property-based tests of random CNNs, kept as plain tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from costlens.api import profile

# --- Counterexamples the generator found, kept as plain tests -------------------------------


class VectorProduct(nn.Module):
    """``x @ v`` with a vector v, as written in a forward: aten.mv (or aten.dot for a vector x)."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.randn(length))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.v).unsqueeze(-1)


class BiasedVectorProduct(nn.Module):
    def __init__(self, rows: int, length: int) -> None:
        super().__init__()
        self.b, self.v = nn.Parameter(torch.randn(rows)), nn.Parameter(torch.randn(length))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmv(self.b, x, self.v)


def test_matrix_vector_products_count_their_macs() -> None:
    # generated: (x @ v).unsqueeze(-1) on a 1x1x1 input was aten.mv, uncounted: 0 MACs instead of 1
    assert (profile(VectorProduct(1), (1, 1, 1)).totals["macs"], profile(VectorProduct(1), (1, 1, 1)).uncounted) == (1, [])
    folded = profile(VectorProduct(5), (2, 3, 5)).root  # folded to (6x5)·(5): 6 dot products of 5 terms = 30
    assert (folded.macs, folded.flops, folded.formula) == (30, 60, "6 × 5 = 30")
    assert profile(VectorProduct(5), (5,)).root.macs == 5  # aten.dot: one dot product of 5 terms
    biased = profile(BiasedVectorProduct(4, 3), (4, 3)).root  # 4 dot products of 3 terms = 12, + 4 bias adds
    assert (biased.macs, biased.flops) == (12, 2 * 12 + 4)


def test_adaptive_max_pool_3d_has_a_rule() -> None:
    # generated: AdaptiveMaxPool3d(1) over 1x1x1x2x1 was uncounted: 0 flops instead of 1 comparison
    single = profile(nn.AdaptiveMaxPool3d(1), (1, 1, 1, 2, 1))
    assert (single.totals["flops"], single.uncounted) == (1, [])
    # windows per axis: T 3->2: 2+2 = 4; H 2->1: 2; W 5->3: 2+3+2 = 7; 4·2·7 = 56 elements in 6 windows
    # of each of 2 planes: (56 - 6) comparisons · 2 = 100
    assert profile(nn.AdaptiveMaxPool3d((2, 1, 3)), (1, 2, 3, 2, 5)).totals["flops"] == 100


@pytest.mark.parametrize(("conv", "shape", "macs"), [
    (nn.Conv1d(1, 1, 1, bias=False, padding_mode="reflect"), (1, 1, 1), 1),  # generated: 1 output × 1 term
    (nn.Conv1d(2, 3, 3, padding=1, bias=False, padding_mode="replicate"), (1, 2, 5), 3 * 5 * 2 * 3),  # 90
    (nn.Conv3d(1, 2, 3, padding=1, bias=False, padding_mode="reflect"), (1, 1, 3, 3, 3), 2 * 27 * 27),  # 1,458
    (nn.Conv3d(1, 2, 3, padding=1, bias=False, padding_mode="replicate"), (1, 1, 3, 3, 3), 2 * 27 * 27),
])
def test_reflect_and_replicate_padding_in_1d_and_3d_have_rules(conv: nn.Module, shape: tuple[int, ...], macs: int) -> None:
    # generated: a reflect-padded Conv1d listed aten.reflection_pad1d as uncounted
    result = profile(conv, shape)
    assert (result.totals["macs"], result.totals["flops"], result.uncounted) == (macs, 2 * macs, [])
