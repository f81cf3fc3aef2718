"""Memory figures: the size of each call's output, every tensor written, and the forward's peak."""

from __future__ import annotations

import torch
from torch import nn

from costlens import profile


def test_a_chain_holds_two_maps_at_once_not_all_of_them() -> None:
    net = nn.Sequential(*(nn.Conv2d(8, 8, 1, bias=False) for _ in range(4)))
    result = profile(net, (1, 8, 4, 4))
    feature_map = 8 * 4 * 4 * 4  # 512 B in float32
    weights = 4 * 8 * 8 * 4  # four 1×1 convs of 8×8 weights: 1,024 B
    assert result.totals["weight_bytes"] == weights
    assert result.totals["activation_bytes"] == 4 * feature_map  # each conv writes its output once
    # the caller's input, the map a conv reads and the one it writes; the older ones are freed
    assert result.totals["peak_bytes"] == weights + 3 * feature_map  # 2,560
    assert result.totals["output_bytes"] == feature_map
    assert [layer.values["output_bytes"] for layer in result.layers[1:]] == [feature_map] * 4


def test_inception_peaks_at_the_max_pool_with_its_indices(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("inception")
    pixels = 28 * 28
    weights = 654_784  # 163,696 params × 4 B
    held = (
        192 * pixels * 4      # the input, 602,112
        + 64 * pixels * 4     # branch1's output, 200,704
        + 128 * pixels * 4    # branch2's output (its 96-channel reduce is freed), 401,408
        + 32 * pixels * 4     # branch3's output, 100,352
        + 192 * pixels * 4    # branch4's pooled map, 602,112
        + 192 * pixels * 8    # and the pool's int64 indices, 1,204,224
    )
    assert result.totals["peak_bytes"] == weights + held == 3_765_696
    pool = result.find("branch4.pool")
    assert pool.values["output_bytes"] == 192 * pixels * 4  # 602,112: what the pool returns
    assert pool.values["activation_bytes"] == 192 * pixels * (4 + 8)  # and its indices: 1,806,336 written


def test_in_place_relu_returns_its_input_and_writes_nothing(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    relu = zoo_profile("inception").find("branch1.relu")
    assert relu.values["activation_bytes"] == 0
    assert relu.values["output_bytes"] == 64 * 28 * 28 * 4  # 200,704: the conv's map, rewritten in place


def test_outputs_count_their_own_dtype() -> None:
    class Indices(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.argmax(dim=1)  # int64

    result = profile(nn.Sequential(Indices()), (2, 10))
    assert result.layers[1].values["output_bytes"] == 2 * 8  # two int64 indices
